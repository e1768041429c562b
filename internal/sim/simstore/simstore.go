// Package simstore is how the simulators keep their state on disk as the
// systems they stand for do: an answered write is on disk (files synced
// before their rename, directories synced before the answer), and writers
// that arrive together share one save, as a database's group commit does.
// A simulator that forgot an acknowledged write after a crash would be
// kinder than the real system, and a test could not see a double
// delivery that the real one would store.
package simstore

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
)

// WriteFile writes data to path: a temp file beside it, synced, then
// renamed into place. The directory is synced now when dirs is nil, else
// added to dirs for the caller to sync once for all the files it writes
// (SyncDirs).
func WriteFile(path string, data []byte, dirs map[string]bool) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if dirs != nil {
		dirs[dir] = true
		return nil
	}
	return SyncDir(dir)
}

// SyncDir makes the names in dir durable (a rename or a new file in it).
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// SyncDirs syncs each directory WriteFile collected.
func SyncDirs(dirs map[string]bool) error {
	for dir := range dirs {
		if err := SyncDir(dir); err != nil {
			return err
		}
	}
	return nil
}

// ErrClosed is Commit's answer once Close was called.
var ErrClosed = errors.New("the simulator is closed")

// GroupCommit runs a simulator's saves one at a time. A change made in
// memory under the simulator's own lock is numbered (Changed); Commit
// returns once a save has covered it. The changes made while one save
// waits for the disk are saved together by the next, so concurrent
// writers share the fsyncs, and reads are answered meanwhile.
type GroupCommit struct {
	run     sync.Mutex // one save at a time
	closed  bool       // under run
	changed uint64     // under the simulator's lock
	saved   uint64     // under the simulator's lock
}

// Changed numbers a change just made in memory; the caller holds the
// simulator's lock (the one it passes to Commit).
func (g *GroupCommit) Changed() uint64 {
	g.changed++
	return g.changed
}

// Current is the number of the last change made in memory; the caller
// holds the simulator's lock. Committing it waits for every change seen.
func (g *GroupCommit) Current() uint64 { return g.changed }

// Save is what one save does. Prepare runs under the simulator's lock
// and takes what changed (the bytes made now); Write puts it on disk
// without the lock; Done runs under the lock again with Write's error, to
// record what is now durable.
type Save interface {
	Write() error
	Done(err error)
}

// Commit returns once change gen is on disk. mu is the simulator's lock,
// not held by the caller; prepare runs under it.
func (g *GroupCommit) Commit(mu sync.Locker, gen uint64, prepare func() (Save, error)) error {
	g.run.Lock()
	defer g.run.Unlock()
	if g.closed {
		return ErrClosed
	}
	mu.Lock()
	if g.saved >= gen {
		mu.Unlock()
		return nil
	}
	upTo := g.changed
	sv, err := prepare()
	mu.Unlock()
	if err != nil {
		return err
	}
	err = sv.Write()
	mu.Lock()
	defer mu.Unlock()
	sv.Done(err)
	if err != nil {
		return err
	}
	g.saved = upTo
	return nil
}

// Lock holds saves off, for a write that saves by itself (a test's
// seeding); Unlock lets them run again.
func (g *GroupCommit) Lock()   { g.run.Lock() }
func (g *GroupCommit) Unlock() { g.run.Unlock() }

// Close waits for a save in progress and lets none start after it: the
// simulator's data directory may go next. Open undoes it (a restart).
func (g *GroupCommit) Close() {
	g.run.Lock()
	g.closed = true
	g.run.Unlock()
}

// Open lets saves run again after Close.
func (g *GroupCommit) Open() {
	g.run.Lock()
	g.closed = false
	g.run.Unlock()
}
