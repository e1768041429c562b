package medcom

import (
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// When is a file in in/ complete? VANS clients, scanners and network shares
// do not all write a temporary name and rename it: many create the file
// under its final name and write it in chunks, some with pauses (issue 19:
// a plain cp of 30 letters sent 7 to error/ half-written). A file is taken
// when one of these holds and no writer has it open:
//
//   - it arrived by rename (inotify IN_MOVED_TO, Linux): a rename moves a
//     finished file, so it is taken at once;
//   - its size and modification time have not changed for settle_time
//     while the hub watched it;
//   - its modification time is settle_time old when first seen, and the
//     no-writer check works on this file (a local file system): a file moved
//     in from elsewhere, or left from before a restart.
//
// "No writer has it open" is a read lease (fcntl F_SETLEASE F_RDLCK) that
// the kernel refuses while any process holds the file open for writing; it
// costs an open and two fcntl calls (about 6 µs) and is taken only for a
// file that passed the other checks. Where leases do not work (another
// owner without CAP_LEASE, NFS/CIFS, non-Linux systems) the hub relies on
// the settle time alone, which then must exceed the writers' longest pause.

// staleAfter is how old a partial file (a dot-file or *.tmp) may grow before
// it is reported: its writer has most likely died.
const staleAfter = 24 * time.Hour

// Codes of files in in/ the hub does not read (samhub_medcom_files_ignored_total).
const (
	ignoreSymlink    = "symlink"
	ignoreNotRegular = "not_regular"
	ignoreStale      = "stale_temp"
	ignoreUnreadable = "unreadable"
)

var ignoreReasons = map[string]string{
	ignoreSymlink:    "a symbolic link: the hub reads only regular files, a link could point anywhere",
	ignoreNotRegular: "not a regular file (a directory, pipe or device)",
	ignoreStale:      "a partial file (dot-file or .tmp) unchanged for more than a day: its writer seems to have stopped",
	ignoreUnreadable: "the hub may not read it (file permissions)",
}

// probe says whether a writer holds a file open.
type probe int

const (
	probeFree       probe = iota // no writer; the check works here
	probeBusy                    // a process has it open for writing
	probeUnknown                 // the check does not work on this file
	probeUnreadable              // it cannot be opened for reading
	probeGone                    // it vanished or became something else
)

// observed is what the hub last saw of a file written in place.
type observed struct {
	size  int64
	mtime time.Time
	ino   uint64
	since time.Time // when the hub first saw this size and mtime
}

// arrivals is what the hub knows about the files in in/ between polls.
type arrivals struct {
	mu      sync.Mutex
	renamed map[string]uint64 // names that arrived by rename since last seen, with the mark's number (the watch writes it)
	marks   uint64            // numbers the marks, so a listing forgets only marks older than itself

	seen    map[string]observed // poll loop only
	ignored map[string]string   // name -> code already logged and counted
}

func (r *arrivals) markRenamed(name string, renamed bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.renamed == nil {
		r.renamed = map[string]uint64{}
	}
	r.marks++
	if renamed {
		r.renamed[name] = r.marks
	} else {
		delete(r.renamed, name)
	}
}

// mark is the number of the newest mark: a listing begun now forgets no
// mark made after it.
func (r *arrivals) mark() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.marks
}

func (r *arrivals) wasRenamed(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.renamed[name] != 0
}

// forgetRenames drops marks of names no longer in in/, made up to mark
// (before the listing present comes from began): a file renamed in while
// the directory was being listed is missing from that listing but keeps
// its mark for the next.
func (r *arrivals) forgetRenames(present map[string]bool, mark uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for n, m := range r.renamed {
		if !present[n] && m <= mark {
			delete(r.renamed, n)
		}
	}
}

// entryInfo stats a file of in/. A variable so a test can count the stats.
var entryInfo = func(e fs.DirEntry) (fs.FileInfo, error) { return e.Info() }

// readyFile is a complete file in in/ and its size.
type readyFile struct {
	name string
	size int64
}

