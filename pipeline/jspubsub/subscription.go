package jspubsub

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/samhub/samhub/internal/failpoint"
)

// entry is one JetStream message this subscription holds until it is acked
// (or Nak'd at shutdown).
type entry struct {
	r    *received
	key  string
	slot bool // holds a MaxInFlight slot
}

// subscription is one Subscribe call. Locking: mu guards queues, seqs and
// stopping; deliver goroutines are started only under mu and never after
// stopping is set, so workers.Wait in shutdown cannot race an Add.
type subscription struct {
	s       *Subscriber
	topic   string
	iter    jetstream.MessagesContext // guarded by mu: rebind replaces it
	base    context.Context           // parent of message contexts; never cancelled by Subscribe's ctx
	ackWait time.Duration
	out     chan *message.Message
	slots   chan struct{}

	stop   chan struct{} // closed when shutdown starts: no new pulls or emissions
	expire chan struct{} // closed when CloseTimeout has passed
	pulled chan struct{} // closed when the pull loop has ended

	mu       sync.Mutex
	stopping bool
	queues   map[string][]*entry // per order key, head first; the head is the one emitted
	seqs     map[uint64]bool     // stream sequences held, to drop redeliveries of them
	acked    ackedSeqs           // stream sequences recently acked, to drop stale copies of them
	workers  sync.WaitGroup
}

// ackedSeqs remembers the last stream sequences whose ack the server
// confirmed. A message that waited in nats.go's buffer past AckWait (every
// slot busy) is sent again by the server; the buffered copy is handled and
// acked first, and the copy sent again, already on its way, must not be
// handled a second time. Such a copy arrives within the next PullBatch
// messages, while at most MaxInFlight others are acked, so a ring of twice
// that many is enough.
type ackedSeqs struct {
	ring []uint64
	next int
	set  map[uint64]bool
}

func newAckedSeqs(n int) ackedSeqs {
	return ackedSeqs{ring: make([]uint64, n), set: make(map[uint64]bool, n)}
}

func (a *ackedSeqs) add(seq uint64) {
	if old := a.ring[a.next]; old != 0 {
		delete(a.set, old)
	}
	a.ring[a.next] = seq
	a.set[seq] = true
	a.next = (a.next + 1) % len(a.ring)
}

func newSubscription(s *Subscriber, ctx context.Context, iter jetstream.MessagesContext, ackWait time.Duration) *subscription {
	return &subscription{
		s: s, iter: iter, ackWait: ackWait,
		base:   context.WithoutCancel(ctx),
		out:    make(chan *message.Message),
		slots:  make(chan struct{}, s.cfg.MaxInFlight),
		stop:   make(chan struct{}),
		expire: make(chan struct{}),
		pulled: make(chan struct{}),
		queues: map[string][]*entry{},
		seqs:   map[uint64]bool{},
		acked:  newAckedSeqs(2 * (s.cfg.MaxInFlight + s.cfg.PullBatch)),
	}
}

// run owns the subscription's life: it starts the pull loop and the
// in-progress ticker, waits for the end signal, then shuts down.
func (sub *subscription) run(ctx context.Context) {
	defer sub.s.forget(sub)
	go sub.pull()
	tickerDone := make(chan struct{})
	finished := make(chan struct{})
	go sub.keepAlive(finished, tickerDone)

	select {
	case <-ctx.Done():
	case <-sub.s.closing:
	case <-sub.pulled:
		// The iterator ended on its own: the consumer was deleted or the
		// connection closed for good. End the subscription visibly (the
		// output channel closes) instead of idling with nothing to read.
		sub.s.logger.Error("pulling from consumer ended; closing subscription", nil, nil)
	}
	sub.mu.Lock()
	sub.stopping = true
	iter := sub.iter
	sub.mu.Unlock()
	close(sub.stop)

	// Drain (not Stop) so messages nats.go already buffered come out of
	// Next and are Nak'd below instead of waiting out AckWait.
	iter.Drain()
	stoppedPulling := time.Now()
	timeout := time.NewTimer(sub.s.cfg.CloseTimeout)
	defer timeout.Stop()
	select {
	case <-sub.pulled:
	case <-timeout.C:
		iter.Stop()
		<-sub.pulled
	}
	expire := time.AfterFunc(sub.s.cfg.CloseTimeout, func() { close(sub.expire) })
	sub.workers.Wait()
	expire.Stop()

	close(finished)
	<-tickerDone
	if len(sub.held(nil)) > 0 {
		// Let the last pull request expire on the server first (see
		// SubscriberConfig.PullExpiry), so the Naks reach a live reader.
		if wait := time.Until(stoppedPulling.Add(sub.s.cfg.PullExpiry + 100*time.Millisecond)); wait > 0 {
			time.Sleep(wait)
		}
	}
	sub.nakRemaining()
	close(sub.out)
}

