package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/samhub/samhub/pipeline"
	"github.com/samhub/samhub/pipeline/audit"
	"github.com/samhub/samhub/pipeline/journey"
	"github.com/samhub/samhub/pipeline/letter"
	"github.com/samhub/samhub/pipeline/retryq"
)

// parkForGP sends n recommendations, each its own thread, and waits until
// the GP destination has parked them all for want of consent.
func parkForGP(t *testing.T, e *env, prefix string, n int) {
	t.Helper()
	ctx := context.Background()
	before, _ := e.hub.Queue().Count(ctx, retryq.Filter{Destination: "doctor"})
	for i := range n {
		e.feed.ch <- mkLetter(fmt.Sprintf("%s%03d", prefix, i), letter.KindRecommendation, fmt.Sprintf("%s-T%03d", prefix, i))
	}
	eventually(t, fmt.Sprintf("%d more parked for the GP", n), func() bool {
		c, _ := e.hub.Queue().Count(ctx, retryq.Filter{Destination: "doctor", Code: "consent_missing"})
		return c.Total == before.Total+n
	})
}

func waitBulk(t *testing.T, e *env, id string) pipeline.BulkReplay {
	t.Helper()
	var r pipeline.BulkReplay
	eventually(t, "the bulk replay to end", func() bool {
		var err error
		r, err = e.hub.BulkReplay(context.Background(), id)
		return err == nil && r.State != pipeline.BulkRunning
	})
	return r
}

