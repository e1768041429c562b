package casesyssim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// clock is a settable time source for token expiry and key retention.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type harness struct {
	t     *testing.T
	cfg   Config
	sim   *Server
	base  string
	clk   *clock
	token string
}

func newHarness(t *testing.T, mod func(*Config)) *harness {
	t.Helper()
	clk := &clock{t: time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)}
	cfg := Config{DataDir: t.TempDir(), ClientID: "hub", ClientSecret: "s3cret", Now: clk.Now}
	if mod != nil {
		mod(&cfg)
	}
	h := &harness{t: t, cfg: cfg, clk: clk}
	h.start("127.0.0.1:0")
	t.Cleanup(func() { h.sim.Close() })
	h.token = h.fetchToken("")
	return h
}

func (h *harness) start(addr string) {
	h.t.Helper()
	sim, err := New(h.cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	base, err := sim.Start(addr)
	if err != nil {
		h.t.Fatal(err)
	}
	h.sim, h.base = sim, base
}

func (h *harness) restart() {
	h.sim.Close()
	http.DefaultClient.CloseIdleConnections() // pooled connections point at the old server
	u, _ := url.Parse(h.base)
	h.start(u.Host)
}

func (h *harness) fetchToken(scope string) string {
	h.t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}}
	if scope != "" {
		form.Set("scope", scope)
	}
	req, _ := http.NewRequest("POST", h.base+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("hub", "s3cret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	json.NewDecoder(resp.Body).Decode(&tok)
	if resp.StatusCode != 200 || tok.AccessToken == "" {
		h.t.Fatalf("token: %d", resp.StatusCode)
	}
	return tok.AccessToken
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(a.body, v); err != nil {
		t.Fatalf("answer %d is not JSON: %s", a.status, a.body)
	}
}

func (h *harness) do(method, path, ctype string, body []byte, key string) answer {
	h.t.Helper()
	req, _ := http.NewRequest(method, h.base+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+h.token)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, b}
}

func (h *harness) postJSON(path string, v any, key string) answer {
	b, _ := json.Marshal(v)
	return h.do("POST", path, "application/json", b, key)
}

// patch sends a merge patch with If-Match ifMatch ("" for none).
func (h *harness) patch(path, ifMatch string, v any, key string) answer {
	h.t.Helper()
	b, _ := json.Marshal(v)
	req, _ := http.NewRequest("PATCH", h.base+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+h.token)
	req.Header.Set("Content-Type", "application/merge-patch+json")
	if ifMatch != "" {
		req.Header.Set("If-Match", ifMatch)
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, rb}
}

func newCase(ext, cpr string) map[string]any {
	return map[string]any{"externalId": ext, "caseType": "SAMRAAD", "title": "Samråd", "primaryParty": map[string]string{"cpr": cpr}}
}

func documentBody(t *testing.T, meta map[string]any, files ...[3]string) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	mh := textproto.MIMEHeader{}
	mh.Set("Content-Disposition", `form-data; name="metadata"`)
	mh.Set("Content-Type", "application/json")
	p, _ := w.CreatePart(mh)
	json.NewEncoder(p).Encode(meta)
	for _, f := range files {
		fh := textproto.MIMEHeader{}
		fh.Set("Content-Disposition", `form-data; name="file"; filename="`+f[0]+`"`)
		fh.Set("Content-Type", f[1])
		p, _ := w.CreatePart(fh)
		p.Write([]byte(f[2]))
	}
	w.Close()
	return buf.Bytes(), w.FormDataContentType()
}

func problemCode(t *testing.T, a answer) string {
	t.Helper()
	if ct := a.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("status %d with Content-Type %q, want problem+json: %s", a.status, ct, a.body)
	}
	var p Problem
	a.json(t, &p)
	if p.Type != ProblemTypePrefix+p.Code || p.Status != a.status {
		t.Errorf("problem = %+v", p)
	}
	return p.Code
}

