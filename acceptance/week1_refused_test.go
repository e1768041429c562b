package acceptance

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/samhub/samhub/adapters/medcom/fhirmsg"
	"github.com/samhub/samhub/internal/sim/medcompeer"
	"github.com/samhub/samhub/pipeline/letter"
)

// Week 1: a practice's system writes the council's SOR code with too few
// digits. The hub files nothing and answers with a fatal-error
// acknowledgement from its own address, whose issue names the element and
// carries MedCom's code for it, so the practice's system can tell what to
// mend; the value itself is not repeated.
func TestWeek1AFHIRLetterWithAMalformedReceiverIsRefusedWithMedComsCode(t *testing.T) {
	w := newWorld(t)
	to := theCouncil
	to.SOR = "11445" // MedCom's SOR codes have 6 to 18 digits
	how := fhirXML
	how.To, how.Invalid = &to, true
	ref := w.gp(gpOster).Refers(aase, how)

	ack := w.gp(gpOster).AckOf(ref)
	if ack.Positive || ack.Code != fhirmsg.AckFatalError || ack.From.GLN != theCouncil.GLN {
		t.Fatalf("the hub answered %s from %s; want fatal-error from the council's address %s", ack.Code, ack.From.GLN, theCouncil.GLN)
	}
	var coded string
	for _, is := range ack.Issues {
		if strings.HasPrefix(is, fhirmsg.IssueBadFormat+": ") {
			coded = is
		}
		if strings.Contains(is, "11445") {
			t.Errorf("an issue repeats the value: %q", is)
		}
	}
	if !strings.Contains(coded, "must be a SOR id of 6 to 18 digits") {
		t.Errorf("issues %q; want one coded %s naming the SOR element", ack.Issues, fhirmsg.IssueBadFormat)
	}
	if docs := w.caseSystem().DocumentsFor(ref.ID); len(docs) != 0 {
		t.Errorf("the refused letter was filed: %+v", docs)
	}
}

var contentType = regexp.MustCompile(`"contentType":\s*"application/pdf"`)

// A practice's system writes a FHIR JSON letter whose attachment size is a
// JSON string ("402"), where FHIR JSON has a number: the hub answers with a
// fatal-error acknowledgement whose issue carries MedCom's datatype code
// and names the element, and files nothing.
func TestWeek1AFHIRJSONLetterWithAStringForANumberIsRefused(t *testing.T) {
	w := newWorld(t)
	how := medcompeer.Outgoing{Format: medcompeer.FormatFHIRJSON, Invalid: true,
		Files: []letter.Attachment{letter.NewAttachment("PPR-vurdering.pdf", "application/pdf", []byte("%PDF-1.4 fiktiv"))}}
	edited := false
	how.Edit = func(data []byte) []byte {
		out := contentType.ReplaceAll(data, []byte(`"contentType": "application/pdf", "size": "15"`))
		edited = !bytes.Equal(out, data)
		return out
	}
	ref := w.gp(gpOster).Refers(aase, how)
	if !edited {
		t.Fatal("the letter has no attachment to edit")
	}
	ack := w.gp(gpOster).AckOf(ref)
	if ack.Positive || ack.Code != fhirmsg.AckFatalError {
		t.Fatalf("the hub answered %s; want fatal-error", ack.Code)
	}
	var coded string
	for _, is := range ack.Issues {
		if strings.HasPrefix(is, fhirmsg.IssueDatatype+": ") {
			coded = is
		}
	}
	if !strings.Contains(coded, "contentAttachment.size") || !strings.Contains(coded, "must be a JSON number, not a string") {
		t.Errorf("issues %q; want one coded %s naming the size", ack.Issues, fhirmsg.IssueDatatype)
	}
	if docs := w.caseSystem().DocumentsFor(ref.ID); len(docs) != 0 {
		t.Errorf("the refused letter was filed: %+v", docs)
	}
}
