package route_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/samhub/samhub/pipeline/letter"
	"github.com/samhub/samhub/pipeline/route"
)

var directory = []route.Receiver{
	{Name: "Lægehuset Ærø", Role: "gp", GLN: "5790000123456", Formats: []string{"xdis91"}},
	{Name: "Lægerne på Torvet", Role: "gp", GLN: "5790000654321", SOR: "440001000016001"},
	{Name: "Børne- og ungdomspsykiatrien", Role: "region", SOR: "6071000016008", Formats: []string{"fhir-json"}},
}

func addressRouter() *route.Router {
	d := map[string]route.Destination{}
	for k, v := range dests {
		d[k] = v
	}
	d["region"] = route.Destination{Sector: "region_psychiatry", Receiver: "6071000016008"}
	return route.New(route.Options{Rules: rules, Destinations: d, Receivers: directory})
}

func TestRulesNarrowToTheRecipientsALetterNames(t *testing.T) {
	r := addressRouter()
	all := consent(letter.ScopeGP, letter.ScopeRegionPsychiatry, letter.ScopeParents)
	gpOnly := &letter.Letter{ID: "r1", Kind: letter.KindRecommendation, Source: "casesys",
		Receivers: []letter.Party{{Role: "gp", GLN: "5790000123456"}}}
	for dest, want := range map[string]route.Verdict{"gp": route.Deliver, "region": route.Skip, "parents": route.Skip, "casefile": route.Deliver} {
		if d := r.Decide(gpOnly, dest, all, now); d.Verdict != want {
			t.Errorf("%s: got %s (%s), want %s", dest, d.Verdict, d.Reason, want)
		}
	}
	// A role the directory knows counts as named: a bare GLN of a GP.
	byDirectory := &letter.Letter{ID: "r2", Kind: letter.KindRecommendation, Source: "casesys",
		Receivers: []letter.Party{{GLN: "5790000654321"}}}
	if d := r.Decide(byDirectory, "region", all, now); d.Verdict != route.Skip {
		t.Errorf("a letter naming only a GP (by the directory) went to the region: %s", d.Reason)
	}
	// A letter naming a receiver of unknown role is left to the rules (it
	// is then addressed, or parks as unresolved: never skipped unseen).
	unnamed := &letter.Letter{ID: "r3", Kind: letter.KindRecommendation, Source: "casesys", Receivers: []letter.Party{{Role: "municipality", GLN: "5790001382445"}, {GLN: "5790000999999"}}}
	if d := r.Decide(unnamed, "region", all, now); d.Verdict != route.Deliver {
		t.Errorf("a letter naming someone unknown was narrowed: %s", d.Reason)
	}
}

func TestAddressResolvesFromTheRoutingDecision(t *testing.T) {
	r := addressRouter()
	referringGP := &letter.Party{Name: "Lægehuset Ærø", GLN: "5790000123456"}
	cases := []struct {
		name   string
		l      *letter.Letter
		dest   string
		thread *letter.Party
		want   []string // GLN or SOR of each addressee
		how    string
		ok     bool
	}{
		{"the GP the document names", &letter.Letter{Receivers: []letter.Party{{Role: "municipality", GLN: "5790001382445"}, {Role: "gp", GLN: "5790000654321"}}}, "gp", referringGP, []string{"5790000654321"}, route.AddressedNamed, true},
		{"the document names the GP without identifiers: the referring GP", &letter.Letter{InReplyTo: "ref-1", Receivers: []letter.Party{{Role: "gp", Name: "egen læge"}}}, "gp", referringGP, []string{"5790000123456"}, route.AddressedThread, true},
		{"no recipients at all: the referring GP", &letter.Letter{InReplyTo: "ref-1"}, "gp", referringGP, []string{"5790000123456"}, route.AddressedThread, true},
		{"the thread's party is a hospital, not a GP", &letter.Letter{InReplyTo: "ref-1"}, "gp", &letter.Party{Role: "hospital", GLN: "5790000120400"}, nil, "", false},
		{"nothing to resolve a GP from", &letter.Letter{Receivers: []letter.Party{{Role: "municipality", GLN: "5790001382445"}}}, "gp", nil, nil, "", false},
		{"region: the destination's configured receiver", &letter.Letter{}, "region", nil, []string{"6071000016008"}, route.AddressedDestination, true},
		{"region: the region the document names wins", &letter.Letter{Receivers: []letter.Party{{Role: "region", SOR: "999888777"}}}, "region", nil, []string{"999888777"}, route.AddressedNamed, true},
		{"parents by name", &letter.Letter{Receivers: []letter.Party{{Role: "parents", Name: "Brita Test Berggren"}, {Role: "parents", Name: "Bo Test Berggren"}}}, "parents", nil, []string{"Brita Test Berggren", "Bo Test Berggren"}, route.AddressedNamed, true},
		{"parents by CPR alone (Digital Post)", &letter.Letter{Receivers: []letter.Party{{Role: "parents", CPR: "1509819996"}}}, "parents", nil, []string{"cpr:1509819996"}, route.AddressedNamed, true},
		{"the case file needs no addressee", &letter.Letter{}, "casefile", nil, nil, "", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			to, how, ok := r.Address(c.l, c.dest, c.thread)
			var got []string
			for _, p := range to {
				switch {
				case p.GLN != "":
					got = append(got, p.GLN)
				case p.SOR != "":
					got = append(got, p.SOR)
				case p.Name == "" && p.CPR != "":
					got = append(got, "cpr:"+p.CPR)
				default:
					got = append(got, p.Name)
				}
			}
			if ok != c.ok || how != c.how || !slices.Equal(got, c.want) {
				t.Fatalf("got %v %q %v, want %v %q %v", got, how, ok, c.want, c.how, c.ok)
			}
		})
	}
}

