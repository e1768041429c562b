package fhirmsg

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"strconv"
	"strings"
	"testing"

	"github.com/samhub/samhub/adapters/medcom/xmlsafe"
)

// attachmentFixture is a CareCommunication (XML) with one PDF attachment,
// and the attachment's bytes.
func attachmentFixture(t *testing.T) ([]byte, []byte) {
	t.Helper()
	data := readFile(t, "Bundle-c0426e3e-978f-46e8-a366-a30f27854b0a.xml")
	i := bytes.Index(data, []byte(`<data value="`)) + len(`<data value="`)
	j := bytes.IndexByte(data[i:], '"')
	pdf, err := base64.StdEncoding.DecodeString(string(data[i : i+j]))
	if err != nil {
		t.Fatal(err)
	}
	return data, pdf
}

// Declared sizes and digests are held to the content: a declaration that
// contradicts it is refused, naming the element.
func TestAttachmentSizeAndHashAreChecked(t *testing.T) {
	data, pdf := attachmentFixture(t)
	sum := sha1.Sum(pdf)
	declare := func(extra string) []byte {
		return bytes.Replace(data, []byte(`<contentType value="application/pdf"/>`), []byte(`<contentType value="application/pdf"/>`+extra), 1)
	}
	good := declare(`<size value="` + itoa(len(pdf)) + `"/><hash value="` + base64.StdEncoding.EncodeToString(sum[:]) + `"/>`)
	if err := Validate(mustParse(t, good)); err != nil {
		t.Fatalf("true size and hash refused: %v", err)
	}
	for _, tc := range []struct{ extra, want string }{
		{`<size value="5000000000"/>`, "contentAttachment.size: must be an unsignedInt"},
		{`<size value="` + itoa(len(pdf)+1) + `"/>`, "contentAttachment.size: declares " + itoa(len(pdf)+1) + " bytes, but data holds " + itoa(len(pdf))},
		{`<size value="-1"/>`, "contentAttachment.size: must be an unsignedInt"},
		{`<hash value="` + base64.StdEncoding.EncodeToString(make([]byte, 20)) + `"/>`, "contentAttachment.hash: does not match the SHA-1 of data"},
		{`<hash value="c2hvcnQ="/>`, "contentAttachment.hash: must be the base64 SHA-1"},
	} {
		m, err := Parse(declare(tc.extra), xmlsafe.DefaultLimits())
		if err == nil {
			err = Validate(m)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "Bundle.entry[") {
			t.Errorf("%s: %v, want %q with its path", tc.extra, err, tc.want)
		}
	}
}

func TestVANSSizeInBytesIsChecked(t *testing.T) {
	inner := readFile(t, "Bundle-add5e7e2-0c0f-4a4a-bfff-f6f984fa7e3c.xml")
	env, err := BuildVANSEnvelope(inner, Envelope{EnvelopeID: "0b6f3a6e-4f5d-4d7c-9a43-2f1f0c1b2a11", MessageID: "4c1d2b7e-9a1e-4b0e-8f5d-6b7a3c2d1e0f",
		FromGLN: "5790000209354", ToGLN: "5790001348120", Encoding: EncodingXML, Name: "MCM:FDIS91#other", Version: "5.0", Now: fixedNow()})
	if err != nil {
		t.Fatal(err)
	}
	size := "<SizeInBytes>" + itoa(len(inner)) + "</SizeInBytes>"
	if !bytes.Contains(env, []byte(size)) {
		t.Fatalf("the envelope does not declare %s", size)
	}
	b64 := base64.StdEncoding.EncodedLen(len(inner))
	for declared, ok := range map[string]bool{itoa(len(inner)): true, itoa(b64): true, "5000000000": false, itoa(len(inner) + 7): false, "many": false} {
		_, err := Parse(bytes.Replace(env, []byte(size), []byte("<SizeInBytes>"+declared+"</SizeInBytes>"), 1), xmlsafe.DefaultLimits())
		switch {
		case ok && err != nil:
			t.Errorf("SizeInBytes %s refused: %v", declared, err)
		case !ok && (err == nil || !strings.Contains(err.Error(), "VANSEnvelope.Message.MetaInformation.Document.SizeInBytes")):
			t.Errorf("SizeInBytes %s: %v, want a refusal naming the element", declared, err)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
