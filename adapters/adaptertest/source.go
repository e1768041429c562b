package adaptertest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/pipeline/letter"
)

// Publisher is an adapters.Publisher for source tests. Hook, when set,
// decides each Publish: nil confirms the store, an error refuses it. It
// records what was offered, stored and confirmed, by letter id.
type Publisher struct {
	Hook func(ctx context.Context, l *letter.Letter) error

	mu        sync.Mutex
	offered   []string
	stored    map[string]*letter.Letter
	confirmed map[string]*letter.Letter
}

func NewPublisher() *Publisher {
	return &Publisher{stored: map[string]*letter.Letter{}, confirmed: map[string]*letter.Letter{}}
}

func (p *Publisher) Publish(ctx context.Context, l *letter.Letter) error {
	p.mu.Lock()
	p.offered = append(p.offered, l.ID)
	hook := p.Hook
	p.mu.Unlock()
	if hook != nil {
		if err := hook(ctx, l); err != nil {
			return err
		}
	}
	p.mu.Lock()
	p.stored[l.ID], p.confirmed[l.ID] = l, l
	p.mu.Unlock()
	return nil
}

// Store records l as stored without confirming it: a hook that "crashes"
// after the write calls it.
func (p *Publisher) Store(l *letter.Letter) {
	p.mu.Lock()
	p.stored[l.ID] = l
	p.mu.Unlock()
}

// Confirmed returns the letters whose Publish returned nil.
func (p *Publisher) Confirmed() map[string]*letter.Letter {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]*letter.Letter, len(p.confirmed))
	for k, v := range p.confirmed {
		out[k] = v
	}
	return out
}

// Offered counts the Publish calls for letter id.
func (p *Publisher) Offered(id string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, o := range p.offered {
		if o == id {
			n++
		}
	}
	return n
}

// running is a source's Run in the background.
type running struct {
	cancel context.CancelFunc
	done   chan error
}

func start(src adapters.Source, pub adapters.Publisher) *running {
	ctx, cancel := context.WithCancel(context.Background())
	return startWith(ctx, cancel, src, pub)
}

func startWith(ctx context.Context, cancel context.CancelFunc, src adapters.Source, pub adapters.Publisher) *running {
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- src.Run(ctx, pub) }()
	return r
}

// stop cancels Run and checks it returns nil (the contract) in time.
func (r *running) stop(t testing.TB) {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("Run returned %v when its context was cancelled, want nil", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Run did not return within 60s of its context being cancelled")
	}
}

