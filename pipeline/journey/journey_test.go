package journey_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/samhub/samhub/internal/config"
	"github.com/samhub/samhub/pipeline/broker"
	"github.com/samhub/samhub/pipeline/journey"
)

// start runs an embedded SyncAlways server with the hub's streams.
func start(t testing.TB, persist string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	srv, err := broker.StartEmbedded(broker.EmbeddedOptions{StoreDir: t.TempDir(), MaxStore: 16 << 30}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load("")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Streams.JourneyPersist = persist
	if err := broker.Provision(context.Background(), js, cfg.Streams.Broker(), 1); err != nil {
		t.Fatal(err)
	}
	return nc, js
}

func TestConcurrentStepsAreAllStoredInFewerWrites(t *testing.T) {
	_, js := start(t, "sync")
	concurrentSteps(t, js, true)
}

// On an async journey stream (the default on one server) there is no fsync
// to share and nothing to wait for: Record queues the step, and a trace
// read afterwards in the same process holds it.
func TestConcurrentStepsOnAsyncStream(t *testing.T) {
	_, js := start(t, "async")
	concurrentSteps(t, js, false)
}

func concurrentSteps(t *testing.T, js jetstream.JetStream, synced bool) {
	r := journey.New(js)
	ctx := context.Background()
	ev0, cm0 := journey.WriteStats()
	const letters, steps = 100, 3
	var wg sync.WaitGroup
	errs := make(chan error, letters*steps)
	for i := range letters {
		for _, dest := range []string{"casefile", "region", "notices"}[:steps] {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- r.Record(ctx, journey.Event{LetterID: fmt.Sprintf("L%03d", i), Step: journey.Delivered, Destination: dest})
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// Every caller returned after its step was stored: each trace is
	// complete the moment Record returned, with no step twice.
	for _, i := range []int{0, 42, 99} {
		tr, err := r.Trace(ctx, fmt.Sprintf("L%03d", i))
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]int{}
		for _, ev := range tr {
			seen[ev.Destination]++
		}
		if len(tr) != steps || seen["casefile"] != 1 || seen["region"] != 1 || seen["notices"] != 1 {
			t.Fatalf("letter %d: journey %+v", i, tr)
		}
	}
	st, err := js.Stream(ctx, broker.StreamJourney)
	if err != nil {
		t.Fatal(err)
	}
	if st.CachedInfo().State.Msgs != letters*steps {
		t.Fatalf("stream holds %d events, want %d", st.CachedInfo().State.Msgs, letters*steps)
	}
	if got := st.CachedInfo().Config.AllowAtomicPublish; got != synced {
		t.Fatalf("atomic publish on the journey stream: %v, want %v", got, synced)
	}
	ev1, cm1 := journey.WriteStats()
	if ev1-ev0 != letters*steps {
		t.Fatalf("recorder counted %d events, want %d", ev1-ev0, letters*steps)
	}
	if synced && cm1-cm0 >= ev1-ev0 {
		t.Fatalf("%d concurrent steps took %d writes: they were not grouped", ev1-ev0, cm1-cm0)
	}
}

func TestPublishAtomicStoresAllOrNothing(t *testing.T) {
	nc, js := start(t, "sync")
	ctx := context.Background()
	for _, c := range []struct {
		name   string
		atomic bool
	}{{"OPEN", true}, {"CLOSED", false}} {
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: c.name, Subjects: []string{c.name + ".>"}, Storage: jetstream.FileStorage, AllowAtomicPublish: c.atomic}); err != nil {
			t.Fatal(err)
		}
	}
	batch := func(stream string) []*nats.Msg {
		var out []*nats.Msg
		for i := range 5 {
			out = append(out, &nats.Msg{Subject: fmt.Sprintf("%s.%d", stream, i), Data: []byte{byte(i)}})
		}
		return out
	}
	ack, err := journey.PublishAtomic(ctx, nc, js, batch("OPEN"))
	if err != nil {
		t.Fatal(err)
	}
	if ack.Stream != "OPEN" || ack.Sequence != 5 {
		t.Fatalf("ack %+v: want stream OPEN, last sequence 5", ack)
	}
	if _, err := journey.PublishAtomic(ctx, nc, js, batch("CLOSED")); err == nil {
		t.Fatal("a stream without AllowAtomicPublish must refuse the batch")
	}
	st, _ := js.Stream(ctx, "CLOSED")
	if n := st.CachedInfo().State.Msgs; n != 0 {
		t.Fatalf("refused batch left %d messages", n)
	}
	if _, err := journey.PublishAtomic(ctx, nc, js, make([]*nats.Msg, journey.MaxAtomicBatch+1)); err == nil {
		t.Fatal("an oversized batch must be refused before sending")
	}
}

// A letter's steps recorded one after another in the background are
// stored in that order, each once, and a trace right after the last Record
// holds all of them; Flush leaves nothing queued.
func TestBackgroundStepsKeepTheirOrder(t *testing.T) {
	_, js := start(t, "async")
	r := journey.New(js)
	ctx := context.Background()
	const n = 1000
	for i := range n {
		if err := r.Record(ctx, journey.Event{LetterID: "L1", Step: journey.Retried, Destination: "casefile", Attempt: i + 1}); err != nil {
			t.Fatal(err)
		}
	}
	tr, err := r.Trace(ctx, "L1")
	if err != nil {
		t.Fatal(err)
	}
	if len(tr) != n {
		t.Fatalf("trace holds %d steps, want %d", len(tr), n)
	}
	for i, ev := range tr {
		if ev.Attempt != i+1 {
			t.Fatalf("step %d is attempt %d: the order was not kept", i, ev.Attempt)
		}
	}
	if err := r.Record(ctx, journey.Event{LetterID: "L2", Step: journey.Delivered, Destination: "region"}); err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, broker.StreamJourney)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.CachedInfo().State.Msgs; got != n+1 {
		t.Fatalf("stream holds %d steps after Flush, want %d", got, n+1)
	}
}
