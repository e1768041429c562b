package broker

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Scan reads the messages an ordered consumer with cfg sees now, in stream
// order, calling fn for each until fn returns false, max messages were read
// (0: no cap) or the messages present at the start are done. It is how the
// hub reads journeys, the retry queue, the audit log and letter searches.
func Scan(ctx context.Context, js jetstream.JetStream, stream string, cfg jetstream.OrderedConsumerConfig, max uint64, fn func(jetstream.Msg) bool) error {
	cons, err := js.OrderedConsumer(ctx, stream, cfg)
	if err != nil {
		return err
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return err
	}
	pending := info.NumPending
	if max > 0 {
		pending = min(pending, max)
	}
	for pending > 0 {
		batch, err := cons.Fetch(int(min(pending, 512)), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return err
		}
		got := 0
		for m := range batch.Messages() {
			got++
			if !fn(m) {
				return nil
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return err
		}
		if got == 0 {
			return nil
		}
		pending -= uint64(got)
	}
	return nil
}
