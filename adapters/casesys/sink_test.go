package casesys

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/samhub/samhub/adapters"
	casesyssim "github.com/samhub/samhub/internal/sim/casesys"
	"github.com/samhub/samhub/pipeline/letter"
)

func TestDeliverCreatesCaseDocumentAndNote(t *testing.T) {
	e := startSim(t, nil)
	a := e.adapter(nil, nil)
	l := referral(t, "medcom:SAMHUBLTR0001")

	d, err := a.Deliver(context.Background(), l)
	if err != nil {
		t.Fatal(err)
	}
	if d.Existing {
		t.Error("first delivery reported Existing")
	}
	cases := e.sim.Cases()
	if len(cases) != 1 {
		t.Fatalf("cases = %d, want 1", len(cases))
	}
	c := cases[0]
	if c.PrimaryParty.CPR != brunoCPR || c.CaseType != "SAMRAAD" || c.Status != "open" {
		t.Errorf("case = %+v", c)
	}
	if c.ExternalID != CaseExternalID("SAMRAAD", brunoCPR) || strings.Contains(c.ExternalID, brunoCPR) {
		t.Errorf("case externalId = %q", c.ExternalID)
	}
	if c.Consent == nil || len(c.Consent.Scopes) != 2 || c.Consent.Form != "oral" {
		t.Errorf("case consent = %+v", c.Consent)
	}
	if c.Referral == nil || c.Referral.LetterID != l.ID {
		t.Errorf("case referral = %+v", c.Referral)
	}
	docs := e.sim.Documents()
	if len(docs) != 1 {
		t.Fatalf("documents = %d, want 1", len(docs))
	}
	doc := docs[0]
	if d.RemoteID != doc.ID || doc.CaseID != c.ID || doc.Direction != "incoming" || !doc.Journalised {
		t.Errorf("delivery %+v, document %+v", d, doc)
	}
	if len(doc.Files) != 2 {
		t.Fatalf("files = %+v, want original + rendering", doc.Files)
	}
	orig, _ := e.sim.FileData(doc.ID, 0)
	if !bytes.Equal(orig, l.Original.Data) || doc.Files[0].ContentType != "application/xml" || doc.Files[0].SHA256 != l.Original.SHA256 {
		t.Errorf("original file not stored byte for byte: %+v", doc.Files[0])
	}
	text, _ := e.sim.FileData(doc.ID, 1)
	if doc.Files[1].ContentType != "text/plain; charset=utf-8" || !strings.Contains(string(text), "Problemstilling: test-tekst.") || !strings.Contains(string(text), "Lægerne Test") {
		t.Errorf("rendering = %q (%s)", text, doc.Files[1].ContentType)
	}
	if !doc.DocumentDate.Equal(l.Sent) || doc.Letter == nil || doc.Letter.Kind != "referral" {
		t.Errorf("document metadata = %+v", doc)
	}
	notes := e.sim.JournalNotes()
	if len(notes) != 1 || notes[0].CaseID != c.ID || !strings.Contains(notes[0].Text, doc.ID) {
		t.Fatalf("journal notes = %+v", notes)
	}

	// Delivering the same letter again finds everything and creates nothing.
	d2, err := a.Deliver(context.Background(), l)
	if err != nil {
		t.Fatal(err)
	}
	if !d2.Existing || d2.RemoteID != doc.ID {
		t.Errorf("redelivery = %+v, want existing %s", d2, doc.ID)
	}
	if len(e.sim.Documents()) != 1 || len(e.sim.JournalNotes()) != 1 || len(e.sim.Cases()) != 1 {
		t.Error("redelivery created objects")
	}
}

