package console_test

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/samhub/samhub/internal/config"
	"github.com/samhub/samhub/internal/hubtest"
)

// rejectFiles leaves a good letter in error/ as a hub that took it
// half-written did, and drops an invalid letter that gets a negative
// acknowledgement.
func rejectFiles(t *testing.T, h *hubtest.Hub) {
	t.Helper()
	good, err := os.ReadFile("../../testdata/medcom/samhub/letter-utf8.xml")
	if err != nil {
		t.Fatal(err)
	}
	errDir := filepath.Join(h.MedComDir, "error")
	if err := os.WriteFile(filepath.Join(errDir, "early.xml"), good, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(errDir, "early.xml.error.txt"), []byte("rejected: xml: no root element: input is not XML\n\ncode: syntax\nacknowledgement sent: no\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	invalid, err := os.ReadFile("../../testdata/medcom/samhub/invalid-letter.xml")
	if err != nil {
		t.Fatal(err)
	}
	h.Drop("invalid.xml", invalid)
	h.Eventually("the invalid letter rejected", func() bool {
		_, err := os.Stat(filepath.Join(errDir, "invalid.xml.error.txt"))
		return err == nil
	})
}

// The coordinator sees each rejected file with what its code means and the
// reason, and puts one back with a reason, audited; the file is then read
// again and delivered.
func TestPutBackFromTheConsoleIsAudited(t *testing.T) {
	h := startHub(t)
	rejectFiles(t, h)
	c, csrf := login(t, h, "koordinator", hubtest.CoordinatorPassword)
	_, page := get(t, c, h.BaseURL+"/console/rejected")
	mustContain(t, "rejected files", page, "Rejected files", "early.xml", "invalid.xml",
		"Not well-formed XML or JSON", "The letter breaks the MedCom standard", "CivilRegistrationNumber",
		"The sender got an acknowledgement for it", `value="medcom/early.xml"`)
	if strings.Contains(page, `value="medcom/invalid.xml"`) {
		t.Error("an answered file can be selected for putting back")
	}
	if strings.Contains(page, fixtureCPR) {
		t.Error("the page shows a CPR number")
	}
	// Operations answers the alert: it sees the files and why (as the API
	// shows them to it), but cannot put one back.
	oc, ocsrf := login(t, h, "drift", hubtest.OperationsPassword)
	st, page := get(t, oc, h.BaseURL+"/console/rejected")
	if st != http.StatusOK {
		t.Fatalf("operations on the rejected files: %d", st)
	}
	mustContain(t, "rejected files for operations", page, `href="/console/rejected"`, "early.xml", "invalid.xml", "Not well-formed XML or JSON",
		"Only a coordinator can put a file back")
	if strings.Contains(page, `name="file"`) || strings.Contains(page, `id="put-back"`) || strings.Contains(page, fixtureCPR) {
		t.Error("operations' page offers putting back, or shows a CPR number")
	}
	if st, _, _ := post(t, oc, h.BaseURL+"/console/rejected", url.Values{"csrf": {ocsrf}, "file": {"medcom/early.xml"}, "reason": {"try"}}); st != http.StatusForbidden {
		t.Errorf("operations put a file back: %d", st)
	}
	// Without a reason nothing happens.
	post(t, c, h.BaseURL+"/console/rejected", url.Values{"csrf": {csrf}, "file": {"medcom/early.xml"}})
	if _, page := get(t, c, h.BaseURL+"/console/rejected"); !strings.Contains(page, "Write a reason.") || !strings.Contains(page, "early.xml") {
		t.Error("no message for a missing reason, or the file moved anyway")
	}
	// A forged choice of the answered file is refused by the hub.
	post(t, c, h.BaseURL+"/console/rejected", url.Values{"csrf": {csrf}, "file": {"medcom/early.xml", "medcom/invalid.xml"}, "reason": {"taken while being written"}})
	_, page = get(t, c, h.BaseURL+"/console/rejected")
	mustContain(t, "after putting back", page, "Put back 1 file(s)", "invalid.xml: the sender was already answered")
	h.Eventually("the letter delivered", func() bool { return len(h.CaseSys.Documents()) == 1 })
	r, ok := findAudit(auditRecords(t, h), "put-back", "koordinator")
	if !ok || r.Target != "rejected:medcom:invalid.xml" || r.Result != "refused" {
		t.Errorf("last put-back record %+v (found %v)", r, ok)
	}
	n := 0
	for _, r := range auditRecords(t, h) {
		if r.Action == "put-back" && r.Target == "rejected:medcom:early.xml" && r.Reason == "taken while being written" && r.Role == "coordinator" && r.Remote != "" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d put-back records for early.xml, want 1", n)
	}
}

func TestDanishRejectedFiles(t *testing.T) {
	h := startHub(t, hubtest.WithConfig(func(c *config.Config) { c.Console.Language = "da" }))
	rejectFiles(t, h)
	c, _ := login(t, h, "koordinator", hubtest.CoordinatorPassword)
	_, page := get(t, c, h.BaseURL+"/console/rejected")
	mustContain(t, "afviste filer", page, "Afviste filer", "Ikke gyldig XML eller JSON", "Læg valgte tilbage i in/", "Afsenderen har fået en kvittering")
}
