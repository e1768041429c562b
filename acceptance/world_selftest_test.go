package acceptance

import (
	"strings"
	"testing"
)

// The harness itself: the hub starts from the written configuration with
// everyone around it, the coordinator and the auditor reach it through
// samhubctl, and a world with no letters ends its last check clean.
func TestTheWorldStarts(t *testing.T) {
	w := newWorld(t)
	if out, code := w.samhubctl(coordinatorToken, "whoami"); code != 0 || !strings.Contains(out, "koordinator (coordinator)") {
		t.Fatalf("samhubctl whoami as the coordinator: exit %d: %s", code, out)
	}
	if out, code := w.samhubctl(auditorToken, "audit", "tail"); code != 0 {
		t.Fatalf("samhubctl audit tail as the auditor: exit %d: %s", code, out)
	}
	if q := w.coordinator().Queue(); len(q) != 0 {
		t.Errorf("a new hub's retry queue holds %d letters", len(q))
	}
	if got := w.peer.Checks(); len(got) != 3 {
		t.Errorf("the MedCom peer checks %q; want the readers and the XSD", got)
	}
}
