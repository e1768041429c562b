package fhirmsg

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/samhub/samhub/adapters/medcom/xmlsafe"
	"github.com/samhub/samhub/pipeline/letter"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/medcom/fhir/golden")

var (
	council = Organization{Name: "Samråd for Børn og Unge, Æblehøj Kommune", SOR: "330461000016004", GLN: "5790001353308"}
	gp      = Organization{Name: "Lægehuset Østergade", SOR: "441211000016000", GLN: "5790001987244"}
)

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join(testdata, "golden", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run with -update if the change is intended)", name)
	}
}

func referral() *letter.Letter {
	return &letter.Letter{
		Patient:  &letter.Patient{CPR: "2512489996", GivenName: "Nancy Ann Test", FamilyName: "Berggren"},
		Category: "psychiatry-social-disability",
		Topic:    "Samråd – anbefaling",
		Text:     "Kære læge\nSamrådet anbefaler et forløb i PPR.\nMed venlig hilsen\nSamrådet – æ ø å Æ Ø Å",
		Attachments: []letter.Attachment{
			letter.NewAttachment("Anbefaling", "application/pdf", []byte("%PDF-1.4 test anbefaling æøå")),
		},
	}
}

func TestBuildCareCommunicationGolden(t *testing.T) {
	prev := mustParse(t, readFile(t, "Bundle-R-Tek-K-dublicate-5de12884-eae7-4fd3-ba4a-d8b56be4baff.json"))
	for _, enc := range []string{EncodingXML, EncodingJSON} {
		for _, mode := range []string{ModeNew, ModeReply, ModeForward} {
			t.Run(mode+"."+enc, func(t *testing.T) {
				opt := BuildOptions{
					Encoding: enc, Self: council, To: gp, Mode: mode, Now: fixedNow(),
					HeaderID: "6a1f5d2e-3b4c-4d5e-8f60-7182a3b4c5d6", BundleID: "0e9d8c7b-6a59-4483-9271-605f4e3d2c1b",
					Author: Author{GivenName: "Karen", FamilyName: "Koordinator", Role: "Koordinator", Phone: "12345678"},
				}
				if mode != ModeNew {
					opt.Previous = prev
				}
				l := referral()
				data, hid, err := BuildCareCommunication(l, opt)
				if err != nil {
					t.Fatal(err)
				}
				if hid != opt.HeaderID {
					t.Errorf("header id %s, want %s", hid, opt.HeaderID)
				}
				golden(t, "carecommunication-"+mode+"."+enc, data)

				m := mustParse(t, data)
				if err := Validate(m); err != nil {
					t.Fatalf("built message does not validate: %v", err)
				}
				if m.Encoding != enc || m.HeaderID != hid || m.BundleID != opt.BundleID {
					t.Errorf("identity: %s %s %s", m.Encoding, m.HeaderID, m.BundleID)
				}
				if m.Sender != council || m.Receiver != gp {
					t.Errorf("parties: %+v → %+v", m.Sender, m.Receiver)
				}
				if *m.Patient != (letter.Patient{CPR: "2512489996", GivenName: "Nancy Ann Test", FamilyName: "Berggren"}) {
					t.Errorf("patient round trip: %+v", m.Patient)
				}
				if m.Topic != l.Topic || m.Category != l.Category {
					t.Errorf("topic/category round trip: %q %q", m.Topic, m.Category)
				}
				if !strings.Contains(m.Text, l.Text) {
					t.Errorf("text (with æøå and line breaks) did not round-trip: %q", m.Text)
				}
				if len(m.Attachments) == 0 || m.Attachments[len(m.Attachments)-1].SHA256 != l.Attachments[0].SHA256 {
					t.Errorf("attachment did not round-trip: %+v", m.Attachments)
				}
				switch mode {
				case ModeNew:
					if m.activity != actNew || m.PreviousHeaderID != "" || !strings.HasPrefix(m.ThreadID, "urn:uuid:") {
						t.Errorf("new: activity %s prev %q thread %q", m.activity, m.PreviousHeaderID, m.ThreadID)
					}
				case ModeReply:
					if m.ThreadID != prev.ThreadID || m.PreviousHeaderID != prev.HeaderID || m.activity != actReply {
						t.Errorf("reply: thread %q prev %q activity %s", m.ThreadID, m.PreviousHeaderID, m.activity)
					}
					if len(m.provs) != len(prev.provs)+1 || len(m.segments) != len(prev.segments)+2 {
						t.Errorf("reply: %d provenances, %d segments", len(m.provs), len(m.segments))
					}
					if m.Text != l.Text {
						t.Errorf("reply: Text should be the new segment only, got %q", m.Text)
					}
				case ModeForward:
					if m.ThreadID == prev.ThreadID || m.PreviousHeaderID != prev.HeaderID || m.activity != actForward {
						t.Errorf("forward: thread %q prev %q activity %s", m.ThreadID, m.PreviousHeaderID, m.activity)
					}
					if !strings.Contains(m.Text, "Til rette vedkommende") {
						t.Error("forward: the forwarded text is missing")
					}
				}
			})
		}
	}
}

