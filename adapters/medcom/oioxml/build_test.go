package oioxml

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/beevik/etree"

	"github.com/samhub/samhub/adapters/medcom/xmlsafe"
	"github.com/samhub/samhub/pipeline/letter"
)

var buildNow = time.Date(2026, 3, 4, 8, 30, 0, 0, time.UTC)

// hubLetter is a letter made in the hub (e.g. from the case system) to a GP.
func hubLetter() *letter.Letter {
	return &letter.Letter{
		ID:     "casesys:sag-4711:brev-3",
		Kind:   letter.KindReply,
		Source: "casesys",
		Sender: letter.Party{Role: "municipality", Name: "Samrådet for børn og unge i mistrivsel, Odense Kommune", GLN: "5790000000012", Municipality: "461", Unit: "Børn og Unge"},
		Receivers: []letter.Party{
			{Role: "gp", Name: "Lægehuset Ærø", GLN: "5790000000005"},
		},
		Patient:  &letter.Patient{CPR: "2509479989", GivenName: "Bruno Test", FamilyName: "Elmer"},
		Priority: "routine",
		Subject:  "Svar fra samrådet – møde på torsdag",
		Text:     "Kære læge\nSamrådet har behandlet henvisningen.\n\nVi foreslår et møde med familien. Skolen og PPR deltager.\n\nVenlig hilsen\nSamrådet",
		Attachments: []letter.Attachment{
			letter.NewAttachment("Mødeindkaldelse", "text/uri-list", []byte("https://samhub.example.invalid/m/1")),
		},
		Original: letter.Original{Data: []byte("{}"), ContentType: "application/json"},
	}
}

// xmllint validates the ClinicalEmail element of an Emessage against
// MedCom's ClinicalEmail.xsd (EMessage.xsd pulls in every 2006 letter type and
// is not in the copied set).
func xmllint(t *testing.T, emessage []byte) {
	t.Helper()
	if err := runXmllint(t, emessage); err != nil {
		t.Fatal(err)
	}
}

