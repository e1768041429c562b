package xmlsafe

import (
	"errors"
	"strings"
	"testing"
)

// leaves runs a head scan keeping every value.
func leaves(data string, json bool, lim Limits) map[string]string {
	got := map[string]string{}
	opt := HeadOptions{Keep: func(string) bool { return true }, Leaf: func(p, v string) { got[p] = v }, TypeWrapper: "resource"}
	if json {
		HeadJSON([]byte(data), lim, opt)
	} else {
		HeadXML([]byte(data), lim, opt)
	}
	return got
}

// TestOffsetIsWhereTheFaultIs: a refusal says how far the input was read,
// so a head scan reads nothing after the fault.
func TestOffsetIsWhereTheFaultIs(t *testing.T) {
	for _, c := range []struct {
		in   string
		json bool
		want int // the offset is at least this and at most the fault's end
		end  int
	}{
		{"<a><b>1</b><c>2", false, len("<a><b>1</b><c>2"), len("<a><b>1</b><c>2")},
		{"\xEF\xBB\xBF<a><b>1</b></x></a>", false, len("\xEF\xBB\xBF<a><b>1</b>"), len("\xEF\xBB\xBF<a><b>1</b></x>")},
		{`{"a": "1", "b": [1, 2`, true, len(`{"a": "1", "b": [1`), len(`{"a": "1", "b": [1, 2`)},
	} {
		var err error
		if c.json {
			_, err = DecodeJSON([]byte(c.in), DefaultLimits())
		} else {
			_, err = Parse([]byte(c.in), DefaultLimits())
		}
		var xe *Error
		if !errors.As(err, &xe) || xe.Reason != ReasonSyntax {
			t.Fatalf("%q: %v, want a syntax error", c.in, err)
		}
		if xe.Offset < c.want || xe.Offset > c.end {
			t.Errorf("%q: offset %d, want %d to %d", c.in, xe.Offset, c.want, c.end)
		}
	}
}

// TestHeadScanKeepsWhatEndedBeforeTheFault: values of elements closed
// before the end or the first fault are kept, nothing after it.
func TestHeadScanKeepsWhatEndedBeforeTheFault(t *testing.T) {
	lim := DefaultLimits()
	got := leaves(`<?xml version="1.0"?><E><!-- c --><Env><Id>ENV&amp;1</Id></Env><L><Id>L1</Id><Id>L2</Id><S><EAN>57</EAN></S><P><CPR>2509`, false, lim)
	want := map[string]string{"E[0].Env[0].Id[0]": "ENV&1", "E[0].L[0].Id[0]": "L1", "E[0].L[0].Id[1]": "L2", "E[0].L[0].S[0].EAN[0]": "57"}
	if len(got) != len(want) {
		t.Errorf("kept %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	// FHIR XML and JSON give the same paths.
	x := leaves(`<Bundle><entry><resource><MessageHeader><id value="h1"/></MessageHeader></resource></entry><entry><resource><Patient><id value="p`, false, lim)
	j := leaves(`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"MessageHeader","id":"h1"}},{"resource":{"resourceType":"Patient","id":"p`, true, lim)
	for _, k := range []string{"entry[0].resource[0].resourceType[0]", "entry[0].resource[0].id[0]"} {
		if x["Bundle[0]."+k] == "" || x["Bundle[0]."+k] != j[k] {
			t.Errorf("%s: xml %q, json %q", k, x["Bundle[0]."+k], j[k])
		}
	}
	if _, ok := j["entry[1].resource[0].id[0]"]; ok {
		t.Error("json: a string cut off was kept")
	}
	// What follows a fault is never read: an unknown entity, a DTD, a
	// mismatched end tag.
	for _, in := range []string{`<E><a>1</a>&x;<b>2</b></E>`, `<E><a>1</a><!DOCTYPE x><b>2</b></E>`, `<E><a>1</a></x><b>2</b></E>`} {
		if g := leaves(in, false, lim); g["E[0].b[0]"] != "" || g["E[0].a[0]"] != "1" {
			t.Errorf("%s: kept %v", in, g)
		}
	}
}

// TestHeadScanKeepsToTheLimits: depth, tokens and attributes stop the
// scan as they refuse a parse.
func TestHeadScanKeepsToTheLimits(t *testing.T) {
	lim := DefaultLimits()
	deep := "<E>" + strings.Repeat("<a>", 200) + "<id>1</id>"
	if g := leaves(deep, false, lim); len(g) != 0 {
		t.Errorf("deep XML: kept %v", g)
	}
	deepJSON := `{"x":` + strings.Repeat("[", 200) + `"1"`
	if g := leaves(deepJSON, true, lim); len(g) != 0 {
		t.Errorf("deep JSON: kept %v", g)
	}
	var attrs strings.Builder
	for i := range 300 {
		attrs.WriteString(` a` + strings.Repeat("x", i%3) + string(rune('a'+i%26)) + `="1"`)
	}
	if g := leaves("<E"+attrs.String()+"><id>1</id></E>", false, lim); g["E[0].id[0]"] != "" {
		t.Errorf("300 attributes: kept %v", g)
	}
	small := lim
	small.MaxTokens, small.TokenBytes = 10, 1<<30
	if g := leaves("<E>"+strings.Repeat("<a>1</a>", 20)+"<id>1</id></E>", false, small); g["E[0].id[0]"] != "" {
		t.Error("the token budget did not stop the scan")
	}
	long := "<E><id>" + strings.Repeat("1", 300) + "</id><ok>1</ok></E>"
	if g := leaves(long, false, lim); g["E[0].id[0]"] != "" || g["E[0].ok[0]"] != "1" {
		t.Errorf("a long value: kept %v", g)
	}
}

// FuzzHead: a head scan of any input, as XML and as JSON, and of the part
// a refusal says was read, ends, keeps at most maxHeadLeaves values of at
// most maxHeadValue bytes each, and gives only spans inside the input.
// It reads untrusted bytes by hand (encoding/xml gives no text of an
// element the input ends in, which a VANSEnvelope cut off in transit is),
// so it gets a fuzz target of its own.
func FuzzHead(f *testing.F) {
	seedCorpus(f)
	f.Add([]byte(`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"MessageHeader","id":"x"`))
	f.Fuzz(func(t *testing.T, data []byte) {
		lim := DefaultLimits()
		check := func(in []byte, json bool) {
			n := 0
			opt := HeadOptions{
				Keep: func(string) bool { return true },
				Leaf: func(p, v string) {
					n++
					if len(v) > maxHeadValue {
						t.Fatalf("a value of %d bytes kept at %s", len(v), p)
					}
				},
				TypeWrapper: "resource",
				SpanKeep:    func(string) bool { return true },
				Span: func(p string, from, to int) {
					if from < 0 || from > to || to > len(in) {
						t.Fatalf("span %d..%d of an input of %d bytes at %s", from, to, len(in), p)
					}
				},
			}
			if json {
				HeadJSON(in, lim, opt)
			} else {
				HeadXML(in, lim, opt)
			}
			if n > maxHeadLeaves {
				t.Fatalf("%d values kept", n)
			}
		}
		check(data, false)
		check(data, true)
		var xe *Error
		if _, err := Parse(data, lim); errors.As(err, &xe) && xe.Offset > 0 && xe.Offset <= len(data) {
			check(data[:xe.Offset], false)
		}
		if _, err := DecodeJSON(data, lim); errors.As(err, &xe) && xe.Offset > 0 && xe.Offset <= len(data) {
			check(data[:xe.Offset], true)
		}
	})
}
