package fhirmsg

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/samhub/samhub/adapters/medcom/xmlsafe"
	"github.com/samhub/samhub/pipeline/letter"
)

const testdata = "../../../testdata/medcom/fhir"

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testdata, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustParse(t testing.TB, data []byte) *Message {
	t.Helper()
	m, err := Parse(data, xmlsafe.DefaultLimits())
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return m
}

const (
	herlevHjerte = "265161000016000"
	herlevPleje  = "953741000016009"
	pdfSHA256    = "f10bad1cc096e88be9f163f05e0d7e2d084d5b780c77c23ce4d3f461d3f8f272"
)

// TestExamples reads every MedCom example and checks concrete fields.
func TestExamples(t *testing.T) {
	type want struct {
		event, enc, header, bundle string
		senderSOR, senderGLN       string
		receiverSOR                string
		cpr, replacement           string
		category, topic            string
		thread, previous           string
		text                       string // a snippet
		attSHA                     []string
		response                   string
		responseID, issue          string
		kind                       letter.Kind
	}
	cases := map[string]want{
		"Bundle-add5e7e2-0c0f-4a4a-bfff-f6f984fa7e3c.xml": {
			event: EventCareCommunication, enc: EncodingXML, header: "42cb9200-f421-4d08-8391-7d51a2503cb4", bundle: "add5e7e2-0c0f-4a4a-bfff-f6f984fa7e3c",
			senderSOR: herlevHjerte, senderGLN: "5790000209354", receiverSOR: herlevPleje, cpr: "2509479989",
			category: "examination-results", topic: "Forspørgsel på seneste resultater", thread: "urn:uuid:b2eb3d0e-5de5-4de9-b2a3-0ff321ad1c3a",
			text: "Vi ønsker information om de seneste undersøgelser", kind: letter.KindNote,
		},
		"Bundle-add5e7e2-0c0f-4a4a-bfff-f6f984fa7e3c.json": {
			event: EventCareCommunication, enc: EncodingJSON, header: "42cb9200-f421-4d08-8391-7d51a2503cb4", bundle: "add5e7e2-0c0f-4a4a-bfff-f6f984fa7e3c",
			senderSOR: herlevHjerte, senderGLN: "5790000209354", receiverSOR: herlevPleje, cpr: "2509479989",
			category: "examination-results", topic: "Forspørgsel på seneste resultater", thread: "urn:uuid:b2eb3d0e-5de5-4de9-b2a3-0ff321ad1c3a",
			text: "Vi ønsker information om de seneste undersøgelser", kind: letter.KindNote,
		},
		"Bundle-b56549f7-ed10-422d-8088-f7222b686e46.json": {
			event: EventCareCommunication, enc: EncodingJSON, header: "d5bd2111-2576-48d3-84d4-8be0297a038d", bundle: "b56549f7-ed10-422d-8088-f7222b686e46",
			senderSOR: herlevPleje, senderGLN: "5790001348120", receiverSOR: herlevHjerte, cpr: "2509479989",
			category: "examination-results", topic: "Forspørgsel på seneste resultater", thread: "urn:uuid:b2eb3d0e-5de5-4de9-b2a3-0ff321ad1c3a",
			previous: "42cb9200-f421-4d08-8391-7d51a2503cb4", text: "Blodtryk 130/95 mmHg", attSHA: []string{pdfSHA256}, kind: letter.KindReply,
		},
		"Bundle-c0426e3e-978f-46e8-a366-a30f27854b0a.xml": {
			event: EventCareCommunication, enc: EncodingXML, header: "aac67161-d0de-4933-a78c-060beafb4814", bundle: "c0426e3e-978f-46e8-a366-a30f27854b0a",
			senderSOR: herlevPleje, senderGLN: "5790001348120", receiverSOR: "1042981000016003", cpr: "2509479989",
			category: "examination-results", thread: "urn:uuid:546b19ba-3e50-4da8-b9ec-7caeefad6928",
			previous: "4dff3695-218d-4878-838a-5f23cbba6f82", text: "Jeg håber det er okay, at jeg videresender", attSHA: []string{pdfSHA256}, kind: letter.KindNote,
		},
		"Bundle-k7bfbc0c-553d-11ed-bdc3-0242ac120002.xml": {
			event: EventCareCommunication, enc: EncodingXML, header: "3076d9b0-5521-11ed-bdc3-0242ac120002", bundle: "k7bfbc0c-553d-11ed-bdc3-0242ac120002",
			senderSOR: herlevHjerte, senderGLN: "5790000209354", receiverSOR: herlevPleje, cpr: "2509479989",
			category: "carecoordination", thread: "urn:uuid:59aac95e-ca57-4b04-b075-9880b7e6441c",
			previous: "B300720181623#5790000121526", text: "We have a question regarding the referal", kind: letter.KindReply,
		},
		"Bundle-0d5b3c18-fab6-4d93-9d88-c9c8abf1f18c.json": {
			event: EventCareCommunication, enc: EncodingJSON, header: "025bdfdd-397b-43e2-9e8c-272664a6e471", bundle: "0d5b3c18-fab6-4d93-9d88-c9c8abf1f18c",
			senderSOR: herlevHjerte, senderGLN: "5790000209354", receiverSOR: herlevPleje, replacement: "0703921VJ4",
			category: "examination-results", thread: "urn:uuid:cefe0dee-13b5-4bec-a843-09b4d58e4fe6",
			text: "Til rette vedkommende", kind: letter.KindNote,
		},
		"Bundle-R-Tek-K-dublicate-5de12884-eae7-4fd3-ba4a-d8b56be4baff.json": {
			event: EventCareCommunication, enc: EncodingJSON, header: "559e4be0-e1f2-4371-969d-29bbbd5ca9d1", bundle: "R-Tek-K-dublicate-5de12884-eae7-4fd3-ba4a-d8b56be4baff",
			senderSOR: "441211000016000", senderGLN: "5790001987244", receiverSOR: "330461000016004", cpr: "2509479989",
			category: "telemedicine", thread: "urn:uuid:69ab69e8-af33-4e93-9171-7906ad43c1ab", text: "Til rette vedkommende", kind: letter.KindNote,
		},
		"Bundle-R-Tek-L-dublicate-fa97e431-332f-4605-ad37-c259dc2b8637.xml": {
			event: EventCareCommunication, enc: EncodingXML, header: "559e4be0-e1f2-4371-969d-29bbbd5ca9d1", bundle: "R-Tek-L-dublicate-fa97e431-332f-4605-ad37-c259dc2b8637",
			senderSOR: "441211000016000", senderGLN: "5790001987244", receiverSOR: "330461000016004", cpr: "2509479989",
			category: "telemedicine", thread: "urn:uuid:69ab69e8-af33-4e93-9171-7906ad43c1ab", text: "Til rette vedkommende", kind: letter.KindNote,
		},
		"Bundle-a8c041b8-c65a-4fde-a90f-962076918834.xml": {
			event: EventAcknowledgement, enc: EncodingXML, header: "aba2d9bf-2c6c-47e8-bce4-7928bcd51019", bundle: "a8c041b8-c65a-4fde-a90f-962076918834",
			senderSOR: herlevPleje, senderGLN: "5790001348120", receiverSOR: herlevHjerte,
			previous: "42cb9200-f421-4d08-8391-7d51a2503cb4", response: AckOK, responseID: "42cb9200-f421-4d08-8391-7d51a2503cb4", kind: letter.KindAcknowledgement,
		},
		"Bundle-bc9535ef-ed94-4060-a928-7baddec7ee71.json": {
			event: EventAcknowledgement, enc: EncodingJSON, header: "b879c81e-0607-4ccb-b358-24a72208e30d", bundle: "bc9535ef-ed94-4060-a928-7baddec7ee71",
			senderSOR: herlevPleje, senderGLN: "5790001348120", receiverSOR: herlevHjerte,
			previous: "42cb9200-f421-4d08-8391-7d51a2503cb4", response: AckFatalError, responseID: "53128d9b-cede-4c7f-8904-809eab322d7d", issue: "MSG_VALUESET_VALUE_UNKNOWN", kind: letter.KindAcknowledgement,
		},
		"Bundle-c9c2b2f6-0807-11ed-861d-0242ac120002.xml": {
			event: EventAcknowledgement, enc: EncodingXML, header: "c9a0b728-0807-11ed-861d-0242ac120002", bundle: "c9c2b2f6-0807-11ed-861d-0242ac120002",
			senderSOR: herlevPleje, senderGLN: "5790001348120", receiverSOR: herlevHjerte,
			previous: "42cb9200-f421-4d08-8391-7d51a2503cb4", response: AckTransientError, responseID: "53128d9b-cede-4c7f-8904-809eab322d7d", issue: "MSG_Mailbox_Out_Of_Operation", kind: letter.KindAcknowledgement,
		},
	}
	files, _ := filepath.Glob(filepath.Join(testdata, "Bundle-*"))
	if len(files) != len(cases) {
		t.Fatalf("testdata holds %d Bundle files, the table %d: add the new ones", len(files), len(cases))
	}
	for _, f := range files {
		name := filepath.Base(f)
		w, ok := cases[name]
		if !ok {
			t.Errorf("%s: not in the table", name)
			continue
		}
		t.Run(name, func(t *testing.T) {
			data := readFile(t, name)
			m := mustParse(t, data)
			if err := Validate(m); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			check := func(field, got, want string) {
				t.Helper()
				if got != want {
					t.Errorf("%s = %q, want %q", field, got, want)
				}
			}
			check("Event", m.Event, w.event)
			check("Encoding", m.Encoding, w.enc)
			check("HeaderID", m.HeaderID, w.header)
			check("BundleID", m.BundleID, w.bundle)
			check("Sender.SOR", m.Sender.SOR, w.senderSOR)
			check("Sender.GLN", m.Sender.GLN, w.senderGLN)
			check("Receiver.SOR", m.Receiver.SOR, w.receiverSOR)
			check("Category", m.Category, w.category)
			check("Topic", m.Topic, w.topic)
			check("ThreadID", m.ThreadID, w.thread)
			check("PreviousHeaderID", m.PreviousHeaderID, w.previous)
			if w.event == EventCareCommunication {
				if m.Patient == nil {
					t.Fatal("Patient is nil")
				}
				check("Patient.CPR", m.Patient.CPR, w.cpr)
				check("Patient.ReplacementID", m.Patient.ReplacementID, w.replacement)
				if !strings.Contains(m.Text, w.text) {
					t.Errorf("Text lacks %q", w.text)
				}
			}
			var shas []string
			for _, a := range m.Attachments {
				shas = append(shas, a.SHA256)
				if a.Size != int64(len(a.Data)) || letter.Digest(a.Data) != a.SHA256 {
					t.Errorf("attachment %q: size/digest do not match its data", a.Name)
				}
			}
			check("attachments", strings.Join(shas, ","), strings.Join(w.attSHA, ","))
			if w.response != "" {
				if m.Response == nil {
					t.Fatal("Response is nil")
				}
				check("Response.Code", m.Response.Code, w.response)
				check("Response.Identifier", m.Response.Identifier, w.responseID)
				var issue string
				if len(m.Response.Issues) > 0 {
					issue = m.Response.Issues[0].Details
				}
				check("Response.Issues[0].Details", issue, w.issue)
			}
			l := m.Letter("medcom-in", data, "application/fhir+"+w.enc)
			check("Letter.ID", l.ID, w.header)
			check("Letter.Kind", string(l.Kind), string(w.kind))
			check("Letter.Meta[MetaBundleID]", l.Meta[MetaBundleID], w.bundle)
			check("Letter.Original.SHA256", l.Original.SHA256, letter.Digest(data))
			if !bytes.Equal(l.Original.Data, data) {
				t.Error("Letter.Original.Data differs from the input")
			}
			if err := l.Validate(); err != nil {
				t.Errorf("letter.Validate: %v", err)
			}
		})
	}
}

