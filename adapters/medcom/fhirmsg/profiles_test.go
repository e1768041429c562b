package fhirmsg

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/samhub/samhub/adapters/medcom/xmlsafe"
	"github.com/samhub/samhub/pipeline/letter"
)

// The tests here hold the readers and builders to what MedCom's profiles
// allow (dk-core / medcom-core Patient, medcom-careCommunication), using the
// fixtures in testdata/medcom/fhir/samhub written for the purpose.

// wrapVANS puts a message in a VANSEnvelope as a VANS client delivers it.
func wrapVANS(t *testing.T, data []byte) []byte {
	t.Helper()
	enc := EncodingJSON
	if bytes.HasPrefix(bytes.TrimSpace(data), []byte("<")) {
		enc = EncodingXML
	}
	env, err := BuildVANSEnvelope(data, Envelope{
		EnvelopeID: "5c0f8a8e-2b8e-4a53-9d4c-3f6f0b1e7a21", MessageID: "0b1d6c1e-3c55-4f0e-9a57-5b1c9a4e2f60",
		FromGLN: "5790001987244", ToGLN: "5790001353308", Encoding: enc, Name: "MCM:FDIS91#other", Version: "5.0", Now: fixedNow(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// TestReceiveWhatTheProfilesAllow reads each fixture bare and in a
// VANSEnvelope, and checks what reaches the hub's letter.
func TestReceiveWhatTheProfilesAllow(t *testing.T) {
	type want struct {
		patient     letter.Patient
		nameAbsent  string
		kind        letter.Kind
		priority    string
		episode     string
		senderUnit  string
		recvUnit    string
		recvName    string
		text        []string // in this order
		attachments []string // name|content type|data (links) or name|content type|sha256
	}
	cases := map[string]want{
		// MedCom's receive test protocol: a child whose family name is
		// unknown and who has an X-eCPR.
		"samhub/unknown-family-xecpr.json": {
			patient:    letter.Patient{ReplacementID: "0703921VJ5", ReplacementSystem: sysXeCPR, GivenName: "Peter"},
			nameAbsent: "unknown", kind: letter.KindNote, recvName: "Samråd for Børn og Unge, Æblehøj Kommune",
			text: []string{"hans efternavn og CPR-nummer kendes endnu ikke"},
		},
		// Receive test G's shape: a regional D-eCPR, a "temp" name, no
		// names known at all; the sender is a CareTeam; the receiving
		// organisation has no name; the patient's telecom has no value.
		"samhub/unknown-name-decpr.xml": {
			patient:    letter.Patient{ReplacementID: "1206550VK9", ReplacementSystem: sysDeCPR + ".177"},
			nameAbsent: "unknown", kind: letter.KindNote, senderUnit: "Akutmodtagelsen",
			text: []string{"Vi kender hverken hans navn eller CPR-nummer"},
		},
		// Every optional element: CPR and X-eCPR both (receive test CPR-1),
		// priority, topic, episode of care, a specific sender
		// (PractitionerRole) and recipient (CareTeam), a PDF and a link,
		// a second text segment written earlier whose author's telecom has
		// no value.
		"samhub/all-optional.json": {
			patient: letter.Patient{CPR: "2509479989", ReplacementID: "0703921VJ4", ReplacementSystem: sysXeCPR,
				GivenName: "Bruno Test", FamilyName: "Elmer", Address: "Testpark Allé 48, 3400 Hillerød"},
			kind: letter.KindReferral, priority: "asap", episode: "0f6c1e2d-3a4b-5c6d-7e8f-90a1b2c3d4e5",
			recvUnit: "Samrådsteamet", recvName: "Samråd for Børn og Unge, Æblehøj Kommune",
			text: []string{"Bruno på 11 år har været ked af det", "Opfølgning: forældrene har givet samtykke"},
			attachments: []string{
				"Notat fra lægen|application/pdf|" + letter.Digest([]byte("%PDF-1.4\n% Samhub test attachment: not a real document\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n")),
				"Sundhed.dk|text/uri-list|https://www.sundhed.dk/",
			},
		},
	}
	for name, w := range cases {
		for _, wrapped := range []bool{false, true} {
			label := name
			if wrapped {
				label += "+vans"
			}
			t.Run(label, func(t *testing.T) {
				data := readFile(t, name)
				if wrapped {
					data = wrapVANS(t, data)
				}
				m := mustParse(t, data)
				if err := Validate(m); err != nil {
					t.Fatalf("Validate refused a letter the profiles allow:\n%v", err)
				}
				l := m.Letter("medcom-in", data, MIMEXML)
				if err := l.Validate(); err != nil {
					t.Fatalf("letter.Validate: %v", err)
				}
				if l.Patient == nil || *l.Patient != w.patient {
					t.Errorf("patient\n got %+v\nwant %+v", l.Patient, w.patient)
				}
				if l.Meta[MetaPatientNameAbsent] != w.nameAbsent {
					t.Errorf("Meta[MetaPatientNameAbsent] = %q, want %q", l.Meta[MetaPatientNameAbsent], w.nameAbsent)
				}
				if l.Kind != w.kind || l.Priority != w.priority || l.Meta[MetaEpisodeOfCareID] != w.episode {
					t.Errorf("kind %s priority %q episode %q", l.Kind, l.Priority, l.Meta[MetaEpisodeOfCareID])
				}
				if l.Sender.Unit != w.senderUnit || l.Receivers[0].Unit != w.recvUnit || l.Receivers[0].Name != w.recvName {
					t.Errorf("sender unit %q, receiver unit %q name %q", l.Sender.Unit, l.Receivers[0].Unit, l.Receivers[0].Name)
				}
				at := -1
				for _, s := range w.text {
					i := strings.Index(l.Text, s)
					if i <= at {
						t.Errorf("text lacks %q or has it out of order:\n%s", s, l.Text)
					}
					at = i
				}
				var got []string
				for _, a := range l.Attachments {
					v := a.SHA256
					if a.ContentType == contentTypeLink {
						v = string(a.Data)
					}
					got = append(got, a.Name+"|"+a.ContentType+"|"+v)
				}
				if strings.Join(got, "\n") != strings.Join(w.attachments, "\n") {
					t.Errorf("attachments\n got %q\nwant %q", got, w.attachments)
				}
				// The acknowledgement can be built and read back.
				ack, err := BuildAcknowledgement(m, AckOK, nil, m.Receiver, fixedNow())
				if err != nil {
					t.Fatal(err)
				}
				if a := mustParse(t, ack); a.Response == nil || a.Response.Identifier != m.HeaderID || a.Sender != m.Receiver {
					t.Errorf("acknowledgement %+v from %+v", a.Response, a.Sender)
				}
			})
		}
	}
}

func patientOf(t *testing.T, doc string) (*Message, error) {
	t.Helper()
	m, err := Parse([]byte(doc), xmlsafe.DefaultLimits())
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return m, Validate(m)
}

// kPatient swaps the Patient resource of MedCom's receive example K.
func kPatient(t *testing.T, patient string) string {
	t.Helper()
	base := strings.ReplaceAll(string(readFile(t, "Bundle-R-Tek-K-dublicate-5de12884-eae7-4fd3-ba4a-d8b56be4baff.json")), "\r\n", "\n")
	i := strings.Index(base, `"identifier" : [{`+"\n"+`        "system" : "urn:oid:1.2.208.176.1.2"`)
	j := strings.Index(base, `"telecom" : [`)
	if i < 0 || j < i {
		t.Fatal("patient of example K not found")
	}
	return base[:i] + patient + ", " + base[j:]
}

func TestPatientNamesAndIdentifiers(t *testing.T) {
	const cpr = `"identifier" : [{"system" : "urn:oid:1.2.208.176.1.2", "value" : "2509479989"}]`
	dar := func(code string) string {
		return `{"extension" : [{"url" : "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode" : "` + code + `"}]}`
	}
	ok := []struct {
		name, patient string
		want          letter.Patient
		absent        string
	}{
		{"given aligned with _given (null where none)", cpr + `, "name" : [{"use" : "official", "family" : "Elmer", "given" : ["Bruno", null], "_given" : [null, ` + dar("unknown") + `]}]`,
			letter.Patient{CPR: "2509479989", GivenName: "Bruno", FamilyName: "Elmer"}, ""},
		{"_given only", cpr + `, "name" : [{"family" : "Elmer", "_given" : [` + dar("masked") + `]}]`,
			letter.Patient{CPR: "2509479989", FamilyName: "Elmer"}, ""},
		{"_family beside no family, code masked", cpr + `, "name" : [{"use" : "official", "_family" : ` + dar("masked") + `, "given" : ["Bruno", "Test"]}]`,
			letter.Patient{CPR: "2509479989", GivenName: "Bruno Test"}, "masked"},
		{"the whole name absent", cpr + `, "name" : [` + dar("asked-declined") + `]`,
			letter.Patient{CPR: "2509479989"}, "asked-declined"},
		{"official name preferred over usual", cpr + `, "name" : [{"use" : "usual", "given" : ["B"]}, {"use" : "official", "family" : "Elmer"}]`,
			letter.Patient{CPR: "2509479989", FamilyName: "Elmer"}, ""},
		{"CPR after an X-eCPR (receive test CPR-1)", `"identifier" : [{"use" : "temp", "system" : "urn:oid:1.2.208.176.1.6.1.1", "value" : "0703921VJ4"}, {"system" : "urn:oid:1.2.208.176.1.2", "value" : "2509479989"}], "name" : [{"family" : "Elmer"}]`,
			letter.Patient{CPR: "2509479989", ReplacementID: "0703921VJ4", ReplacementSystem: sysXeCPR, FamilyName: "Elmer"}, ""},
		{"D-eCPR then X-eCPR (receive test CPR-3): the national one", `"identifier" : [{"system" : "urn:oid:1.2.208.176.1.6.1.3", "value" : "1206550VK9"}, {"system" : "urn:oid:1.2.208.176.1.6.1.1", "value" : "0703921VJ5"}], "name" : [{"family" : "Hansen", "given" : ["Peter"]}]`,
			letter.Patient{ReplacementID: "0703921VJ5", ReplacementSystem: sysXeCPR, GivenName: "Peter", FamilyName: "Hansen"}, ""},
		{"every D-eCPR region", `"identifier" : [{"system" : "urn:oid:1.2.208.176.1.6.1.3.187", "value" : "1206550VK9"}], "name" : [{"family" : "Hansen"}]`,
			letter.Patient{ReplacementID: "1206550VK9", ReplacementSystem: sysDeCPR + ".187", FamilyName: "Hansen"}, ""},
		{"MedCom core 2.x E-CPR, the CPR office's form (day + 60, digits)", `"identifier" : [{"use" : "temp", "system" : "urn:oid:1.2.208.176.1.6", "value" : "6703920013"}], "name" : [{"_family" : ` + dar("unknown") + `}]`,
			letter.Patient{ReplacementID: "6703920013", ReplacementSystem: sysECPR}, "unknown"},
		{"a region's eCPR OID not yet in DK-core's value set", `"identifier" : [{"system" : "urn:oid:1.2.208.176.1.6.1.3.999", "value" : "12065X"}], "name" : [{"family" : "Hansen"}]`,
			letter.Patient{ReplacementID: "12065X", ReplacementSystem: sysDeCPR + ".999", FamilyName: "Hansen"}, ""},
		{"an identifier of another system beside the CPR is ignored", `"identifier" : [{"system" : "http://rn.dk", "value" : "0706830VJ9"}, {"system" : "urn:oid:1.2.208.176.1.2", "value" : "2509479989"}], "name" : [{"family" : "Elmer"}]`,
			letter.Patient{CPR: "2509479989", FamilyName: "Elmer"}, ""},
	}
	for _, c := range ok {
		t.Run(c.name, func(t *testing.T) {
			m, err := patientOf(t, kPatient(t, c.patient))
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			p := *m.Patient
			p.Address = ""
			if p != c.want {
				t.Errorf("patient\n got %+v\nwant %+v", p, c.want)
			}
			if m.nameAbsent != c.absent {
				t.Errorf("name absent %q, want %q", m.nameAbsent, c.absent)
			}
		})
	}

	const pat = "Bundle.entry[1].resource(Patient)"
	bad := []struct{ name, patient, path, msg string }{
		{"family missing without a reason", cpr + `, "name" : [{"use" : "official", "given" : ["Bruno"]}]`,
			pat + ".name[0].family", "or a data-absent-reason extension"},
		{"no name", cpr, pat + ".name", "must hold the patient's name"},
		{"only an identifier of an unknown system", `"identifier" : [{"system" : "http://rn.dk", "value" : "0706830VJ9"}], "name" : [{"family" : "Ukendt"}]`,
			pat + ".identifier", "replacement CPR (X-eCPR"},
		{"an X-eCPR that is not one", `"identifier" : [{"system" : "urn:oid:1.2.208.176.1.6.1.1", "value" : "3213921VJ4"}], "name" : [{"family" : "Hansen"}]`,
			pat + ".identifier[0].value", "must start with a day and month"},
		{"a bad X-eCPR beside a good CPR", `"identifier" : [{"system" : "urn:oid:1.2.208.176.1.2", "value" : "2509479989"}, {"system" : "urn:oid:1.2.208.176.1.6.1.1", "value" : "07039"}], "name" : [{"family" : "Elmer"}]`,
			pat + ".identifier[1].value", "10 characters"},
		{"an E-CPR longer than the profiles allow", `"identifier" : [{"system" : "urn:oid:1.2.208.176.1.6", "value" : "67039200131"}], "name" : [{"family" : "Hansen"}]`,
			pat + ".identifier[0].value", "1 to 10 characters"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			_, err := patientOf(t, kPatient(t, c.patient))
			if err == nil {
				t.Fatal("accepted")
			}
			var found bool
			for _, e := range unwrapAll(err) {
				var fe *FieldError
				if errors.As(e, &fe) && fe.Path == c.path && strings.Contains(fe.Msg, c.msg) {
					found = true
				}
				for _, pd := range []string{"2509479989", "0706830VJ9", "3213921VJ4", "Bruno", "Elmer"} {
					if strings.Contains(e.Error(), pd) {
						t.Errorf("error echoes personal data: %v", e)
					}
				}
			}
			if !found {
				t.Errorf("want %s: …%s…, got:\n%v", c.path, c.msg, err)
			}
		})
	}
}

// TestBuildChildWithoutFullName: the hub writes what the profiles allow for
// a child known by a replacement CPR and without a family name, and reads
// its own letter back the same.
func TestBuildChildWithoutFullName(t *testing.T) {
	children := map[string]letter.Patient{
		"unknown-family": {ReplacementID: "0703921VJ5", ReplacementSystem: sysXeCPR, GivenName: "Peter"},
		"no-names":       {ReplacementID: "1206550VK9", ReplacementSystem: sysDeCPR + ".177"},
	}
	for name, child := range children {
		for _, enc := range []string{EncodingXML, EncodingJSON} {
			t.Run(name+"."+enc, func(t *testing.T) {
				l := referral()
				p := child
				l.Patient = &p
				l.Attachments = append(l.Attachments, letter.NewAttachment("Sundhed.dk", contentTypeLink, []byte("https://www.sundhed.dk/")))
				data, _, err := BuildCareCommunication(l, BuildOptions{
					Encoding: enc, Self: council, To: gp, Mode: ModeNew, Now: fixedNow(),
					HeaderID: "2f0c3c55-8f0e-4c1e-9b5b-6f6a8e2d4c11", BundleID: "7d3e1f20-5a4b-4c3d-8e2f-1a0b9c8d7e6f",
				})
				if err != nil {
					t.Fatal(err)
				}
				if name == "unknown-family" {
					golden(t, "carecommunication-unknown-family."+enc, data)
				}
				raw := string(data)
				for _, s := range []string{extAbsent, p.ReplacementSystem, "https://www.sundhed.dk/"} {
					if !strings.Contains(raw, s) {
						t.Errorf("output lacks %q", s)
					}
				}
				if enc == EncodingJSON && !strings.Contains(raw, `"_family"`) {
					t.Error(`JSON output lacks "_family"`)
				}
				if strings.Contains(raw, `"family": ""`) || strings.Contains(raw, `<family value=""`) {
					t.Error("an empty family name was written instead of a data-absent-reason")
				}
				m := mustParse(t, data)
				if err := Validate(m); err != nil {
					t.Fatalf("the hub's own letter does not validate: %v", err)
				}
				if *m.Patient != p || m.nameAbsent != "unknown" {
					t.Errorf("patient round trip\n got %+v (absent %q)\nwant %+v", m.Patient, m.nameAbsent, p)
				}
				if a := m.Attachments[len(m.Attachments)-1]; a.ContentType != contentTypeLink || string(a.Data) != "https://www.sundhed.dk/" {
					t.Errorf("link round trip: %+v", a)
				}
				// The text segment names its author's contact even when the
				// number is unknown (MedCom: authorContact 1..1).
				if got := strings.Count(raw, "medcom-core-contact-extension"); got != 1 {
					t.Errorf("%d author contacts, want 1 (the text segment's)", got)
				}
			})
		}
	}

	bad := []struct {
		p    letter.Patient
		want string
	}{
		{letter.Patient{ReplacementID: "3213921VJ4", ReplacementSystem: sysXeCPR}, "letter.patient.replacementId: must start with a day and month"},
		{letter.Patient{ReplacementID: "0706830VJ9", ReplacementSystem: "http://rn.dk"}, "letter.patient.replacementId: must be a CPR number"},
		{letter.Patient{GivenName: "Peter"}, "letter.patient: must have a CPR or a replacement CPR"},
	}
	for _, c := range bad {
		l := referral()
		p := c.p
		l.Patient = &p
		_, _, err := BuildCareCommunication(l, BuildOptions{Encoding: EncodingJSON, Self: council, To: gp, Mode: ModeNew, Now: fixedNow()})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err = %v, want %q", c.p, err, c.want)
		}
	}
}

// TestBuildReplacementWithoutSystem: a replacement CPR from an XDIS91
// letter (AlternativeIdentifier names no issuer) is written under the
// system its shape shows, or the eCPR arc, and reads back valid.
func TestBuildReplacementWithoutSystem(t *testing.T) {
	for v, want := range map[string]string{
		"0703921VJ5": sysXeCPR, // 7th 1: X-eCPR
		"1206550VK9": sysDeCPR, // 7th 0: D-eCPR
		"6703920013": sysECPR,  // the CPR office's form: day + 60, digits
		"12065X":     sysECPR,
	} {
		l := referral()
		l.Patient = &letter.Patient{ReplacementID: v, FamilyName: "Hansen"}
		data, _, err := BuildCareCommunication(l, BuildOptions{Encoding: EncodingJSON, Self: council, To: gp, Mode: ModeNew, Now: fixedNow()})
		if err != nil {
			t.Errorf("%s: %v", v, err)
			continue
		}
		m := mustParse(t, data)
		if err := Validate(m); err != nil {
			t.Errorf("%s: %v", v, err)
		}
		if m.Patient.ReplacementID != v || m.Patient.ReplacementSystem != want {
			t.Errorf("%s: written as %s %s, want system %s", v, m.Patient.ReplacementSystem, m.Patient.ReplacementID, want)
		}
	}
}
