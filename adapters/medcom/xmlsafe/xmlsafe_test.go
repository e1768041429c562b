package xmlsafe

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/beevik/etree"
)

const testdata = "../../../testdata/medcom"

func read(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testdata, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func reason(t *testing.T, err error) Reason {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not *xmlsafe.Error", err, err)
	}
	return e.Reason
}

func TestParseDecodesDeclaredCharsets(t *testing.T) {
	for _, tc := range []struct {
		file, subject string
	}{
		{"samhub/letter-utf8.xml", "Henvisning til samråd – æøå ÆØÅ"},
		{"samhub/letter-iso-8859-1.xml", "Henvisning til samråd æøå ÆØÅ"},
		{"samhub/letter-windows-1252.xml", "Henvisning til samråd € æøå ÆØÅ"},
		{"oioxml/DIS91_1.xml", "Forundersøgelse"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			doc, err := Parse(read(t, tc.file), DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}
			got := doc.FindElement("//AdditionalInformation/Subject").Text()
			if got != tc.subject {
				t.Errorf("subject %q, want %q", got, tc.subject)
			}
			if p := doc.FindElement("//AdditionalInformation/Priority").Text(); p != "høj_prioritet" && p != "rutine" {
				t.Errorf("priority %q not decoded", p)
			}
			out, err := doc.WriteToString()
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(out, `<?xml version="1.0" encoding="UTF-8"?>`) {
				t.Errorf("declaration not rewritten to UTF-8: %.60q", out)
			}
		})
	}
}

func TestParseStripsUTF8BOM(t *testing.T) {
	data := append([]byte{0xEF, 0xBB, 0xBF}, read(t, "samhub/letter-utf8.xml")...)
	if _, err := Parse(data, DefaultLimits()); err != nil {
		t.Fatal(err)
	}
	if _, err := Parse([]byte("\xFF\xFE<\x00a\x00/\x00>\x00"), DefaultLimits()); reason(t, err) != ReasonCharset {
		t.Fatalf("UTF-16: %v", err)
	}
}

// TestHostileCorpus runs every file of testdata/medcom/hostile.
func TestHostileCorpus(t *testing.T) {
	small := DefaultLimits()
	small.MaxAttrLen = 64 << 10
	for _, tc := range []struct {
		file string
		lim  Limits
		want Reason
		msg  string
	}{
		{"xxe-file.xml", DefaultLimits(), ReasonDTD, "DOCTYPE"},
		{"xxe-http.xml", DefaultLimits(), ReasonDTD, "DOCTYPE"},
		{"billion-laughs.xml", DefaultLimits(), ReasonDTD, "DOCTYPE"},
		{"deep-nesting.xml", DefaultLimits(), ReasonTooDeep, "deeper than 100"},
		{"huge-attribute.xml", small, ReasonAttrTooLong, "attribute x is 204800 bytes, more than the limit of 65536"},
		{"huge-attribute.xml", Limits{MaxAttrLen: 200<<10 - 1}, ReasonAttrTooLong, "attribute x is 204800 bytes, more than the limit of 204799"},
		{"huge-attribute.xml", Limits{MaxBytes: 100 << 10}, ReasonTooLarge, "more than the limit"},
		{"wrong-charset.xml", DefaultLimits(), ReasonSyntax, "invalid UTF-8"},
		{"undeclared-latin1.xml", DefaultLimits(), ReasonSyntax, "invalid UTF-8"},
		{"unsupported-charset.xml", DefaultLimits(), ReasonCharset, "unsupported charset"},
		{"truncated.xml", DefaultLimits(), ReasonSyntax, "truncated"},
		{"not-xml.txt", DefaultLimits(), ReasonSyntax, "not XML"},
		{"empty.xml", DefaultLimits(), ReasonSyntax, "not XML"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			_, err := Parse(read(t, "hostile/"+tc.file), tc.lim)
			if err == nil {
				t.Fatal("accepted")
			}
			if r := reason(t, err); r != tc.want {
				t.Errorf("reason %s, want %s (%v)", r, tc.want, err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not say %q", err, tc.msg)
			}
		})
	}
}

func TestErrorNamesPath(t *testing.T) {
	_, err := Parse(read(t, "hostile/deep-nesting.xml"), DefaultLimits())
	var e *Error
	if !errors.As(err, &e) || !strings.HasPrefix(e.Path, "a/a/a/") || strings.Count(e.Path, "/") != 99 {
		t.Fatalf("path of %v", err)
	}
	_, err = Parse([]byte("<Emessage><Envelope><Identifier>x</Envelope></Emessage>"), DefaultLimits())
	if !errors.As(err, &e) || e.Path != "Emessage/Envelope/Identifier" || !strings.Contains(e.Msg, "</Envelope>") {
		t.Fatalf("mismatched end tag: %v", err)
	}
}