func TestIdempotencyAndExternalIDs(t *testing.T) {
	h := newHarness(t, nil)
	a := h.postJSON("/cases", newCase("ext-1", "2509479989"), "k1")
	if a.status != 201 || a.header.Get("Location") == "" {
		t.Fatalf("create: %d %s", a.status, a.body)
	}
	var c Case
	a.json(t, &c)

	// Same key, same body: the stored answer, marked as a replay.
	r := h.postJSON("/cases", newCase("ext-1", "2509479989"), "k1")
	if r.status != 201 || r.header.Get("Idempotent-Replayed") != "true" || !bytes.Equal(r.body, a.body) {
		t.Errorf("replay: %d %q", r.status, r.header.Get("Idempotent-Replayed"))
	}
	// Same key, other body.
	r = h.postJSON("/cases", newCase("ext-2", "2509479989"), "k1")
	if r.status != 422 || problemCode(t, r) != "idempotency-key-reused" {
		t.Errorf("key reuse: %d %s", r.status, r.body)
	}
	// New key, same externalId, with the natural-key guard a real case
	// system does not have turned on.
	h.sim.SetMode(Mode{UniqueExternalIDs: true})
	r = h.postJSON("/cases", newCase("ext-1", "2509479989"), "k2")
	var p Problem
	r.json(t, &p)
	if r.status != 409 || p.Code != "duplicate-external-id" || p.ExistingID != c.ID || r.header.Get("Location") != "/cases/"+c.ID {
		t.Errorf("duplicate: %d %+v %q", r.status, p, r.header.Get("Location"))
	}
	h.sim.SetMode(Mode{})
	// No key at all.
	r = h.postJSON("/cases", newCase("ext-3", "2509479989"), "")
	if r.status != 400 || problemCode(t, r) != "idempotency-key-missing" {
		t.Errorf("missing key: %d %s", r.status, r.body)
	}
	if len(h.sim.Cases()) != 1 {
		t.Errorf("cases = %d, want 1", len(h.sim.Cases()))
	}

	// Documents: multipart bodies with different boundaries are the same request.
	meta := map[string]any{"externalId": "doc-1", "title": "Henvisning", "direction": "incoming", "files": []string{"a.xml"}}
	b1, ct1 := documentBody(t, meta, [3]string{"a.xml", "application/xml", "<a/>"})
	b2, ct2 := documentBody(t, meta, [3]string{"a.xml", "application/xml", "<a/>"})
	if ct1 == ct2 {
		t.Fatal("test needs two different boundaries")
	}
	d1 := h.do("POST", "/cases/"+c.ID+"/documents", ct1, b1, "d1")
	d2 := h.do("POST", "/cases/"+c.ID+"/documents", ct2, b2, "d1")
	if d1.status != 201 || d2.status != 201 || d2.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("document create/replay: %d %d %s", d1.status, d2.status, d2.body)
	}
	b3, ct3 := documentBody(t, meta, [3]string{"a.xml", "application/xml", "<b/>"})
	if r := h.do("POST", "/cases/"+c.ID+"/documents", ct3, b3, "d1"); r.status != 422 {
		t.Errorf("changed file under the same key: %d", r.status)
	}
	h.sim.SetMode(Mode{UniqueExternalIDs: true})
	if r := h.do("POST", "/cases/"+c.ID+"/documents", ct3, b3, "d2"); r.status != 409 || problemCode(t, r) != "duplicate-external-id" {
		t.Errorf("duplicate document: %d %s", r.status, r.body)
	}
	h.sim.SetMode(Mode{})
	l := h.do("GET", "/cases/"+c.ID+"/documents?externalId=doc-1", "", nil, "")
	var list struct{ Results []Document }
	l.json(t, &list)
	if len(list.Results) != 1 || list.Results[0].Files[0].Size != 4 {
		t.Errorf("lookup by externalId: %s", l.body)
	}

	// State and key records survive a restart.
	h.restart()
	h.token = h.fetchToken("")
	if r := h.postJSON("/cases", newCase("ext-1", "2509479989"), "k1"); r.status != 201 || r.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("replay after restart: %d", r.status)
	}
	if len(h.sim.Cases()) != 1 || len(h.sim.Documents()) != 1 {
		t.Errorf("after restart: %d cases, %d documents", len(h.sim.Cases()), len(h.sim.Documents()))
	}
	f := h.do("GET", "/cases/"+c.ID+"/documents/"+list.Results[0].ID+"/files/0", "", nil, "")
	if f.status != 200 || string(f.body) != "<a/>" || f.header.Get("Content-Type") != "application/xml" {
		t.Errorf("file after restart: %d %q", f.status, f.body)
	}
}

