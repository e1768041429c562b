package logbuf

import (
	"fmt"
	"sync"
	"testing"
)

// Writers in many goroutines and a reader at once: every line arrives
// whole, and Lines and Count find them (run with -race).
func TestBufferTakesConcurrentWriters(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 100 {
				fmt.Fprintf(&b, "writer %d line %d\n", i, j)
				_ = b.Count("writer")
			}
		})
	}
	wg.Wait()
	if n := b.Count("writer "); n != 800 {
		t.Errorf("Count = %d, want 800", n)
	}
	got := b.Lines("writer 3 ")
	if len(got) != 100 {
		t.Fatalf("Lines(writer 3) = %d lines, want 100", len(got))
	}
	if got[0] != "writer 3 line 0" {
		t.Errorf("Lines(writer 3)[0] = %q, want the first line written", got[0])
	}
}
