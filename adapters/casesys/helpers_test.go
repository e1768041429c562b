package casesys

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/samhub/samhub/adapters"
	casesyssim "github.com/samhub/samhub/internal/sim/casesys"
	"github.com/samhub/samhub/pipeline/letter"
)

// env is a real simulator on a loopback port plus its data dir.
type env struct {
	t    testing.TB
	cfg  casesyssim.Config
	sim  *casesyssim.Server
	base string
}

func startSim(t testing.TB, mod func(*casesyssim.Config)) *env {
	t.Helper()
	cfg := casesyssim.Config{DataDir: t.TempDir(), ClientID: "hub", ClientSecret: "s3cret"}
	if mod != nil {
		mod(&cfg)
	}
	e := &env{t: t, cfg: cfg}
	e.start("127.0.0.1:0")
	t.Cleanup(func() {
		e.sim.Close()
		checkAgainstSpec(t, e.sim.Requests())
		checkNoCPRInURLs(t, e.sim.Requests())
	})
	return e
}

func (e *env) start(addr string) {
	e.t.Helper()
	sim, err := casesyssim.New(e.cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	base, err := sim.Start(addr)
	if err != nil {
		e.t.Fatal(err)
	}
	e.sim, e.base = sim, base
}

// restart replaces the simulator by a new one on the same data dir and
// address, as a process restart would.
func (e *env) restart() {
	e.t.Helper()
	old := e.sim
	reqs := old.Requests()
	old.Close()
	checkAgainstSpec(e.t, reqs)
	checkNoCPRInURLs(e.t, reqs)
	u, _ := url.Parse(e.base)
	e.start(u.Host)
}

// mapState is a StateStore in a map; fail makes every call fail.
type mapState struct {
	mu   sync.Mutex
	m    map[string][]byte
	rev  uint64
	fail bool
}

func newMapState() *mapState { return &mapState{m: map[string][]byte{}} }

var errStoreDown = errors.New("state store down")

func (s *mapState) Get(_ context.Context, k string) ([]byte, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return nil, 0, errStoreDown
	}
	v, ok := s.m[k]
	if !ok {
		return nil, 0, adapters.ErrNotFound
	}
	return v, s.rev, nil
}

func (s *mapState) Put(_ context.Context, k string, v []byte) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return 0, errStoreDown
	}
	s.rev++
	s.m[k] = v
	return s.rev, nil
}

func (s *mapState) Create(ctx context.Context, k string, v []byte) (uint64, error) {
	if _, _, err := s.Get(ctx, k); err == nil {
		return 0, adapters.ErrExists
	}
	return s.Put(ctx, k, v)
}

func (s *mapState) Update(ctx context.Context, k string, v []byte, _ uint64) (uint64, error) {
	return s.Put(ctx, k, v)
}

func (s *mapState) Delete(_ context.Context, k string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return errStoreDown
	}
	delete(s.m, k)
	return nil
}

// buildAdapter goes through the registry, as the hub does.
func (e *env) adapter(state adapters.StateStore, extra map[string]any) *Adapter {
	e.t.Helper()
	cfg := map[string]any{"url": e.base, "client_id": "hub", "client_secret": "s3cret", "timeout": "5s", "poll_interval": "0"}
	for k, v := range extra {
		cfg[k] = v
	}
	if state == nil {
		state = newMapState()
	}
	inst, err := adapters.Build("casesys", adapters.Deps{Name: "casesys", Logger: slog.New(slog.DiscardHandler), State: state, Now: time.Now}, cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return inst.(*Adapter)
}

const brunoCPR = "2509479989"

func referral(t testing.TB, id string) *letter.Letter {
	t.Helper()
	orig, err := os.ReadFile("../../testdata/casesys/referral-xdis91.xml")
	if err != nil {
		t.Fatal(err)
	}
	return &letter.Letter{
		ID: id, Kind: letter.KindReferral, Format: "xdis91", Source: "medcom",
		ThreadID: id, Received: time.Date(2026, 11, 2, 9, 16, 0, 0, time.UTC), Sent: time.Date(2026, 11, 2, 9, 15, 0, 0, time.UTC),
		Sender:    letter.Party{Role: "gp", Name: "Lægerne Test", GLN: "5790000121526"},
		Receivers: []letter.Party{{Role: "municipality", Name: "Samråd for Børn og Unge", GLN: "5790000120314"}},
		Patient:   &letter.Patient{CPR: brunoCPR, GivenName: "Bruno Test", FamilyName: "Elmer"},
		Consent:   &letter.Consent{GivenBy: "custody-holder", Form: "oral", GivenAt: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC), Scopes: []letter.Scope{letter.ScopeMunicipality, letter.ScopeGP}},
		Subject:   "Henvisning til Samråd",
		Text:      "Forældremyndighedsindehaver har mundtligt givet samtykke.\nProblemstilling: test-tekst.",
		Original:  letter.Original{Data: orig, ContentType: "application/xml", SHA256: letter.Digest(orig)},
	}
}

func classOf(t *testing.T, err error) (adapters.Class, string) {
	t.Helper()
	if err == nil {
		t.Fatal("expected an error, got success")
	}
	var ae *adapters.Error
	if !errors.As(err, &ae) {
		t.Fatalf("error is not classified: %v", err)
	}
	return ae.Class, ae.Code
}
