package medcom

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/samhub/samhub/adapters/medcom/oioxml"
	"github.com/samhub/samhub/pipeline/letter"
)

const (
	withBinID = "5790000000005#LTR00000000101" // samhub/letter-with-bin.xml
	xbinID    = "5790000000005#BIN00000000102" // samhub/xbin01.xml
)

// fixturePDF is the object samhub/xbin01.xml carries, decoded by a route
// of the test's own.
func fixturePDF(t *testing.T) []byte {
	t.Helper()
	m := regexp.MustCompile(`(?s)<Object_Base64Encoded>(.*?)</Object_Base64Encoded>`).FindSubmatch(readFile(t, "samhub/xbin01.xml"))
	b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(string(m[1])), ""))
	if err != nil || !bytes.HasPrefix(b, []byte("%PDF-")) {
		t.Fatalf("fixture object: %v", err)
	}
	return b
}

// receipted maps each receipt in out/ to the letter it names:
// OriginalLetterIdentifier → (type, version code, file bytes).
type receipt struct {
	typ, version string
	data         []byte
}

func (e *env) receipted(t *testing.T) map[string]receipt {
	t.Helper()
	got := map[string]receipt{}
	for _, name := range e.files(t, "out") {
		data := e.read(t, "out", name)
		for _, rc := range parseOut(t, data).Receipts {
			if rc.SenderEAN != "5790000000012" || rc.ReceiverEAN != "5790000000005" {
				t.Errorf("receipt %s from %s to %s", name, rc.SenderEAN, rc.ReceiverEAN)
			}
			for _, o := range rc.OriginalLetters {
				got[o.Identifier] = receipt{rc.Type, o.VersionCode, data}
			}
		}
	}
	return got
}

// A letter and the XBIN01 letter carrying its file, in one round: one
// letter is stored, with the file's bytes; each gets its own receipt.
func TestLetterAndItsXBIN01AreStoredTogether(t *testing.T) {
	e := newEnv(t)
	a := e.adapter(t, nil)
	pub := newPub()
	e.letters.use(pub)
	e.drop(t, "brev.xml", readFile(t, "samhub/letter-with-bin.xml"))
	e.drop(t, "bilag.xml", readFile(t, "samhub/xbin01.xml"))
	if !a.Poll(context.Background(), pub) {
		t.Fatal("poll failed")
	}
	if got := pub.ids(); len(got) != 1 || got[0] != withBinID {
		t.Fatalf("stored %v, want the letter alone", got)
	}
	l := pub.letter(0)
	if len(l.Attachments) != 1 {
		t.Fatalf("attachments %+v", l.Attachments)
	}
	at := l.Attachments[0]
	if !bytes.Equal(at.Data, fixturePDF(t)) || at.Name != "PPR-vurdering.pdf" || at.ContentType != "application/pdf" || at.SHA256 == "" {
		t.Errorf("attachment %s %s %d bytes, want the XBIN01 letter's PDF", at.Name, at.ContentType, len(at.Data))
	}
	r := e.receipted(t)
	if r["LTR00000000101"].typ != oioxml.PositiveReceipt || r["BIN00000000102"].typ != oioxml.PositiveReceipt ||
		r["BIN00000000102"].version != oioxml.VersionXBIN01 || len(r) != 2 {
		t.Fatalf("receipts %v", r)
	}
	if got := strings.Join(e.files(t, "processed"), ","); got != "bilag.xml,brev.xml" {
		t.Errorf("processed %s", got)
	}
	if got := e.files(t, "in"); len(got) != 0 {
		t.Errorf("in/ %v", got)
	}
	// The XBIN01 letter's receipt rides with the stored letter.
	rec, ok := readCheckpoint(pub.checkpoints[withBinID])
	if !ok || len(rec.With) != 1 || rec.With[0].HubID != xbinID || !bytes.Equal(rec.With[0].Ack, r["BIN00000000102"].data) {
		t.Fatalf("checkpoint %+v", rec)
	}

	// Sent again (a VANS resend, or a crash before the files moved): no
	// second letter, and both receipts again byte for byte. The copies
	// wait for nothing: the hub knows both (the XBIN01 letter's record is
	// kept under its own key).
	for _, name := range e.files(t, "out") {
		if err := os.Remove(filepath.Join(e.dir, "out", name)); err != nil {
			t.Fatal(err)
		}
	}
	e.drop(t, "brev2.xml", readFile(t, "samhub/letter-with-bin.xml"))
	e.drop(t, "bilag2.xml", readFile(t, "samhub/xbin01.xml"))
	a2 := e.adapter(t, nil) // a restart: nothing in memory
	e.clock.add(time.Hour)
	if !a2.Poll(context.Background(), pub) {
		t.Fatal("poll failed")
	}
	if got := pub.ids(); len(got) != 1 {
		t.Fatalf("stored %v after the resend", got)
	}
	again := e.receipted(t)
	for id, first := range r {
		sameBytes(t, "repeated receipt of "+id, again[id].data, first.data)
	}

	// Each copy on its own, in rounds of their own: answered the same at
	// once, nothing stored, nothing waiting.
	for _, f := range []struct{ name, fixture, id string }{
		{"bilag3.xml", "samhub/xbin01.xml", "BIN00000000102"},
		{"brev3.xml", "samhub/letter-with-bin.xml", "LTR00000000101"},
	} {
		for _, name := range e.files(t, "out") {
			if err := os.Remove(filepath.Join(e.dir, "out", name)); err != nil {
				t.Fatal(err)
			}
		}
		e.drop(t, f.name, readFile(t, f.fixture))
		a2.Poll(context.Background(), pub)
		if got := e.files(t, "in"); len(got) != 0 {
			t.Fatalf("%s: in/ %v: a copy waits", f.name, got)
		}
		sameBytes(t, "receipt of a lone copy of "+f.id, e.receipted(t)[f.id].data, r[f.id].data)
	}
	if got := pub.ids(); len(got) != 1 {
		t.Fatalf("stored %v after the lone copies", got)
	}
}

