package acceptance

import (
	"bytes"
	"regexp"
	"testing"
	"time"

	"github.com/samhub/samhub/internal/sim/medcompeer"
	"github.com/samhub/samhub/pipeline/letter"
)

// Week 1: a practice still on XDIS91 refers a child with the school
// psychologist's assessment attached. XDIS91 carries no file: the letter
// names it, and an XBIN01 letter dropped right after carries it. The case
// system gets one document with the letter and the assessment, and the
// practice a positive receipt for each of the two.
func TestWeek1AReferralWithItsAssessmentAttached(t *testing.T) {
	w := newWorld(t)
	cases := w.caseSystem()
	assessment := append([]byte("%PDF-1.4\n% PPR-vurdering, fiktiv testperson\n"), bytes.Repeat([]byte("vurdering "), 3000)...)
	how := xdis91Latin1
	how.Files = []letter.Attachment{letter.NewAttachment("PPR-vurdering.pdf", "application/pdf", assessment)}
	sent := w.gp(gpAero).Refers(aase, how)
	if sent.Binary == nil {
		t.Fatal("the practice sent no XBIN01 letter")
	}

	doc := cases.Files(sent.ID)
	if !cases.HoldsOriginal(doc, sent.Data) {
		t.Error("the document does not keep the letter as the practice sent it")
	}
	if !cases.HoldsOriginal(doc, assessment) {
		t.Errorf("the document does not hold the assessment the letter names (files %+v)", doc.Files)
	}
	if n := len(cases.DocumentsFor(sent.Binary.ID)); n != 0 {
		t.Errorf("the XBIN01 letter is %d document(s) of its own; its file belongs in the letter's", n)
	}
	for _, s := range []medcompeer.Sent{sent, *sent.Binary} {
		ack := w.gp(gpAero).AckOf(s)
		if !ack.Positive || len(ack.Problems) > 0 || ack.From.GLN != sent.To.GLN {
			t.Errorf("receipt of %s: %s %v from %s, want positive and valid from %s", s.File, ack.Code, ack.Problems, ack.From.GLN, sent.To.GLN)
		}
	}
}

// A letter whose XBIN01 letter never comes is filed after the wait with a
// note in the file's place, rather than waiting, or parking, for ever.
func TestWeek1AReferralWhoseAttachmentNeverComes(t *testing.T) {
	w := newWorld(t, withMedCom("binary_wait: 1s"))
	cases := w.caseSystem()
	how := xdis91Latin1
	how.Files = []letter.Attachment{letter.NewAttachment("PPR-vurdering.pdf", "application/pdf", []byte("%PDF-1.4 fiktiv"))}
	how.LoseBinary = true
	sent := w.gp(gpAero).Refers(aase, how)
	doc := cases.Files(sent.ID)
	if !cases.HoldsOriginal(doc, sent.Data) {
		t.Error("the document does not keep the letter as the practice sent it")
	}
	if len(doc.Files) < 2 {
		t.Errorf("document files %+v, want the letter and a note that the assessment did not come", doc.Files)
	}
	if ack := w.gp(gpAero).AckOf(sent); !ack.Positive {
		t.Errorf("receipt %s, want positive: the letter itself is valid", ack.Code)
	}
}

// lastQuantum is the last four characters of an XBIN01 object's base64.
var lastQuantum = regexp.MustCompile(`[A-Za-z0-9+/=]{4}(\s*</Object_Base64Encoded>)`)

