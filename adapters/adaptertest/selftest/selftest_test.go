// Package selftest shows that the conformance suite can fail: an adapter
// that breaks each rule is run through it in a child test process, and
// every check must report it.
package selftest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/adapters/adaptertest"
	"github.com/samhub/samhub/pipeline/letter"
)

// broken breaks every rule: each delivery makes a new object, a lost reply
// and a cancelled call are permanent, every failure is retryable, reasons
// carry the CPR; its source acknowledges before it publishes and drops
// what the store refused.
type broken struct {
	mu      sync.Mutex
	objects map[string]int
	lose    bool
	inputs  map[int]bool // input → acknowledged
	n       int
}

var system = &broken{objects: map[string]int{}, inputs: map[int]bool{}}

func (b *broken) Deliver(ctx context.Context, l *letter.Letter) (adapters.Delivery, error) {
	if ctx.Err() != nil {
		return adapters.Delivery{}, adapters.Permanent("cancelled", "cancelled", ctx.Err())
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if l.Original.Data == nil && l.Patient != nil {
		return adapters.Delivery{}, adapters.Retryable("bad", "no original for "+l.Patient.CPR, nil)
	}
	if l.Kind == letter.KindNotification {
		return adapters.Delivery{}, adapters.Retryable("refused", "refused", nil)
	}
	b.objects[l.ID]++
	b.n++
	if b.lose {
		b.lose = false
		return adapters.Delivery{}, adapters.Permanent("lost", "reply lost", nil)
	}
	return adapters.Delivery{RemoteID: fmt.Sprint(b.n)}, nil
}

func (b *broken) Run(ctx context.Context, pub adapters.Publisher) error {
	for ctx.Err() == nil {
		b.mu.Lock()
		var todo []int
		for n, done := range b.inputs {
			if !done {
				b.inputs[n] = true // acknowledged before the store
				todo = append(todo, n)
			}
		}
		b.mu.Unlock()
		for _, n := range todo {
			_ = pub.Publish(ctx, &letter.Letter{ID: fmt.Sprintf("broken:%d", n), Kind: letter.KindNote, Subject: fmt.Sprint(n)})
		}
		adapters.Sleep(ctx, 10_000_000)
	}
	return nil
}

type harness struct{}

func (harness) Block() map[string]any { return nil }
func (harness) Letter(n int) *letter.Letter {
	return &letter.Letter{ID: fmt.Sprintf("l%d", n), Kind: letter.KindNote, Original: letter.Original{Data: []byte("x")}}
}
func (harness) Stored(_ testing.TB, l *letter.Letter) int {
	system.mu.Lock()
	defer system.mu.Unlock()
	return system.objects[l.ID]
}
func (harness) LoseNextReply(testing.TB) { system.mu.Lock(); system.lose = true; system.mu.Unlock() }
func (harness) Faults() []adaptertest.Fault {
	return []adaptertest.Fault{{Name: "permanent", Class: adapters.ClassPermanent, Arm: func(_ testing.TB, l *letter.Letter) (*letter.Letter, func()) {
		c := *l
		c.Kind = letter.KindNotification
		return &c, func() {}
	}}, {Name: "retryable", Class: adapters.ClassRetryable, Arm: func(_ testing.TB, l *letter.Letter) (*letter.Letter, func()) {
		return l, func() {}
	}}}
}
func (harness) Put(_ testing.TB, n int) {
	system.mu.Lock()
	system.inputs[n] = false
	system.mu.Unlock()
}
func (harness) Item(l *letter.Letter) (int, bool) {
	var n int
	_, err := fmt.Sscan(l.Subject, &n)
	return n, err == nil
}
func (harness) Acknowledged(_ testing.TB, n int) bool {
	system.mu.Lock()
	defer system.mu.Unlock()
	return system.inputs[n]
}

func init() {
	adapters.RegisterSourceSink("broken", adapters.Spec{}, func(adapters.Deps, struct{}) (adapters.Source, adapters.Sink, error) {
		return system, system, nil
	})
	adaptertest.Register("broken", func(*testing.T, *adaptertest.Env) adaptertest.Harness { return harness{} })
	adapters.RegisterSink("unharnessed", adapters.Spec{}, func(adapters.Deps, struct{}) (adapters.Sink, error) { return system, nil })
}

func TestSuiteCatchesABrokenAdapter(t *testing.T) {
	if os.Getenv("ADAPTERTEST_SELFTEST") == "1" {
		t.Run("unharnessed", func(t *testing.T) { adaptertest.ConformType(t, "unharnessed") })
		adaptertest.ConformType(t, "broken")
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestSuiteCatchesABrokenAdapter$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "ADAPTERTEST_SELFTEST=1")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the suite passed an adapter that breaks every rule:\n%s", out)
	}
	if !strings.Contains(string(out), `adapter type "unharnessed" has no conformance harness`) {
		t.Error("a registered type without a harness did not fail the suite")
	}
	for _, check := range []string{
		"sink/idempotent", "sink/cancelled-call-is-retryable", "sink/reasons-without-personal-data", "sink/concurrent-same-letter",
		"sink/lost-reply", "sink/classification/permanent", "sink/classification/retryable",
		"source/acknowledged-only-after-the-store-confirms", "source/crash-between-store-and-acknowledgement-repeats-the-letter",
		"source/refused-store-is-retried", "source/shutdown-mid-round-loses-nothing",
	} {
		if !strings.Contains(string(out), "--- FAIL: TestSuiteCatchesABrokenAdapter/"+check+" ") {
			t.Errorf("the suite did not catch the broken adapter in %s", check)
		}
	}
	if t.Failed() {
		t.Logf("child output:\n%s", out)
	}
}
