package adapters

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/samhub/samhub/pipeline/letter"
)

type testTLS struct {
	CAFile string `mapstructure:"ca_file" doc:"CA"`
}

type testRule struct {
	Kind string `mapstructure:"kind" doc:"kind" enum:"note,reply" required:"true"`
}

type testConfig struct {
	URL      string        `mapstructure:"url" doc:"base URL" required:"true"`
	Secret   string        `mapstructure:"secret" doc:"the secret" secret:"true" required:"true"`
	Poll     time.Duration `mapstructure:"poll_interval" doc:"poll" default:"10s"`
	Mode     string        `mapstructure:"mode" doc:"mode" default:"create" enum:"create,park"`
	Workers  int           `mapstructure:"workers" doc:"workers" default:"4"`
	TLS      testTLS       `mapstructure:"tls" doc:"TLS files"`
	Rules    []testRule    `mapstructure:"rules" doc:"rules"`
	Allow    []string      `mapstructure:"allow" doc:"allowed"`
	Required bool          `mapstructure:"require_tls" doc:"require TLS"`
}

func (c *testConfig) Check() error {
	if strings.HasPrefix(c.URL, "ftp:") {
		return &ConfigError{Key: "url", Msg: "must be http(s)"}
	}
	return nil
}

type testAdapter struct{ cfg testConfig }

func (a *testAdapter) Run(ctx context.Context, _ Publisher) error { <-ctx.Done(); return nil }
func (a *testAdapter) Deliver(context.Context, *letter.Letter) (Delivery, error) {
	return Delivery{RemoteID: "x"}, nil
}

func init() {
	RegisterSourceSink("spec-test", Spec{Summary: "test"}, func(_ Deps, c testConfig) (Source, Sink, error) {
		a := &testAdapter{cfg: c}
		if c.Poll == 0 {
			return nil, a, nil
		}
		return a, a, nil
	})
}

func keysOf(err error) map[string]string {
	out := map[string]string{}
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		var ce *ConfigError
		if errors.As(e, &ce) {
			out[ce.Key] = ce.Msg
		}
	}
	walk(err)
	return out
}

func TestCheckNamesEveryMistakeByItsFullKey(t *testing.T) {
	block := map[string]any{
		"type": "spec-test", "url": "https://x", "pol_interval": "1s", "workers": "many", "mode": "ignore",
		"tls": map[string]any{"ca_fil": "x"}, "rules": []any{map[string]any{"kind": "memo"}, "oops"},
		"poll_interval": 10,
	}
	got := keysOf(Check("spec-test", "inst", block))
	want := map[string]string{
		"adapters.inst.pol_interval":  "did you mean poll_interval?",
		"adapters.inst.workers":       "must be a whole number",
		"adapters.inst.mode":          "must be one of create, park",
		"adapters.inst.tls.ca_fil":    "did you mean ca_file?",
		"adapters.inst.rules[0].kind": "must be one of note, reply",
		"adapters.inst.rules[1]":      "must be an object",
		"adapters.inst.poll_interval": "bare number",
		"adapters.inst.secret":        "is required (or secret_file",
	}
	for k, frag := range want {
		if !strings.Contains(got[k], frag) {
			t.Errorf("%s: got %q, want it to contain %q", k, got[k], frag)
		}
	}
	if len(got) != len(want) {
		t.Errorf("errors %v, want exactly the keys of %v", got, want)
	}
	if err := Check("spec-test", "inst", map[string]any{"url": "ftp://x", "secret": "s"}); err == nil || err.Error() != "adapters.inst.url: must be http(s)" {
		t.Errorf("Check's own error: %v", err)
	}
}

