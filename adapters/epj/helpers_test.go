package epj_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/adapters/epj"
	epjsim "github.com/samhub/samhub/internal/sim/epj"
	"github.com/samhub/samhub/pipeline/letter"

	"github.com/samhub/samhub/adapters/adaptertest"
)

// MedCom's fictitious test persons; nothing else personal appears here.
const (
	cprBruno  = "2509479989"
	cprBrita  = "1509819996"
	cprNancy  = "2512489996"
	xecprTest = "0703921VJ4"

	sorMuni   = "123456789012345" // the municipality (self)
	sorRegion = "543210987654321" // child psychiatry

	clientID = "samhub-test"
	secret   = "not-a-real-secret"
)

var personal = []string{cprBruno, cprBrita, cprNancy, xecprTest, "Bruno", "Elmer", "Brita", "Berggren", "Nancy"}

// memState is the shared in-memory StateStore.
type memState = adaptertest.State

func newMemState() *memState { return adaptertest.NewState() }

// recPub records published letters; failAt makes the n-th call (1-based) fail.
type recPub struct {
	mu      sync.Mutex
	letters []*letter.Letter
	calls   int
	failAt  int
	notify  chan struct{}
}

func (p *recPub) Publish(_ context.Context, l *letter.Letter) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	if p.calls == p.failAt {
		return errors.New("broker unavailable")
	}
	if err := l.Validate(); err != nil {
		return err
	}
	p.letters = append(p.letters, l)
	if p.notify != nil {
		p.notify <- struct{}{}
	}
	return nil
}

func (p *recPub) ids() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, l := range p.letters {
		out = append(out, l.ID)
	}
	return out
}

// env is a simulator and an adapter talking to it over 127.0.0.1.
type env struct {
	t     *testing.T
	dir   string
	sim   *epjsim.Server
	base  string
	state *memState
	logs  *bytes.Buffer
	clock *clock
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

func newEnv(t *testing.T, ttl time.Duration) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), state: newMemState(), logs: &bytes.Buffer{}, clock: &clock{t: time.Now()}}
	e.startSim(ttl)
	t.Cleanup(func() {
		e.sim.Close()
		assertNoPersonalDataInURLs(t, e.sim.Requests())
		for _, p := range personal {
			if strings.Contains(e.logs.String(), p) {
				t.Errorf("log output contains personal data %q", p)
			}
		}
	})
	return e
}

func (e *env) startSim(ttl time.Duration) {
	e.t.Helper()
	s, err := epjsim.New(epjsim.Config{DataDir: e.dir, ClientID: clientID, ClientSecret: secret, TokenTTL: ttl})
	if err != nil {
		e.t.Fatal(err)
	}
	base, err := s.Start("127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	e.sim, e.base = s, base
}

func (e *env) config() epj.Config {
	c := adapters.Defaults[epj.Config]()
	c.URL, c.TokenURL, c.ClientID, c.ClientSecret = e.base, e.base+"/oauth2/token", clientID, secret
	c.Timeout = 5 * time.Second
	c.Self = epj.Party{SOR: sorMuni, GLN: "5790000123456", Name: "Samråd for Børn og Unge"}
	c.Recipient = sorRegion
	return c
}

func (e *env) adapter(mod func(*epj.Config)) *epj.Adapter {
	e.t.Helper()
	cfg := e.config()
	if mod != nil {
		mod(&cfg)
	}
	a, err := epj.New(e.deps(), cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

func (e *env) deps() adapters.Deps {
	return adapters.Deps{
		Name:   "epj-test",
		Logger: slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		State:  e.state,
		Now:    e.clock.Now,
	}
}

func (e *env) seedPatient(p epjsim.Patient) string {
	e.t.Helper()
	id, err := e.sim.SeedPatient(p)
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

func consent() *letter.Consent {
	return &letter.Consent{
		GivenBy: "custody-holder", Form: "oral", GivenAt: time.Date(2025, 1, 2, 9, 0, 0, 0, time.UTC),
		Scopes: []letter.Scope{letter.ScopeMunicipality, letter.ScopeGP, letter.ScopeRegionPsychiatry},
	}
}

func recommendation(id string) *letter.Letter {
	orig := []byte(`<?xml version="1.0" encoding="UTF-8"?><Emessage>fixture</Emessage>`)
	return &letter.Letter{
		ID:       id,
		Kind:     letter.KindRecommendation,
		Format:   "casesys",
		Source:   "casesys",
		ThreadID: "thread-1",
		Received: time.Date(2025, 3, 4, 9, 0, 0, 0, time.UTC),
		Sent:     time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC),
		Sender:   letter.Party{Role: "municipality", SOR: sorMuni},
		Patient:  &letter.Patient{CPR: cprBruno, GivenName: "Bruno Test", FamilyName: "Elmer"},
		Consent:  consent(),
		Subject:  "Samrådets anbefaling",
		Text:     "Samrådet anbefaler et forløb i PPR.",
		Attachments: []letter.Attachment{
			letter.NewAttachment("anbefaling.pdf", "application/pdf", []byte("%PDF-1.4 fixture")),
		},
		Original: letter.Original{Data: orig, ContentType: "application/xml", Charset: "utf-8", Filename: "referral.xml", SHA256: letter.Digest(orig)},
	}
}

// tenDigits finds a run of exactly ten digits: the shape of a CPR number.
// SOR ids are longer and so do not match.
var tenDigits = regexp.MustCompile(`(^|[^0-9])[0-9]{10}([^0-9]|$)`)

func assertNoPersonalDataInURLs(t *testing.T, reqs []epjsim.Request) {
	t.Helper()
	for _, r := range reqs {
		if tenDigits.MatchString(r.URL) {
			t.Errorf("request URL has a ten-digit run (a CPR?): %s %s", r.Method, r.URL)
		}
		for _, p := range personal {
			if strings.Contains(r.URL, p) {
				t.Errorf("request URL contains personal data: %s %s", r.Method, r.URL)
			}
		}
	}
}

// classified asserts err is an *adapters.Error of class and code whose
// reason is free of personal data, and returns it.
func classified(t *testing.T, err error, class adapters.Class, code string) *adapters.Error {
	t.Helper()
	var ae *adapters.Error
	if !errors.As(err, &ae) {
		t.Fatalf("error %v is not classified", err)
	}
	if ae.Class != class || ae.Code != code {
		t.Fatalf("got %s/%s (%q), want %s/%s", ae.Class, ae.Code, ae.Reason, class, code)
	}
	if ae.Reason == "" || tenDigits.MatchString(ae.Reason) {
		t.Fatalf("reason %q is empty or has a ten-digit run", ae.Reason)
	}
	for _, p := range personal {
		if strings.Contains(ae.Reason, p) {
			t.Fatalf("reason %q contains personal data", ae.Reason)
		}
	}
	return ae
}
