package reliability

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
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
		// Half the letter ends inside its sender, before the receiver: a
		// negative receipt (syntaksfejl) needs both, so none is owed. A cut
		// after the receiver would be answered (adapters/medcom/salvage.go).
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
// among them) into a fresh hub running as a child process and waits until
// every good letter is a case document and every bad one is in error/. It
// returns the time from the first drop until the last good letter was
// stored by the case system, and how the hub's life ended.
func r2BadRun(t *testing.T, good, bad int, check bool) (time.Duration, oLife, oVerdict) {
	w := oNewWorld(t)
	cfg, url := w.Config(filepath.Join(w.Dir, "hub"), oHubOpts{MedComMaxBytes: r2MaxBytes})
	hub := oStartHub(t, cfg, url, 0, "")
	oWaitReady(t, hub, time.Minute)
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
	r1Letter(t, "BAD", 0)
	for i := range good {
		id, data := r1Letter(t, "BAD", i)
		w.Ledger.Add(id, data, destCase, destNotices)
		r1Drop(t, w.MedCom, fmt.Sprintf("good-%06d.xml", i), data)
		if every > 0 && (i+1)%every == 0 && b < bad {
			kind, data, addr := r2BadLetter(t, b)
			name := fmt.Sprintf("good-%06d-bad-%s.xml", i, kind) // sorts right after its neighbour
			r1Drop(t, w.MedCom, name, data)
			bads[name] = sent{kind, r2SHA(data), addr}
			b++
		}
	}
	liveness := time.Duration(good/10+60) * time.Second
	r1Wait(t, liveness, fmt.Sprintf("%d case documents and notices", good), func() bool { return w.Delivered() >= w.Ledger.Expected() })
	elapsed := time.Since(start)
	errDir := filepath.Join(w.MedCom, "error")
	r1Wait(t, liveness, "every bad letter in error/", func() bool { return r2Count(errDir, ".error.txt") >= len(bads) })
	if !check {
		hub.Stop(syscall.SIGTERM)
		return elapsed, hub.Life(), oVerdict{}
	}

	// No crash: the hub still answers ready (its life is read at the end).
	if code, body := r2Get(t, url+"/readyz", ""); code != 200 {
		t.Errorf("readyz after the bad letters: %d %s", code, body)
	}
	identical, reasons := 0, 0
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
			if _, err := os.Stat(filepath.Join(w.MedCom, sub, name)); err == nil {
				t.Errorf("%s (%s): also in %s/", name, s.kind, sub)
			}
		}
	}
	// A negative receipt (XCTL02) for every bad letter that names itself,
	// as the GP's system (the MedCom peer) takes it from out/.
	wantNeg := 0
	for _, s := range bads {
		if s.addressable {
			wantNeg++
		}
	}
	negAcks := 0
	r1Wait(t, 30*time.Second, "the negative receipts at the GP", func() bool {
		negAcks = 0
		for _, a := range w.Peer.Acks() {
			if !a.Positive {
				negAcks++
			}
		}
		return negAcks >= wantNeg
	})
	if negAcks != wantNeg {
		t.Errorf("negative receipts: %d, want %d (one per addressable bad letter)", negAcks, wantNeg)
	}
	if n := r2Count(filepath.Join(w.MedCom, "processed"), ".xml"); n != good {
		t.Errorf("processed/: %d files, want %d", n, good)
	}
	time.Sleep(500 * time.Millisecond) // a second document would show itself now
	v := w.Verdict(oParked(t, url))
	oRequire(t, v, oAllow{})
	r2CollectChild(t, "badletters", hub, w.MedCom)
	hub.Stop(syscall.SIGTERM)
	life := hub.Life()
	t.Logf("bad letters: %d sent, %d byte-identical in error/, %d with a reason, %d negative receipts; good letters %s",
		len(bads), identical, reasons, negAcks, v)
	return elapsed, life, v
}

// TestScenarioBadletters is issue 11 scenario 6: 1% bad letters among good
// ones, into a hub running as a child process. No crash (the process keeps
// running, ends with status 0 on SIGTERM, and prints no panic), bad
// originals byte-identical in error/ with a reason, negative receipts where
// MedCom asks for one, every good letter exactly one case document (joined
// per letter), and the good letters' throughput measured with and without
// the bad ones (reported, not asserted).
func TestScenarioBadletters(t *testing.T) {
	t.Parallel()
	good := size("BADLETTERS_GOOD", 500, 10_000)
	bad := good / 100
	if bad < 5 {
		bad = 5 // at least one of each kind
	}
	var clean, mixed time.Duration
	var lives oLives
	var v oVerdict
	t.Run("clean", func(t *testing.T) {
		var l oLife
		clean, l, _ = r2BadRun(t, good, 0, false)
		lives.Add(l)
	})
	t.Run("mixed", func(t *testing.T) {
		var l oLife
		mixed, l, v = r2BadRun(t, good, bad, true)
		lives.Add(l)
	})
	if lives.Crashes != 0 || lives.Panics != 0 {
		t.Errorf("%d of %d hub lives crashed, %d panics", lives.Crashes, lives.Lives, lives.Panics)
	}
	if t.Failed() {
		return
	}
	rate := func(d time.Duration) float64 { return float64(good) / d.Seconds() }
	report(t, "badletters", append(append([]any{"good", good, "bad", bad, "lives", lives.Lives, "crashes", lives.Crashes, "panics", lives.Panics}, v.Figures()...),
		"clean_letters_per_s", fmt.Sprintf("%.1f", rate(clean)), "mixed_letters_per_s", fmt.Sprintf("%.1f", rate(mixed)),
		"throughput_ratio", fmt.Sprintf("%.2f", rate(mixed)/rate(clean)))...)
}