// After a crash between the two moves, only the letter is left in
// processing/ (the XBIN01 letter's file moves first): the letter is the
// stored one, and its receipt comes again; the XBIN01 letter is not stored
// on its own.
func TestJoinedRoundCrashBetweenMoves(t *testing.T) {
	e := newEnv(t)
	a := e.adapter(t, map[string]any{"binary_wait": "0s"})
	pub := newPub()
	e.drop(t, "brev.xml", readFile(t, "samhub/letter-with-bin.xml"))
	e.drop(t, "bilag.xml", readFile(t, "samhub/xbin01.xml"))
	a.Poll(context.Background(), pub)
	first := e.receipted(t)["LTR00000000101"].data
	if err := os.Rename(filepath.Join(e.dir, "processed", "brev.xml"), filepath.Join(e.dir, "processing", "brev.xml")); err != nil {
		t.Fatal(err)
	}
	restarted := e.adapter(t, map[string]any{"binary_wait": "0s"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- restarted.Run(ctx, pub) }()
	eventually(t, "the left-over letter to be handled", func() bool {
		_, err := os.Stat(filepath.Join(e.dir, "processing", "brev.xml"))
		return os.IsNotExist(err)
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := pub.ids(); len(got) != 1 || got[0] != withBinID {
		t.Fatalf("stored %v", got)
	}
	sameBytes(t, "repeated receipt", e.receipted(t)["LTR00000000101"].data, first)
}

// An XBIN01 letter without its letter waits in in/ for binary_wait, and is
// not read again on every poll; then it is stored on its own, its file
// carried as an attachment, and receipted.
func TestXBIN01AloneWaitsThenGoesOnItsOwn(t *testing.T) {
	e := newEnv(t)
	var logged bytes.Buffer
	e.log = slog.New(slog.NewTextHandler(&logged, nil))
	a := e.adapter(t, map[string]any{"binary_wait": "1h"})
	pub := newPub()
	e.dropAged(t, "bilag.xml", readFile(t, "samhub/xbin01.xml"), 10*time.Second)
	for range 3 {
		if !a.Poll(context.Background(), pub) {
			t.Fatal("a file waiting for its partner is not a failure")
		}
	}
	if len(pub.ids()) != 0 || len(e.files(t, "out")) != 0 {
		t.Fatalf("stored %v, out %v while waiting", pub.ids(), e.files(t, "out"))
	}
	if got := e.files(t, "in"); len(got) != 1 {
		t.Fatalf("in/ %v", got)
	}
	if _, ok := a.waitingUntil("bilag.xml", time.Now()); !ok {
		t.Fatal("the file is not known to wait")
	}
	// A letter naming no file is no partner: the waiting file is not read
	// again beside it.
	e.drop(t, "brev.xml", readFile(t, "samhub/letter-utf8.xml"))
	a.Poll(context.Background(), pub)
	if got := pub.ids(); len(got) != 1 || got[0] != "5790000000005#LTR00000000001" {
		t.Fatalf("stored %v", got)
	}
	if n := strings.Count(logged.String(), "file waits for the XDIS91 or XBIN01 letter"); n != 1 {
		t.Errorf("the waiting file was read %d times, want once", n)
	}
	// The letter naming the file never comes: the wait ends.
	a.partnerWait["bilag.xml"] = time.Now().Add(-time.Second)
	if !a.Poll(context.Background(), pub) {
		t.Fatal("poll failed")
	}
	if got := pub.ids(); len(got) != 2 || got[1] != xbinID {
		t.Fatalf("stored %v", got)
	}
	l := pub.letter(1)
	if l.Format != oioxml.BinaryFormat || l.Kind != letter.KindNote || l.Patient == nil || l.Patient.CPR != "2509479989" ||
		len(l.Attachments) != 1 || !bytes.Equal(l.Attachments[0].Data, fixturePDF(t)) {
		t.Errorf("letter %s %s attachments %d", l.Format, l.Kind, len(l.Attachments))
	}
	if r := e.receipted(t)["BIN00000000102"]; r.typ != oioxml.PositiveReceipt {
		t.Errorf("receipts %v", e.receipted(t))
	}
	if got := e.files(t, "processed"); len(got) != 2 {
		t.Errorf("processed %v", got)
	}
	if len(a.partnerWait) != 0 {
		t.Errorf("waits still known: %v", a.partnerWait)
	}
}

// A letter naming a file waits for it; the XBIN01 letter arriving within
// the wait joins it.
func TestLetterWaitsForItsXBIN01(t *testing.T) {
	e := newEnv(t)
	a := e.adapter(t, map[string]any{"binary_wait": "1h"})
	pub := newPub()
	e.dropAged(t, "brev.xml", readFile(t, "samhub/letter-with-bin.xml"), 10*time.Second)
	a.Poll(context.Background(), pub)
	if len(pub.ids()) != 0 || len(e.files(t, "in")) != 1 {
		t.Fatalf("stored %v, in/ %v: the letter should wait", pub.ids(), e.files(t, "in"))
	}
	e.dropAged(t, "bilag.xml", readFile(t, "samhub/xbin01.xml"), 10*time.Second)
	if !a.Poll(context.Background(), pub) {
		t.Fatal("poll failed")
	}
	if got := pub.ids(); len(got) != 1 || got[0] != withBinID {
		t.Fatalf("stored %v", got)
	}
	if !bytes.Equal(pub.letter(0).Attachments[0].Data, fixturePDF(t)) {
		t.Error("the letter has not the file")
	}
	if got := e.files(t, "processed"); len(got) != 2 {
		t.Errorf("processed %v", got)
	}
}

// With no wait, a letter whose file is not there goes on at once with a
// note in the file's place that names the object, and the XBIN01 letter
// coming later is stored on its own: nothing is lost.
func TestLetterWithoutItsXBIN01GoesOnWithoutTheFile(t *testing.T) {
	e := newEnv(t)
	a := e.adapter(t, map[string]any{"binary_wait": "0s"})
	pub := newPub()
	e.drop(t, "brev.xml", readFile(t, "samhub/letter-with-bin.xml"))
	a.Poll(context.Background(), pub)
	if got := pub.ids(); len(got) != 1 {
		t.Fatalf("stored %v", got)
	}
	if at := pub.letter(0).Attachments[0]; at.ContentType != oioxml.MissingObjectType || at.Size != int64(len(at.Data)) || pub.letter(0).Meta[oioxml.MetaBINPrefix+"1"] != "BIN00000000101" {
		t.Errorf("attachment %+v", at)
	}
	e.drop(t, "bilag.xml", readFile(t, "samhub/xbin01.xml"))
	a.Poll(context.Background(), pub)
	if got := pub.ids(); len(got) != 2 || got[1] != xbinID {
		t.Fatalf("stored %v", got)
	}
}

// An XBIN01 letter whose object is shorter than its OriginalObjectSize
// (cut short on the way) is refused with a negative receipt naming the
// element, its bytes kept in error/; the letter naming the file does not
// take the damaged bytes, and goes on without them once binary_wait is
// over, its note naming the file.
func TestAnXBIN01CutShortIsRefusedAndItsLetterGoesOnWithoutIt(t *testing.T) {
	e := newEnv(t)
	a := e.adapter(t, map[string]any{"binary_wait": "1h"})
	pub := newPub()
	e.letters.use(pub)
	cut := bytes.Replace(readFile(t, "samhub/xbin01.xml"), []byte("\n        T0YK</Object_Base64Encoded>"), []byte("</Object_Base64Encoded>"), 1)
	if bytes.Equal(cut, readFile(t, "samhub/xbin01.xml")) {
		t.Fatal("the fixture's last line did not change")
	}
	e.dropAged(t, "brev.xml", readFile(t, "samhub/letter-with-bin.xml"), 10*time.Second)
	e.dropAged(t, "bilag.xml", cut, 10*time.Second)
	a.Poll(context.Background(), pub)
	if got := pub.ids(); len(got) != 0 {
		t.Fatalf("stored %v, want nothing: the letter waits for a sound file", got)
	}
	r := e.receipted(t)["BIN00000000102"]
	if r.typ != oioxml.NegativeReceipt {
		t.Fatalf("the XBIN01 letter's receipt is %q, want negative", r.typ)
	}
	rc := parseOut(t, r.data).Receipts[0]
	if text := rc.RefuseText + rc.OriginalLetters[0].RefuseText; !strings.Contains(text, "BinaryObject[1]/OriginalObjectSize: declares 402 bytes, but Object_Base64Encoded holds 399") {
		t.Errorf("refusal text %q does not name the size", text)
	}
	if got := e.files(t, "error"); !slices.Contains(got, "bilag.xml") || !bytes.Equal(e.read(t, "error", "bilag.xml"), cut) || slices.Contains(got, "brev.xml") {
		t.Fatalf("error/ %v, want the XBIN01 file as it came (and not the letter)", got)
	}
	a.partnerWait["brev.xml"] = time.Now().Add(-time.Second) // binary_wait is over
	a.Poll(context.Background(), pub)
	if got := pub.ids(); len(got) != 1 || got[0] != withBinID {
		t.Fatalf("stored %v, want the letter", got)
	}
	if at := pub.letter(0).Attachments[0]; at.ContentType != oioxml.MissingObjectType {
		t.Errorf("attachment %s %d bytes, want the note naming the missing file", at.ContentType, len(at.Data))
	}
}

// An XBIN01 letter about another patient, or from another sender, never
// gives its file to a letter naming the same object id.
func TestXBIN01OfAnotherPatientIsNotJoined(t *testing.T) {
	for name, edit := range map[string][2]string{
		"patient": {"<CivilRegistrationNumber>2509479989</CivilRegistrationNumber>", "<AlternativeIdentifier>0703921VJ4</AlternativeIdentifier>"},
		"sender":  {"<EANIdentifier>5790000000005</EANIdentifier>", "<EANIdentifier>5790000000036</EANIdentifier>"},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			a := e.adapter(t, map[string]any{"binary_wait": "0s"})
			pub := newPub()
			other := bytes.Replace(readFile(t, "samhub/xbin01.xml"), []byte(edit[0]), []byte(edit[1]), 1)
			e.drop(t, "brev.xml", readFile(t, "samhub/letter-with-bin.xml"))
			e.drop(t, "bilag.xml", other)
			a.Poll(context.Background(), pub)
			if got := pub.ids(); len(got) != 2 {
				t.Fatalf("stored %v, want both on their own", got)
			}
			for _, l := range pub.letters {
				if l.ID == withBinID && l.Attachments[0].ContentType != oioxml.MissingObjectType {
					t.Error("the letter took another patient's or sender's file")
				}
			}
		})
	}
}

// When the hub refuses the letter for good, the XBIN01 letter joined to it
// is not answered as if it were stored: it goes back to in/, and is then
// stored on its own.
func TestXBIN01OfARefusedLetterGoesOnItsOwn(t *testing.T) {
	e := newEnv(t)
	a := e.adapter(t, map[string]any{"binary_wait": "0s"})
	pub := newPub()
	pub.refuseAfter = 0
	e.drop(t, "brev.xml", readFile(t, "samhub/letter-with-bin.xml"))
	e.drop(t, "bilag.xml", readFile(t, "samhub/xbin01.xml"))
	a.Poll(context.Background(), pub)
	if got := e.files(t, "error"); len(got) != 2 || got[0] != "brev.xml" {
		t.Fatalf("error/ %v", got)
	}
	if got := e.files(t, "in"); len(got) != 1 || got[0] != "bilag.xml" {
		t.Fatalf("in/ %v", got)
	}
	if r := e.receipted(t); r["LTR00000000101"].typ != oioxml.NegativeReceipt || r["BIN00000000102"].typ != "" {
		t.Fatalf("receipts %v", r)
	}
	pub.refuseAfter = -1
	a.Poll(context.Background(), pub)
	if got := pub.ids(); len(got) != 1 || got[0] != xbinID {
		t.Fatalf("stored %v", got)
	}
	if r := e.receipted(t)["BIN00000000102"]; r.typ != oioxml.PositiveReceipt {
		t.Error("the XBIN01 letter was not receipted")
	}
}

// A later letter of the thread of a letter waiting for its file waits with
// it (per-thread order), without being counted a failure, and is stored
// after it.
func TestLaterLetterOfTheThreadWaitsToo(t *testing.T) {
	e := newEnv(t)
	a := e.adapter(t, map[string]any{"binary_wait": "1h"})
	pub := newPub()
	withEpisode := bytes.Replace(readFile(t, "samhub/letter-with-bin.xml"), []byte("<StatusCode>nytbrev</StatusCode>"),
		[]byte("<StatusCode>nytbrev</StatusCode><EpisodeOfCareIdentifier>0f6c1e2d3a4b5c6d7e8f90a1b2c3d4e5</EpisodeOfCareIdentifier>"), 1)
	e.dropAged(t, "a-brev.xml", withEpisode, 20*time.Second)
	e.dropAged(t, "b-brev.xml", readFile(t, "samhub/letter-utf8.xml"), 10*time.Second) // same episode
	for range 2 {
		if !a.Poll(context.Background(), pub) {
			t.Fatal("waiting is not a failure")
		}
	}
	if len(pub.ids()) != 0 || len(e.files(t, "in")) != 2 {
		t.Fatalf("stored %v, in/ %v", pub.ids(), e.files(t, "in"))
	}
	for _, name := range []string{"a-brev.xml", "b-brev.xml"} {
		if _, ok := a.waitingUntil(name, time.Now()); !ok {
			t.Errorf("%s does not wait", name)
		}
	}
	e.dropAged(t, "c-bilag.xml", readFile(t, "samhub/xbin01.xml"), 10*time.Second)
	a.Poll(context.Background(), pub)
	if got := strings.Join(pub.ids(), " "); got != withBinID+" 5790000000005#LTR00000000001" {
		t.Fatalf("stored %s", got)
	}
	if pub.letter(0).Attachments[0].ContentType != "application/pdf" {
		t.Error("the letter has not its file")
	}
}

// lettersWithFiles is xdisLetter with a link, a PDF and a stored image.
func letterWithFiles(t *testing.T) (l *letter.Letter, pdf, png []byte) {
	l = xdisLetter()
	pdf = fixturePDF(t)
	png = append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte("billede "), 4000)...)
	sum := sha256.Sum256(png)
	l.Attachments = []letter.Attachment{
		letter.NewAttachment("Mødeindkaldelse", "text/uri-list", []byte("https://samhub.example.invalid/m/1")),
		letter.NewAttachment("Samrådets indstilling.pdf", "application/pdf", pdf),
		letter.StreamedAttachment("tegning.png", "image/png", int64(len(png)), hex.EncodeToString(sum[:]),
			func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(png)), nil }),
	}
	return l, pdf, png
}

