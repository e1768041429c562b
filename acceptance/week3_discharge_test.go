package acceptance

import (
	"strings"
	"testing"
	"time"

	"github.com/samhub/samhub/internal/sim/medcompeer"
	"github.com/samhub/samhub/pipeline/letter"
)

// Week 3: child psychiatry discharges Bruno and sends its discharge note
// to the municipality, naming Bruno's GP; the hub files it on his case and
// sends it on to that GP (never back to the council). The GP's system
// refuses it, and the coordinator sees the refusal in the letter's journey.
func TestWeek3ChildPsychiatryDischargesToTheGP(t *testing.T) {
	w, note := dischargeTheGPRefuses(t)
	cases, coordinator := w.caseSystem(), w.coordinator()

	doc := cases.Files(note)
	if k := cases.CaseOf(bruno); doc.CaseID != k.ID || doc.Letter.Kind != string(letter.KindDischargeNote) {
		t.Errorf("the discharge note is document %s (%s) on case %s; want a discharge note on Bruno's case %s", doc.ID, doc.Letter.Kind, doc.CaseID, k.ID)
	}
	got := w.gp(gpOster).Receives(bruno, note, 1)[0]
	if got.To.GLN != gpOster.GLN || got.To.SOR != gpOster.SOR || got.Format != medcompeer.FormatFHIRXML {
		t.Errorf("the discharge note reached Østergade as %s to GLN %s SOR %s; want a CareCommunication in XML to the practice", got.Format, got.To.GLN, got.To.SOR)
	}
	if got.Patient.CPR != bruno.CPR || !strings.Contains(got.Text, "udskrevet") {
		t.Errorf("the discharge note at the GP: patient %+v, text %q", got.Patient, got.Text)
	}
	if got.Answer != "negative" {
		t.Errorf("the GP's system answered %q; the test told it to refuse", got.Answer)
	}
	ack := coordinator.SeesAcknowledgement(note)
	if !negativeAck(ack.Code) {
		t.Errorf("the journey of the discharge note shows the GP's refusal with code %q; want the negative acknowledgement visible to the coordinator", ack.Code)
	}
	// The refusal waits for the coordinator in the queue, with the GP's
	// reason; she sends the note by post instead and discards it.
	refused := coordinator.FindsParked("gp", note)
	if refused.LastError.Code != "negative_ack" {
		t.Errorf("the refused discharge note is parked with code %q, want negative_ack", refused.LastError.Code)
	}
	coordinator.Discards(refused, "Epikrisen er sendt med posten til lægen")
	w.eventually("the refused note gone from the queue", func() bool { return len(coordinator.ParkedAt("gp", note)) == 0 })
	time.Sleep(300 * time.Millisecond)
	if n := len(w.gp(gpOster).Received()); n != 1 {
		t.Errorf("Lægerne i Østergade got %d letters; want the discharge note once, and nothing after the discard", n)
	}
	if len(w.epj.Communications()) != 0 {
		t.Errorf("the discharge note went back to the region")
	}
}

// Week 3, the other way: the GP's system refuses the discharge note (the
// patient was not yet registered at the practice); once the practice has
// registered him, the coordinator replays it, and the GP gets it again
// under new MedCom ids (a receiver answers a letter id it has seen as a
// repeat) and accepts it. The GP ends up with the refused letter and the
// accepted one, nothing more, and nothing waits in the queue.
func TestWeek3ARefusedDischargeIsSentAgainOnReplay(t *testing.T) {
	w, note := dischargeTheGPRefuses(t)
	cases, coordinator := w.caseSystem(), w.coordinator()
	cases.Files(note)
	first := w.gp(gpOster).Receives(bruno, note, 1)[0]
	refused := coordinator.FindsParked("gp", note)
	if refused.LastError.Code != "negative_ack" {
		t.Fatalf("the refused discharge note is parked with code %q, want negative_ack", refused.LastError.Code)
	}

	coordinator.Replays(refused, "Praksis har tilmeldt patienten")
	got := w.gp(gpOster).Receives(bruno, note, 2)
	again := got[1]
	if first.Answer != "negative" || again.Answer != "positive" {
		t.Errorf("the GP's system answered %q, then %q; want the refusal, then an acceptance", first.Answer, again.Answer)
	}
	if again.ID == first.ID || again.ID == "" {
		t.Errorf("the note was sent again as %q after the refusal of %q; want new MedCom ids", again.ID, first.ID)
	}
	if again.To.GLN != gpOster.GLN || again.Format != medcompeer.FormatFHIRXML || !strings.Contains(again.Text, "udskrevet") {
		t.Errorf("the note sent again reached GLN %s as %s, text %q; want the same note to Østergade in XML", again.To.GLN, again.Format, again.Text)
	}
	w.eventually("the positive acknowledgement in the note's journey", func() bool {
		return positiveAck(coordinator.SeesAcknowledgement(note).Code)
	})
	w.eventually("the queue empty at the GP", func() bool { return len(coordinator.ParkedAt("gp", note)) == 0 })
	time.Sleep(300 * time.Millisecond)
	if n := len(w.gp(gpOster).Received()); n != 2 {
		t.Errorf("Lægerne i Østergade got %d letters; want the refused note and the one sent again", n)
	}
}

// dischargeTheGPRefuses is week 3 up to the discharge: Østergade refers
// Bruno, the case system files the referral, the coordinator records
// consent for his GP, and the region discharges him with a note to that
// GP, whose system is set to refuse the next letter. It returns the note.
func dischargeTheGPRefuses(t *testing.T) (*world, string) {
	w := newWorld(t)
	cases, coordinator, region := w.caseSystem(), w.coordinator(), w.region()
	w.expectLetters(bruno, gpOster)
	brunoRef := w.gp(gpOster).Refers(bruno, fhirXML)
	cases.Files(brunoRef.ID)
	coordinator.RecordsConsent(bruno, letter.ScopeGP)

	region.Knows(bruno, &gpOster)
	w.gp(gpOster).RefusesNext("Patienten er ikke tilmeldt praksis")
	return w, region.SendsDischargeNote(bruno, gpOster, "Bruno er udskrevet fra børne- og ungdomspsykiatrien. Opfølgning hos egen læge om en måned.")
}
