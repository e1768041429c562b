package fhirmsg

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// typeFindings are the JSON type findings Validate reports for data, as
// "path: message".
func typeFindings(t *testing.T, data []byte) []string {
	t.Helper()
	m := mustParse(t, data)
	var out []string
	for _, e := range unwrapAll(Validate(m)) {
		var fe *FieldError
		if errors.As(e, &fe) && strings.HasPrefix(fe.Msg, "must be a JSON ") {
			if fe.Code != IssueDatatype {
				t.Errorf("%s: code %q, want %s", fe.Path, fe.Code, IssueDatatype)
			}
			out = append(out, fe.Path+": "+fe.Msg)
		}
	}
	return out
}

// FHIR JSON writes numbers as numbers, booleans as true or false and the
// other primitives as strings: a letter that writes an attachment's size as
// a string, or a code as a number, is refused with MedCom's datatype code,
// naming the element and not its value.
func TestJSONPrimitivesHaveTheirJSONType(t *testing.T) {
	js := string(readFile(t, "Bundle-b56549f7-ed10-422d-8088-f7222b686e46.json"))
	for _, c := range []struct{ name, from, to, want string }{
		{"size as a string", `"contentType" : "application/pdf",`, `"contentType" : "application/pdf", "size" : "402",`,
			".contentAttachment.size: must be a JSON number, not a string"},
		{"a code as a number", `"contentType" : "application/pdf",`, `"contentType" : 7,`,
			".contentAttachment.contentType: must be a JSON string, not a number"},
		{"a string as a boolean", `"contentType" : "application/pdf",`, `"contentType" : "application/pdf", "language" : true,`,
			".contentAttachment.language: must be a JSON string, not true or false"},
	} {
		t.Run(c.name, func(t *testing.T) {
			doc := strings.Replace(js, c.from, c.to, 1)
			if doc == js {
				t.Fatal("edit changed nothing")
			}
			got := typeFindings(t, []byte(doc))
			if len(got) != 1 || !strings.HasSuffix(got[0], c.want) || !strings.HasPrefix(got[0], "Bundle.entry[") {
				t.Errorf("findings %q, want one ending %q", got, c.want)
			}
			for _, f := range got {
				if strings.Contains(f, "402") || strings.Contains(f, "7,") {
					t.Errorf("a finding carries the value: %q", f)
				}
			}
		})
	}
	// A size written as a number has the right type.
	doc := strings.Replace(js, `"contentType" : "application/pdf",`, `"contentType" : "application/pdf", "size" : 402,`, 1)
	if got := typeFindings(t, []byte(doc)); len(got) != 0 {
		t.Errorf("a numeric size: %q", got)
	}
}

// Every JSON letter in the repository, MedCom's and the vendors', has its
// primitives in their JSON types: the check refuses none of them.
func TestJSONLettersInTheRepositoryPassTheTypeCheck(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(testdata, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no JSON letters in %s: %v", testdata, err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if got := typeFindings(t, data); len(got) != 0 {
			t.Errorf("%s: %q", filepath.Base(f), got)
		}
	}
}

// The JSON writer gives a number or boolean element its JSON type, also
// when its value came from an XML letter as text; text that is not one
// stays a string (and the reader then names it).
func TestJSONWriterWritesNumbersAndBooleansBare(t *testing.T) {
	for _, c := range []struct {
		n    node
		want string
	}{
		{node{name: "size", val: "402", hasVal: true}, `402`},
		{node{name: "active", val: "true", hasVal: true}, `true`},
		{node{name: "size", val: "402 bytes", hasVal: true}, `"402 bytes"`},
		{node{name: "contentType", val: "7", hasVal: true}, `"7"`},
		{node{name: "value", val: "12", hasVal: true}, `"12"`},
	} {
		var b bytes.Buffer
		writeJSONValue(&b, &c.n)
		if b.String() != c.want {
			t.Errorf("%s %q written as %s, want %s", c.n.name, c.n.val, b.String(), c.want)
		}
	}
}
