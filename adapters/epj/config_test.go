package epj_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/samhub/samhub/adapters"
	_ "github.com/samhub/samhub/adapters/epj"
	epjsim "github.com/samhub/samhub/internal/sim/epj"
)

func block(e *env) map[string]any {
	return map[string]any{
		"url":           e.base,
		"token_url":     e.base + "/oauth2/token",
		"client_id":     clientID,
		"client_secret": secret,
		"timeout":       "5s",
		"self":          map[string]any{"sor": sorMuni, "gln": "5790000123456", "name": "Samråd"},
		"recipient":     sorRegion,
	}
}

func TestBuildFromConfig(t *testing.T) {
	e := newEnv(t, 0)
	e.seedPatient(epjsim.Patient{CPR: cprBruno, FamilyName: "Elmer"})

	// poll_interval 0: a sink only, so the hub schedules no source.
	inst, err := adapters.Build("epj", e.deps(), block(e))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := inst.(adapters.Source); ok {
		t.Fatal("poll_interval 0 built a source")
	}
	sink, ok := inst.(adapters.Sink)
	if !ok {
		t.Fatal("not a sink")
	}
	if _, err := sink.Deliver(context.Background(), recommendation("rec-built")); err != nil {
		t.Fatal(err)
	}
	if r, ok := inst.(adapters.Readiness); !ok || r.Ready(context.Background()) != nil {
		t.Fatal("not ready against a running gateway")
	}

	// With a poll interval and the secret in a file: both roles.
	secretFile := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secretFile, []byte(secret+"\n"), 0o600)
	b := block(e)
	delete(b, "client_secret")
	b["client_secret_file"] = secretFile
	b["poll_interval"] = "30s"
	inst, err = adapters.Build("epj", e.deps(), b)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := inst.(adapters.Source); !ok {
		t.Fatal("poll_interval 30s did not build a source")
	}
	if err := inst.(adapters.Readiness).Ready(context.Background()); err != nil {
		t.Fatalf("ready with the secret from a file: %v", err)
	}

	e.sim.Close()
	if err := inst.(adapters.Readiness).Ready(context.Background()); err == nil {
		t.Fatal("ready while the gateway is down")
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	e := newEnv(t, 0)
	cases := []struct {
		key string
		mod func(map[string]any)
	}{
		{"adapters.epj-test.url", func(b map[string]any) { b["url"] = "epj-gateway/fhir" }},
		{"adapters.epj-test.url", func(b map[string]any) { b["url"] = "ftp://gateway/fhir" }},
		{"adapters.epj-test.token_url", func(b map[string]any) { b["token_url"] = "ftp://x/token" }},
		{"adapters.epj-test.client_id", func(b map[string]any) { b["client_id"] = "" }},
		{"adapters.epj-test.client_secret_file", func(b map[string]any) { b["client_secret_file"] = "/x" }},
		{"adapters.epj-test.client_secret", func(b map[string]any) { delete(b, "client_secret") }},
		{"adapters.epj-test.client_secret_file", func(b map[string]any) {
			delete(b, "client_secret")
			b["client_secret_file"] = filepath.Join(t.TempDir(), "missing")
		}},
		{"adapters.epj-test.self.sor", func(b map[string]any) { b["self"] = map[string]any{"name": "x"} }},
		{"adapters.epj-test.self.gln", func(b map[string]any) { b["self"] = map[string]any{"sor": sorMuni, "gln": "12"} }},
		{"adapters.epj-test.recipient", func(b map[string]any) { b["recipient"] = "BUP" }},
		{"adapters.epj-test.poll_interval", func(b map[string]any) { b["poll_interval"] = "-1s" }},
		{"adapters.epj-test.feed_overlap", func(b map[string]any) { b["feed_overlap"] = "-1m" }},
		{"adapters.epj-test.timeout", func(b map[string]any) { b["timeout"] = "-1s" }},
		{"adapters.epj-test.tls.cert_file", func(b map[string]any) { b["tls"] = map[string]any{"cert_file": "/c.pem"} }},
		{"adapters.epj-test.tls.ca_file", func(b map[string]any) {
			p := filepath.Join(t.TempDir(), "ca.pem")
			os.WriteFile(p, []byte("not pem"), 0o600)
			b["tls"] = map[string]any{"ca_file": p}
		}},
		{"adapters.epj-test.urll", func(b map[string]any) { b["urll"] = "typo" }},
	}
	for _, c := range cases {
		b := block(e)
		c.mod(b)
		_, err := adapters.Build("epj", e.deps(), b)
		var ce *adapters.ConfigError
		if !errors.As(err, &ce) || ce.Key != c.key {
			t.Errorf("want a ConfigError for %s, got %v", c.key, err)
		}
	}
}
