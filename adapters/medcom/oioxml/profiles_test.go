package oioxml

import (
	"bytes"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/samhub/samhub/adapters/medcom/xmlsafe"
	"github.com/samhub/samhub/pipeline/letter"
)

// TestReceiveWhatTheXSDAllows: letters MedCom's XSD accepts are read, and
// what they say reaches the hub's letter. Each fixture is checked against the
// XSD first, so the test cannot pass on a letter the XSD refuses.
func TestReceiveWhatTheXSDAllows(t *testing.T) {
	t.Run("every optional element", func(t *testing.T) {
		b := read(t, "samhub/letter-all-optional.xml")
		xmllint(t, b)
		m, _ := mustParse(t, "samhub/letter-all-optional.xml")
		ce := m.Letters[0]
		eq(t, "texts", len(ce.Texts), 10)
		eq(t, "references", len(ce.References), 10)
		eq(t, "fixed font", ce.Texts[4], "Målinger\nvægt  38 kg\npuls 88")
		eq(t, "right/center", ce.Texts[3], "HøjrestilletCentreret")
		eq(t, "sender phone", ce.Sender.Telephone, "+45 12 34 56 78")
		eq(t, "occupancy", ce.Patient.Occupancy, "Skoleelev")
		l := m.Letter(ce, Input{Source: "medcom", Data: b, Received: received})
		if err := l.Validate(); err != nil {
			t.Fatal(err)
		}
		eq(t, "patient", *l.Patient, letter.Patient{CPR: "2509479989", GivenName: "Bruno Test", FamilyName: "Elmer", Address: "Testpark Allé 48, Hillerød, 3400 Hillerød"})
		eq(t, "receiver unit", l.Receivers[0].Unit, "Børn og Unge / Samrådet")
		eq(t, "sender unit", l.Sender.Unit, "Børnekonsultationen / Læge Søren Læge")
		eq(t, "priority", l.Priority, "routine")
		eq(t, "thread", l.ThreadID, "0f6c1e2d-3a4b-5c6d-7e8f-90a1b2c3d4e5")
		var links, bins int
		for _, a := range l.Attachments {
			switch a.ContentType {
			case "text/uri-list":
				links++
			case MissingObjectType:
				bins++ // the XBIN01 letter carrying them is not there
			}
		}
		eq(t, "links", links, 4)
		eq(t, "binary objects", bins, 3)
		eq(t, "SUP flags", l.Meta["medcom_sup_2"]+l.Meta["medcom_sup_5"]+l.Meta["medcom_sup_8"], "truetruetrue")
	})
	t.Run("replacement CPR and a surname of white space", func(t *testing.T) {
		b := read(t, "samhub/letter-alternative-id-no-name.xml")
		xmllint(t, b)
		m, _ := mustParse(t, "samhub/letter-alternative-id-no-name.xml")
		l := m.Letter(m.Letters[0], Input{Source: "medcom", Data: b, Received: received})
		if err := l.Validate(); err != nil {
			t.Fatal(err)
		}
		// XDIS91 names no issuer for AlternativeIdentifier: no system.
		eq(t, "patient", *l.Patient, letter.Patient{ReplacementID: "1206550VK9"})
		eq(t, "receiver", l.Receivers[0].GLN, "5790000000029")
	})
	t.Run("an empty surname element is still refused", func(t *testing.T) {
		b := strings.Replace(string(read(t, "samhub/letter-utf8.xml")), "<PersonSurnameName>Elmer</PersonSurnameName>", "<PersonSurnameName></PersonSurnameName>", 1)
		_, err := Parse([]byte(b), xmlsafe.DefaultLimits())
		if err == nil || !strings.Contains(err.Error(), "Patient/PersonSurnameName: must be 1 to 70 characters, found 0") {
			t.Errorf("err = %v", err)
		}
	})
}

