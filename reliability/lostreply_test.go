package reliability

import (
	"testing"
	"time"

	"github.com/samhub/samhub/internal/config"
	"github.com/samhub/samhub/internal/hubtest"
)

// TestScenarioLostreply is S4: the case system saves a document and then
// loses the answer for about one call in ten; in a few windows its answers
// come later than the hub's sink timeout. The hub must retry with the same
// idempotency key and end with exactly one document per letter.
func TestScenarioLostreply(t *testing.T) {
	t.Parallel()
	n := size("LOSTREPLY_LETTERS", 300, 5000)
	seed := r1Seed()
	rng := r1Rand(seed)
	// Few letters in flight: the simulator handles one write at a time and
	// slows as it grows, so a long queue there would turn every call into a
	// timeout rather than the few the scenario means to cause.
	h := hubtest.Start(t, hubtest.WithConfig(func(c *config.Config) {
		c.Pipeline.SinkTimeout = 2 * time.Second
		c.Pipeline.MaxAttempts = 8
		c.Pipeline.MaxInFlight = 8
	}))
	const docs = "POST /cases/{caseId}/documents"
	ledger := oNewLedger()
	feed := r1Feed(t, ledger, h.MedComDir, "LRP", 0, n, 25, 30*time.Millisecond)

	// Arm one dropped answer for every ten letters delivered, and now and
	// then a window where answers come after the sink timeout.
	armed, slowWindows := 0, 0
	delivered := 0
	deadline := time.Now().Add(time.Duration(n/5+120) * time.Second)
	for next := rng.IntN(10); delivered < n; {
		delivered = r1Delivered(ledger, h.CaseSys)
		if delivered >= next {
			h.CaseSys.DropResponses(docs, 1)
			armed++
			next += 5 + rng.IntN(11)
			if rng.IntN(20) == 0 {
				h.CaseSys.SetRouteDelay(docs, 2500*time.Millisecond)
				time.Sleep(150 * time.Millisecond)
				h.CaseSys.SetRouteDelay(docs, 0)
				slowWindows++
			}
		}
		time.Sleep(5 * time.Millisecond)
		if time.Now().After(deadline) {
			t.Fatalf("delivery does not progress: %d of %d letters after %d armed drops", delivered, n, armed)
		}
	}
	feed.Wait()
	h.CaseSys.ResetFaults()
	r1Wait(t, time.Duration(n/10+60)*time.Second, "every letter delivered", func() bool { return r1Delivered(ledger, h.CaseSys) >= n })
	time.Sleep(time.Second) // a late retry would show itself now
	dropped, replayed := 0, 0
	for _, r := range h.CaseSys.Requests() {
		if r.Route != docs {
			continue
		}
		if r.Status == 0 {
			dropped++
		}
		if r.Replayed {
			replayed++
		}
	}
	v := r1CaseVerdict(ledger, h.CaseSys, r1Parked(t, h))
	report(t, "lostreply", "letters", n, "replies_lost", dropped, "slow_windows", slowWindows, "idempotent_replays", replayed,
		"delivered_once", v.Once(), "duplicates", v.Dup(), "lost", v.Lost(), "parked", v.Parked(), "stray", len(v.Stray), "seed", seed)
	oRequire(t, v, oAllow{})
	if dropped == 0 {
		t.Errorf("no reply was lost: the scenario did not test anything")
	}
}
