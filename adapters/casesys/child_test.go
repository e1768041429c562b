package casesys

import (
	"context"
	"testing"

	casesyssim "github.com/samhub/samhub/internal/sim/casesys"
	"github.com/samhub/samhub/pipeline/letter"
)

// MedCom's fictitious test persons (shared/domain/medcom.md).
const (
	xeCPRSystem = "urn:oid:1.2.208.176.1.6.1.1"
	deCPRSystem = "urn:oid:1.2.208.176.1.6.1.3"
)

// letterAbout is a referral-shaped letter about p in thread.
func letterAbout(t *testing.T, id, thread string, kind letter.Kind, p letter.Patient) *letter.Letter {
	t.Helper()
	l := referral(t, id)
	l.ThreadID, l.Kind, l.Patient = thread, kind, &p
	return l
}

func onlyCase(t *testing.T, e *env) casesyssim.Case {
	t.Helper()
	cs := e.sim.Cases()
	if len(cs) != 1 {
		t.Fatalf("cases = %+v, want exactly one", cs)
	}
	return cs[0]
}

// TestChildsNameSurvivesTheRoundTrip: the case is made with the child's
// name from the referral, and the council's recommendation from that case
// names the child exactly so: several given names, æøå, a family name
// MedCom marked unknown.
func TestChildsNameSurvivesTheRoundTrip(t *testing.T) {
	for _, p := range []letter.Patient{
		{CPR: "2512489996", GivenName: "Nancy Ann Test", FamilyName: "Berggren"},
		{CPR: "2311143995", GivenName: "Cæcar Test", FamilyName: "Østergård"},
		{ReplacementID: "1206550VK9", ReplacementSystem: deCPRSystem, GivenName: "Peter"},
	} {
		t.Run(p.GivenName, func(t *testing.T) {
			e := startSim(t, nil)
			a := e.adapter(nil, nil)
			if _, err := a.Deliver(context.Background(), letterAbout(t, "medcom:N1", "medcom:N1", letter.KindReferral, p)); err != nil {
				t.Fatal(err)
			}
			c := onlyCase(t, e)
			want := casesyssim.Person{CPR: p.CPR, GivenName: p.GivenName, FamilyName: p.FamilyName, Name: p.GivenName + " " + p.FamilyName}
			if p.FamilyName == "" {
				want.Name = p.GivenName
			}
			if p.CPR == "" {
				want.ReplacementID, want.ReplacementSystem = p.ReplacementID, p.ReplacementSystem
			}
			if c.PrimaryParty != want {
				t.Errorf("case party = %+v, want %+v", c.PrimaryParty, want)
			}
			if _, err := e.sim.SeedOutboxDocument(c.ID, casesyssim.SeedDocument{Title: "Anbefaling", Text: "Testtekst.",
				Recipients: casesyssim.OutboxRecipients{GP: &casesyssim.Organisation{Name: "Lægerne Test", GLN: "5790000121526"}}}); err != nil {
				t.Fatal(err)
			}
			pub := newRecorder()
			if err := a.pollOnce(context.Background(), pub); err != nil {
				t.Fatal(err)
			}
			got := pub.letters[0].Patient
			if got == nil || got.GivenName != p.GivenName || got.FamilyName != p.FamilyName || got.CPR != p.CPR ||
				got.ReplacementID != p.ReplacementID || got.ReplacementSystem != p.ReplacementSystem {
				t.Errorf("outbox letter's patient = %+v, want %+v", got, p)
			}
		})
	}
}

func patches(e *env) int { return countRoute(e.sim.Requests(), "PATCH /cases/{caseId}") }