func TestIdempotencyRecordsExpireAfterRetention(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.TokenTTL = 30 * 24 * time.Hour })
	if r := h.postJSON("/cases", newCase("ext-1", "2509479989"), "k1"); r.status != 201 {
		t.Fatal(r.status)
	}
	h.clk.Add(6 * 24 * time.Hour)
	h.postJSON("/cases", newCase("ext-2", "1509819996"), "k2") // a commit prunes old records
	if r := h.postJSON("/cases", newCase("ext-9", "2509479989"), "k1"); r.status != 422 {
		t.Errorf("after 6 days the key must still be known: %d", r.status)
	}
	h.clk.Add(2 * 24 * time.Hour)
	h.postJSON("/cases", newCase("ext-3", "2512489996"), "k3")
	if r := h.postJSON("/cases", newCase("ext-9", "2509479989"), "k1"); r.status != 201 {
		t.Errorf("after 8 days the key is forgotten and the request is new: %d %s", r.status, r.body)
	}
}

func TestTokensAuthAndScopes(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.TokenTTL = 5 * time.Minute })
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"hub"}, "client_secret": {"wrong"}}
	resp, err := http.PostForm(h.base+"/oauth2/token", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("wrong secret: %d", resp.StatusCode)
	}
	search := map[string]any{"cpr": "2509479989"}
	if r := h.postJSON("/cases/search", search, ""); r.status != 200 {
		t.Fatalf("search: %d", r.status)
	}
	h.clk.Add(5 * time.Minute)
	if r := h.postJSON("/cases/search", search, ""); r.status != 401 || problemCode(t, r) != "invalid-token" || r.header.Get("WWW-Authenticate") == "" {
		t.Errorf("expired token: %d", r.status)
	}
	h.token = h.fetchToken("cases.read")
	if r := h.postJSON("/cases", newCase("e", "2509479989"), "k"); r.status != 403 || problemCode(t, r) != "insufficient-scope" {
		t.Errorf("read-only token writing: %d", r.status)
	}
	h.token = h.fetchToken("")
	h.sim.RejectTokens(true)
	if r := h.postJSON("/cases/search", search, ""); r.status != 401 {
		t.Errorf("rejected token: %d", r.status)
	}
}

func TestValidationNamesFieldsNeverValues(t *testing.T) {
	h := newHarness(t, nil)
	bad := "25094799890"
	r := h.postJSON("/cases/search", map[string]any{"cpr": bad}, "")
	if r.status != 422 || problemCode(t, r) != "validation-failed" {
		t.Fatalf("bad cpr: %d %s", r.status, r.body)
	}
	if bytes.Contains(r.body, []byte("2509479989")) || !bytes.Contains(r.body, []byte(`"field":"cpr"`)) {
		t.Errorf("problem must name the field and not echo the value: %s", r.body)
	}
	if r := h.postJSON("/cases/search", map[string]any{"cpr": "1509819996"}, ""); r.status != 200 || !bytes.Contains(r.body, []byte(`"results":[]`)) {
		t.Errorf("empty search: %d %s", r.status, r.body)
	}
	if r := h.do("POST", "/cases/search", "application/json", []byte("{"), ""); r.status != 400 || problemCode(t, r) != "malformed-json" {
		t.Errorf("malformed JSON: %d", r.status)
	}
	if r := h.do("POST", "/cases/search", "text/plain", []byte("{}"), ""); r.status != 415 {
		t.Errorf("wrong media type: %d", r.status)
	}
}

