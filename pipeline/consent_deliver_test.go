package pipeline_test

import (
	"context"
	"testing"
	"time"

	"github.com/samhub/samhub/pipeline/letter"
)

// A sink sees the consent the routing decision was made on, not only the
// letter's own: sinks that check consent themselves (the EPJ) would refuse
// a letter whose consent the coordinator recorded.
func TestSinkSeesTheRecordedConsent(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if err := e.hub.RecordConsent(ctx, "2509479989", letter.Consent{GivenBy: "custody-holder", Form: "written", GivenAt: time.Now().Add(-time.Hour), Scopes: []letter.Scope{letter.ScopeGP}}); err != nil {
		t.Fatal(err)
	}
	e.feed.ch <- mkLetter("C1", letter.KindRecommendation, "THREAD-C")
	eventually(t, "the recommendation at the GP", func() bool { return e.gp.total() == 1 })
	e.gp.mu.Lock()
	got := e.gp.letters[0]
	e.gp.mu.Unlock()
	if !got.Consent.Allows(letter.ScopeGP, time.Now()) {
		t.Fatalf("the GP sink got consent %+v; want the recorded consent covering gp", got.Consent)
	}
}
