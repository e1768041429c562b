// Package journey records every step of every letter (received, delivered,
// retried, parked, replayed, discarded, acknowledged by the peer) on a
// JetStream stream keyed by letter, so one query shows where a letter is.
package journey

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/samhub/samhub/pipeline/broker"
)

// Steps a letter can take.
const (
	Received     = "received"
	Duplicate    = "duplicate"
	Delivered    = "delivered"
	Retried      = "retried"
	Parked       = "parked"
	Replayed     = "replayed"
	Discarded    = "discarded"
	Denied       = "consent-denied"
	Acknowledged = "acknowledged-by-peer"
)

// Event is one step. It never holds personal data: reasons are classified
// and ids are the systems' own.
type Event struct {
	LetterID    string    `json:"letterId"`
	At          time.Time `json:"at"`
	Step        string    `json:"step"`
	Source      string    `json:"source,omitempty"`
	Destination string    `json:"destination,omitempty"`
	RemoteID    string    `json:"remoteId,omitempty"`
	Route       string    `json:"route,omitempty"`
	Attempt     int       `json:"attempt,omitempty"`
	Code        string    `json:"code,omitempty"`
	Reason      string    `json:"reason,omitempty"`
	Actor       string    `json:"actor,omitempty"`
}

// Recorder writes and reads journeys.
type Recorder struct{ js jetstream.JetStream }

func New(js jetstream.JetStream) *Recorder { return &Recorder{js: js} }

// Record stores ev durably.
func (r *Recorder) Record(ctx context.Context, ev Event) error {
	if ev.At.IsZero() {
		ev.At = time.Now().UTC()
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	msg := nats.NewMsg(broker.JourneySubject(ev.LetterID))
	msg.Data = b
	_, err = r.js.PublishMsg(ctx, msg, jetstream.WithExpectStream(broker.StreamJourney))
	if err != nil {
		return fmt.Errorf("record journey step %s: %w", ev.Step, err)
	}
	return nil
}

// Trace returns a letter's journey in order.
func (r *Recorder) Trace(ctx context.Context, letterID string) ([]Event, error) {
	return readAll[Event](ctx, r.js, broker.StreamJourney, broker.JourneySubject(letterID))
}

// readAll reads every message on subject from an ordered consumer.
func readAll[T any](ctx context.Context, js jetstream.JetStream, stream, subject string) ([]T, error) {
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		return nil, err
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return nil, err
	}
	pending := info.NumPending
	var out []T
	for pending > 0 {
		n := int(min(pending, 256))
		batch, err := cons.Fetch(n, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return out, err
		}
		got := 0
		for m := range batch.Messages() {
			got++
			var v T
			if err := json.Unmarshal(m.Data(), &v); err == nil {
				out = append(out, v)
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
