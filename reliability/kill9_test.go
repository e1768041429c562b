package reliability

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	casesyssim "github.com/samhub/samhub/internal/sim/casesys"

	"github.com/samhub/samhub/internal/hubtest"
)

// TestScenarioKill9 is S1: the hub runs as a child process on its embedded
// JetStream while a stream of MedCom letters arrives, and is killed with
// SIGKILL at random points and started again. Every letter must become
// exactly one case document, every letter's acknowledgement must be the
// same each time it is written, and the hub must consume again soon after
// each restart.
func TestScenarioKill9(t *testing.T) {
	n := size("KILL9_LETTERS", 300, 5000)
	kills := size("KILL9_KILLS", 3, 20)
	seed := r1Seed()
	rng := r1Rand(seed)
	bin := hubtest.BuildSamhub(t)
	dir := t.TempDir()
	sim, err := casesyssim.New(casesyssim.Config{DataDir: filepath.Join(dir, "casesys"), ClientID: "samhub", ClientSecret: "case-secret"})
	if err != nil {
		t.Fatal(err)
	}
	// Slow answers keep letters in the middle of delivery when a kill comes.
	sim.SetDelay(5 * time.Millisecond)
	caseURL, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	medcom := filepath.Join(dir, "medcom")
	cfg := r1WriteChildConfig(t, r1ChildConfig{Dir: filepath.Join(dir, "hub"), MedComDir: medcom, CaseURL: caseURL, AckWait: 3 * time.Second})
	receipts := r1CollectReceipts(medcom)
	ledger := r1NewLedger()
	delivered := func() int { return r1Delivered(ledger, sim) }

	starts := 0
	hub := r1StartChild(t, bin, cfg, starts)
	feed := r1Feed(t, ledger, medcom, "KIL", 0, n, 20, 40*time.Millisecond)
	var maxResume time.Duration
	liveness := time.Duration(n/20+120) * time.Second
	for k := 1; k <= kills; k++ {
		// Kill somewhere around the k-th of kills+1 equal shares of the run.
		share := n / (kills + 1)
		target := k*share + rng.IntN(share/2+1) - share/4
		r1Wait(t, liveness, fmt.Sprintf("%d letters delivered before kill %d", target, k), func() bool { return delivered() >= target })
		// A short random pause moves the kill off the moment the count was seen.
		time.Sleep(time.Duration(rng.IntN(30)) * time.Millisecond)
		hub.Kill()
		before := delivered()
		starts++
		started := time.Now()
		hub = r1StartChild(t, bin, cfg, starts)
		if before < n {
			// Consuming again: one more letter delivered after the restart.
			r1Wait(t, liveness, fmt.Sprintf("delivery to resume after kill %d", k), func() bool { return delivered() > before })
			maxResume = max(maxResume, time.Since(started))
		}
	}
	feed.Wait()
	r1Wait(t, liveness, "every letter delivered", func() bool { return delivered() >= n })
	r1Wait(t, liveness, "in/ and processing/ empty", func() bool {
		return r1Files(filepath.Join(medcom, "in")) == 0 && r1Files(filepath.Join(medcom, "processing")) == 0
	})
	time.Sleep(time.Second) // a straggling redelivery would show itself now
	hub.Term()
	names, files, mismatched := receipts.Stop()
	tally := r1Check(ledger, sim.Documents(), nil)
	processed := r1Files(filepath.Join(medcom, "processed"))
	report(t, "kill9", "letters", n, "kills", kills, "lost", tally.Lost, "duplicates", tally.Dup, "stray", tally.Stray,
		"processed_files", processed, "receipts", names, "receipt_files", files, "receipt_mismatch", mismatched,
		"max_resume_s", fmt.Sprintf("%.1f", maxResume.Seconds()), "seed", seed)
	if tally.Lost != 0 || tally.Dup != 0 || tally.Stray != 0 {
		t.Errorf("oracle: %s (lost %v, duplicated %v)", tally, r1First(tally.LostIDs), r1First(tally.DupIDs))
	}
	if processed != n {
		t.Errorf("%d files in processed/, want %d", processed, n)
	}
	if names != n || mismatched != 0 {
		t.Errorf("acknowledgements: %d distinct receipts for %d letters, %d with differing content", names, n, mismatched)
	}
	// The pass figure: consuming again within 30 s of a restart.
	if maxResume > 30*time.Second {
		t.Errorf("slowest resumption after a kill took %s, want at most 30s", maxResume)
	}
}

// r1First returns up to five items, for messages.
func r1First(ids []string) []string {
	if len(ids) > 5 {
		return ids[:5]
	}
	return ids
}
