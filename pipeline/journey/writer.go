package journey

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/samhub/samhub/pipeline/broker"
)

// writer stores journey steps in the background, for a journey stream
// that does not fsync (streams.journey_persist: async, the default): there
// a caller waiting for its step bought no durability (the server buffers
// the write either way), only a round trip on the delivery's path. Steps
// keep their order (one writer, published in order on one connection), and
// each carries an event id (Nats-Msg-Id), so a batch written again after
// an unclear answer is stored once. Readers in this process see every step
// recorded before they read (Flush), and the hub flushes at shutdown.
type writer struct {
	js     jetstream.JetStream
	log    *slog.Logger
	prefix string // event ids: prefix + a counter, unique per recorder

	mu       sync.Mutex
	queue    []*nats.Msg
	queued   uint64        // steps ever queued
	written  uint64        // steps the writer is done with (stored or given up)
	progress chan struct{} // closed and replaced whenever written moves
	wake     chan struct{}
	running  bool
}

// writerQueueMax bounds the steps waiting in memory; a caller beyond it
// waits for the writer (the stream is slower than the deliveries).
const writerQueueMax = 1 << 16

// writerBatch is how many steps are in flight at once.
const writerBatch = 256

func newWriter(js jetstream.JetStream) *writer {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return &writer{js: js, log: slog.Default(), prefix: "j-" + hex.EncodeToString(b) + "-", progress: make(chan struct{}), wake: make(chan struct{}, 1)}
}

// add queues msg, waiting while the queue is full.
func (w *writer) add(ctx context.Context, msg *nats.Msg) error {
	w.mu.Lock()
	for len(w.queue) >= writerQueueMax {
		p := w.progress
		w.mu.Unlock()
		select {
		case <-p:
		case <-ctx.Done():
			return ctx.Err()
		}
		w.mu.Lock()
	}
	w.queued++
	msg.Header.Set(jetstream.MsgIDHeader, w.prefix+strconv.FormatUint(w.queued, 36))
	w.queue = append(w.queue, msg)
	if !w.running {
		w.running = true
		go w.run()
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return nil
}

// flush waits until every step queued before it was written.
func (w *writer) flush(ctx context.Context) error {
	w.mu.Lock()
	target := w.queued
	for w.written < target {
		p := w.progress
		w.mu.Unlock()
		select {
		case <-p:
		case <-ctx.Done():
			return ctx.Err()
		}
		w.mu.Lock()
	}
	w.mu.Unlock()
	return nil
}

// run writes the queue until it is empty, then stops (add starts it again).
func (w *writer) run() {
	for {
		w.mu.Lock()
		n := min(len(w.queue), writerBatch)
		if n == 0 {
			w.running = false
			w.mu.Unlock()
			return
		}
		batch := w.queue[:n:n]
		w.queue = w.queue[n:]
		w.mu.Unlock()

		w.write(batch)

		w.mu.Lock()
		w.written += uint64(n)
		close(w.progress)
		w.progress = make(chan struct{})
		w.mu.Unlock()
	}
}

// write stores batch, trying what failed a few times. A step still not
// stored is given up with a warning: the journey is the coordinator's view,
// and holding deliveries back for it would trade a letter's progress for
// its record.
func (w *writer) write(batch []*nats.Msg) {
	statEvents.Add(uint64(len(batch)))
	statCommits.Add(uint64(len(batch)))
	wait := 100 * time.Millisecond
	for try := 1; ; try++ {
		failed, err := w.publish(batch)
		if len(failed) == 0 {
			return
		}
		if try == 5 {
			statLost.Add(uint64(len(failed)))
			w.log.Warn("journey steps not recorded", "steps", len(failed), "err", err)
			return
		}
		batch = failed
		time.Sleep(wait)
		wait *= 2
	}
}

func (w *writer) publish(batch []*nats.Msg) ([]*nats.Msg, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	acks := make([]jetstream.PubAckFuture, len(batch))
	var failed []*nats.Msg
	var errs []error
	for i, m := range batch {
		f, err := w.js.PublishMsgAsync(m, jetstream.WithExpectStream(broker.StreamJourney))
		if err != nil {
			// Keep the order: this one and the rest are tried again.
			for _, f := range acks[:i] {
				if ferr := await(ctx, f); ferr != nil {
					failed = append(failed, f.Msg())
				}
			}
			return append(failed, batch[i:]...), err
		}
		acks[i] = f
	}
	for _, f := range acks {
		if err := await(ctx, f); err != nil {
			failed = append(failed, f.Msg())
			errs = append(errs, err)
		}
	}
	return failed, errors.Join(errs...)
}

func await(ctx context.Context, f jetstream.PubAckFuture) error {
	select {
	case <-f.Ok():
		return nil
	case err := <-f.Err():
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
