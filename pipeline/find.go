package pipeline

import (
	"context"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/samhub/samhub/pipeline/broker"
	"github.com/samhub/samhub/pipeline/letter"
)

// Query selects stored letters; empty fields match all.
type Query struct {
	ThreadID  string
	PatientID string    // CPR or replacement id; callers audit the search
	Since     time.Time // default: 90 days back
	Limit     int       // default 200
}

// scanCap bounds one search: a council receives hundreds of letters a
// month, so a scan of the recent letter stream answers at once; a hub with
// far more letters needs an index, and the cap keeps a search from stalling.
const scanCap = 100_000

// FindLetters scans the letter stream from q.Since for letters of a thread
// or a patient, newest last. It reads letters, so a search by patient is a
// read of personal data: the caller audits it.
func (h *Hub) FindLetters(ctx context.Context, q Query) ([]Summary, error) {
	if q.Since.IsZero() {
		q.Since = h.now().Add(-90 * 24 * time.Hour)
	}
	if q.Limit <= 0 {
		q.Limit = 200
	}
	norm := func(s string) string { return strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(s), "-", "")) }
	patient := norm(q.PatientID)
	var out []Summary
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{broker.SubjLetters + ".in.>"}, DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &q.Since}
	err := broker.Scan(ctx, h.js, broker.StreamLetters, cfg, scanCap, func(m jetstream.Msg) bool {
		l, err := letter.Unmarshal(m.Data())
		if err != nil || l.Kind == letter.KindNotification {
			return true
		}
		if q.ThreadID != "" && l.ThreadID != q.ThreadID && l.ID != q.ThreadID {
			return true
		}
		if patient != "" && (l.Patient == nil || norm(l.Patient.Identifier()) != patient) {
			return true
		}
		var seq uint64
		if md, err := m.Metadata(); err == nil {
			seq = md.Sequence.Stream
		}
		out = append(out, Summary{ID: l.ID, Kind: string(l.Kind), Format: l.Format, Source: l.Source, ThreadID: l.ThreadID, Received: l.Received, Category: l.Category, Seq: seq})
		return len(out) < q.Limit
	})
	return out, err
}
