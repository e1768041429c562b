// Package audit keeps the append-only record of every human action and every
// read of a letter's personal content through the API: who, when, what, why.
// The stream denies delete and purge; retention is by age only.
package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/samhub/samhub/pipeline/broker"
)

// Record is one audited action. Target is an id (letter, parked entry) or,
// for a CPR search, a keyed hash of the search criterion: the log must say
// whose data was looked up without becoming a CPR list itself.
type Record struct {
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	Role   string    `json:"role"`
	Action string    `json:"action"` // replay, discard, show-content, search-cpr, consent-record, login, login-failed…
	Target string    `json:"target,omitempty"`
	Reason string    `json:"reason,omitempty"`
	Result string    `json:"result,omitempty"`
	Remote string    `json:"remote,omitempty"`
}

// Log appends and reads audit records.
type Log struct{ js jetstream.JetStream }

func New(js jetstream.JetStream) *Log { return &Log{js: js} }

// MaxReason bounds a record's reason, in characters. The console's forms
// take 500; a longer one (a form posted by hand, an API body) is cut, so
// that one record cannot swell the auditor's page by megabytes.
const MaxReason = 1000

// Append stores r durably; an action whose audit record cannot be stored
// must not happen, so callers check the error before acting.
func (l *Log) Append(ctx context.Context, r Record) error {
	if r.At.IsZero() {
		r.At = time.Now().UTC()
	}
	if utf8.RuneCountInString(r.Reason) > MaxReason {
		r.Reason = string([]rune(r.Reason)[:MaxReason]) + " […]"
	}
	if r.Actor == "" || r.Action == "" {
		return errors.New("audit: actor and action are required")
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	msg := nats.NewMsg(broker.SubjAudit + "." + subjectToken(r.Action))
	msg.Data = b
	if _, err := l.js.PublishMsg(ctx, msg, jetstream.WithExpectStream(broker.StreamAudit)); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// Tail returns up to n most recent records, oldest first.
func (l *Log) Tail(ctx context.Context, n int) ([]Record, error) {
	st, err := l.js.Stream(ctx, broker.StreamAudit)
	if err != nil {
		return nil, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, err
	}
	last := info.State.LastSeq
	if last == 0 {
		return nil, nil
	}
	start := uint64(1)
	if last > uint64(n) {
		start = last - uint64(n) + 1
	}
	if start < info.State.FirstSeq {
		start = info.State.FirstSeq
	}
	var out []Record
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: start}
	err = broker.Scan(ctx, l.js, broker.StreamAudit, cfg, last-start+1, func(m jetstream.Msg) bool {
		var r Record
		if json.Unmarshal(m.Data(), &r) == nil {
			out = append(out, r)
		}
		return true
	})
	return out, err
}

func subjectToken(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	return string(b)
}
