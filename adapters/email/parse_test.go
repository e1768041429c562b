package email

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/samhub/samhub/pipeline/letter"
)

const testdataDir = "../../testdata/email"

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testdataDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var received = time.Date(2025, 6, 2, 10, 0, 0, 0, time.UTC)

func TestParseDanishWithAttachment(t *testing.T) {
	raw := readFixture(t, "danish-attachment.eml")
	l, err := ParseMessage("mail-in", raw, received, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(l.ID, "email:mail-in:") || len(l.ID) != len("email:mail-in:")+52 || strings.ContainsAny(l.ID[len("email:mail-in:"):], "0189") {
		t.Errorf("id = %q, want email:mail-in:<52 base32 characters>", l.ID)
	}
	if l.Kind != letter.KindNote || l.Format != "email" || l.Source != "mail-in" {
		t.Errorf("kind/format/source = %s/%s/%s", l.Kind, l.Format, l.Source)
	}
	if l.Sender.Email != "laege@example.dk" || l.Sender.Name != "Læge Åse Øster" {
		t.Errorf("sender = %+v", l.Sender)
	}
	if l.Subject != "Henvisning vedrørende barn" {
		t.Errorf("subject = %q", l.Subject)
	}
	if !strings.Contains(l.Text, "Kære Samråd") || !strings.Contains(l.Text, "græder hver morgen") || strings.Contains(l.Text, "\r") {
		t.Errorf("text = %q", l.Text)
	}
	if len(l.Attachments) != 1 {
		t.Fatalf("attachments = %d, want 1", len(l.Attachments))
	}
	a := l.Attachments[0]
	if a.Name != "Henvisning æøå.pdf" || a.ContentType != "application/pdf" || !strings.HasPrefix(string(a.Data), "%PDF-1.4") || a.Size != int64(len(a.Data)) || a.SHA256 != letter.Digest(a.Data) {
		t.Errorf("attachment = %q %q %d", a.Name, a.ContentType, a.Size)
	}
	if string(l.Original.Data) != string(raw) || l.Original.ContentType != "message/rfc822" || l.Original.SHA256 != letter.Digest(raw) {
		t.Errorf("original not kept byte for byte")
	}
	if l.Meta[MetaMessageID] != "henv-0001@example.dk" {
		t.Errorf("meta = %v", l.Meta)
	}
	if want := time.Date(2025, 6, 2, 7, 15, 0, 0, time.UTC); !l.Sent.Equal(want) {
		t.Errorf("sent = %v, want %v", l.Sent, want)
	}

	// Same bytes, same id; one changed byte, another id.
	again, _ := ParseMessage("mail-in", raw, received.Add(time.Hour), nil)
	if again.ID != l.ID {
		t.Errorf("id not deterministic: %s vs %s", again.ID, l.ID)
	}
	changed := []byte(strings.Replace(string(raw), "morgen", "aften!", 1))
	other, err := ParseMessage("mail-in", changed, received, nil)
	if err != nil {
		t.Fatal(err)
	}
	if other.ID == l.ID {
		t.Error("different content with the same Message-ID got the same letter id")
	}
}

func TestParseHTMLLatin1(t *testing.T) {
	l, err := ParseMessage("mail-in", readFixture(t, "html-latin1.eml"), received, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Hej Samråd,", "Tak & hilsen", "Børne- og ungdomspsykiatrien"} {
		if !strings.Contains(l.Text, want) {
			t.Errorf("text %q lacks %q", l.Text, want)
		}
	}
	for _, bad := range []string{"<p>", "color: red", "alert(1)"} {
		if strings.Contains(l.Text, bad) {
			t.Errorf("text %q keeps %q", l.Text, bad)
		}
	}
	if l.Meta[MetaInReplyTo] != "abc123@kommune.example.dk" {
		t.Errorf("in-reply-to = %q", l.Meta[MetaInReplyTo])
	}
}

func TestParseAlternativePrefersPlain(t *testing.T) {
	l, err := ParseMessage("mail-in", readFixture(t, "alternative-latin1.eml"), received, nil)
	if err != nil {
		t.Fatal(err)
	}
	if l.Text != "Hvornår er mødet? Vi kan komme på torsdag." {
		t.Errorf("text = %q", l.Text)
	}
	if l.Subject != "Spørgsmål" {
		t.Errorf("subject = %q", l.Subject)
	}
	if len(l.Attachments) != 0 {
		t.Errorf("html alternative became an attachment")
	}
}

func TestParseKindRules(t *testing.T) {
	cfg := imapConfig{Kind: "note", Rules: []kindRule{
		{From: "@region.example.dk", Kind: "reply"},
		{SubjectContains: "henvisning", Kind: "referral"},
	}}
	l, err := ParseMessage("in", readFixture(t, "html-latin1.eml"), received, cfg.kindFor)
	if err != nil {
		t.Fatal(err)
	}
	if l.Kind != letter.KindReply {
		t.Errorf("kind = %s, want reply", l.Kind)
	}
	l, _ = ParseMessage("in", readFixture(t, "danish-attachment.eml"), received, cfg.kindFor)
	if l.Kind != letter.KindReferral {
		t.Errorf("kind = %s, want referral", l.Kind)
	}
	l, _ = ParseMessage("in", readFixture(t, "alternative-latin1.eml"), received, cfg.kindFor)
	if l.Kind != letter.KindNote {
		t.Errorf("kind = %s, want note", l.Kind)
	}
}

func TestParseErrorsNameTheField(t *testing.T) {
	cases := map[string]string{
		"bad-header.eml":          "header",
		"no-from.eml":             "header.From",
		"truncated-multipart.eml": "body.part[1]",
	}
	for file, field := range cases {
		t.Run(file, func(t *testing.T) {
			_, err := ParseMessage("in", readFixture(t, file), received, nil)
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a *ParseError", err)
			}
			if pe.Field != field {
				t.Errorf("field = %q, want %q (err %v)", pe.Field, field, err)
			}
			if strings.Contains(pe.Reason, "@") {
				t.Errorf("reason %q quotes an address", pe.Reason)
			}
		})
	}
}

