package epjsim_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	epjsim "github.com/samhub/samhub/internal/sim/epj"
)

// TestConcurrentCreatesAreAllDurable: creates that arrive together share
// saves, and each one answered is there after a restart, once; each
// resource is a file of its own, so a save does not rewrite the others.
func TestConcurrentCreatesAreAllDurable(t *testing.T) {
	dir := t.TempDir()
	s, base, pid, tok := withBruno(t, dir)
	const n = 24
	status := make([]int, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			id := fmt.Sprintf("L%02d", i)
			req, _ := http.NewRequest("POST", base+"/Communication", strings.NewReader(communication(pid, id)))
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", "application/fhir+json")
			req.Header.Set("If-None-Exist", url.Values{"identifier": {epjsim.SystemLetter + "|" + id}}.Encode())
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				errs[i] = err
				return
			}
			res.Body.Close()
			status[i] = res.StatusCode
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || status[i] != http.StatusCreated {
			t.Fatalf("create %d: %d %v, want 201", i, status[i], errs[i])
		}
	}
	// The same letter again is the stored one, not a second.
	cond := map[string]string{"If-None-Exist": url.Values{"identifier": {epjsim.SystemLetter + "|L03"}}.Encode()}
	if st, _, _ := call(t, "POST", base+"/Communication", tok, "application/fhir+json", communication(pid, "L03"), cond); st != http.StatusOK {
		t.Fatalf("repeated conditional create: %d, want 200", st)
	}
	s.Close()

	again, err := epjsim.New(epjsim.Config{DataDir: dir, ClientID: clientID, ClientSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if c := again.CommunicationsFor(fmt.Sprintf("L%02d", i)); len(c) != 1 {
			t.Errorf("after a restart, letter L%02d is stored %d times, want once", i, len(c))
		}
	}
	files, err := os.ReadDir(filepath.Join(dir, "records"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != n+1 {
		t.Errorf("%d files in records/, want %d (the patient and each letter)", len(files), n+1)
	}
	if _, err := os.Stat(filepath.Join(dir, "epj-sim.json")); !os.IsNotExist(err) {
		t.Errorf("a whole-state file was written: %v", err)
	}
	// A new resource after the restart takes the next id.
	ref, err := again.SeedNote(epjsim.Note{Type: "Communication", PatientCPR: cprBruno, RecipientSOR: sorMuni, SenderSOR: sorBUP, Text: "Svar"})
	if err != nil || ref != fmt.Sprintf("Communication/%d", n+2) {
		t.Errorf("seeded %q (%v), want Communication/%d", ref, err, n+2)
	}
}

// TestAStateWrittenWholeByEarlierVersionsIsRead: the one file earlier
// versions kept everything in is read at start, left as it was, and new
// resources go beside it with the ids after its own.
func TestAStateWrittenWholeByEarlierVersionsIsRead(t *testing.T) {
	dir := t.TempDir()
	rec := func(typ, id string, res map[string]any) map[string]any {
		res["resourceType"], res["id"] = typ, id
		return map[string]any{"type": typ, "id": id, "version": 1, "lastUpdated": "2026-03-02T10:00:00Z", "json": res}
	}
	legacy, err := json.Marshal(map[string]any{"nextId": 3, "records": []any{
		rec("Patient", "1", map[string]any{"identifier": []any{map[string]string{"system": epjsim.SystemCPR, "value": cprBruno}}}),
		rec("Communication", "2", map[string]any{"status": "completed", "identifier": []any{map[string]string{"system": epjsim.SystemLetter, "value": "L-OLD"}}, "subject": map[string]string{"reference": "Patient/1"}}),
	}})
	if err != nil {
		t.Fatal(err)
	}
	legacyPath := filepath.Join(dir, "epj-sim.json")
	if err := os.WriteFile(legacyPath, legacy, 0o600); err != nil {
		t.Fatal(err)
	}
	s, base := start(t, dir)
	if c := s.CommunicationsFor("L-OLD"); len(c) != 1 {
		t.Fatalf("the earlier state's letter: %d stored, want 1", len(c))
	}
	tok := token(t, base)
	cond := map[string]string{"If-None-Exist": url.Values{"identifier": {epjsim.SystemLetter + "|L-OLD"}}.Encode()}
	if st, _, got := call(t, "POST", base+"/Communication", tok, "application/fhir+json", communication("1", "L-OLD"), cond); st != http.StatusOK || got["id"] != "2" {
		t.Fatalf("conditional create of the earlier letter: %d %v, want 200 with id 2", st, got["id"])
	}
	st, _, got := call(t, "POST", base+"/Communication", tok, "application/fhir+json", communication("1", "L-NEW"), nil)
	if st != http.StatusCreated || got["id"] != "3" {
		t.Fatalf("a new letter: %d id %v, want 201 with id 3", st, got["id"])
	}
	s.Close()
	again, err := epjsim.New(epjsim.Config{DataDir: dir, ClientID: clientID, ClientSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	if len(again.CommunicationsFor("L-OLD")) != 1 || len(again.CommunicationsFor("L-NEW")) != 1 {
		t.Errorf("after a restart: %d old and %d new letters, want one each", len(again.CommunicationsFor("L-OLD")), len(again.CommunicationsFor("L-NEW")))
	}
	if b, err := os.ReadFile(legacyPath); err != nil || !bytes.Equal(b, legacy) {
		t.Errorf("the earlier state file changed (%v)", err)
	}
}
