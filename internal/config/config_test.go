package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/samhub/samhub/internal/config"
)

const base = `
data_dir: ./data
adapters:
  medcom: {type: medcom, dir: ./m}
  casesys: {type: casesys, url: "http://127.0.0.1:1"}
destinations:
  casefile: {adapter: casesys, sector: municipality}
  gp: {adapter: medcom, sector: gp}
routes:
  - {name: r1, to: [casefile]}
`

func load(t *testing.T, yaml string, env ...string) error {
	t.Helper()
	p := filepath.Join(t.TempDir(), "samhub.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(env); i += 2 {
		t.Setenv(env[i], env[i+1])
	}
	_, err := config.Load(p)
	return err
}

func TestValidConfigLoads(t *testing.T) {
	if err := load(t, base); err != nil {
		t.Fatal(err)
	}
}

// Each class of mistake is reported with the key at fault and what was expected.
func TestConfigMistakesNameTheKey(t *testing.T) {
	cases := []struct {
		name, yaml, want string
		env              []string
	}{
		{"unknown top-level key", base + "htpp: {listen: x}\n", "htpp", nil},
		{"bad listen", base + "http: {listen: nowhere}\n", "http.listen: must be host:port", nil},
		{"public listen without TLS", base + "http: {listen: '0.0.0.0:8080'}\n", "http.listen: listens beyond loopback only with http.tls_cert_file", nil},
		{"half a TLS pair", base + "http: {tls_cert_file: /c.pem}\n", "http.tls_cert_file: set both", nil},
		{"trusted proxy by name", base + "http: {trusted_proxies: [10.0.0.0/8, proxy.kommune.dk]}\n", "http.trusted_proxies[1]: must be an IP address or a CIDR prefix", nil},
		{"short ack wait", base + "pipeline: {ack_wait: 1s}\n", "pipeline.ack_wait: must be at least 3s", nil},
		{"log level", base + "log: {level: loud}\n", "log.level: must be one of debug, info, warn, error", nil},
		{"nats url", base + "nats: {url: 'http://x:4222'}\n", "nats.url: must be a nats:// or tls:// URL", nil},
		{"plaintext nats beyond loopback", base + "nats: {url: 'nats://nats-1:4222', replicas: 3}\n", "nats.url: nats-1:4222 is plaintext to an address beyond loopback", nil},
		{"embedded beyond loopback without TLS", base + "nats: {embedded: {listen: '0.0.0.0:4222'}}\n", "nats.embedded.listen: listens beyond loopback only with", nil},
		{"unsafe unlimited stream", base + "streams: {letters_max_bytes: '0'}\n", "streams.letters_max_bytes: must be a positive size", nil},
		{"dedup window", base + "streams: {dedup_window: 10s}\n", "streams.dedup_window: must be at least 2m", nil},
		{"journey persistence", base + "streams: {journey_persist: lazy}\n", "streams.journey_persist: must be async or sync", nil},
		{"collector target", base + "gc_percent: 5\n", "gc_percent: must be between 10 and 1000", nil},
		{"streams exceed store", base + "nats: {embedded: {max_store: 1GB}}\n", "nats.embedded.max_store: must leave room for the streams", nil},
		{"unknown destination adapter", strings.Replace(base, "adapter: casesys", "adapter: casesystem", 1), "destinations.casefile.adapter: must name an instance under adapters", nil},
		{"unknown sector", strings.Replace(base, "sector: gp", "sector: doctors", 1), "destinations.gp.sector: must be one of", nil},
		{"route to unknown destination", strings.Replace(base, "to: [casefile]", "to: [casefiles]", 1), `routes[0].to: names unknown destination "casefiles"`, nil},
		{"route kind", strings.Replace(base, "{name: r1, to: [casefile]}", "{name: r1, match: {kind: [letter]}, to: [casefile]}", 1), `routes[0].match.kind: "letter" is not one of`, nil},
		{"consent bypass to another sector", strings.Replace(base, "{name: r1, to: [casefile]}", "{name: r1, to: [gp], require_consent: false}", 1), "routes[0].require_consent: may be false only for municipality", nil},
		{"consent bypass to the GP beyond discharge notes", strings.Replace(base, "{name: r1, to: [casefile]}", "{name: r1, match: {kind: [discharge-note, recommendation]}, to: [gp], require_consent: false}", 1), "routes[0].require_consent: may be false only for municipality", nil},
		{"receiver directory GLN", base + "receivers: [{name: x, role: gp, gln: '123'}]\n", "receivers[0].gln: must be a 13-digit GLN", nil},
		{"receiver directory format", base + "receivers: [{name: x, role: gp, gln: '5790000123456', formats: [edifact]}]\n", `receivers[0].formats: "edifact" is not one of`, nil},
		{"receiver directory role", base + "receivers: [{name: x, role: dentist, gln: '5790000123456'}]\n", "receivers[0].role: must be one of", nil},
		{"destination receiver of another sector", strings.Replace(base, "sector: gp", "sector: gp, receiver: '5790000120400'", 1) + "receivers: [{name: x, role: hospital, gln: '5790000120400'}]\n",
			"destinations.gp.receiver: 5790000120400 is a hospital in the receiver directory; a destination of sector gp delivers only to a receiver of role gp", nil},
		{"destination receiver not in the directory", strings.Replace(base, "sector: gp", "sector: gp, receiver: '5790000123456'", 1), "destinations.gp.receiver: must be a GLN or SOR listed under receivers", nil},
		{"adapter without type", strings.Replace(base, "medcom: {type: medcom, dir: ./m}", "medcom: {dir: ./m}", 1), "adapters.medcom.type: must name an adapter type", nil},
		{"plain password", base + "console: {users: [{name: k, role: coordinator, password_hash: hemmelig}]}\n", "console.users[0].password_hash: must be a bcrypt hash", nil},
		{"unknown role", base + "console: {users: [{name: k, role: boss, token_hash: ab}]}\n", "console.users[0].role: must be one of coordinator, operations, auditor", nil},
		{"duration type", base + "pipeline: {backoff_initial: soon}\n", "backoff_initial", nil},
		{"time zone", base + "console: {time_zone: Europe/Kobenhavn}\n", "console.time_zone: must be an IANA time zone such as Europe/Copenhagen", nil},
		{"simulator upload cap", base + "simulators: {casesys: {listen: '127.0.0.1:0', data_dir: ./s, max_upload: lots}}\n", "simulators.casesys.max_upload: must be a positive size such as 50MB", nil},
		{"upload cap on the EPJ simulator", base + "simulators: {epj: {listen: '127.0.0.1:0', data_dir: ./s, max_upload: none}}\n", "simulators.epj.max_upload: must be a positive size such as 50MB", nil},
		{"upload cap on the Digital Post simulator", base + "simulators: {digitalpost: {listen: '127.0.0.1:0', data_dir: ./s, max_upload: 10MB}}\n", "simulators.digitalpost.max_upload: is a setting of the case-system and EPJ simulators only", nil},
		{"letters to the parents by email", with(base, "parents: {adapter: mail, sector: parents}", mailAdapter),
			`destinations.parents.adapter: adapter "mail" is of type smtp, which does not reach citizens: the parents sector takes letters by Digital Post`, nil},
		{"letters to the parents by MedCom", with(base, "parents: {adapter: medcom, sector: parents}", ""), `destinations.parents.adapter: adapter "medcom" is of type medcom, which does not reach citizens`, nil},
		{"Digital Post simulator's exempt citizens", base + "simulators: {digitalpost: {listen: '127.0.0.1:0', data_dir: ./s, exempt: ['2512489996', '251248-9996']}}\n", "simulators.digitalpost.exempt[1]: must be a CPR number of 10 digits", nil},
		{"exempt citizens on the case system", base + "simulators: {casesys: {listen: '127.0.0.1:0', data_dir: ./s, exempt: ['2512489996']}}\n", "simulators.casesys.exempt: is a setting of the Digital Post simulator only", nil},
		{"environment override checked too", base, "http.listen: must be host:port", []string{"SAMHUB_HTTP_LISTEN", "nowhere"}},
		{"typo in a top-level key", strings.Replace(base, "data_dir:", "datadir:", 1), "datadir: is not a top-level key (did you mean data_dir?)", nil},
		{"typo in a block's key", base + "pipeline: {max_attempt: 6}\n", "pipeline.max_attempt: is not a key here (did you mean max_attempts?)", nil},
		{"typo in a map entry's key", strings.Replace(base, "sector: gp}", "sektor: gp}", 1), "destinations.gp.sektor: is not a key here (did you mean sector?)", nil},
		{"typo in a list entry's key", strings.Replace(base, "{name: r1, to: [casefile]}", "{name: r1, to: [casefile], matsch: {}}", 1), "routes[0].matsch: is not a key here (did you mean match?)", nil},
		{"word for a number", base + "pipeline: {max_attempts: six}\n", `pipeline.max_attempts: must be a whole number, not "six"`, nil},
		{"word for a number from the environment", base, `SAMHUB_PIPELINE_MAX_ATTEMPTS: must be a whole number, not "sechs"`, []string{"SAMHUB_PIPELINE_MAX_ATTEMPTS", "sechs"}},
		{"list for a block", base + "http: [1]\n", "http: must be an object with keys", nil},
		{"bare number for a duration", base + "pipeline: {backoff_initial: 1}\n", "pipeline.backoff_initial: must be a duration with a unit such as 10s or 5m, not the bare number 1", nil},
		{"duration without a unit from the environment", base, `SAMHUB_PIPELINE_BACKOFF_MAX: must be a duration such as 200ms, 10s or 5m, not "5"`, []string{"SAMHUB_PIPELINE_BACKOFF_MAX", "5"}},
		{"port out of range", base + "http: {listen: '127.0.0.1:80800'}\n", `http.listen: must be host:port (port "80800" is not a number from 0 to 65535)`, nil},
		{"embedded listener's port", base + "nats: {embedded: {listen: '127.0.0.1:nats'}}\n", `nats.embedded.listen: must be host:port`, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := load(t, c.yaml, c.env...)
			if err == nil {
				t.Fatalf("accepted; want an error containing %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not contain %q", err, c.want)
			}
		})
	}
}

