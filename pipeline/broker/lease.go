package broker

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/samhub/samhub/internal/clock"
)

// LeaseTTL is how long a lease outlives its last renewal. A replica that dies
// holding a lease blocks that source for at most this long.
const LeaseTTL = 15 * time.Second

// RunLeased runs fn while this replica holds the lease name, so that a
// polling source (one inbox, one outbox) runs on one replica at a time. When
// the lease is lost fn's context is cancelled and the lease is sought again.
// It returns when ctx is cancelled.
func RunLeased(ctx context.Context, js jetstream.JetStream, name, holder string, log *slog.Logger, fn func(context.Context) error) error {
	kv, err := js.KeyValue(ctx, BucketLeases)
	if err != nil {
		return err
	}
	key := "source." + name
	for ctx.Err() == nil {
		rev, err := kv.Create(ctx, key, []byte(holder))
		if errors.Is(err, jetstream.ErrKeyExists) {
			// Our own lease from before a NATS outage: take it up again
			// rather than wait for it to expire.
			if e, gerr := kv.Get(ctx, key); gerr == nil && string(e.Value()) == holder {
				rev, err = kv.Update(ctx, key, []byte(holder), e.Revision())
			}
		}
		if err != nil {
			if !errors.Is(err, jetstream.ErrKeyExists) && ctx.Err() == nil {
				log.Warn("lease not available", "source", name, "err", err)
			}
			clock.Sleep(ctx, LeaseTTL/5)
			continue
		}
		log.Info("lease acquired; source running", "source", name)
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- fn(runCtx) }()
		ticker := time.NewTicker(LeaseTTL / 3)
	hold:
		for {
			select {
			case err := <-done:
				ticker.Stop()
				cancel()
				_ = kv.Delete(context.Background(), key, jetstream.LastRevision(rev))
				if ctx.Err() != nil {
					return nil
				}
				if err == nil {
					return nil // the source has nothing to run (e.g. polling disabled)
				}
				log.Error("source stopped; restarting", "source", name, "err", err)
				clock.Sleep(ctx, time.Second)
				break hold
			case <-ticker.C:
				nrev, err := kv.Update(ctx, key, []byte(holder), rev)
				if err != nil {
					if ctx.Err() != nil {
						continue
					}
					// Lost the lease (expired while NATS was away, or taken):
					// stop the source before another replica starts it.
					log.Warn("lease lost; stopping source", "source", name, "err", err)
					cancel()
					<-done
					ticker.Stop()
					break hold
				}
				rev = nrev
			}
		}
	}
	return nil
}
