package route_test

import (
	"testing"

	"github.com/samhub/samhub/pipeline/letter"
	"github.com/samhub/samhub/pipeline/route"
)

// BenchmarkDecide is the routing decision each destination's handler makes
// per letter (rules and consent from route_test.go).
func BenchmarkDecide(b *testing.B) {
	r := route.New(route.Options{Rules: rules, Destinations: dests, Receivers: nil})
	l := &letter.Letter{ID: "r1", Kind: letter.KindRecommendation, Source: "casesys",
		Patient: &letter.Patient{CPR: "2509479989"}, Receivers: []letter.Party{{Role: "gp", GLN: "5790000000005"}}}
	c := consent(letter.ScopeMunicipality, letter.ScopeGP, letter.ScopeRegionPsychiatry)
	b.ReportAllocs()
	for b.Loop() {
		for _, d := range []string{"casefile", "gp", "region", "parents"} {
			_ = r.Decide(l, d, c, now)
		}
	}
}

// BenchmarkAnonymise is the copy a forum destination gets.
func BenchmarkAnonymise(b *testing.B) {
	l := &letter.Letter{ID: "n1", Kind: letter.KindNote, Format: "xdis91",
		Patient: &letter.Patient{CPR: "2509479989", GivenName: "Bruno Test", FamilyName: "Elmer"},
		Text:    "Samrådet har drøftet sagen om Bruno Test Elmer (2509479989). Skolen og PPR beskriver uro i klassen."}
	secret := []byte("0123456789abcdef0123456789abcdef")
	b.ReportAllocs()
	for b.Loop() {
		_ = route.Anonymise(l, secret)
	}
}
