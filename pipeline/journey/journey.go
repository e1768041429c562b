// Package journey records every step of every letter (received, delivered,
// retried, parked, replayed, discarded, acknowledged by the peer) on a
// JetStream stream keyed by letter, so one query shows where a letter is.
package journey

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/samhub/samhub/pipeline/broker"
)

// Steps a letter can take.
const (
	Received  = "received"
	Duplicate = "duplicate"
	Delivered = "delivered"
	// PartlyDelivered: some addressees of a destination have the letter
	// (To says which); the others wait, fail or park as the steps after
	// say. The destination is not done until a Delivered, Parked or
	// Discarded step.
	PartlyDelivered = "partly-delivered"
	Retried         = "retried"
	Parked          = "parked"
	Replayed        = "replayed"
	Discarded       = "discarded"
	Denied          = "consent-denied"
	Held            = "held" // waits for an earlier letter of its thread, parked at the destination
	Released        = "released"
	Acknowledged    = "acknowledged-by-peer"
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
	// To names whom a delivery was addressed to (GLN/SOR; parents only as
	// a count), so the coordinator sees that it reached the right party.
	To string `json:"to,omitempty"`
}

// Recorder writes and reads journeys.
//
// On a journey stream that does not fsync (the default), Record queues the
// step for a background writer and returns (writer.go): waiting would buy
// no durability. On a synced stream, Record is a group commit: callers that record at the same time (the
// destinations' handlers, up to max_in_flight each) are committed
// together, a large group as one JetStream atomic batch, so a burst costs
// one fsync on a SyncAlways server instead of one per event. Each caller still returns
// only once its own event is stored, so a journey never lags its step and
// nothing is held in memory across a shutdown. A caller alone is stored
// with a plain publish and waits no longer than before.
type Recorder struct {
	js jetstream.JetStream

	mu       sync.Mutex
	queue    []*pending
	flushing bool // a caller is committing on behalf of the queue

	atomicMu sync.Mutex
	atomic   int // 0 not yet checked, 1 the stream takes atomic batches, -1 it does not

	modeMu sync.Mutex
	mode   int // 0 not yet checked, 1 steps are written in the background, -1 callers wait
	bg     *writer
}

type pending struct {
	msg  *nats.Msg
	step string
	done chan result
}

// result tells a waiting caller its event was stored (or failed), or that
// it now commits for the queue.
type result struct {
	err  error
	lead bool
}

func New(js jetstream.JetStream) *Recorder { return &Recorder{js: js, bg: newWriter(js)} }

// WithLogger has the recorder's background writer say through log what it
// could not record (the process's default logger otherwise).
func (r *Recorder) WithLogger(log *slog.Logger) *Recorder {
	if log != nil {
		r.bg.log = log
	}
	return r
}

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
	if r.background(ctx) {
		return r.bg.add(ctx, msg)
	}
	p := &pending{msg: msg, step: ev.Step, done: make(chan result, 1)}
	r.mu.Lock()
	r.queue = append(r.queue, p)
	if r.flushing {
		r.mu.Unlock()
		// Wait without ctx: the committer signals every waiter, and a
		// waiter that left could not take over leadership when asked.
		res := <-p.done
		if !res.lead {
			return res.err
		}
		r.mu.Lock()
	}
	r.flushing = true
	return r.lead(ctx, p)
}

// lead commits batches from the queue, called with r.mu held, until the
// caller's own event is stored; then it hands leadership to the next
// waiter, so no caller commits for others indefinitely.
func (r *Recorder) lead(ctx context.Context, own *pending) error {
	for {
		n := min(len(r.queue), MaxAtomicBatch)
		batch := r.queue[:n:n]
		r.queue = r.queue[n:]
		r.mu.Unlock()
		err := r.commit(ctx, batch)
		mine := false
		for _, p := range batch {
			if p == own {
				mine = true
				continue
			}
			p.done <- result{err: err}
		}
		r.mu.Lock()
		if !mine {
			continue
		}
		if len(r.queue) > 0 {
			r.queue[0].done <- result{lead: true}
		} else {
			r.flushing = false
		}
		r.mu.Unlock()
		return err
	}
}

// minAtomicBatch: smaller groups are published one by one (all in flight).
// The server stages an atomic batch before committing it, which costs more
// than it saves for a few messages: measured on this kind of machine under
// SyncAlways, batches of 10 reached 3,400 msgs/s against 4,700 for single
// messages, batches of 100 15,400 (shared/domain/performance.md §6.3).
const minAtomicBatch = 32

