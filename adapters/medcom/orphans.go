package medcom

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
)

// A try that fails and is never finished can leave a letter's text behind:
// a letter staged in out/ whose outbox entry never landed (Deliver), a
// copy kept for resends of a letter that never reached the outbox
// (keepCopy), the temp file of a write cut short by a crash. A letter
// parked and then discarded is never tried again, so nothing would remove
// them. They hold a child's health information where nothing will read
// it, so the acknowledgement check sweeps them (sweepOrphans).

// orphanAfter is how long such a file may lie with nothing naming it
// before it goes: far longer than a delivery try takes from writing it to
// recording it in the outbox (a try is bounded by the sink timeout), so a
// file this old with no outbox entry naming it belongs to no try in
// progress. A later try of the same letter writes its own afresh.
const orphanAfter = time.Hour

// sweepEvery spaces the sweeps: each lists out/, the kept copies and
// processed/ (expireProcessed).
const sweepEvery = 5 * time.Minute

// tempName matches the names the adapter writes under before a rename
// (writeFile, stageBody): "." + name + "." + 12 hex digits + ".tmp". No
// other name in out/ is touched: out/ is shared with the VANS client.
var tempName = regexp.MustCompile(`^\..+\.[0-9a-f]{12}\.tmp$`)

// sweeper remembers when the last sweep ran.
type sweeper struct {
	mu   sync.Mutex
	last time.Time
}

// due reports whether a sweep is due now, and if so counts it as run.
func (s *sweeper) due(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.last.IsZero() && now.Sub(s.last) < sweepEvery {
		return false
	}
	s.last = now
	return true
}

// sweepOrphans removes from out/ the temp files no outbox entry names, and
// from the resend copies those of letters the outbox does not hold, each
// when older than orphanAfter. staged and held are taken from the outbox
// (its entries' Staged files, and their letters' copyStem). Ages are the
// file system's, against the wall clock.
func (a *Adapter) sweepOrphans(staged, held map[string]bool) {
	removed := 0
	old := func(e os.DirEntry) bool {
		fi, err := e.Info()
		return err == nil && fi.Mode().IsRegular() && time.Since(fi.ModTime()) > orphanAfter
	}
	if ents, err := os.ReadDir(a.out); err == nil {
		for _, e := range ents {
			if n := e.Name(); tempName.MatchString(n) && !staged[n] && old(e) {
				if os.Remove(filepath.Join(a.out, n)) == nil {
					removed++
				}
			}
		}
	}
	for _, sent := range []string{a.sent, a.oldSent} {
		ents, err := os.ReadDir(sent)
		if sent == "" || err != nil {
			continue
		}
		for _, e := range ents {
			n := e.Name()
			stem := strings.TrimSuffix(n, ".json")
			if i := strings.LastIndex(n, ".att-"); i > 0 {
				stem = n[:i]
			}
			if (tempName.MatchString(n) || !held[stem]) && old(e) {
				if os.Remove(filepath.Join(sent, n)) == nil {
					removed++
				}
			}
		}
	}
	if removed > 0 {
		a.log.Info("medcom: removed files left by deliveries never finished", "files", removed, "older_than", orphanAfter)
	}
}

// expireProcessed removes handled inbound files that have been in
// processed/ longer than processed_max_age: each holds a child's letter,
// which the hub itself keeps no longer than its letter retention. Nothing
// reads processed/; error/ is left alone, as a coordinator may still put
// a refused file back.
func (a *Adapter) expireProcessed() {
	if a.cfg.ProcessedMaxAge <= 0 {
		return
	}
	ents, err := os.ReadDir(a.processed)
	if err != nil {
		return
	}
	removed := 0
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil || !fi.Mode().IsRegular() || time.Since(movedAt(fi)) <= a.cfg.ProcessedMaxAge {
			continue
		}
		if os.Remove(filepath.Join(a.processed, e.Name())) == nil {
			removed++
		}
	}
	if removed > 0 {
		a.log.Info("medcom: removed handled files past processed_max_age", "files", removed, "processed_max_age", a.cfg.ProcessedMaxAge)
	}
}