func TestResendKeepsHeaderID(t *testing.T) {
	opt := BuildOptions{Encoding: EncodingJSON, Self: council, To: gp, Mode: ModeNew, Now: fixedNow()}
	first, hid, err := BuildCareCommunication(referral(), opt)
	if err != nil {
		t.Fatal(err)
	}
	opt.HeaderID = hid
	again, hid2, err := BuildCareCommunication(referral(), opt)
	if err != nil {
		t.Fatal(err)
	}
	a, b := mustParse(t, first), mustParse(t, again)
	if hid2 != hid || a.HeaderID != b.HeaderID || a.ThreadID != b.ThreadID {
		t.Error("resend changed the message identity")
	}
	if a.BundleID == b.BundleID {
		t.Error("resend kept the Bundle.id; it must be new per transmission")
	}
}

func TestReplyToOIOXML(t *testing.T) {
	opt := BuildOptions{Encoding: EncodingXML, Self: council, To: gp, Mode: ModeReply, Now: fixedNow(),
		PreviousHeaderID: "5790001987244#LTR0000000001", ThreadID: "urn:uuid:5c3e1f0a-1b2c-4d3e-8f4a-5b6c7d8e9f00"}
	data, _, err := BuildCareCommunication(referral(), opt)
	if err != nil {
		t.Fatal(err)
	}
	m := mustParse(t, data)
	if m.PreviousHeaderID != opt.PreviousHeaderID || !bytes.Contains(data, []byte(`<value value="5790001987244#LTR0000000001"/>`)) {
		t.Errorf("OIOXML reference not written as an identifier: %q", m.PreviousHeaderID)
	}
}

func TestBuildCareCommunicationRefuses(t *testing.T) {
	cases := []struct {
		name string
		edit func(*letter.Letter, *BuildOptions)
		want string
	}{
		{"no SOR", func(l *letter.Letter, o *BuildOptions) { o.To.SOR = "" }, "options.To.SOR"},
		{"other without topic", func(l *letter.Letter, o *BuildOptions) { l.Category, l.Topic = "other", "" }, "letter.topic: must be present when the category is other"},
		{"priority", func(l *letter.Letter, o *BuildOptions) { l.Priority = "asap" }, "letter.priority: is only allowed"},
		{"bad CPR", func(l *letter.Letter, o *BuildOptions) { l.Patient.CPR = "3213921234" }, "letter.patient.cpr"},
		{"reply without thread", func(l *letter.Letter, o *BuildOptions) { o.Mode, o.PreviousHeaderID = ModeReply, "x" }, "options.ThreadID"},
		{"encoding", func(l *letter.Letter, o *BuildOptions) { o.Encoding = "yaml" }, "options.Encoding"},
		{"no text", func(l *letter.Letter, o *BuildOptions) { l.Text = " " }, "letter.text"},
	}
	for _, c := range cases {
		l := referral()
		o := BuildOptions{Encoding: EncodingXML, Self: council, To: gp, Mode: ModeNew, Now: fixedNow()}
		c.edit(l, &o)
		_, _, err := BuildCareCommunication(l, o)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "3213921234") {
			t.Errorf("%s: error echoes the CPR", c.name)
		}
	}
}

