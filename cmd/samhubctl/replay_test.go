package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/samhub/samhub/internal/hubtest"
	"github.com/samhub/samhub/pipeline/letter"
	"github.com/samhub/samhub/pipeline/retryq"
)

// parkForRegion parks n copies of the stored letter id for the region as
// the hub parks a letter without consent. The copies name no recipients,
// so a replay decides on consent alone (the fixture names the council,
// which would make the region no recipient of it at all).
func parkForRegion(t *testing.T, h *hubtest.Hub, id string, n int) {
	t.Helper()
	h.ParkEditedCopies(id, "region", "consent_missing", n, func(c *letter.Letter) { c.Receivers = nil })
}

// A replay by filter whose every letter parks again (no consent yet)
// delivered nothing: it says so in counts, with why, and exits 5 so a
// script can tell it from a replay that delivered.
func TestReplayByFilterThatDeliversNothingSaysSo(t *testing.T) {
	h := hubtest.Start(t)
	id := storedFixture(t, h)
	parkForRegion(t, h, id, 3)
	coord := hubtest.CoordinatorToken

	code, out, errs := ctl(t, h, coord, "queue", "replay", "--filter", "destination=region", "--reason", "consent recorded?")
	if code != exitNothingDelivered {
		t.Fatalf("exit %d, want %d: %s\n%s", code, exitNothingDelivered, errs, out)
	}
	mustHave(t, out, "0 sent on for delivery", "3 parked again", "consent_missing: 3")
	mustHave(t, errs, "none of the 3 replayed letters went on to delivery")
	if strings.Contains(out+errs, "2509479989") {
		t.Fatalf("a CPR number printed:\n%s\n%s", out, errs)
	}

	// -o json carries the reasons too, and exits the same.
	parkForRegion(t, h, id, 2)
	code, out, errs = ctl(t, h, coord, "queue", "replay", "--filter", "destination=region", "--reason", "again", "-o", "json")
	var r struct {
		Replayed, StillDenied int
		StillDeniedBy         map[string]int
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	if code != exitNothingDelivered || r.StillDenied != r.Replayed || r.StillDeniedBy["consent_missing"] != r.StillDenied || r.StillDenied == 0 {
		t.Fatalf("exit %d %s, %+v", code, errs, r)
	}

	// A replay by id that parks again exits 5 as well, in either output.
	parkForRegion(t, h, id, 2)
	parked, err := h.App.Hub.Queue().List(context.Background(), retryq.Filter{Destination: "region"})
	if err != nil || len(parked) < 2 {
		t.Fatalf("parked: %v %d", err, len(parked))
	}
	one, two := fmt.Sprint(parked[0].Seq), fmt.Sprint(parked[1].Seq)
	code, out, errs = ctl(t, h, coord, "queue", "replay", one, "--reason", "consent recorded?")
	if code != exitNothingDelivered || !strings.Contains(out, "will park again") || !strings.Contains(errs, "parks again (deny)") {
		t.Fatalf("replay by id: exit %d: %s\n%s", code, out, errs)
	}
	code, out, errs = ctl(t, h, coord, "queue", "replay", two, "--reason", "again", "-o", "json")
	var d struct{ Decision struct{ Verdict string } }
	if err := json.Unmarshal([]byte(out), &d); err != nil || code != exitNothingDelivered || d.Decision.Verdict != "deny" {
		t.Fatalf("replay by id, json: exit %d, %v: %s\n%s", code, err, out, errs)
	}
}

// A replayed letter its destination no longer takes parks again as
// not_routed, and the CLI says so.
func TestReplayedButNotTakenSaysItParksAgain(t *testing.T) {
	var b strings.Builder
	printDecision(&b, 7, false, "", decision{Destination: "gp", Verdict: "skip", Reason: "no routing rule sends this letter here"})
	if got := b.String(); !strings.Contains(got, "parks again as not_routed") || !strings.Contains(got, "gp no longer takes it") {
		t.Errorf("%q", got)
	}
}

// A bulk replay's line accounts for every planned letter: those left
// parked behind an earlier letter of their thread are named, or the
// counts would not add up to what was planned.
func TestABulkReplaysLineNamesTheLettersLeftBehindTheirThread(t *testing.T) {
	r := bulkReplay{Planned: 5, Replayed: 2, StillHeld: 2, Gone: 1}
	if got := r.progress(); !strings.Contains(got, "2 of 5 replayed") || !strings.Contains(got, "2 left parked behind an earlier letter of their thread") || !strings.Contains(got, "1 no longer parked") {
		t.Errorf("progress %q", got)
	}
}
