package adapters

import (
	"runtime/debug"
	"sync/atomic"
	"time"
)

// handBackPending is set while HandBackMemory's later round is scheduled.
var handBackPending atomic.Bool

// HandBackLater is how long after HandBackMemory it runs once more, and
// HandBackLast the last time.
const (
	HandBackLater = 15 * time.Second
	HandBackLast  = 45 * time.Second
)

// HandBackMemory gives the memory of a large or hostile input back to the
// system at once (one collection), once more HandBackLater after, when
// what the input left in caches is garbage too (the embedded store keeps
// the blocks it wrote for 10 s), and a last time HandBackLast after, when
// the letters it let through (a stored attachment the destinations read
// back from the blob store) are delivered and their buffers garbage too. An
// idle hub collects rarely and would otherwise keep that memory for
// minutes (issue 19: back within 20 % of idle within a minute). Sources
// call it after such input only, so it costs nothing in normal running;
// calls while the later rounds are pending share them.
func HandBackMemory() {
	debug.FreeOSMemory()
	if handBackPending.CompareAndSwap(false, true) {
		time.AfterFunc(HandBackLater, debug.FreeOSMemory)
		time.AfterFunc(HandBackLast, func() {
			handBackPending.Store(false)
			debug.FreeOSMemory()
		})
	}
}
