package blobs

import (
	"math"
	"runtime/debug"
	"testing"
)

// While transfers run, Go's memory limit is the footprint plus the budget;
// after the last one it is what it was. A lower limit set before (an
// operator's GOMEMLIMIT) is kept.
func TestTransferMemoryLimitIsScopedToTransfers(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before); SetTransferMemory(0) })

	SetTransferMemory(16 << 20)
	end1 := transfers.begin()
	during := debug.SetMemoryLimit(-1)
	if during == math.MaxInt64 || during == before {
		t.Fatalf("no limit while a transfer runs (%d)", during)
	}
	end2 := transfers.begin() // a second at once shares it
	if got := debug.SetMemoryLimit(-1); got != during {
		t.Errorf("a second transfer moved the limit: %d → %d", during, got)
	}
	end1()
	end1() // ending twice is harmless
	if got := debug.SetMemoryLimit(-1); got != during {
		t.Errorf("the limit was lifted while a transfer still runs")
	}
	end2()
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Errorf("after the transfers the limit is %d, want %d again", got, before)
	}

	debug.SetMemoryLimit(1 << 20) // lower than any footprint + budget
	end := transfers.begin()
	if got := debug.SetMemoryLimit(-1); got != 1<<20 {
		t.Errorf("a lower limit set before became %d", got)
	}
	end()
	debug.SetMemoryLimit(before)

	SetTransferMemory(0)
	end = transfers.begin()
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Errorf("with no budget the limit changed to %d", got)
	}
	end()
}