func TestDeliverReusesExistingCase(t *testing.T) {
	e := startSim(t, nil)
	seeded, err := e.sim.SeedCase(casesyssim.Case{ID: "SAG-2026-000777", CaseType: "SAMRAAD", Title: "Samråd", PrimaryParty: casesyssim.Person{CPR: brunoCPR}})
	if err != nil {
		t.Fatal(err)
	}
	// A case of another type and another child must not be picked.
	e.sim.SeedCase(casesyssim.Case{CaseType: "ANDET", PrimaryParty: casesyssim.Person{CPR: brunoCPR}})
	e.sim.SeedCase(casesyssim.Case{CaseType: "SAMRAAD", PrimaryParty: casesyssim.Person{CPR: "1509819996"}})
	a := e.adapter(nil, nil)
	d, err := a.Deliver(context.Background(), referral(t, "medcom:L2"))
	if err != nil {
		t.Fatal(err)
	}
	if len(e.sim.Cases()) != 3 {
		t.Errorf("a case was created although one existed")
	}
	docs := e.sim.Documents()
	if len(docs) != 1 || docs[0].CaseID != seeded.ID || d.RemoteID != docs[0].ID {
		t.Errorf("documents = %+v", docs)
	}
}

func TestDeliverParksWithoutCase(t *testing.T) {
	e := startSim(t, nil)
	a := e.adapter(nil, map[string]any{"on_missing_case": "park"})
	_, err := a.Deliver(context.Background(), referral(t, "medcom:L3"))
	class, code := classOf(t, err)
	if class != adapters.ClassPermanent || code != "no_case" {
		t.Fatalf("got %v/%s: %v", class, code, err)
	}
	_, reason, _ := adapters.Classify(err)
	if !strings.Contains(reason, "on_missing_case is park") {
		t.Errorf("reason = %q", reason)
	}
	if len(e.sim.Cases()) != 0 || len(e.sim.Documents()) != 0 {
		t.Error("park created objects")
	}
	// The coordinator creates the case and re-drives the letter.
	c, err := e.sim.SeedCase(casesyssim.Case{PrimaryParty: casesyssim.Person{CPR: brunoCPR}})
	if err != nil {
		t.Fatal(err)
	}
	d, err := a.Deliver(context.Background(), referral(t, "medcom:L3"))
	if err != nil {
		t.Fatal(err)
	}
	if docs := e.sim.Documents(); len(docs) != 1 || docs[0].CaseID != c.ID || docs[0].ID != d.RemoteID {
		t.Errorf("after re-drive: %+v", docs)
	}
}

func TestDeliverWithoutPatientIsPermanent(t *testing.T) {
	e := startSim(t, nil)
	a := e.adapter(nil, nil)
	l := referral(t, "medcom:L4")
	l.Patient = nil
	if class, code := classOf(t, func() error { _, err := a.Deliver(context.Background(), l); return err }()); class != adapters.ClassPermanent || code != "no_patient" {
		t.Fatalf("got %v/%s", class, code)
	}
}