func TestLimitsAndClosedCases(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxUploadBytes = 2048; c.BlockedTypes = []string{"application/x-msdownload"} })
	c, err := h.sim.SeedCase(Case{PrimaryParty: Person{CPR: "2509479989"}})
	if err != nil {
		t.Fatal(err)
	}
	meta := map[string]any{"externalId": "d", "title": "t", "direction": "incoming"}
	big, ct := documentBody(t, meta, [3]string{"a.pdf", "application/pdf", strings.Repeat("x", 4096)})
	if r := h.do("POST", "/cases/"+c.ID+"/documents", ct, big, "k1"); r.status != 413 || problemCode(t, r) != "payload-too-large" {
		t.Errorf("too large: %d", r.status)
	}
	exe, ct := documentBody(t, meta, [3]string{"a.exe", "application/x-msdownload", "MZ"})
	if r := h.do("POST", "/cases/"+c.ID+"/documents", ct, exe, "k2"); r.status != 415 || problemCode(t, r) != "file-type-not-allowed" {
		t.Errorf("blocked type: %d", r.status)
	}
	if r := h.do("POST", "/cases/"+c.ID+"/close", "", nil, "close-1"); r.status != 200 {
		t.Fatalf("close: %d", r.status)
	}
	ok, ct := documentBody(t, meta, [3]string{"a.txt", "text/plain", "x"})
	if r := h.do("POST", "/cases/"+c.ID+"/documents", ct, ok, "k3"); r.status != 409 || problemCode(t, r) != "case-closed" {
		t.Errorf("closed case document: %d", r.status)
	}
	note := map[string]any{"externalId": "n", "title": "t", "text": "x", "contactTime": time.Now()}
	if r := h.postJSON("/cases/"+c.ID+"/journal-notes", note, "k4"); r.status != 409 || problemCode(t, r) != "case-closed" {
		t.Errorf("closed case note: %d", r.status)
	}
	if r := h.do("GET", "/cases/NOPE", "", nil, ""); r.status != 404 || problemCode(t, r) != "case-not-found" {
		t.Errorf("unknown case: %d", r.status)
	}
}

func TestSeededIDsAreNotReused(t *testing.T) {
	h := newHarness(t, nil)
	if _, err := h.sim.SeedCase(Case{ID: "SAG-2026-000001", PrimaryParty: Person{CPR: "2509479989"}}); err != nil {
		t.Fatal(err)
	}
	if r := h.postJSON("/cases", newCase("e", "1509819996"), "k"); r.status != 201 {
		t.Fatalf("create: %d", r.status)
	}
	if cs := h.sim.Cases(); len(cs) != 2 || cs[0].PrimaryParty.CPR != "2509479989" {
		t.Errorf("a generated id overwrote a seeded case: %+v", cs)
	}
}

