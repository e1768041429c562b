package fhirmsg

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"slices"
	"testing"

	"github.com/samhub/samhub/adapters/medcom/partscan"
	"github.com/samhub/samhub/adapters/medcom/xmlsafe"
	"github.com/samhub/samhub/pipeline/letter"
)

// A reply to the IG's 2nd message (A replies to B, the Examples page's 3rd
// message) repeats the thread's three segments, the PDF without its data,
// and both Provenances, adds its own segments and a reply-message
// Provenance naming the 2nd message; read back, the letter holds only what
// the reply added.
func TestReplyCarriesTheThread(t *testing.T) {
	prev := mustParse(t, readFile(t, "Bundle-b56549f7-ed10-422d-8088-f7222b686e46.json"))
	earlier := []string{
		"urn:uuid:24d01288-ad36-4af2-96a8-fd1432dadee1", // 1st message's text
		"urn:uuid:a9becf76-fc4c-49aa-8a68-6a0584871fcd", // 2nd message's text
		"urn:uuid:cd422e42-5bad-11ed-9b6a-0242ac120002", // 2nd message's PDF
	}
	for _, enc := range []string{EncodingXML, EncodingJSON} {
		t.Run(enc, func(t *testing.T) {
			l := referral()
			data, _, err := BuildCareCommunication(l, BuildOptions{Encoding: enc, Self: council, To: gp, Mode: ModeReply, Now: fixedNow(), Previous: prev})
			if err != nil {
				t.Fatal(err)
			}
			m := mustParse(t, data)
			if err := Validate(m); err != nil {
				t.Fatalf("the reply does not validate: %v", err)
			}
			var ids []string
			for _, s := range m.segments {
				ids = append(ids, s.id)
			}
			if len(ids) != 5 || !slices.Equal(ids[:3], earlier) {
				t.Fatalf("segments %v, want the thread's %v and the reply's text and PDF", ids, earlier)
			}
			if pdf := m.segments[2].att; pdf == nil || pdf.data != nil || pdf.url != "" || pdf.title != "Blodprøveresultater" {
				t.Errorf("earlier attachment %+v, want its title without data", pdf)
			}
			if m.segments[0].text == "" || m.segments[1].text == "" {
				t.Error("earlier text segments lost their text")
			}
			if mine := m.segments[4].att; mine == nil || len(mine.data) == 0 {
				t.Error("the reply's own attachment lost its data")
			}
			if len(m.provs) != 3 {
				t.Fatalf("%d Provenances, want the 1st and 2nd message's and the reply's", len(m.provs))
			}
			own := m.own
			if own == nil || own.activity != actReply {
				t.Fatalf("own Provenance %+v", own)
			}
			var sources, revisions []string
			for _, e := range own.entities {
				switch e.role {
				case "source":
					sources = append(sources, e.ident)
				case "revision":
					revisions = append(revisions, e.ref)
				}
			}
			if !slices.Equal(revisions, []string{"MessageHeader/" + prev.HeaderID}) {
				t.Errorf("revision entities %v, want the 2nd message's MessageHeader", revisions)
			}
			if len(sources) != 2 || slices.ContainsFunc(sources, func(s string) bool { return slices.Contains(earlier, s) }) {
				t.Errorf("source entities %v, want the reply's own two segments", sources)
			}
			// The hub's reader takes only the new segments.
			if m.Text != l.Text || len(m.Attachments) != 1 || m.Attachments[0].SHA256 != l.Attachments[0].SHA256 || m.attMissing != 0 {
				t.Errorf("read back: text %q, %d attachments, %d without data", m.Text, len(m.Attachments), m.attMissing)
			}
			if got := m.Letter("medcom", data, MIMEXML); got.Text != l.Text {
				t.Errorf("letter text %q, want the new text only", got.Text)
			}
		})
	}
}

// countingFile counts the bytes read from a message, to show ParsePrevious
// reads it as a stream rather than into memory.
type countingFile struct {
	r *bytes.Reader
	n int64
}

func (c *countingFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n += int64(n)
	return n, err
}

// ParsePrevious reads a message with a large attachment, bare and in a
// VANSEnvelope, without decoding the attachment, and a reply built from it
// lists the attachment without data.
func TestParsePreviousLeavesAttachmentsInTheSource(t *testing.T) {
	pdf := make([]byte, 300<<10)
	_, _ = rand.Read(pdf)
	l := referral()
	l.Attachments = []letter.Attachment{letter.NewAttachment("Stor journal", "application/pdf", append([]byte("%PDF-1.4\n"), pdf...))}
	first, hid, err := BuildCareCommunication(l, BuildOptions{Encoding: EncodingXML, Self: gp, To: council, Mode: ModeNew, Now: fixedNow()})
	if err != nil {
		t.Fatal(err)
	}
	env, err := BuildVANSEnvelope(first, Envelope{EnvelopeID: "0b6f3a6e-4f5d-4d7c-9a43-2f1f0c1b2a11", MessageID: "4c1d2b7e-9a1e-4b0e-8f5d-6b7a3c2d1e0f",
		FromGLN: gp.GLN, ToGLN: council.GLN, Encoding: EncodingXML, Name: "MCM:FDIS91#other", Version: "5.0", Now: fixedNow()})
	if err != nil {
		t.Fatal(err)
	}
	for name, in := range map[string][]byte{"bare": first, "enveloped": env} {
		t.Run(name, func(t *testing.T) {
			f := &countingFile{r: bytes.NewReader(in)}
			prev, err := ParsePrevious(partscan.File(f, int64(len(in))), xmlsafe.DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}
			if prev.HeaderID != hid || prev.Event != EventCareCommunication || len(prev.segments) != 2 {
				t.Fatalf("read %s %s with %d segments", prev.HeaderID, prev.Event, len(prev.segments))
			}
			att := prev.segments[1].att
			if att == nil || att.data != nil || att.part == nil || att.part.Size != 0 {
				t.Fatalf("the attachment was decoded or measured: %+v", att)
			}
			if f.n > 3*int64(len(in)) {
				t.Errorf("read %d bytes of a %d-byte message", f.n, len(in))
			}
			reply, _, err := BuildCareCommunication(referral(), BuildOptions{Encoding: EncodingJSON, Self: council, To: gp, Mode: ModeReply, Now: fixedNow(), Previous: prev})
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(reply, []byte(base64.StdEncoding.EncodeToString(pdf[:3000])[:64])) {
				t.Error("the earlier attachment's data was written into the reply")
			}
			m := mustParse(t, reply)
			if err := Validate(m); err != nil {
				t.Fatalf("the reply does not validate: %v", err)
			}
			if len(m.segments) != 4 || m.segments[1].att == nil || m.segments[1].att.title != "Stor journal" || m.PreviousHeaderID != hid {
				t.Errorf("reply segments %d, answers %s", len(m.segments), m.PreviousHeaderID)
			}
		})
	}
	if _, err := ParsePrevious(partscan.File(bytes.NewReader([]byte("%PDF-1.4")), 8), xmlsafe.DefaultLimits()); err == nil {
		t.Error("a PDF read as a message")
	}
}