// A letter with files to a receiver that takes XDIS91: the letter names
// each file in a BIN reference and an XBIN01 letter carries them, so the
// receiver gets every file (they were left out before). Read back by a
// MedCom mailbox, the two are one letter with its files again.
func TestXDIS91LetterWithFilesTravelsWithAnXBIN01Letter(t *testing.T) {
	e := newEnv(t)
	a := e.adapter(t, nil)
	ctx := context.Background()
	l, pdf, png := letterWithFiles(t)
	if _, err := a.Deliver(ctx, l); err != nil {
		t.Fatal(err)
	}
	id := oioxml.StableID(l.ID)
	bin := oioxml.BinaryLetterID(id)
	if got := strings.Join(e.files(t, "out"), " "); got != "xbin01-"+bin+".xml xdis91-"+id+".xml" {
		t.Fatalf("out/ %s", got)
	}
	letterFile, binFile := e.read(t, "out", "xdis91-"+id+".xml"), e.read(t, "out", "xbin01-"+bin+".xml")
	ce := parseOut(t, letterFile).Letters[0]
	if len(ce.References) != 3 || ce.References[0].URL == "" || ce.References[1].BIN == nil || ce.References[2].BIN == nil ||
		ce.References[1].BIN.Identifier != oioxml.ObjectID(id, 2) || ce.References[2].BIN.ExtensionCode != "png" || ce.References[2].BIN.ObjectCode != "billede" {
		t.Fatalf("references %+v", ce.References)
	}
	bm := parseOut(t, binFile)
	if len(bm.Binaries) != 1 || bm.Binaries[0].Identifier != bin || bm.Binaries[0].Patient.CPR != "2509479989" ||
		bm.Binaries[0].Receiver.EAN != "5790000000005" || len(bm.Binaries[0].Objects) != 2 {
		t.Fatalf("XBIN01 letter %+v", bm.Binaries)
	}
	if !bytes.Equal(bm.Binaries[0].Objects[0].Data, pdf) || !bytes.Equal(bm.Binaries[0].Objects[1].Data, png) {
		t.Error("the XBIN01 letter does not carry the files' bytes")
	}

	// The receiver's mailbox (a MedCom adapter too) reads them as one letter.
	r := newEnv(t)
	ra := r.adapter(t, nil)
	r.drop(t, "xdis91.xml", letterFile)
	r.drop(t, "xbin01.xml", binFile)
	pub := newPub()
	ra.Poll(ctx, pub)
	if got := pub.ids(); len(got) != 1 {
		t.Fatalf("the receiver stored %v", got)
	}
	got := pub.letter(0).Attachments
	if len(got) != 3 || !bytes.Equal(got[1].Data, pdf) || !bytes.Equal(got[2].Data, png) || got[1].Name != "Samrådets indstilling.pdf" {
		t.Errorf("the receiver's letter has attachments %d", len(got))
	}

	// Its two receipts come back: the XBIN01 letter's is the letter's
	// (correlated to the hub's letter), and the letter's own settles it.
	var receipts [][]byte
	for _, name := range r.files(t, "out") {
		receipts = append(receipts, r.read(t, "out", name))
	}
	if len(receipts) != 2 {
		t.Fatalf("receipts %d", len(receipts))
	}
	for i, rc := range receipts {
		e.drop(t, fmt.Sprintf("kvittering-%d.xml", i), rc)
	}
	back := newPub()
	a.Poll(ctx, back)
	if len(back.letters) != 2 {
		t.Fatalf("acknowledgements %v", back.ids())
	}
	for _, ack := range back.letters {
		if ack.Kind != letter.KindAcknowledgement || ack.InReplyTo != l.ID || ack.Meta["medcom_receipt_result"] != "positive" {
			t.Errorf("acknowledgement %s answers %s (%s)", ack.ID, ack.InReplyTo, ack.Meta["medcom_receipt_result"])
		}
	}
	if p, _, err := a.pendingEntry(ctx, "5790000000012#"+id); err != nil || p != nil {
		t.Errorf("outbox entry after the receipts: %+v %v", p, err)
	}
}

