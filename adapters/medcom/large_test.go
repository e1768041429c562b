package medcom

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/adapters/medcom/fhirmsg"
	"github.com/samhub/samhub/adapters/medcom/xmlsafe"
	"github.com/samhub/samhub/pipeline/letter"
)

// readingPub stores letters as the hub does: each part a source gives as
// something to open is read while Publish runs (the hub streams it into its
// blob store then), its digest and size checked; after Publish the source
// may close its input.
type readingPub struct {
	mu      sync.Mutex
	letters []*letter.Letter
	digests map[string][]string // letter id -> original's, then each attachment's SHA-256
	streams int                 // parts that were given as readers
}

func (p *readingPub) Publish(ctx context.Context, l *letter.Letter) error {
	if err := l.Validate(); err != nil {
		return err
	}
	var ds []string
	read := func(open letter.Opener, size int64, sum string, streamed bool) error {
		r, err := open(ctx)
		if err != nil {
			return err
		}
		defer r.Close()
		h := sha256.New()
		n, err := io.Copy(h, r)
		if err != nil {
			return err
		}
		got := hex.EncodeToString(h.Sum(nil))
		if n != size || (sum != "" && got != sum) {
			return errors.New("a part does not match its size and digest")
		}
		if streamed {
			p.streams++
		}
		ds = append(ds, got)
		return nil
	}
	if err := read(l.Original.Open, l.Original.Len(), l.Original.SHA256, l.Original.Streamed()); err != nil {
		return err
	}
	for _, a := range l.Attachments {
		if err := read(a.Open, a.Len(), a.SHA256, a.Streamed()); err != nil {
			return err
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.digests == nil {
		p.digests = map[string][]string{}
	}
	p.letters = append(p.letters, l)
	p.digests[l.ID] = ds
	return nil
}

func (p *readingPub) Rejected(string) {}
func (p *readingPub) Duplicate()      {}

var _ adapters.InputReporter = (*readingPub)(nil)

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// A CareCommunication with a large attachment, in FHIR XML, FHIR JSON and
// inside a VANSEnvelope, is published with its original and attachment
// given as readers over the file, intact, and acknowledged.
func TestLargeFHIRLetterIsReadFromTheFile(t *testing.T) {
	att := make([]byte, 3<<20+5)
	if _, err := rand.Read(att); err != nil {
		t.Fatal(err)
	}
	copy(att, "%PDF-1.7\n")
	from := fhirmsg.Organization{Name: "Lægehuset Ærø", SOR: "441211000016000", GLN: "5790001987244"}
	to := fhirmsg.Organization{Name: "Samrådet", SOR: "1144561000016002", GLN: "5790001382445"}
	l := &letter.Letter{
		Patient:  &letter.Patient{CPR: "2509479989", GivenName: "Bruno Test", FamilyName: "Elmer"},
		Category: "regarding-referral", Topic: "Henvisning med bilag", Text: "Henvisning med scannet journal. Testbrev.",
		Attachments: []letter.Attachment{letter.NewAttachment("Journaludskrift", "application/pdf", att), letter.NewAttachment("kort.png", "image/png", []byte("kort"))},
	}
	e := newEnv(t)
	a := e.adapter(t, nil)
	pub := &readingPub{}
	inputs := map[string][]byte{}
	for _, enc := range []string{fhirmsg.EncodingXML, fhirmsg.EncodingJSON, "vans"} {
		benc := enc
		if enc == "vans" {
			benc = fhirmsg.EncodingXML
		}
		out, id, err := fhirmsg.BuildCareCommunication(l, fhirmsg.BuildOptions{Encoding: benc, Self: from, To: to, Mode: fhirmsg.ModeNew})
		if err != nil {
			t.Fatal(err)
		}
		if enc == "vans" {
			if out, err = fhirmsg.BuildVANSEnvelope(out, fhirmsg.Envelope{EnvelopeID: "env-" + id, MessageID: id, FromGLN: from.GLN, ToGLN: to.GLN, Encoding: benc, Name: "MCM:FDIS91#regarding-referral", Version: "5.0"}); err != nil {
				t.Fatal(err)
			}
		}
		inputs[id] = out
		e.drop(t, "large-"+enc+".xml", out)
	}
	if !a.Poll(context.Background(), pub) {
		t.Fatal("poll failed")
	}
	if len(pub.letters) != 3 {
		t.Fatalf("published %d letters, want 3; error/ holds %v", len(pub.letters), e.files(t, "error"))
	}
	for id, in := range inputs {
		ds := pub.digests[id]
		if len(ds) != 3 || ds[0] != sha(in) || ds[1] != sha(att) || ds[2] != sha([]byte("kort")) {
			t.Errorf("letter %s: digests %v", id, ds)
		}
	}
	// Original and large attachment from the file; the small one inline.
	if pub.streams != 6 {
		t.Errorf("%d parts given as readers, want 6", pub.streams)
	}
	if got := e.files(t, "processed"); len(got) != 3 {
		t.Errorf("processed %v", got)
	}
	if got := e.files(t, "out"); len(got) != 3 {
		t.Errorf("acknowledgements %v", got)
	}
}

// A large attachment whose declared size and hash do not match its data
// is refused as before, without its data being held.
func TestLargeAttachmentDeclaredSizeIsChecked(t *testing.T) {
	att := make([]byte, 200<<10)
	_, _ = rand.Read(att)
	l := &letter.Letter{Patient: &letter.Patient{CPR: "2509479989", GivenName: "Bruno Test", FamilyName: "Elmer"}, Category: "regarding-referral",
		Topic: "Henvisning", Text: "Testbrev.", Attachments: []letter.Attachment{letter.NewAttachment("scan.pdf", "application/pdf", att)}}
	out, _, err := fhirmsg.BuildCareCommunication(l, fhirmsg.BuildOptions{Encoding: fhirmsg.EncodingXML, Mode: fhirmsg.ModeNew,
		Self: fhirmsg.Organization{Name: "Lægehuset", SOR: "441211000016000", GLN: "5790001987244"},
		To:   fhirmsg.Organization{Name: "Samrådet", SOR: "1144561000016002", GLN: "5790001382445"}})
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.StdEncoding.EncodeToString(att)
	bad := strings.Replace(string(out), `<data value="`+b64+`"/>`, `<data value="`+b64+`"/><size value="5000000000"/>`, 1)
	if bad == string(out) {
		t.Fatal("could not place a size")
	}
	e := newEnv(t)
	a := e.adapter(t, nil)
	pub := &readingPub{}
	e.drop(t, "lies.xml", []byte(bad))
	a.Poll(context.Background(), pub)
	if len(pub.letters) != 0 || len(e.files(t, "error")) != 2 {
		t.Fatalf("published %d, error/ %v", len(pub.letters), e.files(t, "error"))
	}
	note := string(e.read(t, "error", "lies.xml.error.txt"))
	if !strings.Contains(note, ".size") {
		t.Errorf("note %q does not name the size", note)
	}
}

// BenchmarkExamineLargeFHIR examines a CareCommunication file with a 20 MB
// attachment as the MedCom source does: B/op is what the source holds of
// it (a few hundred kilobytes, not the 26.7 MB file).
func BenchmarkExamineLargeFHIR(b *testing.B) {
	att := make([]byte, 20_000_000)
	_, _ = rand.Read(att)
	l := &letter.Letter{Patient: &letter.Patient{CPR: "2509479989", GivenName: "Bruno Test", FamilyName: "Elmer"}, Category: "regarding-referral",
		Topic: "Henvisning", Text: "Testbrev.", Attachments: []letter.Attachment{letter.NewAttachment("scan.pdf", "application/pdf", att)}}
	out, _, err := fhirmsg.BuildCareCommunication(l, fhirmsg.BuildOptions{Encoding: fhirmsg.EncodingXML, Mode: fhirmsg.ModeNew,
		Self: fhirmsg.Organization{Name: "Lægehuset", SOR: "441211000016000", GLN: "5790001987244"},
		To:   fhirmsg.Organization{Name: "Samrådet", SOR: "1144561000016002", GLN: "5790001382445"}})
	if err != nil {
		b.Fatal(err)
	}
	path := b.TempDir() + "/large.xml"
	if err := os.WriteFile(path, out, 0o600); err != nil {
		b.Fatal(err)
	}
	out, att, l = nil, nil, nil
	runtime.GC()
	b.SetBytes(26_700_000)
	b.ReportAllocs()
	for b.Loop() {
		in, _, err := examineFile(path, xmlsafe.DefaultLimits())
		if err != nil || in.err != nil {
			b.Fatal(err, in.err)
		}
		in.close()
	}
}

// An XML letter file is kept byte for byte whatever its size: one read
// when the format head is the whole file, more when it is not.
func TestExamineFileKeepsTheWholeFile(t *testing.T) {
	letter10k, err := os.ReadFile("../../testdata/medcom/samhub/letter-10k.xml")
	if err != nil {
		t.Fatal(err)
	}
	// A comment after the root element makes the file longer than the
	// format head without changing the letter.
	long := append(append([]byte{}, letter10k...), []byte("\n<!--"+strings.Repeat("x", headBytes)+"-->\n")...)
	for name, data := range map[string][]byte{"10 KB": letter10k, "longer than the head": long} {
		path := t.TempDir() + "/letter.xml"
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		in, got, err := examineFile(path, xmlsafe.DefaultLimits())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if in.err != nil {
			t.Fatalf("%s: refused: %v", name, in.err)
		}
		if string(got) != string(data) {
			t.Errorf("%s: kept %d bytes, the file has %d", name, len(got), len(data))
		}
	}
}

// atEnd is what keeps the head read from taking a file that grew after its
// stat for the whole file: it says no once a byte follows the size.
func TestAtEndSeesAFileThatGrew(t *testing.T) {
	path := t.TempDir() + "/letter.xml"
	if err := os.WriteFile(path, []byte("<a/>"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if !atEnd(f, 4) {
		t.Fatal("a file of 4 bytes is not at its end at 4")
	}
	w, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("\n")); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if atEnd(f, 4) {
		t.Error("a file that grew past 4 bytes is taken as ending at 4")
	}
}
