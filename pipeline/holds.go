package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/samhub/samhub/pipeline/broker"
)

// CodeThreadHeld parks a letter that waits for an earlier letter of its
// thread, parked at the same destination.
const CodeThreadHeld = "thread_held"

// hold says that a destination's thread is held back: its letter LetterID
// is parked there, and later letters of the thread wait behind it (parked
// as thread_held) until it is delivered or discarded, or the coordinator
// releases the thread.
type hold struct {
	LetterID string    `json:"letterId"`
	Since    time.Time `json:"since"`
}

// holds keeps the destinations' thread holds in the state bucket (so they
// survive restarts and every replica sees them) and a copy in memory kept
// current by a watch, so the per-letter check costs no round trip.
type holds struct {
	kv jetstream.KeyValue

	mu sync.RWMutex
	m  map[string]hold // by key
}

const holdPrefix = "hub.hold."

func holdKey(dest, thread string) string { return holdPrefix + dest + "." + thread }

func newHolds(ctx context.Context, js jetstream.JetStream) (*holds, error) {
	kv, err := js.KeyValue(ctx, broker.BucketState)
	if err != nil {
		return nil, err
	}
	return &holds{kv: kv, m: map[string]hold{}}, nil
}

// watch loads every hold and follows changes until ctx ends; it returns
// once the initial values are in.
func (hs *holds) watch(ctx context.Context, log interface{ Warn(string, ...any) }) error {
	w, err := hs.kv.Watch(ctx, holdPrefix+">")
	if err != nil {
		return err
	}
	apply := func(e jetstream.KeyValueEntry) {
		hs.mu.Lock()
		defer hs.mu.Unlock()
		if e.Operation() != jetstream.KeyValuePut {
			delete(hs.m, e.Key())
			return
		}
		var h hold
		if err := json.Unmarshal(e.Value(), &h); err != nil {
			log.Warn("unreadable thread hold ignored", "key", e.Key())
			return
		}
		hs.m[e.Key()] = h
	}
	for e := range w.Updates() {
		if e == nil {
			break // the initial values are in
		}
		apply(e)
	}
	go func() {
		defer w.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e != nil {
					apply(e)
				}
			}
		}
	}()
	return nil
}

// get returns the hold of a destination's thread, if any.
func (hs *holds) get(dest, thread string) (hold, bool) {
	hs.mu.RLock()
	defer hs.mu.RUnlock()
	h, ok := hs.m[holdKey(dest, thread)]
	return h, ok
}

// set holds the thread behind letterID. With replace false an existing
// hold is kept (the first parked letter of a thread holds it).
func (hs *holds) set(ctx context.Context, dest, thread, letterID string, replace bool, now time.Time) error {
	key := holdKey(dest, thread)
	b, _ := json.Marshal(hold{LetterID: letterID, Since: now.UTC()})
	var err error
	if replace {
		_, err = hs.kv.Put(ctx, key, b)
	} else if _, err = hs.kv.Create(ctx, key, b); errors.Is(err, jetstream.ErrKeyExists) {
		err = nil
	}
	if err == nil {
		hs.mu.Lock()
		if _, held := hs.m[key]; replace || !held {
			hs.m[key] = hold{LetterID: letterID, Since: now.UTC()}
		}
		hs.mu.Unlock()
	}
	return err
}

// clear lifts a thread's hold.
func (hs *holds) clear(ctx context.Context, dest, thread string) error {
	key := holdKey(dest, thread)
	if err := hs.kv.Delete(ctx, key); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return err
	}
	hs.mu.Lock()
	delete(hs.m, key)
	hs.mu.Unlock()
	return nil
}

// Hold is a held thread as the API shows it.
type Hold struct {
	Destination string    `json:"destination"`
	Thread      string    `json:"thread"` // thread token
	WaitsFor    string    `json:"waitsFor"`
	Since       time.Time `json:"since"`
}

// list returns every hold.
func (hs *holds) list() []Hold {
	hs.mu.RLock()
	defer hs.mu.RUnlock()
	out := make([]Hold, 0, len(hs.m))
	for k, h := range hs.m {
		rest := strings.TrimPrefix(k, holdPrefix)
		i := strings.LastIndexByte(rest, '.')
		if i < 0 {
			continue
		}
		out = append(out, Hold{Destination: rest[:i], Thread: rest[i+1:], WaitsFor: h.LetterID, Since: h.Since})
	}
	return out
}
