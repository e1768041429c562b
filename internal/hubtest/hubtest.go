// Package hubtest starts a whole Samhub in process for tests: embedded NATS
// JetStream on a temporary store, the case-system and EPJ simulators on
// loopback, a MedCom drop folder, and API users for each role. Tests of the
// console, the CLI and the reliability suite drive the real wiring through it.
package hubtest

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/samhub/samhub/adapters/email/mailtest"
	"github.com/samhub/samhub/internal/app"
	"github.com/samhub/samhub/internal/config"
	"github.com/samhub/samhub/internal/httpapi"
	_ "github.com/samhub/samhub/internal/plugins"
	casesyssim "github.com/samhub/samhub/internal/sim/casesys"
	digitalpostsim "github.com/samhub/samhub/internal/sim/digitalpost"
	epjsim "github.com/samhub/samhub/internal/sim/epj"
)

// API tokens of the test users, one per role.
const (
	CoordinatorToken = "test-coordinator-token"
	OperationsToken  = "test-operations-token"
	AuditorToken     = "test-auditor-token"
	// Passwords for console logins.
	CoordinatorPassword = "koordinator-kode"
	OperationsPassword  = "drift-kode"
	AuditorPassword     = "revisor-kode"
)

// Hub is a running test hub.
type Hub struct {
	T       testing.TB
	App     *app.App
	Config  *config.Config
	CaseSys *casesyssim.Server
	EPJ     *epjsim.Server
	SMTP    *mailtest.SMTPServer // set by WithMail
	// DigitalPost is the Digital Post simulator, set by WithDigitalPost.
	DigitalPost *digitalpostsim.Server
	Dir         string // data dir
	MedComDir   string // the drop folder root (in/, processed/, error/, out/)
	BaseURL     string // the hub's HTTP API
	Log         *slog.Logger

	casesysDir, epjDir string
	mounts             []app.Mount
}

// Option changes the configuration before start.
type Option func(*Hub)

// WithConfig lets a test edit the configuration.
func WithConfig(f func(*config.Config)) Option {
	return func(h *Hub) { f(h.Config) }
}

// WithMount adds an HTTP mount (the console).
func WithMount(m app.Mount) Option { return func(h *Hub) { h.mounts = append(h.mounts, m) } }

// WithLog sends the hub's log to w (default: discarded unless SAMHUB_TEST_LOG=1).
func WithLog(w io.Writer) Option {
	return func(h *Hub) { h.Log = slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})) }
}

// Start starts simulators and a hub and stops them when the test ends.
func Start(t testing.TB, opts ...Option) *Hub {
	t.Helper()
	root := t.TempDir()
	h := &Hub{T: t, Dir: filepath.Join(root, "data"), MedComDir: filepath.Join(root, "medcom"), casesysDir: filepath.Join(root, "casesys"), epjDir: filepath.Join(root, "epj")}
	if os.Getenv("SAMHUB_TEST_LOG") != "" {
		h.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	} else {
		h.Log = slog.New(slog.DiscardHandler)
	}
	var err error
	h.CaseSys, err = casesyssim.New(casesyssim.Config{DataDir: h.casesysDir, ClientID: "samhub", ClientSecret: "case-secret"})
	if err != nil {
		t.Fatal(err)
	}
	caseURL, err := h.CaseSys.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.CaseSys.Close() })
	h.EPJ, err = epjsim.New(epjsim.Config{DataDir: h.epjDir, ClientID: "samhub", ClientSecret: "epj-secret"})
	if err != nil {
		t.Fatal(err)
	}
	epjURL, err := h.EPJ.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.EPJ.Close() })
	h.Config = DefaultConfig(h.Dir, h.MedComDir, caseURL, epjURL)
	for _, o := range opts {
		o(h)
	}
	if err := h.Config.Validate(); err != nil {
		t.Fatal(err)
	}
	h.startApp()
	t.Cleanup(func() { h.Stop() })
	return h
}

func (h *Hub) startApp() {
	h.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, err := app.Start(ctx, h.Config, h.Log, h.mounts...)
	if err != nil {
		h.T.Fatal(err)
	}
	h.App = a
	h.BaseURL = "http://" + a.HTTPAddr.String()
}

// Stop stops the hub gracefully (simulators keep running).
func (h *Hub) Stop() {
	if h.App == nil {
		return
	}
	_ = h.App.Stop()
	h.App = nil
}

// Restart stops and starts the hub on the same store and folders.
func (h *Hub) Restart() {
	h.T.Helper()
	h.Stop()
	h.Config.HTTP.Listen = "127.0.0.1:0"
	h.startApp()
}

