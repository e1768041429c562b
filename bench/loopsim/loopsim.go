// Package loopsim runs lean loopback stand-ins for the systems around the
// hub (case system, regional EPJ gateway, SMTP relay) for the throughput
// benchmark. They answer exactly the calls the hub's sinks make, keep what
// they receive in indexed memory and record when each letter arrived.
//
// Why not internal/sim: those simulators persist a full JSON snapshot of
// their state on every write (the EPJ one including every letter's text),
// which is right for functional tests with tens of objects but makes each
// request cost O(letters stored so far); at thousands of letters they, not
// the hub, would set the pace.
package loopsim

import (
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Arrivals records the first arrival time of each key and counts them.
type Arrivals struct {
	mu    sync.Mutex
	at    map[string]time.Time
	count atomic.Int64
}

func newArrivals() *Arrivals { return &Arrivals{at: map[string]time.Time{}} }

// Mark records key's arrival at now unless it arrived before.
func (a *Arrivals) Mark(key string) {
	now := time.Now()
	a.mu.Lock()
	if _, ok := a.at[key]; !ok {
		a.at[key] = now
		a.count.Add(1)
	}
	a.mu.Unlock()
}

// Count is how many distinct keys arrived.
func (a *Arrivals) Count() int { return int(a.count.Load()) }

// At returns when key arrived.
func (a *Arrivals) At(key string) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t, ok := a.at[key]
	return t, ok
}

// Reset forgets every arrival.
func (a *Arrivals) Reset() {
	a.mu.Lock()
	a.at = map[string]time.Time{}
	a.count.Store(0)
	a.mu.Unlock()
}

// Digests records, per letter, the SHA-256 of each file a destination got
// (hex), so a benchmark can tell that a large attachment arrived intact.
// The files themselves are hashed as they stream in and never kept.
type Digests struct {
	mu sync.Mutex
	m  map[string][]string
}

func newDigests() *Digests { return &Digests{m: map[string][]string{}} }

// Set records the digests of what key's delivery carried.
func (d *Digests) Set(key string, sums []string) {
	d.mu.Lock()
	d.m[key] = sums
	d.mu.Unlock()
}

// Has reports whether key's delivery carried a file with digest sum.
func (d *Digests) Has(key, sum string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Contains(d.m[key], sum)
}

// hashing hashes what is written to it.
type hashing struct{ h hash.Hash }

func newHashing() *hashing { return &hashing{h: sha256.New()} }

func (w *hashing) Write(p []byte) (int, error) { return w.h.Write(p) }

// ReadFrom copies with a pooled buffer: io.Copy's own is 32 KB new per
// part, which the stand-ins would otherwise allocate for every letter.
func (w *hashing) ReadFrom(r io.Reader) (int64, error) {
	buf := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(buf)
	return io.CopyBuffer(w.h, r, *buf)
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (w *hashing) sum() string { return hex.EncodeToString(w.h.Sum(nil)) }
