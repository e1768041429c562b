package email

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/pipeline/letter"

	"github.com/samhub/samhub/adapters/adaptertest"
)

// memState is the shared in-memory StateStore.
type memState = adaptertest.State

func newMemState() *memState { return adaptertest.NewState() }

// recPublisher records letters and, like JetStream's duplicate window,
// stores a letter id only once.
type recPublisher struct {
	mu      sync.Mutex
	calls   int
	byID    map[string]*letter.Letter
	order   []string
	fail    error                                       // returned instead of storing, when set
	onStore func(ctx context.Context, l *letter.Letter) // runs after storing
}

func newRecPublisher() *recPublisher { return &recPublisher{byID: map[string]*letter.Letter{}} }

func (p *recPublisher) Publish(ctx context.Context, l *letter.Letter) error {
	p.mu.Lock()
	p.calls++
	if p.fail != nil {
		err := p.fail
		p.mu.Unlock()
		return err
	}
	if _, dup := p.byID[l.ID]; !dup {
		p.byID[l.ID] = l
		p.order = append(p.order, l.ID)
	}
	hook := p.onStore
	p.mu.Unlock()
	if hook != nil {
		hook(ctx, l)
	}
	return nil
}

func (p *recPublisher) setFail(err error) {
	p.mu.Lock()
	p.fail = err
	p.mu.Unlock()
}

func (p *recPublisher) letters() []*letter.Letter {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*letter.Letter, 0, len(p.order))
	for _, id := range p.order {
		out = append(out, p.byID[id])
	}
	return out
}

func (p *recPublisher) callCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

// waitFor polls cond until it holds or 10 s pass; it measures nothing.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func testDeps(name string, state adapters.StateStore) adapters.Deps {
	return adapters.Deps{
		Name:   name,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		State:  state,
		Now:    func() time.Time { return time.Date(2025, 6, 2, 12, 0, 0, 0, time.UTC) },
	}
}

func asAdapterError(t *testing.T, err error) *adapters.Error {
	t.Helper()
	var ae *adapters.Error
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v, want a classified *adapters.Error", err)
	}
	return ae
}
