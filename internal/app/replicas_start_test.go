package app_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/samhub/samhub/internal/app"
	"github.com/samhub/samhub/internal/hubtest"
	"github.com/samhub/samhub/internal/natstest"
	casesyssim "github.com/samhub/samhub/internal/sim/casesys"
	epjsim "github.com/samhub/samhub/internal/sim/epj"
)

// TestTwoReplicasStartAtOnceOnAFreshCluster starts two hubs at the same
// moment on a NATS cluster that has nothing yet, as a Kubernetes rollout of
// a new installation does: both make the streams, buckets and destination
// consumers, and a request about one the other is making may go unanswered
// or find it made in between. Both must start, and a letter then reaches the
// case system once.
func TestTwoReplicasStartAtOnceOnAFreshCluster(t *testing.T) {
	urls := natstest.StartCluster(t)
	root := t.TempDir()
	cs, err := casesyssim.New(casesyssim.Config{DataDir: filepath.Join(root, "casesys"), ClientID: "samhub", ClientSecret: "case-secret"})
	if err != nil {
		t.Fatal(err)
	}
	caseURL, err := cs.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	epj, err := epjsim.New(epjsim.Config{DataDir: filepath.Join(root, "epj"), ClientID: "samhub", ClientSecret: "epj-secret"})
	if err != nil {
		t.Fatal(err)
	}
	epjURL, err := epj.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = epj.Close() })

	type started struct {
		a   *app.App
		err error
	}
	out := make(chan started, 2)
	t0 := time.Now()
	log := slog.New(slog.DiscardHandler)
	if os.Getenv("SAMHUB_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	// One MedCom folder, as the replicas share a volume; the replica
	// holding the source's lease reads it.
	medcom := filepath.Join(root, "medcom")
	for _, name := range []string{"a", "b"} {
		cfg := hubtest.DefaultConfig(filepath.Join(root, name, "data"), medcom, caseURL, epjURL)
		cfg.NATS.URL, cfg.NATS.Replicas = urls, 3
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // as serve waits
			defer cancel()
			a, err := app.Start(ctx, cfg, log.With("replica", name))
			out <- started{a, err}
		}()
	}
	for range 2 {
		s := <-out
		if s.err != nil {
			t.Error(s.err)
			continue
		}
		t.Cleanup(func() { _ = s.a.Stop() })
	}
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("both started in %v", time.Since(t0)) // 2-5 s; 17-21 s before each step sent only changes

	data, err := os.ReadFile("../../testdata/medcom/samhub/letter-utf8.xml")
	if err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(medcom, "in")
	if err := os.MkdirAll(in, 0o700); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(in, ".letter.xml.tmp") // as a VANS client writes
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(in, "letter.xml")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(cs.Documents()) == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	// Both replicas read the letter stream through the same consumer, so
	// a letter is filed by one of them, once; a second copy would show a
	// consumer each replica made for itself.
	time.Sleep(time.Second)
	if n := len(cs.Documents()); n != 1 {
		t.Fatalf("%d documents in the case system, want 1", n)
	}
}
