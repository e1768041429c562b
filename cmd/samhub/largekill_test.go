package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/samhub/samhub/adapters/medcom/fhirmsg"
	"github.com/samhub/samhub/internal/hubtest"
	casesyssim "github.com/samhub/samhub/internal/sim/casesys"
	"github.com/samhub/samhub/pipeline/letter"
)

// TestKillNineDuringALargeUpload kills the hub process with SIGKILL while
// the case system is slowly taking a 20 MB attachment (issue 21). The case
// system must hold no partial document, and after a restart the letter
// must arrive once, its attachment and original byte for byte.
func TestKillNineDuringALargeUpload(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := hubtest.BuildSamhub(t)
	dir := t.TempDir()
	// A cap well over the upload (attachment, original and the document's
	// fields): the default 50 MB would refuse it before anything is cut.
	sim, err := casesyssim.New(casesyssim.Config{DataDir: filepath.Join(dir, "sim"), ClientID: "samhub", ClientSecret: "kill-secret", MaxUploadBytes: 200 << 20})
	if err != nil {
		t.Fatal(err)
	}
	// 4 MB/s: the upload of ~47 MB takes the case system a dozen seconds,
	// and the kill comes early in it.
	sim.SlowUploads(4 << 20)
	caseURL, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	cfgPath := writeConfig(t, dir, caseURL)
	// Slow uploads need a longer sink and request timeout than the
	// default 30s on a loaded machine.
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	slow := strings.Replace(string(cfg), "shutdown_grace: 5s}", "shutdown_grace: 5s, sink_timeout: 3m}", 1)
	slow = strings.Replace(slow, "    client_secret: kill-secret\n", "    client_secret: kill-secret\n    timeout: 3m\n", 1)
	if strings.Count(slow, "3m") != 2 {
		t.Fatal("writeConfig's pipeline or casesys block changed: set the timeouts another way")
	}
	if err := os.WriteFile(cfgPath, []byte(slow), 0o600); err != nil {
		t.Fatal(err)
	}

	att := make([]byte, 20_000_000)
	var key [32]byte
	key[0] = 21
	_, _ = rand.NewChaCha8(key).Read(att)
	copy(att, "%PDF-1.7\n")
	l := &letter.Letter{Patient: &letter.Patient{CPR: "2509479989", GivenName: "Bruno Test", FamilyName: "Elmer"}, Category: "regarding-referral",
		Topic: "Henvisning med bilag", Text: "Henvisning til samrådet med scannet journal. Testbrev.",
		Attachments: []letter.Attachment{letter.NewAttachment("Journaludskrift", "application/pdf", att)}}
	file, id, err := fhirmsg.BuildCareCommunication(l, fhirmsg.BuildOptions{Encoding: fhirmsg.EncodingXML, Mode: fhirmsg.ModeNew,
		Self: fhirmsg.Organization{Name: "Lægerne Test", SOR: "441211000016000", GLN: "5790000123459"},
		To:   fhirmsg.Organization{Name: "Samrådet for Børn og Unge", SOR: "1144561000016002", GLN: "5790001382445"}})
	if err != nil {
		t.Fatal(err)
	}
	attSum, origSum := sha256.Sum256(att), sha256.Sum256(file)
	want := []string{hex.EncodeToString(attSum[:]), hex.EncodeToString(origSum[:])}
	in := filepath.Join(dir, "medcom", "in")
	if err := os.MkdirAll(in, 0o700); err != nil {
		t.Fatal(err)
	}
	// Written beside in/ and renamed in, as a VANS client does: the hub
	// takes a renamed file at once.
	tmp := filepath.Join(dir, "medcom", "large.xml.part")
	if err := os.WriteFile(tmp, file, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(in, "large.xml")); err != nil {
		t.Fatal(err)
	}
	att, file = nil, nil

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
	poll := func(what string, within time.Duration, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(within)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("after %s: %s", within, what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	cmd := start()
	poll("the upload to the case system under way", 3*time.Minute, func() bool { return sim.Receiving() > 4<<20 })
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	// The case system sees the connection end and keeps nothing of it.
	poll("the cut-off upload to end at the case system", time.Minute, func() bool { return sim.Receiving() == 0 })
	if docs := sim.Documents(); len(docs) != 0 {
		t.Fatalf("the case system holds %d documents from an upload killed half way", len(docs))
	}

	cmd = start()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	poll("the letter at the case system after the restart", 4*time.Minute, func() bool { return len(sim.Documents()) > 0 })
	// A second delivery (a redelivery the first did not stop) would show
	// by now: the hub's ack_wait is seconds.
	time.Sleep(5 * time.Second)
	docs := sim.Documents()
	if len(docs) != 1 {
		t.Fatalf("%d documents after the restart, want 1", len(docs))
	}
	var got []string
	for _, f := range docs[0].Files {
		got = append(got, f.SHA256)
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("the attachment and the original did not arrive byte for byte: files %v, want %v", got, want)
			break
		}
	}
	if d := sim.Counts().Duplicates; len(d) > 0 {
		t.Errorf("the case system stored the letter more than once: %v", d)
	}
	if docs[0].Letter == nil || docs[0].Letter.ID != id {
		t.Errorf("the document is not the letter %s", id)
	}
	t.Logf("scenario=kill9-large-upload attachment=20MB documents=%d", len(docs))
}