func TestReplyCarriesAllSegmentsButTextIsTheNewOne(t *testing.T) {
	m := mustParse(t, readFile(t, "Bundle-b56549f7-ed10-422d-8088-f7222b686e46.json"))
	if strings.Contains(m.Text, "Til rette vedkommende") {
		t.Error("reply Text repeats the earlier segment")
	}
	if len(m.segments) != 3 || len(m.provs) != 2 {
		t.Errorf("segments=%d provenances=%d, want 3 and 2", len(m.segments), len(m.provs))
	}
}

// TestDuplicatePair: MedCom's receive tests K (JSON) and L (XML) are one
// letter sent twice: same identity, new Bundle.id, the same acknowledgement.
func TestDuplicatePair(t *testing.T) {
	k := mustParse(t, readFile(t, "Bundle-R-Tek-K-dublicate-5de12884-eae7-4fd3-ba4a-d8b56be4baff.json"))
	l := mustParse(t, readFile(t, "Bundle-R-Tek-L-dublicate-fa97e431-332f-4605-ad37-c259dc2b8637.xml"))
	lk, ll := k.Letter("in", nil, ""), l.Letter("in", nil, "")
	if lk.ID != ll.ID || lk.ThreadID != ll.ThreadID {
		t.Fatalf("K and L are not the same letter: %s/%s vs %s/%s", lk.ID, lk.ThreadID, ll.ID, ll.ThreadID)
	}
	if k.BundleID == l.BundleID {
		t.Fatal("K and L should differ in Bundle.id")
	}
	if lk.Text != ll.Text || lk.Patient.CPR != ll.Patient.CPR || lk.Category != ll.Category {
		t.Error("K and L read differently")
	}
	self := Organization{Name: "Sundhedsplejen, Aabenraa kommune", SOR: "330461000016004", GLN: "5790001353308"}
	now := fixedNow()
	a1, err := BuildAcknowledgement(k, AckOK, nil, self, now)
	if err != nil {
		t.Fatal(err)
	}
	a2, _ := BuildAcknowledgement(k, AckOK, nil, self, now)
	if !bytes.Equal(a1, a2) {
		t.Error("same inputs gave different acknowledgement bytes")
	}
	// L is XML, so its ack is XML; to answer L exactly as K, re-encode K's ack.
	kAsXML := *k
	kAsXML.Encoding = EncodingXML
	x1, _ := BuildAcknowledgement(&kAsXML, AckOK, nil, self, now)
	x2, _ := BuildAcknowledgement(l, AckOK, nil, self, now)
	if !bytes.Equal(x1, x2) {
		t.Error("the duplicate L got a different acknowledgement than K")
	}
	ak, al := mustParse(t, a1), mustParse(t, x2)
	if ak.HeaderID != al.HeaderID || ak.BundleID != al.BundleID || ak.Response.Identifier != k.HeaderID {
		t.Error("JSON and XML acknowledgements of the duplicate pair differ in identity")
	}
}

