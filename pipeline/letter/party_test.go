package letter_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/samhub/samhub/pipeline/letter"
)

// A custody holder logged as a party (a value or a pointer) shows neither
// CPR number, name nor address. (slog does not apply LogValue inside a
// slice; the hub's handler masks CPR numbers there, internal/logging.)
func TestPartyLogsNoPersonalData(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	parent := letter.Party{Role: letter.RoleParents, Name: "Brita Test Berggren", Email: "brita.test@example.org", CPR: "1509819996"}
	gp := letter.Party{Role: letter.RoleGP, Name: "Lægehuset Ærø", GLN: "5790000000005"}
	log.Info("to", "party", parent, "ptr", &parent, "gp", gp)
	out := buf.String()
	for _, secret := range []string{"1509819996", "Brita", "Berggren", "example.org"} {
		if strings.Contains(out, secret) {
			t.Errorf("the log carries %q: %s", secret, out)
		}
	}
	if !strings.Contains(out, `"role":"parents"`) || !strings.Contains(out, "5790000000005") {
		t.Errorf("the log should still show roles and organisation ids: %s", out)
	}
}
