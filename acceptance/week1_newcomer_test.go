package acceptance

import (
	"strings"
	"testing"
)

// Week 1: a practice refers Birgit, who has just arrived in Denmark: she
// has a replacement CPR (X-eCPR) and no known family name, which MedCom's
// patient profile allows (a data-absent-reason on the name) and its receive
// test protocol requires a receiver to take. The hub acknowledges the
// letter and the case system gets her with what is known.
func TestWeek1ANewlyArrivedChildIsReceived(t *testing.T) {
	w := newWorld(t)
	cases := w.caseSystem()
	how := fhirJSONVANS
	how.FamilyNameUnknown = true
	ref := w.gp(gpSonder).Refers(birgit, how)

	ack := w.gp(gpSonder).AckOf(ref)
	if !ack.Positive || ack.From.GLN != ref.To.GLN {
		t.Fatalf("the hub answered Birgit's referral %s from %s; want it received (ok) from %s", ack.Code, ack.From.GLN, ref.To.GLN)
	}
	doc := cases.Files(ref.ID)
	var name string
	for _, k := range w.cases.Cases() {
		if k.ID == doc.CaseID {
			name = k.PrimaryParty.Name
		}
	}
	if !strings.Contains(name, "Birgit") {
		t.Errorf("Birgit's referral is on case %s naming %q; want a case for her, with the name that is known", doc.CaseID, name)
	}
	if !cases.HoldsOriginal(doc, ref.Data) {
		t.Errorf("the document does not keep the letter as the practice sent it")
	}
}
