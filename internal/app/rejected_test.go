package app_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/samhub/samhub/internal/hubtest"
	"github.com/samhub/samhub/internal/logbuf"
)

// A rejected file and a resent letter show in the hub's counters exactly
// as often as in its log, and the rejection's log line says why without
// personal data (issue 19: the counter never moved, the log had no reason).
func TestRejectedFilesAndDuplicatesAreCountedAsLogged(t *testing.T) {
	log := &logbuf.Buffer{}
	h := hubtest.Start(t, hubtest.WithLog(log))
	letterData, err := os.ReadFile("../../testdata/medcom/samhub/letter-utf8.xml")
	if err != nil {
		t.Fatal(err)
	}
	invalid, err := os.ReadFile("../../testdata/medcom/samhub/invalid-letter.xml")
	if err != nil {
		t.Fatal(err)
	}
	h.Drop("letter.xml", letterData)
	h.Drop("not-xml.txt", []byte("Kære samråd, Bruno Test Elmer 2509479989"))
	h.Drop("invalid.xml", invalid)
	h.Eventually("the letter processed", func() bool {
		_, err := os.Stat(filepath.Join(h.MedComDir, "processed", "letter.xml"))
		return err == nil
	})
	h.Drop("letter-again.xml", letterData)
	h.Eventually("the copy processed", func() bool {
		_, err := os.Stat(filepath.Join(h.MedComDir, "processed", "letter-again.xml"))
		return err == nil
	})
	h.Eventually("both bad files in error/", func() bool {
		_, e1 := os.Stat(filepath.Join(h.MedComDir, "error", "not-xml.txt.error.txt"))
		_, e2 := os.Stat(filepath.Join(h.MedComDir, "error", "invalid.xml.error.txt"))
		return e1 == nil && e2 == nil
	})
	body := get(t, h.BaseURL+"/metrics")
	for _, want := range []string{
		`samhub_letters_rejected_total{code="syntax",source="medcom"} 1`,
		`samhub_letters_rejected_total{code="invalid",source="medcom"} 1`,
		`samhub_letters_rejected_total{code="dtd",source="medcom"} 0`, // every code's series exists from 0
		`samhub_letters_duplicate_total{source="medcom"} 1`,
		`samhub_medcom_duplicates_total{adapter="medcom"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if n := len(log.Lines("duplicate letter")); n != 1 {
		t.Errorf("%d duplicates logged, want 1", n)
	}
	rejected := log.Lines("medcom: file rejected")
	if len(rejected) != 2 {
		t.Fatalf("rejections logged: %q", rejected)
	}
	for _, line := range rejected {
		if !regexp.MustCompile(`"code":"(syntax|invalid)"`).MatchString(line) || !regexp.MustCompile(`"reason":"[^"]{10,}`).MatchString(line) {
			t.Errorf("the log line lacks the code or the reason: %s", line)
		}
	}
	// The fixtures' personal data, not any CPR-shaped number: temporary
	// directory names in the log are random digits.
	if pd := regexp.MustCompile(`2509479989|Bruno|Elmer|Kære`).FindString(log.String()); pd != "" {
		t.Errorf("the hub's log holds personal data: %q", pd)
	}
}
