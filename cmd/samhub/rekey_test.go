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

	"github.com/samhub/samhub/internal/hubtest"
	"github.com/samhub/samhub/internal/logbuf"
	casesyssim "github.com/samhub/samhub/internal/sim/casesys"
)

// serve starts the hub and waits until it says it runs; ok is false when
// it exited first (its log tells why).
func serve(t *testing.T, bin, cfg string) (cmd *exec.Cmd, logs *logbuf.Buffer, ok bool) {
	t.Helper()
	cmd = exec.Command(bin, "serve", "--config", cfg)
	stdout, _ := cmd.StdoutPipe()
	logs = &logbuf.Buffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	running := make(chan bool, 1)
	go func() {
		s := bufio.NewScanner(stdout)
		seen := false
		for s.Scan() {
			if !seen && strings.HasPrefix(s.Text(), "samhub running") {
				seen = true
				running <- true
			}
		}
		if !seen {
			running <- false
		}
	}()
	if !<-running {
		_ = cmd.Wait()
		return cmd, logs, false
	}
	return cmd, logs, true
}

// The operator's key rotation, through the binary: rekey refuses while the
// hub runs; after it, the old key no longer starts the hub (and changes
// nothing), the new key does, and the letters filed before and after are
// each one document.
func TestRekeyThroughTheBinary(t *testing.T) {
	bin := hubtest.BuildSamhub(t)
	dir := t.TempDir()
	sim, err := casesyssim.New(casesyssim.Config{DataDir: filepath.Join(dir, "sim"), ClientID: "samhub", ClientSecret: "kill-secret"})
	if err != nil {
		t.Fatal(err)
	}
	caseURL, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	oldKey, newKey := filepath.Join(dir, "old.key"), filepath.Join(dir, "new.key")
	os.WriteFile(oldKey, []byte("an-old-key-of-32-characters-long\n"), 0o600)
	os.WriteFile(newKey, []byte("a-new-key-of-32-characters-long!\n"), 0o600)
	cfg := writeConfig(t, dir, caseURL)
	b, _ := os.ReadFile(cfg)
	withKey := func(key string) {
		s := strings.Replace(string(b), "nats: {embedded: {max_store: 2GB}}", "nats: {embedded: {max_store: 2GB, key_file: "+key+"}}", 1)
		if err := os.WriteFile(cfg, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	withKey(oldKey)
	in := filepath.Join(dir, "medcom", "in")
	os.MkdirAll(in, 0o700)
	all := letters(t, 10)
	drop := func(from, to int) {
		for i := from; i < to; i++ {
			name := fmt.Sprintf("kill-%03d.xml", i)
			if err := os.WriteFile(filepath.Join(in, name), all[name], 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitDocs := func(n int) {
		deadline := time.Now().Add(60 * time.Second)
		for len(sim.Documents()) < n && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	rekey := func() (string, error) {
		out, err := exec.Command(bin, "store", "rekey", "--config", cfg, "--new-key-file", newKey).CombinedOutput()
		return string(out), err
	}

	drop(0, 5)
	hub, logs, ok := serve(t, bin, cfg)
	if !ok {
		t.Fatalf("the hub did not start: %s", logs)
	}
	waitDocs(5)
	if out, err := rekey(); err == nil || !strings.Contains(out, "in use by another running samhub") {
		t.Errorf("rekey beside a running hub: %v\n%s", err, out)
	}
	_ = hub.Process.Signal(syscall.SIGTERM)
	if err := hub.Wait(); err != nil {
		t.Fatalf("stop: %v\n%s", err, logs)
	}

	out, err := rekey()
	if err != nil || !strings.Contains(out, "SAMHUB_LETTERS") {
		t.Fatalf("rekey: %v\n%s", err, out)
	}
	if hub, logs, ok := serve(t, bin, cfg); ok {
		_ = hub.Process.Signal(syscall.SIGTERM)
		_ = hub.Wait()
		t.Fatal("the hub started on the rekeyed store with the old key")
	} else if !strings.Contains(logs.String(), "nats.embedded.key_file") || !strings.Contains(logs.String(), "SAMHUB_LETTERS") {
		t.Fatalf("the old key's refusal does not name the key and the streams: %s", logs)
	}

	withKey(newKey)
	drop(5, 10)
	hub, logs, ok = serve(t, bin, cfg)
	if !ok {
		t.Fatalf("the hub did not start on the new key: %s", logs)
	}
	defer func() { _ = hub.Process.Signal(syscall.SIGTERM); _ = hub.Wait() }()
	waitDocs(10)
	time.Sleep(500 * time.Millisecond) // a letter sent again would show now
	seen := map[string]int{}
	for _, d := range sim.Documents() {
		seen[d.ExternalID]++
	}
	if len(seen) != 10 || len(sim.Documents()) != 10 {
		t.Fatalf("%d documents for %d letters, want 10 for 10", len(sim.Documents()), len(seen))
	}
}
