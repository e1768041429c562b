package route_test

import (
	"strings"
	"testing"
	"time"

	"github.com/samhub/samhub/pipeline/letter"
	"github.com/samhub/samhub/pipeline/route"
)

var (
	now   = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	no    = false
	yes   = true
	dests = map[string]route.Destination{
		"casefile": {Sector: "municipality"},
		"gp":       {Sector: "gp"},
		"region":   {Sector: "region_psychiatry"},
		"parents":  {Sector: "parents"},
		"forum":    {Sector: "internal"},
	}
	rules = []route.Rule{
		{Name: "referrals", Match: route.Match{Kind: []string{"referral"}, Source: []string{"medcom"}}, To: []string{"casefile"}},
		{Name: "rec-case", Match: route.Match{Kind: []string{"recommendation"}}, To: []string{"casefile", "gp", "region", "parents"}},
		{Name: "from-hospital", Match: route.Match{Sender: []string{"5790000120400"}}, To: []string{"casefile"}},
		{Name: "to-ppr", Match: route.Match{Receiver: []string{"role:ppr"}, Category: []string{"regarding-referral"}}, To: []string{"casefile"}, RequireConsent: &yes},
		{Name: "forum", Match: route.Match{Kind: []string{"note"}, Format: []string{"xdis91"}}, To: []string{"forum"}, Anonymise: true},
	}
)

func consent(scopes ...letter.Scope) *letter.Consent {
	return &letter.Consent{GivenBy: "custody-holder", Form: "oral", GivenAt: now.Add(-time.Hour), Scopes: scopes}
}

func TestDecide(t *testing.T) {
	r := route.New(route.Options{Rules: rules, Destinations: dests, Receivers: nil})
	rec := &letter.Letter{ID: "r1", Kind: letter.KindRecommendation, Source: "casesys"}
	cp := &letter.Letter{ID: "copy:r1|ref2", CopyOf: "r1", Kind: letter.KindRecommendation, Source: "samhub",
		Receivers: []letter.Party{{Role: letter.RoleGP, GLN: "5790000000029"}}}
	cases := []struct {
		name    string
		l       *letter.Letter
		dest    string
		consent *letter.Consent
		verdict route.Verdict
		rule    string
		code    string
	}{
		{"referral to case file needs no consent", &letter.Letter{Kind: letter.KindReferral, Source: "medcom"}, "casefile", nil, route.Deliver, "referrals", ""},
		{"referral from another source matches no rule", &letter.Letter{Kind: letter.KindReferral, Source: "imap"}, "casefile", nil, route.Skip, "", ""},
		{"referral never goes to the GP", &letter.Letter{Kind: letter.KindReferral, Source: "medcom"}, "gp", consent(letter.ScopeGP), route.Skip, "", ""},
		{"recommendation to GP without consent is denied", rec, "gp", nil, route.Deny, "rec-case", "consent_missing"},
		{"recommendation to GP with GP consent", rec, "gp", consent(letter.ScopeGP), route.Deliver, "rec-case", ""},
		{"consent for GP does not cover the region", rec, "region", consent(letter.ScopeGP), route.Deny, "rec-case", "consent_scope"},
		{"region with region consent", rec, "region", consent(letter.ScopeRegionPsychiatry), route.Deliver, "rec-case", ""},
		{"parents with parents consent", rec, "parents", consent(letter.ScopeParents), route.Deliver, "rec-case", ""},
		{"young person's refusal overrides parents' consent", rec, "region", &letter.Consent{Scopes: []letter.Scope{letter.ScopeRegionPsychiatry}, YoungPersonRefused: true}, route.Deny, "rec-case", "young_person_refused"},
		{"refusal still lets the municipality's own file have it", rec, "casefile", &letter.Consent{YoungPersonRefused: true}, route.Deliver, "rec-case", ""},
		{"withdrawn consent stops future routes", rec, "gp", &letter.Consent{Scopes: []letter.Scope{letter.ScopeGP}, WithdrawnAt: now.Add(-time.Minute)}, route.Deny, "rec-case", "consent_withdrawn"},
		{"withdrawal in the future has no effect yet", rec, "gp", &letter.Consent{Scopes: []letter.Scope{letter.ScopeGP}, WithdrawnAt: now.Add(time.Hour)}, route.Deliver, "rec-case", ""},
		{"sender match by GLN", &letter.Letter{Kind: letter.KindNote, Sender: letter.Party{GLN: "5790000120400"}}, "casefile", nil, route.Deliver, "from-hospital", ""},
		{"receiver role and category, consent required by rule", &letter.Letter{Kind: letter.KindNote, Category: "regarding-referral", Receivers: []letter.Party{{Role: "ppr"}}}, "casefile", nil, route.Deny, "to-ppr", "consent_missing"},
		{"category mismatch", &letter.Letter{Kind: letter.KindNote, Category: "other", Receivers: []letter.Party{{Role: "ppr"}}}, "casefile", nil, route.Skip, "", ""},
		{"anonymised forum route", &letter.Letter{Kind: letter.KindNote, Format: "xdis91"}, "forum", nil, route.Deliver, "forum", ""},
		{"unknown destination", rec, "fax", nil, route.Skip, "", ""},
		{"a copy for another GP goes to the GP, consent as for the letter", cp, "gp", nil, route.Deny, "rec-case", "consent_missing"},
		{"a copy for another GP, with consent", cp, "gp", consent(letter.ScopeGP), route.Deliver, "rec-case", ""},
		{"a copy for another GP never goes to the case file", cp, "casefile", nil, route.Skip, "", ""},
		{"a copy for another GP never goes to the region", cp, "region", consent(letter.ScopeRegionPsychiatry), route.Skip, "", ""},
		{"a copy for another GP never goes to the parents", cp, "parents", consent(letter.ScopeParents), route.Skip, "", ""},
		{"a copy naming nobody goes nowhere", &letter.Letter{Kind: letter.KindRecommendation, CopyOf: "r1"}, "gp", consent(letter.ScopeGP), route.Skip, "", ""},
		{"notices never ride on other rules", &letter.Letter{Kind: letter.KindNotification, Sender: letter.Party{GLN: "5790000120400"}}, "casefile", nil, route.Skip, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := r.Decide(c.l, c.dest, c.consent, now)
			if d.Verdict != c.verdict || d.Route != c.rule || d.Code != c.code {
				t.Fatalf("got %s/%q/%q (%s), want %s/%q/%q", d.Verdict, d.Route, d.Code, d.Reason, c.verdict, c.rule, c.code)
			}
			if d.Reason == "" {
				t.Fatal("a decision must say why")
			}
		})
	}
}

