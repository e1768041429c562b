package main

import (
	"os"
	"strings"
	"testing"

	"github.com/samhub/samhub/internal/hubtest"
)

// setAside sets the fixture letter aside in error/ as not XML, its
// sender never answered: a file the coordinator may put back.
func setAside(t *testing.T, h *hubtest.Hub, name string) {
	t.Helper()
	good, err := os.ReadFile("../../testdata/medcom/samhub/letter-utf8.xml")
	if err != nil {
		t.Fatal(err)
	}
	h.SetAside(name, good)
}

// Operations lists what was refused (the SamhubInputRejected alert's
// question) and the coordinator puts a file back: its letter is then filed
// once. Operations may not put back; an unknown file is "not found".
func TestRejectedFilesFromTheCommandLine(t *testing.T) {
	h := hubtest.Start(t)
	setAside(t, h, "taken-early.xml")
	code, out, errs := ctl(t, h, hubtest.OperationsToken, "rejected", "list")
	if code != 0 || !strings.Contains(out, "taken-early.xml") || !strings.Contains(out, "medcom") {
		t.Fatalf("list as operations: exit %d\n%s%s", code, out, errs)
	}
	if code, _, _ := ctl(t, h, hubtest.OperationsToken, "rejected", "put-back", "medcom", "taken-early.xml", "--reason", "test"); code != exitAuth {
		t.Errorf("put-back as operations: exit %d, want %d", code, exitAuth)
	}
	if code, _, _ := ctl(t, h, hubtest.CoordinatorToken, "rejected", "put-back", "medcom", "taken-early.xml"); code != exitUsage {
		t.Errorf("put-back without --reason: exit %d, want %d", code, exitUsage)
	}
	if code, _, _ := ctl(t, h, hubtest.CoordinatorToken, "rejected", "put-back", "medcom", "no-such.xml", "--reason", "test"); code != exitNotFound {
		t.Errorf("put-back of an unknown file: exit %d, want %d", code, exitNotFound)
	}
	code, out, errs = ctl(t, h, hubtest.CoordinatorToken, "rejected", "put-back", "medcom", "taken-early.xml", "--reason", "the transfer was cut short")
	if code != 0 || !strings.Contains(out, "Put back") {
		t.Fatalf("put-back: exit %d\n%s%s", code, out, errs)
	}
	h.Eventually("the letter filed", func() bool { return len(h.CaseSys.Documents()) == 1 })
	code, out, _ = ctl(t, h, hubtest.OperationsToken, "rejected", "list")
	if code != 0 || strings.Contains(out, "taken-early.xml") {
		t.Errorf("the file put back is still listed: exit %d\n%s", code, out)
	}
}
