package fhirmsg

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/samhub/samhub/adapters/medcom/xmlsafe"
	"github.com/samhub/samhub/pipeline/letter"
)

// TestVendorLetters reads the CareCommunications that vendors' systems
// wrote for MedCom's verification (testdata/medcom/fhir/verified): letters
// not written to the examples' pattern, such as a MessageHeader id that is
// no UUID (EPIC), a patient with both an X-eCPR and a D-eCPR (Netcompany)
// and pretty-printed text with line breaks. Each must be read with its
// parties, patient and new text, become a valid letter, and be answered
// with a positive acknowledgement that names it.
func TestVendorLetters(t *testing.T) {
	type want struct {
		header, senderGLN, senderSOR, receiverGLN, receiverSOR string
		category, previous, replacement, text                  string
		kind                                                   letter.Kind
	}
	cases := map[string]want{
		"EPIC_Sundhedsplatformen.xml": {header: "fOUMdac4Bl1cxOnpRZe--ZIhyaDHdYy.aGcfqCccQFLc4", senderGLN: "5790002770630", senderSOR: "1599941000016005",
			receiverGLN: "5790002619861", receiverSOR: "1257551000016006", category: "extended-care-responsibility",
			previous: "30ad8ea6-bf87-4bdd-8b29-53109aec1217", text: "svar 3.3.5.4", kind: letter.KindReply},
		"Nasure_EDI-Portalen.xml": {header: "f9d5c54e-ff09-4499-b3b6-8a129f12babd", senderGLN: "5790002510960", senderSOR: "1069641000016003",
			receiverGLN: "5790002408496", receiverSOR: "1017421000016003", category: "training", text: "Patienten bruger krykker.\n", kind: letter.KindNote},
		"NetCompany_Modulus.xml": {header: "221ae874-805b-491d-98e1-2db4c060f34c", senderGLN: "5790002760891", senderSOR: "1494071000016007",
			receiverGLN: "5790000120314", receiverSOR: "325371000016006", category: "examination-results",
			previous: "73893146-ff6f-4455-99c3-9126c74d16a7", replacement: "0703921VJ5", text: "Med venlig hilsen:\nNetcompany", kind: letter.KindReply},
		"Systematic_ColumnaCis.xml": {header: "3de0bd53-d6c1-492e-b699-0c6554005f84", senderGLN: "5790000180141", senderSOR: "271321000016001",
			receiverGLN: "5790000187508", receiverSOR: "927021000016008", category: "other", text: "3.3.1.11 send protokol", kind: letter.KindNote},
		"Systematic_ColumnaCura.json": {header: "826a4243-4e74-447c-b003-0563bd4f7670", senderGLN: "5790000123117", senderSOR: "937961000016000",
			receiverGLN: "5790002015748", receiverSOR: "554771000016008", category: "other", text: "test", kind: letter.KindNote},
		"EG_Clinea.json": {header: "0299fc10-b86a-4fcf-bb41-ba3940027497", senderGLN: "5790000120048", senderSOR: "323041000016001",
			receiverGLN: "5790000173174", receiverSOR: "307411000016009", category: "other", text: "Care communication 3.3.1.1", kind: letter.KindNote},
	}
	files, _ := filepath.Glob(filepath.Join(testdata, "verified", "*"))
	if len(files) != len(cases)+1 {
		t.Fatalf("testdata/medcom/fhir/verified holds %d files, the table %d and the 4.0 letter: add the new ones", len(files), len(cases))
	}
	for name, w := range cases {
		t.Run(name, func(t *testing.T) {
			data := readFile(t, filepath.Join("verified", name))
			m := mustParse(t, data)
			if err := Validate(m); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			for _, c := range [][3]string{
				{"HeaderID", m.HeaderID, w.header}, {"Sender.GLN", m.Sender.GLN, w.senderGLN}, {"Sender.SOR", m.Sender.SOR, w.senderSOR},
				{"Receiver.GLN", m.Receiver.GLN, w.receiverGLN}, {"Receiver.SOR", m.Receiver.SOR, w.receiverSOR},
				{"Category", m.Category, w.category}, {"PreviousHeaderID", m.PreviousHeaderID, w.previous},
				{"Patient.ReplacementID", m.Patient.ReplacementID, w.replacement},
			} {
				if c[1] != c[2] {
					t.Errorf("%s = %q, want %q", c[0], c[1], c[2])
				}
			}
			if (m.Patient.CPR != "") == (w.replacement != "") {
				t.Errorf("the patient has a CPR number: %v, and a replacement id %q; want one of the two", m.Patient.CPR != "", m.Patient.ReplacementID)
			}
			if !strings.Contains(m.Text, w.text) {
				t.Errorf("the text (%d bytes) lacks %q", len(m.Text), w.text)
			}
			l := m.Letter("medcom-in", data, "application/fhir+"+m.Encoding)
			if l.Kind != w.kind || l.ID != w.header {
				t.Errorf("letter %s of kind %s, want %s of kind %s", l.ID, l.Kind, w.header, w.kind)
			}
			if err := l.Validate(); err != nil {
				t.Errorf("letter.Validate: %v", err)
			}
			ack, err := BuildAcknowledgement(m, AckOK, nil, m.Receiver, fixedNow())
			if err != nil {
				t.Fatalf("acknowledgement: %v", err)
			}
			a := mustParse(t, ack)
			if err := Validate(a); err != nil || a.Response == nil || a.Response.Identifier != w.header || a.Receiver.SOR != w.senderSOR {
				t.Errorf("the acknowledgement answers %+v to SOR %s (%v); want ok for %s to the sender %s", a.Response, a.Receiver.SOR, err, w.header, w.senderSOR)
			}
		})
	}
}

// A CareCommunication of the 4.0 profile (MedCom's mapping example,
// MessageHeader.definition …|4.0.0) is refused with the field named and
// what is expected, so the source answers it with a negative
// acknowledgement: the hub reads the 5.x profile only (see doc.go).
func TestCareCommunication40IsRefusedNamingTheDefinition(t *testing.T) {
	m, err := Parse(readFile(t, filepath.Join("verified", "v4-Flow3-CareCommunication_Ex_to_OIOXML.xml")), xmlsafe.DefaultLimits())
	if err == nil {
		err = Validate(m)
	}
	var fe *FieldError
	if !errors.As(err, &fe) || !strings.HasSuffix(fe.Path, "(MessageHeader).definition") || !strings.Contains(fe.Msg, "MedComCareCommunicationMessageDefinition|5.x") {
		t.Fatalf("got %v; want a field error naming MessageHeader.definition and the 5.x definition", err)
	}
}