func TestReplayRechecksConsentEvenWithoutARule(t *testing.T) {
	r := route.New(route.Options{Rules: rules, Destinations: dests, Receivers: nil})
	l := &letter.Letter{ID: "x", Kind: letter.KindNote, Source: "imap"}
	if d := r.DecideReplay(l, "gp", nil, now); d.Verdict != route.Deny {
		t.Fatalf("replay to GP without consent: %+v", d)
	}
	if d := r.DecideReplay(l, "gp", consent(letter.ScopeGP), now); d.Verdict != route.Deliver {
		t.Fatalf("replay to GP with consent: %+v", d)
	}
	if d := r.DecideReplay(l, "casefile", nil, now); d.Verdict != route.Deliver {
		t.Fatalf("replay to the municipality's own file: %+v", d)
	}
}

func TestPlanCoversEveryDestination(t *testing.T) {
	r := route.New(route.Options{Rules: rules, Destinations: dests, Receivers: nil})
	plan := r.Plan(&letter.Letter{Kind: letter.KindRecommendation}, consent(letter.ScopeGP), now)
	if len(plan) != len(dests) {
		t.Fatalf("plan has %d decisions, want %d", len(plan), len(dests))
	}
}

func TestAnonymiseStripsIdentifiers(t *testing.T) {
	l := &letter.Letter{ID: "a1", Kind: letter.KindNote,
		Patient:     &letter.Patient{CPR: "2509479989", GivenName: "Bruno Test", FamilyName: "Elmer", Address: "Testvej 1"},
		Subject:     "Bruno Test Elmer, 250947-9989",
		Text:        "Bruno har det svært. CPR 2509479989. ELMER går i 3. klasse.",
		Attachments: []letter.Attachment{letter.NewAttachment("a.pdf", "application/pdf", []byte("%PDF"))},
		Original:    letter.Original{Data: []byte("<x>2509479989</x>"), ContentType: "application/xml"},
		Consent:     consent(letter.ScopeGP),
		Receivers:   []letter.Party{{Role: letter.RoleParents, Name: "Forælder Test", CPR: "1509819996"}},
		To:          []letter.Party{{Role: letter.RoleParents, Name: "Forælder Test", CPR: "1509819996"}}}
	a := route.Anonymise(l, []byte("secret"))
	if a.Receivers[0].CPR != "" || a.To[0].CPR != "" || l.Receivers[0].CPR == "" {
		t.Errorf("an anonymised copy must name no custody holder's CPR (and leave the letter's): %+v %+v", a.Receivers, a.To)
	}
	all := a.Subject + a.Text + string(a.Original.Data)
	for _, bad := range []string{"2509479989", "250947-9989", "Bruno", "Elmer", "ELMER", "Testvej"} {
		if strings.Contains(all, bad) {
			t.Errorf("anonymised letter still contains %q: %q", bad, all)
		}
	}
	if a.Patient == nil || a.Patient.CPR != "" || a.Patient.GivenName != "" || a.Patient.Address != "" || !strings.HasPrefix(a.Patient.Pseudonym, "P-") {
		t.Errorf("patient not pseudonymised: %+v", a.Patient)
	}
	if len(a.Attachments) != 0 || a.Consent != nil {
		t.Error("attachments and consent must be dropped")
	}
	if l.Patient.CPR != "2509479989" || !strings.Contains(l.Text, "Bruno") {
		t.Error("Anonymise must not change the original letter")
	}
	if route.Pseudonym("2509479989", []byte("secret")) != a.Patient.Pseudonym || route.Pseudonym("1509819996", []byte("secret")) == a.Patient.Pseudonym {
		t.Error("pseudonyms must be stable per patient and differ between patients")
	}
}

