package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The letters written over the template are the letters the template with
// its identifiers replaced would give, each with its own identifiers.
func TestLettersAreTheTemplateWithTheirOwnIdentifiers(t *testing.T) {
	g, err := loadLetters("../../..")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join("../../..", letterTemplate))
	if err != nil {
		t.Fatal(err)
	}
	orig := string(raw)
	for _, c := range [][2]int{{0, 0}, {1, 7}, {3, 9_999_999}} {
		run, i := c[0], c[1]
		n := run*10_000_000 + i
		want := strings.Replace(orig, tmplEnvelope, fmt.Sprintf("ENV%011d", n), 1)
		want = strings.Replace(want, tmplLetter, fmt.Sprintf("LTR%011d", n), 1)
		want = strings.Replace(want, tmplEpisode, fmt.Sprintf("%032x", n), 1)
		want = strings.Replace(want, tmplReceiver, benchReceiver, 1)
		_, got, id := g.letter(run, i)
		if string(got) != want {
			t.Errorf("letter %d of run %d differs from the template with its identifiers replaced", i, run)
		}
		if !strings.Contains(string(got), strings.TrimPrefix(id, senderEAN+"#")) {
			t.Errorf("letter %d of run %d does not hold its id %s", i, run, id)
		}
	}
}
