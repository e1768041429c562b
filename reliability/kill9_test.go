package reliability

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/samhub/samhub/internal/config"
	"github.com/samhub/samhub/internal/hubtest"
	casesyssim "github.com/samhub/samhub/internal/sim/casesys"
)

// TestScenarioKill9 is S1: the hub runs as a child process on its embedded
// JetStream while a stream of MedCom letters arrives, and is killed with
// SIGKILL at random points and started again. Every letter must become
// exactly one case document, every letter's acknowledgement must be the
// same each time it is written, and the hub must deliver again soon after
// each restart with the shipped ack wait: the letters it held when it was
// killed come back (their ack wait), and a letter dropped after the restart
// is taken in at once (the MedCom folder's lease, which its previous life
// held).
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
	cfg := r1WriteChildConfig(t, r1ChildConfig{Dir: filepath.Join(dir, "hub"), MedComDir: medcom, CaseURL: caseURL, AckWait: config.DefaultAckWait})
	receipts := r1CollectReceipts(medcom)
	ledger := r1NewLedger()
	delivered := func() int { return r1Delivered(ledger, sim) }

	starts := 0
	hub := r1StartChild(t, bin, cfg, starts)
	feed := r1Feed(t, ledger, medcom, "KIL", 0, n, 20, 40*time.Millisecond)
	var maxResume, maxHeld, maxTaken time.Duration
	liveness := time.Duration(n/20+120) * time.Second
	for k := 1; k <= kills; k++ {
		// Kill somewhere around the k-th of kills+1 equal shares of the run.
		share := n / (kills + 1)
		target := k*share + rng.IntN(share/2+1) - share/4
		r1Wait(t, liveness, fmt.Sprintf("%d letters delivered before kill %d", target, k), func() bool { return delivered() >= target })
		// A short random pause moves the kill off the moment the count was seen.
		time.Sleep(time.Duration(rng.IntN(30)) * time.Millisecond)
		hub.Kill()
		// Calls the killed hub had already sent finish at the case system
		// (5 ms each); they must not count as deliveries after the restart.
		time.Sleep(200 * time.Millisecond)
		before := delivered()
		// The oldest letter not yet delivered: one the killed hub held
		// (stored, handed to its consumer, not acknowledged).
		held := r1Undelivered(ledger, sim, 1)
		starts++
		started := time.Now()
		hub = r1StartChild(t, bin, cfg, starts)
		// A new letter, dropped as the hub starts: taken in (stored, moved
		// to processed/) only once the restarted hub's MedCom source runs.
		// Its name sorts before the run's letters, so the source takes it
		// first rather than after what still waits in in/.
		probeID, probe := r1Letter(t, "KIP", k)
		probeName := fmt.Sprintf("a-kip-%07d.xml", k)
		ledger.Add(probeID, probe, "casefile")
		r1Drop(t, medcom, probeName, probe)
		// Watched on its own: the waits below must not delay seeing it.
		takenIn := make(chan time.Duration, 1)
		go func() {
			for deadline := time.Now().Add(liveness); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
				if _, err := os.Stat(filepath.Join(medcom, "processed", probeName)); err == nil {
					takenIn <- time.Since(started)
					return
				}
			}
			close(takenIn)
		}()
		if before < n {
			// Delivering again: one more letter delivered after the restart,
			// then the oldest letter the killed hub held.
			r1Wait(t, liveness, fmt.Sprintf("delivery to resume after kill %d", k), func() bool { return delivered() > before })
			maxResume = max(maxResume, time.Since(started))
			r1Wait(t, liveness, fmt.Sprintf("the letter held at kill %d to be delivered", k), func() bool { return len(r1Missing(sim, held)) == 0 })
			maxHeld = max(maxHeld, time.Since(started))
		}
		took, ok := <-takenIn
		if !ok {
			t.Fatalf("the letter dropped after kill %d was not taken in within %s", k, liveness)
		}
		maxTaken = max(maxTaken, took)
	}
	feed.Wait()
	total := n + kills
	r1Wait(t, liveness, "every letter delivered", func() bool { return delivered() >= total })
	r1Wait(t, liveness, "in/ and processing/ empty", func() bool {
		return r1Files(filepath.Join(medcom, "in")) == 0 && r1Files(filepath.Join(medcom, "processing")) == 0
	})
	time.Sleep(time.Second) // a straggling redelivery would show itself now
	hub.Term()
	names, files, mismatched := receipts.Stop()
	tally := r1Check(ledger, sim.Documents(), nil)
	processed := r1Files(filepath.Join(medcom, "processed"))
	report(t, "kill9", "letters", total, "kills", kills, "lost", tally.Lost, "duplicates", tally.Dup, "stray", tally.Stray,
		"processed_files", processed, "receipts", names, "receipt_files", files, "receipt_mismatch", mismatched,
		"ack_wait", config.DefaultAckWait, "max_resume_s", fmt.Sprintf("%.1f", maxResume.Seconds()), "max_held_s", fmt.Sprintf("%.1f", maxHeld.Seconds()),
		"max_taken_in_s", fmt.Sprintf("%.1f", maxTaken.Seconds()), "seed", seed)
	if tally.Lost != 0 || tally.Dup != 0 || tally.Stray != 0 {
		t.Errorf("oracle: %s (lost %v, duplicated %v)", tally, r1First(tally.LostIDs), r1First(tally.DupIDs))
	}
	if processed != total {
		t.Errorf("%d files in processed/, want %d", processed, total)
	}
	if names != total || mismatched != 0 {
		t.Errorf("acknowledgements: %d distinct receipts for %d letters, %d with differing content", names, total, mismatched)
	}
	// Issue 19's pass figure: delivering again within 5 s of a restart,
	// the letters the killed hub held included, and taking new letters in.
	if maxResume > 5*time.Second || maxHeld > 5*time.Second || maxTaken > 5*time.Second {
		t.Errorf("slowest after a restart: first delivery %s, the oldest held letter %s, a new letter taken in %s; want each at most 5s",
			maxResume.Round(100*time.Millisecond), maxHeld.Round(100*time.Millisecond), maxTaken.Round(100*time.Millisecond))
	}
}

// r1Undelivered returns up to n of the ledger's letters, oldest first, that
// have no document yet.
func r1Undelivered(l *r1Ledger, sim *casesyssim.Server, n int) []string {
	have := map[string]bool{}
	for _, d := range sim.Documents() {
		if d.Letter != nil {
			have[d.Letter.ID] = true
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, id := range l.ids {
		if !have[id] && len(out) < n {
			out = append(out, id)
		}
	}
	return out
}

// r1Missing returns the ids that have no document.
func r1Missing(sim *casesyssim.Server, ids []string) []string {
	have := map[string]bool{}
	for _, d := range sim.Documents() {
		if d.Letter != nil {
			have[d.Letter.ID] = true
		}
	}
	var out []string
	for _, id := range ids {
		if !have[id] {
			out = append(out, id)
		}
	}
	return out
}

// r1First returns up to five items, for messages.
func r1First(ids []string) []string {
	if len(ids) > 5 {
		return ids[:5]
	}
	return ids
}
