package medcom

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/adapters/medcom/fhirmsg"
	"github.com/samhub/samhub/adapters/medcom/xmlsafe"
	"github.com/samhub/samhub/pipeline/letter"
)

// The IG's 2nd message (B replies to A): a text segment of the 1st
// message, then B's text and a PDF, with a Provenance for each message.
const (
	igSecond      = "fhir/Bundle-b56549f7-ed10-422d-8088-f7222b686e46.json"
	igSecondID    = "d5bd2111-2576-48d3-84d4-8be0297a038d"
	igFirstText   = "urn:uuid:24d01288-ad36-4af2-96a8-fd1432dadee1"
	igSecondText  = "urn:uuid:a9becf76-fc4c-49aa-8a68-6a0584871fcd"
	igSecondPDF   = "urn:uuid:cd422e42-5bad-11ed-9b6a-0242ac120002"
	igSecondPDF64 = "JVBERi0xLjcNCiW1tbW1" // the start of the PDF's base64
)

// replyEnv has the adapter receive the IG's 2nd message, as the hub
// stores it, and returns a reply to it (A replies to B) to deliver.
func replyEnv(t *testing.T) (*env, *Adapter, *letter.Letter, *bytes.Buffer) {
	t.Helper()
	e := newEnv(t)
	var logs bytes.Buffer
	e.log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a := e.adapter(t, nil)
	pub := newPub()
	e.letters.use(pub)
	in := readFile(t, igSecond)
	e.drop(t, "in.json", in)
	a.Poll(context.Background(), pub)
	if len(pub.letters) != 1 || pub.letters[0].ID != igSecondID {
		t.Fatalf("published %v, error/ %v", pub.ids(), e.files(t, "error"))
	}
	// Its attachment was large enough to be left in the input file: the
	// hub keeps the original in its blob store.
	e.letters.stored = map[string][]byte{igSecondID: in}
	l := outLetter()
	l.InReplyTo = igSecondID
	to := pub.letters[0].Sender
	to.Accepts = []string{OutFHIRXML}
	l.To = []letter.Party{to}
	return e, a, l, &logs
}