// The mail library's errors quote the line they stopped at; a refusal says
// what was wrong and where, and never repeats a child's name or CPR number
// (found by the fuzz scenario at soak size: reliability/fuzz_test.go).
func TestParseErrorsQuoteNoContent(t *testing.T) {
	for name, raw := range map[string]string{
		"header key": "From: a@example.org\r\nSubject: x\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nVedr\u00f8rende Bruno Test Elmer, CPR 2509479989\r\n\r\nhej\r\n--b--\r\n",
		"part line":  "From: a@example.org\r\nSubject: x\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhej\r\n--bBruno Test Elmer, CPR 250947-9989\r\n",
		"address":    "From: Bruno Test Elmer 2509479989\r\nSubject: x\r\n\r\nhej\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseMessage("in", []byte(raw), received, nil)
			if err == nil {
				t.Fatal("accepted; this case must be refused")
			}
			for _, bad := range []string{"Bruno", "Elmer", "2509479989", "250947-9989"} {
				if strings.Contains(err.Error(), bad) {
					t.Errorf("the refusal quotes %q: %v", bad, err)
				}
			}
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Field == "" {
				t.Errorf("the refusal names no field: %v", err)
			}
		})
	}
}

// FuzzMIME checks that no input makes the parser panic, and that whatever it
// accepts is a valid letter keeping the input bytes.
func FuzzMIME(f *testing.F) {
	entries, err := os.ReadDir(testdataDir)
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".eml") {
			f.Add(readFixture(f, e.Name()))
		}
	}
	f.Add([]byte("From: a@b.dk\r\n\r\n"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=x\r\nFrom: a@b.dk\r\n\r\n--x\r\n--x--\r\n"))
	spoolDir := f.TempDir()
	f.Fuzz(func(t *testing.T, raw []byte) {
		l, err := ParseMessage("fuzz", raw, received, nil)
		sameFromSpool(t, spoolDir, raw, l, err)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error is not a *ParseError: %v", err)
			}
			return
		}
		if err := l.Validate(); err != nil {
			t.Fatalf("accepted an invalid letter: %v", err)
		}
		if string(l.Original.Data) != string(raw) {
			t.Fatal("original bytes changed")
		}
	})
}

