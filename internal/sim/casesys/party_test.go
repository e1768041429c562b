package casesyssim

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

const xeCPR = "urn:oid:1.2.208.176.1.6.1.1"

func searchIDs(t *testing.T, h *harness, q map[string]any) []string {
	t.Helper()
	r := h.postJSON("/cases/search", q, "")
	if r.status != 200 {
		t.Fatalf("search %v: %d %s", q, r.status, r.body)
	}
	var res struct{ Results []Case }
	r.json(t, &res)
	var ids []string
	for _, c := range res.Results {
		ids = append(ids, c.ID)
	}
	return ids
}

func TestCaseByReplacementIDUpdatedWithCPRAndName(t *testing.T) {
	h := newHarness(t, nil)
	a := h.postJSON("/cases", map[string]any{"externalId": "e1", "caseType": "SAMRAAD", "title": "Samråd",
		"primaryParty": map[string]any{"replacementId": "0703921VJ4", "replacementSystem": xeCPR, "givenName": "Birgit"},
		"referral":     map[string]any{"threadId": "medcom:thread-7", "letterId": "medcom:L7"}}, "k1")
	if a.status != 201 || a.header.Get("ETag") != `"1"` {
		t.Fatalf("create: %d %q %s", a.status, a.header.Get("ETag"), a.body)
	}
	var c Case
	a.json(t, &c)
	if c.PrimaryParty.CPR != "" || c.PrimaryParty.Name != "Birgit" {
		t.Errorf("party = %+v", c.PrimaryParty)
	}
	// A CPR with letters is refused now that replacement ids have their own member.
	if r := h.postJSON("/cases", newCase("e2", "0703921VJ4"), "k2"); r.status != 422 {
		t.Errorf("replacement id as cpr: %d", r.status)
	}
	other, _ := h.sim.SeedCase(Case{PrimaryParty: Person{CPR: "1509819996"}, Referral: &Referral{ThreadID: "medcom:thread-8"}})

	for _, tc := range []struct {
		q    map[string]any
		want int
	}{
		{map[string]any{"replacementId": "0703921VJ4"}, 1},
		{map[string]any{"replacementId": "0703921VJ4", "replacementSystem": xeCPR}, 1},
		{map[string]any{"replacementId": "0703921VJ4", "replacementSystem": "urn:oid:1.2.208.176.1.6.1.3"}, 0}, // a region's D-eCPR is another person
		{map[string]any{"referralThreadId": "medcom:thread-7"}, 1},
		{map[string]any{"referralThreadId": "medcom:thread-7", "cpr": "1509819996"}, 0},
		{map[string]any{"referralThreadId": "medcom:thread-8"}, 1},
	} {
		if got := searchIDs(t, h, tc.q); len(got) != tc.want {
			t.Errorf("search %v = %v, want %d hits", tc.q, got, tc.want)
		}
	}

	path := "/cases/" + c.ID
	upd := map[string]any{"primaryParty": map[string]any{"cpr": "2509479989", "givenName": "Bruno Test", "familyName": "Elmer"}}
	if r := h.patch(path, "", upd, "p1"); r.status != 428 || problemCode(t, r) != "precondition-required" {
		t.Errorf("without If-Match: %d %s", r.status, r.body)
	}
	if r := h.patch(path, `"0"`, upd, "p1"); r.status != 412 || problemCode(t, r) != "version-mismatch" || r.header.Get("ETag") != `"1"` {
		t.Errorf("stale version: %d %q %s", r.status, r.header.Get("ETag"), r.body)
	}
	if r := h.patch(path, `W/"1"`, upd, "p1"); r.status != 412 {
		t.Errorf("a weak validator must not match If-Match (RFC 9110 §13.1.1): %d", r.status)
	}
	r := h.patch(path, `"1"`, upd, "p1")
	if r.status != 200 || r.header.Get("ETag") != `"2"` {
		t.Fatalf("update: %d %q %s", r.status, r.header.Get("ETag"), r.body)
	}
	c = Case{}
	r.json(t, &c)
	want := Person{CPR: "2509479989", ReplacementID: "0703921VJ4", ReplacementSystem: xeCPR, Name: "Bruno Test Elmer", GivenName: "Bruno Test", FamilyName: "Elmer"}
	if c.PrimaryParty != want || c.Version != 2 || c.UpdatedAt == nil {
		t.Errorf("after update: %+v v%d", c.PrimaryParty, c.Version)
	}
	if r := h.patch(path, `"1"`, upd, "p1"); r.status != 200 || r.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("replay: %d %q", r.status, r.header.Get("Idempotent-Replayed"))
	}
	// The same patch again changes nothing and keeps the version.
	if r := h.patch(path, `"2"`, upd, "p2"); r.status != 200 || r.header.Get("ETag") != `"2"` {
		t.Errorf("no-op patch: %d %q", r.status, r.header.Get("ETag"))
	}
	if got := searchIDs(t, h, map[string]any{"cpr": "2509479989"}); len(got) != 1 || got[0] != c.ID {
		t.Errorf("found by the new CPR: %v", got)
	}

	for _, tc := range []struct {
		name, ifMatch, code string
		body                map[string]any
		status              int
	}{
		{"another CPR", `"2"`, "party-conflict", map[string]any{"primaryParty": map[string]any{"cpr": "1509819996"}}, 409},
		{"another replacement id", `"2"`, "party-conflict", map[string]any{"primaryParty": map[string]any{"replacementId": "1206550VK9"}}, 409},
		{"CPR removed", `"2"`, "validation-failed", map[string]any{"primaryParty": map[string]any{"cpr": nil}}, 422},
		{"other members", `"2"`, "validation-failed", map[string]any{"title": "x", "primaryParty": map[string]any{"age": "3"}}, 422},
	} {
		r := h.patch(path, tc.ifMatch, tc.body, "bad-"+tc.name)
		if r.status != tc.status || problemCode(t, r) != tc.code {
			t.Errorf("%s: %d %s", tc.name, r.status, r.body)
		}
	}
	// Clearing the name parts leaves the full name to the given one.
	r = h.patch(path, "*", map[string]any{"primaryParty": map[string]any{"name": "Bruno T. Elmer", "givenName": nil, "familyName": nil}}, "p3")
	var cleared Case
	r.json(t, &cleared)
	if r.status != 200 || cleared.PrimaryParty.Name != "Bruno T. Elmer" || cleared.PrimaryParty.GivenName != "" || cleared.Version != 3 {
		t.Errorf("clear parts: %d %+v", r.status, cleared.PrimaryParty)
	}
	h.sim.CloseCase(other.ID)
	if r := h.patch("/cases/"+other.ID, "*", map[string]any{"primaryParty": map[string]any{"name": "x"}}, "p4"); r.status != 409 || problemCode(t, r) != "case-closed" {
		t.Errorf("closed case: %d", r.status)
	}
	if r := h.patch("/cases/NOPE", "*", map[string]any{"primaryParty": map[string]any{"name": "x"}}, "p5"); r.status != 404 {
		t.Errorf("unknown case: %d", r.status)
	}

	h.restart()
	if cs := h.sim.Cases(); len(cs) != 2 || cs[0].PrimaryParty.CPR != "2509479989" || cs[0].Version != 3 {
		t.Errorf("after restart: %+v", cs)
	}
}

// TestOldStateWithReplacementIDInCPRIsUpgraded: earlier simulators kept a
// replacement id in cpr; loading such state moves it.
func TestOldStateWithReplacementIDInCPRIsUpgraded(t *testing.T) {
	dir := t.TempDir()
	old := `{"seq":{"case":1},"cases":{"SAG-2026-000001":{"id":"SAG-2026-000001","caseType":"SAMRAAD","title":"t","primaryParty":{"cpr":"0703921VJ4","name":"Birgit Berggren"},"status":"open","version":1,"createdAt":"2026-11-02T09:00:00Z"}}}`
	if err := os.WriteFile(filepath.Join(dir, "state.json"), []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	sim, err := New(Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	c := sim.Cases()[0]
	if c.PrimaryParty.CPR != "" || c.PrimaryParty.ReplacementID != "0703921VJ4" {
		b, _ := json.Marshal(c.PrimaryParty)
		t.Errorf("party = %s", b)
	}
}
