package epjsim_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	epjsim "github.com/samhub/samhub/internal/sim/epj"
)

const (
	clientID = "samhub"
	secret   = "s3cret"
	cprBruno = "2509479989" // MedCom fictitious test person
	sorMuni  = "123456789012345"
	sorBUP   = "543210987654321"
)

func start(t *testing.T, dir string) (*epjsim.Server, string) {
	t.Helper()
	s, err := epjsim.New(epjsim.Config{DataDir: dir, ClientID: clientID, ClientSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	base, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, base
}

func token(t *testing.T, base string) string {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/oauth2/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(clientID, secret)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if res.StatusCode != 200 || json.NewDecoder(res.Body).Decode(&out) != nil || out.AccessToken == "" {
		t.Fatalf("token: status %d", res.StatusCode)
	}
	return out.AccessToken
}

func call(t *testing.T, method, u, tok, ctype, body string, hdr map[string]string) (int, http.Header, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, u, strings.NewReader(body))
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var m map[string]any
	json.Unmarshal(b, &m)
	return res.StatusCode, res.Header, m
}

func communication(patientID, letterID string) string {
	return `{"resourceType":"Communication","status":"completed",
 "identifier":[{"system":"urn:samhub:letter","value":"` + letterID + `"}],
 "subject":{"reference":"Patient/` + patientID + `"},
 "recipient":[{"identifier":{"system":"urn:oid:1.2.208.176.1.1","value":"` + sorBUP + `"}}],
 "payload":[{"contentString":"Samrådets anbefaling."}]}`
}

// withBruno starts a simulator on dir with the test person Bruno seeded
// and returns his patient id and an access token.
func withBruno(t *testing.T, dir string) (s *epjsim.Server, base, pid, tok string) {
	t.Helper()
	s, base = start(t, dir)
	pid, err := s.SeedPatient(epjsim.Patient{CPR: cprBruno, GivenName: "Bruno Test", FamilyName: "Elmer"})
	if err != nil {
		t.Fatal(err)
	}
	return s, base, pid, token(t, base)
}

func TestConditionalCreateAndRestart(t *testing.T) {
	dir := t.TempDir()
	s, base, pid, tok := withBruno(t, dir)

	// Unauthenticated requests are refused with an OperationOutcome.
	if st, _, body := call(t, "GET", base+"/Communication/1", "", "", "", nil); st != 401 || body["resourceType"] != "OperationOutcome" {
		t.Fatalf("no token: %d %v", st, body)
	}

	// Patient search by POST finds exactly the seeded patient.
	st, _, bundle := call(t, "POST", base+"/Patient/_search", tok, "application/x-www-form-urlencoded",
		url.Values{"identifier": {"urn:oid:1.2.208.176.1.2|" + cprBruno}}.Encode(), nil)
	if st != 200 || bundle["total"] != float64(1) {
		t.Fatalf("patient search: %d %v", st, bundle)
	}

	cond := map[string]string{"If-None-Exist": url.Values{"identifier": {"urn:samhub:letter|L1"}}.Encode()}
	st, hdr, created := call(t, "POST", base+"/Communication", tok, "application/fhir+json", communication(pid, "L1"), cond)
	if st != 201 || !strings.Contains(hdr.Get("Location"), "/Communication/") {
		t.Fatalf("create: %d %v", st, created)
	}
	st, _, again := call(t, "POST", base+"/Communication", tok, "application/fhir+json", communication(pid, "L1"), cond)
	if st != 200 || again["id"] != created["id"] {
		t.Fatalf("replay: %d id %v, want 200 id %v", st, again["id"], created["id"])
	}
	if n := len(s.CommunicationsFor("L1")); n != 1 {
		t.Fatalf("stored %d Communications for L1, want 1", n)
	}

	// A new server on the same directory keeps the resources; tokens do not survive.
	s.Close()
	s2, base2 := start(t, dir)
	if n := len(s2.CommunicationsFor("L1")); n != 1 {
		t.Fatalf("after restart %d Communications for L1, want 1", n)
	}
	if st, _, _ := call(t, "GET", base2+"/Communication/"+created["id"].(string), tok, "", "", nil); st != 401 {
		t.Fatalf("old token after restart: %d, want 401", st)
	}
	tok = token(t, base2)
	if st, _, got := call(t, "GET", base2+"/Communication/"+created["id"].(string), tok, "", "", nil); st != 200 || got["status"] != "completed" {
		t.Fatalf("read after restart: %d %v", st, got)
	}

	// Two matches make the conditional create fail with 412.
	if err := s2.MakeAmbiguous("L1"); err != nil {
		t.Fatal(err)
	}
	if st, _, oo := call(t, "POST", base2+"/Communication", tok, "application/fhir+json", communication(pid, "L1"), cond); st != 412 || oo["resourceType"] != "OperationOutcome" {
		t.Fatalf("ambiguous: %d %v", st, oo)
	}
}

func TestFeedSearchAndPaging(t *testing.T) {
	s, base := start(t, t.TempDir())
	if _, err := s.SeedPatient(epjsim.Patient{CPR: cprBruno, FamilyName: "Elmer"}); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)
	for i := 0; i < 5; i++ {
		if _, err := s.SeedNote(epjsim.Note{Type: "Communication", PatientCPR: cprBruno, RecipientSOR: sorMuni, SenderSOR: sorBUP, Text: "note", LastUpdated: at}); err != nil {
			t.Fatal(err)
		}
	}
	// One addressed elsewhere must not show.
	if _, err := s.SeedNote(epjsim.Note{Type: "Communication", PatientCPR: cprBruno, RecipientSOR: "999", SenderSOR: sorBUP, LastUpdated: at}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SeedNote(epjsim.Note{Type: "DocumentReference", Discharge: true, PatientCPR: cprBruno, RecipientSOR: sorMuni, SenderSOR: sorBUP, Text: "udskrivning", LastUpdated: at}); err != nil {
		t.Fatal(err)
	}
	tok := token(t, base)
	q := url.Values{"recipient:identifier": {"urn:oid:1.2.208.176.1.1|" + sorMuni}, "_lastUpdated": {"ge" + at.Format(time.RFC3339)}, "_count": {"2"}}
	next := base + "/Communication?" + q.Encode()
	seen := 0
	for pages := 0; next != ""; pages++ {
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		st, _, b := call(t, "GET", next, tok, "", "", nil)
		if st != 200 || b["total"] != float64(5) {
			t.Fatalf("search: %d total %v", st, b["total"])
		}
		entries, _ := b["entry"].([]any)
		seen += len(entries)
		next = ""
		for _, l := range b["link"].([]any) {
			if m := l.(map[string]any); m["relation"] == "next" {
				next = m["url"].(string)
			}
		}
	}
	if seen != 5 {
		t.Fatalf("paged through %d entries, want 5", seen)
	}
	q = url.Values{"recipient:identifier": {"urn:oid:1.2.208.176.1.1|" + sorMuni}, "_lastUpdated": {"gt" + at.Format(time.RFC3339)}}
	if _, _, b := call(t, "GET", base+"/Communication?"+q.Encode(), tok, "", "", nil); b["total"] != float64(0) {
		t.Fatalf("gt the shared instant: total %v, want 0", b["total"])
	}
	q = url.Values{"related:identifier": {"urn:oid:1.2.208.176.1.1|" + sorMuni}}
	if _, _, b := call(t, "GET", base+"/DocumentReference?"+q.Encode(), tok, "", "", nil); b["total"] != float64(1) {
		t.Fatalf("DocumentReference feed: total %v, want 1", b["total"])
	}
}

func TestFaultsOverHTTP(t *testing.T) {
	s, base := start(t, t.TempDir())
	tok := token(t, base)
	post := func(path, body string) {
		t.Helper()
		res, err := http.Post(base+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode/100 != 2 {
			t.Fatalf("%s: %d", path, res.StatusCode)
		}
	}
	post("/_sim/fail", `{"count":1,"status":429,"retry_after":"3s"}`)
	st, hdr, oo := call(t, "GET", base+"/metadata", tok, "", "", nil)
	if st != 429 || hdr.Get("Retry-After") != "3" || oo["resourceType"] != "OperationOutcome" {
		t.Fatalf("fail fault: %d %q %v", st, hdr.Get("Retry-After"), oo)
	}
	if st, _, cs := call(t, "GET", base+"/metadata", tok, "", "", nil); st != 200 || cs["fhirVersion"] != "4.0.1" {
		t.Fatalf("after the fault: %d %v", st, cs)
	}
	post("/_sim/reject-tokens", `{"on":true}`)
	if st, _, _ := call(t, "GET", base+"/Communication/1", tok, "", "", nil); st != 401 {
		t.Fatalf("rejected token: %d", st)
	}
	post("/_sim/reset", ``)
	post("/_sim/patients", `{"cpr":"`+cprBruno+`","familyName":"Elmer"}`)
	post("/_sim/drop", `{"count":1}`)
	req, _ := http.NewRequest("POST", base+"/Communication", strings.NewReader(communication("1", "L9")))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/fhir+json")
	if res, err := http.DefaultClient.Do(req); err == nil {
		res.Body.Close()
		t.Fatalf("dropped response: got status %d, want a transport error", res.StatusCode)
	}
	if n := len(s.CommunicationsFor("L9")); n != 1 {
		t.Fatalf("dropped create stored %d Communications, want 1", n)
	}
	if got := s.Requests(); len(got) == 0 || got[len(got)-1].URL != "/Communication" {
		t.Fatalf("requests not recorded: %v", got)
	}
	// Links name the base the simulator was told, as a gateway behind a
	// proxy with its own idea of its address does.
	post("/_sim/link-base", `{"base":"http://fhir-internal.example:8080/fhir/"}`)
	_, _, b := call(t, "GET", base+"/Communication?_count=1", tok, "", "", nil)
	links, _ := b["link"].([]any)
	if len(links) == 0 || links[0].(map[string]any)["url"] != "http://fhir-internal.example:8080/fhir/Communication?_count=1" {
		t.Fatalf("links %v, want them under the link base", links)
	}
}

// Two conditional creates for one letter that race: both searched before
// either stored, so one is created and the other answered 409 without a
// second copy; the loser's next try finds the winner (200).
func TestConditionalCreateRace(t *testing.T) {
	s, base, pid, tok := withBruno(t, t.TempDir())
	cond := map[string]string{"If-None-Exist": url.Values{"identifier": {"urn:samhub:letter|L2"}}.Encode()}
	s.RaceNextCreates(2)
	type answer struct {
		status int
		body   map[string]any
	}
	answers := make(chan answer, 2)
	for range 2 {
		go func() {
			req, _ := http.NewRequest("POST", base+"/Communication", strings.NewReader(communication(pid, "L2")))
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", "application/fhir+json")
			req.Header.Set("If-None-Exist", cond["If-None-Exist"])
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				answers <- answer{}
				return
			}
			defer res.Body.Close()
			var m map[string]any
			json.NewDecoder(res.Body).Decode(&m)
			answers <- answer{res.StatusCode, m}
		}()
	}
	got := map[int]int{}
	for range 2 {
		a := <-answers
		got[a.status]++
		if a.status == http.StatusConflict && a.body["resourceType"] != "OperationOutcome" {
			t.Errorf("409 without an OperationOutcome: %v", a.body)
		}
	}
	if got[http.StatusCreated] != 1 || got[http.StatusConflict] != 1 {
		t.Fatalf("racing creates answered %v, want one 201 and one 409", got)
	}
	if n := len(s.CommunicationsFor("L2")); n != 1 {
		t.Fatalf("stored %d Communications for L2, want 1", n)
	}
	if st, _, _ := call(t, "POST", base+"/Communication", tok, "application/fhir+json", communication(pid, "L2"), cond); st != http.StatusOK {
		t.Fatalf("the loser's retry: %d, want 200", st)
	}
	// The race was for two: the next create is a plain one.
	cond["If-None-Exist"] = url.Values{"identifier": {"urn:samhub:letter|L3"}}.Encode()
	if st, _, _ := call(t, "POST", base+"/Communication", tok, "application/fhir+json", communication(pid, "L3"), cond); st != http.StatusCreated {
		t.Fatalf("after the race: %d, want 201", st)
	}
	if d := s.Duplicates(); len(d) != 0 {
		t.Fatalf("duplicates %v", d)
	}
}
