package pipeline

import (
	"fmt"
	"testing"

	"github.com/samhub/samhub/pipeline/letter"
)

func stored(t *testing.T, id string) []byte {
	t.Helper()
	b, err := letter.Marshal(&letter.Letter{ID: id, Kind: letter.KindReferral, Text: "tekst"})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodedIsSharedByTheDestinations(t *testing.T) {
	d := newDecoded(3, 8)
	raw := stored(t, "L1")
	a, _ := d.get(7, raw)
	b, _ := d.get(7, raw)
	c, _ := d.get(7, raw)
	if a != b || b != c || a.ID != "L1" {
		t.Fatalf("three destinations got %p %p %p; want one shared decode of L1", a, b, c)
	}
	if len(d.entries) != 0 {
		t.Fatalf("%d entries kept after every destination took the letter", len(d.entries))
	}
	// A fourth read (a redelivery) decodes again rather than failing.
	if again, err := d.get(7, raw); err != nil || again == a || again.ID != "L1" {
		t.Fatalf("redelivery: %v %v", again, err)
	}
}

func TestDecodedNeverMixesLetters(t *testing.T) {
	d := newDecoded(2, 8)
	first, _ := d.get(1, stored(t, "L1"))
	// Same sequence, other bytes (a stream made anew): decoded afresh.
	other, _ := d.get(1, stored(t, "L2"))
	if first.ID != "L1" || other.ID != "L2" {
		t.Fatalf("got %s and %s", first.ID, other.ID)
	}
	if _, err := d.get(2, []byte("{not json")); err == nil {
		t.Fatal("bad bytes must give the decode error")
	}
}

func TestDecodedIsBounded(t *testing.T) {
	d := newDecoded(3, 8)
	for i := range 1000 {
		if _, err := d.get(uint64(i+1), stored(t, fmt.Sprint("L", i))); err != nil {
			t.Fatal(err)
		}
	}
	if len(d.entries) > 8 || len(d.order) > 4*8+1 {
		t.Fatalf("cache holds %d entries and %d sequences; bound is 8", len(d.entries), len(d.order))
	}
}