func TestVANSEnvelope(t *testing.T) {
	for _, name := range []string{"Bundle-add5e7e2-0c0f-4a4a-bfff-f6f984fa7e3c.json", "Bundle-add5e7e2-0c0f-4a4a-bfff-f6f984fa7e3c.xml"} {
		t.Run(name, func(t *testing.T) {
			inner := readFile(t, name)
			enc := EncodingJSON
			if strings.HasSuffix(name, ".xml") {
				enc = EncodingXML
			}
			env, err := BuildVANSEnvelope(inner, Envelope{
				EnvelopeID: "0b6f3a6e-4f5d-4d7c-9a43-2f1f0c1b2a11", MessageID: "4c1d2b7e-9a1e-4b0e-8f5d-6b7a3c2d1e0f",
				FromGLN: "5790000209354", ToGLN: "5790001348120", Encoding: enc, Name: "MCM:FDIS91#examination-results", Version: "5.0", Now: fixedNow(),
			})
			if err != nil {
				t.Fatal(err)
			}
			m := mustParse(t, env)
			if m.VANS == nil || m.VANS.EnvelopeID != "0b6f3a6e-4f5d-4d7c-9a43-2f1f0c1b2a11" || m.VANS.FromVANS != "5790000209354" || m.VANS.MIME != "application/fhir+"+enc {
				t.Fatalf("VANS = %+v", m.VANS)
			}
			if m.HeaderID != "42cb9200-f421-4d08-8391-7d51a2503cb4" || m.Encoding != enc {
				t.Errorf("inner message read wrongly: %s %s", m.HeaderID, m.Encoding)
			}
			if err := Validate(m); err != nil {
				t.Error(err)
			}
			if l := m.Letter("in", env, "application/xml"); l.Meta[MetaVANSEnvelopeID] != m.VANS.EnvelopeID {
				t.Error("letter lacks the envelope id")
			}
			// The MIME tag must match the payload.
			wrong := bytes.Replace(env, []byte("application/fhir+"+enc), []byte("application/fhir+"+map[string]string{"xml": "json", "json": "xml"}[enc]), 1)
			if _, err := Parse(wrong, xmlsafe.DefaultLimits()); err == nil || !strings.Contains(err.Error(), "MCM:MIME") {
				t.Errorf("mismatched MIME: err = %v", err)
			}
		})
	}
	bad := []struct{ name, doc, want string }{
		{"no data", `<VANSEnvelope xmlns="urn:oio:medcom:vans-envelope:1.0.4"><EnvelopeIdentifier>e1</EnvelopeIdentifier><Message><MetaInformation/></Message></VANSEnvelope>`, "VANSEnvelope.Message.Data: must hold"},
		{"not base64", `<VANSEnvelope><EnvelopeIdentifier>e1</EnvelopeIdentifier><Message><Data>!!!</Data></Message></VANSEnvelope>`, "must be base64"},
		{"receipt", `<VANSEnvelope><EnvelopeIdentifier>e1</EnvelopeIdentifier><Receipt/></VANSEnvelope>`, "carries a VANS Receipt"},
		{"nested", `<VANSEnvelope><EnvelopeIdentifier>e1</EnvelopeIdentifier><Message><Data>` +
			base64.StdEncoding.EncodeToString([]byte(`<VANSEnvelope/>`)) + `</Data></Message></VANSEnvelope>`, "holds another VANSEnvelope"},
	}
	for _, c := range bad {
		m, err := Parse([]byte(c.doc), xmlsafe.DefaultLimits())
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.name, err, c.want)
		}
		if m == nil || m.VANS == nil || m.VANS.EnvelopeID != "e1" {
			t.Errorf("%s: partial message should carry the envelope id", c.name)
		}
	}
}

