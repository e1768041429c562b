//go:build !release

package epj

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/adapters/adaptertest"
	epjsim "github.com/samhub/samhub/internal/sim/epj"
	"github.com/samhub/samhub/pipeline/letter"
)

// The conformance harness: the EPJ gateway simulator (FHIR R4 with
// conditional create, faults and persisted state). A sink's object is the
// Communication carrying the letter's identifier; a note in the feed is
// acknowledged once the source's cursor (in the state store) is past it.
func init() { adaptertest.Register(TypeName, newHarness) }

const (
	harnessSelf   = "1144561000016002"
	harnessRegion = "6071000016008"
	harnessCPR    = "2509479989"
)

type harness struct {
	env  *adaptertest.Env
	sim  *epjsim.Server
	base string

	mu    sync.Mutex
	notes map[int]seeded
}

type seeded struct {
	id string
	at time.Time
}

func newHarness(t *testing.T, env *adaptertest.Env) adaptertest.Harness {
	sim, err := epjsim.New(epjsim.Config{DataDir: t.TempDir(), ClientID: "hub", ClientSecret: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	base, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	if _, err := sim.SeedPatient(epjsim.Patient{CPR: harnessCPR, GivenName: "Bruno Test", FamilyName: "Elmer"}); err != nil {
		t.Fatal(err)
	}
	return &harness{env: env, sim: sim, base: base, notes: map[int]seeded{}}
}

func (h *harness) Block() map[string]any {
	return map[string]any{"url": h.base, "client_id": "hub", "client_secret": "s3cret", "timeout": "10s", "poll_interval": "50ms",
		"self": map[string]any{"sor": harnessSelf, "name": "Samrådet"}, "recipient": harnessRegion}
}

func (h *harness) Letter(n int) *letter.Letter {
	orig := []byte(`<?xml version="1.0" encoding="UTF-8"?><Emessage>conformance</Emessage>`)
	region := letter.Party{Role: "region", SOR: harnessRegion}
	return &letter.Letter{
		ID: fmt.Sprintf("conformance:epj:%d:%d", time.Now().UnixNano(), n), Kind: letter.KindRecommendation, Format: "casesys", Source: "casesys",
		Received: time.Now().UTC(), Sender: letter.Party{Role: "municipality", SOR: harnessSelf},
		Receivers: []letter.Party{region}, To: []letter.Party{region},
		Patient: &letter.Patient{CPR: harnessCPR, GivenName: "Bruno Test", FamilyName: "Elmer"},
		Consent: &letter.Consent{GivenBy: "custody-holder", Form: "written", GivenAt: time.Now().Add(-time.Hour), Scopes: letter.Scopes},
		Subject: "Samrådets anbefaling", Text: "Samrådet anbefaler et forløb i PPR.",
		Original: letter.Original{Data: orig, ContentType: "application/xml", SHA256: letter.Digest(orig)},
	}
}

func (h *harness) Stored(_ testing.TB, l *letter.Letter) int {
	return len(h.sim.CommunicationsFor(l.ID))
}

func (h *harness) LoseNextReply(testing.TB) { h.sim.DropNext(1) }

func (h *harness) Faults() []adaptertest.Fault {
	fail := func(status int) func(testing.TB, *letter.Letter) (*letter.Letter, func()) {
		return func(_ testing.TB, l *letter.Letter) (*letter.Letter, func()) {
			h.sim.FailNext(1, status, 0)
			return l, h.sim.ResetFaults
		}
	}
	return []adaptertest.Fault{
		{Name: "busy-503", Class: adapters.ClassRetryable, Arm: fail(503)},
		{Name: "server-error-500", Class: adapters.ClassRetryable, Arm: fail(500)},
		{Name: "rejected-422", Class: adapters.ClassPermanent, Arm: fail(422)},
		{Name: "no-consent-for-the-region", Class: adapters.ClassPermanent, Arm: func(_ testing.TB, l *letter.Letter) (*letter.Letter, func()) {
			c := *l
			c.Consent = &letter.Consent{GivenBy: "custody-holder", GivenAt: time.Now().Add(-time.Hour), Scopes: []letter.Scope{letter.ScopeMunicipality}}
			return &c, func() {}
		}},
	}
}

func (h *harness) Put(t testing.TB, n int) {
	at := time.Now().UTC().Truncate(time.Millisecond) // FHIR instants as the gateway keeps them
	ref, err := h.sim.SeedNote(epjsim.Note{Type: "Communication", PatientCPR: harnessCPR, RecipientSOR: harnessSelf, SenderSOR: harnessRegion,
		SenderName: "Børne- og ungdomspsykiatrien", Text: fmt.Sprintf("Notat %d fra regionen.", n), LastUpdated: at})
	if err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	h.notes[n] = seeded{id: strings.TrimPrefix(ref, "Communication/"), at: at}
	h.mu.Unlock()
}

func (h *harness) Item(l *letter.Letter) (int, bool) {
	// epj:<name>:Communication/<id>/<version>
	_, rest, ok := strings.Cut(l.ID, ":Communication/")
	if !ok {
		return 0, false
	}
	id, _, _ := strings.Cut(rest, "/")
	h.mu.Lock()
	defer h.mu.Unlock()
	for n, s := range h.notes {
		if s.id == id {
			return n, true
		}
	}
	return 0, false
}

// Acknowledged reads the source's cursor: past the note's instant, or at
// it with the note's version among those seen.
func (h *harness) Acknowledged(t testing.TB, n int) bool {
	h.mu.Lock()
	s, ok := h.notes[n]
	h.mu.Unlock()
	if !ok {
		t.Fatalf("input %d was never put", n)
	}
	b, _, err := h.env.State.Get(t.Context(), unsafeKey.ReplaceAllString("epj."+h.env.Name+".cursor.Communication", "_"))
	if errors.Is(err, adapters.ErrNotFound) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	var c cursor
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	if c.At.After(s.at) {
		return true
	}
	return c.At.Equal(s.at) && slices.ContainsFunc(c.Seen, func(v string) bool { return strings.HasPrefix(v, s.id+"/") })
}
