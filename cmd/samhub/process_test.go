package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	casesyssim "github.com/samhub/samhub/internal/sim/casesys"

	"github.com/samhub/samhub/internal/hubtest"
)

// letters makes n distinct XDIS91 letters from the UTF-8 fixture.
func letters(t *testing.T, n int) map[string][]byte {
	t.Helper()
	base, err := os.ReadFile("../../testdata/medcom/samhub/letter-utf8.xml")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for i := range n {
		s := strings.Replace(string(base), "<Identifier>LTR00000000001</Identifier>", fmt.Sprintf("<Identifier>KIL%011d</Identifier>", i), 1)
		s = strings.Replace(s, "<Identifier>ENV00000000001</Identifier>", fmt.Sprintf("<Identifier>KEV%011d</Identifier>", i), 1)
		out[fmt.Sprintf("kill-%03d.xml", i)] = []byte(s)
	}
	return out
}

func writeConfig(t *testing.T, dir, caseURL string) string {
	t.Helper()
	cfg := fmt.Sprintf(`data_dir: %[1]s/data
log: {level: warn, format: json}
http: {listen: "127.0.0.1:0"}
nats: {embedded: {max_store: 2GB}}
streams: {letters_max_bytes: 512MB, parked_max_bytes: 256MB, journey_max_bytes: 128MB, audit_max_bytes: 128MB}
pipeline: {backoff_initial: 100ms, backoff_max: 1s, shutdown_grace: 5s}
adapters:
  medcom:
    type: medcom
    dir: %[1]s/medcom
    poll_interval: 20ms
    self: {gln: "5790001382445", sor: "1144561000016002", name: "Samrådet"}
  casesys:
    type: casesys
    url: %[2]s
    client_id: samhub
    client_secret: kill-secret
    poll_interval: 0s
destinations:
  casefile: {adapter: casesys, sector: municipality}
routes:
  - name: all-to-case
    to: [casefile]
`, dir, caseURL)
	p := filepath.Join(dir, "samhub.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestKillNineWhileLettersInFlight kills the hub process with SIGKILL in the
// middle of a batch, starts it again and checks every letter became exactly
// one document.
func TestKillNineWhileLettersInFlight(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := hubtest.BuildSamhub(t)
	dir := t.TempDir()
	sim, err := casesyssim.New(casesyssim.Config{DataDir: filepath.Join(dir, "sim"), ClientID: "samhub", ClientSecret: "kill-secret"})
	if err != nil {
		t.Fatal(err)
	}
	// Slow answers keep letters in flight when the kill comes.
	sim.SetDelay(20 * time.Millisecond)
	caseURL, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	cfgPath := writeConfig(t, dir, caseURL)
	in := filepath.Join(dir, "medcom", "in")
	if err := os.MkdirAll(in, 0o700); err != nil {
		t.Fatal(err)
	}
	const n = 60
	for name, b := range letters(t, n) {
		if err := os.WriteFile(filepath.Join(in, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "serve", "--config", cfgPath)
		cmd.Dir = dir
		stdout, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() {
			s := bufio.NewScanner(stdout)
			for s.Scan() {
			}
		}()
		return cmd
	}
	docs := func() int { return len(sim.Documents()) }
	kills := 0
	for kills < 3 {
		cmd := start()
		target := (kills + 1) * n / 4
		deadline := time.Now().Add(60 * time.Second)
		for docs() < target && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		kills++
	}
	cmd := start()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	deadline := time.Now().Add(90 * time.Second)
	for docs() < n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // let any straggling duplicate show itself
	seen := map[string]int{}
	for _, d := range sim.Documents() {
		seen[d.ExternalID]++
	}
	dups := 0
	for _, c := range seen {
		if c > 1 {
			dups += c - 1
		}
	}
	lost := n - len(seen)
	t.Logf("scenario=kill9 letters=%d kills=%d lost=%d duplicates=%d", n, kills, lost, dups)
	if lost != 0 || dups != 0 {
		t.Fatalf("lost=%d duplicates=%d", lost, dups)
	}
	processed, _ := os.ReadDir(filepath.Join(dir, "medcom", "processed"))
	if len(processed) != n {
		t.Errorf("%d files in processed/, want %d", len(processed), n)
	}
}

// TestServeRefusesBadConfiguration runs the binary: configuration mistakes
// stop the start with exit status 2 and the key in the message, and an
// adapter's own mistakes name adapters.<name>.<key>.
func TestServeRefusesBadConfiguration(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := hubtest.BuildSamhub(t)
	dir := t.TempDir()
	cases := []struct{ name, yaml, want string }{
		{"listen", "http: {listen: nowhere}\n", "http.listen: must be host:port"},
		{"adapter url", fmt.Sprintf(`data_dir: %s/data
adapters:
  casesys: {type: casesys, url: "case.kommune.dk/api", client_id: a, client_secret: b}
destinations:
  casefile: {adapter: casesys, sector: municipality}
routes: [{name: r, to: [casefile]}]
`, dir), "adapters.casesys.url: must be an absolute http(s) URL"},
		{"unknown adapter type", fmt.Sprintf("data_dir: %s/data\nadapters: {x: {type: fax}}\n", dir), `adapters.x.type: unknown adapter type "fax"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, c.name+".yaml")
			os.WriteFile(p, []byte(c.yaml), 0o600)
			out, err := exec.Command(bin, "serve", "--config", p).CombinedOutput()
			if err == nil {
				t.Fatalf("started with a bad configuration")
			}
			if !strings.Contains(string(out), c.want) {
				t.Fatalf("output %q lacks %q", out, c.want)
			}
		})
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "samhub ") {
		t.Fatalf("version: %q %v", out, err)
	}
}

// TestCtrlCStopsCleanly is `make run` then Ctrl-C: SIGINT drains the hub,
// which says so last and exits 0.
func TestCtrlCStopsCleanly(t *testing.T) {
	bin := hubtest.BuildSamhub(t)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "http://127.0.0.1:1")
	b, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, []byte(strings.Replace(string(b), "level: warn", "level: info", 1)), 0o600)
	cmd, logs, ok := serve(t, bin, cfg)
	if !ok {
		t.Fatalf("the hub did not start: %s", logs)
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGINT: %v\n%s", err, logs.String())
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if last := lines[len(lines)-1]; !strings.Contains(last, `"msg":"stopped"`) {
		t.Fatalf("last log line %q; want the stop", last)
	}
}
