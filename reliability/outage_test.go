package reliability

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/samhub/samhub/internal/hubtest"
	"github.com/samhub/samhub/pipeline"
)

// TestScenarioOutage is S3: the case system first fails a share of its
// calls (500, 503, 429 with Retry-After), then is down altogether. Letters
// that run out of attempts are parked with a reason a coordinator may read
// (no CPR number, no name); once the case system is back, a replay of every
// parked letter delivers each exactly once, and a second replay of the same
// entry delivers nothing more.
func TestScenarioOutage(t *testing.T) {
	n := size("OUTAGE_LETTERS", 200, 3000)
	seed := r1Seed()
	rng := r1Rand(seed)
	h := hubtest.Start(t)
	ledger := oNewLedger()
	r1Letter(t, "OUT", 0)

	// Phase 1: about 30 % of calls fail, with mixed statuses.
	half := n / 2
	injected := 0
	statuses := []int{http.StatusInternalServerError, http.StatusServiceUnavailable, http.StatusTooManyRequests}
	for i := 0; i < half; i++ {
		id, data := r1Letter(t, "OUT", i)
		ledger.Add(id, data, "casefile")
		if rng.IntN(10) < 3 {
			st := statuses[rng.IntN(len(statuses))]
			ra := time.Duration(0)
			if st == http.StatusTooManyRequests {
				ra = 100 * time.Millisecond
			}
			h.CaseSys.FailNext(1, st, ra)
			injected++
		}
		h.Drop(fmt.Sprintf("out-%07d.xml", i), data)
	}
	// Settled: every letter has a document or a parked entry (counted by
	// letter, since one letter parked twice is a finding of its own).
	settled := func() bool {
		tl := r1CaseVerdict(ledger, h.CaseSys, r1Parked(t, h))
		return tl.Lost() == 0
	}
	r1Wait(t, time.Duration(n/10+60)*time.Second, "phase 1 letters delivered or parked", settled)
	parkedFlaky := len(r1Parked(t, h))

	// Phase 2: the case system is down; every letter parks after its attempts.
	h.CaseSys.FailNext(1<<30, http.StatusServiceUnavailable, 0)
	for i := half; i < n; i++ {
		id, data := r1Letter(t, "OUT", i)
		ledger.Add(id, data, "casefile")
		h.Drop(fmt.Sprintf("out-%07d.xml", i), data)
	}
	r1Wait(t, time.Duration(n/10+60)*time.Second, "phase 2 letters parked", settled)
	parked := r1Parked(t, h)
	mid := r1CaseVerdict(ledger, h.CaseSys, parked)
	perLetter := map[string]int{}
	for _, e := range parked {
		perLetter[e.Destination+"|"+e.LetterID]++
	}
	doubleParked := len(parked) - len(perLetter)
	pii, empty := 0, 0
	for _, e := range parked {
		for _, reason := range []string{e.FirstError.Reason, e.LastError.Reason} {
			if reason == "" {
				empty++
			}
			if r1PII.MatchString(reason) {
				pii++
				t.Errorf("parked reason carries personal data: %q", reason)
			}
		}
	}
	if mid.Lost() != 0 || mid.Dup() != 0 {
		t.Errorf("before replay: %s", mid)
	}
	if empty != 0 {
		t.Errorf("%d parked reasons are empty", empty)
	}

	// Phase 3: back up; the coordinator replays everything parked.
	h.CaseSys.ResetFaults()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	who := pipeline.Actor{Name: "koordinator", Role: "coordinator", Remote: "reliability-test"}
	replayed := 0
	for _, e := range parked {
		if _, err := h.App.Hub.Replay(ctx, who, e.Seq, "case system back after outage", false); err != nil {
			t.Fatalf("replay %d: %v", e.Seq, err)
		}
		replayed++
	}
	// A second replay of an entry already replayed is refused, never a second delivery.
	again := 0
	if len(parked) > 0 {
		if _, err := h.App.Hub.Replay(ctx, who, parked[0].Seq, "double click", false); err == nil {
			again++
		}
	}
	r1Wait(t, time.Duration(n/10+60)*time.Second, "every letter delivered after replay", func() bool { return r1Delivered(ledger, h.CaseSys) >= n })
	time.Sleep(500 * time.Millisecond) // a duplicate from a replay would show itself now
	final := r1CaseVerdict(ledger, h.CaseSys, r1Parked(t, h))
	left := len(r1Parked(t, h))
	report(t, "outage", "letters", n, "failures_injected", injected, "parked_while_flaky", parkedFlaky, "parked", len(parked), "double_parked", doubleParked,
		"replayed", replayed, "delivered_once", final.Once(), "duplicates", final.Dup(), "lost", final.Lost(), "still_parked", left,
		"reasons_with_pii", pii, "second_replay_accepted", again, "seed", seed)
	if final.Once() != n || final.Dup() != 0 || final.Lost() != 0 || len(final.Stray) != 0 || left != 0 {
		t.Errorf("after replay: %s still_parked=%d", final, left)
	}
	if doubleParked != 0 {
		t.Errorf("%d parked entries are second entries for a letter already parked for the same destination", doubleParked)
	}
	if again != 0 {
		t.Errorf("a second replay of the same parked entry was accepted")
	}
	if len(parked) < n-half {
		t.Errorf("%d letters parked, want at least the %d sent while the case system was down", len(parked), n-half)
	}
}