// with adds a destination line and an adapter line to the base.
func with(yaml, destination, adapter string) string {
	yaml = strings.Replace(yaml, "  gp: {adapter: medcom, sector: gp}\n", "  gp: {adapter: medcom, sector: gp}\n  "+destination+"\n", 1)
	if adapter != "" {
		yaml = strings.Replace(yaml, "adapters:\n", "adapters:\n  "+adapter+"\n", 1)
	}
	return yaml
}

const (
	mailAdapter = `mail: {type: smtp, host: mail.kommune.example, from: samraad@kommune.example, allow: ["@kommune.example"]}`
	postAdapter = `post: {type: digitalpost, url: 'http://127.0.0.1:2', client_id: samhub, client_secret: s, sender: {cvr: '29189846', name: Odense Kommune}}`
)

// Email stays for professionals and the council's own notices; the parents
// are reached by Digital Post.
func TestParentsByDigitalPostOnly(t *testing.T) {
	ok := with(with(with(base, "parents: {adapter: post, sector: parents}", postAdapter), "notices: {adapter: mail, sector: internal}", mailAdapter), "school: {adapter: mail, sector: school_ppr}", "")
	if err := load(t, ok); err != nil {
		t.Fatal(err)
	}
}

func TestEnvironmentOverridesFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "samhub.yaml")
	os.WriteFile(p, []byte(base), 0o600)
	t.Setenv("SAMHUB_NATS_URL", "tls://nats-1:4222")
	c, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.NATS.URL != "tls://nats-1:4222" {
		t.Fatalf("nats.url = %q", c.NATS.URL)
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"512MB": 512 << 20, "10GB": 10 << 30, "1024": 1024, "2kb": 2048} {
		got, err := config.ParseBytes(in)
		if err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := config.ParseBytes("lots"); err == nil {
		t.Error("ParseBytes(lots) accepted")
	}
}

