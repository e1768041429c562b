package partscan

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/samhub/samhub/adapters/medcom/xmlsafe"
)

func random(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func scanBytes(t testing.TB, in []byte, opt Options) *Doc {
	t.Helper()
	d, err := Scan(File(bytes.NewReader(in), int64(len(in))), opt)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// rebuild puts each part's raw value back in the place of its token: the
// scan must have kept everything else byte for byte.
func rebuild(t testing.TB, d *Doc) []byte {
	t.Helper()
	out := d.Data
	for _, p := range d.Parts {
		r, err := p.src.Open(p.off)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := io.ReadAll(io.LimitReader(r, p.n))
		if err != nil {
			t.Fatal(err)
		}
		lines := bytes.Count(raw, []byte{'\n'})
		tok := []byte(p.Token + strings.Repeat("\n", lines))
		if bytes.Count(out, tok) != 1 {
			t.Fatalf("token %s is not in the document exactly once", p.Token)
		}
		out = bytes.Replace(out, tok, raw, 1)
	}
	return out
}

// wrapped is base64 in lines of 76, as MedCom producers write it.
func wrapped(b []byte) string {
	s := base64.StdEncoding.EncodeToString(b)
	var w strings.Builder
	for len(s) > 76 {
		w.WriteString(s[:76])
		w.WriteString("\n        ")
		s = s[76:]
	}
	w.WriteString(s)
	return w.String()
}

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestFHIRXMLAttachmentIsLiftedOut(t *testing.T) {
	big, small := random(t, 300<<10), random(t, 1<<10)
	in := []byte(`<?xml version="1.0" encoding="UTF-8"?>
<Bundle xmlns="http://hl7.org/fhir">
  <!-- <data value="` + base64.StdEncoding.EncodeToString(big) + `"/> in a comment stays -->
  <entry><resource><Communication>
    <payload><contentAttachment><contentType value="application/pdf"/>
      <data value="` + wrapped(big) + `"/>
      <title value="scan"/></contentAttachment></payload>
    <payload><contentAttachment><data value='` + base64.StdEncoding.EncodeToString(small) + `'/></contentAttachment></payload>
    <payload><contentString value="` + strings.Repeat("QUJD", 20000) + `"/></payload>
  </Communication></resource></entry>
</Bundle>
`)
	d := scanBytes(t, in, Options{})
	if len(d.Parts) != 1 {
		t.Fatalf("%d parts lifted, want 1 (the large data value only)", len(d.Parts))
	}
	if len(d.Data) > len(in)-len(big) {
		t.Errorf("the document is still %d bytes", len(d.Data))
	}
	if got := rebuild(t, d); !bytes.Equal(got, in) {
		t.Fatal("the document with its parts put back differs from the input")
	}
	if d.Size != int64(len(in)) || d.SHA256 != digest(in) {
		t.Errorf("size %d digest %s, want the input's", d.Size, d.SHA256)
	}
	if bytes.Count(d.Data, []byte{'\n'}) != bytes.Count(in, []byte{'\n'}) {
		t.Error("line numbers moved")
	}
	p := d.Part(" " + d.Parts[0].Token + "\n ")
	if p == nil || d.Part("samhubpart0") != nil {
		t.Fatal("Part does not find tokens, or finds what is none")
	}
	if err := p.Measure(); err != nil {
		t.Fatal(err)
	}
	if p.Size != int64(len(big)) || p.SHA256 != digest(big) || p.Encoded != int64(base64.StdEncoding.EncodedLen(len(big))) {
		t.Errorf("measured %d bytes %s (%d encoded)", p.Size, p.SHA256, p.Encoded)
	}
	// The document parses, and the value reads as the token.
	doc, err := xmlsafe.Parse(d.Data, xmlsafe.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if v := doc.FindElement("//contentAttachment/data").SelectAttrValue("value", ""); d.Part(v) != p {
		t.Errorf("data value %.40q is not the part's token", v)
	}
}

func TestFHIRJSONAndVANSEnvelope(t *testing.T) {
	big := random(t, 200<<10)
	js := []byte(`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Communication","payload":[` +
		`{"contentAttachment":{"contentType":"application/pdf","data":"` + base64.StdEncoding.EncodeToString(big) + `","title":"scan"}},` +
		`{"contentString":"` + strings.Repeat("QUJD", 20000) + `"},` +
		`{"contentAttachment":{"data":"` + strings.Repeat("QUJD", 20000) + `\/"}}]}}]}`)
	d := scanBytes(t, js, Options{})
	if len(d.Parts) != 1 || !bytes.Equal(rebuild(t, d), js) {
		t.Fatalf("%d parts; JSON not kept", len(d.Parts))
	}
	if err := d.Parts[0].Measure(); err != nil || d.Parts[0].SHA256 != digest(big) {
		t.Fatalf("measure: %v", err)
	}

	// The JSON message in a VANSEnvelope: the Data is lifted, and scanned
	// in turn as it is decoded.
	env := []byte(`<?xml version="1.0"?>
<VANSEnvelope xmlns="urn:oio:medcom:vans-envelope:1.0.4"><Message><Data>
` + wrapped(js) + `
</Data></Message></VANSEnvelope>`)
	outer := scanBytes(t, env, Options{})
	if len(outer.Parts) != 1 || !bytes.Equal(rebuild(t, outer), env) {
		t.Fatalf("%d parts in the envelope", len(outer.Parts))
	}
	inner, err := outer.Parts[0].Scan(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if outer.Parts[0].Size != int64(len(js)) || len(inner.Parts) != 1 || !bytes.Equal(rebuild(t, inner), js) {
		t.Fatalf("inner: size %d, %d parts", outer.Parts[0].Size, len(inner.Parts))
	}
	if err := inner.Parts[0].Measure(); err != nil || inner.Parts[0].SHA256 != digest(big) {
		t.Fatalf("the attachment inside the envelope: %v", err)
	}
}

// Values that are not one to lift stay where they are: cut by markup, with
// an entity, under another element or attribute, not base64, in CDATA.
func TestValuesThatStay(t *testing.T) {
	long := strings.Repeat("QUJD", 20000)
	for name, in := range map[string]string{
		"entity":        `<Bundle><data value="` + long + `&#10;` + long + `"/></Bundle>`,
		"other attr":    `<Bundle><data id="` + long + `"/></Bundle>`,
		"other element": `<Bundle><date value="` + long + `"/></Bundle>`,
		"cdata":         `<Bundle><x><![CDATA[<data value="` + long + `"/>]]]></x><data value="AA=="/></Bundle>`,
		"pi":            `<Bundle><?pi <data value="` + long + `"/> ?></Bundle>`,
		"not base64":    `<Bundle><data value="` + long + `*` + long + `"/></Bundle>`,
		"vans child":    `<VANSEnvelope><Data>` + long + `<b/>` + long + `</Data></VANSEnvelope>`,
		"no root rule":  `<Emessage><data value="` + long + `"/></Emessage>`,
		"dtd":           `<!DOCTYPE x [<!ENTITY a "b">]><Bundle><data value="` + long + `"/></Bundle>`,
		"json escape":   `{"data":"` + long + `\/` + long + `"}`,
		"json array":    `{"x":["` + long + `"],"data":1}`,
		"cut":           `<Bundle><data value="` + long,
	} {
		d := scanBytes(t, []byte(in), Options{})
		if len(d.Parts) != 0 || string(d.Data) != in {
			t.Errorf("%s: %d parts lifted, document changed: %v", name, len(d.Parts), string(d.Data) != in)
		}
	}
}

func TestValueOverTheLimitIsRefused(t *testing.T) {
	in := []byte(`<Bundle><data value="` + strings.Repeat("QUJD", 50000) + `"/></Bundle>`)
	_, err := Scan(File(bytes.NewReader(in), int64(len(in))), Options{MaxValue: 100000})
	var xe *xmlsafe.Error
	if !errors.As(err, &xe) || xe.Reason != xmlsafe.ReasonAttrTooLong || xe.Line != 1 {
		t.Fatalf("%v, want xmlsafe too_long on line 1", err)
	}
}

func TestCorruptBase64IsReportedOnMeasure(t *testing.T) {
	in := []byte(`<Bundle><data value="` + strings.Repeat("QUJD", 20000) + `=QUJD"/></Bundle>`)
	d := scanBytes(t, in, Options{})
	if len(d.Parts) != 1 {
		t.Fatalf("%d parts", len(d.Parts))
	}
	if err := d.Parts[0].Measure(); !errors.Is(err, ErrNotBase64) {
		t.Fatalf("%v, want ErrNotBase64", err)
	}
}

// MedCom's own examples and vendors' letters come through byte for byte.
func TestMedComExamplesAreKept(t *testing.T) {
	files, _ := filepath.Glob("../../../testdata/medcom/fhir/*.*")
	more, _ := filepath.Glob("../../../testdata/medcom/fhir/golden/*")
	verified, _ := filepath.Glob("../../../testdata/medcom/fhir/verified/*")
	files = append(append(files, more...), verified...)
	if len(files) < 10 {
		t.Fatalf("found %d examples", len(files))
	}
	for _, f := range files {
		in, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		d := scanBytes(t, in, Options{MinRun: 1024})
		if !bytes.Equal(rebuild(t, d), in) {
			t.Errorf("%s: not kept", filepath.Base(f))
		}
	}
}

func FuzzScanKeepsTheMessage(f *testing.F) {
	long := strings.Repeat("QUJD", 40)
	for _, s := range []string{
		`<Bundle><data value="` + long + `"/></Bundle>`,
		`<VANSEnvelope><Data>` + long + `</Data></VANSEnvelope>`,
		`{"data":"` + long + `"}`,
		`<Bundle a='1' b="2"><data value='` + long + `'/><!-- -- --><![CDATA[]]]]>`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		d, err := Scan(File(bytes.NewReader(in), int64(len(in))), Options{MinRun: 64})
		if err != nil {
			return
		}
		if got := rebuild(t, d); !bytes.Equal(got, in) {
			t.Fatalf("not kept:\n%q\n%q", in, got)
		}
		if d.Size != int64(len(in)) {
			t.Fatalf("size %d of %d", d.Size, len(in))
		}
	})
}