// scan lists in/ and returns the complete files, sorted by name, and how
// soon a file still settling may become complete (0: none is waiting).
// It returns at most limit+1 files (one more says there are more): the
// writer check of the rest waits for the rounds that take them, as
// checking a backlog of thousands on every round cost more than reading
// the files (a 5,000-file backlog: 0.8 of 13 CPU seconds in the bench).
func (a *Adapter) scan(now time.Time, limit int) (ready []readyFile, next time.Duration, err error) {
	listed := a.arrivals.mark()
	entries, err := os.ReadDir(a.in)
	if err != nil {
		return nil, 0, err
	}
	r := &a.arrivals
	if r.seen == nil {
		r.seen, r.ignored = map[string]observed{}, map[string]string{}
	}
	settle := a.cfg.SettleTime
	wait := func(d time.Duration) {
		d = max(d, 10*time.Millisecond)
		if next == 0 || d < next {
			next = d
		}
	}
	present := make(map[string]bool, len(entries))
	counted := 0 // ready files that count towards limit
	for _, e := range entries {
		name := e.Name()
		present[name] = true
		partial := strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".tmp")
		switch typ := e.Type(); {
		case typ&fs.ModeSymlink != 0:
			a.ignore(name, ignoreSymlink)
			continue
		case !typ.IsRegular():
			if !strings.HasPrefix(name, ".") { // .snapshot and the like are nobody's letters
				a.ignore(name, ignoreNotRegular)
			}
			continue
		case partial:
			if fi, err := e.Info(); err == nil && now.Sub(fi.ModTime()) > staleAfter {
				a.ignore(name, ignoreStale)
			} else {
				delete(r.ignored, name)
			}
			continue
		}
		if _, known := r.seen[name]; known && counted > limit {
			// This round is full and the file's timer runs: it is looked at
			// again (changed since?) when a round can take it. Not stat'ing
			// a backlog's every file on every round saves a stat per file
			// and round, quadratic in the backlog after an outage.
			continue
		}
		fi, err := entryInfo(e)
		if err != nil {
			continue // gone since the listing
		}
		ino := fileID(fi)
		o, ok := r.seen[name]
		if !ok || o.size != fi.Size() || !o.mtime.Equal(fi.ModTime()) || o.ino != ino {
			o = observed{size: fi.Size(), mtime: fi.ModTime(), ino: ino, since: now}
			r.seen[name] = o
		}
		renamed := r.wasRenamed(name)
		stable := now.Sub(o.since) >= settle
		quiet := now.Sub(o.mtime) >= settle
		if !renamed && !stable && !quiet {
			wait(min(settle-now.Sub(o.since), settle-now.Sub(o.mtime)))
			continue
		}
		if counted > limit {
			continue // seen and timed above; checked when a round can take it
		}
		switch writerCheck(filepath.Join(a.in, name)) {
		case probeUnreadable:
			a.ignore(name, ignoreUnreadable)
			continue
		case probeGone:
			continue
		case probeBusy:
			// A writer still has it: it is not complete, whatever its
			// times say. Its close wakes the loop (IN_CLOSE_WRITE).
			r.seen[name] = observed{size: o.size, mtime: o.mtime, ino: o.ino, since: now}
			wait(settle)
			continue
		case probeUnknown:
			if !renamed && !stable {
				wait(settle - now.Sub(o.since)) // file times alone are not trusted here
				continue
			}
		}
		delete(r.ignored, name)
		ready = append(ready, readyFile{name: name, size: o.size})
		if _, waits := a.waitingUntil(name, now); !waits {
			counted++ // files waiting for a partner take no room (binaries.go)
		}
	}
	for n := range r.seen {
		if !present[n] {
			delete(r.seen, n)
		}
	}
	for n := range r.ignored {
		if !present[n] {
			delete(r.ignored, n)
		}
	}
	r.forgetRenames(present, listed)
	sort.Slice(ready, func(i, j int) bool { return ready[i].name < ready[j].name })
	return ready, next, nil
}

// claimed forgets what was known about a file taken from in/: a file of the
// same name that arrives later is a new file.
func (a *Adapter) claimed(name string) {
	delete(a.arrivals.seen, name)
	a.arrivals.markRenamed(name, false)
}

// ignore logs and counts a file in in/ the hub does not read, once for as
// long as it stays what it is.
func (a *Adapter) ignore(name, code string) {
	if a.arrivals.ignored[name] == code {
		return
	}
	a.arrivals.ignored[name] = code
	a.ignoredFiles.WithLabelValues(code).Inc()
	a.log.Warn("medcom: a file in in/ is not read", "file", name, "code", code, "reason", ignoreReasons[code])
}