func (r *Recorder) commit(ctx context.Context, batch []*pending) error {
	// The events are other callers' too: their commit must not fail
	// because this caller's context ends.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	statEvents.Add(uint64(len(batch)))
	if len(batch) < minAtomicBatch || !r.atomicAllowed(ctx) {
		return r.publishEach(ctx, batch)
	}
	msgs := make([]*nats.Msg, len(batch))
	for i, p := range batch {
		msgs[i] = p.msg
	}
	statCommits.Add(1)
	if _, err := PublishAtomic(ctx, r.js.Conn(), r.js, msgs); err != nil {
		return fmt.Errorf("record %d journey steps: %w", len(batch), err)
	}
	return nil
}

// publishEach stores events one by one, all in flight at once.
func (r *Recorder) publishEach(ctx context.Context, batch []*pending) error {
	statCommits.Add(uint64(len(batch)))
	if len(batch) == 1 {
		_, err := r.js.PublishMsg(ctx, batch[0].msg, jetstream.WithExpectStream(broker.StreamJourney))
		if err != nil {
			return fmt.Errorf("record journey step %s: %w", batch[0].step, err)
		}
		return nil
	}
	acks := make([]jetstream.PubAckFuture, len(batch))
	for i, p := range batch {
		f, err := r.js.PublishMsgAsync(p.msg, jetstream.WithExpectStream(broker.StreamJourney))
		if err != nil {
			return fmt.Errorf("record journey step %s: %w", p.step, err)
		}
		acks[i] = f
	}
	var errs []error
	for i, f := range acks {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			errs = append(errs, fmt.Errorf("record journey step %s: %w", batch[i].step, err))
		case <-ctx.Done():
			return fmt.Errorf("record journey steps: %w", ctx.Err())
		}
	}
	return errors.Join(errs...)
}

// atomicAllowed makes sure a synced journey stream takes atomic batches,
// enabling it once if it was created without (streams made before this
// version). A server or account that refuses keeps one publish per event.
func (r *Recorder) atomicAllowed(ctx context.Context) bool {
	r.atomicMu.Lock()
	defer r.atomicMu.Unlock()
	if r.atomic != 0 {
		return r.atomic > 0
	}
	st, err := r.js.Stream(ctx, broker.StreamJourney)
	if err != nil {
		return false // asked again next time
	}
	cfg := st.CachedInfo().Config
	if cfg.PersistMode == jetstream.AsyncPersistMode {
		// No fsync to share (streams.journey_persist: async), and the
		// server refuses atomic batches on such a stream.
		r.atomic = -1
		return false
	}
	if !cfg.AllowAtomicPublish {
		cfg.AllowAtomicPublish = true
		if _, err := r.js.UpdateStream(ctx, cfg); err != nil {
			r.atomic = -1
			return false
		}
	}
	r.atomic = 1
	return true
}

var statEvents, statCommits, statLost atomic.Uint64

// LostSteps is how many steps this process gave up writing (writer.go).
func LostSteps() uint64 { return statLost.Load() }

// WriteStats reports, for this process, how many journey events were stored
// and in how many JetStream writes (an atomic batch counts once); the
// benchmark uses it.
func WriteStats() (events, commits uint64) { return statEvents.Load(), statCommits.Load() }

// Flush returns once every step recorded before it is stored.
func (r *Recorder) Flush(ctx context.Context) error { return r.bg.flush(ctx) }

// background reports whether steps are written by the background writer:
// the journey stream does not fsync, so waiting for a step buys nothing.
func (r *Recorder) background(ctx context.Context) bool {
	r.modeMu.Lock()
	defer r.modeMu.Unlock()
	if r.mode == 0 {
		st, err := r.js.Stream(ctx, broker.StreamJourney)
		if err != nil {
			return false // asked again next time
		}
		r.mode = -1
		if st.CachedInfo().Config.PersistMode == jetstream.AsyncPersistMode {
			r.mode = 1
		}
	}
	return r.mode > 0
}

// Trace returns a letter's journey in order, with every step this process
// recorded before the call.
func (r *Recorder) Trace(ctx context.Context, letterID string) ([]Event, error) {
	if err := r.Flush(ctx); err != nil {
		return nil, err
	}
	return readAll[Event](ctx, r.js, broker.StreamJourney, broker.JourneySubject(letterID))
}

// readAll decodes every message on subject.
func readAll[T any](ctx context.Context, js jetstream.JetStream, stream, subject string) ([]T, error) {
	var out []T
	err := broker.Scan(ctx, js, stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}}, 0, func(m jetstream.Msg) bool {
		var v T
		if json.Unmarshal(m.Data(), &v) == nil {
			out = append(out, v)
		}
		return true
	})
	return out, err
}