// pull moves messages from the iterator into per-key queues, holding one
// slot per message so at most MaxInFlight are held.
func (sub *subscription) pull() {
	defer close(sub.pulled)
	for {
		slot := false
		select {
		case sub.slots <- struct{}{}:
			slot = true
		case <-sub.stop: // draining: take what is buffered without slots
		}
		sub.mu.Lock()
		iter := sub.iter
		sub.mu.Unlock()
		m, err := iter.Next()
		if err != nil {
			if slot {
				<-sub.slots
			}
			if sub.s.cfg.Recreate != nil && (errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrNoHeartbeat) && sub.consumerGone()) {
				iter.Stop()
				if sub.rebind(err) {
					continue
				}
				return
			}
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return
			}
			sub.s.logger.Error("pulling from consumer failed; retrying", err, nil)
			select {
			case <-sub.stop:
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		sub.add(m, slot)
	}
}

// rebind has the consumer deleted under the subscription made again
// (SubscriberConfig.Recreate) and pulls from it, trying until it works or
// the subscription stops; false when it stopped. Messages it held from the
// deleted consumer come again from the new one and are handled once: a
// copy of one still held is dropped, one acked since is acked again.
func (sub *subscription) rebind(why error) bool {
	ctx, cancel := context.WithCancel(sub.base)
	defer cancel()
	go func() {
		select {
		case <-sub.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	sub.s.logger.Error("the consumer is gone; making it again", why, watermill.LogFields{"topic": sub.topic})
	wait := 100 * time.Millisecond
	for {
		iter, err := sub.recreate(ctx)
		if err == nil {
			sub.mu.Lock()
			if sub.stopping {
				sub.mu.Unlock()
				iter.Stop()
				return false
			}
			sub.iter = iter
			sub.mu.Unlock()
			sub.s.logger.Info("pulling from the consumer made again", watermill.LogFields{"topic": sub.topic})
			return true
		}
		sub.s.logger.Error("the deleted consumer could not be made again; trying again", err, watermill.LogFields{"topic": sub.topic})
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
		wait = min(2*wait, 10*time.Second)
	}
}

// consumerGone reports whether the server says the consumer does not exist:
// one deleted while the connection was down sends no notice, and pulls
// from it only miss their heartbeats.
func (sub *subscription) consumerGone() bool {
	if sub.s.cfg.Consumer == nil {
		return false
	}
	stream, name := sub.s.cfg.Consumer(sub.topic)
	ctx, cancel := context.WithTimeout(sub.base, 5*time.Second)
	defer cancel()
	_, err := sub.s.js.Consumer(ctx, stream, name)
	return errors.Is(err, jetstream.ErrConsumerNotFound)
}

func (sub *subscription) recreate(ctx context.Context) (jetstream.MessagesContext, error) {
	if err := sub.s.cfg.Recreate(ctx, sub.topic); err != nil {
		return nil, err
	}
	cons, err := sub.s.bind(ctx, sub.topic)
	if err != nil {
		return nil, err
	}
	return sub.s.messages(cons)
}

func (sub *subscription) add(m jetstream.Msg, slot bool) {
	r, err := decode(m)
	if err != nil {
		// Without delivery metadata the message cannot be acked or tracked;
		// terminate it so it does not come back every AckWait.
		sub.s.logger.Error("terminating message with unreadable delivery metadata", err, watermill.LogFields{"subject": m.Subject()})
		_ = m.TermWithReason("jspubsub: unreadable delivery metadata")
		sub.release(slot)
		return
	}
	key := "\x00seq:" + strconv.FormatUint(r.info.StreamSeq, 10)
	if sub.s.cfg.OrderKey != nil {
		wm, cancel := r.emit(sub.base)
		key = sub.s.cfg.OrderKey(wm)
		cancel()
	}
	e := &entry{r: r, key: key, slot: slot}

	sub.mu.Lock()
	defer sub.mu.Unlock()
	if sub.seqs[r.info.StreamSeq] {
		// A redelivery of a message still held here (AckWait passed while
		// it waited); the held copy will be acked by stream sequence.
		sub.s.logger.Debug("dropping redelivery of a held message", watermill.LogFields{"seq": r.info.StreamSeq})
		sub.release(slot)
		return
	}
	if sub.acked.set[r.info.StreamSeq] {
		// Handled and acked: a copy already on its way when the ack
		// arrived, or one sent because the server lost an ack it had
		// confirmed. Ack it again: the server ignores that for the first,
		// and for the second it frees the place the copy holds among the
		// consumer's MaxAckPending; dropped unacked, such copies would come
		// back every AckWait and, as many as the places, stall the
		// consumer.
		sub.s.logger.Info("acking a copy of an acked message again", watermill.LogFields{"seq": r.info.StreamSeq})
		_ = m.Ack()
		sub.release(slot)
		return
	}
	sub.seqs[r.info.StreamSeq] = true
	q := sub.queues[key]
	sub.queues[key] = append(q, e)
	if len(q) == 0 {
		sub.startLocked(e)
	}
}

// startLocked starts delivering e unless shutting down. Caller holds mu.
func (sub *subscription) startLocked(e *entry) {
	if sub.stopping {
		return
	}
	sub.workers.Add(1)
	go sub.deliver(e)
}

// deliver emits e, re-emitting it after each nack, until it is acked or
// shutdown intervenes; the next message of its key starts only after.
func (sub *subscription) deliver(e *entry) {
	defer sub.workers.Done()
	for {
		wm, cancel := e.r.emit(sub.base)
		select {
		case sub.out <- wm:
		case <-sub.stop:
			cancel()
			return // never emitted: Nak'd at the end
		}
		select {
		case <-wm.Acked():
			cancel()
			sub.done(e, sub.ack(e))
			return
		case <-wm.Nacked():
			cancel()
		case <-sub.expire:
			cancel()
			sub.s.logger.Info("handler did not finish before close timeout; message will be redelivered", watermill.LogFields{"uuid": wm.UUID, "seq": e.r.info.StreamSeq})
			return
		}
		// Nacked: re-emit the same message later rather than Nak it to
		// JetStream, which would let later messages of its key overtake it.
		t := time.NewTimer(sub.s.cfg.NackDelay)
		select {
		case <-t.C:
		case <-sub.stop:
			t.Stop()
			return
		}
	}
}

// ack confirms e with the server, retrying timeouts, and reports whether
// the server confirmed it.
func (sub *subscription) ack(e *entry) bool {
	failpoint.Kill(failpoint.BeforeAck)
	var err error
	for attempt := 1; attempt <= sub.s.cfg.AckAttempts; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), sub.s.cfg.AckTimeout)
		err = e.r.msg.DoubleAck(ctx)
		cancel()
		if err == nil || errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
			return true
		}
		if errors.Is(err, jetstream.ErrMsgNoReply) {
			break
		}
	}
	// The server will redeliver it after AckWait: at-least-once, never lost.
	sub.s.logger.Error("ack not confirmed; message will be redelivered", err, watermill.LogFields{"uuid": e.r.uuid, "seq": e.r.info.StreamSeq})
	return false
}