func TestCharsets(t *testing.T) {
	xmlDoc := readFile(t, "Bundle-add5e7e2-0c0f-4a4a-bfff-f6f984fa7e3c.xml")
	latin := bytes.Replace(xmlDoc, []byte(`encoding="UTF-8"`), []byte(`encoding="ISO-8859-1"`), 1)
	if _, err := Parse(latin, xmlsafe.DefaultLimits()); err == nil || !strings.Contains(err.Error(), "must be UTF-8") {
		t.Errorf("ISO-8859-1 FHIR XML: err = %v", err)
	}
	jsonDoc := readFile(t, "Bundle-add5e7e2-0c0f-4a4a-bfff-f6f984fa7e3c.json")
	notUTF8 := bytes.Replace(jsonDoc, []byte("ønsker"), []byte("\xf8nsker"), 1)
	if _, err := Parse(notUTF8, xmlsafe.DefaultLimits()); err == nil || !strings.Contains(err.Error(), "UTF-8") {
		t.Errorf("latin-1 bytes in JSON: err = %v", err)
	}
	utf16 := append([]byte{0xFF, 0xFE}, jsonDoc...)
	if _, err := Parse(utf16, xmlsafe.DefaultLimits()); err == nil || !strings.Contains(err.Error(), "UTF-8") {
		t.Errorf("UTF-16 BOM: err = %v", err)
	}
	bom := append([]byte{0xEF, 0xBB, 0xBF}, jsonDoc...)
	if m := mustParse(t, bom); m.Topic != "Forspørgsel på seneste resultater" {
		t.Errorf("UTF-8 BOM JSON: topic %q", m.Topic)
	}
}