// The receiver refusing the XBIN01 letter refuses the letter: it lacks
// its files. The next delivery (the coordinator's replay) sends both again
// under new ids.
func TestARefusedXBIN01LetterRefusesItsLetter(t *testing.T) {
	e := newEnv(t)
	a := e.adapter(t, nil)
	ctx := context.Background()
	l, _, _ := letterWithFiles(t)
	if _, err := a.Deliver(ctx, l); err != nil {
		t.Fatal(err)
	}
	id := oioxml.StableID(l.ID)
	bm := parseOut(t, e.read(t, "out", "xbin01-"+oioxml.BinaryLetterID(id)+".xml"))
	refusal, err := oioxml.BuildReceipt(bm, oioxml.ReceiptOptions{Type: oioxml.NegativeReceipt, Letters: []*oioxml.ClinicalEmail{bm.Binaries[0].ReceiptView()},
		RefuseCode: oioxml.RefuseSyntax, RefuseText: "Bilaget kunne ikke læses", Now: e.clock.now()})
	if err != nil {
		t.Fatal(err)
	}
	e.drop(t, "afvisning.xml", refusal)
	pub := newPub()
	a.Poll(ctx, pub)
	if len(pub.letters) != 1 || pub.letters[0].InReplyTo != l.ID || pub.letters[0].Ack == nil || pub.letters[0].Ack.Positive {
		t.Fatalf("acknowledgement %+v", pub.letters)
	}
	if p, _, _ := a.pendingEntry(ctx, "5790000000012#"+id); p != nil {
		t.Error("the refused letter is still awaiting its receipt")
	}
	d, err := a.Deliver(ctx, l)
	if err != nil || d.Existing || d.RemoteID == "5790000000012#"+id {
		t.Fatalf("replay: %+v %v, want a new version", d, err)
	}
	if n := len(e.files(t, "out")); n != 4 {
		t.Errorf("out/ %v, want both files of both versions", e.files(t, "out"))
	}
}

