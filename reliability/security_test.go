package reliability

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/adapters/email"
	"github.com/samhub/samhub/adapters/email/mailtest"
	"github.com/samhub/samhub/internal/config"
	"github.com/samhub/samhub/internal/httpapi"
	"github.com/samhub/samhub/internal/hubtest"
	"github.com/samhub/samhub/internal/logbuf"
	"github.com/samhub/samhub/internal/logging"
	"github.com/samhub/samhub/pipeline/letter"

	"github.com/samhub/samhub/adapters/adaptertest"
)

// r2Policy is who may call each API route, written down independently of
// internal/httpapi so a change to either side fails this test.
var r2Policy = map[string][]string{
	"GET /api/v1/whoami":                                {"coordinator", "operations", "auditor"},
	"GET /api/v1/stats":                                 {"coordinator", "operations"},
	"GET /api/v1/queue":                                 {"coordinator"},
	"GET /api/v1/queue/{seq}":                           {"coordinator"},
	"POST /api/v1/queue/{seq}/replay":                   {"coordinator"},
	"POST /api/v1/queue/{seq}/discard":                  {"coordinator"},
	"POST /api/v1/queue/replay":                         {"coordinator"},
	"POST /api/v1/queue/search":                         {"coordinator"},
	"POST /api/v1/queue/bulk-replays":                   {"coordinator"},
	"GET /api/v1/queue/bulk-replays":                    {"coordinator"},
	"GET /api/v1/queue/bulk-replays/{id}":               {"coordinator"},
	"GET /api/v1/letters/{id}/trace":                    {"coordinator"},
	"POST /api/v1/letters/{id}/content":                 {"coordinator"},
	"POST /api/v1/consents":                             {"coordinator"},
	"POST /api/v1/consents/lookup":                      {"coordinator"},
	"POST /api/v1/consents/revoke":                      {"coordinator"},
	"GET /api/v1/holds":                                 {"coordinator", "operations"},
	"POST /api/v1/holds/{destination}/{thread}/release": {"coordinator"},
	"GET /api/v1/audit":                                 {"auditor"},
	"GET /api/v1/rejected":                              {"coordinator", "operations"},
	"POST /api/v1/rejected/{source}/{id}/put-back":      {"coordinator"},
	"GET /api/v1/meetings":                              {"coordinator"},
	"POST /api/v1/meetings":                             {"coordinator"},
	"GET /api/v1/meetings/{id}":                         {"coordinator"},
	"POST /api/v1/meetings/{id}/move":                   {"coordinator"},
	"POST /api/v1/meetings/{id}/cancel":                 {"coordinator"},
	"POST /api/v1/meetings/{id}/agenda":                 {"coordinator"},
	"GET /api/v1/referrals":                             {"coordinator"},
	"POST /api/v1/referrals/{id}/move":                  {"coordinator"},
	"POST /api/v1/referrals/{id}/withdraw":              {"coordinator"},
	"POST /api/v1/referrals/{id}/reinstate":             {"coordinator"},
	"GET /api/v1/kpi":                                   {"coordinator", "operations"},
}

func r2Do(t *testing.T, method, url, token string, body []byte) int {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// r2ListenPorts lists the TCP ports this process listens on (sockets in
// /proc/net/tcp{,6} in LISTEN state whose inode is one of our descriptors).
func r2ListenPorts(t *testing.T) map[int]bool {
	t.Helper()
	ours := map[string]bool{}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("list descriptors: %v", err)
	}
	for _, fd := range fds {
		if l, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil && strings.HasPrefix(l, "socket:[") {
			ours[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	ports := map[int]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) < 10 || fs[3] != "0A" || !ours[fs[9]] {
				continue
			}
			_, hexPort, _ := strings.Cut(fs[1], ":")
			if p, err := strconv.ParseInt(hexPort, 16, 32); err == nil {
				ports[int(p)] = true
			}
		}
	}
	return ports
}

func r2Port(t *testing.T, raw string) int {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(u.Port())
	return p
}

