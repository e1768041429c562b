package pipeline

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
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
	cons, err := h.js.OrderedConsumer(ctx, broker.StreamLetters, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{broker.SubjLetters + ".in.>"},
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy,
		OptStartTime:   &q.Since,
	})
	if err != nil {
		return nil, err
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return nil, err
	}
	pending := min(info.NumPending, scanCap)
	norm := func(s string) string { return strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(s), "-", "")) }
	patient := norm(q.PatientID)
	var out []Summary
	for pending > 0 && len(out) < q.Limit {
		batch, err := cons.Fetch(int(min(pending, 512)), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return out, err
		}
		got := 0
		for m := range batch.Messages() {
			got++
			l, err := letter.Unmarshal(m.Data())
			if err != nil || l.Kind == letter.KindNotification {
				continue
			}
			if q.ThreadID != "" && l.ThreadID != q.ThreadID && l.ID != q.ThreadID {
				continue
			}
			if patient != "" && (l.Patient == nil || norm(l.Patient.Identifier()) != patient) {
				continue
			}
			md, _ := m.Metadata()
			var seq uint64
			if md != nil {
				seq = md.Sequence.Stream
			}
			out = append(out, Summary{ID: l.ID, Kind: string(l.Kind), Format: l.Format, Source: l.Source, ThreadID: l.ThreadID, Received: l.Received, Category: l.Category, Seq: seq})
			if len(out) >= q.Limit {
				break
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return out, err
		}
		if got == 0 {
			break
		}
		pending -= uint64(got)
	}
	return out, nil
}