func TestHostileInput(t *testing.T) {
	lim := xmlsafe.DefaultLimits()
	deep := strings.Repeat(`{"a":[`, 5000) + strings.Repeat(`]}`, 5000)
	if _, err := Parse([]byte(`{"resourceType":"Bundle","x":`+deep+`}`), lim); err == nil {
		t.Error("deeply nested JSON accepted")
	} else if var_xe := (*xmlsafe.Error)(nil); !errors.As(err, &var_xe) || var_xe.Reason != xmlsafe.ReasonTooDeep {
		t.Errorf("deep JSON: err = %v, want xmlsafe too_deep", err)
	}
	small := xmlsafe.Limits{MaxBytes: 1 << 10}
	big := readFile(t, "Bundle-add5e7e2-0c0f-4a4a-bfff-f6f984fa7e3c.json")
	if _, err := Parse(big, small); err == nil || !strings.Contains(err.Error(), "more than the limit") {
		t.Errorf("oversize JSON: err = %v", err)
	}
	if _, err := Parse(readFile(t, "Bundle-add5e7e2-0c0f-4a4a-bfff-f6f984fa7e3c.xml"), small); err == nil {
		t.Error("oversize XML accepted")
	}
	xxe := `<?xml version="1.0"?><!DOCTYPE Bundle [<!ENTITY x SYSTEM "file:///etc/passwd">]><Bundle xmlns="http://hl7.org/fhir"><id value="&x;"/></Bundle>`
	if _, err := Parse([]byte(xxe), lim); err == nil {
		t.Error("DOCTYPE accepted")
	}
	for _, in := range []string{"", "   ", "hello", "[1,2]", `{"resourceType":"Patient"}`, `{"a":1}`, `{"resourceType":"Bundle"} {}`, `<Bundle/>`, `<Other xmlns="http://hl7.org/fhir"/>`} {
		if _, err := Parse([]byte(in), lim); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

// TestInvalid breaks one rule at a time and wants the exact element path.
func TestInvalid(t *testing.T) {
	base := strings.ReplaceAll(string(readFile(t, "Bundle-add5e7e2-0c0f-4a4a-bfff-f6f984fa7e3c.json")), "\r\n", "\n")
	patientEntry := extractEntry(t, base, "Patient")
	cases := []struct {
		name, path, msg string
		edit            func(string) string
	}{
		{"missing Patient", "Bundle.entry", "exactly one Patient (none found)", func(s string) string {
			return strings.Replace(s, patientEntry+",", "", 1)
		}},
		{"two Patients", "Bundle.entry[2].resource(Patient)", "exactly one Patient (found 2)", func(s string) string {
			second := strings.Replace(patientEntry, "733cef33-3626-422b-955d-d506aaa65fe1", "11111111-3626-422b-955d-d506aaa65fe1", -1)
			return strings.Replace(s, patientEntry+",", patientEntry+","+second+",", 1)
		}},
		{"Organization without SOR", "Bundle.entry[5].resource(Organization).identifier", "must include a SOR id", func(s string) string {
			return strings.Replace(s, `"system" : "urn:oid:1.2.208.176.1.1",
        "value" : "953741000016009"`, `"system" : "urn:oid:9.9",
        "value" : "953741000016009"`, 1)
		}},
		{"Organization without GLN", "Bundle.entry[6].resource(Organization).identifier", "must include a GLN", func(s string) string {
			return strings.Replace(s, `"system" : "https://www.gs1.org/gln",
        "value" : "5790000209354"`, `"system" : "urn:oid:9.9",
        "value" : "5790000209354"`, 1)
		}},
		{"category other without topic", "Bundle.entry[2].resource(Communication).topic.text", "must be present when the category is other", func(s string) string {
			s = strings.Replace(s, `"code" : "examination-results"`, `"code" : "other"`, 1)
			return strings.Replace(s, `"topic" : {
        "text" : "Forspørgsel på seneste resultater"
      },`, "", 1)
		}},
		{"unknown category", "Bundle.entry[2].resource(Communication).category[0].coding[0].code", "MedCom's category list", func(s string) string {
			return strings.Replace(s, `"code" : "examination-results"`, `"code" : "gossip"`, 1)
		}},
		{"priority without regarding-referral", "Bundle.entry[2].resource(Communication).priority", "only allowed when the category is regarding-referral", func(s string) string {
			return strings.Replace(s, `"status" : "unknown",`, `"status" : "unknown", "priority" : "asap",`, 1)
		}},
		{"bad CPR date", "Bundle.entry[1].resource(Patient).identifier[0].value", "must start with a real birth date DDMMYY", func(s string) string {
			return strings.Replace(s, `"value" : "2509479989"`, `"value" : "3102479989"`, 1)
		}},
		{"CPR not 10 digits", "Bundle.entry[1].resource(Patient).identifier[0].value", "must be 10 digits DDMMYYSSSS", func(s string) string {
			return strings.Replace(s, `"value" : "2509479989"`, `"value" : "250947-9989"`, 1)
		}},
		{"MessageHeader not first", "Bundle.entry[0].resource", "must be the MessageHeader (it is entry 1)", func(s string) string {
			h := extractEntry(t, s, "MessageHeader")
			s = strings.Replace(s, h+",", "", 1)
			return strings.Replace(s, patientEntry+",", patientEntry+","+h+",", 1)
		}},
		{"missing Bundle.id", "Bundle.id", "must be present", func(s string) string {
			return strings.Replace(s, `"id" : "add5e7e2-0c0f-4a4a-bfff-f6f984fa7e3c",`, "", 1)
		}},
		{"missing MessageHeader.id", "Bundle.entry[0].resource(MessageHeader).id", "must be present", func(s string) string {
			return strings.Replace(s, `"id" : "42cb9200-f421-4d08-8391-7d51a2503cb4",`, "", 1)
		}},
		{"unresolvable sender", "Bundle.entry[0].resource(MessageHeader).sender.reference", "must resolve to an Organization", func(s string) string {
			return strings.Replace(s, `"sender" : {
        "reference" : "Organization/b581c63c-181f-46f6-990d-b9942c576724"`, `"sender" : {
        "reference" : "Organization/nope"`, 1)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			doc := c.edit(base)
			if doc == base {
				t.Fatal("edit changed nothing")
			}
			m := mustParse(t, []byte(doc))
			err := Validate(m)
			if err == nil {
				t.Fatal("Validate accepted it")
			}
			var found bool
			for _, e := range unwrapAll(err) {
				var fe *FieldError
				if errors.As(e, &fe) && fe.Path == c.path && strings.Contains(fe.Msg, c.msg) {
					found = true
				}
				if strings.Contains(e.Error(), "2509479989") || strings.Contains(e.Error(), "3102479989") || strings.Contains(e.Error(), "Elmer") {
					t.Errorf("error echoes personal data: %v", e)
				}
			}
			if !found {
				t.Errorf("want %s: …%s…, got:\n%v", c.path, c.msg, err)
			}
		})
	}
}

func TestReplacementCPRAccepted(t *testing.T) {
	base := strings.ReplaceAll(string(readFile(t, "Bundle-add5e7e2-0c0f-4a4a-bfff-f6f984fa7e3c.json")), "\r\n", "\n")
	for _, sys := range []string{sysXeCPR, sysDeCPR, sysDeCPR + ".177"} {
		doc := strings.Replace(base, `"system" : "urn:oid:1.2.208.176.1.2",
        "value" : "2509479989"`, `"use" : "temp", "system" : "`+sys+`",
        "value" : "0703921VJ4"`, 1)
		m := mustParse(t, []byte(doc))
		if err := Validate(m); err != nil {
			t.Errorf("%s: %v", sys, err)
		}
		if m.Patient.ReplacementID != "0703921VJ4" || m.Patient.CPR != "" {
			t.Errorf("%s: patient %+v", sys, m.Patient)
		}
	}
	doc := strings.Replace(base, `"system" : "urn:oid:1.2.208.176.1.2",
        "value" : "2509479989"`, `"system" : "`+sysXeCPR+`",
        "value" : "3213921VJ4"`, 1)
	if err := Validate(mustParse(t, []byte(doc))); err == nil || !strings.Contains(err.Error(), "identifier[0].value: must start with a day and month") {
		t.Errorf("bad replacement date: %v", err)
	}
}

func TestCheckCPR(t *testing.T) {
	// MedCom's test persons (all fail modulus 11), 29 Feb 2000 (digit 7 = 4
	// puts YY 00 in 2000) and 1 Jan 1858 (digit 7 = 5, YY 58).
	ok := []string{"2509479989", "1509819996", "2512489996", "2902004000", "0101585000"}
	for _, v := range ok {
		if msg := checkCPR(v); msg != "" {
			t.Errorf("%s: %s", v, msg)
		}
	}
	for _, v := range []string{"2902000000" /* 1900 is no leap year */, "3204479989", "0013479989", "250947998", "25094799890", "25094799a9"} {
		if checkCPR(v) == "" {
			t.Errorf("%s accepted", v)
		}
	}
}

func TestAcknowledgementRules(t *testing.T) {
	base := strings.ReplaceAll(string(readFile(t, "Bundle-bc9535ef-ed94-4060-a928-7baddec7ee71.json")), "\r\n", "\n")
	doc := strings.Replace(base, `"code" : "fatal-error"`, `"code" : "maybe"`, 1)
	if err := Validate(mustParse(t, []byte(doc))); err == nil || !strings.Contains(err.Error(), "response.code: must be ok, transient-error or fatal-error") {
		t.Errorf("bad code: %v", err)
	}
}

func extractEntry(t *testing.T, doc, typ string) string {
	t.Helper()
	i := strings.Index(doc, `"resourceType" : "`+typ+`"`)
	if i < 0 {
		t.Fatalf("no %s", typ)
	}
	start := strings.LastIndex(doc[:i], "{\n    \"fullUrl\"")
	depth := 0
	for j := start; j < len(doc); j++ {
		switch doc[j] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return doc[start : j+1]
			}
		}
	}
	t.Fatal("unbalanced")
	return ""
}

