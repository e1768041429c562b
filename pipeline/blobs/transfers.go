package blobs

import (
	"runtime"
	"runtime/debug"
	"sync"
)

// Why the store lowers Go's soft memory limit while parts move through it:
// streaming keeps the hub from holding a part (no whole copy is kept
// anywhere), but every megabyte moved through JetStream is copied several
// times on its way (the client's and the server's buffers for each chunk,
// the server's file-store blocks): about ten bytes of short-lived garbage
// per byte stored and read back, which the collector, paced by
// gc_percent, let pile up to 70–90 MB above an idle hub for one 20 MB
// attachment (docs/performance.md). While any transfer runs, the limit is
// the hub's footprint when the first one began plus a budget
// (pipeline.blob_memory), so the collector runs as often as that budget
// needs, for those seconds only, and however many letters arrive at once.
// A limit set before (GOMEMLIMIT) is kept when it is lower, and restored
// when the last transfer ends. The cost is CPU while large parts move;
// the budget trades it (0 turns the limit off).

// transfers counts the blob transfers in progress in this process (the
// memory limit is the process's, whatever store started them).
var transfers = &transferLimit{}

type transferLimit struct {
	mu     sync.Mutex
	budget int64 // 0: no limit of ours
	active int
	prev   int64 // the limit before the first transfer
}

// SetTransferMemory sets the budget over the footprint that transfers may
// take (pipeline.blob_memory); 0 leaves Go's memory limit alone. It
// applies from the next transfer that starts when none runs.
func SetTransferMemory(n int64) {
	transfers.mu.Lock()
	transfers.budget = max(n, 0)
	transfers.mu.Unlock()
}

// begin marks a transfer as started and returns what ends it (safe to call
// more than once).
func (t *transferLimit) begin() (end func()) {
	t.mu.Lock()
	t.active++
	if t.active == 1 && t.budget > 0 {
		// The footprint of live memory: what a collection leaves, without
		// the free heap the runtime has not yet given back (the limit
		// makes it give that back first).
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		cur := debug.SetMemoryLimit(-1)
		t.prev = cur
		limit := int64(ms.Sys-ms.HeapIdle) + t.budget
		if cur < limit {
			limit = cur
		}
		debug.SetMemoryLimit(limit)
	}
	t.mu.Unlock()
	var once sync.Once
	return func() { once.Do(t.end) }
}

func (t *transferLimit) end() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.active--
	if t.active == 0 && t.prev != 0 {
		debug.SetMemoryLimit(t.prev)
		t.prev = 0
	}
}
