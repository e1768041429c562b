package adaptertest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/pipeline/letter"
)

// sinkSuite runs the sink checks. Each check builds its own instance, as
// a restarted hub would, over the same destination.
func sinkSuite(t *testing.T, env *Env, h SinkHarness) {
	sinkOf := func(t *testing.T) adapters.Sink {
		inst := build(t, env, h)
		if inst.Sink == nil {
			t.Fatalf("the harness's block built no sink")
		}
		return inst.Sink
	}
	stored := func(t *testing.T) func(*letter.Letter) int {
		return func(l *letter.Letter) int { return h.Stored(t, l) }
	}
	t.Run("idempotent", func(t *testing.T) { checkIdempotent(t, sinkOf(t), h.Letter(1), stored(t)) })
	t.Run("cancelled-call-is-retryable", func(t *testing.T) { checkCancelled(t, sinkOf(t), h.Letter(2)) })
	t.Run("reasons-without-personal-data", func(t *testing.T) { checkReasons(t, sinkOf(t), h.Letter(3)) })

	// Deliver runs up to max_in_flight calls at once; the same letter may
	// arrive twice at once from two replicas.
	t.Run("concurrent-deliveries", func(t *testing.T) {
		sink := sinkOf(t)
		var wg sync.WaitGroup
		letters := make([]*letter.Letter, 6)
		errs := make([]error, len(letters))
		for i := range letters {
			letters[i] = h.Letter(10 + i)
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = deliverRetrying(t, sink, letters[i])
			}()
		}
		wg.Wait()
		for i, l := range letters {
			if errs[i] != nil {
				t.Errorf("letter %d: %v", i, errs[i])
			} else if n := h.Stored(t, l); n != 1 {
				t.Errorf("letter %d: %d objects, want 1", i, n)
			}
		}
	})
	t.Run("concurrent-same-letter", func(t *testing.T) {
		sink := sinkOf(t)
		other := sinkOf(t) // a second replica's instance
		l := h.Letter(20)
		var wg sync.WaitGroup
		ids := make([]string, 4)
		errs := make([]error, 4)
		for i := range ids {
			s := sink
			if i%2 == 1 {
				s = other
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				d, err := deliverRetrying(t, s, l)
				ids[i], errs[i] = d.RemoteID, err
			}()
		}
		wg.Wait()
		for i := range ids {
			if errs[i] != nil {
				t.Fatalf("call %d: %v", i, errs[i])
			}
			if ids[i] != ids[0] {
				t.Errorf("concurrent deliveries of one letter answered %q and %q", ids[0], ids[i])
			}
		}
		if n := h.Stored(t, l); n != 1 {
			t.Errorf("the same letter delivered 4 times at once made %d objects, want 1", n)
		}
	})

	// The destination saved the letter but the answer was lost: the
	// pipeline delivers again, and no second object may appear.
	t.Run("lost-reply", func(t *testing.T) {
		sink := sinkOf(t)
		l := h.Letter(30)
		h.LoseNextReply(t)
		_, err := sink.Deliver(context.Background(), l)
		if err != nil {
			if class, _, _ := adapters.Classify(err); class == adapters.ClassPermanent {
				t.Fatalf("a lost reply was classified %s: the letter would be parked though it arrived", describeClass(err))
			}
		}
		if _, err := deliverRetrying(t, sink, l); err != nil {
			t.Fatalf("delivery after the lost reply: %v", err)
		}
		if n := h.Stored(t, l); n != 1 {
			t.Errorf("after a lost reply and a new delivery the destination holds %d objects, want 1", n)
		}
	})

	t.Run("streamed-parts", func(t *testing.T) { streamingSuite(t, h, sinkOf) })

	t.Run("classification", func(t *testing.T) {
		faults := h.Faults()
		seen := map[adapters.Class]bool{}
		for _, f := range faults {
			seen[f.Class] = true
		}
		if !seen[adapters.ClassPermanent] || !seen[adapters.ClassRetryable] {
			t.Fatalf("the harness must show at least one permanent and one retryable failure (has %d faults)", len(faults))
		}
		sink := sinkOf(t)
		for i, f := range faults {
			t.Run(f.Name, func(t *testing.T) {
				l, clear := f.Arm(t, h.Letter(40+i))
				_, err := sink.Deliver(context.Background(), l)
				clear()
				if err == nil {
					t.Fatalf("%s: the delivery succeeded", f.Name)
				}
				class, reason, code := adapters.Classify(err)
				if class != f.Class {
					t.Fatalf("%s: classified %s, want %s", f.Name, describeClass(err), f.Class)
				}
				if reason == "" || code == "" {
					t.Errorf("%s: the error needs a reason and a code, got %q %q", f.Name, reason, code)
				}
				if f.Class == adapters.ClassPermanent {
					if n := h.Stored(t, l); n != 0 {
						t.Errorf("%s: a permanent failure left %d objects", f.Name, n)
					}
					return
				}
				if _, err := deliverRetrying(t, sink, l); err != nil {
					t.Fatalf("%s: once the fault cleared: %v", f.Name, err)
				}
				if n := h.Stored(t, l); n != 1 {
					t.Errorf("%s: after the retry the destination holds %d objects, want 1", f.Name, n)
				}
			})
		}
	})
}

// deliverRetrying delivers as the pipeline does: retryable errors are
// tried again (after the destination's Retry-After, capped), a permanent
// one ends it.
func deliverRetrying(t testing.TB, sink adapters.Sink, l *letter.Letter) (adapters.Delivery, error) {
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		d, err := sink.Deliver(ctx, l)
		cancel()
		if err == nil {
			return d, nil
		}
		class, _, _ := adapters.Classify(err)
		if class == adapters.ClassPermanent || time.Now().After(deadline) {
			return d, fmt.Errorf("%s: %w", describeClass(err), err)
		}
		time.Sleep(min(max(adapters.RetryAfterOf(err), 50*time.Millisecond), time.Second))
	}
}