// Everything an anonymised copy carries, read as the sink gets it: no CPR
// (however written), no name of the child or of a citizen the letter
// names, no address, no private address of a sender.
func TestAnonymisedCopyCarriesNoIdentifierAnywhere(t *testing.T) {
	pdf := letter.NewAttachment("Bruno_Elmer_2509479989.pdf", "application/pdf", []byte("%PDF Bruno Elmer 2509479989"))
	forum := letter.Party{Role: letter.RoleCoordinator, Email: "forum@kommune.example.dk"}
	l := &letter.Letter{ID: "email:imap:abc", Kind: letter.KindNote, Format: "email", ThreadID: "t-1", InReplyTo: "r-1",
		Patient: &letter.Patient{CPR: "2509479989", GivenName: "Bruno Test", FamilyName: "Elmer", Address: "Testvej 1, 5000 Testby"},
		Sender:  letter.Party{Name: "Nancy Ann Test Berggren", Email: "nancy.berggren@example.org"},
		Receivers: []letter.Party{forum,
			{Role: letter.RoleParents, Name: "Brita Test Berggren", CPR: "1509819996", Email: "brita@example.org"}},
		To:          []letter.Party{forum},
		Subject:     "Om Bruno (250947 9989)",
		Topic:       "Bruno Test Elmer",
		Text:        "Mor Brita Berggren skriver: Bruno bor på Testvej 1 i 5000 Testby, CPR 250947 9989.",
		Meta:        map[string]string{"email_message_id": "<abc@mail.example.net>"},
		Attachments: []letter.Attachment{pdf},
		Original: letter.Original{Data: []byte("From: Nancy <nancy.berggren@example.org>\r\n\r\nBruno 2509479989"), ContentType: "message/rfc822",
			Filename: "Bruno_Elmer_2509479989.eml"},
	}
	a := route.Anonymise(l, []byte("secret"))
	raw, err := letter.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"2509479989", "250947 9989", "1509819996", "Bruno", "Elmer", "Berggren", "Nancy", "Brita", "Testvej", "Testby", "example.org"} {
		if strings.Contains(string(raw), bad) {
			t.Errorf("the anonymised copy still carries %q:\n%s", bad, raw)
		}
	}
	if len(a.To) != 1 || a.To[0].Email != forum.Email || !a.Anonymised {
		t.Errorf("the forum must still be addressed: %+v", a.To)
	}
	if len(a.Receivers) != 2 || a.Receivers[0].Email != forum.Email || a.Receivers[1].Role != letter.RoleParents {
		t.Errorf("receivers keep their roles and the municipality's own addresses: %+v", a.Receivers)
	}
}

