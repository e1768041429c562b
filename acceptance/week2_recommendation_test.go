package acceptance

import (
	"bytes"
	"strings"
	"testing"

	"github.com/samhub/samhub/internal/sim/medcompeer"
	"github.com/samhub/samhub/pipeline/letter"
)

// Week 2: the council meets and writes its recommendations on the cases.
// Åse's goes to her GP, to child psychiatry (the parents consented; the
// region's gateway is down for a while, so it waits and is sent again) and
// to her parents (this world has no channel to parents, so their copy
// shows as not sent; TestParentsGetTheRecommendationByDigitalPost has
// one). Bruno's goes to his GP only, and waits until the coordinator
// records the parents' consent, which came late.
func TestWeek2TheCouncilRecommends(t *testing.T) {
	w := newWorld(t)
	cases, coordinator, region := w.caseSystem(), w.coordinator(), w.region()
	cases.Knows(aase, letter.ScopeGP, letter.ScopeRegionPsychiatry)
	region.Knows(aase, &gpAero)
	w.expectLetters(aase, gpAero)
	w.expectLetters(bruno, gpOster)

	aaseRef := w.gp(gpAero).Refers(aase, xdis91Latin1)
	brunoRef := w.gp(gpOster).Refers(bruno, fhirXML)
	cases.Files(aaseRef.ID)
	cases.Files(brunoRef.ID)

	region.IsDown(3) // the gateway answers 503 for as long as the hub tries
	aaseRec := w.council().Recommends(aase, recipients{GP: &gpAero, Region: true, Parents: true},
		"Samrådet anbefaler et forløb hos PPR og en samtale i børne- og ungdomspsykiatrien. Kontaktperson: Sagsbehandler Test.")
	brunoRec := w.council().Recommends(bruno, recipients{GP: &gpOster},
		"Samrådet anbefaler familiebehandling. Vi mødes igen om tre måneder.")

	// Åse's GP gets the recommendation in XDIS91, the format the directory
	// lists for the practice, addressed to it, in the referral's episode.
	got := w.gp(gpAero).Receives(aase, aaseRec, 1)[0]
	if got.Format != medcompeer.FormatXDIS91 || got.To.GLN != gpAero.GLN || got.From.GLN != theCouncil.GLN {
		t.Errorf("Åse's recommendation reached Lægehuset Ærø as %s from %s to %s; want XDIS91 from the council to the practice", got.Format, got.From.GLN, got.To.GLN)
	}
	if got.Thread != aaseRef.Thread {
		t.Errorf("Åse's recommendation is in episode %q; want the referral's episode %q (a reply in its thread)", got.Thread, aaseRef.Thread)
	}
	if got.Patient.CPR != aase.CPR || got.Patient.FamilyName != aase.Family || !strings.Contains(got.Text, "PPR") {
		t.Errorf("Åse's recommendation at the GP: patient %+v, text %q", got.Patient, got.Text)
	}
	if ack := coordinator.SeesAcknowledgement(aaseRec); !positiveAck(ack.Code) {
		t.Errorf("the journey of Åse's recommendation shows the GP's acknowledgement with code %q; want it positive", ack.Code)
	}

	// The region's copy waited while the gateway was down; sent again, it
	// is filed once, on Åse.
	parked := coordinator.FindsParked("region", aaseRec)
	if len(region.CommunicationsFor(aaseRec)) != 0 {
		t.Errorf("Åse's recommendation is parked for the region and also filed there")
	}
	// The case system is told the truth meanwhile: sent to the GP, failed
	// for the region (the coordinator must act), not sent to the parents.
	cases.OutboxShows(aaseRec, "failed", map[string]string{"gp": "sent", "region": "failed", "parent-1": "not_sent"})
	coordinator.Replays(parked, "Regionens gateway svarer igen")
	w.eventually("Åse's recommendation at the region", func() bool { return len(region.CommunicationsFor(aaseRec)) > 0 })
	comms := region.CommunicationsFor(aaseRec)
	if len(comms) != 1 {
		t.Errorf("the region filed Åse's recommendation %d times", len(comms))
	}
	if subj, _ := comms[0]["subject"].(map[string]any); subj["reference"] != "Patient/"+w.epjPatients[aase.ID()] {
		t.Errorf("the region filed Åse's recommendation on %v, not on her", subj)
	}
	cases.OutboxShows(aaseRec, "partly-sent", map[string]string{"gp": "sent", "region": "sent", "parent-1": "not_sent"})

	// Bruno's GP copy waits for consent; the coordinator records it late
	// and sends the letter again.
	held := coordinator.FindsParked("gp", brunoRec)
	if held.LastError.Code != "consent_missing" {
		t.Errorf("Bruno's recommendation waits at the GP destination with code %q, want consent_missing", held.LastError.Code)
	}
	if n := len(w.gp(gpOster).Received()); n != 0 {
		t.Errorf("Lægerne i Østergade got %d letters before the consent", n)
	}
	cases.OutboxShows(brunoRec, "waiting", map[string]string{"gp": "waiting"})
	if _, per := cases.Outbox(brunoRec); per["gp"].Code != "consent_missing" {
		t.Errorf("Bruno's GP copy waits with code %q, want consent_missing", per["gp"].Code)
	}
	coordinator.RecordsConsent(bruno, letter.ScopeGP)
	coordinator.Replays(held, "Forældrenes samtykke er registreret")
	rec := w.gp(gpOster).Receives(bruno, brunoRec, 1)[0]
	if rec.Format != medcompeer.FormatFHIRXML || rec.To.GLN != gpOster.GLN || rec.To.SOR != gpOster.SOR {
		t.Errorf("Bruno's recommendation reached Østergade as %s to GLN %s SOR %s; want a CareCommunication in XML to the practice", rec.Format, rec.To.GLN, rec.To.SOR)
	}
	if rec.Kind != letter.KindReply || rec.Thread != brunoRef.Thread || rec.InReplyTo != brunoRef.ID {
		t.Errorf("Bruno's recommendation is a %s in thread %q answering %q; want a reply in the referral's thread %q answering %q",
			rec.Kind, rec.Thread, rec.InReplyTo, brunoRef.Thread, brunoRef.ID)
	}
	if rec.Patient.CPR != bruno.CPR || rec.Patient.FamilyName != bruno.Family {
		t.Errorf("Bruno's recommendation names the patient %+v", rec.Patient)
	}
	// A CareCommunication reply carries the thread (MedCom's IG): the
	// referral's message segment and Provenance, then its own.
	if p, v := bytes.Count(rec.Raw, []byte("<payload>")), bytes.Count(rec.Raw, []byte("<Provenance>")); p != 2 || v != 2 {
		t.Errorf("Bruno's recommendation carries %d message segments and %d Provenances; want the referral's and its own of each", p, v)
	}
	cases.OutboxShows(brunoRec, "sent", map[string]string{"gp": "sent"})

	// The document named no region for Bruno: a rule naming the region
	// does not widen that.
	if e := coordinator.ParkedAt("region", brunoRec); len(e) != 0 || len(region.CommunicationsFor(brunoRec)) != 0 {
		t.Errorf("Bruno's recommendation names no region but went for it: parked %+v", e)
	}
	// The parents: no channel yet, and nothing by mail to them either.
	for _, m := range w.mail.Messages() {
		for _, to := range m.To {
			if to == parentsEmail {
				t.Errorf("a mail went to the parents' address")
			}
		}
	}
}

// positiveAck and negativeAck read the code the journey gives the peer's
// acknowledgement: the FHIR response code or the XCTL receipt's verdict.
func positiveAck(code string) bool {
	switch code {
	case "ok", "positive", "PositiveReceipt":
		return true
	}
	return false
}

func negativeAck(code string) bool {
	switch code {
	case "fatal-error", "transient-error", "negative", "vans-negative", "NegativeReceipt", "NegativeVansReceipt":
		return true
	}
	return false
}
