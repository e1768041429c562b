package reliability

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/samhub/samhub/internal/hubtest"
	"github.com/samhub/samhub/internal/logbuf"
)

// How a letter reaches in/ in the drop folder scenario.
const (
	dfCopy       = "cp"          // created under its final name, written in chunks, closed
	dfSlowOpen   = "slow_open"   // half, 1.5 s with the file held open, the rest
	dfSlowReopen = "slow_reopen" // half, closed; 1.5 s later reopened to append the rest
	dfRenamed    = "renamed"     // written as a dot-file in in/, renamed into place
	dfMovedIn    = "moved_in"    // written in another directory, moved into in/
)

// dfWrite writes data to in/name the way kind does.
func dfWrite(in, staging, name, kind string, data []byte, chunk int, pause time.Duration) error {
	final := filepath.Join(in, name)
	writeChunks := func(f *os.File, b []byte) error {
		for len(b) > 0 {
			n := min(chunk, len(b))
			if _, err := f.Write(b[:n]); err != nil {
				return err
			}
			b = b[n:]
		}
		return nil
	}
	half := len(data) / 2
	switch kind {
	case dfCopy:
		f, err := os.Create(final)
		if err != nil {
			return err
		}
		if err := writeChunks(f, data); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	case dfSlowOpen:
		f, err := os.Create(final)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := writeChunks(f, data[:half]); err != nil {
			return err
		}
		time.Sleep(pause)
		if err := writeChunks(f, data[half:]); err != nil {
			return err
		}
		return f.Close()
	case dfSlowReopen:
		if err := os.WriteFile(final, data[:half], 0o600); err != nil {
			return err
		}
		time.Sleep(pause)
		f, err := os.OpenFile(final, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return err
		}
		if err := writeChunks(f, data[half:]); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	case dfRenamed, dfMovedIn:
		dir := in
		if kind == dfMovedIn {
			dir = staging
		}
		tmp := filepath.Join(dir, "."+name+".part")
		f, err := os.Create(tmp)
		if err != nil {
			return err
		}
		if err := writeChunks(f, data); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		return os.Rename(tmp, final)
	}
	return fmt.Errorf("unknown writer %q", kind)
}

