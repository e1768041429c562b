package route_test

import (
	"testing"
	"time"

	"github.com/samhub/samhub/pipeline/letter"
	"github.com/samhub/samhub/pipeline/route"
)

// Where NeedsConsent says no, no consent changes the decision (so a
// destination may skip reading the register); where it says yes, some
// consent does (so it is not merely always true).
func TestNeedsConsentIsExactlyWhereConsentDecides(t *testing.T) {
	r := route.New(route.Options{Rules: rules, Destinations: dests})
	consents := []*letter.Consent{nil, consent(letter.Scopes...), consent(letter.ScopeMunicipality),
		{Scopes: letter.Scopes, WithdrawnAt: now.Add(-time.Minute)}, {Scopes: letter.Scopes, YoungPersonRefused: true}}
	letters := []*letter.Letter{
		{Kind: letter.KindReferral, Source: "medcom"},
		{Kind: letter.KindRecommendation, Source: "casesys"},
		{Kind: letter.KindNote, Sender: letter.Party{GLN: "5790000120400"}},
		{Kind: letter.KindNote, Category: "regarding-referral", Receivers: []letter.Party{{Role: "ppr"}}},
		{Kind: letter.KindNote, Format: "xdis91"},
		{Kind: letter.KindNotification},
	}
	needed := 0
	for _, l := range letters {
		for dest := range dests {
			verdicts := map[route.Verdict]bool{}
			for _, c := range consents {
				verdicts[r.Decide(l, dest, c, now).Verdict] = true
			}
			switch needs := r.NeedsConsent(l, dest); {
			case !needs && len(verdicts) > 1:
				t.Errorf("%s from %s at %s: NeedsConsent says no, but the consent changes the decision (%v)", l.Kind, l.Source, dest, verdicts)
			case needs:
				needed++
			}
		}
	}
	if needed == 0 {
		t.Fatal("NeedsConsent never said yes")
	}
	rec := &letter.Letter{Kind: letter.KindRecommendation, Source: "casesys"}
	if !r.NeedsConsent(rec, "gp") || r.NeedsConsent(rec, "casefile") {
		t.Errorf("a recommendation needs consent for the GP (%v) and not for the case file (%v)", r.NeedsConsent(rec, "gp"), r.NeedsConsent(rec, "casefile"))
	}
}
