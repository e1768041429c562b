package httpapi_test

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/samhub/samhub/internal/hubtest"
	"github.com/samhub/samhub/pipeline"
)

// The coordinator lists the rejected files with their reasons and puts one
// back into in/: a letter an older hub took half-written (the file in
// error/ is complete, the note says "not XML") is then delivered once. A
// file whose sender was answered stays, and says why.
func TestRejectedFilesAreListedAndPutBack(t *testing.T) {
	h := hubtest.Start(t)
	tok := hubtest.CoordinatorToken
	good, err := os.ReadFile("../../testdata/medcom/samhub/letter-utf8.xml")
	if err != nil {
		t.Fatal(err)
	}
	errDir := filepath.Join(h.MedComDir, "error")
	if err := os.WriteFile(filepath.Join(errDir, "taken-early.xml"), good, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(errDir, "taken-early.xml.error.txt"), []byte("rejected (no acknowledgement could be addressed): xml: no root element: input is not XML\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	invalid, err := os.ReadFile("../../testdata/medcom/samhub/invalid-letter.xml")
	if err != nil {
		t.Fatal(err)
	}
	h.Drop("invalid.xml", invalid)
	h.Eventually("the invalid letter rejected", func() bool {
		_, err := os.Stat(filepath.Join(errDir, "invalid.xml.error.txt"))
		return err == nil
	})

	st, b := call(t, h, tok, "GET", "/api/v1/rejected", nil)
	if st != 200 {
		t.Fatalf("list: %d %s", st, b)
	}
	var list struct{ Entries []pipeline.Rejected }
	if err := json.Unmarshal(b, &list); err != nil {
		t.Fatal(err)
	}
	got := map[string]pipeline.Rejected{}
	for _, e := range list.Entries {
		got[e.ID] = e
	}
	if len(got) != 2 {
		t.Fatalf("listed %s", b)
	}
	if e := got["invalid.xml"]; e.Source != "medcom" || e.Code != "invalid" || !e.Answered || !strings.Contains(e.Reason, "CivilRegistrationNumber") || e.Size != int64(len(invalid)) {
		t.Errorf("invalid.xml listed as %+v", e)
	}
	if e := got["taken-early.xml"]; e.Answered || !strings.Contains(e.Reason, "input is not XML") {
		t.Errorf("taken-early.xml listed as %+v", e)
	}
	if strings.Contains(string(b), "2509479989") {
		t.Error("the list shows a CPR number")
	}

	put := func(id, reason string) (int, string) {
		st, b := call(t, h, tok, "POST", "/api/v1/rejected/medcom/"+url.PathEscape(id)+"/put-back", map[string]any{"reason": reason})
		return st, string(b)
	}
	if st, b := put("taken-early.xml", ""); st != 400 || !strings.Contains(b, "reason") {
		t.Errorf("put back without a reason: %d %s", st, b)
	}
	if st, b := put("no-such.xml", "test"); st != 404 {
		t.Errorf("put back of an unknown file: %d %s", st, b)
	}
	if st, b := put("invalid.xml", "the GP says it is fine"); st != 409 || !strings.Contains(b, "new letter id") {
		t.Errorf("put back of an answered file: %d %s", st, b)
	}
	if _, err := os.Stat(filepath.Join(errDir, "invalid.xml")); err != nil {
		t.Errorf("the answered file left error/: %v", err)
	}
	if st, b := put("taken-early.xml", "was taken while still being written"); st != 200 {
		t.Fatalf("put back: %d %s", st, b)
	}
	h.Eventually("the letter delivered", func() bool { return len(h.CaseSys.Documents()) == 1 })
	h.Eventually("the file in processed/", func() bool {
		_, err := os.Stat(filepath.Join(h.MedComDir, "processed", "taken-early.xml"))
		return err == nil
	})
	for _, gone := range []string{"taken-early.xml", "taken-early.xml.error.txt"} {
		if _, err := os.Stat(filepath.Join(errDir, gone)); err == nil {
			t.Errorf("%s still in error/", gone)
		}
	}
	recs, err := h.App.Hub.Audit().Tail(context.Background(), 50)
	if err != nil {
		t.Fatal(err)
	}
	var puts []string
	for _, r := range recs {
		if r.Action == "put-back" {
			puts = append(puts, r.Actor+"|"+r.Target+"|"+r.Reason+"|"+r.Result)
		}
	}
	want := []string{
		"koordinator|rejected:medcom:no-such.xml|test|ok",
		"koordinator|rejected:medcom:no-such.xml|no rejected input with that id|refused",
		"koordinator|rejected:medcom:invalid.xml|the GP says it is fine|ok",
	}
	if len(puts) != 5 || strings.Join(puts[:3], "\n") != strings.Join(want, "\n") ||
		!strings.HasSuffix(puts[3], "|refused") || puts[4] != "koordinator|rejected:medcom:taken-early.xml|was taken while still being written|ok" {
		t.Errorf("audit records of put-backs:\n%s", strings.Join(puts, "\n"))
	}
}