func TestDefaultsAndSecretFiles(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "s")
	os.WriteFile(file, []byte("s3cret\n"), 0o600)
	typ, _ := TypeNamed("spec-test")
	cfg, err := typ.Config("inst", map[string]any{"url": "https://x", "secret_file": file, "allow": "a@x.dk, @y.dk"})
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.(*testConfig)
	if c.Secret != "s3cret" || c.Poll != 10*time.Second || c.Mode != "create" || c.Workers != 4 || len(c.Allow) != 2 || c.Allow[1] != "@y.dk" {
		t.Errorf("decoded %+v", c)
	}
	if d := Defaults[testConfig](); d.Poll != 10*time.Second || d.Workers != 4 || d.URL != "" {
		t.Errorf("Defaults = %+v", d)
	}
	for name, block := range map[string]map[string]any{
		"both":    {"url": "https://x", "secret": "a", "secret_file": file},
		"missing": {"url": "https://x", "secret_file": filepath.Join(dir, "none")},
	} {
		if got := keysOf(Check("spec-test", "inst", block)); got["adapters.inst.secret_file"] == "" {
			t.Errorf("%s: %v", name, got)
		}
	}
	eff, err := typ.Effective("inst", map[string]any{"url": "https://x", "secret": "plain"})
	if err != nil || eff["secret"] != Masked || eff["poll_interval"] != "10s" || eff["type"] != "spec-test" {
		t.Errorf("effective %v %v", eff, err)
	}
	eff, _ = typ.Effective("inst", map[string]any{"url": "https://x", "secret_file": file})
	if eff["secret_file"] != file || eff["secret"] != nil {
		t.Errorf("effective with a file: %v", eff)
	}
}

func TestEnvironmentSetsEveryKey(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "s")
	os.WriteFile(file, []byte("from-file"), 0o600)
	inst := map[string]map[string]any{
		"a":   {"type": "spec-test", "url": "https://a", "secret": "in-yaml"},
		"a-b": {"type": "spec-test", "url": "https://ab"},
	}
	err := ApplyEnv(inst, []string{
		"SAMHUB_ADAPTERS_A_B_URL=https://env",
		"SAMHUB_ADAPTERS_A_B_SECRET=s",
		"SAMHUB_ADAPTERS_A_TLS_CA_FILE=/ca.pem",
		"SAMHUB_ADAPTERS_A_SECRET_FILE=" + file,
		"SAMHUB_ADAPTERS_A_RULES=[{kind: note}]",
		"SAMHUB_ADAPTERS_A_POLL_INTERVAL=0s",
		"HOME=/root",
	})
	if err != nil {
		t.Fatal(err)
	}
	typ, _ := TypeNamed("spec-test")
	cfg, err := typ.Config("a", inst["a"])
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.(*testConfig)
	if c.TLS.CAFile != "/ca.pem" || c.Secret != "from-file" || len(c.Rules) != 1 || c.Poll != 0 {
		t.Errorf("a = %+v", c)
	}
	if inst["a-b"]["url"] != "https://env" || inst["a"]["url"] != "https://a" {
		t.Errorf("a-b = %v, a = %v", inst["a-b"], inst["a"])
	}
	err = ApplyEnv(inst, []string{"SAMHUB_ADAPTERS_A_TIEMOUT=1s"})
	if got := keysOf(err); got["SAMHUB_ADAPTERS_A_TIEMOUT"] == "" {
		t.Errorf("a misspelt variable was accepted: %v", err)
	}
}

func TestBuildKeepsOneInstanceForBothSides(t *testing.T) {
	inst, err := BuildInstance("spec-test", Deps{Name: "x"}, map[string]any{"url": "https://x", "secret": "s"})
	if err != nil {
		t.Fatal(err)
	}
	if inst.Source == nil || any(inst.Source) != any(inst.Sink) || inst.Value() != any(inst.Sink) {
		t.Errorf("instance %+v", inst)
	}
	v, err := Build("spec-test", Deps{Name: "x"}, map[string]any{"url": "https://x", "secret": "s", "poll_interval": "0s"})
	if err != nil {
		t.Fatal(err)
	}
	if _, isSrc := v.(Source); isSrc {
		// testAdapter is both; the constructor turned the source off, so
		// the hub must not see one. Value returns the sink itself, which
		// the hub does not ask for a Source.
		inst, _ := BuildInstance("spec-test", Deps{Name: "x"}, map[string]any{"url": "https://x", "secret": "s", "poll_interval": "0s"})
		if inst.Source != nil {
			t.Error("poll_interval 0 built a source side")
		}
	}
	if _, err := Build("no-such", Deps{Name: "x"}, nil); err == nil || !strings.Contains(err.Error(), "adapters.x.type: unknown adapter type") {
		t.Errorf("unknown type: %v", err)
	}
}
