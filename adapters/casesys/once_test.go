package casesys

import (
	"context"
	"testing"
	"time"

	"github.com/samhub/samhub/adapters"
	casesyssim "github.com/samhub/samhub/internal/sim/casesys"
)

// These tests run the simulator as the real case systems behave
// (interfaces.md §1.4): Idempotency-Key ignored and a second object with
// the same externalId stored. Only the adapter's search before create and
// its create guard stand between a retry and a second document, so each
// test fails if the adapter did not search or did not guard.

func realSystem(c *casesyssim.Config) { c.IgnoreIdempotencyKeys = true }

// ignored configures the adapter for such a system.
var ignored = map[string]any{"idempotency_keys": "ignored"}

func noDuplicates(t *testing.T, e *env) {
	t.Helper()
	if d := e.sim.Duplicates(); len(d) != 0 {
		t.Errorf("objects stored twice: %v", d)
	}
	if n := len(e.sim.Documents()); n != 1 {
		t.Errorf("documents = %d, want 1", n)
	}
	if n := len(e.sim.JournalNotes()); n != 1 {
		t.Errorf("journal notes = %d, want 1", n)
	}
	if n := len(e.sim.Cases()); n != 1 {
		t.Errorf("cases = %d, want 1", n)
	}
}

// TestLostRepliesWithoutIdempotencyMakeOneOfEach: the case system saves,
// then the answer is lost; the retry finds what was saved.
func TestLostRepliesWithoutIdempotencyMakeOneOfEach(t *testing.T) {
	for _, route := range []string{"POST /cases", "POST /cases/{caseId}/documents", "POST /cases/{caseId}/journal-notes"} {
		t.Run(route, func(t *testing.T) {
			e := startSim(t, realSystem)
			a := e.adapter(nil, ignored)
			l := referral(t, "medcom:LOST1")
			e.sim.DropResponses(route, 2) // net/http may resend once on its own
			if _, err := a.Deliver(context.Background(), l); err == nil {
				t.Fatal("want the lost answer as an error")
			}
			if _, err := a.Deliver(context.Background(), l); err != nil {
				t.Fatal(err)
			}
			noDuplicates(t, e)
			if c := e.sim.Counts().ExternalIDs[DocumentExternalID(l.ID)]; c.Created != 1 {
				t.Errorf("document externalId count = %+v", c)
			}
		})
	}
}

// whileCreating runs second while the first create on route is inside the
// case system, before it commits: a redelivery or a second replica at the
// worst moment. second gets up to two seconds to finish there; a guarded
// second waits for the first and finishes after it.
func whileCreating(e *env, route string, second func() error) (wait func() error) {
	errc := make(chan error, 1)
	e.sim.BeforeNext(route, func() {
		done := make(chan struct{})
		go func() { errc <- second(); close(done) }()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
		}
	})
	return func() error { return <-errc }
}

// TestConcurrentDeliveriesOfOneLetterMakeOneDocument: a redelivery runs
// while the first delivery's upload is in the case system.
func TestConcurrentDeliveriesOfOneLetterMakeOneDocument(t *testing.T) {
	e := startSim(t, realSystem)
	a := e.adapter(nil, ignored)
	l := referral(t, "medcom:CC1")
	if _, err := e.sim.SeedCase(casesyssim.Case{PrimaryParty: casesyssim.Person{CPR: brunoCPR, GivenName: "Bruno Test", FamilyName: "Elmer"}}); err != nil {
		t.Fatal(err)
	}
	second := whileCreating(e, "POST /cases/{caseId}/documents", func() error { _, err := a.Deliver(context.Background(), l); return err })
	if _, err := a.Deliver(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	if err := second(); err != nil {
		t.Fatal(err)
	}
	noDuplicates(t, e)
}

// TestTwoLettersAboutOneNewChildMakeOneCase: different letters carry
// different Idempotency-Keys, so even a case system that honours them
// would make two cases if both searched before either created.
func TestTwoLettersAboutOneNewChildMakeOneCase(t *testing.T) {
	e := startSim(t, nil)
	a := e.adapter(nil, nil)
	second := whileCreating(e, "POST /cases", func() error { _, err := a.Deliver(context.Background(), referral(t, "medcom:NC2")); return err })
	if _, err := a.Deliver(context.Background(), referral(t, "medcom:NC1")); err != nil {
		t.Fatal(err)
	}
	if err := second(); err != nil {
		t.Fatal(err)
	}
	if n := len(e.sim.Cases()); n != 1 {
		t.Errorf("cases = %d, want 1", n)
	}
	if n := len(e.sim.Documents()); n != 2 {
		t.Errorf("documents = %d, want 2", n)
	}
}

// TestTwoReplicasWithoutIdempotencyCreateOnce: two adapter instances on one
// state store (two hub replicas) deliver the same letter at once to a case
// system that ignores Idempotency-Key; the state-store lease keeps the
// second from creating while the first is at it.
func TestTwoReplicasWithoutIdempotencyCreateOnce(t *testing.T) {
	e := startSim(t, realSystem)
	state := newMapState()
	a, b := e.adapter(state, ignored), e.adapter(state, ignored)
	l := referral(t, "medcom:TR1")
	if _, err := e.sim.SeedCase(casesyssim.Case{PrimaryParty: casesyssim.Person{CPR: brunoCPR, GivenName: "Bruno Test", FamilyName: "Elmer"}}); err != nil {
		t.Fatal(err)
	}
	second := whileCreating(e, "POST /cases/{caseId}/documents", func() error { _, err := b.Deliver(context.Background(), l); return err })
	if _, err := a.Deliver(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	err := second()
	if class, code := classOf(t, err); class != adapters.ClassRetryable || code != "request_in_progress" || adapters.RetryAfterOf(err) <= 0 {
		t.Fatalf("second replica: %v/%s after %v: %v", class, code, adapters.RetryAfterOf(err), err)
	}
	d, err := b.Deliver(context.Background(), l)
	if err != nil || !d.Existing {
		t.Fatalf("retry on the second replica: %+v %v", d, err)
	}
	noDuplicates(t, e)
	if n := state.Keys("casesys.casesys.create."); n != 0 {
		t.Errorf("leases left behind: %d", n)
	}
}

// TestExpiredLeaseIsTakenOver: a replica that died holding a lease does
// not block the letter for longer than the lease.
func TestExpiredLeaseIsTakenOver(t *testing.T) {
	e := startSim(t, realSystem)
	state := newMapState()
	a := e.adapter(state, map[string]any{"idempotency_keys": "ignored", "timeout": "1s"})
	l := referral(t, "medcom:EX1")
	key := "casesys.casesys.create." + opaque("create", DocumentExternalID(l.ID))
	state.Put(context.Background(), key, []byte(`{"holder":"dead","until":"`+time.Now().Add(-time.Second).UTC().Format(time.RFC3339Nano)+`"}`))
	if _, err := a.Deliver(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	noDuplicates(t, e)
}
