package pipeline

import (
	"testing"
	"time"

	"github.com/samhub/samhub/pipeline/letter"
)

// The coordinator's record grants the scopes, but an objection a letter
// reports after the record was given still stands; one from before it
// does not (the family consented again, and the coordinator recorded it).
func TestALettersLaterObjectionStandsOverTheRecord(t *testing.T) {
	mon := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	rec := &letter.Consent{GivenBy: "custody-holder", Form: "written", GivenAt: mon, Scopes: []letter.Scope{letter.ScopeGP, letter.ScopeRegionPsychiatry}}
	thu := mon.Add(72 * time.Hour)
	for name, c := range map[string]struct {
		own      *letter.Consent
		received time.Time
		allowed  bool
	}{
		"no statement in the letter":           {nil, thu, true},
		"the letter's scopes do not narrow it": {&letter.Consent{Scopes: []letter.Scope{letter.ScopeMunicipality}}, thu, true},
		"withdrawn after the record":           {&letter.Consent{WithdrawnAt: mon.Add(48 * time.Hour)}, thu, false},
		"withdrawn before the record":          {&letter.Consent{WithdrawnAt: mon.Add(-48 * time.Hour)}, thu, true},
		"refused in a later letter":            {&letter.Consent{YoungPersonRefused: true}, thu, false},
		"refused in an earlier letter":         {&letter.Consent{YoungPersonRefused: true}, mon.Add(-time.Hour), true},
	} {
		got := effectiveConsent(rec, c.own, c.received)
		if allowed := got.Allows(letter.ScopeRegionPsychiatry, thu); allowed != c.allowed {
			t.Errorf("%s: region allowed %v, want %v", name, allowed, c.allowed)
		}
	}
	if got := effectiveConsent(nil, &letter.Consent{Scopes: []letter.Scope{letter.ScopeGP}}, thu); !got.Allows(letter.ScopeGP, thu) {
		t.Error("without a record the letter's own consent goes")
	}
	if rec.YoungPersonRefused || !rec.WithdrawnAt.IsZero() {
		t.Error("the record itself was changed")
	}
}
