package xmlsafe

import (
	"runtime"
	"strings"
	"testing"
)

// heapGrowth returns how far the garbage collector's heap goal rose while f
// ran. The goal is twice the heap that was live at the last collection, and a
// tree that grows until the input is refused is live at every collection
// during f, so a tree of the input shows as hundreds of MB; the garbage of a
// check-only pass does not.
func heapGrowth(f func()) int64 {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return int64(after.NextGC) - int64(before.NextGC)
}

// Markup bombs of 10 MB are refused with a small tree: a depth bomb at the
// 101st level, flat bombs of 2 million elements by the token budget (about
// 60,000 tokens for 10 MB). A 10 MB value costs nothing beyond the input:
// the tree shares its bytes.
func TestBombsKeepHeapSmall(t *testing.T) {
	const size = 10 << 20
	const maxGrowth = 16 << 20
	for _, tc := range []struct {
		name string
		data []byte
		want Reason
	}{
		{"depth", []byte(strings.Repeat("<a>", size/3)), ReasonTooDeep},
		{"flat-text", []byte("<r>" + strings.Repeat("<a/>x", size/5) + "</r>"), ReasonTooMany},
		{"flat", []byte("<r>" + strings.Repeat("<a/>", size/4) + "</r>"), ReasonTooMany},
		{"attribute", []byte(`<r a="` + strings.Repeat("A", size) + `"/>`), ""},
		{"text", []byte(`<r>` + strings.Repeat("A", size) + `</r>`), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			grew := heapGrowth(func() { _, err = Parse(tc.data, DefaultLimits()) })
			t.Logf("heap goal rose by %d MB", grew>>20)
			if tc.want == "" && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if tc.want != "" && reason(t, err) != tc.want {
				t.Fatalf("reason %s, want %s (%v)", reason(t, err), tc.want, err)
			}
			if grew > maxGrowth {
				t.Errorf("heap goal rose by %d MB refusing %d MB of markup, want at most %d MB", grew>>20, len(tc.data)>>20, maxGrowth>>20)
			}
		})
	}
}

// The placeholders are invisible: with every value taken out of the
// decoder's way (long = 1) Parse gives the tree, or the refusal, it gives
// when none is.
func TestSubstitutionIsInvisible(t *testing.T) {
	lim := Limits{MaxTokens: 1000, MaxDepth: 20}
	for _, in := range []string{
		strings.Repeat("<a>", 30),
		"<r>" + strings.Repeat("<a/>", 600) + "</r>",
		`<!DOCTYPE r [<!ENTITY a "b">]><r>&a;</r>`,
		"<r><a></r>",
		"<r>",
		"<r/><r/>",
		`<?xml version="1.0" encoding="ISO-8859-1"?><r>K` + "\xc3\xa6" + `re</r>`,
		`<?xml version="1.0" encoding="ISO-8859-1"?><r a="K` + "\xe6" + `re">K` + "\xe6re\r\nx" + `</r>`,
		`<?xml version="1.0" encoding="windows-1252"?><r>` + "\x80 \xe6" + `<!-- ` + "\xf8" + ` --></r>`,
		"<r a=\"x&amp;y&#65;&#x42;&lt;&gt;&quot;&apos;\" b='\"'>t&amp;u\r\nv\rw</r>",
		"<r><![CDATA[a&amp;<b>]]c\r\nd]]>e<!-- c\r\n --></r>",
		"<r>a]]>b</r>",
		"<r>&bogus;</r>",
		"<r>&#0;</r>",
		"<r>&#xD800;</r>",
		"<r a=\"1<2\"/>",
		"<r><!-- a -- b --></r>",
		"<r><!-- a ---></r>",
		"<r>\x01</r>",
		"<r>\xff</r>",
		"<r a = \"1\"\n b\t=\t'2' ></r >",
		"<r>\n  <a>x</a>\n</r>\n",
		"<r>line\nline\n<a b=\"x\ny\"/>\n</r><bad",
		"<r><?pi some data?></r>",
	} {
		want, wantErr := parse([]byte(in), lim, 1<<30)
		got, err := parse([]byte(in), lim, 1)
		switch {
		case (err == nil) != (wantErr == nil):
			t.Errorf("%.60q: with placeholders %v, without %v", in, err, wantErr)
		case err != nil:
			if reason(t, err) != reason(t, wantErr) {
				t.Errorf("%.60q: with placeholders %v, without %v", in, err, wantErr)
			}
		default:
			g, _ := got.WriteToString()
			w, _ := want.WriteToString()
			if g != w {
				t.Errorf("%.60q: tree with placeholders\n%q\nwithout\n%q", in, g, w)
			}
		}
	}
}
