package reliability

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"

	"github.com/samhub/samhub/internal/config"
	"github.com/samhub/samhub/internal/hubtest"
)

// r2MaxBytes is the MedCom max_bytes of the badletters hub: small, so the
// oversize letter stays cheap to write.
const r2MaxBytes = 2 << 20

// r2BadLetter is bad letter number i, one of five kinds in turn. addressable
// says whether MedCom expects a negative receipt (the letter can be named).
func r2BadLetter(t testing.TB, i int) (kind string, data []byte, addressable bool) {
	t.Helper()
	good := r2Letter(t, 900_000+i)
	switch i % 5 {
	case 0: // malformed: the file ends in the middle of an element
		return "malformed", good[:len(good)/2], false
	case 1: // schema-invalid: a status code XDIS91 does not know, sender name missing
		s := strings.Replace(string(good), "<StatusCode>nytbrev</StatusCode>", "<StatusCode>gammeltbrev</StatusCode>", 1)
		s = strings.Replace(s, "<OrganisationName>Lægehuset Ærø</OrganisationName>", "", 1)
		return "schema", []byte(s), true
	case 2: // wrong charset label: ISO-8859-1 bytes under encoding="UTF-8"
		latin, err := encoding.ReplaceUnsupported(charmap.ISO8859_1.NewEncoder()).Bytes(good)
		if err != nil {
			t.Fatal(err)
		}
		return "charset", latin, false
	case 3:
		return "empty", []byte{}, false
	default: // oversize: a good letter padded past max_bytes with a comment
		pad := bytes.Repeat([]byte("x"), r2MaxBytes+1024)
		return "oversize", append(append(append([]byte(nil), good...), "<!--"...), append(pad, "-->"...)...), false
	}
}

// r2BadRun drops good letters (and, when bad > 0, bad ones spread evenly
// among them) into a fresh hub and waits until every good letter is a case
// document and every bad one is in error/. It returns the time from the
// first drop until the last good letter was stored by the case system.
func r2BadRun(t *testing.T, good, bad int, check bool) time.Duration {
	log := &r2Buffer{}
	h := hubtest.Start(t, hubtest.WithLog(log), hubtest.WithConfig(func(c *config.Config) {
		c.Adapters["medcom"]["max_bytes"] = r2MaxBytes
	}))
	type sent struct {
		kind        string
		sum         string
		addressable bool
	}
	bads := map[string]sent{}
	every := 0
	if bad > 0 {
		every = good / bad
	}
	start := time.Now()
	b := 0
	for i := range good {
		h.Drop(fmt.Sprintf("good-%06d.xml", i), r2Letter(t, i))
		if every > 0 && (i+1)%every == 0 && b < bad {
			kind, data, addr := r2BadLetter(t, b)
			name := fmt.Sprintf("good-%06d-bad-%s.xml", i, kind) // sorts right after its neighbour
			h.Drop(name, data)
			bads[name] = sent{kind, r2SHA(data), addr}
			b++
		}
	}
	h.Eventually(fmt.Sprintf("%d case documents", good), func() bool { return len(h.CaseSys.Documents()) >= good })
	elapsed := time.Since(start)
	errDir := filepath.Join(h.MedComDir, "error")
	h.Eventually("every bad letter in error/", func() bool { return r2Count(errDir, ".error.txt") >= len(bads) })
	if !check {
		return elapsed
	}

	// No crash: the hub still answers ready, and the good letters were
	// each stored exactly once.
	if code, body := r2Get(t, h.BaseURL+"/readyz", ""); code != 200 {
		t.Errorf("readyz after the bad letters: %d %s", code, body)
	}
	if n := len(h.CaseSys.Documents()); n != good {
		t.Errorf("case documents: %d, want %d (one per good letter)", n, good)
	}
	identical, reasons, negAcks := 0, 0, 0
	for name, s := range bads {
		got, err := os.ReadFile(filepath.Join(errDir, name))
		if err != nil {
			t.Errorf("%s (%s): not in error/: %v", name, s.kind, err)
			continue
		}
		if r2SHA(got) != s.sum {
			t.Errorf("%s (%s): the copy in error/ differs from what arrived", name, s.kind)
		} else {
			identical++
		}
		note, err := os.ReadFile(filepath.Join(errDir, name+".error.txt"))
		if err != nil || len(bytes.TrimSpace(note)) == 0 {
			t.Errorf("%s (%s): no reason beside it (%v)", name, s.kind, err)
		} else {
			reasons++
			t.Logf("%s: %s", s.kind, bytes.TrimSpace(note))
		}
		for _, sub := range []string{"in", "processing", "processed"} {
			if _, err := os.Stat(filepath.Join(h.MedComDir, sub, name)); err == nil {
				t.Errorf("%s (%s): also in %s/", name, s.kind, sub)
			}
		}
	}
	// A negative receipt (XCTL02) for every bad letter that names itself.
	wantNeg := 0
	for _, s := range bads {
		if s.addressable {
			wantNeg++
		}
	}
	out, _ := os.ReadDir(filepath.Join(h.MedComDir, "out"))
	for _, e := range out {
		if strings.HasPrefix(e.Name(), "xctl02-") {
			negAcks++
		}
	}
	if negAcks != wantNeg {
		t.Errorf("negative receipts in out/: %d, want %d (one per addressable bad letter)", negAcks, wantNeg)
	}
	if n := r2Count(filepath.Join(h.MedComDir, "processed"), ".xml"); n != good {
		t.Errorf("processed/: %d files, want %d", n, good)
	}
	r2CollectHub(t, "badletters", h, log)
	t.Logf("bad letters: %d sent, %d byte-identical in error/, %d with a reason, %d negative receipts", len(bads), identical, reasons, negAcks)
	return elapsed
}

// TestScenarioBadletters is issue 11 scenario 6: 1% bad letters among good
// ones. No crash, bad originals byte-identical in error/ with a reason,
// negative receipts where MedCom asks for one, and the good letters'
// throughput measured with and without the bad ones (reported, not asserted).
func TestScenarioBadletters(t *testing.T) {
	good := size("BADLETTERS_GOOD", 500, 10_000)
	bad := good / 100
	if bad < 5 {
		bad = 5 // at least one of each kind
	}
	var clean, mixed time.Duration
	t.Run("clean", func(t *testing.T) { clean = r2BadRun(t, good, 0, false) })
	t.Run("mixed", func(t *testing.T) { mixed = r2BadRun(t, good, bad, true) })
	if t.Failed() {
		return
	}
	rate := func(d time.Duration) float64 { return float64(good) / d.Seconds() }
	report(t, "badletters", "good", good, "bad", bad, "crashes", 0,
		"clean_letters_per_s", fmt.Sprintf("%.1f", rate(clean)), "mixed_letters_per_s", fmt.Sprintf("%.1f", rate(mixed)),
		"throughput_ratio", fmt.Sprintf("%.2f", rate(mixed)/rate(clean)))
}