// deliverReply delivers l and returns the letter it wrote (the files in
// out/ that are not acknowledgements).
func deliverReply(t *testing.T, e *env, a *Adapter, l *letter.Letter) []byte {
	t.Helper()
	before := e.files(t, "out")
	if _, err := a.Deliver(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	for _, f := range e.files(t, "out") {
		if !slices.Contains(before, f) {
			return e.read(t, "out", f)
		}
	}
	t.Fatal("no letter written")
	return nil
}

// A FHIR reply repeats the thread's earlier segments, the attachment
// without its data, and their Provenances, and its own Provenance names the
// message answered (MedCom CareCommunication IG: Communication profile,
// "Content of the message segments"; the Examples page's 3rd message).
func TestAReplyCarriesTheThreadItAnswers(t *testing.T) {
	e, a, l, logs := replyEnv(t)
	data := deliverReply(t, e, a, l)
	m := validReply(t, data)
	for _, id := range []string{igFirstText, igSecondText, igSecondPDF} {
		if !bytes.Contains(data, []byte(`value="`+id+`"`)) {
			t.Errorf("earlier segment %s is missing from the reply", id)
		}
	}
	if bytes.Contains(data, []byte(igSecondPDF64)) {
		t.Error("the earlier attachment was sent with its data; a reply lists it without")
	}
	if !bytes.Contains(data, []byte("Blodprøveresultater")) {
		t.Error("the earlier attachment's title is missing")
	}
	if n := bytes.Count(data, []byte("<Provenance>")); n != 3 {
		t.Errorf("%d Provenances, want the thread's 2 and the reply's own", n)
	}
	if m.PreviousHeaderID != igSecondID || m.ThreadID != "urn:uuid:b2eb3d0e-5de5-4de9-b2a3-0ff321ad1c3a" {
		t.Errorf("answers %q in thread %q", m.PreviousHeaderID, m.ThreadID)
	}
	// The hub's own reader takes only what the reply added.
	got := m.Letter("medcom", data, fhirmsg.MIMEXML)
	if got.Text != l.Text || len(got.Attachments) != 0 || got.Meta[fhirmsg.MetaAttachmentsWithoutData] != "" {
		t.Errorf("read back: text %q, %d attachments, meta %v", got.Text, len(got.Attachments), got.Meta)
	}
	if strings.Contains(logs.String(), "only its own segment") {
		t.Errorf("logged a missing thread although it was read:\n%s", logs)
	}
}

// When the letter answered can no longer be read, the reply still goes out,
// with its own segment as before, and a log line without personal data
// says why; when the store does not answer, the delivery is tried again.
func TestAReplyGoesOutWhenTheAnsweredLetterIsGone(t *testing.T) {
	cases := []struct {
		name, reason string
		lose         func(t *testing.T, e *env)
	}{
		{"past retention", "not_stored", func(_ *testing.T, e *env) { e.letters.gone = map[string]bool{igSecondID: true} }},
		{"not a message", "unreadable", func(_ *testing.T, e *env) { e.letters.stored[igSecondID] = []byte("%PDF-1.4 not a message") }},
		{"another message", "another_message", func(t *testing.T, e *env) {
			e.letters.stored[igSecondID] = readFile(t, "fhir/Bundle-add5e7e2-0c0f-4a4a-bfff-f6f984fa7e3c.json")
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, a, l, logs := replyEnv(t)
			c.lose(t, e)
			data := deliverReply(t, e, a, l)
			m := validReply(t, data)
			if m.PreviousHeaderID != igSecondID || bytes.Contains(data, []byte(igFirstText)) || bytes.Count(data, []byte("<Provenance>")) != 1 {
				t.Errorf("reply answers %q; carries earlier segments: %v", m.PreviousHeaderID, bytes.Contains(data, []byte(igFirstText)))
			}
			log := logs.String()
			if !strings.Contains(log, "only its own segment") || !strings.Contains(log, "reason="+c.reason) {
				t.Errorf("no log line with reason %s:\n%s", c.reason, log)
			}
			if strings.Contains(log, "2509479989") || strings.Contains(log, "250947") || strings.Contains(log, "Samrådet har behandlet") {
				t.Errorf("personal data or letter text logged:\n%s", log)
			}
		})
	}
	t.Run("store unavailable", func(t *testing.T) {
		e, a, l, _ := replyEnv(t)
		e.letters.down = errors.New("nats: timeout")
		before := e.files(t, "out")
		_, err := a.Deliver(context.Background(), l)
		if class, _, code := adapters.Classify(err); class != adapters.ClassRetryable || code != "hub_unavailable" {
			t.Fatalf("error %v (%v %s), want retryable hub_unavailable", err, class, code)
		}
		if after := e.files(t, "out"); len(after) != len(before) {
			t.Errorf("wrote %v although the delivery failed", after)
		}
		e.letters.down = nil
		data := deliverReply(t, e, a, l)
		if !bytes.Contains(data, []byte(igFirstText)) {
			t.Error("the retried reply lacks the thread")
		}
	})
}

// An XDIS91 letter answered with a CareCommunication: as the IG's reply to
// an OIOXML message (Communication f54efd18-…), the reply carries its own
// segment only, and its Provenance names the letter as "GLN#letter id";
// the XDIS91 original is not read.
func TestAReplyToXDIS91CarriesItsOwnSegment(t *testing.T) {
	e := newEnv(t)
	a := e.adapter(t, nil)
	pub := newPub()
	e.letters.use(pub)
	e.drop(t, "in.xml", readFile(t, "oioxml/DIS91_2.xml"))
	a.Poll(context.Background(), pub)
	if len(pub.letters) != 1 {
		t.Fatalf("published %v, error/ %v", pub.ids(), e.files(t, "error"))
	}
	e.letters.down = errors.New("an original must not be read for this reply")
	l := outLetter()
	l.InReplyTo = pub.letters[0].ID
	to := pub.letters[0].Sender
	to.SOR, to.Accepts = "441211000016099", []string{OutFHIRXML}
	l.To = []letter.Party{to}
	data := deliverReply(t, e, a, l)
	m := validReply(t, data)
	if n, p := bytes.Count(data, []byte("<payload>")), bytes.Count(data, []byte("<Provenance>")); n != 1 || p != 1 {
		t.Errorf("%d segments and %d Provenances, want 1 and 1", n, p)
	}
	if m.PreviousHeaderID != pub.letters[0].ID || !strings.Contains(m.PreviousHeaderID, "#") ||
		!bytes.Contains(data, []byte(`<value value="`+pub.letters[0].ID+`"/>`)) {
		t.Errorf("answers %q, want the letter %s as an identifier", m.PreviousHeaderID, pub.letters[0].ID)
	}
}

// validReply reads a reply the sink wrote and checks it against MedCom's
// profile.
func validReply(t *testing.T, data []byte) *fhirmsg.Message {
	t.Helper()
	m, err := fhirmsg.Parse(data, xmlsafe.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if err := fhirmsg.Validate(m); err != nil {
		t.Fatalf("the reply does not validate: %v", err)
	}
	return m
}
