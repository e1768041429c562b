package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// writeHealth remembers whether JetStream is refusing the hub's writes. A
// full disk leaves stream and account info answering while every publish
// fails, so readiness must look at writes, not only at reads.
type writeHealth struct {
	mu       sync.Mutex
	failing  time.Time // first failure since the last success; zero when healthy
	lastErr  string
	failures int
}

func (w *writeHealth) observe(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err == nil {
		w.failing, w.lastErr, w.failures = time.Time{}, "", 0
		return
	}
	if errors.Is(err, context.Canceled) {
		return
	}
	if w.failing.IsZero() {
		w.failing = time.Now()
	}
	w.failures++
	w.lastErr = err.Error()
}

func (w *writeHealth) check() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failing.IsZero() {
		return nil
	}
	return fmt.Errorf("JetStream has refused %d writes since %s (last: %s); letters stay at their sources until it stores again", w.failures, w.failing.UTC().Format(time.RFC3339), w.lastErr)
}