// Drop writes a letter into the MedCom inbox the way a VANS client does:
// a temporary name, then an atomic rename.
func (h *Hub) Drop(name string, data []byte) {
	h.T.Helper()
	in := filepath.Join(h.MedComDir, "in")
	if err := os.MkdirAll(in, 0o700); err != nil {
		h.T.Fatal(err)
	}
	tmp := filepath.Join(in, "."+name+".tmp")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		h.T.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(in, name)); err != nil {
		h.T.Fatal(err)
	}
}

// Eventually polls cond every 20 ms for up to 30 s.
func (h *Hub) Eventually(what string, cond func() bool) {
	h.T.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.T.Fatalf("timed out waiting for %s", what)
}

// DefaultConfig is the test hub's configuration: MedCom in and out, the case
// system and the EPJ, with the routes the council uses.
func DefaultConfig(dataDir, medcomDir, caseURL, epjURL string) *config.Config {
	cfg, err := config.Load("")
	if err != nil {
		panic(err)
	}
	cfg.DataDir = dataDir
	cfg.NATS.Embedded.StoreDir = filepath.Join(dataDir, "jetstream")
	cfg.NATS.Embedded.MaxStore = "4GB"
	cfg.Streams.LettersMaxBytes, cfg.Streams.ParkedMaxBytes, cfg.Streams.JourneyMaxBytes, cfg.Streams.AuditMaxBytes = "1GB", "512MB", "256MB", "256MB"
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.Pipeline.BackoffInitial = 50 * time.Millisecond
	cfg.Pipeline.BackoffMax = 500 * time.Millisecond
	cfg.Pipeline.MaxAttempts = 4
	cfg.Pipeline.ShutdownGrace = 5 * time.Second
	cfg.Pipeline.SinkTimeout = 10 * time.Second
	cfg.Pipeline.AckWait = 5 * time.Second // letters released by a restart come back quickly
	self := map[string]any{"gln": "5790001382445", "sor": "1144561000016002", "name": "Samrådet for Børn og Unge"}
	cfg.Adapters = map[string]map[string]any{
		"medcom": {"type": "medcom", "dir": medcomDir, "poll_interval": "50ms", "self": self},
		"casesys": {"type": "casesys", "url": caseURL, "client_id": "samhub", "client_secret": "case-secret", "poll_interval": "200ms",
			"outbox": map[string]any{"sender": map[string]any{"role": "municipality", "name": "Samrådet for Børn og Unge", "gln": "5790001382445", "sor": "1144561000016002"}}},
		"epj": {"type": "epj", "url": epjURL, "client_id": "samhub", "client_secret": "epj-secret", "poll_interval": "200ms",
			"self": map[string]any{"sor": "1144561000016002", "gln": "5790001382445", "name": "Samrådet for Børn og Unge"}, "recipient": "6071000016008"},
	}
	cfg.Destinations = map[string]config.Destination{
		"casefile": {Adapter: "casesys", Sector: "municipality"},
		"gp":       {Adapter: "medcom", Sector: "gp"},
		"region":   {Adapter: "epj", Sector: "region_psychiatry", Receiver: "6071000016008"},
	}
	// The receiver directory: the region's child psychiatry, which the
	// region destination addresses when a letter names no department.
	cfg.Receivers = []config.Receiver{{Name: "Børne- og Ungdomspsykiatrien (test)", Role: "region", SOR: "6071000016008"}}
	cfg.Routes = []config.Route{
		{Name: "letters-to-case", Match: config.Match{Kind: []string{"referral", "reply", "note", "discharge-note"}}, To: []string{"casefile"}},
		{Name: "recommendation-to-gp", Match: config.Match{Kind: []string{"recommendation"}}, To: []string{"gp"}},
		{Name: "recommendation-to-region", Match: config.Match{Kind: []string{"recommendation"}}, To: []string{"region"}},
		{Name: "discharge-to-gp", Match: config.Match{Kind: []string{"discharge-note"}, Source: []string{"epj"}}, To: []string{"gp"}},
	}
	cfg.Console.Users = []config.User{
		{Name: "koordinator", Role: "coordinator", TokenHash: httpapi.HashToken(CoordinatorToken), PasswordHash: mustBcrypt(CoordinatorPassword)},
		{Name: "drift", Role: "operations", TokenHash: httpapi.HashToken(OperationsToken), PasswordHash: mustBcrypt(OperationsPassword)},
		{Name: "revisor", Role: "auditor", TokenHash: httpapi.HashToken(AuditorToken), PasswordHash: mustBcrypt(AuditorPassword)},
	}
	return cfg
}

// BuildSamhub compiles cmd/samhub for tests that run the hub as a child
// process (to kill it, or to measure it apart from the test).
func BuildSamhub(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "samhub")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/samhub/samhub/cmd/samhub").CombinedOutput()
	if err != nil {
		t.Fatalf("build samhub: %v\n%s", err, out)
	}
	return bin
}