func runXmllint(t *testing.T, emessage []byte) error {
	t.Helper()
	bin, err := exec.LookPath("xmllint")
	if err != nil {
		// Never a skip: make test installs it (make test-tools).
		t.Fatal("xmllint not found: install libxml2-utils (make test-tools does, as root)")
	}
	doc, err := xmlsafe.Parse(emessage, xmlsafe.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	ce := doc.Root().SelectElement("ClinicalEmail").Copy()
	ce.CreateAttr("xmlns", NS2006)
	out := etree.NewDocumentWithRoot(ce)
	out.CreateProcInst("xml", `version="1.0" encoding="UTF-8"`)
	out.InsertChildAt(0, out.Child[len(out.Child)-1])
	s, err := out.WriteToString()
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "ce.xml")
	if err := os.WriteFile(f, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	xsd := filepath.Join(testdata, "oioxml/xsd-2006-07-01/ClinicalEmail.xsd")
	if msg, err := exec.Command(bin, "--noout", "--nonet", "--schema", xsd, f).CombinedOutput(); err != nil {
		return fmt.Errorf("xmllint: %v\n%s", err, msg)
	}
	return nil
}

// The XSD check must be able to fail: an input our own rules reject is
// rejected by xmllint too.
func TestXmllintRejectsInvalid(t *testing.T) {
	good := read(t, "samhub/letter-utf8.xml")
	if err := runXmllint(t, good); err != nil {
		t.Fatalf("fixture: %v", err)
	}
	for _, bad := range [][2]string{
		{"<StatusCode>nytbrev", "<StatusCode>gammelt"},
		{"<PersonSurnameName>Elmer</PersonSurnameName>", ""},
		{"<Priority>høj_prioritet", "<Priority>haster"},
	} {
		in := bytes.Replace(good, []byte(bad[0]), []byte(bad[1]), 1)
		if err := runXmllint(t, in); err == nil {
			t.Errorf("xmllint accepted %q", bad[1])
		}
		if _, err := Parse(in, xmlsafe.DefaultLimits()); err == nil {
			t.Errorf("Parse accepted %q", bad[1])
		}
	}
}

func TestBuiltLettersPassXSD(t *testing.T) {
	cases := map[string]func() ([]byte, error){
		"hub letter": func() ([]byte, error) { return BuildLetter(hubLetter(), LetterOptions{Now: buildNow}) },
		"replacement CPR": func() ([]byte, error) {
			l := hubLetter()
			l.Patient = &letter.Patient{ReplacementID: "0703921VJ4", FamilyName: "Berggren"}
			l.Subject, l.Priority = "", ""
			return BuildLetter(l, LetterOptions{Now: buildNow})
		},
	}
	for _, f := range []string{"oioxml/DIS91_1.xml", "oioxml/DIS91_2.xml", "samhub/letter-windows-1252.xml", "samhub/letter-10k.xml", "samhub/envelope-two-letters.xml"} {
		m, b := mustParse(t, f)
		for _, l := range m.ToLetters(Input{Source: "medcom", Data: b, Received: received}) {
			cases[f+" "+l.ID] = func() ([]byte, error) { return BuildLetter(l, LetterOptions{Now: buildNow}) }
		}
		ce := m.Letters[0]
		cases[f+" reply"] = func() ([]byte, error) { return BuildLetter(hubLetter(), ReplyOptions(ce)) }
	}
	for name, build := range cases {
		t.Run(name, func(t *testing.T) {
			out, err := build()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(out, []byte(`<?xml version="1.0" encoding="ISO-8859-1"?>`)) {
				t.Fatalf("declaration: %.60q", out)
			}
			xmllint(t, out)
		})
	}
}

// TestDanishRoundTrip: windows-1252 file → Letter → XDIS91 (ISO-8859-1) → Letter.
func TestDanishRoundTrip(t *testing.T) {
	m, b := mustParse(t, "samhub/letter-windows-1252.xml")
	first := m.Letter(m.Letters[0], Input{Source: "medcom", Data: b, Received: received})
	out, err := BuildLetter(first, LetterOptions{Now: buildNow})
	if err != nil {
		t.Fatal(err)
	}
	m2, err := Parse(out, xmlsafe.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "charset", m2.Charset, "ISO-8859-1")
	second := m2.Letter(m2.Letters[0], Input{Source: "medcom", Data: out, Received: received})
	eq(t, "subject (€ has no Latin-1 form)", second.Subject, strings.Replace(first.Subject, "€", "EUR", 1))
	for _, s := range []string{second.Subject, second.Sender.Name, second.Receivers[0].Name, second.Text} {
		if !strings.ContainsAny(s, "æøåÆØÅ") {
			t.Errorf("æøå lost in %q", s)
		}
	}
	eq(t, "text", second.Text, first.Text)
	eq(t, "sender", second.Sender.Name, "Lægehuset Ærø")
	eq(t, "receiver", second.Receivers[0].Name, "Samrådet Børn og Unge")
	eq(t, "patient", *second.Patient, *first.Patient)
	eq(t, "thread", second.ThreadID, first.ThreadID)
	eq(t, "priority", second.Priority, first.Priority)
	eq(t, "letter id stable", m2.Letters[0].Identifier, StableID(first.ID))

	// Building the same letter twice gives the same letter id (idempotent
	// sink) but a new envelope id (a resend is a new transmission).
	again, _ := BuildLetter(first, LetterOptions{Now: buildNow})
	m3, _ := Parse(again, xmlsafe.DefaultLimits())
	eq(t, "same letter id", m3.Letters[0].Identifier, m2.Letters[0].Identifier)
	if m3.Envelope.Identifier == m2.Envelope.Identifier {
		t.Error("envelope id reused")
	}
}

func TestTextBlocksRoundTrip(t *testing.T) {
	para := strings.Repeat("Æblet falder ikke langt fra stammen. ", 30) // ~1,100 chars
	for _, text := range []string{
		"kort",
		"\n\nstarter med tom linje\n",
		strings.Repeat(para+"\n\n", 18) + "slut",
		"a\n\n\n\nb\n\n\n",
	} {
		blocks := textBlocks(text, true)
		if len(blocks) > 10 {
			t.Errorf("%d blocks", len(blocks))
		}
		if got := strings.Join(blocks, "\n\n"); got != text {
			t.Errorf("blocks do not join back to the text (%d blocks)", len(blocks))
		}
		l := hubLetter()
		l.Text = text
		out, err := BuildLetter(l, LetterOptions{Now: buildNow})
		if err != nil {
			t.Fatal(err)
		}
		m, err := Parse(out, xmlsafe.DefaultLimits())
		if err != nil {
			t.Fatal(err)
		}
		eq(t, "text", strings.Join(m.Letters[0].Texts, "\n\n"), text)
	}
}

// Text that does not fit one block is split so that every block survives
// MedCom's conversion to EDIFACT (at most 45 lines of 70 characters, 40 in
// the first beside the subject): a 5,000-character paragraph, a line of
// 5,000 characters without a space, many short lines. Nothing but line
// breaks changes on the way; a text longer than ten blocks is refused.
func TestTextBlocksFitEDIFACT(t *testing.T) {
	for name, text := range map[string]string{
		"one paragraph of 5,000 characters": strings.Repeat("ord ", 1250),
		"one line of 5,000 without a space": strings.Repeat("x", 5000),
		"200 short lines":                   strings.Repeat("Ja.\n", 200),
		"Danish paragraphs":                 strings.Repeat(strings.Repeat("Æblet falder ikke langt fra stammen. ", 30)+"\n\n", 9),
	} {
		t.Run(name, func(t *testing.T) {
			l := hubLetter()
			l.Text = text
			out, err := BuildLetter(l, LetterOptions{Now: buildNow})
			if err != nil {
				t.Fatal(err)
			}
			xmllint(t, out)
			m, err := Parse(out, xmlsafe.DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}
			texts := m.Letters[0].Texts
			if len(texts) < 2 {
				t.Errorf("%d block(s) for %d characters", len(texts), len(text))
			}
			for i, block := range texts {
				lines := 0
				for _, line := range strings.Split(block, "\n") {
					pieces := wrapLine(line)
					for _, p := range pieces {
						if n := utf8.RuneCountInString(p); n > edifactLine-1 {
							t.Fatalf("block %d: an EDIFACT line of %d characters", i+1, n)
						}
					}
					lines += len(pieces)
				}
				if limit := map[bool]int{true: 40, false: 45}[i == 0]; lines > limit {
					t.Errorf("block %d: %d EDIFACT lines, more than %d", i+1, lines, limit)
				}
			}
			flat := func(s string) string { return strings.ReplaceAll(s, "\n", "") }
			if flat(strings.Join(texts, "\n\n")) != flat(text) {
				t.Error("the text read back differs from the letter's in more than line breaks")
			}
		})
	}
	l := hubLetter()
	l.Text = strings.Repeat(strings.Repeat("Æblet falder ikke langt fra stammen. ", 30)+"\n\n", 40)
	_, err := BuildLetter(l, LetterOptions{Now: buildNow})
	if err == nil || !strings.Contains(err.Error(), "Emessage/ClinicalEmail[1]/ClinicalInformation: the text is too long for XDIS91") {
		t.Errorf("a text of 44,000 characters: %v", err)
	}
}

// Text typed with combining accents (macOS, some web forms) is composed
// before it is written: "é" as "e" and U+0301 is Latin-1's é.
func TestCombiningAccentsAreComposed(t *testing.T) {
	l := hubLetter()
	l.Text = "Rene\u0301 fra A\u030Arhus"
	l.Patient.FamilyName = "Ste\u0301phane"
	out, err := BuildLetter(l, LetterOptions{Now: buildNow})
	if err != nil {
		t.Fatal(err)
	}
	xmllint(t, out)
	m, err := Parse(out, xmlsafe.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "text", m.Letters[0].Texts[0], "René fra Århus")
	eq(t, "surname", m.Letters[0].Patient.Surname, "Stéphane")
}

func TestBuildErrors(t *testing.T) {
	l := hubLetter()
	l.Text = "Hej 🙂"
	_, err := BuildLetter(l, LetterOptions{Now: buildNow})
	if err == nil || !strings.Contains(err.Error(), "Emessage/ClinicalEmail[1]/ClinicalInformation[1]/Text01: character U+1F642 cannot be written in ISO-8859-1") {
		t.Errorf("emoji: %v", err)
	}
	l = hubLetter()
	l.Patient = nil
	l.Receivers[0].GLN = ""
	_, err = BuildLetter(l, LetterOptions{Now: buildNow})
	var fe *FieldError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "Emessage/ClinicalEmail[1]/Patient: the letter has no patient") ||
		!strings.Contains(err.Error(), "Emessage/ClinicalEmail[1]/Receiver/EANIdentifier: required but empty") {
		t.Errorf("missing fields: %v", err)
	}
	l = hubLetter()
	l.Patient.CPR = "3102479989"
	if _, err = BuildLetter(l, LetterOptions{Now: buildNow}); err == nil || strings.Contains(err.Error(), "3102479989") {
		t.Errorf("bad CPR: %v", err)
	}
}