func sourceSuite(t *testing.T, env *Env, h SourceHarness) {
	sourceOf := func(t *testing.T) adapters.Source {
		inst := build(t, env, h)
		if inst.Source == nil {
			t.Fatalf("the harness's block built no source")
		}
		return inst.Source
	}
	// letterOf finds the confirmed letter made from input n.
	letterOf := func(p *Publisher, n int) *letter.Letter {
		for _, l := range p.Confirmed() {
			if m, ok := h.Item(l); ok && m == n {
				return l
			}
		}
		return nil
	}
	// acked checks the rule at every look: an input seen acknowledged
	// must have a confirmed letter in one of pubs.
	acked := func(t *testing.T, n int, pubs ...*Publisher) bool {
		t.Helper()
		if !h.Acknowledged(t, n) {
			return false
		}
		for _, p := range pubs {
			if letterOf(p, n) != nil {
				return true
			}
		}
		t.Fatalf("input %d was acknowledged in its system, but no store of its letter was confirmed", n)
		return true
	}

	t.Run("acknowledged-only-after-the-store-confirms", func(t *testing.T) {
		h.Put(t, 1)
		entered, release := make(chan struct{}), make(chan struct{})
		var once sync.Once
		pub := NewPublisher()
		pub.Hook = func(ctx context.Context, l *letter.Letter) error {
			if n, _ := h.Item(l); n != 1 {
				return nil
			}
			once.Do(func() { close(entered) })
			select {
			case <-release:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		r := start(sourceOf(t), pub)
		defer r.stop(t)
		select {
		case <-entered:
		case <-time.After(60 * time.Second):
			t.Fatal("the source offered no letter for the input within 60s")
		}
		for range 10 { // while the store has not answered
			if h.Acknowledged(t, 1) {
				t.Fatal("the input was acknowledged while its store had not been confirmed")
			}
			time.Sleep(50 * time.Millisecond)
		}
		close(release)
		eventually(t, "the input acknowledged once its store was confirmed", func() bool { return acked(t, 1, pub) })
	})

	t.Run("crash-between-store-and-acknowledgement-repeats-the-letter", func(t *testing.T) {
		h.Put(t, 2)
		crashed := make(chan struct{})
		var once sync.Once
		first := NewPublisher()
		var firstID string
		first.Hook = func(ctx context.Context, l *letter.Letter) error {
			if n, _ := h.Item(l); n != 2 {
				return nil
			}
			first.Store(l) // the write landed...
			once.Do(func() { firstID = l.ID; close(crashed) })
			<-ctx.Done() // ...and the process died before the answer
			return ctx.Err()
		}
		r := start(sourceOf(t), first)
		select {
		case <-crashed:
		case <-time.After(60 * time.Second):
			t.Fatal("the source offered no letter for the input within 60s")
		}
		r.stop(t)
		if h.Acknowledged(t, 2) {
			t.Fatal("the input was acknowledged though its store was never confirmed")
		}
		second := NewPublisher()
		r = start(sourceOf(t), second)
		defer r.stop(t)
		eventually(t, "the input acknowledged after the restart", func() bool { return acked(t, 2, second) })
		if l := letterOf(second, 2); l == nil || l.ID != firstID {
			t.Errorf("after the crash the input became letter %v, before it %q: the broker could not drop the copy", l, firstID)
		}
	})

	t.Run("refused-store-is-retried", func(t *testing.T) {
		h.Put(t, 3)
		pub := NewPublisher()
		var mu sync.Mutex
		refused := 0
		pub.Hook = func(ctx context.Context, l *letter.Letter) error {
			if n, _ := h.Item(l); n != 3 {
				return nil
			}
			mu.Lock()
			defer mu.Unlock()
			if refused < 2 {
				refused++
				return adapters.Retryable("store_unavailable", "the letter store did not answer", nil)
			}
			return nil
		}
		r := start(sourceOf(t), pub)
		defer r.stop(t)
		eventually(t, "the input stored and acknowledged after two refused stores", func() bool { return acked(t, 3, pub) })
		if l := letterOf(pub, 3); pub.Offered(l.ID) < 3 {
			t.Errorf("letter offered %d times, want the two refused and the stored one", pub.Offered(l.ID))
		}
	})

	t.Run("shutdown-mid-round-loses-nothing", func(t *testing.T) {
		items := []int{10, 11, 12, 13, 14}
		for _, n := range items {
			h.Put(t, n)
		}
		first := NewPublisher()
		var mu sync.Mutex
		ctx, shutdown := context.WithCancel(context.Background())
		stored := 0
		first.Hook = func(ctx context.Context, l *letter.Letter) error {
			mu.Lock()
			if stored < 2 {
				stored++
				mu.Unlock()
				return nil
			}
			mu.Unlock()
			shutdown() // the hub stops while the round goes on
			<-ctx.Done()
			return ctx.Err()
		}
		r := startWith(ctx, shutdown, sourceOf(t), first)
		eventually(t, "two letters stored before the shutdown", func() bool { return len(first.Confirmed()) >= 2 })
		r.stop(t)
		for _, n := range items {
			acked(t, n, first) // fails on an input acknowledged without its store
		}
		second := NewPublisher()
		r2 := start(sourceOf(t), second)
		defer r2.stop(t)
		for _, n := range items {
			eventually(t, "every input handled after the restart", func() bool { return acked(t, n, first, second) })
		}
	})
}
