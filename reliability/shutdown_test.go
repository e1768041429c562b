package reliability

import (
	"fmt"
	"testing"
	"time"

	"github.com/samhub/samhub/internal/hubtest"
)

// TestScenarioShutdown is S10: the hub is stopped gracefully (what SIGTERM
// does) several times while letters stream in and the case system answers
// slowly, so many deliveries are in flight at each stop. No letter may be
// parked because of the shutdown, none lost, none delivered twice, and
// every letter is delivered after the restarts.
func TestScenarioShutdown(t *testing.T) {
	n := size("SHUTDOWN_LETTERS", 300, 3000)
	stops := size("SHUTDOWN_STOPS", 3, 10)
	seed := r1Seed()
	rng := r1Rand(seed)
	h := hubtest.Start(t)
	h.CaseSys.SetRouteDelay("POST /cases/{caseId}/documents", 150*time.Millisecond)
	ledger := oNewLedger()
	feed := r1Feed(t, ledger, h.MedComDir, "SHU", 0, n, 20, 20*time.Millisecond)
	delivered := func() int { return r1Delivered(ledger, h.CaseSys) }
	var slowest time.Duration
	inFlight := 0
	liveness := time.Duration(n/10+120) * time.Second
	for k := 1; k <= stops; k++ {
		share := n / (stops + 1)
		target := k*share + rng.IntN(share/2+1) - share/4
		r1Wait(t, liveness, fmt.Sprintf("%d letters delivered before stop %d", target, k), func() bool { return delivered() >= target })
		// Letters stored by the hub but not yet delivered are in flight.
		inFlight = max(inFlight, feed.Sent()-r1Files(h.MedComDir+"/in")-delivered())
		start := time.Now()
		h.Stop()
		slowest = max(slowest, time.Since(start))
		h.Restart()
		if p := r1Parked(t, h); len(p) != 0 {
			t.Fatalf("after stop %d: %d letters parked (first: %s: %s)", k, len(p), p[0].LastError.Code, p[0].LastError.Reason)
		}
	}
	feed.Wait()
	r1Wait(t, liveness, "every letter delivered", func() bool { return delivered() >= n })
	time.Sleep(500 * time.Millisecond) // a redelivered duplicate would show itself now
	parked := r1Parked(t, h)
	tally := r1CaseVerdict(ledger, h.CaseSys, parked)
	report(t, "shutdown", "letters", n, "stops", stops, "max_in_flight_at_stop", inFlight, "wrongly_parked", len(parked),
		"lost", tally.Lost(), "duplicates", tally.Dup(), "delivered_once", tally.Once(), "slowest_stop_s", fmt.Sprintf("%.2f", slowest.Seconds()),
		"shutdown_grace_s", h.Config.Pipeline.ShutdownGrace.Seconds(), "seed", seed)
	if len(parked) != 0 || tally.Once() != n || tally.Dup() != 0 || len(tally.Stray) != 0 {
		t.Errorf("oracle: %s wrongly_parked=%d", tally, len(parked))
	}
}
