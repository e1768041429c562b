package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/samhub/samhub/pipeline/broker"
)

// positions keeps each destination's place in the letter stream (its
// consumer's ack floor) in the state bucket. A destination's consumer made
// anew starts at the stream's end, which is right for a destination added
// to the configuration and wrong for one whose consumer was lost (deleted
// by hand to "reset" it, a cluster node's store replaced, a stream restored
// without its consumers): every letter stored and not yet delivered there
// would be skipped without a word. With its place kept, a lost consumer is
// made again just after it, so at most the letters acked since the last
// record come again, and the sinks' idempotency makes those no-ops.
type positions struct {
	kv    jetstream.KeyValue
	every time.Duration // at most one record per destination this often

	mu    sync.Mutex
	noted map[string]noted
}

type noted struct {
	seq uint64
	at  time.Time
}

// place is a destination's recorded place in the letter stream.
type place struct {
	Seq uint64    `json:"seq"` // the consumer's ack floor: every letter up to it was handled
	At  time.Time `json:"at"`
}

// positionEvery is how often a destination's advancing place is recorded
// while the hub runs: one synced write per destination per interval, and
// after a lost consumer at most this much of its work comes again.
const positionEvery = 30 * time.Second

func newPositions(ctx context.Context, js jetstream.JetStream) (*positions, error) {
	kv, err := js.KeyValue(ctx, broker.BucketState)
	if err != nil {
		return nil, err
	}
	return &positions{kv: kv, every: positionEvery, noted: map[string]noted{}}, nil
}

var plainName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func positionKey(dest string) string {
	if !plainName.MatchString(dest) {
		dest = broker.Token(dest)
	}
	return "hub.position." + dest
}

// get returns the recorded place of dest; found is false when none was
// ever recorded (a destination new to this store).
func (p *positions) get(ctx context.Context, dest string) (pos place, found bool, err error) {
	e, err := p.kv.Get(ctx, positionKey(dest))
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return place{}, false, nil
	}
	if err != nil {
		return place{}, false, err
	}
	if err := json.Unmarshal(e.Value(), &pos); err != nil {
		return place{}, false, err
	}
	return pos, true, nil
}

// note records seq as dest's place when it moved on since the last record
// and that record is older than p.every, or at once with force (a consumer
// just made or found, the hub stopping). Forward only within this process;
// another replica's record may be a moment behind, which after a loss only
// brings a few more letters again.
func (p *positions) note(ctx context.Context, dest string, seq uint64, now time.Time, force bool) error {
	p.mu.Lock()
	last, ok := p.noted[dest]
	if ok && (seq <= last.seq || (!force && now.Sub(last.at) < p.every)) {
		p.mu.Unlock()
		return nil
	}
	p.mu.Unlock()
	b, _ := json.Marshal(place{Seq: seq, At: now.UTC()})
	if _, err := p.kv.Put(ctx, positionKey(dest), b); err != nil {
		return err
	}
	p.mu.Lock()
	if cur := p.noted[dest]; seq > cur.seq {
		p.noted[dest] = noted{seq: seq, at: now}
	}
	p.mu.Unlock()
	return nil
}

// noteConsumer records the place of dest's consumer as the server has it.
func (h *Hub) noteConsumer(ctx context.Context, dest string, force bool) {
	c, err := h.js.Consumer(ctx, broker.StreamLetters, ConsumerName(dest))
	if err != nil {
		return
	}
	h.notePosition(ctx, dest, c.CachedInfo(), force)
}

func (h *Hub) notePosition(ctx context.Context, dest string, info *jetstream.ConsumerInfo, force bool) {
	if info == nil {
		return
	}
	if err := h.positions.note(ctx, dest, info.AckFloor.Stream, h.now(), force); err != nil && ctx.Err() == nil {
		h.log.Warn("destination's place in the letter stream not recorded; trying again", "destination", dest, "err", err)
	}
}