// The at-rest keys are read as serve reads them: a missing or empty key file
// is refused by config check, not first by serve (or, empty, not at all).
func TestAtRestKeysAreRead(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.key")
	good := filepath.Join(dir, "good.key")
	os.WriteFile(empty, nil, 0o600)
	os.WriteFile(good, []byte("a-key-of-some-length\n"), 0o600)
	cases := []struct{ name, nats, want string }{
		{"missing key file", "{key_file: " + filepath.Join(dir, "nope.key") + "}", "nats.embedded.key_file: cannot be read"},
		{"empty key file", "{key_file: " + empty + "}", "nats.embedded.key_file: is empty: the store would not be encrypted"},
		{"empty key variable", "{key_env: SAMHUB_TEST_NO_SUCH_KEY}", "nats.embedded.key_env: cannot be read"},
		{"an old key for an in-place rotation", "{key_file: " + good + ", old_key_file: " + good + "}", "nats.embedded.old_key_file: is no longer read"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "samhub.yaml")
			os.WriteFile(p, []byte(base+"nats: {embedded: "+c.nats+"}\n"), 0o600)
			_, err := config.LoadChecked(p)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v; want one containing %q", err, c.want)
			}
		})
	}
	p := filepath.Join(t.TempDir(), "samhub.yaml")
	os.WriteFile(p, []byte(base+"nats: {embedded: {key_file: "+good+"}}\n"), 0o600)
	// base's adapters lack what CheckAdapters asks; only the key matters here.
	if _, err := config.LoadChecked(p); err != nil && strings.Contains(err.Error(), "nats.embedded") {
		t.Fatalf("a readable key refused: %v", err)
	}
}