func unwrapAll(err error) []error {
	if u, ok := err.(interface{ Unwrap() []error }); ok {
		return u.Unwrap()
	}
	return []error{err}
}

// TestReferencesByFullURL reorders the entries and switches to urn:uuid
// fullUrls: parties and patient must still be found by reference.
func TestReferencesByFullURL(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal(readFile(t, "Bundle-add5e7e2-0c0f-4a4a-bfff-f6f984fa7e3c.json"), &doc); err != nil {
		t.Fatal(err)
	}
	entries := doc["entry"].([]any)
	slices.Reverse(entries[1:]) // MessageHeader stays first
	raw, _ := json.Marshal(doc)
	s := string(raw)
	for _, id := range []string{"487ac745-fd11-4879-9b59-c08c7d47260e", "b581c63c-181f-46f6-990d-b9942c576724", "733cef33-3626-422b-955d-d506aaa65fe1"} {
		s = strings.ReplaceAll(s, `https://medcomfhir.dk/ig/carecommunication/Organization/`+id, "urn:uuid:"+id)
		s = strings.ReplaceAll(s, `https://medcomfhir.dk/ig/carecommunication/Patient/`+id, "urn:uuid:"+id)
		s = strings.ReplaceAll(s, `"Organization/`+id+`"`, `"urn:uuid:`+id+`"`)
		s = strings.ReplaceAll(s, `"Patient/`+id+`"`, `"urn:uuid:`+id+`"`)
	}
	m := mustParse(t, []byte(s))
	if err := Validate(m); err != nil {
		t.Fatal(err)
	}
	if m.Sender.SOR != herlevHjerte || m.Receiver.SOR != herlevPleje || m.Patient.CPR != "2509479989" {
		t.Errorf("sender %s receiver %s", m.Sender.SOR, m.Receiver.SOR)
	}
}