func TestBetterNameFromALaterLetterUpdatesTheCase(t *testing.T) {
	e := startSim(t, nil)
	a := e.adapter(nil, nil)
	ctx := context.Background()
	// A caseworker typed the name without its parts, and shorter.
	seeded, err := e.sim.SeedCase(casesyssim.Case{PrimaryParty: casesyssim.Person{CPR: brunoCPR, Name: "Bruno Elmer"}})
	if err != nil {
		t.Fatal(err)
	}
	// MedCom marked the family name unknown: not better than the case's.
	if _, err := a.Deliver(ctx, letterAbout(t, "medcom:B1", "medcom:B1", letter.KindReply, letter.Patient{CPR: brunoCPR, GivenName: "Bruno Test"})); err != nil {
		t.Fatal(err)
	}
	if n := patches(e); n != 0 {
		t.Errorf("a name without a family name replaced one with: %d updates", n)
	}
	if _, err := a.Deliver(ctx, letterAbout(t, "medcom:B2", "medcom:B2", letter.KindReply, letter.Patient{CPR: brunoCPR, GivenName: "Bruno Test", FamilyName: "Elmer"})); err != nil {
		t.Fatal(err)
	}
	c := onlyCase(t, e)
	if want := (casesyssim.Person{CPR: brunoCPR, Name: "Bruno Test Elmer", GivenName: "Bruno Test", FamilyName: "Elmer"}); c.PrimaryParty != want || c.Version != seeded.Version+1 {
		t.Errorf("case party = %+v v%d", c.PrimaryParty, c.Version)
	}
	// Shorter, and the same again: nothing to change.
	for i, p := range []letter.Patient{{CPR: brunoCPR, GivenName: "Bruno", FamilyName: "Elmer"}, {CPR: brunoCPR, GivenName: "Bruno Test", FamilyName: "Elmer"}} {
		if _, err := a.Deliver(ctx, letterAbout(t, "medcom:B3"+string(rune('a'+i)), "medcom:B3", letter.KindReply, p)); err != nil {
			t.Fatal(err)
		}
	}
	if n := patches(e); n != 1 {
		t.Errorf("updates = %d, want 1", n)
	}
	if docs := e.sim.Documents(); len(docs) != 4 {
		t.Errorf("documents = %d, want 4", len(docs))
	}
}

// TestUpdateReadsTheCaseAgainWhenItChanged: a caseworker changes the case
// between the adapter's search and its update; the case system answers 412
// and the adapter reads the case and decides anew instead of failing.
func TestUpdateReadsTheCaseAgainWhenItChanged(t *testing.T) {
	e := startSim(t, nil)
	a := e.adapter(nil, nil)
	c, err := e.sim.SeedCase(casesyssim.Case{PrimaryParty: casesyssim.Person{CPR: brunoCPR}})
	if err != nil {
		t.Fatal(err)
	}
	e.sim.BeforeNext("PATCH /cases/{caseId}", func() {
		if _, err := e.sim.EditCase(c.ID, func(c *casesyssim.Case) {
			c.PrimaryParty = casesyssim.Person{CPR: brunoCPR, Name: "Bruno Test Elmer", GivenName: "Bruno Test", FamilyName: "Elmer"}
		}); err != nil {
			t.Error(err)
		}
	})
	if _, err := a.Deliver(context.Background(), referral(t, "medcom:V1")); err != nil {
		t.Fatal(err)
	}
	got := onlyCase(t, e)
	if got.PrimaryParty.FamilyName != "Elmer" || got.UpdatedAt == nil {
		t.Errorf("case = %+v; want the caseworker's edit", got.PrimaryParty)
	}
	reqs := e.sim.Requests()
	if reads := countRoute(reqs, "GET /cases/{caseId}"); reads != 1 || patches(e) != 1 {
		t.Errorf("reads %d, updates %d; want 1 and 1 (the refused one)", reads, patches(e))
	}
}

func TestClosedCaseIsNotUpdated(t *testing.T) {
	e := startSim(t, nil)
	a := e.adapter(nil, nil)
	c, _ := e.sim.SeedCase(casesyssim.Case{PrimaryParty: casesyssim.Person{CPR: brunoCPR}})
	e.sim.CloseCase(c.ID)
	_, err := a.Deliver(context.Background(), referral(t, "medcom:C1"))
	if _, code := classOf(t, err); code != "case_closed" {
		t.Errorf("code = %s", code)
	}
	if patches(e) != 0 {
		t.Error("a closed case was updated")
	}
}