func TestReplyOptions(t *testing.T) {
	m, _ := mustParse(t, "oioxml/DIS91_2.xml")
	out, err := BuildLetter(hubLetter(), ReplyOptions(m.Letters[0]))
	if err != nil {
		t.Fatal(err)
	}
	r, _ := Parse(out, xmlsafe.DefaultLimits())
	ce := r.Letters[0]
	eq(t, "receiver", ce.Receiver.EAN+" "+ce.Receiver.IdentifierCode+":"+ce.Receiver.Identifier, "5790000121526 ydernummer:200106")
	eq(t, "sender", ce.Sender.EAN, "5790000120314")
	eq(t, "episode", ce.EpisodeOfCareIdentifier, "65528acda12c4d85b7016f4b12eec2bc")
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join(testdata, "golden", name)
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from golden file:\n got %s\nwant %s", name, got, want)
	}
}

func TestGolden(t *testing.T) {
	m, _ := mustParse(t, "samhub/letter-utf8.xml")
	two, _ := mustParse(t, "samhub/envelope-two-letters.xml")
	dis, _ := mustParse(t, "oioxml/DIS91_2.xml")
	build := func(b []byte, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	golden(t, "xdis91-new.xml", build(BuildLetter(hubLetter(), LetterOptions{Now: buildNow, EnvelopeID: "ENVGOLDEN00001"})))
	golden(t, "xdis91-reply.xml", build(BuildLetter(hubLetter(), func() LetterOptions {
		o := ReplyOptions(dis.Letters[0])
		o.Now, o.EnvelopeID = buildNow, "ENVGOLDEN00002"
		return o
	}())))
	golden(t, "xctl03-positive.xml", build(BuildReceipt(m, ReceiptOptions{Type: PositiveReceipt, Letters: m.Letters, Now: buildNow, EnvelopeID: "ENVGOLDEN00003"})))
	golden(t, "xctl02-negative-letter.xml", build(BuildReceipt(two, ReceiptOptions{Type: NegativeReceipt, Letters: two.Letters[1:], RefuseCode: RefuseSyntax,
		RefuseText: "Brevet kunne ikke læses.\nEmessage/ClinicalEmail[2]/Patient: fejl", Now: buildNow, EnvelopeID: "ENVGOLDEN00004"})))
	golden(t, "xctl02-negative-envelope.xml", build(BuildReceipt(m, ReceiptOptions{Type: NegativeReceipt, RefuseCode: RefuseVersion, Now: buildNow, EnvelopeID: "ENVGOLDEN00005", SelfEAN: "5790000000029"})))

	// The receipts read back as what they say.
	r, err := Parse(build(BuildReceipt(two, ReceiptOptions{Type: NegativeReceipt, Letters: two.Letters, RefuseCode: RefuseSyntax, Now: buildNow})), xmlsafe.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	rc := r.Receipts[0]
	eq(t, "type", rc.Type, NegativeReceipt)
	eq(t, "to", rc.ReceiverEAN, "5790000000005")
	eq(t, "from", rc.SenderEAN, "5790000000012")
	eq(t, "letters", len(rc.OriginalLetters), 2)
	eq(t, "refuse", rc.OriginalLetters[1].RefuseCode, RefuseSyntax)
	eq(t, "ack code", r.Envelope.AcknowledgementCode, AckNotWanted)
}

func FuzzOIOXML(f *testing.F) {
	for _, dir := range []string{"oioxml", "samhub", "hostile", "golden"} {
		files, _ := filepath.Glob(filepath.Join(testdata, dir, "*.xml"))
		for _, p := range files {
			if b, err := os.ReadFile(p); err == nil && len(b) < 64<<10 {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lim := xmlsafe.Limits{MaxBytes: 1 << 20, MaxDepth: 50, MaxTokens: 100000, MaxAttrLen: 1 << 16}
		m, err := Parse(data, lim)
		if m == nil {
			return
		}
		ls := m.ToLetters(Input{Source: "fuzz", Data: data, Received: received})
		if err != nil {
			if len(m.Letters) > 0 {
				_, _ = BuildReceipt(m, ReceiptOptions{Type: NegativeReceipt, Letters: m.Letters, Now: buildNow})
			}
			return
		}
		for _, l := range ls {
			if l.ID == "" {
				t.Fatal("valid input gave a letter without id")
			}
			if l.Kind != letter.KindAcknowledgement {
				_, _ = BuildLetter(l, LetterOptions{Now: buildNow, Files: true})
				if HasFiles(l) {
					_, _ = BuildBinaryLetter(l, LetterOptions{Now: buildNow, Files: true})
				}
			}
		}
	})
}

// BenchmarkParse10K: parse + validate + map of a ~10 KB XDIS91 letter, next
// to a bare etree read of the same bytes.
func BenchmarkParse10K(b *testing.B) {
	data := read(b, "samhub/letter-10k.xml")
	b.Run("oioxml", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			m, err := Parse(data, xmlsafe.DefaultLimits())
			if err != nil {
				b.Fatal(err)
			}
			_ = m.ToLetters(Input{Source: "bench", Data: data})
		}
	})
	b.Run("etree", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			if err := etree.NewDocument().ReadFromBytes(data); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkBuildLetter(b *testing.B) {
	l := hubLetter()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := BuildLetter(l, LetterOptions{Now: buildNow}); err != nil {
			b.Fatal(err)
		}
	}
}
