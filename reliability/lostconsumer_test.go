package reliability

import (
	"context"
	"errors"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/samhub/samhub/pipeline"
	"github.com/samhub/samhub/pipeline/broker"
)

// TestScenarioLostConsumer: the durable consumers the hub's destinations
// read the letter stream through are deleted, as an operator's mistaken
// `nats consumer rm`, a restore of the stream without its consumers, or a
// JetStream that lost its consumer state would leave them. The hub runs as
// a child process on an external NATS server while referrals and
// recommendations stream in and the case system and the EPJ answer
// slowly, so each destination has letters in flight and more waiting.
//
// First each destination's consumer is deleted under the running hub, one
// after the other; then the hub is stopped, every consumer is deleted, and
// letters go on arriving before it starts again. Each time the hub must
// make the consumer again at the destination's recorded place: a consumer
// made at the stream's end would leave the letters waiting for it
// undelivered, one made at its start would deliver every letter again.
// Every letter must reach every destination exactly once.
func TestScenarioLostConsumer(t *testing.T) {
	t.Parallel()
	opts := &server.Options{ServerName: "lost", Host: "127.0.0.1", Port: r1FreePort(t), JetStream: true,
		StoreDir: filepath.Join(t.TempDir(), "js"), SyncAlways: true, JetStreamMaxStore: 4 << 30, JetStreamMaxMemory: 64 << 20,
		MaxPayload: 64 << 20, NoSigs: true}
	srv := r1StartNATS(t, opts)
	url := r1AuthURL(srv.ClientURL())
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}

	w := oNewWorld(t)
	// Slow sinks and two letters in flight per destination: letters wait
	// in the stream beyond what the hub holds, where only the consumer's
	// place says they are still to be delivered.
	w.Case.SetRouteDelay("POST /cases/{caseId}/documents", 250*time.Millisecond)
	w.EPJ.SetDelay(200 * time.Millisecond)
	cfg, base := w.Config(filepath.Join(w.Dir, "hub"), oHubOpts{NATSURL: url, Replicas: 1, MaxInFlight: 2})
	dests := []string{"casefile", "gp", "region", "parents", "notices"}
	var lives oLives
	remove := func(d string) bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := js.DeleteConsumer(ctx, broker.StreamLetters, pipeline.ConsumerName(d))
		if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			t.Fatalf("delete the consumer of %s: %v", d, err)
		}
		return err == nil
	}

	hub := oStartHub(t, cfg, base, 0, "")
	oWaitReady(t, hub, time.Minute)
	pause := r1Dur("LOSTCONSUMER_PAUSE", 600*time.Millisecond, 6*time.Second) // between two deletions
	feed := w.Feed("LCS", 40*time.Millisecond, 0, 0)
	deleted := 0
	for _, d := range dests {
		time.Sleep(pause)
		if remove(d) {
			deleted++
		}
	}
	// The running hub makes each again by itself.
	r1Wait(t, 30*time.Second, "every destination's consumer made again under the running hub", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, d := range dests {
			if _, err := js.Consumer(ctx, broker.StreamLetters, pipeline.ConsumerName(d)); err != nil {
				return false
			}
		}
		return true
	})
	time.Sleep(pause)
	hub.Signal(syscall.SIGTERM)
	if !hub.Wait(40 * time.Second) {
		t.Fatal("the hub has not exited 40 s after SIGTERM")
	}
	lives.Add(hub.Life())
	// Letters arrive while it is stopped, and its consumers go.
	time.Sleep(time.Second)
	for _, d := range dests {
		if remove(d) {
			deleted++
		}
	}

	hub = oStartHub(t, cfg, base, 1, "")
	oWaitReady(t, hub, time.Minute)
	time.Sleep(2 * time.Second)
	sent := feed.Stop()
	w.Case.SetRouteDelay("POST /cases/{caseId}/documents", 0) // the backlog drains
	w.EPJ.SetDelay(0)
	w.WaitAll(t, time.Duration(sent/10+120)*time.Second, false)
	time.Sleep(time.Second) // a late second delivery would show itself now
	v := w.Verdict(oParked(t, base))
	hub.Signal(syscall.SIGTERM)
	hub.Wait(40 * time.Second)
	lives.Add(hub.Life())
	report(t, "lostconsumer", append([]any{"letters", w.Ledger.Len(), "deliveries", w.Ledger.Expected(), "consumers_deleted", deleted,
		"lives", lives.Lives, "crashes", lives.Crashes, "panics", lives.Panics}, v.Figures()...)...)
	if deleted != 2*len(dests) {
		t.Errorf("%d consumers deleted, want %d", deleted, 2*len(dests))
	}
	oRequire(t, v, oAllow{})
	if lives.Crashes != 0 || lives.Panics != 0 {
		t.Errorf("%d lives ended on their own, %d panics", lives.Crashes, lives.Panics)
	}
}
