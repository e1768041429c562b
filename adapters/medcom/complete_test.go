package medcom

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/internal/logbuf"
)

// runAdapter runs a's source loop until the test ends.
func runAdapter(t *testing.T, a *Adapter, pub adapters.Publisher) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, pub) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
}

// untouched fails if name has left in/ (claimed, processed or rejected).
func (e *env) untouched(t *testing.T, name, when string) {
	t.Helper()
	for _, sub := range []string{"processing", "processed", "error"} {
		if _, err := os.Stat(filepath.Join(e.dir, sub, name)); err == nil {
			t.Fatalf("%s: %s was taken into %s/ before it was complete", when, name, sub)
		}
	}
}

func (e *env) waitProcessed(t *testing.T, name string) {
	t.Helper()
	eventually(t, name+" in processed/", func() bool {
		_, err := os.Stat(filepath.Join(e.dir, "processed", name))
		return err == nil
	})
	if got := e.files(t, "error"); len(got) != 0 {
		t.Fatalf("error/ holds %v", got)
	}
}

// A writer that keeps the file open through a pause longer than the settle
// time: the file's size and time are stable, but the writer still holds it,
// so it is not taken until the writer closes it.
func TestFileHeldOpenByItsWriterIsNotTaken(t *testing.T) {
	e := newEnv(t)
	a := e.adapter(t, map[string]any{"settle_time": "300ms", "poll_interval": "20ms"})
	pub := newPub()
	runAdapter(t, a, pub)
	data := readFile(t, "samhub/letter-utf8.xml")
	f, err := os.Create(filepath.Join(e.dir, "in", "held.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data[:len(data)/2]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1200 * time.Millisecond) // four settle times
	e.untouched(t, "held.xml", "with its writer still holding it")
	if _, err := f.Write(data[len(data)/2:]); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	e.waitProcessed(t, "held.xml")
	if got := pub.ids(); len(got) != 1 {
		t.Fatalf("published %v", got)
	}
	sameBytes(t, "stored original", pub.letter(0).Original.Data, data)
}

// A writer that closes the file between its two halves: nobody holds it in
// the pause, so only the settle time keeps the half file from being taken.
func TestFileWrittenInTwoGoesWaitsForTheSettleTime(t *testing.T) {
	e := newEnv(t)
	a := e.adapter(t, map[string]any{"poll_interval": "20ms"}) // default settle time, 2s
	pub := newPub()
	runAdapter(t, a, pub)
	data := readFile(t, "samhub/letter-utf8.xml")
	path := filepath.Join(e.dir, "in", "halves.xml")
	if err := os.WriteFile(path, data[:len(data)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	e.untouched(t, "halves.xml", "between the two halves")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data[len(data)/2:]); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	e.waitProcessed(t, "halves.xml")
	sameBytes(t, "stored original", pub.letter(0).Original.Data, data)
}

// A file renamed into in/ is complete and taken at once, whether it was
// written under a temporary name in in/ or moved in from elsewhere; a file
// written in place waits for the settle time (an hour here).
func TestRenamedFileIsTakenAtOnce(t *testing.T) {
	if !inotifyRenames {
		t.Skip("this system cannot tell a rename from a create")
	}
	e := newEnv(t)
	a := e.adapter(t, map[string]any{"settle_time": "1h", "poll_interval": "20ms"})
	pub := newPub()
	runAdapter(t, a, pub)
	// A first file, old enough to be taken without the watch, shows that
	// the loop runs, and so that its watch is set up.
	e.dropAged(t, "first.xml", readFile(t, "samhub/envelope-two-letters.xml"), 2*time.Hour)
	e.waitProcessed(t, "first.xml")
	data := readFile(t, "samhub/letter-utf8.xml")
	inPlace := filepath.Join(e.dir, "in", "inplace.xml")
	if err := os.WriteFile(inPlace, readFile(t, "samhub/letter-iso-8859-1.xml"), 0o600); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(e.dir, "in", ".renamed.xml.part")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(e.dir, "in", "renamed.xml")); err != nil {
		t.Fatal(err)
	}
	e.waitProcessed(t, "renamed.xml")
	outside := filepath.Join(t.TempDir(), "moved.xml")
	other := bytes.Replace(data, []byte("LTR00000000001"), []byte("LTR00000000077"), 1)
	if err := os.WriteFile(outside, other, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(outside, filepath.Join(e.dir, "in", "moved.xml")); err != nil {
		if errors.Is(err, syscall.EXDEV) {
			t.Skip("the temporary directory is on another file system")
		}
		t.Fatal(err)
	}
	e.waitProcessed(t, "moved.xml")
	e.untouched(t, "inplace.xml", "within the settle time")
	if got := pub.ids(); len(got) != 4 {
		t.Fatalf("published %v", got)
	}
}

// Symlinks, other non-regular files, partial files older than a day and
// unreadable files stay in in/, each logged once and counted once.
func TestFilesTheHubDoesNotReadAreLoggedOnceAndCounted(t *testing.T) {
	e := newEnv(t)
	log := &logbuf.Buffer{}
	cfg := map[string]any{"dir": e.dir, "self": map[string]any{"gln": "5790000000012", "sor": "123456789012345", "name": "Samrådet Odense"}}
	inst, err := adapters.Build(TypeName, adapters.Deps{Name: "medcom", State: e.state, Metrics: e.reg, Now: e.clock.now,
		Logger: slog.New(slog.NewTextHandler(log, nil)), DataDir: filepath.Join(e.dir, "data")}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	a := inst.(*Adapter)
	in := filepath.Join(e.dir, "in")
	data := readFile(t, "samhub/letter-utf8.xml")
	target := filepath.Join(t.TempDir(), "elsewhere.xml")
	if err := os.WriteFile(target, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(in, "link.xml")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(in, "folder"), 0o700); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-25 * time.Hour)
	for _, n := range []string{".abandoned.xml", "abandoned.xml.tmp", ".fresh.xml"} {
		if err := os.WriteFile(filepath.Join(in, n), data[:100], 0o600); err != nil {
			t.Fatal(err)
		}
		if n != ".fresh.xml" {
			if err := os.Chtimes(filepath.Join(in, n), old, old); err != nil {
				t.Fatal(err)
			}
		}
	}
	e.drop(t, "locked.xml", data)
	// The tests run as root, whom permissions do not stop: the probe's open
	// is made to fail as it does for a file the hub's user may not read.
	realOpen := openForProbe
	openForProbe = func(path string) (int, error) {
		if filepath.Base(path) == "locked.xml" {
			return -1, syscall.EACCES
		}
		return realOpen(path)
	}
	t.Cleanup(func() { openForProbe = realOpen })
	pub := newPub()
	for range 3 {
		a.Poll(context.Background(), pub)
	}
	if len(pub.letters) != 0 {
		t.Fatalf("published %v", pub.ids())
	}
	want := map[string]float64{ignoreSymlink: 1, ignoreNotRegular: 1, ignoreStale: 2, ignoreUnreadable: 1}
	for code, n := range want {
		if got := e.metric(t, "samhub_medcom_files_ignored_total", "code", code); got != n {
			t.Errorf("samhub_medcom_files_ignored_total{code=%q} = %v, want %v", code, got, n)
		}
	}
	for _, n := range []string{"link.xml", "folder", ".abandoned.xml", "abandoned.xml.tmp", "locked.xml"} {
		if got := log.Count("file=" + n + " "); got != 1 {
			t.Errorf("%s logged %d times, want once", n, got)
		}
		if _, err := os.Lstat(filepath.Join(in, n)); err != nil {
			t.Errorf("%s: %v (it must stay where it is)", n, err)
		}
	}
	if log.Count(".fresh.xml") != 0 {
		t.Error("a partial file being written was reported")
	}
	// Readable again: taken like any other file.
	openForProbe = realOpen
	a.Poll(context.Background(), pub)
	if got := pub.ids(); len(got) != 1 {
		t.Fatalf("published %v after the file became readable", got)
	}
}

func TestWriterCheck(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.xml")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	open := writerCheck(path)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	closed := writerCheck(path)
	if !leaseProbe {
		if open != probeUnknown || closed != probeUnknown {
			t.Fatalf("no lease probe on this system, yet it answered %v/%v", open, closed)
		}
		return
	}
	if open != probeBusy || closed != probeFree {
		t.Fatalf("open for writing: %v, want busy; closed: %v, want free", open, closed)
	}
	r, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got := writerCheck(path); got != probeFree {
		t.Errorf("open for reading by another: %v, want free", got)
	}
	if got := writerCheck(filepath.Join(t.TempDir(), "none")); got != probeGone {
		t.Errorf("missing file: %v, want gone", got)
	}
}

// BenchmarkWriterCheck measures the no-writer check taken once per
// complete file.
func BenchmarkWriterCheck(b *testing.B) {
	path := filepath.Join(b.TempDir(), "f.xml")
	if err := os.WriteFile(path, []byte("<x/>"), 0o600); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if p := writerCheck(path); p != probeFree && p != probeUnknown {
			b.Fatal(p)
		}
	}
}

// The examination budget lets files through up to its limit at once, and a
// file larger than the limit alone.
func TestWeightedBudget(t *testing.T) {
	w := &weighted{limit: 10}
	r1 := w.acquire(6)
	got := make(chan struct{})
	go func() { r := w.acquire(6); close(got); r() }()
	select {
	case <-got:
		t.Fatal("12 of 10 bytes held at once")
	case <-time.After(100 * time.Millisecond):
	}
	r1()
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("the second file never got its turn")
	}
	big := w.acquire(25) // alone: allowed although over the limit
	big()
}

// A file renamed into in/ while the directory is being listed is missing
// from that listing; its mark must survive the listing's clean-up, or the
// file waits out the settle time after all.
func TestRenameDuringAListingKeepsItsMark(t *testing.T) {
	var r arrivals
	r.markRenamed("old.xml", true)
	listed := r.mark()
	r.markRenamed("new.xml", true) // the watch, between the listing and its clean-up
	r.forgetRenames(map[string]bool{}, listed)
	if !r.wasRenamed("new.xml") {
		t.Error("a rename seen during the listing was forgotten")
	}
	if r.wasRenamed("old.xml") {
		t.Error("a mark of a file gone before the listing was kept")
	}
}

// A backlog in in/ is writer-checked a round at a time: a scan checks no
// more files than a round takes (and one to say there are more), the first
// by name, instead of every waiting file on every round.
func TestABacklogIsCheckedARoundAtATime(t *testing.T) {
	e := newEnv(t)
	a := e.adapter(t, map[string]any{"workers": 2})
	data := readFile(t, "samhub/letter-utf8.xml")
	const files = 50
	for i := range files {
		e.dropAged(t, fmt.Sprintf("backlog-%03d.xml", files-1-i), data, time.Hour)
	}
	var probes int
	realOpen := openForProbe
	openForProbe = func(path string) (int, error) { probes++; return realOpen(path) }
	t.Cleanup(func() { openForProbe = realOpen })
	limit := 8 * 2
	ready, _, err := a.scan(time.Now(), limit)
	if err != nil {
		t.Fatal(err)
	}
	if len(ready) != limit+1 || probes != limit+1 {
		t.Fatalf("scan of %d quiet files with a round of %d: %d ready, %d writer checks; want %d and %d", files, limit, len(ready), probes, limit+1, limit+1)
	}
	for i, f := range ready {
		if want := fmt.Sprintf("backlog-%03d.xml", i); f.name != want {
			t.Errorf("ready[%d] = %s, want %s (the first by name)", i, f.name, want)
		}
	}
	// The next round stats only what it may take: the other files are
	// known and stat'ed again when a round can take them.
	var stats int
	realInfo := entryInfo
	entryInfo = func(e fs.DirEntry) (fs.FileInfo, error) { stats++; return realInfo(e) }
	t.Cleanup(func() { entryInfo = realInfo })
	if again, _, _ := a.scan(time.Now(), limit); len(again) != limit+1 || stats != limit+1 {
		t.Errorf("second scan of a known backlog: %d ready, %d stats; want %d each", len(again), stats, limit+1)
	}
	// A file rewritten while it waited past the rounds is seen as changed
	// when a round takes it, and waits to settle again.
	last := fmt.Sprintf("backlog-%03d.xml", files-1)
	if err := os.WriteFile(filepath.Join(e.dir, "in", last), append(data, ' '), 0o600); err != nil {
		t.Fatal(err)
	}
	// Without a limit every file is checked (the setting the rounds avoid).
	probes = 0
	all, _, _ := a.scan(time.Now(), files)
	if len(all) != files-1 || probes != files-1 {
		t.Errorf("scan without a limit: %d ready, %d checks; want %d each", len(all), probes, files-1)
	}
	for _, f := range all {
		if f.name == last {
			t.Errorf("%s was rewritten just now and was taken as complete", last)
		}
	}
}
