package council

import (
	"context"
	"slices"
	"testing"

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
