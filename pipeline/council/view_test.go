package council

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/samhub/samhub/pipeline/council/schedule"
	"github.com/samhub/samhub/pipeline/letter"
)

// The meeting view lists the consent only of the sectors a configured
// route needs it for: the municipality's own case system needs none, so
// it is not shown as missing.
func TestMeetingViewListsOnlyTheConsentsRoutesNeed(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.ConsentSectors = []string{"gp", "region_psychiatry"} })
	l := f.referral("R1", f.clock.now(), "2509479989")
	l.Consent = nil // nothing stated: every needed sector is missing
	f.apply(f.c, l)
	v, err := f.c.MeetingView(context.Background(), "2026-03-10")
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Children) != 1 {
		t.Fatalf("children %+v", v.Children)
	}
	got := v.Children[0].Consent.Sectors
	if len(got) != 2 || got["gp"] != "missing" || got["region_psychiatry"] != "missing" {
		t.Errorf("sectors %v; want gp and region_psychiatry missing, and no other", got)
	}
	if kids := f.c.Referrals(ReferralFilter{}); len(kids) != 1 || len(kids[0].Consent.Sectors) != 2 {
		t.Errorf("the overview's sectors %+v", kids)
	}
}

// The needed sectors are shown in the order of letter.Scopes, and only
// those that are consent scopes; a register told nothing shows them all.
func TestConsentScopesFollowLetterScopes(t *testing.T) {
	c := &Council{cfg: Options{ConsentSectors: []string{"region_psychiatry", "municipality", "internal"}}}
	want := []letter.Scope{letter.ScopeMunicipality, letter.ScopeRegionPsychiatry}
	if got := c.consentScopes(); !slices.Equal(got, want) {
		t.Errorf("scopes %v, want %v (in the order of letter.Scopes, internal is no consent scope)", got, want)
	}
	if got := (&Council{}).consentScopes(); !slices.Equal(got, letter.Scopes) {
		t.Errorf("without ConsentSectors: %v, want every scope", got)
	}
}

// The agenda CSV has Danish headers; its status is in Danish too, in the
// console's words for it (StateNames), never a code.
func TestCSVStatusIsDanish(t *testing.T) {
	c := &Council{rule: schedule.Rule{Loc: time.UTC}}
	v := MeetingView{Children: []Child{{LetterID: "R1", State: "waiting"}, {LetterID: "R2", State: "answered"}, {LetterID: "R3", State: "unanswered"}}}
	var b strings.Builder
	if err := c.WriteCSV(&b, v); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{";venter;R1", ";besvaret;R2", ";ubesvaret;R3"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("csv lacks %q:\n%s", want, b.String())
		}
	}
	for _, st := range []string{"waiting", "answered", "unanswered"} {
		if StateName(st, "da") == st || StateName(st, "en") != st {
			t.Errorf("state %s: da %q, en %q", st, StateName(st, "da"), StateName(st, "en"))
		}
	}
}