// done forgets e and starts the next message of its key. A confirmed ack
// is remembered; an unconfirmed one is not, so the server's redelivery is
// handled again.
func (sub *subscription) done(e *entry, confirmed bool) {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if confirmed {
		sub.acked.add(e.r.info.StreamSeq)
	}
	q := sub.queues[e.key]
	if len(q) == 0 || q[0] != e {
		panic("jspubsub: internal error: acked message is not the head of its key") // invariant of deliver
	}
	q = q[1:]
	if len(q) == 0 {
		delete(sub.queues, e.key)
	} else {
		sub.queues[e.key] = q
		sub.startLocked(q[0])
	}
	delete(sub.seqs, e.r.info.StreamSeq)
	sub.release(e.slot)
}

func (sub *subscription) release(slot bool) {
	if slot {
		<-sub.slots
	}
}

// keepAlive sends InProgress for every held message each AckWait/3, so a
// message waiting on a slow handler or behind its key is not redelivered.
func (sub *subscription) keepAlive(finished, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(max(sub.ackWait/3, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-finished:
			return
		case <-t.C:
		}
		for _, e := range sub.held(nil) {
			_ = e.r.msg.InProgress() // best effort; a miss only risks a redelivery
		}
	}
}

// held adds waiting counts per key to into (when not nil) and returns every
// held entry.
func (sub *subscription) held(into map[string]int) []*entry {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	var all []*entry
	for key, q := range sub.queues {
		all = append(all, q...)
		if into != nil && len(q) > 1 && sub.s.cfg.OrderKey != nil {
			into[key] += len(q) - 1
		}
	}
	return all
}

// nakRemaining hands every message still held back to JetStream at once,
// in stream order so a key's earlier message is redelivered first.
func (sub *subscription) nakRemaining() {
	all := sub.held(nil)
	slices.SortFunc(all, func(a, b *entry) int {
		return cmp.Compare(a.r.info.StreamSeq, b.r.info.StreamSeq)
	})
	for _, e := range all {
		if err := e.r.msg.Nak(); err != nil {
			sub.s.logger.Error("nak at shutdown failed; message returns after AckWait", err, watermill.LogFields{"seq": e.r.info.StreamSeq})
		}
	}
	if len(all) > 0 {
		sub.s.logger.Info("returned unacked messages to the consumer", watermill.LogFields{"count": len(all)})
	}
}
