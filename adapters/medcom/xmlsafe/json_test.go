package xmlsafe

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
)

func TestUnquotedLen(t *testing.T) {
	for _, raw := range []string{`""`, `"abc"`, `"\u00e6\u00f8"`, `"\ud83d\ude00x"`, `"\n\t\"\\\/\b\f\r"`, `"æø å"`, `"\u0041\u20AC"`, strings.Repeat(`\u00e6`, 3)} {
		if !strings.HasPrefix(raw, `"`) {
			raw = `"` + raw + `"`
		}
		s, err := jsontext.AppendUnquote(nil, raw)
		if err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		if got := unquotedLen([]byte(raw)); got != len(s) {
			t.Errorf("%s: unquotedLen %d, want %d", raw, got, len(s))
		}
		if got, ok := unquote([]byte(raw)); !ok || string(got) != string(s) || cap(got) != len(s) {
			t.Errorf("%s: unquote %q (ok %v, cap %d), want %q in a buffer of its length", raw, got, ok, cap(got), s)
		}
	}
	for _, raw := range []string{`"\x"`, `"\u12"`, `"\u12G4"`, `"\"`, `"`} {
		if got, ok := unquote([]byte(raw)); ok {
			t.Errorf("%s: unquote gave %q, want a refusal", raw, got)
		}
	}
}

// A long string of escapes is unquoted into memory of its own length, not
// the literal's (jsontext.AppendUnquote grows to the literal's first).
func TestUnquoteAllocatesItsLength(t *testing.T) {
	raw := []byte(`"` + strings.Repeat(`\u00e6`, 100_000) + `"`)
	var s []byte
	allocs := testing.AllocsPerRun(3, func() { s, _ = unquote(raw) })
	if len(s) != 200_000 || cap(s) != 200_000 || allocs != 1 {
		t.Errorf("unquote: %d bytes in a buffer of %d, %v allocations; want 200000 in one of 200000", len(s), cap(s), allocs)
	}
}

// DecodeJSON gives what encoding/json gives an any with UseNumber, for
// every input both accept; what encoding/json refuses it refuses too.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{`{"a":[1,2.5e3,"x\u00e6",true,null,{}]}`, `{"a":1,"a":2}`, `[]`, `"s"`, `{"a":"\ud83d\ude00"}`, `{`, `{"a":1}{}`, `  {"b" : [ ] } `} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lim := Limits{MaxDepth: 1000, MaxTokens: 1 << 20}
		got, err := DecodeJSON(data, lim)
		body := bytes.TrimPrefix(data, []byte{0xEF, 0xBB, 0xBF})
		if !json.Valid(body) {
			if err == nil {
				t.Fatalf("accepted what encoding/json refuses: %q", data)
			}
			return
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		var want any
		if werr := dec.Decode(&want); werr != nil {
			t.Fatal(werr)
		}
		if err == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("decoded %#v, encoding/json %#v", got, want)
		}
	})
}

func TestDecodeJSONDuplicates(t *testing.T) {
	v, dups, err := DecodeJSONDuplicates([]byte(`{"a":1,"b":{"c":[{"d":1,"d":2}],"_c":{}},"a":"x","e~/f":1,"e~/f":2}`), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/b/c/0/d", "/a", "/e~0~1f"}; !reflect.DeepEqual(dups, want) {
		t.Errorf("duplicates = %q, want %q", dups, want)
	}
	if a := v.(map[string]any)["a"]; a != "x" {
		t.Errorf("a = %v, want the last value", a)
	}
	if _, dups, _ := DecodeJSONDuplicates([]byte(`{"a":{"x":1},"b":{"x":1},"_a":1}`), DefaultLimits()); len(dups) != 0 {
		t.Errorf("same names in different objects reported: %q", dups)
	}
}