// The entity's file must never be opened and its URL never fetched.
func TestXXENeverResolved(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		fmt.Fprint(w, `<!ENTITY exfil "STOLEN">`)
	}))
	defer srv.Close()
	secret := filepath.Join(t.TempDir(), "secret.txt")
	if err := os.WriteFile(secret, []byte("SECRET-CONTENT"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, doc := range []string{
		`<!DOCTYPE r [<!ENTITY xxe SYSTEM "file://` + secret + `">]><r>&xxe;</r>`,
		`<!DOCTYPE r SYSTEM "` + srv.URL + `/evil.dtd"><r>&exfil;</r>`,
		`<!DOCTYPE r [<!ENTITY % p SYSTEM "` + srv.URL + `/p.ent"> %p;]><r>&exfil;</r>`,
		`<r>&xxe;</r>`, // an undeclared entity is a syntax error, not an empty string
	} {
		_, err := Parse([]byte(doc), DefaultLimits())
		if err == nil {
			t.Fatalf("accepted %q", doc)
		}
		if strings.Contains(err.Error(), "SECRET") || strings.Contains(err.Error(), "STOLEN") {
			t.Fatalf("error leaks entity content: %v", err)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("external entity server was contacted %d times", n)
	}
}

func TestLimitsBoundaries(t *testing.T) {
	nest := func(n int) []byte {
		return []byte(strings.Repeat("<a>", n) + strings.Repeat("</a>", n))
	}
	lim := Limits{MaxDepth: 5}
	if _, err := Parse(nest(5), lim); err != nil {
		t.Fatalf("depth 5 with MaxDepth 5: %v", err)
	}
	if _, err := Parse(nest(6), lim); reason(t, err) != ReasonTooDeep {
		t.Fatalf("depth 6: %v", err)
	}
	many := []byte("<r>" + strings.Repeat("<b/>", 100) + "</r>")
	if _, err := Parse(many, Limits{MaxTokens: 300}); err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(many, Limits{MaxTokens: 150}); reason(t, err) != ReasonTooMany {
		t.Fatalf("tokens: %v", err)
	}
	attrs := []byte(`<r ` + strings.Repeat(`a="1" `, 0) + `x="` + strings.Repeat("y", 100) + `"/>`)
	if _, err := Parse(attrs, Limits{MaxAttrLen: 100}); err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(attrs, Limits{MaxAttrLen: 99}); reason(t, err) != ReasonAttrTooLong {
		t.Fatalf("attr: %v", err)
	}
	text := []byte("<r>" + strings.Repeat("z", 1000) + "</r>")
	if _, err := Parse(text, Limits{MaxAttrLen: 999}); reason(t, err) != ReasonAttrTooLong {
		t.Fatalf("text: %v", err)
	}
	if _, err := Parse(text, Limits{MaxBytes: int64(len(text) - 1)}); reason(t, err) != ReasonTooLarge {
		t.Fatalf("bytes: %v", err)
	}
}

func TestStructureErrors(t *testing.T) {
	for in, want := range map[string]string{
		"<a/><b/>":                           "more than one root",
		"<a/>trailing":                       "outside the root",
		"junk<a/>":                           "outside the root",
		`<a/><?xml version="1.0"?>`:          "not at the start",
		"<a>&#2509479989;</a>":               "not well-formed",
		"<a><b></a>":                         "unexpected end tag",
		`<?xml version="2.0"?><a/>`:          "unsupported version",
		`<?xml version="1.0" encoding="x"?>`: "unsupported charset",
	} {
		_, err := Parse([]byte(in), DefaultLimits())
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", in, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "2509479989") {
			t.Errorf("%q: error echoes a CPR-like number: %v", in, err)
		}
	}
}

func TestCheckJSON(t *testing.T) {
	good := `{"resourceType":"Bundle","entry":[{"resource":{"id":"a","text":"æøå"}}]}`
	if err := CheckJSON([]byte(good), DefaultLimits()); err != nil {
		t.Fatal(err)
	}
	deep := strings.Repeat("[", 101) + strings.Repeat("]", 101)
	for _, tc := range []struct {
		in   string
		lim  Limits
		want Reason
	}{
		{deep, DefaultLimits(), ReasonTooDeep},
		{good, Limits{MaxBytes: 10}, ReasonTooLarge},
		{good, Limits{MaxTokens: 5}, ReasonTooMany},
		{`{"a":"` + strings.Repeat("x", 50) + `"}`, Limits{MaxAttrLen: 49}, ReasonAttrTooLong},
		{`{"a":`, DefaultLimits(), ReasonSyntax},
		{`{"a":1}{"b":2}`, DefaultLimits(), ReasonSyntax},
		{`{"a":1} x`, DefaultLimits(), ReasonSyntax},
		{``, DefaultLimits(), ReasonSyntax},
		{`<Bundle/>`, DefaultLimits(), ReasonSyntax},
	} {
		err := CheckJSON([]byte(tc.in), tc.lim)
		if err == nil {
			t.Errorf("%.30q accepted", tc.in)
			continue
		}
		if r := reason(t, err); r != tc.want {
			t.Errorf("%.30q: reason %s, want %s (%v)", tc.in, r, tc.want, err)
		}
	}
	if err := CheckJSON([]byte(strings.Repeat("[", 100)+strings.Repeat("]", 100)), DefaultLimits()); err != nil {
		t.Errorf("depth 100: %v", err)
	}
}

func seedCorpus(f *testing.F) {
	for _, dir := range []string{"oioxml", "samhub", "hostile"} {
		files, _ := filepath.Glob(filepath.Join(testdata, dir, "*"))
		for _, p := range files {
			if b, err := os.ReadFile(p); err == nil && len(b) < 64<<10 {
				f.Add(b)
			}
		}
	}
}

func FuzzXMLSafe(f *testing.F) {
	seedCorpus(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		lim := Limits{MaxBytes: 1 << 20, MaxDepth: 50, MaxTokens: 100000, MaxAttrLen: 1 << 16}
		doc, err := Parse(data, lim)
		// Every value taken out of the decoder's way changes nothing.
		subst, serr := parse(data, lim, 1)
		if (err == nil) != (serr == nil) {
			t.Fatalf("without placeholders: %v; with: %v", err, serr)
		}
		if err == nil {
			a, _ := doc.WriteToString()
			b, _ := subst.WriteToString()
			if a != b {
				t.Fatalf("tree with placeholders differs:\n%q\n%q", b, a)
			}
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T is not *Error", err)
			}
			return
		}
		if doc.Root() == nil {
			t.Fatal("accepted a document without a root")
		}
		got, err := doc.WriteToBytes()
		if err != nil {
			t.Fatal(err)
		}
		// Parse builds its tree itself; it must be the tree etree's reader
		// makes of the same bytes, down to the whitespace marks Indent uses.
		want := etreeTree(t, data)
		if w, _ := want.WriteToBytes(); !bytes.Equal(got, w) {
			t.Fatalf("tree differs from etree's:\n got %q\nwant %q", got, w)
		}
		doc.Indent(1)
		want.Indent(1)
		got, _ = doc.WriteToBytes()
		if w, _ := want.WriteToBytes(); !bytes.Equal(got, w) {
			t.Fatalf("indented tree differs from etree's:\n got %q\nwant %q", got, w)
		}
		_ = CheckJSON(data, lim)
	})
}