func TestInProgressAnswers409(t *testing.T) {
	h := newHarness(t, nil)
	h.sim.SetDelay(400 * time.Millisecond)
	first := make(chan answer)
	go func() { first <- h.postJSON("/cases", newCase("e", "2509479989"), "same") }()
	// Poll until the first request holds the key, then race it.
	for {
		h.sim.mu.Lock()
		n := len(h.sim.inflight)
		h.sim.mu.Unlock()
		if n == 1 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	r := h.postJSON("/cases", newCase("e", "2509479989"), "same")
	if r.status != 409 || problemCode(t, r) != "request-in-progress" || r.header.Get("Retry-After") == "" {
		t.Errorf("concurrent same key: %d %s", r.status, r.body)
	}
	if a := <-first; a.status != 201 {
		t.Errorf("first: %d", a.status)
	}
}

func TestAdminAPIAndFaults(t *testing.T) {
	h := newHarness(t, nil)
	raw, err := os.ReadFile("../../../testdata/casesys/seed-demo.json")
	if err != nil {
		t.Fatal(err)
	}
	var demo struct {
		Case   json.RawMessage `json:"case"`
		Outbox json.RawMessage `json:"outbox"`
	}
	if err := json.Unmarshal(raw, &demo); err != nil {
		t.Fatal(err)
	}
	post := func(path string, body []byte) answer {
		resp, err := http.Post(h.base+path, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return answer{resp.StatusCode, resp.Header, b}
	}
	r := post("/_sim/cases", demo.Case)
	if r.status != 201 {
		t.Fatalf("seed case: %d %s", r.status, r.body)
	}
	var c Case
	r.json(t, &c)
	if c.Consent == nil || c.ContactPerson == nil || c.Referral == nil {
		t.Errorf("seeded case lost fields: %+v", c)
	}
	if r := post("/_sim/cases/"+c.ID+"/outbox", demo.Outbox); r.status != 201 {
		t.Fatalf("seed outbox: %d %s", r.status, r.body)
	}
	o := h.do("GET", "/outbox?status=ready", "", nil, "")
	var list struct{ Results []OutboxItem }
	o.json(t, &list)
	if len(list.Results) != 1 || list.Results[0].Referral == nil || list.Results[0].Recipients.GP == nil || len(list.Results[0].Files) != 1 {
		t.Fatalf("outbox: %s", o.body)
	}
	it := list.Results[0]
	if f := h.do("GET", it.Files[0].Href, "", nil, ""); f.status != 200 || string(f.body) != it.Text {
		t.Errorf("outbox file: %d %q", f.status, f.body)
	}
	for range 2 { // accepting twice is harmless
		if r := h.do("POST", "/outbox/"+it.DocumentID+"/accept", "", nil, "accept-"+it.DocumentID); r.status != 200 {
			t.Errorf("accept: %d", r.status)
		}
	}
	if r := h.do("POST", "/outbox/"+it.DocumentID+"/accept", "", nil, "another-key"); r.status != 200 {
		t.Errorf("accept again with a new key: %d", r.status)
	}
	o = h.do("GET", "/outbox", "", nil, "")
	if !bytes.Contains(o.body, []byte(`"results":[]`)) {
		t.Errorf("the ready list after accepting: %s", o.body)
	}
	g, _ := http.Get(h.base + "/_sim/outbox/" + it.DocumentID)
	var seen OutboxItem
	json.NewDecoder(g.Body).Decode(&seen)
	g.Body.Close()
	if seen.Status != OutboxAccepted || len(seen.RecipientStatus) != 2 || seen.RecipientStatus[0].Key != "gp" || seen.RecipientStatus[1].Status != RecipientPending {
		t.Errorf("/_sim/outbox/{docId} after accepting: %+v", seen)
	}

	if r := post("/_sim/faults", []byte(`{"fail":{"route":"GET /outbox","count":1,"status":503,"retryAfterSeconds":9},"delayMs":0}`)); r.status != 204 {
		t.Fatalf("faults: %d %s", r.status, r.body)
	}
	if r := h.do("GET", "/outbox", "", nil, ""); r.status != 503 || r.header.Get("Retry-After") != "9" {
		t.Errorf("injected 503: %d %q", r.status, r.header.Get("Retry-After"))
	}
	if r := h.do("GET", "/outbox", "", nil, ""); r.status != 200 {
		t.Errorf("fault should fire once: %d", r.status)
	}
	post("/_sim/faults", []byte(`{"rejectTokens":true}`))
	if r := h.do("GET", "/outbox", "", nil, ""); r.status != 401 {
		t.Errorf("rejectTokens: %d", r.status)
	}
	req, _ := http.NewRequest("DELETE", h.base+"/_sim/faults", nil)
	resp, _ := http.DefaultClient.Do(req)
	resp.Body.Close()
	if r := h.do("GET", "/outbox", "", nil, ""); r.status != 200 {
		t.Errorf("after reset: %d", r.status)
	}
	g, _ = http.Get(h.base + "/_sim/requests")
	b, _ := io.ReadAll(g.Body)
	g.Body.Close()
	if !bytes.Contains(b, []byte(`"route":"GET /outbox"`)) {
		t.Errorf("/_sim/requests: %s", b)
	}
}

// TestEveryDocumentedOperationIsServed walks openapi.yaml and calls every
// path and method on the simulator: each must reach a contract handler
// (a JSON or file answer), never the mux's plain-text 404/405, and answer
// a status the document declares.
func TestEveryDocumentedOperationIsServed(t *testing.T) {
	h := newHarness(t, nil)
	c, _ := h.sim.SeedCase(Case{PrimaryParty: Person{CPR: "2509479989"}})
	d, _ := h.sim.SeedOutboxDocument(c.ID, SeedDocument{Title: "t", Text: "x", Recipients: OutboxRecipients{GP: &Organisation{Name: "Lægerne Test", GLN: "5790000121526"}}})
	b, err := os.ReadFile("../../../schemas/casesys/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// Decode loosely: path items mix operations with a parameters list.
	var loose struct {
		OpenAPI string                    `yaml:"openapi"`
		Paths   map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(b, &loose); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(loose.OpenAPI, "3.1") {
		t.Errorf("openapi = %q, want 3.1.x", loose.OpenAPI)
	}
	fill := strings.NewReplacer("{caseId}", c.ID, "{docId}", d.ID, "{index}", "0")
	n := 0
	for path, item := range loose.Paths {
		for method, op := range item {
			opMap, ok := op.(map[string]any)
			if !ok || method == "parameters" {
				continue
			}
			n++
			m := strings.ToUpper(method)
			var r answer
			switch path {
			case "/oauth2/token":
				continue // exercised by fetchToken
			case "/cases/{caseId}/close":
				other, _ := h.sim.SeedCase(Case{PrimaryParty: Person{CPR: "2512489996"}})
				r = h.do(m, "/cases/"+other.ID+"/close", "", nil, "walk-close")
			case "/cases/search":
				r = h.postJSON(path, map[string]any{"cpr": "2509479989"}, "")
			case "/cases/{caseId}":
				if m == "PATCH" {
					r = h.patch(fill.Replace(path), `"1"`, map[string]any{"primaryParty": map[string]any{"givenName": "Bruno Test", "familyName": "Elmer"}}, "walk-patch")
				} else {
					r = h.do(m, fill.Replace(path), "", nil, "")
				}
			case "/outbox/{docId}/recipients":
				r = h.postJSON(fill.Replace(path), map[string]any{"key": "gp", "status": "sent", "code": "delivered", "at": time.Now()}, "walk-report")
			case "/cases":
				r = h.postJSON(path, newCase("walk", "1509819996"), "walk")
			case "/cases/{caseId}/documents":
				if m == "POST" {
					body, ct := documentBody(t, map[string]any{"externalId": "walk-doc", "title": "t", "direction": "internal"}, [3]string{"n.txt", "text/plain", "x"})
					r = h.do(m, fill.Replace(path), ct, body, "walk-doc")
				} else {
					r = h.do(m, fill.Replace(path), "", nil, "")
				}
			case "/cases/{caseId}/journal-notes":
				if m == "POST" {
					r = h.postJSON(fill.Replace(path), map[string]any{"externalId": "walk-note", "title": "t", "text": "x", "contactTime": time.Now()}, "walk-note")
				} else {
					r = h.do(m, fill.Replace(path), "", nil, "")
				}
			default:
				key := ""
				if m == "POST" {
					key = "walk-" + path
				}
				r = h.do(m, fill.Replace(path), "", nil, key)
			}
			if ct := r.header.Get("Content-Type"); strings.HasPrefix(ct, "text/plain") && !strings.Contains(path, "/files/") {
				t.Errorf("%s %s is not served by the simulator: %d %s", m, path, r.status, r.body)
			}
			responses, _ := opMap["responses"].(map[string]any)
			if _, ok := responses[strconv.Itoa(r.status)]; !ok {
				t.Errorf("%s %s answered %d, which openapi.yaml does not declare", m, path, r.status)
			}
			if r.status >= 300 {
				t.Errorf("%s %s answered %d: %s", m, path, r.status, r.body)
			}
		}
	}
	if n < 16 {
		t.Errorf("walked %d operations, want at least 16", n)
	}
	// And no contract request carried a CPR-like run in its URL.
	cprLike := regexp.MustCompile(`[0-9]{10}`)
	for _, r := range h.sim.Requests() {
		if cprLike.MatchString(r.URI) {
			t.Errorf("URL with a CPR-like run: %s", r.URI)
		}
	}
}

// TestConcurrentWritesAreAllDurable: writes made at once share saves
// (commit), and every one answered is on disk: a restarted simulator
// holds each case and its idempotent answer.
func TestConcurrentWritesAreAllDurable(t *testing.T) {
	h := newHarness(t, nil)
	const n = 24
	var wg sync.WaitGroup
	status := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status[i] = h.postJSON("/cases", newCase(fmt.Sprintf("ext-%d", i), "2509479989"), fmt.Sprintf("key-%d", i)).status
		}()
	}
	wg.Wait()
	for i, s := range status {
		if s != http.StatusCreated {
			t.Fatalf("write %d: %d", i, s)
		}
	}
	h.restart()
	h.token = h.fetchToken("")
	if got := len(h.sim.Cases()); got != n {
		t.Fatalf("%d cases after the restart, want %d", got, n)
	}
	for i := range n {
		r := h.postJSON("/cases", newCase(fmt.Sprintf("ext-%d", i), "2509479989"), fmt.Sprintf("key-%d", i))
		if r.status != http.StatusCreated || r.header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("write %d again after the restart: %d, replayed %q", i, r.status, r.header.Get("Idempotent-Replayed"))
		}
	}
}
