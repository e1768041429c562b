package reliability

import (
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// shutdownExitMargin is what the process may take beyond the shutdown
// grace to end: the grace bounds how long the hub waits for deliveries in
// flight; after it the hub still closes its store, and a signal and a
// process exit take their time on a loaded machine (5.15 s seen with a
// 5 s grace). A hub that ignored the grace would wait for its deliveries
// however long they take.
const shutdownExitMargin = 5 * time.Second

// TestScenarioShutdown is S10: the hub runs as a child process and gets
// SIGTERM (what systemd sends) several times while referrals and
// recommendations stream in and the case system and the EPJ answer
// slowly, so deliveries to every destination kind are in flight at each
// stop. Each time the process must exit by itself with status 0 within
// the shutdown grace; it is started again at once. No letter may be
// parked because of a stop, none lost, none delivered twice, and no
// message sent again under the same id (a graceful stop has no excuse).
func TestScenarioShutdown(t *testing.T) {
	t.Parallel()
	stops := size("SHUTDOWN_STOPS", 3, 10)
	seed := r1Seed()
	rng := r1Rand(seed)
	w := oNewWorld(t)
	w.Case.SetRouteDelay("POST /cases/{caseId}/documents", 400*time.Millisecond)
	w.EPJ.SetDelay(300 * time.Millisecond)
	grace := 5 * time.Second
	cfg, url := w.Config(filepath.Join(w.Dir, "hub"), oHubOpts{ShutdownGrace: grace})
	feed := w.Feed("SHU", 25*time.Millisecond, 0, 0)
	var lives oLives
	var slowest time.Duration
	maxOpen, badExits := 0, 0
	for k := 0; k <= stops; k++ {
		hub := oStartHub(t, cfg, url, k, "")
		oWaitReady(t, hub, time.Minute)
		if k == stops {
			// The last life drains everything and is stopped the same way.
			sent := feed.Stop()
			liveness := time.Duration(sent/10+120) * time.Second
			w.WaitAll(t, liveness, false)
			time.Sleep(time.Second) // a late redelivery would show itself now
		} else {
			time.Sleep(1500*time.Millisecond + time.Duration(rng.IntN(2500))*time.Millisecond)
		}
		maxOpen = max(maxOpen, w.Ledger.Expected()-w.Delivered())
		var parked int
		if k == stops {
			parked = len(oParked(t, url))
		}
		start := time.Now()
		hub.Signal(syscall.SIGTERM)
		if !hub.Wait(grace + 30*time.Second) {
			t.Fatalf("stop %d: the hub has not exited %s after SIGTERM", k, grace+30*time.Second)
		}
		took := time.Since(start)
		slowest = max(slowest, took)
		life := hub.Life()
		lives.Add(life)
		if life.Exit != "exit status 0" || took > grace+shutdownExitMargin {
			badExits++
			t.Errorf("stop %d: exited with %q %s after SIGTERM; want status 0 within the shutdown grace (%s, and %s for the process to end)", k, life.Exit, took.Round(10*time.Millisecond), grace, shutdownExitMargin)
		}
		if k == stops && parked != 0 {
			t.Errorf("%d letters parked after %d stops; a stop must release, never park", parked, stops)
		}
	}
	v := w.Verdict(nil)
	report(t, "shutdown", append(append([]any{"letters", w.Ledger.Len(), "deliveries", w.Ledger.Expected(), "stops", stops + 1, "lives", lives.Lives,
		"crashes", lives.Crashes, "panics", lives.Panics}, v.Figures()...),
		"max_undelivered_at_stop", maxOpen, "slowest_exit_s", fmt.Sprintf("%.2f", slowest.Seconds()), "shutdown_grace_s", grace.Seconds(),
		"bad_exits", badExits, "seed", seed)...)
	oRequire(t, v, oAllow{})
	if lives.Crashes != 0 || lives.Panics != 0 {
		t.Errorf("%d lives ended on their own, %d panics", lives.Crashes, lives.Panics)
	}
}