func TestBuildAcknowledgementGolden(t *testing.T) {
	of := mustParse(t, readFile(t, "Bundle-R-Tek-K-dublicate-5de12884-eae7-4fd3-ba4a-d8b56be4baff.json"))
	ofXML := mustParse(t, readFile(t, "Bundle-R-Tek-L-dublicate-fa97e431-332f-4605-ad37-c259dc2b8637.xml"))
	self := Organization{Name: "Sundhedsplejen, Aabenraa kommune", SOR: "330461000016004", GLN: "5790001353308"}
	cases := []struct {
		name   string
		of     *Message
		code   string
		issues []Issue
	}{
		{"ok.json", of, AckOK, nil},
		{"ok-duplicate.xml", ofXML, AckOK, []Issue{{Severity: "information", Code: "informational", Details: "MSG_DUPLICATE_ID"}}},
		{"fatal-error.json", of, AckFatalError, []Issue{{Severity: "error", Code: "value", Details: "MSG_VALUESET_VALUE_UNKNOWN"}}},
		{"transient-error.xml", ofXML, AckTransientError, []Issue{{Severity: "error", Code: "transient", Details: "Modtagelsen er midlertidigt ude af drift – prøv igen"}}},
		{"fatal-error-coded.xml", ofXML, AckFatalError, []Issue{{Severity: "error", Code: "invalid", Details: IssueDamaged,
			Text: "Bundle.entry[4].resource.payload[1].contentAttachment.hash: does not match the SHA-1 of data"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data, err := BuildAcknowledgement(c.of, c.code, c.issues, self, fixedNow())
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "ack-"+c.name, data)
			m := mustParse(t, data)
			if err := Validate(m); err != nil {
				t.Fatalf("built ack does not validate: %v", err)
			}
			if m.Encoding != c.of.Encoding || m.Event != EventAcknowledgement {
				t.Errorf("encoding %s event %s", m.Encoding, m.Event)
			}
			if m.Response.Code != c.code || m.Response.Identifier != c.of.HeaderID || m.PreviousHeaderID != c.of.HeaderID {
				t.Errorf("response %+v prev %s", m.Response, m.PreviousHeaderID)
			}
			if m.Sender != self || m.Receiver != c.of.Sender {
				t.Errorf("ack goes %+v → %+v, want us → the original sender", m.Sender, m.Receiver)
			}
			if len(m.provs) != 2 || m.provs[0].activity != actNew || m.provs[1].activity != actAck {
				t.Errorf("provenances: %+v", m.provs)
			}
			if len(m.Response.Issues) != len(c.issues) || (len(c.issues) > 0 && (m.Response.Issues[0].Details != c.issues[0].Details ||
				c.issues[0].Text != "" && m.Response.Issues[0].Text != c.issues[0].Text)) {
				t.Errorf("issues: %+v", m.Response.Issues)
			}
			if m.Patient != nil || bytes.Contains(data, []byte("2509479989")) {
				t.Error("an acknowledgement must carry no patient")
			}
			l := m.Letter("medcom-in", data, "")
			if l.Kind != letter.KindAcknowledgement || l.InReplyTo != c.of.HeaderID || l.Meta[MetaResponseCode] != c.code {
				t.Errorf("letter: %+v", l)
			}
			if strings.Contains(l.Meta[MetaIssues], "midlertidigt") {
				t.Error("free-text issue details leaked into Meta")
			}
		})
	}
	for _, bad := range []struct {
		code   string
		issues []Issue
		self   Organization
		want   string
	}{
		{"maybe", nil, self, "code: must be"},
		{AckFatalError, nil, self, "issues: at least one"},
		{AckOK, nil, Organization{SOR: "1"}, "self.GLN"},
	} {
		if _, err := BuildAcknowledgement(of, bad.code, bad.issues, bad.self, fixedNow()); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: err = %v, want %q", bad.code, err, bad.want)
		}
	}
	ack := mustParse(t, readFile(t, "Bundle-a8c041b8-c65a-4fde-a90f-962076918834.xml"))
	if _, err := BuildAcknowledgement(ack, AckOK, nil, self, fixedNow()); err == nil {
		t.Error("an acknowledgement was acknowledged")
	}
}