// TestScenarioSecurity is issue 11 scenario 11 (S11) plus issue 9's
// encryption at rest: the API's access matrix from outside, no body parsed
// before authentication, no NATS TCP port, TLS refused below 1.2 or
// without STARTTLS, the JetStream store unreadable without its key, and a
// scan of everything the suite produced for CPR-shaped numbers.
func TestScenarioSecurity(t *testing.T) {
	ca := mailtest.NewCA(t)
	smtpSrv := mailtest.StartSMTP(t, ca, mailtest.SMTPOptions{Mode: mailtest.SMTPImplicit})
	log := &logbuf.Buffer{}
	h := hubtest.Start(t, hubtest.WithLog(log), hubtest.WithConfig(func(c *config.Config) {
		c.Adapters["notifymail"] = map[string]any{"type": "smtp", "host": "127.0.0.1", "port": smtpSrv.Port, "tls": "implicit",
			"ca_file": ca.PEMFile, "from": "samhub@kommune.dk", "allow": []string{"@kommune.dk"}}
		c.Destinations["notices"] = config.Destination{Adapter: "notifymail", Sector: "internal"}
		c.Notify = config.Notify{Destination: "notices", Recipients: []string{"koordinator@kommune.dk"}, On: []string{"arrived", "parked"}}
	}))
	cells, cellsOK := 0, 0
	t.Run("access-matrix", func(t *testing.T) {
		callers := []struct{ role, token string }{
			{"coordinator", hubtest.CoordinatorToken}, {"operations", hubtest.OperationsToken}, {"auditor", hubtest.AuditorToken},
			{"", ""}, {"", "wrong-token"}, {"", hubtest.CoordinatorToken + "x"},
		}
		if len(httpapi.Routes()) != len(r2Policy) {
			t.Errorf("the API has %d routes, this policy %d", len(httpapi.Routes()), len(r2Policy))
		}
		for _, rt := range httpapi.Routes() {
			allowed, ok := r2Policy[rt]
			if !ok {
				t.Errorf("route %s is not in the policy", rt)
				continue
			}
			method, pattern, _ := strings.Cut(rt, " ")
			path := strings.NewReplacer("{seq}", "424242", "{id}", "no-such-letter", "{destination}", "gp", "{thread}", "0000", "{source}", "medcom").Replace(pattern)
			for _, c := range callers {
				cells++
				st := r2Do(t, method, h.BaseURL+path, c.token, []byte(`{"reason":"security scenario"}`))
				want := "401"
				switch {
				case c.role == "":
				case strings.Contains(strings.Join(allowed, ","), c.role):
					want = "allowed"
				default:
					want = "403"
				}
				good := (want == "401" && st == 401) || (want == "403" && st == 403) || (want == "allowed" && st != 401 && st != 403 && st < 500)
				if !good {
					t.Errorf("%s as %q: status %d, want %s", rt, c.role, st, want)
				} else {
					cellsOK++
				}
			}
		}
	})

	bodyChecks := 0
	t.Run("body-before-auth", func(t *testing.T) {
		huge := bytes.Repeat([]byte("{{{{not json"), 1<<20) // 12 MiB of garbage
		for _, rt := range httpapi.Routes() {
			method, pattern, _ := strings.Cut(rt, " ")
			if method != http.MethodPost {
				continue
			}
			path := strings.NewReplacer("{seq}", "424242", "{id}", "no-such-letter", "{destination}", "gp", "{thread}", "0000", "{source}", "medcom").Replace(pattern)
			for _, tok := range []string{"", "wrong-token"} {
				bodyChecks++
				if st := r2Do(t, method, h.BaseURL+path, tok, huge); st != 401 {
					t.Errorf("%s with a malformed 12 MiB body and token %q: status %d, want 401 (the body must not be read first)", rt, tok, st)
				}
			}
			if !strings.Contains(strings.Join(r2Policy[rt], ","), "auditor") {
				bodyChecks++
				if st := r2Do(t, method, h.BaseURL+path, hubtest.AuditorToken, huge); st != 403 {
					t.Errorf("%s with a malformed body as a role without access: status %d, want 403", rt, st)
				}
			}
		}
	})

	extraPorts := 0
	t.Run("nats-no-tcp-port", func(t *testing.T) {
		srv := h.App.Broker.Server
		if srv == nil {
			t.Fatal("the test hub does not run the embedded server")
		}
		if a := srv.Addr(); a != nil {
			t.Errorf("embedded NATS listens on %v, want no TCP port by default", a)
		}
		if a := srv.MonitorAddr(); a != nil {
			t.Errorf("embedded NATS monitoring listens on %v", a)
		}
		if a := srv.ClusterAddr(); a != nil {
			t.Errorf("embedded NATS cluster listens on %v", a)
		}
		known := map[int]bool{r2Port(t, h.BaseURL): true, smtpSrv.Port: true}
		for _, raw := range []string{h.Config.Adapters["casesys"]["url"].(string), h.Config.Adapters["epj"]["url"].(string)} {
			known[r2Port(t, raw)] = true
		}
		for p := range r2ListenPorts(t) {
			if !known[p] {
				extraPorts++
				t.Errorf("this process listens on TCP port %d, which is none of the API, the simulators or the test mail server", p)
			}
		}
	})

	tlsRefusals := 0
	t.Run("tls", func(t *testing.T) {
		old := ca.ServerTLS()
		old.MinVersion, old.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
		note := &letter.Letter{ID: "tls-check", Kind: letter.KindNotification, Format: "notice", Sender: letter.Party{Name: "Samhub"},
			Receivers: []letter.Party{{Role: "contact", Email: "koordinator@kommune.dk"}}, Subject: "Samhub: check", Text: "TLS check"}
		smtpCases := []struct {
			name string
			opts mailtest.SMTPOptions
			mode string
		}{
			{"smtp TLS 1.1 only", mailtest.SMTPOptions{Mode: mailtest.SMTPImplicit, TLS: old}, "implicit"},
			{"smtp STARTTLS 1.1 only", mailtest.SMTPOptions{Mode: mailtest.SMTPStartTLS, TLS: old}, "starttls"},
			{"smtp without STARTTLS", mailtest.SMTPOptions{Mode: mailtest.SMTPNoStartTLS}, "starttls"},
			{"smtp STARTTLS refused", mailtest.SMTPOptions{Mode: mailtest.SMTPStartTLSBad}, "starttls"},
		}
		for _, c := range smtpCases {
			srv := mailtest.StartSMTP(t, ca, c.opts)
			sink, err := email.NewSMTPSink(adapters.Deps{Name: "tlscheck", State: adaptertest.NewState()}, map[string]any{"host": "127.0.0.1", "port": srv.Port,
				"tls": c.mode, "ca_file": ca.PEMFile, "from": "samhub@kommune.dk", "allow": []string{"@kommune.dk"}, "timeout": "5s"})
			if err != nil {
				t.Fatal(err)
			}
			_, err = sink.Deliver(context.Background(), note)
			if err == nil || len(srv.Messages()) != 0 {
				t.Errorf("%s: delivered (err %v, %d messages), want a refusal", c.name, err, len(srv.Messages()))
				continue
			}
			tlsRefusals++
			t.Logf("%s: refused: %v", c.name, err)
		}
		imapCases := []struct {
			name string
			opts mailtest.IMAPOptions
			mode string
		}{
			{"imap TLS 1.1 only", mailtest.IMAPOptions{Mode: mailtest.IMAPImplicit, TLS: old}, "implicit"},
			{"imap without STARTTLS", mailtest.IMAPOptions{Mode: mailtest.IMAPNoTLS}, "starttls"},
		}
		for _, c := range imapCases {
			srv := mailtest.StartIMAP(t, ca, c.opts)
			srv.Append(t, "INBOX", r2Mail("tls", "text/plain; charset=utf-8", "Hej\r\n"))
			src, err := email.NewIMAPSource(adapters.Deps{Name: "tlscheck", State: adaptertest.NewState()}, map[string]any{"host": "127.0.0.1", "port": srv.Port,
				"tls": c.mode, "ca_file": ca.PEMFile, "username": srv.Username, "password": srv.Password, "poll_interval": "100ms", "timeout": "2s"})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			pub := &r2CountPub{}
			_ = src.Run(ctx, pub)
			cancel()
			if published := pub.n.Load(); srv.Logins() != 0 || published != 0 {
				t.Errorf("%s: %d logins, %d letters taken in; want none", c.name, srv.Logins(), published)
				continue
			}
			tlsRefusals++
		}
	})

	t.Run("store-encrypted-at-rest", func(t *testing.T) { r2EncryptionAtRest(t) })

	found, scanned := 0, 0
	t.Run("cpr-scan", func(t *testing.T) {
		// Letters that tempt a leak: a CPR in the subject and text, a CPR
		// where a code belongs, and letters parked by a failing destination.
		tempt := bytes.Replace(r2Letter(t, 1), []byte("Henvisning til samråd"), []byte("Henvisning vedr. 250947-9989"), 1)
		h.Drop("tempt-subject.xml", tempt)
		h.Drop("tempt-code.xml", bytes.Replace(r2Letter(t, 2), []byte("<StatusCode>nytbrev</StatusCode>"), []byte("<StatusCode>2509479989</StatusCode>"), 1))
		h.Eventually("the first letter stored", func() bool { return len(h.CaseSys.Documents()) >= 1 })
		h.CaseSys.FailNext(1000, 503, 0)
		h.Drop("parked-1.xml", r2Letter(t, 3))
		h.Drop("parked-2.xml", bytes.Replace(r2Letter(t, 4), []byte("2509479989"), []byte("1509819996"), 1))
		h.Eventually("two letters parked", func() bool { return len(r2ParkedReasons(t, h)) >= 4 })
		h.CaseSys.ResetFaults()
		h.Eventually("notices sent", func() bool { return len(smtpSrv.Messages()) >= 3 })
		for _, m := range smtpSrv.Messages() {
			subject := ""
			for _, line := range strings.Split(string(m.Data), "\n") {
				if s, ok := strings.CutPrefix(line, "Subject: "); ok {
					subject = s
				}
			}
			r2Keep("email-subject", "security", []byte(subject))
			r2Keep("email", "security", m.Data)
		}
		r2CollectHub(t, "security", h, log)
		kinds := map[string]int{}
		for _, a := range r2Artefacts() {
			scanned++
			kinds[a.Kind]++
			// t.TempDir names end in random digits that can look like a
			// CPR number; they are the test's, not a letter's.
			a.Data = tempDirDigits.ReplaceAll(a.Data, []byte("/${1}N/"))
			if a.Kind == "metrics" {
				a.Data = hubtest.MetricSeries(a.Data)
			}
			if logging.ContainsCPR(string(a.Data)) {
				found++
				t.Errorf("a CPR-shaped number in %s from %s (%d bytes)", a.Kind, a.Name, len(a.Data))
				for _, line := range strings.Split(string(a.Data), "\n") {
					if logging.ContainsCPR(line) {
						// Redacted, so the report shows where without the number.
						t.Logf("  at: %.400s", logging.Redact(line))
					}
				}
			}
		}
		t.Logf("scanned %v", kinds)
	})
	report(t, "security", "matrix_cells", cells, "matrix_ok", cellsOK, "body_before_auth_checks", bodyChecks,
		"nats_tcp_ports", extraPorts, "tls_refusals", tlsRefusals, "artefacts_scanned", scanned, "cpr_found", found)
}