// Files waiting for their partner take no room from new files, and a
// poll finding only them reports no backlog (which would poll again at
// once, for ever).
func TestWaitingFilesDoNotCrowdOutNewOnes(t *testing.T) {
	e := newEnv(t)
	a := e.adapter(t, map[string]any{"binary_wait": "1h", "workers": 1}) // 8 files a round
	pub := newPub()
	xbin := readFile(t, "samhub/xbin01.xml")
	for i := range 10 {
		other := bytes.Replace(xbin, []byte("BIN00000000102"), []byte(fmt.Sprintf("BIN0000000%04d", 200+i)), 1)
		e.dropAged(t, fmt.Sprintf("a-bilag-%02d.xml", i), other, 10*time.Second)
	}
	for i := 0; len(a.partnerWait) < 10; i++ { // 8, then the other 2
		if i == 3 {
			t.Logf("in %v processing %v processed %v error %v out %v stored %v", e.files(t, "in"), e.files(t, "processing"), e.files(t, "processed"), e.files(t, "error"), e.files(t, "out"), pub.ids())
			t.Fatalf("%d of 10 files wait after 3 polls", len(a.partnerWait))
		}
		a.poll(context.Background(), pub)
	}
	if r := a.poll(context.Background(), pub); r.more || !r.ok {
		t.Fatalf("a poll finding only waiting files: %+v", r)
	}
	if len(pub.ids()) != 0 {
		t.Fatalf("stored %v", pub.ids())
	}
	e.drop(t, "z-brev.xml", readFile(t, "samhub/letter-utf8.xml"))
	a.poll(context.Background(), pub)
	if got := pub.ids(); len(got) != 1 || got[0] != "5790000000005#LTR00000000001" {
		t.Fatalf("stored %v: the new letter was crowded out", got)
	}
}
