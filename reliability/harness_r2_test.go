package reliability

// Helpers for part 2 of the reliability suite (badletters, hostile, fuzz,
// diskfull, security). Every package-level name here starts with r2 so it
// cannot collide with the helpers of part 1 in the same package.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/samhub/samhub/internal/hubtest"
	"github.com/samhub/samhub/internal/logbuf"
)

// r2Artefact is something the suite produced that must hold no CPR number:
// a log, a metrics page, a parked reason, an email subject, an error note.
type r2Artefact struct {
	Kind, Name string
	Data       []byte
}

// r2Produced collects artefacts across scenarios; the security scenario scans them.
var r2Produced struct {
	mu    sync.Mutex
	items []r2Artefact
}

func r2Keep(kind, name string, data []byte) {
	r2Produced.mu.Lock()
	defer r2Produced.mu.Unlock()
	r2Produced.items = append(r2Produced.items, r2Artefact{kind, name, append([]byte(nil), data...)})
}

func r2Artefacts() []r2Artefact {
	r2Produced.mu.Lock()
	defer r2Produced.mu.Unlock()
	return append([]r2Artefact(nil), r2Produced.items...)
}

// r2CollectHub keeps what a hub produced for the security scan: its log,
// its metrics, the parked reasons the API shows and every error note in
// the MedCom error/ folder. Call it before the test ends (the folders are
// temporary).
func r2CollectHub(t *testing.T, scenario string, h *hubtest.Hub, log *logbuf.Buffer) {
	t.Helper()
	if log != nil {
		r2Keep("log", scenario, []byte(log.String()))
	}
	if h.App != nil {
		if code, body := r2Get(t, h.BaseURL+"/metrics", ""); code == 200 {
			r2Keep("metrics", scenario, body)
		}
		for _, reason := range r2ParkedReasons(t, h) {
			r2Keep("parked-reason", scenario, []byte(reason))
		}
	}
	notes, _ := filepath.Glob(filepath.Join(h.MedComDir, "error", "*.error.txt"))
	for _, n := range notes {
		if b, err := os.ReadFile(n); err == nil {
			r2Keep("error-note", scenario+"/"+filepath.Base(n), b)
		}
	}
}

// r2CollectChild is r2CollectHub for a hub running as a child process:
// its log file, its metrics, the parked reasons its API shows and the
// error notes in the MedCom error/ folder. Call it while the hub runs.
func r2CollectChild(t *testing.T, scenario string, h *oHub, medcomDir string) {
	t.Helper()
	if b, err := os.ReadFile(h.Log); err == nil {
		r2Keep("log", scenario, b)
	}
	if code, body := r2Get(t, h.URL+"/metrics", ""); code == 200 {
		r2Keep("metrics", scenario, body)
	}
	for _, e := range oParked(t, h.URL) {
		r2Keep("parked-reason", scenario, []byte(e.FirstError.Reason+"\n"+e.LastError.Reason))
	}
	notes, _ := filepath.Glob(filepath.Join(medcomDir, "error", "*.error.txt"))
	for _, n := range notes {
		if b, err := os.ReadFile(n); err == nil {
			r2Keep("error-note", scenario+"/"+filepath.Base(n), b)
		}
	}
}

// r2ParkedReasons lists the reason of every parked letter as the
// coordinator sees it.
func r2ParkedReasons(t *testing.T, h *hubtest.Hub) []string {
	t.Helper()
	code, body := r2Get(t, h.BaseURL+"/api/v1/queue?limit=5000", hubtest.CoordinatorToken)
	if code != 200 {
		t.Fatalf("GET /api/v1/queue: status %d", code)
	}
	var list struct {
		Entries []struct {
			FirstError struct{ Code, Reason string } `json:"firstError"`
			LastError  struct{ Code, Reason string } `json:"lastError"`
		} `json:"entries"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatalf("queue list: %v", err)
	}
	var out []string
	for _, e := range list.Entries {
		out = append(out, e.FirstError.Reason, e.LastError.Reason)
	}
	return out
}

// r2Get fetches url, with a bearer token when token is set.
func r2Get(t *testing.T, url, token string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// r2Fixture reads a file relative to the repository root.
func r2Fixture(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// r2Letter is good XDIS91 letter number i (unique envelope and letter
// identifiers, fictitious test person Bruno Test Elmer, the oracle's
// marker after the greeting).
func r2Letter(t testing.TB, i int) []byte {
	t.Helper()
	tmpl := r2Fixture(t, "testdata/medcom/samhub/letter-utf8.xml")
	s := strings.Replace(string(tmpl), "ENV00000000001", fmt.Sprintf("ENV%011d", i), 1)
	s = strings.Replace(s, "LTR00000000001", fmt.Sprintf("LTR%011d", i), 1)
	s = strings.Replace(s, "Kære samråd<Break/>", "Kære samråd<Break/>"+oMarker("TWO", i)+"<Break/>", 1)
	return []byte(s)
}

// r2LetterID is the hub's id of r2Letter(t, i).
func r2LetterID(i int) string { return fmt.Sprintf("5790000000005#LTR%011d", i) }

func r2SHA(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// r2Count counts the regular files in dir whose names have the suffix.
func r2Count(dir, suffix string) int {
	es, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range es {
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), suffix) && !strings.HasPrefix(e.Name(), ".") {
			n++
		}
	}
	return n
}
