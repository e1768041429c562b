package reliability

import (
	"fmt"
	"testing"
)

// oFakeTB records what oRequire reports instead of failing the test.
type oFakeTB struct {
	testing.TB
	errs []string
}

func (f *oFakeTB) Helper()                        {}
func (f *oFakeTB) Errorf(format string, a ...any) { f.errs = append(f.errs, fmt.Sprintf(format, a...)) }

// TestOracleJoinsPerLetter checks the oracle on made-up holdings: one
// lost letter plus one duplicated must fail although the totals match; a
// copy under a new identity is found by its marker or its original bytes;
// a transmission repeated under its own id is a repeat, not a second copy;
// a parked letter is not lost, and fails unless parking is allowed.
func TestOracleJoinsPerLetter(t *testing.T) {
	l := oNewLedger()
	for i := range 4 {
		l.Add(fmt.Sprintf("L%d", i), []byte(fmt.Sprintf("<Text01>brev %s</Text01>", oMarker("TST", i))), destCase, destParents)
	}
	var items []oItem
	doc := func(ident, letter string, text string) oItem {
		return oItem{Dest: destCase, Ident: ident, Letter: letter, Text: text}
	}
	mail := func(ident, text string) oItem {
		return oItem{Dest: destParents, Ident: ident, Text: text, Transmission: true}
	}
	// Letter 0: once everywhere. Letter 1: no document (lost), but its mail.
	// Letter 2: two documents (the second under a new identity, found by
	// marker), one mail sent twice under one Message-ID. Letter 3: a
	// document and two mails under two Message-IDs.
	items = append(items, doc("D1", "L0", ""), mail("<m0@x>", "Hej "+oMarker("TST", 0)))
	items = append(items, mail("<m1@x>", oMarker("TST", 1)))
	items = append(items, doc("D2", "L2", ""), doc("D3", "L2~twin", "rendering of "+oMarker("TST", 2)), mail("<m2@x>", oMarker("TST", 2)), mail("<m2@x>", oMarker("TST", 2)))
	items = append(items, doc("D4", "L3", ""), mail("<m3@x>", oMarker("TST", 3)), mail("<m3b@x>", oMarker("TST", 3)))
	items = append(items, doc("D5", "unknown", "no marker"))
	v := oJoin(l, items, nil)
	c, p := v.Dests[destCase], v.Dests[destParents]
	if c.Once != 2 || c.Lost != 1 || c.Dup != 1 || c.LostIDs[0] != "L1" || c.DupIDs[0] != "L2" {
		t.Errorf("casefile: %+v; want once 2 (L0, L3), lost L1, dup L2", *c)
	}
	if p.Once != 3 || p.Dup != 1 || p.Repeat != 1 || p.DupIDs[0] != "L3" || p.RepeatIDs[0] != "L2" {
		t.Errorf("parents: %+v; want once 3, dup L3 (two Message-IDs), repeat L2 (one Message-ID twice)", *p)
	}
	if len(v.Stray) != 1 || v.Stray[0] != "casefile D5" {
		t.Errorf("stray %v, want the document of no letter", v.Stray)
	}
	// Totals match (4 letters, 4 documents and a stray), yet it fails.
	f := &oFakeTB{TB: t}
	oRequire(f, v, oAllow{Repeats: map[string]int{destParents: 1}})
	if len(f.errs) != 1 {
		t.Errorf("oRequire reported %q, want one failure for lost, dup and stray", f.errs)
	}
	f = &oFakeTB{TB: t}
	oRequire(f, v, oAllow{})
	if len(f.errs) != 2 {
		t.Errorf("oRequire without allowed repeats reported %d failures, want 2 (the verdict, the repeat)", len(f.errs))
	}

	// Parked: no copy, in the retry queue at that destination.
	v = oJoin(l, []oItem{doc("D1", "L0", ""), doc("D2", "L1", ""), doc("D3", "L2", "")}, map[string]bool{"casefile|L3": true, "parents|L3": true})
	if tl := v.Dests[destCase]; tl.Once != 3 || tl.Parked != 1 || tl.Lost != 0 {
		t.Errorf("casefile with L3 parked: %+v", *tl)
	}
	if tl := v.Dests[destParents]; tl.Lost != 3 || tl.Parked != 1 {
		t.Errorf("parents with only L3 parked: %+v", *tl)
	}
	f = &oFakeTB{TB: t}
	oRequire(f, oJoin(l, nil, map[string]bool{"casefile|L0": true}), oAllow{Parked: true})
	if len(f.errs) != 1 {
		t.Errorf("parking allowed, the rest lost: %q, want one failure", f.errs)
	}
}
