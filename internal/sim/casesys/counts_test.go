package casesyssim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// TestSecondCreateWithSameExternalIDIsStoredAndCounted: like a real case
// system the simulator stores what it is asked to store, and its counts
// show the double delivery.
func TestSecondCreateWithSameExternalIDIsStoredAndCounted(t *testing.T) {
	h := newHarness(t, nil)
	c, _ := h.sim.SeedCase(Case{PrimaryParty: Person{CPR: "2509479989"}})
	meta := map[string]any{"externalId": "samhub:doc:one", "title": "Henvisning", "direction": "incoming"}
	body, ct := documentBody(t, meta, [3]string{"a.xml", "application/xml", "<a/>"})
	docs := "/cases/" + c.ID + "/documents"
	if r := h.do("POST", docs, ct, body, "k1"); r.status != 201 {
		t.Fatalf("first: %d %s", r.status, r.body)
	}
	if r := h.do("POST", docs, ct, body, "k1"); r.status != 201 || r.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("replay: %d", r.status)
	}
	if r := h.do("POST", docs, ct, body, "k2"); r.status != 201 {
		t.Errorf("second create under a new key: %d %s", r.status, r.body)
	}
	if n := len(h.sim.Documents()); n != 2 {
		t.Errorf("documents = %d, want 2 (nothing refused the second)", n)
	}
	cn := h.sim.Counts()
	if got := cn.ExternalIDs["samhub:doc:one"]; got != (Count{Requests: 3, Created: 2}) {
		t.Errorf("externalId count = %+v", got)
	}
	if got := cn.IdempotencyKeys["k1"]; got != (Count{Requests: 2, Created: 1}) {
		t.Errorf("k1 count = %+v", got)
	}
	if !slices.Equal(cn.Duplicates, []string{"samhub:doc:one"}) {
		t.Errorf("duplicates = %v", cn.Duplicates)
	}
	// A lost answer still counts what was created.
	h.sim.DropResponses("POST /cases/{caseId}/journal-notes", 1)
	note, _ := json.Marshal(map[string]any{"externalId": "samhub:note:one", "title": "t", "text": "x", "contactTime": "2026-11-02T10:00:00Z"})
	req, _ := http.NewRequest("POST", h.base+"/cases/"+c.ID+"/journal-notes", bytes.NewReader(note))
	req.Header.Set("Authorization", "Bearer "+h.token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", "n1")
	if resp, err := (&http.Client{Transport: &http.Transport{}}).Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("the answer was not dropped")
	}
	if got := h.sim.Counts().IdempotencyKeys["n1"]; got != (Count{Requests: 1, Created: 1}) {
		t.Errorf("dropped answer: %+v", got)
	}

	// Over HTTP, as another process sees it.
	g, err := http.Get(h.base + "/_sim/counts")
	if err != nil {
		t.Fatal(err)
	}
	var over Counts
	json.NewDecoder(g.Body).Decode(&over)
	g.Body.Close()
	if over.ExternalIDs["samhub:doc:one"].Created != 2 || !slices.Contains(over.Duplicates, "samhub:doc:one") {
		t.Errorf("/_sim/counts = %+v", over)
	}
	// Objects per externalId come from the stored state: a restart keeps them.
	h.restart()
	if got := h.sim.Counts().ExternalIDs["samhub:doc:one"]; got.Created != 2 {
		t.Errorf("after restart: %+v", got)
	}
}

// TestIgnoreIdempotencyKeysActsLikeARealSystem: SBSYS-like mode stores a
// replay of the same request again and requires no key.
func TestIgnoreIdempotencyKeysActsLikeARealSystem(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.IgnoreIdempotencyKeys = true })
	for range 2 {
		if r := h.postJSON("/cases", newCase("samhub:case:x", "2509479989"), "same"); r.status != 201 || r.header.Get("Idempotent-Replayed") != "" {
			t.Fatalf("create: %d %q", r.status, r.header.Get("Idempotent-Replayed"))
		}
	}
	if r := h.postJSON("/cases", newCase("samhub:case:x", "2509479989"), ""); r.status != 201 {
		t.Errorf("without a key: %d %s", r.status, r.body)
	}
	if n := len(h.sim.Cases()); n != 3 {
		t.Errorf("cases = %d, want 3", n)
	}
	if got := h.sim.Counts().IdempotencyKeys["same"]; got != (Count{Requests: 2, Created: 2}) {
		t.Errorf("key count = %+v", got)
	}
	// The mode can be switched over HTTP.
	req, _ := http.NewRequest("PUT", h.base+"/_sim/mode", strings.NewReader(`{"ignoreIdempotencyKeys":false}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if h.sim.CurrentMode().IgnoreIdempotencyKeys {
		t.Error("PUT /_sim/mode did not switch")
	}
	if r := h.postJSON("/cases", newCase("samhub:case:y", "2509479989"), ""); r.status != 400 {
		t.Errorf("keys are required again: %d", r.status)
	}
}