// r2EncryptionAtRest is issue 9's test: with nats.embedded.key_file (or
// key_env) no store file holds letter text, a CPR number or a name in
// clear; without a key they do (the control that shows the check works).
func r2EncryptionAtRest(t *testing.T) {
	secrets := [][]byte{[]byte("svært ved at sove"), []byte("2509479989"), []byte("Elmer")}
	run := func(t *testing.T, set func(c *config.Config, keyFile string)) int {
		keyFile := filepath.Join(t.TempDir(), "jetstream.key")
		if err := os.WriteFile(keyFile, []byte("r2-test-key-0123456789abcdef0123456789\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		h := hubtest.Start(t, hubtest.WithConfig(func(c *config.Config) { set(c, keyFile) }))
		h.Drop("letter.xml", r2Letter(t, 77))
		h.Eventually("the letter stored", func() bool { return len(h.CaseSys.Documents()) == 1 })
		store := h.Config.NATS.Embedded.StoreDir
		h.Stop()
		hits := 0
		err := filepath.WalkDir(store, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			for _, s := range secrets {
				if bytes.Contains(b, s) {
					hits++
					t.Logf("%s holds %q in clear", strings.TrimPrefix(p, store), s[:min(len(s), 4)])
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return hits
	}
	if n := run(t, func(c *config.Config, _ string) {}); n == 0 {
		t.Fatal("control without a key: no letter text found in the store, so the check below proves nothing")
	}
	if n := run(t, func(c *config.Config, kf string) { c.NATS.Embedded.KeyFile = kf }); n != 0 {
		t.Errorf("with key_file: %d clear-text findings in the store", n)
	}
	t.Setenv("R2_SAMHUB_JS_KEY", "r2-env-key-0123456789abcdef0123456789")
	if n := run(t, func(c *config.Config, _ string) { c.NATS.Embedded.KeyEnv = "R2_SAMHUB_JS_KEY" }); n != 0 {
		t.Errorf("with key_env: %d clear-text findings in the store", n)
	}
	// The key itself is never accepted from the configuration file.
	cfgFile := filepath.Join(t.TempDir(), "samhub.yaml")
	if err := os.WriteFile(cfgFile, []byte("nats:\n  embedded:\n    key: not-allowed-here\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load(cfgFile); err == nil {
		t.Error("a key written into the configuration file was accepted")
	} else {
		t.Logf("key in the config file refused: %v", err)
	}
}

// r2CountPub is a Publisher that only counts.
type r2CountPub struct{ n atomic.Int64 }

func (p *r2CountPub) Publish(context.Context, *letter.Letter) error { p.n.Add(1); return nil }

var tempDirDigits = regexp.MustCompile(`/(Test[A-Za-z0-9_]*?[A-Za-z_])\d+/`)
