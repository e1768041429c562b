package oioxml

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/samhub/samhub/adapters/medcom/xmlsafe"
	"github.com/samhub/samhub/pipeline/letter"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/medcom/golden")

const testdata = "../../../testdata/medcom"

func read(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testdata, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustParse(t testing.TB, rel string) (*Emessage, []byte) {
	t.Helper()
	b := read(t, rel)
	m, err := Parse(b, xmlsafe.DefaultLimits())
	if err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	return m, b
}

var received = time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)

func eq[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func TestDIS91_1(t *testing.T) {
	m, b := mustParse(t, "oioxml/DIS91_1.xml")
	eq(t, "namespace", m.Namespace, NS2006)
	eq(t, "charset", m.Charset, "windows-1252")
	eq(t, "envelope id", m.Envelope.Identifier, "KuvertNr012234")
	eq(t, "ack code", m.Envelope.AcknowledgementCode, AckNotWanted)
	eq(t, "sent", m.Envelope.Sent.Format(time.RFC3339), "1998-12-13T12:10:00+01:00")
	if len(m.Letters) != 1 || len(m.Receipts) != 0 {
		t.Fatalf("letters %d receipts %d", len(m.Letters), len(m.Receipts))
	}
	ce := m.Letters[0]
	eq(t, "letter id", ce.Identifier, "BrevNr00129")
	eq(t, "version", ce.VersionCode, VersionXD9134L)
	eq(t, "status", ce.StatusCode, "nytbrev")
	eq(t, "authorisation", ce.Authorisation.Format("2006-01-02 15:04"), "1998-12-13 12:02")
	eq(t, "sender ean", ce.Sender.EAN, "5790000120400")
	eq(t, "sender code", ce.Sender.IdentifierCode, "sygehusafdelingsnummer")
	eq(t, "sender org", ce.Sender.OrganisationName, "HILLERØD SYGEHUS")
	eq(t, "sender speciality", ce.Sender.MedicalSpecialityCode, "kirurgi_sygehus")
	eq(t, "receiver ydernummer", ce.Receiver.Identifier, "291714")
	eq(t, "receiver street", ce.Receiver.StreetName, "Vandværksvej 99")
	eq(t, "patient surname", ce.Patient.Surname, "Mosebryggersen")
	eq(t, "patient status", ce.Patient.EpisodeOfCareStatusCode, "inaktiv")
	eq(t, "priority", ce.Priority, "høj_prioritet")
	eq(t, "subject", ce.Subject, "Forundersøgelse")
	if len(ce.Texts) != 1 || !strings.HasPrefix(ce.Texts[0], "Afdeling A har modtaget en henvisning på ovenstående patient.\nForinden") || !strings.HasSuffix(ce.Texts[0], "15.01.1999\n") {
		t.Errorf("text %q", ce.Texts)
	}

	l := m.Letter(ce, Input{Source: "medcom", Data: b, Filename: "DIS91_1.xml", Received: received})
	if err := l.Validate(); err != nil {
		t.Fatal(err)
	}
	eq(t, "letter.ID", l.ID, "5790000120400#BrevNr00129")
	eq(t, "letter.Kind", l.Kind, letter.KindNote) // from a hospital department, not a practice
	eq(t, "letter.Format", l.Format, "xdis91")
	eq(t, "letter.Sender.Role", l.Sender.Role, "hospital")
	eq(t, "letter.Sender.Unit", l.Sender.Unit, "KIRURGISK AFD. A")
	eq(t, "letter.Receivers[0].Role", l.Receivers[0].Role, "gp")
	eq(t, "letter.Priority", l.Priority, "asap")
	eq(t, "letter.Patient.Address", l.Patient.Address, "Grusgraven 3, 3 tv, 3400 Hillerød")
	eq(t, "letter.Original.Charset", l.Original.Charset, "windows-1252")
	if !bytes.Equal(l.Original.Data, b) || l.Original.SHA256 != letter.Digest(b) {
		t.Error("original bytes changed")
	}
	eq(t, "letter.Sent", l.Sent.Format("15:04"), "12:02")
}

func TestDIS91_2(t *testing.T) {
	m, b := mustParse(t, "oioxml/DIS91_2.xml")
	ce := m.Letters[0]
	eq(t, "episode", ce.EpisodeOfCareIdentifier, "65528acda12c4d85b7016f4b12eec2bc")
	eq(t, "sender code", ce.Sender.IdentifierCode, "ydernummer")
	eq(t, "speciality", ce.Sender.MedicalSpecialityCode, "fysioterapi")
	eq(t, "patient given", ce.Patient.GivenName, "Nancy Ann")
	eq(t, "priority", ce.Priority, "rutine")
	eq(t, "subject", ce.Subject, "Undtagelsesredegørelse - fortsat individuel behandling")
	l := m.Letter(ce, Input{Source: "medcom", Data: b, Received: received})
	eq(t, "ID", l.ID, "5790000121526#12152000000203")
	eq(t, "Kind", l.Kind, letter.KindReferral) // nytbrev from a practice (ydernummer)
	eq(t, "ThreadID", l.ThreadID, "65528acd-a12c-4d85-b701-6f4b12eec2bc")
	eq(t, "Priority", l.Priority, "routine")
	eq(t, "Meta sender id", l.Meta["medcom_sender_id"], "ydernummer:200106")
	eq(t, "Meta episode", l.Meta["medcom_episode_of_care_id"], "65528acda12c4d85b7016f4b12eec2bc")
}

func TestReceipts(t *testing.T) {
	for _, tc := range []struct {
		file, typ, version, refuse string
		letters                    []string
	}{
		{"oioxml/CTL01_1.xml", NegativeVansReceipt, VersionXCTL01, RefuseUnknownLocation, []string{"1111FRE01095", "1111MAN01095"}},
		{"oioxml/CTL02_1.xml", NegativeReceipt, VersionXCTL02, RefuseVersion, []string{"1111MAN01095"}},
		{"oioxml/CTL03_1.xml", PositiveReceipt, VersionXCTL03, "", []string{"1111FRE01095"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			m, b := mustParse(t, tc.file)
			eq(t, "namespace", m.Namespace, NS2005)
			if len(m.Receipts) != 1 || len(m.Letters) != 0 {
				t.Fatalf("receipts %d letters %d", len(m.Receipts), len(m.Letters))
			}
			rc := m.Receipts[0]
			eq(t, "type", rc.Type, tc.typ)
			eq(t, "version", rc.VersionCode, tc.version)
			eq(t, "id", rc.Identifier, "BrevNr5678")
			eq(t, "receiver", rc.ReceiverEAN, "5790000181872")
			eq(t, "original envelope", rc.OriginalEnvelopeIdentifier, "MEDREF01095")
			eq(t, "original sender", rc.OriginalSenderEAN, "5790000181872")
			eq(t, "original receiver", rc.OriginalReceiverEAN, "5790000120420")
			eq(t, "positive", rc.Positive(), tc.typ == PositiveReceipt)
			if len(rc.OriginalLetters) != len(tc.letters) {
				t.Fatalf("original letters %+v", rc.OriginalLetters)
			}
			ls := m.ToLetters(Input{Source: "medcom", Data: b, Received: received})
			if len(ls) != len(tc.letters) {
				t.Fatalf("%d letters", len(ls))
			}
			for i, l := range ls {
				eq(t, "kind", l.Kind, letter.KindAcknowledgement)
				eq(t, "in reply to", l.InReplyTo, "5790000181872#"+tc.letters[i])
				eq(t, "original letter", rc.OriginalLetters[i].Identifier, tc.letters[i])
				code := rc.OriginalLetters[i].RefuseCode
				if code == "" {
					code = rc.RefuseCode
				}
				eq(t, "refuse code", code, tc.refuse)
				eq(t, "meta refuse", l.Meta["medcom_refuse_code"], tc.refuse)
				if err := l.Validate(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
	m, _ := mustParse(t, "oioxml/CTL02_1.xml")
	if !strings.Contains(m.Receipts[0].OriginalLetters[0].RefuseText, "sygehushenvisninger. \nMed venlig hilsen\n") {
		t.Errorf("refuse text %q", m.Receipts[0].OriginalLetters[0].RefuseText)
	}
}

func TestCharsetsAndMultipleLetters(t *testing.T) {
	for _, f := range []string{"samhub/letter-utf8.xml", "samhub/letter-iso-8859-1.xml", "samhub/letter-windows-1252.xml"} {
		m, _ := mustParse(t, f)
		ce := m.Letters[0]
		eq(t, f+" org", ce.Sender.OrganisationName, "Lægehuset Ærø")
		eq(t, f+" receiver", ce.Receiver.OrganisationName, "Samrådet Børn og Unge")
		if !strings.Contains(ce.Subject, "æøå ÆØÅ") || !strings.Contains(ce.Texts[0], "Lægehuset på Ærø") {
			t.Errorf("%s: æøå lost: %q", f, ce.Subject)
		}
		eq(t, f+" patient", ce.Patient.CPR, "2509479989")
	}
	m, b := mustParse(t, "samhub/envelope-two-letters.xml")
	if len(m.Letters) != 2 {
		t.Fatalf("%d letters", len(m.Letters))
	}
	ls := m.ToLetters(Input{Source: "medcom", Data: b, Received: received})
	eq(t, "ids", ls[0].ID+" "+ls[1].ID, "5790000000005#LTR00000000020 5790000000005#LTR00000000021")
	eq(t, "replacement id", ls[1].Patient.ReplacementID, "0703921VJ4")
	eq(t, "no cpr", ls[1].Patient.CPR, "")
	eq(t, "rettetbrev is a note", ls[1].Kind, letter.KindNote)
	eq(t, "index", ls[1].Meta["medcom_letter_index"], "2")
	eq(t, "text newlines", strings.Count(ls[0].Text, "\n"), 4)
}

func TestValidationErrors(t *testing.T) {
	_, err := Parse(read(t, "samhub/invalid-letter.xml"), xmlsafe.DefaultLimits())
	want := []string{
		"Emessage/ClinicalEmail[1]/Letter/Identifier: must be 1 to 14 characters, found 18",
		"Emessage/ClinicalEmail[1]/Letter/StatusCode: must be one of nytbrev, rettetbrev",
		"Emessage/ClinicalEmail[1]/Sender/OrganisationName: required element missing",
		"Emessage/ClinicalEmail[1]/Patient/CivilRegistrationNumber: must start with a real birth date DDMMYY",
	}
	for _, w := range want {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in %v", w, err)
		}
	}
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatal("not a FieldError")
	}

	good := string(read(t, "samhub/letter-utf8.xml"))
	for _, tc := range []struct{ from, to, want string }{
		{"<CivilRegistrationNumber>2509479989<", "<CivilRegistrationNumber>250947998<", "Patient/CivilRegistrationNumber: must be 10 digits"},
		{"<CivilRegistrationNumber>2509479989<", "<CivilRegistrationNumber>29020x9989<", "must be 10 digits"},
		{"<CivilRegistrationNumber>2509479989</CivilRegistrationNumber>", "<AlternativeIdentifier>0703921VJ</AlternativeIdentifier>", "Patient/AlternativeIdentifier: must be exactly 10 characters, found 9"},
		{"<Time>09:15</Time>", "<Time>24:15</Time>", "Emessage/Envelope/Sent/Time: must be a time hh:mm"},
		{"<Date>2026-03-04</Date><Time>09:15", "<Date>2026-02-30</Date><Time>09:15", "Emessage/Envelope/Sent/Date: must be a date"},
		{"pluspositivkvitt", "positivkvitt", "Emessage/Envelope/AcknowledgementCode: must be one of minuspositivkvitt, pluspositivkvitt"},
		{"<VersionCode>XD9134L", "<VersionCode>XD9133L", "Letter/VersionCode: must be XD9134L in namespace"},
		{"<IdentifierCode>ydernummer", "<IdentifierCode>cvr", "Sender/IdentifierCode: must be one of sygehusafdelingsnummer"},
		{"<EANIdentifier>5790000000012</EANIdentifier>", "", "Receiver/EANIdentifier: required element missing (found Identifier instead)"},
		{"almen_medicin", "heksedoktor", "Sender/MedicalSpecialityCode: must be one of MedCom's 72 codes"},
		{"<Priority>høj_prioritet", "<Priority>haster", "AdditionalInformation/Priority: must be one of rutine, høj_prioritet"},
		{"Henvisning til samråd", strings.Repeat("x", 71), "AdditionalInformation/Subject: must be 1 to 70 characters, found 81"},
		{"<Bold>haster</Bold>", "<Blink>haster</Blink>", "ClinicalInformation[1]/Text01/Blink: element not allowed in formatted text"},
		{"<Bold>haster</Bold>", "<Bold><Italic>x</Italic></Bold>", "Text01/Bold/Italic: element not allowed"},
		{"<EpisodeOfCareStatusCode>inaktiv", "<EpisodeOfCareStatusCode>glad", "Patient/EpisodeOfCareStatusCode: must be one of inaktiv"},
		{"<PersonSurnameName>Elmer</PersonSurnameName>", "", "Patient/PersonSurnameName: required element missing"},
		{"</Patient>", "<Extra/></Patient>", "Patient/Extra: element not allowed here"},
		{"<TypeCode>XDIS91", "<TypeCode>XDIS90", "Letter/TypeCode: must be one of XDIS91"},
		{"<Letter>", "<Letter>oops", "Emessage/ClinicalEmail[1]/Letter: must contain only elements"},
	} {
		in := strings.Replace(good, tc.from, tc.to, 1)
		if in == good {
			t.Fatalf("mutation %q did not apply", tc.from)
		}
		_, err := Parse([]byte(in), xmlsafe.DefaultLimits())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q→%q: got %v, want %q", tc.from, tc.to, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "2509479989") {
			t.Errorf("error quotes the CPR number: %v", err)
		}
	}
}

func TestUnsupported(t *testing.T) {
	for _, in := range []string{
		`<Emessage xmlns="http://rep.oio.dk/medcom.dk/xml/schemas/2019/03/31/"><Envelope/></Emessage>`,
		`<Bundle xmlns="http://hl7.org/fhir"/>`,
		strings.Replace(string(read(t, "samhub/letter-utf8.xml")), "ClinicalEmail>", "DischargeLetter>", 2),
		strings.Replace(string(read(t, "samhub/letter-utf8.xml")), "<VersionCode>XD9134L", "<VersionCode>XD9135L", 1),
	} {
		_, err := Parse([]byte(in), xmlsafe.DefaultLimits())
		if !IsUnsupported(err) {
			t.Errorf("%.60q: %v is not ErrUnsupported", in, err)
		}
	}
}

func TestCheckCPR(t *testing.T) {
	for cpr, ok := range map[string]bool{
		"2509479989": true, "1509819996": true, "2512489996": true, // MedCom test persons (fail modulus 11)
		"0000000000": true,  // the XSD's "unknown"
		"2902000000": false, // digit 7 = 0 → 1900, which was not a leap year
		"2902004000": true,  // digit 7 = 4, YY 00 → 2000, a leap year
		"2902014000": false, "3102479989": false, "0013479989": false, "3204479989": false,
		"250947998": false, "25094799890": false, "250947-998": false, "0703921VJ4": false,
	} {
		msg := CheckCPR(cpr)
		if (msg == "") != ok {
			t.Errorf("%s: %q, want ok=%v", cpr, msg, ok)
		}
	}
}

// XD9133L: the 2005/08/07 namespace, same letter without AdditionalInformation.
func TestXD9133L(t *testing.T) {
	good := strings.NewReplacer(NS2006, NS2005, "<VersionCode>XD9134L", "<VersionCode>XD9133L").Replace(string(read(t, "samhub/letter-utf8.xml")))
	_, err := Parse([]byte(good), xmlsafe.DefaultLimits())
	if err == nil || !strings.Contains(err.Error(), "Emessage/ClinicalEmail[1]/AdditionalInformation: element not allowed here") {
		t.Fatalf("AdditionalInformation in XD9133L: %v", err)
	}
	i, j := strings.Index(good, "    <AdditionalInformation>"), strings.Index(good, "    <ClinicalInformation>")
	m, err := Parse([]byte(good[:i]+good[j:]), xmlsafe.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "version", m.Letters[0].VersionCode, VersionXD9133L)
	eq(t, "namespace", m.Namespace, NS2005)
	eq(t, "sender", m.Letters[0].Sender.OrganisationName, "Lægehuset Ærø")
	_, err = Parse([]byte(strings.Replace(good[:i]+good[j:], "XD9133L", "XD9134L", 1)), xmlsafe.DefaultLimits())
	if err == nil || !strings.Contains(err.Error(), "Letter/VersionCode: must be XD9133L in namespace") {
		t.Errorf("XD9134L in 2005 namespace: %v", err)
	}
}