func TestVANSGolden(t *testing.T) {
	for _, name := range []string{"Bundle-add5e7e2-0c0f-4a4a-bfff-f6f984fa7e3c.xml", "Bundle-R-Tek-K-dublicate-5de12884-eae7-4fd3-ba4a-d8b56be4baff.json"} {
		enc := EncodingXML
		if strings.HasSuffix(name, ".json") {
			enc = EncodingJSON
		}
		env, err := BuildVANSEnvelope(readFile(t, name), Envelope{
			EnvelopeID: "0b6f3a6e-4f5d-4d7c-9a43-2f1f0c1b2a11", MessageID: "4c1d2b7e-9a1e-4b0e-8f5d-6b7a3c2d1e0f",
			FromGLN: "5790000209354", ToGLN: "5790001348120", Encoding: enc, Name: "MCM:FDIS91#other", Version: "5.0", Now: fixedNow(),
		})
		if err != nil {
			t.Fatal(err)
		}
		golden(t, "vans-"+strings.TrimSuffix(name, filepath.Ext(name))+"."+enc+".xml", env)
		if _, err := Parse(env, xmlsafe.DefaultLimits()); err != nil {
			t.Error(err)
		}
	}
}

// Control characters a case system or a form let into the text (NUL,
// vertical tab, U+FFFE) are no FHIR string characters: the JSON carried
// them as \u0000 (a receiver's validator refuses the message), the XML as
// U+FFFD. They are dropped; the text reads back otherwise the same.
func TestControlCharactersAreNotWritten(t *testing.T) {
	for _, enc := range []string{EncodingXML, EncodingJSON} {
		l := referral()
		l.Text = "Linje 1\x00\x0b\uFFFE\nLinje 2\tslut"
		l.Topic = "Emne\x01"
		data, _, err := BuildCareCommunication(l, BuildOptions{Encoding: enc, Self: council, To: gp, Mode: ModeNew, Now: fixedNow()})
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{`\u0000`, `\u000b`, `\u0001`, "\uFFFD", "\uFFFE"} {
			if bytes.Contains(data, []byte(bad)) {
				t.Errorf("%s: the message holds %q", enc, bad)
			}
		}
		m := mustParse(t, data)
		if err := Validate(m); err != nil {
			t.Fatal(err)
		}
		if m.Text != "Linje 1\nLinje 2\tslut" || m.Topic != "Emne" {
			t.Errorf("%s: read back %q, topic %q", enc, m.Text, m.Topic)
		}
	}
}