func TestDeliverReplacementID(t *testing.T) {
	e := startSim(t, nil)
	a := e.adapter(nil, nil)
	l := referral(t, "medcom:L5")
	l.Patient = &letter.Patient{ReplacementID: "0703921VJ4"}
	if _, err := a.Deliver(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	if c := e.sim.Cases(); len(c) != 1 || c[0].PrimaryParty.ReplacementID != "0703921VJ4" || c[0].PrimaryParty.CPR != "" {
		t.Errorf("cases = %+v", c)
	}
}

// TestDeliverErrorClasses provokes every answer class over real HTTP and
// checks the classification and that reasons carry no personal data.
func TestDeliverErrorClasses(t *testing.T) {
	type tc struct {
		name       string
		simCfg     func(*casesyssim.Config)
		adapterCfg map[string]any
		prepare    func(e *env, l *letter.Letter)
		class      adapters.Class
		code       string
		retryAfter time.Duration
	}
	docRoute := "POST /cases/{caseId}/documents"
	cases := []tc{
		{name: "400", prepare: func(e *env, _ *letter.Letter) {
			e.sim.InjectFailure(casesyssim.Fault{Route: docRoute, Count: 1, Status: http.StatusBadRequest})
		}, class: adapters.ClassPermanent, code: "bad_request"},
		{name: "403 scope", adapterCfg: map[string]any{"scope": "cases.read"}, class: adapters.ClassPermanent, code: "forbidden"},
		{name: "413", simCfg: func(c *casesyssim.Config) { c.MaxUploadBytes = 4096 }, prepare: func(_ *env, l *letter.Letter) {
			l.Attachments = []letter.Attachment{letter.NewAttachment("scan.pdf", "application/pdf", bytes.Repeat([]byte("x"), 8192))}
		}, class: adapters.ClassPermanent, code: "too_large"},
		{name: "415", simCfg: func(c *casesyssim.Config) { c.BlockedTypes = []string{"application/x-msdownload"} }, prepare: func(_ *env, l *letter.Letter) {
			l.Attachments = []letter.Attachment{letter.NewAttachment("tool.exe", "application/x-msdownload", []byte("MZ"))}
		}, class: adapters.ClassPermanent, code: "file_type_refused"},
		{name: "422", prepare: func(e *env, _ *letter.Letter) {
			e.sim.InjectFailure(casesyssim.Fault{Route: docRoute, Count: 1, Status: http.StatusUnprocessableEntity})
		}, class: adapters.ClassPermanent, code: "validation_failed"},
		{name: "409 case closed", prepare: func(e *env, _ *letter.Letter) {
			c, _ := e.sim.SeedCase(casesyssim.Case{PrimaryParty: casesyssim.Person{CPR: brunoCPR}})
			e.sim.CloseCase(c.ID)
		}, class: adapters.ClassPermanent, code: "case_closed"},
		{name: "429", prepare: func(e *env, _ *letter.Letter) {
			e.sim.InjectFailure(casesyssim.Fault{Route: docRoute, Count: 1, Status: http.StatusTooManyRequests, RetryAfter: 7 * time.Second})
		}, class: adapters.ClassRetryable, code: "throttled", retryAfter: 7 * time.Second},
		{name: "503", prepare: func(e *env, _ *letter.Letter) {
			e.sim.FailNext(1, http.StatusServiceUnavailable, 42*time.Second)
		}, class: adapters.ClassRetryable, code: "unavailable", retryAfter: 42 * time.Second},
		{name: "500", prepare: func(e *env, _ *letter.Letter) {
			e.sim.InjectFailure(casesyssim.Fault{Route: "POST /cases/{caseId}/journal-notes", Count: 1, Status: http.StatusInternalServerError})
		}, class: adapters.ClassRetryable, code: "server_error"},
		{name: "401 rejected token", prepare: func(e *env, _ *letter.Letter) { e.sim.RejectTokens(true) }, class: adapters.ClassRetryable, code: "auth_rejected"},
		{name: "bad client secret", adapterCfg: map[string]any{"client_secret": "wrong"}, class: adapters.ClassRetryable, code: "auth_failed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := startSim(t, c.simCfg)
			a := e.adapter(nil, c.adapterCfg)
			l := referral(t, "medcom:err")
			if c.prepare != nil {
				c.prepare(e, l)
			}
			_, err := a.Deliver(context.Background(), l)
			class, code := classOf(t, err)
			if class != c.class || code != c.code {
				t.Fatalf("got %v/%s, want %v/%s: %v", class, code, c.class, c.code, err)
			}
			if got := adapters.RetryAfterOf(err); got != c.retryAfter {
				t.Errorf("RetryAfter = %v, want %v", got, c.retryAfter)
			}
			_, reason, _ := adapters.Classify(err)
			if digitRun.MatchString(reason) || strings.Contains(reason, "Bruno") || strings.Contains(reason, "Problemstilling") {
				t.Errorf("reason carries personal data: %q", reason)
			}
		})
	}
}