// TestBuildChildWithoutFullName: XDIS91 can carry a replacement CPR, and
// must refuse (for good, naming the field) a child whose family name is
// unknown rather than invent one.
func TestBuildChildWithoutFullName(t *testing.T) {
	l := hubLetter()
	l.Patient = &letter.Patient{ReplacementID: "1206550VK9", ReplacementSystem: "urn:oid:1.2.208.176.1.6.1.3.177", FamilyName: "Hansen", GivenName: "Peter"}
	out, err := BuildLetter(l, LetterOptions{Now: buildNow})
	if err != nil {
		t.Fatal(err)
	}
	xmllint(t, out)
	m, err := Parse(out, xmlsafe.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "alternative id", m.Letters[0].Patient.AlternativeID, "1206550VK9")

	for _, c := range []struct {
		p          letter.Patient
		path, want string
	}{
		{letter.Patient{ReplacementID: "0703921VJ5", GivenName: "Peter"}, "Emessage/ClinicalEmail[1]/Patient/PersonSurnameName", "family name is unknown and XDIS91 requires one"},
		{letter.Patient{CPR: "2509479989", FamilyName: "  "}, "Emessage/ClinicalEmail[1]/Patient/PersonSurnameName", "family name is unknown"},
		{letter.Patient{ReplacementID: "6703920013X", FamilyName: "Hansen"}, "Emessage/ClinicalEmail[1]/Patient/AlternativeIdentifier", "exactly 10 characters; the child's has 11"},
	} {
		l := hubLetter()
		p := c.p
		l.Patient = &p
		_, err := BuildLetter(l, LetterOptions{Now: buildNow})
		var fe *FieldError
		found := false
		for _, e := range unwrap(err) {
			if errors.As(e, &fe) && fe.Path == c.path && strings.Contains(fe.Msg, c.want) {
				found = true
			}
		}
		if !found {
			t.Errorf("%+v: want %s: …%s…, got %v", c.p, c.path, c.want, err)
		}
		if err != nil && (strings.Contains(err.Error(), "0703921VJ5") || strings.Contains(err.Error(), "Peter")) {
			t.Errorf("error echoes personal data: %v", err)
		}
	}
}

func unwrap(err error) []error {
	if u, ok := err.(interface{ Unwrap() []error }); ok {
		return u.Unwrap()
	}
	if err == nil {
		return nil
	}
	return []error{err}
}

// TestCommentsAndProcessingInstructionsInsideValues: XML allows comments and
// processing instructions inside an element's text; the value is all of its
// text. etree's Text stopped at the first processing instruction, so the
// letter id below read "LTR0000" and an XBIN01 object cut on a base64
// quantum boundary lost its tail without an error.
func TestCommentsAndProcessingInstructionsInsideValues(t *testing.T) {
	s := string(read(t, "samhub/letter-utf8.xml"))
	s = strings.Replace(s, "<Identifier>LTR00000000001</Identifier>", "<Identifier><!-- id -->LTR0000<?samhub x?>0000001</Identifier>", 1)
	s = strings.Replace(s, "<PersonSurnameName>Elmer</PersonSurnameName>", "<PersonSurnameName>El<?pi?>mer</PersonSurnameName>", 1)
	m, err := Parse([]byte(s), xmlsafe.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "letter id", m.Letters[0].Identifier, "LTR00000000001")
	eq(t, "surname", m.Letters[0].Patient.Surname, "Elmer")

	bin := read(t, "samhub/xbin01.xml")
	want := embeddedObject(t, bin)
	loc := regexp.MustCompile(`<Object_Base64Encoded>\s*`).FindIndex(bin)
	cut := loc[1] + 76 // after the first line of 76 characters: 19 whole quanta
	b := append(append(append([]byte{}, bin[:cut]...), "<?samhub x?>"...), bin[cut:]...)
	m, err = Parse(b, xmlsafe.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Binaries[0].Objects[0].Data; !bytes.Equal(got, want) {
		t.Errorf("object is %d bytes, want %d", len(got), len(want))
	}
}
