package casesys

import (
	"errors"
	"log/slog"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/samhub/samhub/adapters"
	casesyssim "github.com/samhub/samhub/internal/sim/casesys"
	"github.com/samhub/samhub/pipeline/letter"

	"github.com/samhub/samhub/adapters/adaptertest"
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

// mapState is the shared in-memory StateStore.
type mapState = adaptertest.State

func newMapState() *mapState { return adaptertest.NewState() }

var errStoreDown = errors.New("state store down")

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
