package app_test

import (
	"bytes"
	"context"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/samhub/samhub/adapters/medcom/oioxml"
	"github.com/samhub/samhub/adapters/medcom/xmlsafe"
	"github.com/samhub/samhub/internal/config"
	"github.com/samhub/samhub/internal/hubtest"
	"github.com/samhub/samhub/internal/logging"
	casesyssim "github.com/samhub/samhub/internal/sim/casesys"
	epjsim "github.com/samhub/samhub/internal/sim/epj"
	"github.com/samhub/samhub/pipeline/journey"
)

// TestJourneyAcrossEveryAdapter follows the council's workflow through every
// adapter: a GP's referral (MedCom in) is journalised in the child's case
// (case system), the council's recommendation (case-system outbox) goes to
// the GP (MedCom out), the region (EPJ) and the parents (Digital Post, each
// custody holder by CPR) under the consent recorded on the case, the
// coordinator is notified (SMTP), and the GP's receipt (MedCom in)
// completes the recommendation's journey.
func TestJourneyAcrossEveryAdapter(t *testing.T) {
	// The GP's practice has not moved to the FHIR letter yet.
	h := hubtest.Start(t, hubtest.WithMail(), hubtest.WithDigitalPost(), hubtest.WithConfig(func(c *config.Config) {
		c.Receivers = append(c.Receivers, config.Receiver{Name: "Lægehuset Test", Role: "gp", GLN: "5790000000005", SOR: "543210987654321", Formats: []string{"xdis91"}})
	}))
	now := time.Now()
	c, err := h.CaseSys.SeedCase(casesyssim.Case{CaseType: "SAMRAAD", Title: "Samråd", PrimaryParty: casesyssim.Person{CPR: "2509479989", Name: "Bruno Test Elmer"}, Status: "open",
		ContactPerson: &casesyssim.ContactPerson{Name: "Rådgiver Test", Email: "raadgiver@samraad.example"},
		Consent:       &casesyssim.Consent{GivenBy: "custody-holder", Form: "written", GivenAt: &now, Scopes: []string{"municipality", "gp", "parents", "region_psychiatry"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.EPJ.SeedPatient(epjsim.Patient{CPR: "2509479989", GivenName: "Bruno Test", FamilyName: "Elmer"}); err != nil {
		t.Fatal(err)
	}
	referral, _ := os.ReadFile("../../testdata/medcom/samhub/letter-utf8.xml")
	h.Drop("referral.xml", referral)
	h.Eventually("the referral journalised", func() bool { return len(h.CaseSys.Documents()) == 1 })
	if docs := h.CaseSys.Documents(); docs[0].CaseID != c.ID {
		t.Fatalf("referral filed on case %s, want the existing case %s", docs[0].CaseID, c.ID)
	}

	doc, err := h.CaseSys.SeedOutboxDocument(c.ID, casesyssim.SeedDocument{Title: "Anbefaling fra Samrådet", Kind: "recommendation",
		Text: "Samrådet anbefaler et forløb hos PPR. Testtekst.",
		Recipients: casesyssim.OutboxRecipients{GP: &casesyssim.Organisation{Name: "Lægehuset Test", GLN: "5790000000005", SOR: "543210987654321"},
			Parents: []casesyssim.Parent{{Name: "Brita Test Berggren", CPR: parentCPR}},
			Region:  &casesyssim.Organisation{Name: "BUP Test", SOR: "6071000016008"}}})
	if err != nil {
		t.Fatal(err)
	}
	letterID := "casesys:casesys:" + doc.ID
	var tr *traceT
	h.Eventually("the recommendation delivered to gp, region and parents", func() bool {
		tr = trace(t, h, letterID)
		return tr.delivered("gp") && tr.delivered("region") && tr.delivered("parents")
	})
	if n := len(h.EPJ.Communications()); n != 1 {
		t.Errorf("EPJ has %d Communications, want 1", n)
	}
	// Notices are stored off the source's path, so they may trail the deliveries.
	h.Eventually("notices to the coordinator and the contact person", func() bool {
		var coord, contact bool
		for _, m := range h.SMTP.Messages() {
			coord = coord || slices.Contains(m.To, hubtest.CoordinatorEmail)
			contact = contact || slices.Contains(m.To, "raadgiver@samraad.example")
		}
		return coord && contact
	})
	var notices, toContact int
	for _, m := range h.SMTP.Messages() {
		msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
		if err != nil {
			t.Fatal(err)
		}
		subject := msg.Header.Get("Subject")
		if !m.TLS {
			t.Error("mail sent without TLS")
		}
		if logging.ContainsCPR(subject) || strings.Contains(subject, "Bruno") || strings.Contains(subject, "Elmer") {
			t.Errorf("email subject carries personal data: %q", subject)
		}
		for _, r := range m.To {
			switch r {
			case hubtest.CoordinatorEmail:
				notices++
			case "raadgiver@samraad.example":
				toContact++
			}
		}
	}
	// The custody holder got one Digital Post message, by CPR, under the
	// neutral label; email went to the council's own staff only.
	if msgs := h.DigitalPost.MessagesFor(parentCPR); len(msgs) != 1 || msgs[0].Label != "Brev fra kommunen" ||
		!strings.Contains(h.DigitalPost.Text(msgs[0]), "forløb hos PPR") {
		t.Errorf("the custody holder's Digital Post: %+v", msgs)
	}
	for _, m := range h.SMTP.Messages() {
		for _, r := range m.To {
			if !strings.HasSuffix(r, "@samraad.example") {
				t.Errorf("a mail went to %s, outside the council's own staff", r)
			}
		}
	}
	if notices == 0 {
		t.Error("the coordinator got no notice of the referral")
	}
	if toContact == 0 {
		t.Error("the case's contact person got no notice of the recommendation")
	}

	if body := get(t, h.BaseURL+"/metrics"); !strings.Contains(body, "samhub_recommendation_lead_time_seconds_count 1") {
		t.Error("the lead time from referral to recommendation was not recorded")
	}

	// The GP's practice answers the hub's letter with a positive receipt.
	out := filepath.Join(h.MedComDir, "out")
	var sent *oioxml.Emessage
	entries, _ := os.ReadDir(out)
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(out, e.Name()))
		if m, err := oioxml.Parse(b, xmlsafe.DefaultLimits()); err == nil && len(m.Letters) == 1 {
			sent = m
		}
	}
	if sent == nil {
		t.Fatal("no XDIS91 letter to the GP in out/")
	}
	receipt, err := oioxml.BuildReceipt(sent, oioxml.ReceiptOptions{Type: oioxml.PositiveReceipt, Letters: sent.Letters, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	h.Drop("receipt.xml", receipt)
	h.Eventually("the receipt in the recommendation's journey", func() bool {
		tr = trace(t, h, letterID)
		return tr.has(journey.Acknowledged)
	})
	// Every adapter left its mark: case-system source (received), MedCom
	// out, EPJ, SMTP (delivered), MedCom in (the receipt).
	for _, want := range []string{"received", "delivered/gp", "delivered/region", "delivered/parents", "acknowledged-by-peer"} {
		if !tr.has(want) {
			t.Errorf("journey lacks %s: %+v", want, tr.steps)
		}
	}
	for _, s := range tr.steps {
		if s.Step == journey.Delivered && s.RemoteID == "" {
			t.Errorf("delivery to %s without the destination's id", s.Destination)
		}
	}
}

// parentCPR is the custody holder's: Brita Test Berggren, MedCom's test person.
const parentCPR = "1509819996"

type traceT struct{ steps []journey.Event }

func (t *traceT) has(step string) bool {
	for _, s := range t.steps {
		if s.Step == step || s.Step+"/"+s.Destination == step {
			return true
		}
	}
	return false
}

func (t *traceT) delivered(dest string) bool { return t.has("delivered/" + dest) }

func trace(t *testing.T, h *hubtest.Hub, id string) *traceT {
	tr, err := h.App.Hub.TraceLetter(context.Background(), id)
	if err != nil {
		return &traceT{}
	}
	return &traceT{steps: tr.Steps}
}
