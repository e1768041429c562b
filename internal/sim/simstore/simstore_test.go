package simstore_test

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/samhub/samhub/internal/sim/simstore"
)

// sim is the smallest simulator: a counter of changes, saved by a write
// that takes a while.
type sim struct {
	mu      sync.Mutex
	gc      simstore.GroupCommit
	made    int // changes in memory
	onDisk  int // changes a finished save covered
	writes  int
	failing bool
}

type save struct {
	s    *sim
	upTo int
}

func (sv save) Write() error {
	time.Sleep(5 * time.Millisecond)
	if sv.s.failing {
		return errors.New("disk full")
	}
	return nil
}

func (sv save) Done(err error) {
	sv.s.writes++
	if err == nil {
		sv.s.onDisk = sv.upTo
	}
}

func (s *sim) change() error {
	s.mu.Lock()
	s.made++
	mine := s.made
	gen := s.gc.Changed()
	s.mu.Unlock()
	err := s.gc.Commit(&s.mu, gen, func() (simstore.Save, error) { return save{s, s.made}, nil })
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil && s.onDisk < mine {
		return errors.New("answered before its change was on disk")
	}
	return err
}

// TestCommitWaitsForItsChangeAndSharesSaves: each writer returns only once
// a save covered its change, and writers arriving during a save share the
// next one.
func TestCommitWaitsForItsChangeAndSharesSaves(t *testing.T) {
	s := &sim{}
	const n = 16
	start := make(chan struct{})
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			<-start
			errs <- s.change()
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if s.onDisk != n {
		t.Errorf("%d changes on disk, want %d", s.onDisk, n)
	}
	if s.writes >= n {
		t.Errorf("%d saves for %d changes made together: none shared", s.writes, n)
	}
}

// TestAFailedSaveIsReportedAndTheNextCoversIt; Close refuses saves until
// Open.
func TestAFailedSaveIsReportedAndTheNextCoversIt(t *testing.T) {
	s := &sim{failing: true}
	if err := s.change(); err == nil {
		t.Fatal("a failed save was not reported")
	}
	s.failing = false
	if err := s.change(); err != nil || s.onDisk != 2 {
		t.Fatalf("the next save: %v, %d changes on disk, want 2", err, s.onDisk)
	}
	s.gc.Close()
	if err := s.change(); !errors.Is(err, simstore.ErrClosed) {
		t.Errorf("a save after Close: %v, want ErrClosed", err)
	}
	s.gc.Open()
	if err := s.change(); err != nil || s.onDisk != 4 {
		t.Errorf("after Open: %v, %d on disk, want 4", err, s.onDisk)
	}
}

func TestWriteFileLeavesNoTempFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sub")
	dirs := map[string]bool{}
	if err := simstore.WriteFile(filepath.Join(dir, "a.json"), []byte(`{"a":1}`), dirs); err != nil {
		t.Fatal(err)
	}
	if err := simstore.WriteFile(filepath.Join(dir, "a.json"), []byte(`{"a":2}`), dirs); err != nil {
		t.Fatal(err)
	}
	if err := simstore.SyncDirs(dirs); err != nil || !dirs[dir] {
		t.Fatalf("sync %v: %v", dirs, err)
	}
	ents, _ := os.ReadDir(dir)
	if b, _ := os.ReadFile(filepath.Join(dir, "a.json")); len(ents) != 1 || string(b) != `{"a":2}` {
		t.Errorf("%d files, a.json %q; want one file with the second write", len(ents), b)
	}
}