// TestScenarioDropFolder is issue 19's drop folder scenario: letters reach
// in/ the way VANS clients, scanners and shares write them (plain copies
// in chunks, slow writers pausing 1.5 s between two halves with the file
// open or closed, renames from inside and outside in/), all at once.
// Nothing may be taken half-written: 0 rejected, 0 lost, 0 duplicated,
// each letter one case document and one acknowledgement.
func TestScenarioDropFolder(t *testing.T) {
	n := size("DROPFOLDER_LETTERS", 1000, 10_000)
	seed := r1Seed()
	rng := r1Rand(seed)
	log := &logbuf.Buffer{}
	h := hubtest.Start(t, hubtest.WithLog(log)) // the shipped settle time (2 s)
	receipts := r1CollectReceipts(h.MedComDir)
	ledger := oNewLedger()
	in := filepath.Join(h.MedComDir, "in")
	staging := filepath.Join(h.MedComDir, "staging") // same file system, outside in/
	if err := os.MkdirAll(staging, 0o700); err != nil {
		t.Fatal(err)
	}
	kinds := []string{dfCopy, dfCopy, dfCopy, dfCopy, dfSlowOpen, dfSlowReopen, dfRenamed, dfRenamed, dfMovedIn, dfMovedIn}
	type job struct {
		name, kind string
		data       []byte
		chunk      int
	}
	jobs := make([]job, n)
	perKind := map[string]int{}
	for i := range n {
		id, data := r1Letter(t, "DRP", i)
		ledger.Add(id, data, "casefile")
		k := kinds[i%len(kinds)]
		perKind[k]++
		jobs[i] = job{name: fmt.Sprintf("drp-%07d.xml", i), kind: k, data: data, chunk: 256 << rng.IntN(4)} // 256 B to 2 KiB
	}
	rng.Shuffle(n, func(i, j int) { jobs[i], jobs[j] = jobs[j], jobs[i] })

	// 64 writers at a time, like a VANS client and a scanner and a share
	// all delivering at once; the slow ones keep their slot through the pause.
	start := time.Now()
	var wg sync.WaitGroup
	// A writer fails when the hub takes its file away in the pause (the
	// file is gone when it reopens it to append): counted, not fatal, so
	// the figures show what the hub then made of the halves.
	var failed atomic.Int64
	var firstErr atomic.Value
	slots := make(chan struct{}, 64)
	for _, j := range jobs {
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			if err := dfWrite(in, staging, j.name, j.kind, j.data, j.chunk, 1500*time.Millisecond); err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, fmt.Sprintf("%s (%s): %v", j.name, j.kind, err))
			}
		}()
	}
	wg.Wait()
	written := time.Since(start)
	r1Wait(t, time.Duration(n/10+90)*time.Second, "every letter delivered or refused", func() bool {
		return r1Delivered(ledger, h.CaseSys)+r2Count(filepath.Join(h.MedComDir, "error"), ".error.txt")+int(failed.Load()) >= n
	})
	elapsed := time.Since(start)
	r1Wait(t, 60*time.Second, "every file out of in/ and processing/", func() bool {
		return r1Files(in) == 0 && r1Files(filepath.Join(h.MedComDir, "processing")) == 0
	})
	time.Sleep(500 * time.Millisecond) // a second document would show itself now

	_, page := r1Get(t, h.BaseURL+"/metrics")
	v := r1CaseVerdict(ledger, h.CaseSys, r1Parked(t, h))
	errored := r2Count(filepath.Join(h.MedComDir, "error"), ".error.txt")
	processed := r1Files(filepath.Join(h.MedComDir, "processed"))
	names, files, mismatched := receipts.Stop()
	rejectedMetric := metricSum(page, "samhub_letters_rejected_total")
	received := metricSum(page, "samhub_letters_received_total")
	dupMetric := metricSum(page, "samhub_letters_duplicate_total")
	ignored := metricSum(page, "samhub_medcom_files_ignored_total")
	report(t, "dropfolder", "letters", n, "cp", perKind[dfCopy], "slow_open", perKind[dfSlowOpen], "slow_reopen", perKind[dfSlowReopen],
		"renamed", perKind[dfRenamed], "moved_in", perKind[dfMovedIn], "settle_time", "2s",
		"documents_once", v.Once(), "rejected", errored, "rejected_metric", rejectedMetric, "lost", v.Lost(), "duplicated", v.Dup(),
		"stray", len(v.Stray), "parked", v.Parked(), "processed", processed, "stored_metric", received, "duplicates_metric", dupMetric,
		"ignored_metric", ignored, "writer_errors", failed.Load(), "receipts", names, "receipt_files", files, "receipt_mismatch", mismatched,
		"write_s", fmt.Sprintf("%.1f", written.Seconds()), "total_s", fmt.Sprintf("%.1f", elapsed.Seconds()),
		"letters_per_s", fmt.Sprintf("%.0f", float64(n)/elapsed.Seconds()), "seed", seed)

	if failed.Load() > 0 {
		t.Errorf("%d writers failed, first: %v", failed.Load(), firstErr.Load())
	}
	oRequire(t, v, oAllow{})
	if errored != 0 || rejectedMetric != 0 {
		t.Errorf("%d files in error/, %v counted as rejected: a letter was taken before it was complete", errored, rejectedMetric)
	}
	if processed != n || received != float64(n) || dupMetric != 0 {
		t.Errorf("%d files processed, %v letters stored, %v duplicates: want %d, %d, 0", processed, received, dupMetric, n, n)
	}
	if names != n || mismatched != 0 {
		t.Errorf("acknowledgements: %d names for %d letters, %d with differing content", names, n, mismatched)
	}
	if ignored != 0 {
		t.Errorf("%v files reported as not read", ignored)
	}
	if leak := r1PII.FindString(log.String()); leak != "" {
		t.Errorf("the hub's log carries personal data: %q", leak)
	}
}
