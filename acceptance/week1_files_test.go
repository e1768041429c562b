package acceptance

import (
	"bytes"
	"testing"

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
