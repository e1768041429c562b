package casesys

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/samhub/samhub/adapters"
	casesyssim "github.com/samhub/samhub/internal/sim/casesys"
	"github.com/samhub/samhub/internal/testpki"
)

func TestConfigErrorsNameTheKey(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o600)
	base := func() map[string]any {
		return map[string]any{"url": "https://case.example/api/v1", "client_id": "hub", "client_secret": "x"}
	}
	cases := []struct {
		name string
		mod  func(m map[string]any)
		key  string
		msg  string
	}{
		{"relative url", func(m map[string]any) { m["url"] = "/api" }, "adapters.cs.url", "must be an absolute http(s) URL"},
		{"ftp url", func(m map[string]any) { m["url"] = "ftp://x" }, "adapters.cs.url", "must be an absolute http(s) URL"},
		{"token url", func(m map[string]any) { m["token_url"] = "nope" }, "adapters.cs.token_url", "must be an absolute http(s) URL"},
		{"no client id", func(m map[string]any) { delete(m, "client_id") }, "adapters.cs.client_id", "is required"},
		{"wrong type", func(m map[string]any) { m["timeout"] = "soon" }, "adapters.cs.timeout", `must be a duration such as 200ms, 10s or 5m, not "soon"`},
		{"no secret", func(m map[string]any) { delete(m, "client_secret") }, "adapters.cs.client_secret", "is required (or client_secret_file naming a file that holds it)"},
		{"both secrets", func(m map[string]any) { m["client_secret_file"] = empty }, "adapters.cs.client_secret_file", "set client_secret or client_secret_file, not both"},
		{"empty secret file", func(m map[string]any) { delete(m, "client_secret"); m["client_secret_file"] = empty }, "adapters.cs.client_secret_file", "is empty"},
		{"on_missing_case", func(m map[string]any) { m["on_missing_case"] = "ignore" }, "adapters.cs.on_missing_case", `must be one of create, park (got "ignore")`},
		{"negative poll", func(m map[string]any) { m["poll_interval"] = "-1s" }, "adapters.cs.poll_interval", "must not be negative (0 disables the outbox source)"},
		{"idempotency_keys", func(m map[string]any) { m["idempotency_keys"] = "maybe" }, "adapters.cs.idempotency_keys", `must be one of honoured, ignored (got "maybe")`},
		{"half mtls", func(m map[string]any) { m["tls"] = map[string]any{"cert_file": empty} }, "adapters.cs.tls.cert_file", "cert_file and key_file must be set together"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := base()
			c.mod(m)
			_, err := adapters.Build("casesys", adapters.Deps{Name: "cs"}, m)
			var ce *adapters.ConfigError
			if !errors.As(err, &ce) || ce.Key != c.key || ce.Msg != c.msg {
				t.Fatalf("got %v, want %s: %s", err, c.key, c.msg)
			}
		})
	}
	_, err := adapters.Build("casesys", adapters.Deps{Name: "cs"}, map[string]any{"url": "https://x", "client_id": "a", "client_secret": "b", "tiemout": "1s"})
	var ce *adapters.ConfigError
	if !errors.As(err, &ce) {
		t.Errorf("unknown key accepted: %v", err)
	}
}

func TestConfigDefaults(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("s3cret\n"), 0o600)
	c, err := ParseConfig(map[string]any{"url": "https://case.example/api/v1/", "client_id": "hub", "client_secret_file": secret})
	if err != nil {
		t.Fatal(err)
	}
	if c.URL != "https://case.example/api/v1" || c.TokenURL != "https://case.example/api/v1/oauth2/token" || c.ClientSecret != "s3cret" ||
		c.Timeout != 30*time.Second || c.CaseType != "SAMRAAD" || c.OnMissingCase != "create" || c.PollInterval != 10*time.Second ||
		c.Scope != "cases.read cases.write" || c.Outbox.Sender.Role != "municipality" || c.IdempotencyKeys != IdempotencyHonoured {
		t.Errorf("defaults = %+v", c)
	}
}

// TestMutualTLS runs the simulator behind TLS that demands a client
// certificate signed by a test CA, and the adapter with tls.* set.
func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca, err := testpki.New("samhub test CA")
	if err != nil {
		t.Fatal(err)
	}
	srvLeaf, err := ca.Issue("127.0.0.1", []string{"127.0.0.1"}, x509.ExtKeyUsageServerAuth)
	if err != nil {
		t.Fatal(err)
	}
	cliLeaf, err := ca.Issue("samhub", []string{"127.0.0.1"}, x509.ExtKeyUsageClientAuth)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caFile := write("ca.pem", ca.PEM)

	sim, err := casesyssim.New(casesyssim.Config{DataDir: t.TempDir(), ClientID: "hub", ClientSecret: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(sim)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{srvLeaf.TLS}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	defer srv.Close()

	build := func(withClientCert bool) *Adapter {
		tlsCfg := map[string]any{"ca_file": caFile}
		if withClientCert {
			tlsCfg["cert_file"], tlsCfg["key_file"] = write("cli.pem", cliLeaf.CertPEM), write("cli.key", cliLeaf.KeyPEM)
		}
		inst, err := adapters.Build("casesys", adapters.Deps{Name: "casesys", State: newMapState()}, map[string]any{
			"url": srv.URL, "client_id": "hub", "client_secret": "s3cret", "poll_interval": 0, "tls": tlsCfg})
		if err != nil {
			t.Fatal(err)
		}
		return inst.(*Adapter)
	}
	if _, err := build(true).Deliver(context.Background(), referral(t, "medcom:TLS1")); err != nil {
		t.Fatal(err)
	}
	if len(sim.Documents()) != 1 {
		t.Errorf("documents = %d", len(sim.Documents()))
	}
	_, err = build(false).Deliver(context.Background(), referral(t, "medcom:TLS2"))
	if class, _ := classOf(t, err); class != adapters.ClassRetryable {
		t.Errorf("without a client certificate: %v", err)
	}
}
