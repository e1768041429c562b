package acceptance

import (
	"strings"
	"testing"

	"github.com/samhub/samhub/pipeline/journey"
	"github.com/samhub/samhub/pipeline/letter"
)

// A recommendation names a GP the hub cannot address (a name only, no
// GLN or SOR; no referral in the case's thread; no default receiver for the
// destination): it goes nowhere and waits in the queue with the reason,
// and the coordinator discards it, audited.
func TestAnUnresolvableReceiverParks(t *testing.T) {
	w := newWorld(t)
	cases, coordinator := w.caseSystem(), w.coordinator()
	cases.Knows(aase, letter.ScopeGP)
	rec := w.council().Recommends(aase, recipients{GPName: "Lægehuset (adressen mangler)"}, "Samrådet anbefaler et forløb hos PPR.")

	e := coordinator.FindsParked("gp", rec)
	if e.LastError.Code != "receiver_unresolved" {
		t.Errorf("the letter waits with code %q (%s); want receiver_unresolved", e.LastError.Code, e.LastError.Reason)
	}
	if n := len(w.peer.Letters()); n != 0 {
		t.Errorf("%d letters left by MedCom", n)
	}
	coordinator.Discards(e, "Anbefalingen sendes med almindelig post til lægen")
	if q := coordinator.Queue(); len(q) != 0 {
		t.Errorf("the queue still holds %+v", q)
	}
	if tr := coordinator.Traces(rec); len(tr.steps(journey.Discarded, "gp")) != 1 {
		t.Errorf("the journey does not show the discard: %+v", tr.Steps)
	}
	out, code := w.samhubctl(auditorToken, "audit", "tail", "-o", "json")
	if code != 0 {
		t.Fatalf("samhubctl audit tail: exit %d: %s", code, out)
	}
	if !strings.Contains(out, `"action": "discard"`) || !strings.Contains(out, "almindelig post") {
		t.Errorf("the audit log does not show the discard with its reason: %s", out)
	}
}