// sameFromSpool checks that the reader of a spooled message (the IMAP
// source's for large mail) refuses what ParseMessage refused, with the
// same error, and otherwise gives the same letter.
func sameFromSpool(t *testing.T, dir string, raw []byte, want *letter.Letter, wantErr error) {
	t.Helper()
	sp := newSpool(dir)
	defer sp.remove()
	m, err := sp.message(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseSpooled("fuzz", m, sp, received, nil)
	if (err == nil) != (wantErr == nil) || (err != nil && err.Error() != wantErr.Error()) {
		t.Fatalf("spooled: err %v, in memory: err %v", err, wantErr)
	}
	if err != nil {
		return
	}
	if got.ID != want.ID || got.Text != want.Text || got.Subject != want.Subject || got.Original.SHA256 != want.Original.SHA256 || len(got.Attachments) != len(want.Attachments) {
		t.Fatal("the spooled letter differs from the in-memory one")
	}
	for i, a := range got.Attachments {
		if a.SHA256 != want.Attachments[i].SHA256 || a.Len() != want.Attachments[i].Len() || a.Name != want.Attachments[i].Name {
			t.Fatalf("attachment %d differs", i)
		}
	}
}

func TestParseRefusesDeepNestingAndBadCharsets(t *testing.T) {
	var b strings.Builder
	b.WriteString("From: a@example.org\r\nSubject: x\r\nMIME-Version: 1.0\r\n")
	for i := range 30 {
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n", i, i)
	}
	b.WriteString("Content-Type: text/plain\r\n\r\nhej\r\n")
	if _, err := ParseMessage("m", []byte(b.String()), time.Now(), nil); err == nil || !strings.Contains(err.Error(), "multipart containers") {
		t.Fatalf("deep nesting: %v", err)
	}
	latin1AsUTF8 := "From: a@example.org\r\nSubject: x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nK\xe6re for\xe6ldre\r\n"
	_, err := ParseMessage("m", []byte(latin1AsUTF8), time.Now(), nil)
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Field != "body.part[0]" {
		t.Fatalf("invalid UTF-8 text: %v", err)
	}
}

// A mail as a client writes it: alternative inside mixed, related inside
// alternative, text in windows-1252 quoted-printable, attached text files
// in ISO-8859-1, a forwarded mail. The letter's text is UTF-8; every
// attached file keeps the bytes its sender attached, and a text file its
// charset, which those bytes are in.
func TestParseClientMixKeepsAttachedFilesByteForByte(t *testing.T) {
	raw := readFixture(t, "client-mix.eml")
	l, err := ParseMessage("mail-in", raw, received, nil)
	if err != nil {
		t.Fatal(err)
	}
	if l.Subject != "Videresendt: Spørgsmål om mødet" || l.Sender.Name != "Sundhedsplejerske Åse" {
		t.Errorf("subject %q, sender %q", l.Subject, l.Sender.Name)
	}
	if want := "Kære Samråd, se “noter” og det videresendte brev. Gebyr 0 €."; l.Text != want {
		t.Errorf("text = %q, want %q", l.Text, want)
	}
	want := []struct{ name, ct, data string }{
		{"logo æøå.png", "image/png", "\x89PNG\r\n\x1a\n"},
		{"noter.txt", "text/plain; charset=iso-8859-1", "M\xf8de torsdag, bl\xe5 stue."},
		{"brev.xml", "text/xml; charset=iso-8859-1", `<?xml version="1.0" encoding="ISO-8859-1"?><brev>m` + "\xf8" + `de</brev>`},
		{"Henvisning æøå.pdf", "application/pdf", "%PDF-1.4\n"},
		{"bilag-6", "application/octet-stream", "\x00\x01\x02\x03"},
		{"bilag-7", "message/rfc822", "From: laege@example.dk\r\nSubject: Oprindeligt brev\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nDet oprindelige brev."},
	}
	if len(l.Attachments) != len(want) {
		t.Fatalf("%d attachments, want %d", len(l.Attachments), len(want))
	}
	for i, w := range want {
		a := l.Attachments[i]
		if a.Name != w.name || a.ContentType != w.ct || string(a.Data) != w.data || a.SHA256 != letter.Digest([]byte(w.data)) {
			t.Errorf("attachment %d = %q %q %q, want %q %q %q", i, a.Name, a.ContentType, a.Data, w.name, w.ct, w.data)
		}
	}
	if !bytes.Equal(l.Original.Data, raw) {
		t.Error("original not kept byte for byte")
	}
}

// A 100 KB header line is read; a header past 1 MiB is refused with a
// reason that says so.
func TestParseLongHeaders(t *testing.T) {
	long := "From: a@example.org\r\nSubject: s\r\nX-Junk: " + strings.Repeat("a", 100<<10) + "\r\n\r\nhej\r\n"
	if l, err := ParseMessage("in", []byte(long), received, nil); err != nil || l.Text != "hej\r\n" && l.Text != "hej\n" {
		t.Fatalf("100 KB header line: %v", err)
	}
	huge := "From: a@example.org\r\nSubject: s\r\nX-Junk: " + strings.Repeat("a", 2<<20) + "\r\n\r\nhej\r\n"
	_, err := ParseMessage("in", []byte(huge), received, nil)
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Field != "header" || !strings.Contains(pe.Reason, "larger than 1048576 bytes") {
		t.Fatalf("2 MiB header: %v", err)
	}
}

// RFC 2231 file names in the charset the sender's client chose; Go's
// media-type parser reads only UTF-8 ones.
func TestParseRFC2231FilenamesInAnyCharset(t *testing.T) {
	for disp, want := range map[string]string{
		`attachment; filename*=UTF-8''Henvisning%20%C3%A6%C3%B8%C3%A5.pdf`:                           "Henvisning æøå.pdf",
		`attachment; filename*=iso-8859-1''Henvisning%20%E6%F8%E5.pdf`:                               "Henvisning æøå.pdf",
		`attachment; filename*=ISO-8859-1'da'%C6%D8%C5.pdf`:                                          "ÆØÅ.pdf",
		"attachment;\r\n filename*0*=windows-1252''%93Notat%94%20bl%E5;\r\n filename*1*=%20stue.pdf": "“Notat” blå stue.pdf",
		`attachment; filename*0*=iso-8859-1''m%F8de; filename*1="-referat.pdf"`:                      "møde-referat.pdf",
		`attachment; size=3; filename*=x-unknown''%E6.pdf`:                                           "bilag-0",
	} {
		raw := "From: a@example.org\r\nSubject: s\r\nContent-Type: application/pdf\r\nContent-Disposition: " + disp + "\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n"
		l, err := ParseMessage("in", []byte(raw), received, nil)
		if err != nil {
			t.Fatalf("%s: %v", disp, err)
		}
		if len(l.Attachments) != 1 || l.Attachments[0].Name != want || string(l.Attachments[0].Data) != "%PDF-1.4\n" {
			t.Errorf("%s: attachments %+v, want one named %q", disp, l.Attachments, want)
		}
		if string(l.Original.Data) != raw {
			t.Errorf("%s: original changed", disp)
		}
	}
}
