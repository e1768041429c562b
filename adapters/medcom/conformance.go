//go:build !release

package medcom

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/adapters/adaptertest"
	"github.com/samhub/samhub/adapters/medcom/oioxml"
	"github.com/samhub/samhub/pipeline/letter"
)

// The conformance harness: a mailbox directory of the test's own. Inputs
// are XDIS91 letters from a GP written into in/ as a VANS client would
// (a dotfile renamed into place); the source has acknowledged one when it
// lies in processed/. A sink's object is a file in out/ carrying the
// letter (XDIS91 or FHIR, as the receiver takes it), found by a mark the
// harness puts in the letter's text.
func init() { adaptertest.Register(TypeName, newHarness) }

const (
	harnessSelfGLN = "5790001382445"
	harnessGPGLN   = "5790000000005"
)

type harness struct {
	env *adaptertest.Env
	dir string
}

func newHarness(_ *testing.T, env *adaptertest.Env) adaptertest.Harness {
	return &harness{env: env, dir: filepath.Join(env.DataDir, "mailbox")}
}

func (h *harness) Block() map[string]any {
	return map[string]any{"dir": h.dir, "poll_interval": "50ms",
		"self": map[string]any{"gln": harnessSelfGLN, "sor": "1144561000016002", "name": "Samrådet for Børn og Unge"}}
}

// mark is the text by which Stored finds l's files.
func mark(l *letter.Letter) string { return "ref " + oioxml.StableID(l.ID) }

func (h *harness) Letter(n int) *letter.Letter {
	gp := letter.Party{Role: "gp", Name: "Lægehuset Test", GLN: harnessGPGLN, SOR: "543210987654321"}
	id := fmt.Sprintf("conformance:medcom:%d:%d", time.Now().UnixNano(), n)
	return &letter.Letter{
		ID: id, Kind: letter.KindRecommendation, Source: "casesys",
		Sender:    letter.Party{Role: "municipality", Name: "Samrådet", GLN: harnessSelfGLN, SOR: "1144561000016002"},
		Receivers: []letter.Party{gp}, To: []letter.Party{gp},
		Patient:  &letter.Patient{CPR: "2509479989", GivenName: "Bruno Test", FamilyName: "Elmer"},
		Category: "psychiatry-social-disability", Subject: "Samrådets anbefaling", Text: "Samrådet anbefaler et forløb hos PPR, " + mark(&letter.Letter{ID: id}) + ".",
		Original: letter.Original{Data: []byte("{}"), ContentType: "application/json"},
	}
}

// Stored counts the files in out/ that carry l.
func (h *harness) Stored(t testing.TB, l *letter.Letter) int {
	files, err := os.ReadDir(filepath.Join(h.dir, "out"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(h.dir, "out", f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), mark(l)) {
			n++
		}
	}
	return n
}

// LoseNextReply: the file is written, then the state store loses the
// write that records it, so Deliver fails after the letter left.
func (h *harness) LoseNextReply(testing.TB) {
	h.env.State.FailNextWrites(1, errors.New("state store lost the write"))
}

func (h *harness) Faults() []adaptertest.Fault {
	return []adaptertest.Fault{
		{Name: "state-store-down", Class: adapters.ClassRetryable, Arm: func(_ testing.TB, l *letter.Letter) (*letter.Letter, func()) {
			h.env.State.SetDown(errors.New("state store down"))
			return l, func() { h.env.State.SetDown(nil) }
		}},
		{Name: "kind-medcom-cannot-carry", Class: adapters.ClassPermanent, Arm: func(_ testing.TB, l *letter.Letter) (*letter.Letter, func()) {
			c := *l
			c.Kind = letter.KindNotification
			return &c, func() {}
		}},
	}
}

func harnessLetterID(n int) string { return fmt.Sprintf("CNF%011d", n) }

func (h *harness) Put(t testing.TB, n int) {
	in := h.Letter(n)
	in.Sender, in.Receivers = letter.Party{Role: "gp", Name: "Lægehuset Test", GLN: harnessGPGLN}, []letter.Party{{Role: "municipality", Name: "Samrådet", GLN: harnessSelfGLN}}
	in.Kind, in.Subject = letter.KindReferral, "Henvisning"
	data, err := oioxml.BuildLetter(in, oioxml.LetterOptions{LetterID: harnessLetterID(n)})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(h.dir, "in")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, fmt.Sprintf(".cnf-%03d.xml", n))
	if err := os.WriteFile(tmp, data, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, fmt.Sprintf("cnf-%03d.xml", n))); err != nil {
		t.Fatal(err)
	}
}

func (h *harness) Item(l *letter.Letter) (int, bool) {
	_, id, ok := strings.Cut(l.ID, "#CNF")
	if !ok || !strings.HasPrefix(l.ID, harnessGPGLN+"#") {
		return 0, false
	}
	var n int
	_, err := fmt.Sscanf(id, "%d", &n)
	return n, err == nil
}

func (h *harness) Acknowledged(t testing.TB, n int) bool {
	_, err := os.Stat(filepath.Join(h.dir, "processed", fmt.Sprintf("cnf-%03d.xml", n)))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return err == nil
}
