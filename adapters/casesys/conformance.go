//go:build !release

package casesys

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/adapters/adaptertest"
	casesyssim "github.com/samhub/samhub/internal/sim/casesys"
	"github.com/samhub/samhub/pipeline/letter"
)

// The conformance harness: the case-system simulator (the REST contract
// with its idempotency, faults and persisted state). A sink's object is
// the document with the letter's externalId; an outbox document is
// acknowledged once the case system lists it as taken by the hub (no
// longer ready).
func init() { adaptertest.Register("casesys", newHarness) }

type harness struct {
	sim  *casesyssim.Server
	base string

	mu     sync.Mutex
	caseID string
	docs   map[string]int // outbox document id → input
}

func newHarness(t *testing.T, env *adaptertest.Env) adaptertest.Harness {
	sim, err := casesyssim.New(casesyssim.Config{DataDir: t.TempDir(), ClientID: "hub", ClientSecret: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	base, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	return &harness{sim: sim, base: base, docs: map[string]int{}}
}

func (h *harness) Block() map[string]any {
	return map[string]any{"url": h.base, "client_id": "hub", "client_secret": "s3cret", "timeout": "10s", "poll_interval": "50ms",
		"outbox": map[string]any{"sender": map[string]any{"name": "Samrådet", "gln": "5790001382445"}}}
}

func (h *harness) Letter(n int) *letter.Letter {
	orig := []byte(`<?xml version="1.0" encoding="UTF-8"?><Emessage>conformance</Emessage>`)
	id := fmt.Sprintf("conformance:casesys:%d:%d", time.Now().UnixNano(), n)
	muni := letter.Party{Role: "municipality", Name: "Samråd for Børn og Unge", GLN: "5790000120314"}
	return &letter.Letter{
		ID: id, Kind: letter.KindReferral, Format: "xdis91", Source: "medcom", ThreadID: id, Received: time.Now().UTC(),
		Sender:    letter.Party{Role: "gp", Name: "Lægerne Test", GLN: "5790000121526"},
		Receivers: []letter.Party{muni}, To: []letter.Party{muni},
		Patient: &letter.Patient{CPR: "2509479989", GivenName: "Bruno Test", FamilyName: "Elmer"},
		Consent: &letter.Consent{GivenBy: "custody-holder", Form: "oral", GivenAt: time.Now().Add(-time.Hour), Scopes: letter.Scopes},
		Subject: "Henvisning til Samråd", Text: "Problemstilling: testtekst.",
		Original: letter.Original{Data: orig, ContentType: "application/xml", SHA256: letter.Digest(orig)},
	}
}

func (h *harness) Stored(_ testing.TB, l *letter.Letter) int {
	n := 0
	for _, d := range h.sim.Documents() {
		if d.ExternalID == DocumentExternalID(l.ID) {
			n++
		}
	}
	return n
}

func (h *harness) LoseNextReply(testing.TB) {
	h.sim.DropResponses("POST /cases/{caseId}/documents", 1)
}

func (h *harness) Faults() []adaptertest.Fault {
	fail := func(status int, after time.Duration) func(testing.TB, *letter.Letter) (*letter.Letter, func()) {
		return func(_ testing.TB, l *letter.Letter) (*letter.Letter, func()) {
			h.sim.FailNext(1, status, after)
			return l, h.sim.ResetFaults
		}
	}
	return []adaptertest.Fault{
		{Name: "unavailable-503", Class: adapters.ClassRetryable, Arm: fail(503, time.Second)},
		{Name: "throttled-429", Class: adapters.ClassRetryable, Arm: fail(429, time.Second)},
		{Name: "server-error-500", Class: adapters.ClassRetryable, Arm: fail(500, 0)},
		{Name: "validation-422", Class: adapters.ClassPermanent, Arm: fail(422, 0)},
		{Name: "forbidden-403", Class: adapters.ClassPermanent, Arm: fail(403, 0)},
	}
}

func (h *harness) Put(t testing.TB, n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.caseID == "" {
		c, err := h.sim.SeedCase(casesyssim.Case{Title: "Samråd", PrimaryParty: casesyssim.Person{CPR: "2509479989", Name: "Bruno Test Elmer"}})
		if err != nil {
			t.Fatal(err)
		}
		h.caseID = c.ID
	}
	d, err := h.sim.SeedOutboxDocument(h.caseID, casesyssim.SeedDocument{Title: fmt.Sprintf("Anbefaling %d", n), Text: "Samrådet anbefaler et forløb hos PPR."})
	if err != nil {
		t.Fatal(err)
	}
	h.docs[d.ID] = n
}

func (h *harness) Item(l *letter.Letter) (int, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	n, ok := h.docs[l.SourceDocumentID]
	return n, ok && strings.HasPrefix(l.ID, "casesys:")
}

func (h *harness) Acknowledged(t testing.TB, n int) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, d := range h.sim.Documents() {
		if m, ok := h.docs[d.ID]; ok && m == n {
			return d.Outbox != nil && d.Outbox.Status != casesyssim.OutboxReady
		}
	}
	t.Fatalf("input %d is not in the simulator", n)
	return false
}