func TestAddresseesCarryTheDirectorysFormats(t *testing.T) {
	r := addressRouter()
	to, _, _ := r.Address(&letter.Letter{Receivers: []letter.Party{{Role: "gp", GLN: "5790000123456"}}}, "gp", nil)
	if len(to) != 1 || !slices.Equal(to[0].Accepts, []string{"xdis91"}) || to[0].Name != "Lægehuset Ærø" {
		t.Fatalf("addressee not completed from the directory: %+v", to)
	}
	to, _, _ = r.Address(&letter.Letter{}, "region", nil)
	if len(to) != 1 || to[0].Role != "region" || to[0].SOR != "6071000016008" || to[0].GLN != "" || !slices.Equal(to[0].Accepts, []string{"fhir-json"}) {
		t.Fatalf("configured receiver not completed from the directory: %+v", to)
	}
}

func TestPlanAddressedShowsWhomEachDeliveryGoesTo(t *testing.T) {
	r := addressRouter()
	all := consent(letter.ScopeGP, letter.ScopeRegionPsychiatry, letter.ScopeParents)
	l := &letter.Letter{ID: "r1", Kind: letter.KindRecommendation, Source: "casesys", InReplyTo: "ref-1",
		Receivers: []letter.Party{{Role: "gp", Name: "egen læge"}, {Role: "region", SOR: "6071000016008"}}}
	byDest := map[string]route.Decision{}
	for _, d := range r.PlanAddressed(l, all, now, nil) {
		byDest[d.Destination] = d
	}
	if d := byDest["region"]; d.Verdict != route.Deliver || len(d.To) != 1 || d.To[0].Name != "Børne- og ungdomspsykiatrien" {
		t.Errorf("region: %+v", d)
	}
	if d := byDest["gp"]; d.Verdict != route.Deliver || len(d.To) != 0 || !strings.Contains(d.Addressed, "ref-1") {
		t.Errorf("gp without the answered letter at hand: %+v", d)
	}
	l.InReplyTo = ""
	for _, d := range r.PlanAddressed(l, all, now, nil) {
		if d.Destination == "gp" && (d.Verdict != route.Deny || d.Code != route.CodeUnresolved) {
			t.Errorf("gp with nothing to resolve from: %+v", d)
		}
	}
}