func bulkAudits(t *testing.T, e *env) (bulk []audit.Record, single int) {
	t.Helper()
	recs, err := e.hub.Audit().Tail(context.Background(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		switch r.Action {
		case "replay-filter":
			bulk = append(bulk, r)
		case "replay":
			single++
		}
	}
	return bulk, single
}

// Replaying all that match a filter replays each matching letter once,
// leaves the rest, answers a second request with the same id with the
// first replay, and is audited as one action naming the filter and count.
func TestBulkReplayByFilter(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	parkForGP(t, e, "REC", 40)
	// Something else parked, at another destination: not in the filter.
	e.muni.mu.Lock()
	e.muni.permanent = true
	e.muni.mu.Unlock()
	e.feed.ch <- mkLetter("REF1", letter.KindReferral, "OTHER")
	eventually(t, "the referral parked at the case file", func() bool {
		c, _ := e.hub.Queue().Count(ctx, retryq.Filter{Destination: "casefile"})
		return c.Total == 1
	})
	if err := e.hub.RecordConsent(ctx, "2509479989", letter.Consent{GivenBy: "custody-holder", Form: "written", GivenAt: time.Now(), Scopes: []letter.Scope{letter.ScopeGP}}); err != nil {
		t.Fatal(err)
	}

	f := retryq.Filter{Destination: "doctor", Code: "consent_missing"}
	if _, _, err := e.hub.StartBulkReplay(ctx, coordinator, pipeline.NewRequestID(), f, " "); !errors.Is(err, pipeline.ErrReasonRequired) {
		t.Fatalf("without a reason: %v", err)
	}
	if _, _, err := e.hub.StartBulkReplay(ctx, coordinator, "short", f, "x"); !errors.Is(err, pipeline.ErrBadRequestID) {
		t.Fatalf("a bad request id: %v", err)
	}
	// A double click: two requests with one id at once start one replay.
	id := pipeline.NewRequestID()
	var wg sync.WaitGroup
	var mu sync.Mutex
	started := 0
	for range 2 {
		wg.Go(func() {
			r, s, err := e.hub.StartBulkReplay(ctx, coordinator, id, f, "consent recorded for the family")
			if err != nil || r.ID != id || r.Planned != 40 {
				t.Errorf("start: %+v, %v", r, err)
			}
			mu.Lock()
			defer mu.Unlock()
			if s {
				started++
			}
		})
	}
	wg.Wait()
	if started != 1 {
		t.Fatalf("%d replays started for one request id", started)
	}
	r := waitBulk(t, e, id)
	if r.State != pipeline.BulkDone || r.Replayed != 40 || r.StillDenied != 0 || r.Gone != 0 || r.Failed != 0 {
		t.Fatalf("bulk replay ended %+v", r)
	}
	eventually(t, "every letter at the GP", func() bool { return e.gp.total() == 40 })
	// The same id again, after it ended: the same replay, nothing new.
	again, s, err := e.hub.StartBulkReplay(ctx, coordinator, id, f, "again")
	if err != nil || s || again.State != pipeline.BulkDone || again.Replayed != 40 {
		t.Fatalf("the same request again: %+v started %v, %v", again, s, err)
	}
	time.Sleep(300 * time.Millisecond)
	for i := range 40 {
		if n := e.gp.count(fmt.Sprintf("REC%03d", i)); n != 1 {
			t.Fatalf("REC%03d reached the GP %d times", i, n)
		}
	}
	if c, _ := e.hub.Queue().Count(ctx, retryq.Filter{}); c.Total != 1 || c.ByDestination["casefile"] != 1 {
		t.Fatalf("left in the queue: %+v; want only the case file's referral", c)
	}
	if _, _, err := e.hub.StartBulkReplay(ctx, coordinator, pipeline.NewRequestID(), f, "nothing left"); !errors.Is(err, pipeline.ErrNothingToReplay) {
		t.Fatalf("a filter matching nothing: %v", err)
	}

	bulk, single := bulkAudits(t, e)
	if single != 0 || len(bulk) != 2 {
		t.Fatalf("audit: %d bulk records and %d single replays; want 2 and 0", len(bulk), single)
	}
	for _, a := range bulk {
		if !strings.Contains(a.Target, "destination=doctor code=consent_missing") || !strings.Contains(a.Target, "count:40") || !strings.Contains(a.Target, id) || a.Actor != "koordinator" || a.Reason != "consent recorded for the family" {
			t.Errorf("audit record %+v", a)
		}
	}
	if bulk[0].Result != "started" || !strings.HasPrefix(bulk[1].Result, "done: replayed 40") {
		t.Errorf("audit results %q, %q", bulk[0].Result, bulk[1].Result)
	}
	steps, err := e.hub.TraceLetter(ctx, "REC007")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range steps.Steps {
		found = found || (s.Step == journey.Replayed && s.Reason == "bulk replay "+id && s.Actor == "koordinator")
	}
	if !found {
		t.Errorf("the journey does not name the bulk replay: %+v", steps.Steps)
	}
	list, err := e.hub.BulkReplays(ctx)
	if err != nil || len(list) != 1 || list[0].ID != id {
		t.Fatalf("bulk replays listed: %+v, %v", list, err)
	}
}

// A bulk replay replays what matched when it was counted: letters that
// park again (still no consent) or park anew while it runs are not
// replayed a second time by it, so it ends.
func TestBulkReplayReplaysEachEntryOnce(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	parkForGP(t, e, "A", 30)
	preview, err := e.hub.Queue().Count(ctx, retryq.Filter{Destination: "doctor"})
	if err != nil || preview.Total != 30 {
		t.Fatalf("preview %+v, %v", preview, err)
	}
	parkForGP(t, e, "B", 5) // parked after the preview
	// No consent: every replayed letter parks again.
	id := pipeline.NewRequestID()
	if _, _, err := e.hub.StartBulkReplay(ctx, coordinator, id, retryq.Filter{Destination: "doctor", UpTo: preview.UpTo}, "try again"); err != nil {
		t.Fatal(err)
	}
	r := waitBulk(t, e, id)
	if r.State != pipeline.BulkDone || r.Planned != 30 || r.Replayed != 30 || r.StillDenied != 30 || r.StillDeniedBy["consent_missing"] != 30 || r.NotRouted != 0 {
		t.Fatalf("bulk replay ended %+v; want 30 replayed, all still denied", r)
	}
	eventually(t, "the replayed letters parked again", func() bool {
		c, _ := e.hub.Queue().Count(ctx, retryq.Filter{Destination: "doctor"})
		return c.Total == 35
	})
	if e.gp.total() != 0 {
		t.Fatal("a letter reached the GP without consent")
	}
	// The letters of the second batch were parked once and not replayed.
	var replayedB int
	for i := range 5 {
		tr, _ := e.hub.TraceLetter(ctx, fmt.Sprintf("B%03d", i))
		for _, s := range tr.Steps {
			if s.Step == journey.Replayed {
				replayedB++
			}
		}
	}
	if replayedB != 0 {
		t.Fatalf("%d letters parked after the preview were replayed", replayedB)
	}
	// Without a preview's bound, the replay is bounded where it starts:
	// the 35 park again behind it, and it ends after 35.
	id = pipeline.NewRequestID()
	if _, _, err := e.hub.StartBulkReplay(ctx, coordinator, id, retryq.Filter{Destination: "doctor"}, "try again"); err != nil {
		t.Fatal(err)
	}
	if r := waitBulk(t, e, id); r.State != pipeline.BulkDone || r.Planned != 35 || r.Replayed != 35 {
		t.Fatalf("the second bulk replay ended %+v; want 35 replayed", r)
	}
}

// A hub stopping during a bulk replay interrupts it between two letters;
// no letter is replayed twice or lost, and a new replay with the same
// filter takes the rest.
func TestBulkReplayInterruptedAndTakenUpAgain(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	parkForGP(t, e, "R", 150)
	if err := e.hub.RecordConsent(ctx, "2509479989", letter.Consent{GivenBy: "custody-holder", Form: "written", GivenAt: time.Now(), Scopes: []letter.Scope{letter.ScopeGP}}); err != nil {
		t.Fatal(err)
	}
	f := retryq.Filter{Destination: "doctor"}
	id := pipeline.NewRequestID()
	if _, _, err := e.hub.StartBulkReplay(ctx, coordinator, id, f, "consent recorded"); err != nil {
		t.Fatal(err)
	}
	e.shutdown()
	e.start()
	r, err := e.hub.BulkReplay(ctx, id)
	if err != nil || (r.State != pipeline.BulkInterrupted && r.State != pipeline.BulkDone) || r.Replayed+r.Gone > 150 {
		t.Fatalf("after the restart: %+v, %v", r, err)
	}
	if r.State == pipeline.BulkInterrupted {
		if r.Error == "" || r.Finished.IsZero() {
			t.Errorf("an interrupted replay says why and when: %+v", r)
		}
		// The stored progress may lag the last letters the first replay
		// took (it is saved about once a second): what is left is what the
		// queue still holds.
		left, err := e.hub.Queue().List(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		again := pipeline.NewRequestID()
		_, _, err = e.hub.StartBulkReplay(ctx, coordinator, again, f, "the rest")
		switch {
		case len(left) == 0 && errors.Is(err, pipeline.ErrNothingToReplay):
		case err != nil:
			t.Fatal(err)
		default:
			if r2 := waitBulk(t, e, again); r2.State != pipeline.BulkDone || r2.Replayed != len(left) {
				t.Fatalf("the second replay: %+v; %d letters were left", r2, len(left))
			}
		}
	} else {
		t.Log("the replay ended before the hub stopped; checking only that each letter arrives once")
	}
	eventually(t, "every letter at the GP", func() bool { return e.gp.total() == 150 })
	time.Sleep(300 * time.Millisecond)
	for i := range 150 {
		if n := e.gp.count(fmt.Sprintf("R%03d", i)); n != 1 {
			t.Fatalf("R%03d reached the GP %d times", i, n)
		}
	}
}
