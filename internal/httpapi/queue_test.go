package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/samhub/samhub/adapters/casesys"
	"github.com/samhub/samhub/internal/httpapi"
	"github.com/samhub/samhub/internal/hubtest"
	"github.com/samhub/samhub/pipeline"
)

// storedFixture drops the fixture letter, waits until the case system has
// it and returns its id.
func storedFixture(t *testing.T, h *hubtest.Hub) string {
	t.Helper()
	data, err := os.ReadFile("../../testdata/medcom/samhub/letter-utf8.xml")
	if err != nil {
		t.Fatal(err)
	}
	h.Drop("letter-utf8.xml", data)
	var id string
	h.Eventually("the fixture delivered", func() bool {
		found, _ := h.App.Hub.FindLetters(context.Background(), pipeline.Query{PatientID: "2509479989"})
		if len(found) == 0 || len(h.CaseSys.Documents()) == 0 {
			return false
		}
		id = found[0].ID
		return true
	})
	return id
}

func queuePage(t *testing.T, h *hubtest.Hub, query string) httpapi.QueuePage {
	t.Helper()
	st, b := call(t, h, hubtest.CoordinatorToken, "GET", "/api/v1/queue?"+query, nil)
	if st != 200 {
		t.Fatalf("GET /api/v1/queue?%s: %d %s", query, st, b)
	}
	var p httpapi.QueuePage
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// The queue pages on the server: filters before the page, a total of what
// matches, numbered pages and a cursor; and the filter's mistakes are named.
func TestQueuePagesAndFilters(t *testing.T) {
	h := hubtest.Start(t)
	id := storedFixture(t, h)
	unavailable := h.ParkCopies(id, "casefile", "unavailable", 120)
	cut := time.Now()
	time.Sleep(20 * time.Millisecond)
	closed := h.ParkCopies(id, "casefile", "case_closed", 30)
	h.ParkCopies(id, "region", "unavailable", 40)

	all := queuePage(t, h, "pageSize=50")
	if all.Total != 190 || len(all.Entries) != 50 || all.Page != 1 || all.Pages != 4 || all.Next == "" {
		t.Fatalf("first page: total %d, %d entries, page %d of %d, next %q", all.Total, len(all.Entries), all.Page, all.Pages, all.Next)
	}
	p := queuePage(t, h, "destination=casefile&code=unavailable&pageSize=100&page=2")
	if p.Total != 120 || len(p.Entries) != 20 || p.Page != 2 || p.Next != "" {
		t.Fatalf("page 2 of casefile/unavailable: total %d, %d entries, next %q", p.Total, len(p.Entries), p.Next)
	}
	if p.Entries[19].LetterID != unavailable[119] {
		t.Errorf("the last entry is %s, want %s", p.Entries[19].LetterID, unavailable[119])
	}
	p = queuePage(t, h, "destination=casefile&parkedBefore="+url.QueryEscape(cut.Format(time.RFC3339Nano)))
	if p.Total != 120 {
		t.Errorf("parked before the cut: %d, want 120", p.Total)
	}
	p = queuePage(t, h, "parkedAfter="+url.QueryEscape(cut.Format(time.RFC3339Nano))+"&code=case_closed")
	if p.Total != 30 || p.Entries[0].LetterID != closed[0] {
		t.Errorf("case_closed parked after the cut: %d", p.Total)
	}
	// Following the cursor visits every entry once.
	var walked []string
	cursor := ""
	for range 10 {
		p := queuePage(t, h, "pageSize=70&cursor="+cursor)
		for _, e := range p.Entries {
			walked = append(walked, e.LetterID)
		}
		if cursor = p.Next; cursor == "" {
			break
		}
	}
	slices.Sort(walked)
	if n := len(walked); n != 190 || len(slices.Compact(walked)) != 190 {
		t.Errorf("the cursor walked %d entries, %d distinct; want 190", n, len(walked))
	}
	if past := queuePage(t, h, "cursor=999999999"); len(past.Entries) != 0 || past.Total != 190 || past.Next != "" {
		t.Errorf("a cursor past the end: %d entries of %d, next %q", len(past.Entries), past.Total, past.Next)
	}
	if past := queuePage(t, h, "page=99&pageSize=50"); len(past.Entries) != 0 || past.Total != 190 {
		t.Errorf("a page past the end: %d entries of %d", len(past.Entries), past.Total)
	}
	// By thread: the copy's thread id or its token.
	thread := queuePage(t, h, "thread="+url.QueryEscape(closed[3]))
	if thread.Total != 1 || thread.Entries[0].LetterID != closed[3] {
		t.Errorf("by thread: %+v", thread)
	}
	if tok := queuePage(t, h, "threadToken="+thread.Entries[0].Thread); tok.Total != 1 {
		t.Errorf("by thread token: %d", tok.Total)
	}
	// The list before it had pages: limit, and 500 without it.
	if old := queuePage(t, h, "limit=5"); len(old.Entries) != 5 || old.Total != 190 {
		t.Errorf("limit=5: %d entries of %d", len(old.Entries), old.Total)
	}
	if def := queuePage(t, h, ""); len(def.Entries) != 190 || def.PageSize != 500 {
		t.Errorf("no page size: %d entries in pages of %d", len(def.Entries), def.PageSize)
	}

	for q, want := range map[string]string{
		"pageSize=0":               "pageSize: must be between 1 and 5000",
		"pageSize=5001":            "pageSize: must be between 1 and 5000",
		"page=x":                   "page: must be a whole number",
		"page=9223372036854775807": "page: must be between 1 and 1048576",
		"parkedBefore=monday":      "parkedBefore: must be a time",
		"patient=2509479989":       "patient: never in a URL",
		"cursor=abc":               "cursor: must be the next cursor",
		"page=3&cursor=12":         "cursor: give page or cursor, not both",
		"upTo=-1":                  "upTo: must be a positive sequence number",
		"thread=a&threadToken=b":   "thread: give thread or threadToken",
	} {
		st, b := call(t, h, hubtest.CoordinatorToken, "GET", "/api/v1/queue?"+q, nil)
		if st != 400 || !strings.Contains(string(b), want) {
			t.Errorf("%s: %d %s; want 400 naming %q", q, st, b, want)
		}
		if strings.Contains(string(b), "2509479989") {
			t.Errorf("%s: the answer repeats the CPR number", q)
		}
	}
}

// A search by CPR goes in a POST body, needs a reason and is audited with
// the number's token.
func TestQueueSearchByPatient(t *testing.T) {
	h := hubtest.Start(t)
	id := storedFixture(t, h)
	h.ParkCopies(id, "casefile", "unavailable", 12)
	body := map[string]any{"filter": map[string]any{"patient": "250947-9989"}, "pageSize": 5}
	if st, b := call(t, h, hubtest.CoordinatorToken, "POST", "/api/v1/queue/search", body); st != 400 || !strings.Contains(string(b), "reason") {
		t.Fatalf("without a reason: %d %s", st, b)
	}
	body["reason"] = "the family called"
	st, b := call(t, h, hubtest.CoordinatorToken, "POST", "/api/v1/queue/search", body)
	var p httpapi.QueuePage
	if st != 200 || json.Unmarshal(b, &p) != nil || p.Total != 12 || len(p.Entries) != 5 {
		t.Fatalf("search: %d %s", st, b)
	}
	body["filter"] = map[string]any{"patient": "1509819996"} // Brita: nothing parked
	if st, b := call(t, h, hubtest.CoordinatorToken, "POST", "/api/v1/queue/search", body); st != 200 || !strings.Contains(string(b), `"total": 0`) {
		t.Fatalf("another child: %d %s", st, b)
	}
	// A digit too few is refused, not answered "nothing parked" (and not
	// audited as a search); the answer does not repeat the number.
	body["filter"] = map[string]any{"patient": "25094799"}
	if st, b := call(t, h, hubtest.CoordinatorToken, "POST", "/api/v1/queue/search", body); st != 400 || !strings.Contains(string(b), "filter.patient: must be a CPR number") || strings.Contains(string(b), "25094799") {
		t.Fatalf("a CPR a digit short: %d %s", st, b)
	}
	n := 0
	for _, r := range auditRecords(t, h) {
		if r.Action == "search-cpr" && r.Reason == "the family called" && strings.HasPrefix(r.Target, "patient:") && !strings.Contains(r.Target, "2509479989") {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d search-cpr audit records, want 2", n)
	}
}

// Replay all that match: a preview (count, per destination and code, the
// first few), then the replay under an Idempotency-Key; the same key again
// is the same replay; progress is readable until it is done, and each
// letter reaches the case system once.
func TestBulkReplayThroughTheAPI(t *testing.T) {
	h := hubtest.Start(t)
	id := storedFixture(t, h)
	copies := h.ParkCopies(id, "casefile", "unavailable", 150)
	h.ParkCopies(id, "casefile", "case_closed", 10)
	tok := hubtest.CoordinatorToken
	filter := map[string]any{"destination": "casefile", "code": "unavailable"}

	st, b := call(t, h, tok, "POST", "/api/v1/queue/bulk-replays", map[string]any{"filter": filter, "dryRun": true})
	var pv httpapi.BulkPreview
	if st != 200 || json.Unmarshal(b, &pv) != nil {
		t.Fatalf("preview: %d %s", st, b)
	}
	if pv.Total != 150 || pv.ByDestination["casefile"] != 150 || pv.ByCode["unavailable"] != 150 || len(pv.First) != 10 || pv.First[0].LetterID != copies[0] || pv.UpTo == 0 {
		t.Fatalf("preview %+v", pv)
	}
	if st, b := call(t, h, tok, "POST", "/api/v1/queue/bulk-replays", map[string]any{"filter": filter, "reason": "the case system is back"}); st != 400 || !strings.Contains(string(b), "Idempotency-Key") {
		t.Fatalf("without an Idempotency-Key: %d %s", st, b)
	}
	key := pipeline.NewRequestID()
	start := func() (int, pipeline.BulkReplay) {
		st, b := callWith(t, h, tok, "POST", "/api/v1/queue/bulk-replays", map[string]any{"filter": map[string]any{"destination": "casefile", "code": "unavailable", "upTo": pv.UpTo}, "reason": "the case system is back"}, map[string]string{"Idempotency-Key": key})
		var r pipeline.BulkReplay
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatalf("start: %d %s", st, b)
		}
		return st, r
	}
	st, r := start()
	if st != 202 || r.ID != key || r.Planned != 150 {
		t.Fatalf("start: %d %+v", st, r)
	}
	if st, again := start(); st != 200 || again.ID != key {
		t.Fatalf("the same key again: %d %+v", st, again)
	}
	h.Eventually("the bulk replay done", func() bool {
		st, b := call(t, h, tok, "GET", "/api/v1/queue/bulk-replays/"+key, nil)
		if st != 200 || json.Unmarshal(b, &r) != nil {
			t.Fatalf("progress: %d %s", st, b)
		}
		return r.State != pipeline.BulkRunning
	})
	if r.State != pipeline.BulkDone || r.Replayed != 150 || r.Failed != 0 {
		t.Fatalf("ended %+v", r)
	}
	h.Eventually("150 more documents in the case system", func() bool { return len(h.CaseSys.Documents()) == 151 })
	if p := queuePage(t, h, ""); p.Total != 10 || p.Entries[0].LastError.Code != "case_closed" {
		t.Fatalf("left parked: %d", p.Total)
	}
	st, b = call(t, h, tok, "GET", "/api/v1/queue/bulk-replays", nil)
	if st != 200 || !strings.Contains(string(b), key) {
		t.Fatalf("list: %d %s", st, b)
	}
	if st, _ := call(t, h, tok, "GET", "/api/v1/queue/bulk-replays/no-such-replay", nil); st != 404 {
		t.Errorf("an unknown replay: %d", st)
	}
	st, b = callWith(t, h, tok, "POST", "/api/v1/queue/bulk-replays", map[string]any{"filter": filter, "reason": "again"}, map[string]string{"Idempotency-Key": pipeline.NewRequestID()})
	if st != 409 {
		t.Errorf("a filter matching nothing any more: %d %s", st, b)
	}
	seen := map[string]int{}
	for _, d := range h.CaseSys.Documents() {
		seen[d.ExternalID]++
	}
	for _, c := range copies {
		if seen[casesys.DocumentExternalID(c)] != 1 {
			t.Fatalf("%s is in the case system %d times", c, seen[c])
		}
	}
}

func auditRecords(t *testing.T, h *hubtest.Hub) []struct{ Action, Reason, Target string } {
	t.Helper()
	recs, err := h.App.Hub.Audit().Tail(context.Background(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []struct{ Action, Reason, Target string }
	for _, r := range recs {
		out = append(out, struct{ Action, Reason, Target string }{r.Action, r.Reason, r.Target})
	}
	return out
}

func callWith(t *testing.T, h *hubtest.Hub, token, method, path string, body any, headers map[string]string) (int, []byte) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(method, h.BaseURL+path, strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out strings.Builder
	_, _ = io.Copy(&out, resp.Body)
	return resp.StatusCode, []byte(out.String())
}

// A consent is recorded only for something shaped like a CPR or a
// replacement CPR: a typo would record a consent for nobody, and the
// child's letters would stay parked while the coordinator believes them sent.
func TestConsentNeedsAPatientID(t *testing.T) {
	h := hubtest.Start(t)
	consent := map[string]any{"givenBy": "custody-holder", "form": "written", "scopes": []string{"gp"}}
	for _, bad := range []string{"123", "250947-998", "2509479989x", "250947 9989"} {
		body := map[string]any{"patient": bad, "consent": consent, "reason": "test"}
		if st, b := call(t, h, hubtest.CoordinatorToken, "POST", "/api/v1/consents", body); st != 400 || !strings.Contains(string(b), "patient: must be a CPR number") {
			t.Errorf("patient %q: %d %s", bad, st, b)
		}
	}
	for _, good := range []string{"250947-9989", " 2509479989 ", "0703921vj4"} {
		body := map[string]any{"patient": good, "consent": consent, "reason": "test"}
		if st, b := call(t, h, hubtest.CoordinatorToken, "POST", "/api/v1/consents", body); st != 200 {
			t.Errorf("patient %q: %d %s", good, st, b)
		}
	}
	// The dash, the blanks and the case do not make another child.
	st, b := call(t, h, hubtest.CoordinatorToken, "POST", "/api/v1/consents/lookup", map[string]any{"patient": "0703921VJ4", "reason": "test"})
	if st != 200 || strings.Count(string(b), `"revision"`) != 1 {
		t.Fatalf("lookup: %d %s", st, b)
	}
	st, b = call(t, h, hubtest.CoordinatorToken, "POST", "/api/v1/consents/lookup", map[string]any{"patient": "250947-9989", "reason": "test"})
	if st != 200 || strings.Count(string(b), `"revision"`) != 2 {
		t.Fatalf("lookup: %d %s", st, b)
	}
}
