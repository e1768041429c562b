package acceptance

import (
	"net/http"
	"strings"
	"testing"

	casesyssim "github.com/samhub/samhub/internal/sim/casesys"
	"github.com/samhub/samhub/internal/sim/medcompeer"
	"github.com/samhub/samhub/pipeline/journey"
)

// Week 1: referrals arrive from three practices, in every format GPs use
// today, for children the case system knows and one it does not. The case
// system is down for a while in the middle: that referral waits in the
// retry queue until the coordinator sends it again.
func TestWeek1ReferralsArrive(t *testing.T) {
	w := newWorld(t)
	cases, coordinator := w.caseSystem(), w.coordinator()
	aaseCase := cases.Knows(aase) // opened by a caseworker last year

	// Three practices refer four children.
	aaseRef := w.gp(gpAero).Refers(aase, xdis91Latin1)
	madsHow := xdis91UTF8
	madsHow.To = &bornOgUnge // to the municipality's children and youth department
	madsRef := w.gp(gpAero).Refers(mads, madsHow)
	caecarRef := w.gp(gpSonder).Refers(caecar, fhirJSONVANS)
	for _, s := range []medcompeer.Sent{aaseRef, madsRef, caecarRef} {
		cases.Files(s.ID)
	}

	// The case system goes down; Bruno's referral arrives meanwhile.
	w.cases.InjectFailure(casesyssim.Fault{Route: "POST /cases/search", Count: 3, Status: http.StatusServiceUnavailable})
	brunoRef := w.gp(gpOster).Refers(bruno, fhirXML)
	parked := coordinator.FindsParked("casefile", brunoRef.ID)
	if len(cases.DocumentsFor(brunoRef.ID)) != 0 {
		t.Errorf("Bruno's referral is parked and also filed")
	}
	// The case system is back: the coordinator sends it again.
	coordinator.Replays(parked, "Sagssystemet kører igen")

	referrals := []struct {
		c    child
		sent medcompeer.Sent
		gp   gp
	}{{aase, aaseRef, gpAero}, {mads, madsRef, gpAero}, {caecar, caecarRef, gpSonder}, {bruno, brunoRef, gpOster}}
	for _, r := range referrals {
		// The case system: one open case per child, made with the child's
		// name when the hub had to make it, and the referral on it once,
		// with the bytes the GP sent.
		doc := cases.Files(r.sent.ID)
		k := cases.CaseOf(r.c)
		if doc.CaseID != k.ID || doc.Direction != "incoming" || doc.Letter.Kind != "referral" {
			t.Errorf("%s's referral: document %s on case %s (%s, %s); want it incoming on the child's case %s", r.c.Name(), doc.ID, doc.CaseID, doc.Direction, doc.Letter.Kind, k.ID)
		}
		if !cases.HoldsOriginal(doc, r.sent.Data) {
			t.Errorf("%s's referral: the document does not keep the letter as %s sent it", r.c.Name(), r.gp.Name)
		}
		if k.PrimaryParty.Name != r.c.Name() {
			t.Errorf("%s's case names the child %q, want %q (from the referral)", r.c.Name(), k.PrimaryParty.Name, r.c.Name())
		}
		// The practice: a positive acknowledgement of this very letter,
		// from the address the letter was sent to.
		ack := w.gp(r.gp).AckOf(r.sent)
		if !ack.Positive || len(ack.Problems) > 0 {
			t.Errorf("%s's referral from %s: acknowledgement %s %v, want positive and valid", r.c.Name(), r.gp.Name, ack.Code, ack.Problems)
		}
		if ack.From.GLN != r.sent.To.GLN || ack.To.GLN != r.gp.GLN {
			t.Errorf("%s's referral to %s: acknowledged from %s to %s; want from the address it was sent to, to %s", r.c.Name(), r.sent.To.GLN, ack.From.GLN, ack.To.GLN, r.gp.GLN)
		}
	}
	if got := cases.CaseOf(aase); got.ID != aaseCase {
		t.Errorf("Åse's referral went to case %s, not to her case %s", got.ID, aaseCase)
	}

	// Bruno's referral: every failed attempt, the park, the replay and the
	// delivery are in its journey.
	var tr trace
	w.eventually("the delivery in the journey of Bruno's referral", func() bool {
		tr = coordinator.Traces(brunoRef.ID)
		return len(tr.steps(journey.Delivered, "casefile")) > 0
	})
	if n := len(tr.steps(journey.Retried, "casefile")); n < 2 {
		t.Errorf("the journey of Bruno's referral shows %d retries at casefile; want every failed attempt before it parked (2 of 3)", n)
	}
	for _, step := range []string{journey.Parked, journey.Replayed, journey.Delivered} {
		if len(tr.steps(step, "casefile")) != 1 {
			t.Errorf("the journey of Bruno's referral has %d %q steps at casefile, want 1: %+v", len(tr.steps(step, "casefile")), step, tr.Steps)
		}
	}
	if q := coordinator.Queue(); len(q) != 0 {
		t.Errorf("the retry queue holds %d letters after the replay: %+v", len(q), q)
	}

	// Nothing went to a GP or the region: referrals stay in the municipality.
	if got := w.peer.Letters(); len(got) != 0 {
		t.Errorf("%d letters left the municipality by MedCom: %+v", len(got), got)
	}
	if got := w.epj.Communications(); len(got) != 0 {
		t.Errorf("the region got %d Communications", len(got))
	}

	// The coordinator was told, without a name or CPR number in the mail.
	w.eventually("the coordinator's notice that Bruno's referral waits in the queue", func() bool {
		for _, n := range w.notices() {
			if strings.Contains(n, "venter på koordinatoren") && strings.Contains(n, brunoRef.ID) {
				return true
			}
		}
		return false
	})
	w.eventually("the coordinator's notices of four referrals and one parked letter", func() bool { return len(w.notices()) >= 5 })
	for _, n := range w.notices() {
		for _, c := range []child{aase, mads, caecar, bruno} {
			if strings.Contains(n, c.CPR) || strings.Contains(n, c.Family) {
				t.Errorf("a notice to the coordinator names %s", c.Name())
			}
		}
	}
}
