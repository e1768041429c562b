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

// Markup bombs of 10 MB are refused without building their tree: a depth
// bomb at the 101st level, a flat bomb of 2.6 million elements by the token
// limit in the check-only pass that runs before any tree for input with that
// much markup.
func TestBombsKeepHeapSmall(t *testing.T) {
	const size = 10 << 20
	const maxGrowth = 64 << 20
	for _, tc := range []struct {
		name string
		data []byte
		want Reason
	}{
		{"depth", []byte(strings.Repeat("<a>", size/3)), ReasonTooDeep},
		{"flat-text", []byte("<r>" + strings.Repeat("<a/>x", size/5) + "</r>"), ReasonTooMany},
		{"flat", []byte("<r>" + strings.Repeat("<a/>", size/4) + "</r>"), ReasonTooMany},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			grew := heapGrowth(func() { _, err = Parse(tc.data, DefaultLimits()) })
			t.Logf("heap goal rose by %d MB", grew>>20)
			if reason(t, err) != tc.want {
				t.Fatalf("reason %s, want %s (%v)", reason(t, err), tc.want, err)
			}
			if grew > maxGrowth {
				t.Errorf("heap goal rose by %d MB refusing %d MB of markup, want at most %d MB", grew>>20, len(tc.data)>>20, maxGrowth>>20)
			}
		})
	}
}

// Under the tree budget the limits fire in the single pass, with the same
// reasons as in the check-only pass.
func TestSinglePassAndCheckPassAgree(t *testing.T) {
	lim := Limits{MaxTokens: 1000, MaxDepth: 20}
	for _, in := range []string{
		strings.Repeat("<a>", 30),
		"<r>" + strings.Repeat("<a/>", 600) + "</r>",
		`<!DOCTYPE r [<!ENTITY a "b">]><r>&a;</r>`,
		"<r><a></r>",
		"<r>",
		"<r/><r/>",
		`<?xml version="1.0" encoding="ISO-8859-1"?><r>K` + "\xc3\xa6" + `re</r>`,
	} {
		_, checkErr := walk([]byte(in), lim.withDefaults(), false)
		_, err := Parse([]byte(in), lim)
		if err == nil {
			t.Errorf("%.40q accepted", in)
			continue
		}
		if checkErr != nil && checkErr.Error() != err.Error() {
			t.Errorf("%.40q: check pass says %v, Parse says %v", in, checkErr, err)
		}
	}
}