// TestModifierExtensions: an unknown extension is ignored, as FHIR allows;
// an unknown modifier extension may change what its element means (e.g.
// mark a text as retracted), so the message is refused naming it, in
// either encoding and at any depth.
func TestModifierExtensions(t *testing.T) {
	js := strings.ReplaceAll(string(readFile(t, "Bundle-add5e7e2-0c0f-4a4a-bfff-f6f984fa7e3c.json")), "\r\n", "\n")
	xs := string(readFile(t, "Bundle-add5e7e2-0c0f-4a4a-bfff-f6f984fa7e3c.xml"))
	const comm = "Bundle.entry[2].resource(Communication)"
	cases := []struct {
		name, doc, path string // path "" means valid
	}{
		{"unknown extension (JSON)", strings.Replace(js, `"status" : "unknown",`,
			`"extension" : [{"url" : "http://example.org/x", "valueString" : "x"}], "status" : "unknown",`, 1), ""},
		{"modifier extension on the Communication (JSON)", strings.Replace(js, `"status" : "unknown",`,
			`"modifierExtension" : [{"url" : "http://example.org/retracted", "valueBoolean" : true}], "status" : "unknown",`, 1),
			comm + ".modifierExtension[0]"},
		{"modifier extension on a payload (JSON)", strings.Replace(js, `"contentString" :`,
			`"modifierExtension" : [{"url" : "http://example.org/retracted", "valueBoolean" : true}], "contentString" :`, 1),
			comm + ".payload[0].modifierExtension[0]"},
		{"modifier extension on an entry (JSON)", strings.Replace(js, `"fullUrl" : "https://medcomfhir.dk/ig/carecommunication/Patient/`,
			`"modifierExtension" : [{"url" : "http://example.org/retracted", "valueBoolean" : true}], "fullUrl" : "https://medcomfhir.dk/ig/carecommunication/Patient/`, 1),
			"Bundle.entry[1].modifierExtension[0]"},
		{"modifier extension on the Communication (XML)", strings.Replace(xs, `<status value="unknown"/>`,
			`<modifierExtension url="http://example.org/retracted"><valueBoolean value="true"/></modifierExtension><status value="unknown"/>`, 1),
			comm + ".modifierExtension"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.doc == js || c.doc == xs {
				t.Fatal("edit changed nothing")
			}
			err := Validate(mustParse(t, []byte(c.doc)))
			if c.path == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var found bool
			for _, e := range unwrapAll(err) {
				var fe *FieldError
				if errors.As(e, &fe) && fe.Path == c.path && strings.Contains(fe.Msg, "unknown modifier extension http://example.org/retracted") {
					found = true
				}
			}
			if !found {
				t.Errorf("want %s: unknown modifier extension, got: %v", c.path, err)
			}
		})
	}
}