// TestChildKnownByReplacementIDGetsTheCPRFromItsThread: a child referred
// with only an X-eCPR gets a case keyed on it; a later letter in the
// referral's thread carries the real CPR (MedCom letters carry one or the
// other, never both) and the case is updated, not duplicated.
func TestChildKnownByReplacementIDGetsTheCPRFromItsThread(t *testing.T) {
	e := startSim(t, nil)
	a := e.adapter(nil, nil)
	ctx := context.Background()
	first := letterAbout(t, "medcom:R1", "medcom:thread-R", letter.KindReferral, letter.Patient{ReplacementID: "0703921VJ4", ReplacementSystem: xeCPRSystem, GivenName: "Birgit", FamilyName: "Berggren"})
	if _, err := a.Deliver(ctx, first); err != nil {
		t.Fatal(err)
	}
	c := onlyCase(t, e)
	if c.PrimaryParty.CPR != "" || c.PrimaryParty.ReplacementID != "0703921VJ4" || c.Referral == nil || c.Referral.ThreadID != "medcom:thread-R" {
		t.Fatalf("case = %+v", c)
	}
	// Another letter with the replacement id finds the case by it.
	if _, err := a.Deliver(ctx, letterAbout(t, "medcom:R2", "medcom:other-thread", letter.KindNote, letter.Patient{ReplacementID: "0703921VJ4", ReplacementSystem: xeCPRSystem})); err != nil {
		t.Fatal(err)
	}
	// The GP's answer in the thread knows the CPR.
	if _, err := a.Deliver(ctx, letterAbout(t, "medcom:R3", "medcom:thread-R", letter.KindReply, letter.Patient{CPR: "1509819996", GivenName: "Brita Test", FamilyName: "Berggren"})); err != nil {
		t.Fatal(err)
	}
	c = onlyCase(t, e)
	want := casesyssim.Person{CPR: "1509819996", ReplacementID: "0703921VJ4", ReplacementSystem: xeCPRSystem, Name: "Brita Test Berggren", GivenName: "Brita Test", FamilyName: "Berggren"}
	if c.PrimaryParty != want {
		t.Errorf("case party = %+v", c.PrimaryParty)
	}
	// From now on the CPR finds it, in any thread.
	if _, err := a.Deliver(ctx, letterAbout(t, "medcom:R4", "medcom:new-thread", letter.KindReferral, letter.Patient{CPR: "1509819996"})); err != nil {
		t.Fatal(err)
	}
	onlyCase(t, e)
	for _, d := range e.sim.Documents() {
		if d.CaseID != c.ID {
			t.Errorf("document %s filed on %s, want %s", d.ID, d.CaseID, c.ID)
		}
	}
	if n := len(e.sim.Documents()); n != 4 {
		t.Errorf("documents = %d, want 4", n)
	}
}

// TestTwoChildrenAreNeverMerged: a thread or a replacement id links a
// letter to a case only while nothing says it is another child's.
func TestTwoChildrenAreNeverMerged(t *testing.T) {
	e := startSim(t, nil)
	a := e.adapter(nil, nil)
	ctx := context.Background()
	deliver := func(id, thread string, p letter.Patient) string {
		t.Helper()
		if _, err := a.Deliver(ctx, letterAbout(t, id, thread, letter.KindReferral, p)); err != nil {
			t.Fatal(err)
		}
		for _, d := range e.sim.Documents() {
			if d.Letter != nil && d.Letter.ID == id {
				return d.CaseID
			}
		}
		t.Fatalf("letter %s not filed", id)
		return ""
	}
	birgit := deliver("medcom:M1", "medcom:thread-A", letter.Patient{ReplacementID: "0703921VJ4", ReplacementSystem: xeCPRSystem, GivenName: "Birgit", FamilyName: "Berggren"})
	bruno := deliver("medcom:M2", "medcom:thread-B", letter.Patient{CPR: brunoCPR, GivenName: "Bruno Test", FamilyName: "Elmer"})

	// A CPR letter in Bruno's thread that is not Bruno's: Bruno's case has a CPR.
	caecar := deliver("medcom:M3", "medcom:thread-B", letter.Patient{CPR: "2311143995", GivenName: "Cæcar Test", FamilyName: "Østergård"})
	// A CPR letter in Birgit's thread carrying another replacement id.
	nancy := deliver("medcom:M4", "medcom:thread-A", letter.Patient{CPR: "2512489996", ReplacementID: "0703921VJ5", GivenName: "Nancy Ann Test", FamilyName: "Berggren"})
	// A replacement-id letter in Birgit's thread: found by its id only, never by the thread.
	peter := deliver("medcom:M5", "medcom:thread-A", letter.Patient{ReplacementID: "1206550VK9", ReplacementSystem: deCPRSystem, GivenName: "Peter"})
	// The same replacement number from another issuer is another person.
	other := deliver("medcom:M6", "medcom:thread-C", letter.Patient{ReplacementID: "0703921VJ4", ReplacementSystem: deCPRSystem})

	ids := map[string]string{"birgit": birgit, "bruno": bruno, "caecar": caecar, "nancy": nancy, "peter": peter, "other": other}
	seen := map[string]string{}
	for who, id := range ids {
		if prev, dup := seen[id]; dup {
			t.Errorf("%s and %s share case %s", prev, who, id)
		}
		seen[id] = who
	}
	for _, c := range e.sim.Cases() {
		if c.ID == birgit && c.PrimaryParty.CPR != "" {
			t.Errorf("Birgit's case got a CPR: %+v", c.PrimaryParty)
		}
		if c.ID == bruno && c.PrimaryParty.CPR != brunoCPR {
			t.Errorf("Bruno's case changed: %+v", c.PrimaryParty)
		}
	}
	if n := len(e.sim.Cases()); n != 6 {
		t.Errorf("cases = %d, want 6", n)
	}
}