// A replay to a destination no rule sends the letter to any more (the
// rules changed since it parked) still anonymises where the destination's
// rules anonymise: the forum never gets the child's name by a replay.
func TestReplayToAnAnonymisingDestinationStaysAnonymised(t *testing.T) {
	r := route.New(route.Options{Rules: rules, Destinations: dests, Receivers: nil})
	l := &letter.Letter{ID: "n1", Kind: letter.KindNote, Format: "fhir-carecommunication", Source: "medcom"}
	if d := r.Decide(l, "forum", nil, now); d.Verdict != route.Skip {
		t.Fatalf("no rule should send this letter to the forum: %+v", d)
	}
	d := r.DecideReplay(l, "forum", nil, now)
	if d.Verdict != route.Deliver || !d.Anonymise {
		t.Fatalf("replay to the forum: %+v, want an anonymised delivery", d)
	}
	if d := r.DecideReplay(l, "casefile", nil, now); d.Anonymise {
		t.Fatalf("replay to the case file anonymised: %+v", d)
	}
}

// A CPR number written against letters or an underscore ("cpr2509479989",
// a file name "Bruno_2509479989.pdf" quoted in an e-mail) is masked too;
// before, only one standing apart as a word was, and the forum got the
// others. Numbers of more digits (a GLN) are no CPR numbers.
func TestAnonymiseMasksACPRNumberAgainstLettersOrAnUnderscore(t *testing.T) {
	l := &letter.Letter{ID: "a2", Kind: letter.KindNote, Patient: &letter.Patient{CPR: "2509479989"},
		Subject: "Henvisning_2509479989",
		Text:    "cpr2509479989, bilag Bruno_250947-9989.pdf, nr.250947 9989x og GLN 5790000123456."}
	a := route.Anonymise(l, []byte("secret"))
	for _, s := range []string{a.Subject, a.Text} {
		for _, bad := range []string{"2509479989", "250947-9989", "250947 9989"} {
			if strings.Contains(s, bad) {
				t.Errorf("anonymised %q still carries %q", s, bad)
			}
		}
	}
	if want := "Henvisning_[CPR]"; a.Subject != want {
		t.Errorf("subject %q, want %q", a.Subject, want)
	}
	if !strings.Contains(a.Text, "GLN 5790000123456") {
		t.Errorf("a GLN was masked as a CPR number: %q", a.Text)
	}
}

// The child's replacement CPR (X-eCPR) in subject, topic or text is masked
// like a CPR number; before, it went to the forum as written.
func TestAnonymiseMasksTheReplacementCPR(t *testing.T) {
	l := &letter.Letter{ID: "a3", Kind: letter.KindNote, Patient: &letter.Patient{ReplacementID: "0703921VJ4"},
		Subject: "Barn 0703921VJ4", Topic: "id 070392-1vj4", Text: "Barnet (0703921VJ4) og søsteren 1206550VK9."}
	a := route.Anonymise(l, []byte("secret"))
	for _, s := range []string{a.Subject, a.Topic, a.Text, string(a.Original.Data)} {
		for _, bad := range []string{"0703921VJ4", "070392-1vj4", "1206550VK9"} {
			if strings.Contains(strings.ToUpper(s), strings.ToUpper(bad)) {
				t.Errorf("anonymised %q still carries %q", s, bad)
			}
		}
	}
	if a.Patient == nil || a.Patient.ReplacementID != "" || a.Patient.Pseudonym != route.Pseudonym("0703921VJ4", []byte("secret")) {
		t.Errorf("patient %+v", a.Patient)
	}
}
