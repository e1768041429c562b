package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/samhub/samhub/pipeline/broker"
	"github.com/samhub/samhub/pipeline/journey"
)

// ceiling is the broker alone on this machine in this run, with the hub's
// storage settings (embedded server, file store, SyncAlways), the same
// message size as the letters.
type ceiling struct {
	MsgBytes          int     `json:"msg_bytes"`
	Msgs              int     `json:"msgs"`
	PublishAsyncPerS  float64 `json:"publish_async_per_s"`  // 256 in flight: one fsync per message
	PublishSyncPerS   float64 `json:"publish_sync_per_s"`   // one in flight
	PublishAtomicPerS float64 `json:"publish_atomic_per_s"` // atomic batches of 100: one fsync per batch
	ConsumePerS       float64 `json:"consume_per_s"`        // durable pull consumer, explicit async acks
}

func measureCeiling(ctx context.Context, dir string, payload []byte, n int) (ceiling, error) {
	c := ceiling{MsgBytes: len(payload), Msgs: n}
	srv, err := broker.StartEmbedded(broker.EmbeddedOptions{StoreDir: filepath.Join(dir, "ceiling-js"), MaxStore: 16 << 30}, slog.New(slog.DiscardHandler))
	if err != nil {
		return c, err
	}
	defer srv.Shutdown()
	nc, err := srv.Connect()
	if err != nil {
		return c, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(256))
	if err != nil {
		return c, err
	}
	mk := func(name string) error {
		_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{name + ".>"}, Storage: jetstream.FileStorage,
			MaxBytes: 2 << 30, Discard: jetstream.DiscardNew, AllowAtomicPublish: true})
		return err
	}

	// Async publish: the per-message synced-write ceiling.
	if err := mk("CEIL"); err != nil {
		return c, err
	}
	start := time.Now()
	for i := range n {
		// A generous stall wait: on a loaded machine 256 fsyncs can take
		// longer than nats.go's default 200 ms, which would abort the run.
		if _, err := js.PublishAsync(fmt.Sprintf("CEIL.%d", i%64), payload, jetstream.WithStallWait(30*time.Second)); err != nil {
			return c, err
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(5 * time.Minute):
		return c, fmt.Errorf("ceiling: async publishes not acknowledged")
	}
	c.PublishAsyncPerS = float64(n) / time.Since(start).Seconds()

	// Consume what was just written, explicit acks sent asynchronously.
	cons, err := js.CreateConsumer(ctx, "CEIL", jetstream.ConsumerConfig{Durable: "ceil", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 4096})
	if err != nil {
		return c, err
	}
	got := make(chan struct{})
	count := 0
	start = time.Now()
	cc, err := cons.Consume(func(m jetstream.Msg) {
		_ = m.Ack()
		count++
		if count == n {
			close(got)
		}
	}, jetstream.PullMaxMessages(512))
	if err != nil {
		return c, err
	}
	select {
	case <-got:
	case <-time.After(5 * time.Minute):
		return c, fmt.Errorf("ceiling: consume stalled at %d of %d", count, n)
	}
	c.ConsumePerS = float64(n) / time.Since(start).Seconds()
	cc.Stop()

	// One publish in flight (what a sequential source sees).
	if err := mk("SYNC"); err != nil {
		return c, err
	}
	ns := min(n, 5000)
	start = time.Now()
	for i := range ns {
		if _, err := js.Publish(ctx, fmt.Sprintf("SYNC.%d", i), payload); err != nil {
			return c, err
		}
	}
	c.PublishSyncPerS = float64(ns) / time.Since(start).Seconds()

	// Atomic batches of 100.
	if err := mk("ATOM"); err != nil {
		return c, err
	}
	batch := make([]*nats.Msg, 100)
	start = time.Now()
	for i := 0; i < n; i += len(batch) {
		for j := range batch {
			batch[j] = &nats.Msg{Subject: fmt.Sprintf("ATOM.%d", j%64), Data: payload}
		}
		if _, err := journey.PublishAtomic(ctx, nc, js, batch); err != nil {
			return c, err
		}
	}
	c.PublishAtomicPerS = float64(n) / time.Since(start).Seconds()
	return c, nil
}