// An attachment the receiver could not take is refused with the field and
// the reason before anything is sent: an empty file (written without data
// it reads as an earlier attachment of a reply, and the file is lost), a
// type outside MedCom's required value set, a link without an address.
func TestAttachmentsACareCommunicationCannotCarry(t *testing.T) {
	for name, c := range map[string]struct {
		att  letter.Attachment
		want string
	}{
		"empty file":                 {letter.NewAttachment("tom.pdf", "application/pdf", []byte{}), "letter.attachments[0].data: the file is empty"},
		"Word":                       {letter.NewAttachment("notat.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", []byte("PK")), "letter.attachments[0].contentType: must be one of MedCom's attachment types"},
		"text in a charset not read": {letter.NewAttachment("notat.txt", "text/plain; charset=koi8-r", []byte("x")), "letter.attachments[0].contentType: must be one of"},
		"empty link":                 {letter.NewAttachment("link", "text/uri-list", []byte(" ")), "letter.attachments[0].data: the link has no address"},
	} {
		t.Run(name, func(t *testing.T) {
			l := referral()
			l.Attachments = []letter.Attachment{c.att}
			_, _, err := BuildCareCommunication(l, BuildOptions{Encoding: EncodingXML, Self: council, To: gp, Mode: ModeNew, Now: fixedNow()})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
	// A type with parameters or in capitals is MedCom's type, written bare.
	l := referral()
	l.Attachments = []letter.Attachment{letter.NewAttachment("scan", "Application/PDF; name=scan.pdf", []byte("%PDF-1.4"))}
	data, _, err := BuildCareCommunication(l, BuildOptions{Encoding: EncodingJSON, Self: council, To: gp, Mode: ModeNew, Now: fixedNow()})
	if err != nil {
		t.Fatal(err)
	}
	if m := mustParse(t, data); len(m.Attachments) != 1 || m.Attachments[0].ContentType != "application/pdf" {
		t.Fatalf("attachments %+v", m.Attachments)
	}
}

// A plain-text file (a region's discharge note is often one) cannot be a
// CareCommunication attachment; its words travel in the message's text,
// under the file's name, in whichever charset it came; a file that only
// repeats the text adds nothing, and other files stay attachments.
func TestPlainTextFilesTravelAsText(t *testing.T) {
	pdf := letter.NewAttachment("scan.pdf", "application/pdf", []byte("%PDF-1.4"))
	for name, c := range map[string]struct {
		text  string
		files []letter.Attachment
		want  string
	}{
		"beside the text":           {"Se notatet.", []letter.Attachment{letter.NewAttachment("notat.txt", "text/plain; charset=utf-8", []byte("Patienten er udskrevet.\n")), pdf}, "Se notatet.\n\nnotat.txt:\nPatienten er udskrevet."},
		"as the only text, Latin-1": {"", []letter.Attachment{letter.NewAttachment("notat.txt", "text/plain; charset=ISO-8859-1", []byte("Udskrevet i g\xe5r.")), pdf}, "Udskrevet i går."},
		"Latin-9":                   {"", []letter.Attachment{letter.NewAttachment("notat.txt", "text/plain; charset=ISO-8859-15", []byte("Gebyr 5 \xa4.")), pdf}, "Gebyr 5 €."},
		"repeating the text":        {"Udskrevet.", []letter.Attachment{letter.NewAttachment("Udskrivningsnotat", "text/plain", []byte(" Udskrevet. ")), pdf}, "Udskrevet."},
	} {
		t.Run(name, func(t *testing.T) {
			l := referral()
			l.Text, l.Attachments = c.text, c.files
			data, _, err := BuildCareCommunication(l, BuildOptions{Encoding: EncodingJSON, Self: council, To: gp, Mode: ModeNew, Now: fixedNow()})
			if err != nil {
				t.Fatal(err)
			}
			m := mustParse(t, data)
			if err := Validate(m); err != nil {
				t.Fatal(err)
			}
			if m.Text != c.want {
				t.Errorf("text %q, want %q", m.Text, c.want)
			}
			if len(m.Attachments) != 1 || m.Attachments[0].ContentType != "application/pdf" {
				t.Errorf("attachments %+v, want the PDF alone", m.Attachments)
			}
		})
	}
}

// A negative acknowledgement's issues name each problem in words, and carry
// MedCom's code where the problem answers to one: a damaged attachment, a
// GLN of the wrong form, a message type the receiver does not take.
func TestIssuesCarryMedComsCodes(t *testing.T) {
	m := mustParse(t, readFile(t, "Bundle-R-Tek-K-dublicate-5de12884-eae7-4fd3-ba4a-d8b56be4baff.json"))
	m.Event = "hospitalnotification-message"
	err := errors.Join(Validate(m), errors.New("the envelope: not well-formed\nline 3"),
		ferr("Bundle.entry[1].resource.identifier[0].value", "must be a GLN of 13 digits").coded(IssueBadFormat))
	got := Issues(err, 5)
	var codes, texts []string
	for _, is := range got {
		codes = append(codes, is.Code+":"+is.Details)
		texts = append(texts, is.Text)
	}
	want := "[not-supported:" + IssueUnsupportedType + " invalid: invalid: invalid:" + IssueBadFormat + "]"
	if fmt.Sprint(codes) != want {
		t.Errorf("issues %v, want %s (texts %q)", codes, want, texts)
	}
	if len(texts) != 4 || !strings.HasSuffix(texts[0], ".eventCoding.code: must be "+EventCareCommunication+" or "+EventAcknowledgement) ||
		texts[1] != "the envelope: not well-formed" || texts[2] != "line 3" {
		t.Errorf("texts %q", texts)
	}
	if n := len(Issues(err, 2)); n != 2 {
		t.Errorf("%d issues with at most 2", n)
	}
	if Issues(nil, 5) != nil {
		t.Error("issues without an error")
	}
}
