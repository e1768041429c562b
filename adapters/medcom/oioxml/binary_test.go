package oioxml

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/samhub/samhub/adapters/medcom/xmlsafe"
	"github.com/samhub/samhub/pipeline/letter"
)

// embeddedObject decodes the fixture's object by a route of its own (a
// regexp and the standard decoder), not Parse's.
func embeddedObject(t *testing.T, data []byte) []byte {
	t.Helper()
	m := regexp.MustCompile(`(?s)<Object_Base64Encoded>(.*?)</Object_Base64Encoded>`).FindSubmatch(data)
	if m == nil {
		t.Fatal("fixture has no Object_Base64Encoded")
	}
	b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(string(m[1])), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBinaryLetter(t *testing.T) {
	m, data := mustParse(t, "samhub/xbin01.xml")
	if len(m.Binaries) != 1 || len(m.Letters) != 0 || m.Namespace != NS2005 {
		t.Fatalf("binaries %d letters %d ns %s", len(m.Binaries), len(m.Letters), m.Namespace)
	}
	b := m.Binaries[0]
	eq(t, "identifier", b.Identifier, "BIN00000000102")
	eq(t, "version", b.VersionCode, VersionXBIN01)
	eq(t, "sender", b.Sender.EAN, "5790000000005")
	eq(t, "receiver", b.Receiver.EAN, "5790000000012")
	eq(t, "cpr", b.Patient.CPR, "2509479989")
	if len(b.Objects) != 1 {
		t.Fatalf("objects %d", len(b.Objects))
	}
	o := b.Objects[0]
	eq(t, "object id", o.Identifier, "BIN00000000101")
	eq(t, "extension", o.ExtensionCode, "pdf")
	want := embeddedObject(t, data)
	if !bytes.Equal(o.Data, want) || !bytes.HasPrefix(o.Data, []byte("%PDF-")) || int64(len(o.Data)) != o.Size {
		t.Errorf("object %d bytes (size says %d), want the fixture's %d", len(o.Data), o.Size, len(want))
	}

	// Alone, it is a note carrying its file, never a referral.
	ls := m.ToLetters(Input{Source: "medcom", Data: data, Filename: "x.xml", Received: received})
	if len(ls) != 1 {
		t.Fatalf("letters %d", len(ls))
	}
	l := ls[0]
	eq(t, "id", l.ID, "5790000000005#BIN00000000102")
	eq(t, "kind", l.Kind, letter.KindNote)
	eq(t, "format", l.Format, BinaryFormat)
	eq(t, "patient", l.Patient.CPR, "2509479989")
	if err := l.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(l.Attachments) != 1 || !bytes.Equal(l.Attachments[0].Data, want) || l.Attachments[0].ContentType != "application/pdf" {
		t.Fatalf("attachments %+v", l.Attachments)
	}
	eq(t, "object meta", l.Meta[MetaObjectPrefix+"1"], "BIN00000000101")
	if strings.Contains(l.Attachments[0].Name, "2509479989") {
		t.Errorf("attachment name %q quotes the CPR number", l.Attachments[0].Name)
	}

	// Its receipt names it with its own version code.
	out, err := BuildReceipt(m, ReceiptOptions{Type: PositiveReceipt, Letters: []*ClinicalEmail{b.ReceiptView()}, Now: received})
	if err != nil {
		t.Fatal(err)
	}
	rm, err := Parse(out, xmlsafe.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	rc := rm.Receipts[0]
	if rc.SenderEAN != "5790000000012" || rc.ReceiverEAN != "5790000000005" || rc.OriginalEnvelopeIdentifier != "ENV00000000102" ||
		len(rc.OriginalLetters) != 1 || rc.OriginalLetters[0].Identifier != "BIN00000000102" || rc.OriginalLetters[0].VersionCode != VersionXBIN01 {
		t.Errorf("receipt %+v %+v", rc, rc.OriginalLetters)
	}
}

// A letter's BIN reference takes the object's bytes when Input.Object has
// them, and is a note naming the missing file when not.
func TestBINReferenceTakesTheObject(t *testing.T) {
	m, data := mustParse(t, "samhub/letter-with-bin.xml")
	pdf := []byte("%PDF-1.4 not really")
	plain := m.ToLetters(Input{Source: "medcom", Data: data, Received: received})[0]
	if a := plain.Attachments[0]; a.ContentType != MissingObjectType || a.Name != "PPR-vurdering.pdf (mangler).txt" ||
		!strings.Contains(string(a.Data), "BIN00000000101") || a.Size != int64(len(a.Data)) {
		t.Errorf("without the object: %+v", a)
	}
	var asked string
	joined := m.ToLetters(Input{Source: "medcom", Data: data, Received: received, Object: func(ce *ClinicalEmail, ref *BinObject) []byte {
		asked = ce.Identifier + "/" + ref.Identifier
		return pdf
	}})[0]
	eq(t, "asked for", asked, "LTR00000000101/BIN00000000101")
	if a := joined.Attachments[0]; !bytes.Equal(a.Data, pdf) || a.Name != "PPR-vurdering.pdf" || a.ContentType != "application/pdf" || a.Size != int64(len(pdf)) {
		t.Errorf("with the object: %+v", a)
	}
	eq(t, "bin meta", joined.Meta[MetaBINPrefix+"1"], "BIN00000000101")
}

func TestBinaryLetterErrors(t *testing.T) {
	good := string(read(t, "samhub/xbin01.xml"))
	obj := regexp.MustCompile(`(?s)<Object_Base64Encoded>.*?</Object_Base64Encoded>`)
	for _, tc := range []struct {
		name, in, want string
	}{
		{"bad base64", obj.ReplaceAllString(good, "<Object_Base64Encoded>not*base64</Object_Base64Encoded>"),
			"Emessage/BinaryLetter[1]/BinaryObject[1]/Object_Base64Encoded: must be base64"},
		{"empty object", obj.ReplaceAllString(good, "<Object_Base64Encoded></Object_Base64Encoded>"),
			"BinaryObject[1]/Object_Base64Encoded: must not be empty"},
		{"size larger than the object", strings.Replace(good, "<OriginalObjectSize>402<", "<OriginalObjectSize>403<", 1),
			"Emessage/BinaryLetter[1]/BinaryObject[1]/OriginalObjectSize: declares 403 bytes, but Object_Base64Encoded holds 402"},
		{"object cut short", obj.ReplaceAllStringFunc(good, func(el string) string {
			return strings.Replace(el, "T0YK<", "<", 1) // the last quantum: "OF\n"
		}), "BinaryObject[1]/OriginalObjectSize: declares 402 bytes, but Object_Base64Encoded holds 399"},
		{"no object", regexp.MustCompile(`(?s)<BinaryObject>.*</BinaryObject>`).ReplaceAllString(good, ""),
			"Emessage/BinaryLetter[1]/BinaryObject: required element missing"},
		{"type code", strings.Replace(good, "<TypeCode>XBIN01", "<TypeCode>XDIS91", 1),
			"Emessage/BinaryLetter[1]/Letter/TypeCode: must be one of XBIN01"},
		{"object code", strings.Replace(good, "<ObjectCode>tekstfil", "<ObjectCode>film", 1),
			"BinaryObject[1]/ObjectCode: must be one of"},
		{"no patient", regexp.MustCompile(`(?s)<Patient>.*</Patient>`).ReplaceAllString(good, ""),
			"Emessage/BinaryLetter[1]/Patient: required element missing"},
		{"cpr", strings.Replace(good, "<CivilRegistrationNumber>2509479989", "<CivilRegistrationNumber>3102479989", 1),
			"BinaryLetter[1]/Patient/CivilRegistrationNumber"},
	} {
		if tc.in == good {
			t.Fatalf("%s: mutation did not apply", tc.name)
		}
		_, err := Parse([]byte(tc.in), xmlsafe.DefaultLimits())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "2509479989") {
			t.Errorf("%s: error quotes the CPR number: %v", tc.name, err)
		}
	}
	v := strings.Replace(good, "<VersionCode>XB0130X", "<VersionCode>XB0230X", 1)
	if _, err := Parse([]byte(v), xmlsafe.DefaultLimits()); !IsUnsupported(err) {
		t.Errorf("another XBIN01 version: %v, want ErrUnsupported", err)
	}
	// A file about no patient (system information) is valid.
	sys := regexp.MustCompile(`(?s)<Patient>.*</Patient>`).ReplaceAllString(good, "<SystemInformation>true</SystemInformation>")
	m, err := Parse([]byte(sys), xmlsafe.DefaultLimits())
	if err != nil || !m.Binaries[0].SystemInformation {
		t.Fatalf("system information: %v", err)
	}
	if l := m.ToLetters(Input{Source: "medcom", Received: received})[0]; l.Patient != nil {
		t.Errorf("system information letter names a patient: %+v", l.Patient)
	}
}

// The 1 MB cap on one text run, which guards XDIS91 parsing, does not
// refuse an XBIN01 file's object.
func TestLargeBinaryObject(t *testing.T) {
	good := string(read(t, "samhub/xbin01.xml"))
	big := bytes.Repeat([]byte{0xA5}, 3<<20)
	in := regexp.MustCompile(`(?s)<Object_Base64Encoded>.*?</Object_Base64Encoded>`).ReplaceAllString(good,
		"<Object_Base64Encoded>"+base64.StdEncoding.EncodeToString(big)+"</Object_Base64Encoded>")
	in = strings.Replace(in, "<OriginalObjectSize>402<", fmt.Sprintf("<OriginalObjectSize>%d<", len(big)), 1)
	m, err := Parse([]byte(in), xmlsafe.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m.Binaries[0].Objects[0].Data, big) {
		t.Error("3 MB object not read whole")
	}
	// The cap still holds for a letter.
	letterIn := strings.Replace(string(read(t, "samhub/letter-utf8.xml")), "</Text01>", strings.Repeat("x", 2<<20)+"</Text01>", 1)
	if _, err := Parse([]byte(letterIn), xmlsafe.DefaultLimits()); err == nil {
		t.Error("a 2 MB text run in an XDIS91 letter was read")
	}
}

// A letter with files is written with BIN references (valid by MedCom's
// XSD) and an XBIN01 letter carrying the files; without Files it is
// refused rather than sent without them.
func TestBuildLetterWithFiles(t *testing.T) {
	l := hubLetter()
	pdf := []byte("%PDF-1.4 indstilling")
	l.Attachments = append(l.Attachments, letter.NewAttachment("Indstilling", "application/pdf", pdf))
	_, err := BuildLetter(l, LetterOptions{Now: buildNow})
	if err == nil || !strings.Contains(err.Error(), "carries a file (application/pdf)") {
		t.Fatalf("without Files: %v", err)
	}
	opt := LetterOptions{Now: buildNow, LetterID: "LTR00000000777", Files: true}
	out, err := BuildLetter(l, opt)
	if err != nil {
		t.Fatal(err)
	}
	xmllint(t, out)
	m, err := Parse(out, xmlsafe.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	refs := m.Letters[0].References
	last := refs[len(refs)-1]
	if last.BIN == nil || last.BIN.Identifier != ObjectID("LTR00000000777", len(l.Attachments)) || last.BIN.ExtensionCode != "pdf" || last.BIN.Size != int64(len(pdf)) {
		t.Fatalf("BIN reference %+v", last)
	}
	opt.EnvelopeID = "ENVBIN"
	bin, err := BuildBinaryLetter(l, opt)
	if err != nil {
		t.Fatal(err)
	}
	bm, err := Parse(bin, xmlsafe.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	b := bm.Binaries[0]
	if b.Identifier != BinaryLetterID("LTR00000000777") || len(b.Objects) != 1 || b.Objects[0].Identifier != last.BIN.Identifier || !bytes.Equal(b.Objects[0].Data, pdf) ||
		b.Sender.EAN != m.Letters[0].Sender.EAN || b.Receiver.EAN != m.Letters[0].Receiver.EAN || b.Patient.CPR != m.Letters[0].Patient.CPR {
		t.Errorf("XBIN01 letter %+v", b)
	}

	// XDIS91 names at most ten references: files take theirs first, and a
	// link left without one ends the text; nothing is dropped. Eleven
	// files are refused.
	for len(l.Attachments) < 11 {
		l.Attachments = append([]letter.Attachment{letter.NewAttachment("Link", "text/uri-list", []byte("https://samhub.example.invalid/x"))}, l.Attachments...)
	}
	out, err = BuildLetter(l, opt)
	if err != nil {
		t.Fatal(err)
	}
	xmllint(t, out)
	ce := mustParseBytes(t, out).Letters[0]
	if len(ce.References) != 10 || ce.References[9].BIN == nil || !strings.HasSuffix(strings.Join(ce.Texts, "\n\n"), "\n\nLinks:\nMødeindkaldelse: https://samhub.example.invalid/m/1") {
		t.Errorf("eleven attachments: %d references, text ending %q", len(ce.References), ce.Texts[len(ce.Texts)-1])
	}
	l.Attachments = nil
	for len(l.Attachments) < 11 {
		l.Attachments = append(l.Attachments, letter.NewAttachment("Scan.pdf", "application/pdf", pdf))
	}
	if _, err := BuildLetter(l, opt); err == nil || !strings.Contains(err.Error(), "at most 10 references; the letter has 11 files") {
		t.Errorf("eleven files: %v", err)
	}
}

// Links XDIS91 has no Reference for, because ten are taken or the address
// is longer than Reference/URL's 350 characters, are written at the end
// of the text; they were dropped, or refused by the XSD check.
func TestLinksBeyondTheReferencesEndTheText(t *testing.T) {
	l := hubLetter()
	long := "https://samhub.example.invalid/" + strings.Repeat("a", 400)
	l.Attachments = []letter.Attachment{letter.NewAttachment("Langt link", "text/uri-list", []byte(long))}
	for i := 1; i <= 11; i++ {
		l.Attachments = append(l.Attachments, letter.NewAttachment(fmt.Sprintf("Link %d", i), "text/uri-list", []byte(fmt.Sprintf("https://samhub.example.invalid/%d", i))))
	}
	out, err := BuildLetter(l, LetterOptions{Now: buildNow})
	if err != nil {
		t.Fatal(err)
	}
	xmllint(t, out)
	back := mustParseBytes(t, out).Letter(mustParseBytes(t, out).Letters[0], Input{Source: "medcom", Data: out})
	refs := 0
	for _, a := range back.Attachments {
		if a.ContentType == "text/uri-list" {
			refs++
		}
	}
	if refs != 10 {
		t.Errorf("%d links as references, want 10", refs)
	}
	for _, a := range l.Attachments {
		url := string(a.Data)
		found := strings.Contains(back.Text, a.Name+": "+url)
		for _, b := range back.Attachments {
			found = found || string(b.Data) == url
		}
		if !found {
			t.Errorf("%s is lost", a.Name)
		}
	}
	if !strings.HasPrefix(back.Text, l.Text+"\n\nLinks:\n") {
		t.Errorf("text %q", back.Text)
	}
}

func TestFileName(t *testing.T) {
	for _, c := range [][3]string{
		{"PPR-vurdering", "pdf", "PPR-vurdering.pdf"},
		{"PPR-vurdering.PDF", "pdf", "PPR-vurdering.PDF"},
		{"Rapport.docx", "bin", "Rapport.docx"},
		{"Rapport", "bin", "Rapport.bin"},
		{"Scanning v. 2", "jpeg", "Scanning v. 2.jpeg"},
	} {
		if got := fileName(c[0], c[1]); got != c[2] {
			t.Errorf("fileName(%q, %q) = %q, want %q", c[0], c[1], got, c[2])
		}
	}
}

func TestDecodeBase64(t *testing.T) {
	want := []byte("%PDF-1.4 æøå\x00\xff")
	enc := base64.StdEncoding.EncodeToString(want)
	for _, in := range []string{
		enc,
		"\n        " + enc[:8] + "\n        " + enc[8:] + "\n      ",
		enc[:4] + "\r\n\t" + enc[4:12] + " " + enc[12:],
	} {
		got, err := decodeBase64(in)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%q: %q %v", in, got, err)
		}
	}
	for _, in := range []string{"not*base64", enc[:len(enc)-1], "QQ==QQ=="} {
		if _, err := decodeBase64(in); err == nil {
			t.Errorf("%q decoded", in)
		}
	}
	if got, err := decodeBase64("  \n "); err != nil || len(got) != 0 {
		t.Errorf("white space only: %q %v", got, err)
	}
}

func mustParseBytes(t testing.TB, b []byte) *Emessage {
	t.Helper()
	m, err := Parse(b, xmlsafe.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	return m
}
