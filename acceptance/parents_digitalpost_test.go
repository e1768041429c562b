package acceptance

import (
	"slices"
	"strings"
	"testing"

	"github.com/samhub/samhub/pipeline/journey"
	"github.com/samhub/samhub/pipeline/letter"
)

// Bruno's custody holders, MedCom's fictitious test persons. Nancy is
// exempt from Digital Post (fritaget): she gets her letters on paper.
var (
	brita = custodyHolder{Name: "Brita Test Berggren", CPR: "1509819996"}
	nancy = custodyHolder{Name: "Nancy Ann Test Berggren", CPR: "2512489996"}
)

// The parents get the council's recommendation by Digital Post. The
// council names Bruno's GP and his two custody holders; the parents
// consented. The GP gets it by MedCom; Brita gets a MeMo message in her
// Digital Post, addressed by her CPR number under a neutral title; Nancy
// is exempt from Digital Post, so the letter parks at the parents'
// destination with a reason that tells the coordinator to send it on
// paper and names nobody. The case system's outbox shows each recipient
// as it is: the GP and Brita sent, Nancy failed. The coordinator sends the
// letter again (no second message for Brita), then sends Nancy a paper
// letter and discards the entry: Brita stays sent. Nobody is mailed.
func TestParentsGetTheRecommendationByDigitalPost(t *testing.T) {
	w := newWorld(t, withDigitalPost(nancy.CPR))
	cases, coordinator := w.caseSystem(), w.coordinator()
	cases.Knows(bruno, letter.ScopeGP, letter.ScopeParents)
	w.expectLetters(bruno, gpOster)
	ref := w.gp(gpOster).Refers(bruno, fhirXML)
	cases.Files(ref.ID)

	const text = "Samrådet anbefaler familiebehandling og et forløb hos PPR. Vi mødes igen om tre måneder."
	rec := w.council().Recommends(bruno, recipients{GP: &gpOster, Custody: []custodyHolder{brita, nancy}}, text)
	w.gp(gpOster).Receives(bruno, rec, 1)

	// Brita: one MeMo message, to her CPR, from the municipality, under
	// the neutral title, with the recommendation as the document.
	w.eventually("Brita's Digital Post", func() bool { return len(w.post.MessagesFor(brita.CPR)) > 0 })
	msgs := w.post.MessagesFor(brita.CPR)
	if len(msgs) != 1 {
		t.Fatalf("Brita has %d Digital Post messages, want 1", len(msgs))
	}
	m := msgs[0]
	if m.Channel != "digitalpost" || m.KombiValgKode != "Digital Post" || m.SenderCVR != councilCVR || m.SenderLabel != theCouncil.Name {
		t.Errorf("Brita's message: %+v; want Digital Post from the council's CVR", m)
	}
	for _, secret := range []string{"Bruno", "Elmer", bruno.CPR, "Berggren", "anbefal", "PPR"} {
		if strings.Contains(m.Label, secret) {
			t.Errorf("the title every inbox and notification shows, %q, carries %q", m.Label, secret)
		}
	}
	if got := w.post.Text(m); !strings.Contains(got, "familiebehandling og et forløb hos PPR") {
		t.Errorf("Brita's document reads %q; want the recommendation", got)
	}

	// Nancy: nothing in Digital Post; the letter waits for the
	// coordinator with a reason she can act on.
	parked := coordinator.FindsParked("parents", rec)
	if parked.LastError.Code != "recipient_exempt" || !strings.Contains(parked.LastError.Reason, "exempt from Digital Post") ||
		!strings.Contains(parked.LastError.Reason, "paper") || !strings.Contains(parked.LastError.Reason, "1 of 2") {
		t.Errorf("the letter parked at the parents' destination with %s: %q; want recipient_exempt telling to send 1 of 2 on paper", parked.LastError.Code, parked.LastError.Reason)
	}
	if cprShaped.MatchString(parked.LastError.Reason) || strings.Contains(parked.LastError.Reason, "Nancy") || strings.Contains(parked.LastError.Reason, "Berggren") {
		t.Errorf("the parked reason names the custody holder: %q", parked.LastError.Reason)
	}
	if n := len(w.post.MessagesFor(nancy.CPR)); n != 0 {
		t.Errorf("Nancy, exempt from Digital Post, has %d messages there", n)
	}
	cases.OutboxShows(rec, "failed", map[string]string{"gp": "sent", "parent-1": "sent", "parent-2": "failed"})
	_, per := cases.Outbox(rec)
	if per["parent-2"].Code != "recipient_exempt" || per["parent-1"].Destination != "parents" {
		t.Errorf("the outbox says parent-1 %+v, parent-2 %+v", per["parent-1"], per["parent-2"])
	}
	for _, r := range per {
		if strings.Contains(r.Reason, "Nancy") || strings.Contains(r.Reason, "Brita") || strings.Contains(r.Recipient.Email, "@") {
			t.Errorf("the outbox status of %s: %+v", r.Key, r)
		}
	}

	// Sent again (say, to check whether Nancy has left the exemption):
	// still exempt, and Brita's message is a repeat, not a second letter.
	coordinator.Replays(parked, "Tjekker om modtageren stadig er fritaget")
	w.eventually("the letter parked again", func() bool {
		for _, e := range coordinator.ParkedAt("parents", rec) {
			if e.Seq != parked.Seq {
				return true
			}
		}
		return false
	})
	if n := len(w.post.MessagesFor(brita.CPR)); n != 1 {
		t.Errorf("after the replay Brita has %d messages, want still 1", n)
	}
	if c := w.post.Counts().Messages[m.UUID]; c.Stored != 1 || c.Repeats != 1 {
		t.Errorf("Brita's message counted %+v: want stored once, sent once more", c)
	}

	// Nancy gets a paper letter; the coordinator discards the entry.
	again := coordinator.ParkedAt("parents", rec)
	coordinator.Discards(again[len(again)-1], "Sendt som fysisk brev til forælder fritaget for Digital Post")
	w.eventually("Nancy's status says the entry was discarded", func() bool {
		_, per := cases.Outbox(rec)
		return per["parent-2"].Code == "discarded"
	})
	// Brita has the letter: the discard does not make her "failed".
	cases.OutboxShows(rec, "failed", map[string]string{"gp": "sent", "parent-1": "sent", "parent-2": "failed"})
	tr := coordinator.Traces(rec)
	if len(tr.steps(journey.Delivered, "gp")) == 0 || len(tr.steps(journey.Discarded, "parents")) == 0 {
		t.Errorf("the journey lacks the GP's delivery or the discard at the parents' destination: %+v", tr.Steps)
	}
	if len(coordinator.ParkedAt("parents", rec)) != 0 {
		t.Error("the discarded letter is still in the queue")
	}

	// Email went to the council's own staff only, and no notice names a
	// parent.
	for _, msg := range w.mail.Messages() {
		if !slices.ContainsFunc(msg.To, func(a string) bool { return strings.HasSuffix(a, "@samraad.example") }) {
			t.Errorf("a mail went to %v", msg.To)
		}
	}
	for _, n := range w.notices() {
		for _, secret := range []string{brita.CPR, nancy.CPR, "Brita", "Nancy", "Berggren"} {
			if strings.Contains(n, secret) {
				t.Errorf("a notice to the coordinator carries %q: %q", secret, n)
			}
		}
	}
}
