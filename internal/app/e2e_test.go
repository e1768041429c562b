package app_test

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/samhub/samhub/internal/hubtest"
	"github.com/samhub/samhub/internal/logging"
)

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestLetterFileBecomesOneCaseDocument(t *testing.T) {
	h := hubtest.Start(t)
	data, err := os.ReadFile("../../testdata/medcom/samhub/letter-utf8.xml")
	if err != nil {
		t.Fatal(err)
	}
	h.Drop("letter-utf8.xml", data)
	h.Eventually("one document in the case system", func() bool { return len(h.CaseSys.Documents()) >= 1 })
	h.Eventually("the file moved to processed/", func() bool {
		_, err := os.Stat(filepath.Join(h.MedComDir, "processed", "letter-utf8.xml"))
		return err == nil
	})
	docs := h.CaseSys.Documents()
	if len(docs) != 1 {
		t.Fatalf("want exactly one document, got %d", len(docs))
	}
	// The journal note follows the document in the same delivery.
	h.Eventually("the journal note", func() bool { return len(h.CaseSys.JournalNotes()) >= 1 })
	if n := len(h.CaseSys.JournalNotes()); n != 1 {
		t.Errorf("want one journal note, got %d", n)
	}
	// The original bytes are journalised untouched.
	found := false
	for i := range 4 {
		b, err := h.CaseSys.FileData(docs[0].ID, i)
		if err == nil && string(b) == string(data) {
			found = true
		}
	}
	if !found {
		t.Error("the original letter file is not among the document's files")
	}
	if _, err := os.Stat(filepath.Join(h.MedComDir, "in", "letter-utf8.xml")); !os.IsNotExist(err) {
		t.Error("the file is still in in/")
	}
	// Operations see it in the metrics, without personal data.
	h.Eventually("the delivery counted", func() bool {
		return strings.Contains(get(t, h.BaseURL+"/metrics"), `samhub_deliveries_total{destination="casefile",result="delivered"} 1`)
	})
	body := get(t, h.BaseURL+"/metrics")
	for _, want := range []string{`samhub_deliveries_total{destination="casefile",result="delivered"} 1`, `samhub_letters_received_total{source="medcom"} 1`, `samhub_letters_duplicate_total{source="medcom"}`, `samhub_router_`} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if logging.ContainsCPR(string(hubtest.MetricSeries([]byte(body)))) {
		t.Error("metric series contain a CPR-shaped number")
	}
	if r := get(t, h.BaseURL+"/readyz"); !strings.Contains(r, "ready") {
		t.Errorf("readyz: %s", r)
	}
	// Dropping the same letter again (a MedCom resend) makes no second document.
	h.Drop("letter-utf8-resend.xml", data)
	h.Eventually("the resend processed", func() bool {
		_, err := os.Stat(filepath.Join(h.MedComDir, "processed", "letter-utf8-resend.xml"))
		return err == nil
	})
	h.Restart()
	h.Drop("letter-utf8-resend2.xml", data)
	h.Eventually("the second resend processed", func() bool {
		_, err := os.Stat(filepath.Join(h.MedComDir, "processed", "letter-utf8-resend2.xml"))
		return err == nil
	})
	if n := len(h.CaseSys.Documents()); n != 1 {
		t.Fatalf("resends created %d documents, want 1", n)
	}
	// Acknowledgements written to out/.
	out, _ := os.ReadDir(filepath.Join(h.MedComDir, "out"))
	acks := 0
	for _, e := range out {
		if strings.HasSuffix(e.Name(), ".xml") {
			acks++
		}
	}
	if acks == 0 {
		t.Error("no acknowledgement written to out/")
	}
}