// etreeTree reads data with etree's own reader, as Parse did before it built
// the tree itself.
func etreeTree(t *testing.T, data []byte) *etree.Document {
	t.Helper()
	want := etree.NewDocument()
	want.ReadSettings.CharsetReader = charsetReader
	if err := want.ReadFromBytes(bytes.TrimPrefix(data, []byte{0xEF, 0xBB, 0xBF})); err != nil {
		t.Fatalf("Parse accepted what etree refuses: %v", err)
	}
	for _, tok := range want.Child {
		if pi, ok := tok.(*etree.ProcInst); ok && pi.Target == "xml" {
			pi.Inst = `version="1.0" encoding="UTF-8"`
		}
	}
	return want
}

func TestTreeMatchesEtree(t *testing.T) {
	for _, rel := range []string{"samhub/letter-10k.xml", "samhub/letter-iso-8859-1.xml", "samhub/letter-windows-1252.xml", "oioxml/DIS91_1.xml"} {
		data := read(t, rel)
		doc, err := Parse(data, DefaultLimits())
		if err != nil {
			t.Fatal(err)
		}
		want := etreeTree(t, data)
		doc.Indent(2)
		want.Indent(2)
		got, _ := doc.WriteToString()
		if w, _ := want.WriteToString(); got != w {
			t.Errorf("%s: tree differs from etree's", rel)
		}
	}
	// Duplicate attributes keep the last value, namespaced ones their prefix.
	doc, err := Parse([]byte(`<?xml version="1.0"?><!-- c --><r xmlns:x="u" x:a="1" b="1" b="2"><?pi x?><x:e/> </r>`), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	got, _ := doc.WriteToString()
	if want := `<?xml version="1.0" encoding="UTF-8"?><!-- c --><r xmlns:x="u" x:a="1" b="2"><?pi x?><x:e/> </r>`; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if e := doc.FindElement("//e"); e == nil || e.NamespaceURI() != "u" || e.Parent().Tag != "r" || e.Index() != 1 {
		t.Errorf("element links wrong: %+v", e)
	}
	if a := doc.Root().SelectAttr("x:a"); a == nil || a.Element() != doc.Root() || a.NamespaceURI() != "u" {
		t.Errorf("attribute links wrong: %+v", a)
	}
}

// BenchmarkParse10K compares Parse (checks and tree in one pass) with a bare
// etree read of the same ~10 KB UTF-8 XDIS91 letter.
func BenchmarkParse10K(b *testing.B) {
	data := read(b, "samhub/letter-10k.xml")
	b.Run("xmlsafe", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Parse(data, DefaultLimits()); err != nil {
				b.Fatal(err)
			}
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

// BenchmarkHostile shows that hostile inputs are refused quickly and with
// little memory (compare B/op with the input size).
func BenchmarkHostile(b *testing.B) {
	files, _ := filepath.Glob(filepath.Join(testdata, "hostile", "*"))
	small := DefaultLimits()
	small.MaxAttrLen = 64 << 10
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(filepath.Base(p), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Parse(data, small); err == nil {
					b.Fatal("accepted")
				}
			}
		})
	}
	// A 64 MiB+1 attribute under the default limits: refused after one read.
	big := []byte(`<r x="` + strings.Repeat("a", 64<<20+1) + `"/>`)
	huge := []byte(`<r x="` + strings.Repeat("a", 90_000_000) + `"/>`)
	b.Run("attribute-90MB", func(b *testing.B) {
		b.SetBytes(int64(len(huge)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Parse(huge, DefaultLimits()); err == nil {
				b.Fatal("accepted")
			}
		}
	})
	b.Run("attribute-64MiB", func(b *testing.B) {
		b.SetBytes(int64(len(big)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Parse(big, DefaultLimits()); err == nil {
				b.Fatal("accepted")
			}
		}
	})
}

func TestTooManyAttributesAndMislabelledCharset(t *testing.T) {
	var b strings.Builder
	b.WriteString("<a")
	for i := range 300 {
		fmt.Fprintf(&b, ` x%d="1"`, i)
	}
	b.WriteString("/>")
	if _, err := Parse([]byte(b.String()), DefaultLimits()); err == nil || !strings.Contains(err.Error(), "attributes") {
		t.Fatalf("300 attributes: %v", err)
	}
	utf8AsLatin1 := []byte("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a>K\xc3\xa6re</a>")
	if _, err := Parse(utf8AsLatin1, DefaultLimits()); err == nil || !strings.Contains(err.Error(), "bytes are UTF-8") {
		t.Fatalf("UTF-8 declared as ISO-8859-1: %v", err)
	}
	latin1 := []byte("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a>K\xe6re</a>")
	doc, err := Parse(latin1, DefaultLimits())
	if err != nil || doc.Root().Text() != "Kære" {
		t.Fatalf("genuine ISO-8859-1: %v", err)
	}
}

// Latin-9 (ISO-8859-15, € at 0xA4 where Latin-1 has ¤) and US-ASCII are
// read as declared; a US-ASCII declaration over other bytes is refused,
// as a Latin-1 declaration over UTF-8 bytes is.
func TestParseReadsLatin9AndASCII(t *testing.T) {
	doc := func(enc string, text string) []byte {
		return []byte(`<?xml version="1.0" encoding="` + enc + `"?><r>` + text + `<a>` + text + `</a></r>`)
	}
	for _, tc := range []struct{ enc, text, want string }{
		{"ISO-8859-15", "5 \xa4 for \xe6bler", "5 € for æbler"},
		{"latin9", "\xa4", "€"},
		{"ISO-8859-1", "\xa4", "¤"},
		{"US-ASCII", "plain text", "plain text"},
	} {
		d, err := Parse(doc(tc.enc, tc.text), DefaultLimits())
		if err != nil {
			t.Errorf("%s: %v", tc.enc, err)
			continue
		}
		if got := d.Root().SelectElement("a").Text(); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.enc, got, tc.want)
		}
	}
	for _, text := range []string{"\xe6ble", "æble"} {
		_, err := Parse(doc("US-ASCII", text), DefaultLimits())
		if reason(t, err) != ReasonCharset || !strings.Contains(err.Error(), "says US-ASCII") {
			t.Errorf("US-ASCII over %q: %v", text, err)
		}
	}
	if _, err := Parse(doc("ISO-8859-7", "x"), DefaultLimits()); reason(t, err) != ReasonCharset || !strings.Contains(err.Error(), "ISO-8859-15") {
		t.Errorf("an unsupported charset: %v", err)
	}
}