// TestThreadCaseThatGotAnotherCPRIsNotTaken: between the adapter's search
// and its update a caseworker registers the thread's child with its CPR;
// the case system refuses a second CPR and the letter, about another
// child, gets a case of its own.
func TestThreadCaseThatGotAnotherCPRIsNotTaken(t *testing.T) {
	e := startSim(t, nil)
	a := e.adapter(nil, nil)
	ctx := context.Background()
	if _, err := a.Deliver(ctx, letterAbout(t, "medcom:P1", "medcom:thread-P", letter.KindReferral, letter.Patient{ReplacementID: "0703921VJ4", ReplacementSystem: xeCPRSystem})); err != nil {
		t.Fatal(err)
	}
	first := onlyCase(t, e)
	e.sim.BeforeNext("PATCH /cases/{caseId}", func() {
		if _, err := e.sim.EditCase(first.ID, func(c *casesyssim.Case) { c.PrimaryParty.CPR = "2311143995" }); err != nil {
			t.Error(err)
		}
	})
	if _, err := a.Deliver(ctx, letterAbout(t, "medcom:P2", "medcom:thread-P", letter.KindReply, letter.Patient{CPR: brunoCPR, GivenName: "Bruno Test", FamilyName: "Elmer"})); err != nil {
		t.Fatal(err)
	}
	cases := e.sim.Cases()
	if len(cases) != 2 || cases[0].PrimaryParty.CPR != "2311143995" || cases[1].PrimaryParty.CPR != brunoCPR {
		t.Fatalf("cases = %+v", cases)
	}
	for _, d := range e.sim.Documents() {
		if d.Letter.ID == "medcom:P2" && d.CaseID != cases[1].ID {
			t.Errorf("the letter was filed on %s, not on its child's case %s", d.CaseID, cases[1].ID)
		}
	}
}

func TestBetterName(t *testing.T) {
	for _, tc := range []struct {
		given, family string
		have          party
		want          bool
	}{
		{"Bruno Test", "Elmer", party{}, true},
		{"Bruno Test", "Elmer", party{Name: "Bruno Elmer"}, true},
		{"Bruno Test", "Elmer", party{Name: "Bruno Test Elmer"}, true}, // same, now with its parts
		{"Bruno Test", "Elmer", party{GivenName: "Bruno Test", FamilyName: "Elmer", Name: "Bruno Test Elmer"}, false},
		{"Bruno", "Elmer", party{GivenName: "Bruno Test", FamilyName: "Elmer"}, false},
		{"Bruno Test", "", party{GivenName: "Bruno", FamilyName: "Elmer"}, false}, // no family name never wins
		{"Bruno", "Elmer", party{GivenName: "Bruno Test"}, true},
		{"", "", party{}, false},
		{"Cæcar Test", "Østergård", party{GivenName: "Caecar Test", FamilyName: "Oestergaard"}, false}, // a transliteration is not better
	} {
		if got := betterName(tc.given, tc.family, tc.have); got != tc.want {
			t.Errorf("betterName(%q, %q, %+v) = %v", tc.given, tc.family, tc.have, got)
		}
	}
}
