package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
)

// samhub runs the command line in process and returns its output and the
// exit status main would give.
func samhub(t *testing.T, args ...string) (string, int) {
	t.Helper()
	root := &cobra.Command{Use: "samhub", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(configCmd())
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		out.WriteString(err.Error())
		return out.String(), exitCode(err)
	}
	return out.String(), 0
}

func writeCheckConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "samhub.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const checkBase = `
adapters:
  medcom: {type: medcom, dir: /tmp/samhub-check-medcom}
  casesys: {type: casesys, url: "https://case.example/api", client_id: hub, client_secret: s}
destinations:
  casefile: {adapter: casesys, sector: municipality}
routes:
  - {name: r1, to: [casefile]}
`

func TestConfigCheckNamesTheFullKey(t *testing.T) {
	for name, c := range map[string]struct {
		body string
		env  [2]string
		want string
	}{
		"misspelt key in an adapter block": {body: strings.Replace(checkBase, "dir: /tmp/samhub-check-medcom", "dir: /tmp/x, pol_interval: 1s", 1), want: "adapters.medcom.pol_interval: is not a key of this block (did you mean poll_interval?)"},
		"wrong type":                       {body: strings.Replace(checkBase, "client_secret: s", "client_secret: s, timeout: soon", 1), want: `adapters.casesys.timeout: must be a duration such as 200ms, 10s or 5m, not "soon"`},
		"missing secret":                   {body: strings.Replace(checkBase, ", client_secret: s", "", 1), want: "adapters.casesys.client_secret: is required (or client_secret_file"},
		"secret file missing":              {body: strings.Replace(checkBase, "client_secret: s", "client_secret_file: /nonexistent/secret", 1), want: "adapters.casesys.client_secret_file: cannot be read"},
		"unknown type":                     {body: strings.Replace(checkBase, "type: medcom", "type: medcomm", 1), want: `adapters.medcom.type: unknown adapter type "medcomm"`},
		"misspelt variable":                {body: checkBase, env: [2]string{"SAMHUB_ADAPTERS_CASESYS_TIEMOUT", "1s"}, want: "SAMHUB_ADAPTERS_CASESYS_TIEMOUT: names no key of a configured adapter"},
		"wrong type from a variable":       {body: checkBase, env: [2]string{"SAMHUB_ADAPTERS_CASESYS_POLL_INTERVAL", "often"}, want: `adapters.casesys.poll_interval: must be a duration`},
		"top-level mistake":                {body: checkBase + "log: {level: loud}\n", want: "log.level: must be one of debug, info, warn, error"},
	} {
		t.Run(name, func(t *testing.T) {
			if c.env[0] != "" {
				t.Setenv(c.env[0], c.env[1])
			}
			out, code := samhub(t, "config", "check", writeCheckConfig(t, c.body))
			if code != exitInvalid || !strings.Contains(out, c.want) {
				t.Errorf("exit %d, output:\n%s\nwant exit 1 and %q", code, out, c.want)
			}
		})
	}
	if out, code := samhub(t, "config", "check"); code != exitUsage {
		t.Errorf("no file: exit %d (%s), want 2", code, out)
	}
	if out, code := samhub(t, "config", "check", "--frobnicate", "x"); code != exitUsage {
		t.Errorf("unknown flag: exit %d (%s), want 2", code, out)
	}
}

// Every configuration deploy/ ships passes, its secrets given the way the
// deployment gives them (files named by SAMHUB_*_FILE, as the systemd unit
// and the Kubernetes secret mounts do).
func TestConfigCheckAcceptsShippedExamples(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("s3cret\n"), 0o600)
	raw, err := os.ReadFile("../../deploy/kubernetes/configmap.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	if err := yaml.Unmarshal(raw, &cm); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		path string
		env  []string
	}{
		"demo":       {path: "../../deploy/demo/samhub.yaml"},
		"systemd":    {path: "../../deploy/systemd/samhub.yaml", env: []string{"SAMHUB_ADAPTERS_CASESYS_CLIENT_SECRET_FILE", secret}},
		"kubernetes": {path: writeCheckConfig(t, cm.Data["samhub.yaml"]), env: []string{"SAMHUB_ADAPTERS_CASESYSTEM_CLIENT_SECRET_FILE", secret}},
	} {
		t.Run(name, func(t *testing.T) {
			for i := 0; i+1 < len(c.env); i += 2 {
				t.Setenv(c.env[i], c.env[i+1])
			}
			if out, code := samhub(t, "config", "check", c.path); code != 0 || !strings.Contains(out, "OK") {
				t.Errorf("exit %d:\n%s", code, out)
			}
		})
	}
}

func TestConfigCheckPrintMasksSecrets(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("from-a-file"), 0o600)
	t.Setenv("SAMHUB_ADAPTERS_EPJ_CLIENT_SECRET_FILE", secret)
	out, code := samhub(t, "config", "check", "--print", "../../deploy/demo/samhub.yaml")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	for _, leak := range []string{"demo-case-secret", "demo-epj-secret", "from-a-file", "$2a$10$"} {
		if strings.Contains(out, leak) {
			t.Errorf("--print shows a secret (%s)", leak)
		}
	}
	var eff map[string]any
	if err := yaml.Unmarshal([]byte(out), &eff); err != nil {
		t.Fatalf("--print is not YAML: %v", err)
	}
	ad := eff["adapters"].(map[string]any)
	if cs := ad["casesys"].(map[string]any); cs["client_secret"] != "********" || cs["timeout"] != "30s" || cs["case_type"] != "SAMRAAD" {
		t.Errorf("casesys as printed: %v", cs)
	}
	if epj := ad["epj"].(map[string]any); epj["client_secret_file"] != secret || epj["client_secret"] != nil {
		t.Errorf("epj as printed: %v", epj)
	}
	if eff["pipeline"].(map[string]any)["sink_timeout"] != "30s" {
		t.Errorf("defaults missing: %v", eff["pipeline"])
	}
}
