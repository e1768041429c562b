package pipeline_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/samhub/samhub/internal/config"
	"github.com/samhub/samhub/pipeline"
	"github.com/samhub/samhub/pipeline/broker"
	"github.com/samhub/samhub/pipeline/letter"
)

// withBroker opens the stopped environment's store on its own, as an
// operator's tool would.
func (e *env) withBroker(t *testing.T, do func(b *broker.Broker)) {
	t.Helper()
	bo, err := e.cfg.NATS.Broker()
	if err != nil {
		t.Fatal(err)
	}
	b, err := broker.Open(context.Background(), bo, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	do(b)
}

// A destination's consumer lost while letters wait for it (deleted by
// hand, a node's store replaced) is made again where it was: before, it
// was made at the stream's end and the waiting letters never came.
func TestADestinationWhoseConsumerWasLostResumesWhereItWas(t *testing.T) {
	e := newEnvWith(t, func(cfg *config.Config, _ int) { cfg.Pipeline.MaxAttempts = 1000 })
	ctx := context.Background()
	e.feed.ch <- mkLetter("LOST1", letter.KindReferral, "")
	eventually(t, "the first letter in the case file", func() bool { return e.muni.count("LOST1") == 1 })
	e.muni.mu.Lock()
	e.muni.failNext = 1000
	e.muni.mu.Unlock()
	e.feed.ch <- mkLetter("LOST2", letter.KindReferral, "")
	e.feed.ch <- mkLetter("LOST3", letter.KindReferral, "")
	eventually(t, "both letters stored", func() bool {
		for _, id := range []string{"LOST2", "LOST3"} {
			if _, err := e.hub.TraceLetter(ctx, id); err != nil {
				return false
			}
		}
		return true
	})
	e.shutdown()
	e.withBroker(t, func(b *broker.Broker) {
		if err := b.JS.DeleteConsumer(ctx, broker.StreamLetters, pipeline.ConsumerName("casefile")); err != nil {
			t.Fatal(err)
		}
	})
	e.muni.mu.Lock()
	e.muni.failNext = 0
	e.muni.mu.Unlock()
	e.start()
	eventually(t, "the letters that waited in the case file", func() bool { return e.muni.count("LOST2") == 1 && e.muni.count("LOST3") == 1 })
	e.muni.mu.Lock()
	defer e.muni.mu.Unlock()
	if fmt.Sprint(e.muni.order) != "[LOST1 LOST2 LOST3]" {
		t.Fatalf("the case file got %v, want each letter once", e.muni.order)
	}
}

// A destination added to the configuration starts with the letters that
// arrive from then on, not with everything the stream still holds.
func TestADestinationAddedLaterStartsWithNewLetters(t *testing.T) {
	var n int
	e := newEnvWith(t, func(_ *config.Config, i int) { n = i })
	e.feed.ch <- mkLetter("EARLY", letter.KindReferral, "")
	eventually(t, "the early letter in the case file", func() bool { return e.muni.count("EARLY") == 1 })
	e.shutdown()
	added := newBox()
	regMu.Lock()
	boxes[fmt.Sprintf("added%d", n)] = added
	regMu.Unlock()
	e.cfg.Adapters[fmt.Sprintf("added%d", n)] = map[string]any{"type": "test-box"}
	e.cfg.Destinations["archive"] = config.Destination{Adapter: fmt.Sprintf("added%d", n), Sector: "municipality"}
	e.cfg.Routes[0].To = append(e.cfg.Routes[0].To, "archive")
	if err := e.cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	e.start()
	e.feed.ch <- mkLetter("LATE", letter.KindReferral, "")
	eventually(t, "the late letter in both", func() bool { return e.muni.count("LATE") == 1 && added.count("LATE") == 1 })
	if added.count("EARLY") != 0 {
		t.Fatal("a destination added later got a letter stored before it was added")
	}
}

// A consumer deleted under a running hub is made again at once, and the
// destination goes on: before, its subscription ended and nothing more
// reached the destination until the hub was restarted.
func TestAConsumerDeletedUnderARunningHubIsMadeAgain(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.feed.ch <- mkLetter("RUN1", letter.KindReferral, "")
	eventually(t, "the first letter in the case file", func() bool { return e.muni.count("RUN1") == 1 })
	if err := e.b.JS.DeleteConsumer(ctx, broker.StreamLetters, pipeline.ConsumerName("casefile")); err != nil {
		t.Fatal(err)
	}
	e.feed.ch <- mkLetter("RUN2", letter.KindReferral, "")
	eventually(t, "the next letter in the case file", func() bool { return e.muni.count("RUN2") == 1 })
	e.muni.mu.Lock()
	defer e.muni.mu.Unlock()
	if fmt.Sprint(e.muni.order) != "[RUN1 RUN2]" {
		t.Fatalf("the case file got %v, want each letter once", e.muni.order)
	}
}
