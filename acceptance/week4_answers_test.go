package acceptance

import (
	"net/http"
	"strings"
	"testing"
	"time"

	casesyssim "github.com/samhub/samhub/internal/sim/casesys"
	"github.com/samhub/samhub/internal/sim/medcompeer"
	"github.com/samhub/samhub/pipeline/letter"
)

// Week 4: Bruno's GP answers the council's recommendation in its thread.
// The hub acknowledges the answer from the address it was sent to, files
// it on Bruno's case in the referral's thread (after the case system,
// down as the answer arrived, is back and the coordinator replays it), and
// tells the coordinator.
func TestWeek4TheGPAnswersTheRecommendation(t *testing.T) {
	w := newWorld(t)
	cases := w.caseSystem()
	cases.Knows(bruno, letter.ScopeGP)
	w.expectLetters(bruno, gpOster)
	brunoRef := w.gp(gpOster).Refers(bruno, fhirXML)
	cases.Files(brunoRef.ID)
	rec := w.council().Recommends(bruno, recipients{GP: &gpOster}, "Samrådet anbefaler familiebehandling.")

	got := w.gp(gpOster).Receives(bruno, rec, 1)[0]
	if got.Format != medcompeer.FormatFHIRXML {
		t.Errorf("the recommendation reached Østergade as %s; the receiver directory says fhir-xml", got.Format)
	}
	// The case system refuses documents for a while as the answer arrives:
	// the answer waits in the queue until the coordinator sends it again.
	w.cases.InjectFailure(casesyssim.Fault{Route: "POST /cases/{caseId}/documents", Count: 3, Status: http.StatusServiceUnavailable})
	answer := w.gp(gpOster).Answers(got, "Tak. Familien er henvist til familiebehandling og har fået tid.")
	ack := w.gp(gpOster).AckOf(answer)
	if !ack.Positive || ack.From.GLN != answer.To.GLN {
		t.Errorf("the hub acknowledged the GP's answer %s from %s; want positive, from %s", ack.Code, ack.From.GLN, answer.To.GLN)
	}
	w.coordinator().Replays(w.coordinator().FindsParked("casefile", answer.ID), "Sagssystemet tager imod dokumenter igen")
	doc := cases.Files(answer.ID)
	k := cases.CaseOf(bruno)
	if doc.CaseID != k.ID || doc.Direction != "incoming" || doc.Letter.Kind != string(letter.KindReply) || doc.Letter.ThreadID != brunoRef.Thread {
		t.Errorf("the GP's answer is document %s on case %s (%s, %s, thread %q); want an incoming reply on Bruno's case %s in thread %q",
			doc.ID, doc.CaseID, doc.Direction, doc.Letter.Kind, doc.Letter.ThreadID, k.ID, brunoRef.Thread)
	}
	w.eventually("the coordinator's notice that an answer arrived", func() bool {
		for _, n := range w.notices() {
			if strings.Contains(n, "svar") && strings.Contains(n, answer.ID) {
				return true
			}
		}
		return false
	})
	if n := len(w.gp(gpOster).Received()); n != 1 {
		t.Errorf("Østergade received %d letters; the answer must not come back to it", n)
	}
}

// Week 4: a follow-up to a recommendation that is still waiting for
// consent waits behind it, held, and reaches the GP after it, in order.
func TestWeek4AFollowUpWaitsForTheFirstLetter(t *testing.T) {
	w := newWorld(t)
	cases, coordinator := w.caseSystem(), w.coordinator()
	cases.Knows(bruno) // no consent yet
	w.expectLetters(bruno, gpOster)
	brunoRef := w.gp(gpOster).Refers(bruno, fhirXML)
	cases.Files(brunoRef.ID)

	first := w.council().Recommends(bruno, recipients{GP: &gpOster}, "Samrådet anbefaler familiebehandling (første brev).")
	parked := coordinator.FindsParked("gp", first)
	coordinator.RecordsConsent(bruno, letter.ScopeGP)
	second := w.council().Recommends(bruno, recipients{GP: &gpOster}, "Tillæg til samrådets anbefaling (andet brev).")

	// The second letter of the thread must wait, visibly, for the first.
	var held bool
	w.eventually("the second letter held behind the first, or delivered", func() bool {
		if len(w.gp(gpOster).Received()) > 0 {
			return true
		}
		for _, e := range coordinator.ParkedAt("gp", second) {
			if e.LastError.Code == "thread_held" {
				held = true
				if !strings.Contains(e.LastError.Reason, first) {
					t.Errorf("the held letter's reason %q does not name the letter it waits for (%s)", e.LastError.Reason, first)
				}
				return true
			}
		}
		return false
	})
	if !held {
		t.Errorf("the second letter of the thread was not held behind the parked first one (code thread_held)")
	}
	if n := len(w.gp(gpOster).Received()); n != 0 {
		t.Errorf("Østergade got %d letters while the first letter of the thread waited in the queue", n)
	}

	coordinator.Replays(parked, "Forældrenes samtykke er registreret")
	got := w.gp(gpOster).Receives(bruno, second, 2)
	if !strings.Contains(got[0].Text, "første brev") || !strings.Contains(got[1].Text, "andet brev") {
		t.Errorf("Østergade got the letters in the order %q, %q; want the first letter first", got[0].Text, got[1].Text)
	}
	time.Sleep(500 * time.Millisecond) // a third copy would show itself
	if n := len(w.gp(gpOster).Received()); n != 2 {
		t.Errorf("Østergade got %d letters, want the two once each", n)
	}
	if q := coordinator.Queue(); len(q) != 0 {
		t.Errorf("the retry queue still holds %+v", q)
	}
}