// Discharge notes may go to the GP without consent (Sundhedsloven § 41),
// but a recorded withdrawal or a young person's refusal still stops them.
func TestDischargeNoteToTheGPWithoutConsentStopsAtAnObjection(t *testing.T) {
	r := route.New(route.Options{Rules: []route.Rule{{Name: "discharge-to-gp", Match: route.Match{Kind: []string{"discharge-note"}}, To: []string{"gp"}, RequireConsent: &no}}, Destinations: dests, Receivers: directory})
	l := &letter.Letter{ID: "d1", Kind: letter.KindDischargeNote, Receivers: []letter.Party{{Role: "gp", GLN: "5790000123456"}}}
	if d := r.Decide(l, "gp", nil, now); d.Verdict != route.Deliver {
		t.Fatalf("without any consent: %+v", d)
	}
	if d := r.Decide(l, "gp", &letter.Consent{Scopes: []letter.Scope{letter.ScopeGP}, WithdrawnAt: now.Add(-time.Hour)}, now); d.Verdict != route.Deny || d.Code != "consent_withdrawn" {
		t.Fatalf("after a withdrawal: %+v", d)
	}
	if d := r.Decide(l, "gp", &letter.Consent{YoungPersonRefused: true}, now); d.Verdict != route.Deny || d.Code != "young_person_refused" {
		t.Fatalf("after a young person's refusal: %+v", d)
	}
}

// A letter that calls an organisation of the directory by another role (the
// region's SOR under recipients.gp) goes by what the directory says it is:
// it needs the region's consent, and the GP's does not send it there.
func TestAReceiverIsTheOrganisationTheDirectorySaysItIs(t *testing.T) {
	r := addressRouter()
	l := &letter.Letter{ID: "r9", Kind: letter.KindRecommendation, Source: "casesys",
		Receivers: []letter.Party{{Role: "gp", SOR: "6071000016008"}}}
	gpOnly := consent(letter.ScopeGP)
	for _, d := range r.PlanAddressed(l, gpOnly, now, nil) {
		if d.Verdict == route.Deliver && d.Destination != "casefile" {
			t.Errorf("%s: delivered to %+v with the GP's consent only", d.Destination, d.To)
		}
	}
	if d := r.Decide(l, "region", gpOnly, now); d.Verdict != route.Deny || d.Code != "consent_scope" {
		t.Errorf("region: %+v, want denied for want of the region's consent", d)
	}
	to, _, ok := r.Address(l, "region", nil)
	if !ok || len(to) != 1 || to[0].Role != "region" || to[0].SOR != "6071000016008" {
		t.Errorf("region addressee %+v %v", to, ok)
	}
}

// A destination's configured receiver of another sector (a hospital's GLN
// behind the GP's destination, which configuration now refuses) is no
// addressee: the letter parks as unresolved. Before, the hospital got the
// letter under the GP's consent.
func TestAConfiguredReceiverOfAnotherSectorIsNoAddressee(t *testing.T) {
	d := map[string]route.Destination{"gp": {Sector: "gp", Receiver: "5790000120400"}}
	dir := append(slices.Clone(directory), route.Receiver{Name: "Hospitalet", Role: "hospital", GLN: "5790000120400"})
	r := route.New(route.Options{Rules: []route.Rule{{Name: "rec", To: []string{"gp"}}}, Destinations: d, Receivers: dir})
	l := &letter.Letter{ID: "r1", Kind: letter.KindRecommendation}
	if to, how, ok := r.Address(l, "gp", nil); ok || to != nil {
		t.Fatalf("addressed to %+v (%s) through the GP's destination", to, how)
	}
	for _, dec := range r.PlanAddressed(l, consent(letter.ScopeGP), now, nil) {
		if dec.Verdict != route.Deny || dec.Code != route.CodeUnresolved {
			t.Errorf("dry run: %+v, want receiver_unresolved", dec)
		}
	}
}

// Only the receiver directory says which formats a receiver takes: an
// addressee it does not list gets the sink's default, whatever formats the
// letter carries for it. Before, those were kept (no source sets them
// today; a letter that did would have chosen the MedCom format).
func TestAnUnlistedAddresseeTakesNoFormatTheLetterClaims(t *testing.T) {
	r := addressRouter()
	l := &letter.Letter{Receivers: []letter.Party{{Role: "gp", GLN: "5790000999999", Accepts: []string{"xdis91"}}}}
	to, _, ok := r.Address(l, "gp", nil)
	if !ok || len(to) != 1 || to[0].Accepts != nil {
		t.Fatalf("addressee %+v %v, want the unlisted GP without formats", to, ok)
	}
	if l.Receivers[0].Accepts == nil {
		t.Fatal("Address changed the letter")
	}
}