// TestDuplicateJSONNames: a name twice in one JSON object (RFC 8259 leaves
// its meaning open: readers take the first, the last or refuse) makes the
// message read one way here and perhaps another in the receiving system.
// It is refused naming the element, and still read far enough that the
// sender can be sent a negative acknowledgement.
func TestDuplicateJSONNames(t *testing.T) {
	js := strings.ReplaceAll(string(readFile(t, "Bundle-add5e7e2-0c0f-4a4a-bfff-f6f984fa7e3c.json")), "\r\n", "\n")
	doc := strings.Replace(js, `"status" : "unknown",`, `"status" : "unknown", "status" : "completed",`, 1)
	if doc == js {
		t.Fatal("edit changed nothing")
	}
	m := mustParse(t, []byte(doc))
	if m.HeaderID != "42cb9200-f421-4d08-8391-7d51a2503cb4" || m.Sender.GLN == "" {
		t.Errorf("header %q sender %+v: not read far enough to answer the sender", m.HeaderID, m.Sender)
	}
	err := Validate(m)
	var found bool
	for _, e := range unwrapAll(err) {
		var fe *FieldError
		if errors.As(e, &fe) && fe.Path == "Bundle.entry[2].resource.status" && strings.Contains(fe.Msg, "appears twice") {
			found = true
		}
	}
	if !found {
		t.Errorf("want Bundle.entry[2].resource.status: appears twice, got: %v", err)
	}
}

// A CareCommunication names one receiver, the primary (no cc). One that
// names two was acknowledged ok and read as addressed to the primary
// only; it gets a fatal-error naming the element.
func TestTwoDestinationsAreRefused(t *testing.T) {
	var b map[string]any
	if err := json.Unmarshal(readFile(t, "Bundle-R-Tek-K-dublicate-5de12884-eae7-4fd3-ba4a-d8b56be4baff.json"), &b); err != nil {
		t.Fatal(err)
	}
	h := b["entry"].([]any)[0].(map[string]any)["resource"].(map[string]any)
	d := h["destination"].([]any)
	h["destination"] = append(d, d[0])
	data, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Parse(data, xmlsafe.DefaultLimits())
	if err == nil {
		err = Validate(m)
	}
	if err == nil || !strings.Contains(err.Error(), "Bundle.entry[0].resource(MessageHeader).destination: must name exactly one receiver, the primary (found 2)") {
		t.Fatalf("two destinations: %v", err)
	}
}