// The XBIN01 letter carrying a referral's assessment is cut short on the
// way: its object holds fewer bytes than its OriginalObjectSize says. The
// practice gets a negative receipt for it and a positive one for the
// letter, which is filed after the wait with a note in the file's place;
// no part of the damaged file reaches the case.
func TestWeek1AnAssessmentCutShortOnTheWayIsRefused(t *testing.T) {
	w := newWorld(t, withMedCom("binary_wait: 1s"))
	cases := w.caseSystem()
	assessment := append([]byte("%PDF-1.4\n% PPR-vurdering, fiktiv testperson\n"), bytes.Repeat([]byte("vurdering "), 300)...)
	how := xdis91Latin1
	how.Files = []letter.Attachment{letter.NewAttachment("PPR-vurdering.pdf", "application/pdf", assessment)}
	cut := false
	how.EditBinary = func(data []byte) []byte {
		out := lastQuantum.ReplaceAll(data, []byte("$1"))
		cut = !bytes.Equal(out, data)
		return out
	}
	sent := w.gp(gpAero).Refers(aase, how)
	if !cut || sent.Binary == nil {
		t.Fatal("the practice sent no XBIN01 letter to cut short")
	}
	if ack := w.gp(gpAero).AckOf(*sent.Binary); ack.Positive || ack.From.GLN != sent.To.GLN {
		t.Errorf("receipt of the XBIN01 letter: %s from %s; want negative from the council", ack.Code, ack.From.GLN)
	}
	if ack := w.gp(gpAero).AckOf(sent); !ack.Positive {
		t.Errorf("receipt of the letter: %s; want positive: the letter itself is valid", ack.Code)
	}
	doc := cases.Files(sent.ID)
	if !cases.HoldsOriginal(doc, sent.Data) {
		t.Error("the document does not keep the letter as the practice sent it")
	}
	if len(doc.Files) < 2 {
		t.Errorf("document files %+v, want the letter and a note that the assessment did not come whole", doc.Files)
	}
	for _, n := range []int{len(assessment), len(assessment) / 3 * 3, len(assessment)/3*3 - 3} {
		if cases.HoldsOriginal(doc, assessment[:n]) {
			t.Errorf("the case holds %d bytes of the damaged assessment", n)
		}
	}
	if n := len(cases.DocumentsFor(sent.Binary.ID)); n != 0 {
		t.Errorf("the refused XBIN01 letter is %d document(s)", n)
	}
}

// Week 3, a practice still on XDIS91: child psychiatry's discharge note
// carries its summary as a file. The practice gets the XDIS91 letter
// naming the file and, beside it, the XBIN01 letter carrying it (the file
// was left out before); it receipts both, and the note is acknowledged,
// neither refused nor parked.
func TestWeek3ADischargeNoteToAnXDIS91PracticeCarriesItsFile(t *testing.T) {
	w := newWorld(t)
	cases, coordinator, region := w.caseSystem(), w.coordinator(), w.region()
	w.expectLetters(bruno, gpAero)
	cases.Files(w.gp(gpAero).Refers(bruno, xdis91Latin1).ID)
	coordinator.RecordsConsent(bruno, letter.ScopeGP)
	region.Knows(bruno, &gpAero)
	text := "Bruno er udskrevet fra børne- og ungdomspsykiatrien. Opfølgning hos egen læge om en måned."
	note := region.SendsDischargeNote(bruno, gpAero, text)

	got := w.gp(gpAero).Receives(bruno, note, 1)[0]
	if got.Format != medcompeer.FormatXDIS91 || len(got.Files) != 1 || !got.Valid() {
		t.Fatalf("the discharge note reached Ærø as %s naming %d file(s), problems %v; want a valid XDIS91 letter naming its summary", got.Format, len(got.Files), got.Problems)
	}
	w.eventually("the summary in the XBIN01 letter beside the note", func() bool { return len(w.peer.FilesOf(got)) == 1 })
	if file := w.peer.FilesOf(got)[got.Files[0]]; string(file) != text {
		t.Errorf("the file the note names holds %q, want the region's summary", file)
	}
	if ack := coordinator.SeesAcknowledgement(note); !positiveAck(ack.Code) {
		t.Errorf("the journey of the note shows the practice's answer %q; want positive", ack.Code)
	}
	time.Sleep(300 * time.Millisecond) // a refusal of the XBIN01 letter would park the note by now
	if n := len(coordinator.ParkedAt("gp", note)); n != 0 {
		t.Errorf("the note is parked %d time(s) at the GP destination", n)
	}
}
