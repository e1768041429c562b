package epjsim_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"testing"

	epjsim "github.com/samhub/samhub/internal/sim/epj"
)

// TestCountsShowASecondDelivery: a conditional create repeated is one
// Communication and two requests; a plain create of the same letter is a
// second Communication, which the counts name.
func TestCountsShowASecondDelivery(t *testing.T) {
	s, base, pid, tok := withBruno(t, t.TempDir())
	cond := map[string]string{"If-None-Exist": url.Values{"identifier": {"urn:samhub:letter|L1"}}.Encode()}
	for range 2 {
		if st, _, _ := call(t, "POST", base+"/Communication", tok, "application/fhir+json", communication(pid, "L1"), cond); st != 201 && st != 200 {
			t.Fatalf("create: %d", st)
		}
	}
	c := s.Counts()
	if got := c.IdempotencyKeys["urn:samhub:letter|L1"]; got != (epjsim.Count{Requests: 2, Created: 1}) {
		t.Errorf("key count = %+v", got)
	}
	if got := c.ExternalIDs["urn:samhub:letter|L1"]; got != (epjsim.Count{Requests: 2, Created: 1}) {
		t.Errorf("external id count = %+v", got)
	}
	if len(c.Duplicates) != 0 {
		t.Errorf("duplicates = %v", c.Duplicates)
	}
	// A create without the condition stores a second one, as a FHIR server does.
	if st, _, _ := call(t, "POST", base+"/Communication", tok, "application/fhir+json", communication(pid, "L1"), map[string]string{"Idempotency-Key": "k-plain"}); st != 201 {
		t.Fatalf("plain create: %d", st)
	}
	c = s.Counts()
	if got := c.ExternalIDs["urn:samhub:letter|L1"]; got != (epjsim.Count{Requests: 3, Created: 2}) {
		t.Errorf("external id count = %+v", got)
	}
	if got := c.IdempotencyKeys["k-plain"]; got != (epjsim.Count{Requests: 1, Created: 1}) {
		t.Errorf("Idempotency-Key count = %+v", got)
	}
	res, err := http.Get(base + "/_sim/counts")
	if err != nil {
		t.Fatal(err)
	}
	var over epjsim.Counts
	json.NewDecoder(res.Body).Decode(&over)
	res.Body.Close()
	if !slices.Equal(over.Duplicates, []string{"urn:samhub:letter|L1"}) || !slices.Equal(s.Duplicates(), over.Duplicates) {
		t.Errorf("/_sim/counts duplicates = %v", over.Duplicates)
	}
	reqs := s.Requests()
	if last := reqs[len(reqs)-1]; last.IdempotencyKey != "k-plain" || !slices.Equal(last.ExternalIDs, []string{"urn:samhub:letter|L1"}) {
		t.Errorf("last request = %+v", last)
	}
}
