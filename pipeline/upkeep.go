package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/pipeline/broker"
)

// The hub's upkeep while it runs: gauges for IT operations and the blob
// collector.

func (h *Hub) gaugeLoop(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		h.updateGauges(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (h *Hub) updateGauges(ctx context.Context) {
	c, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if h.b.Conn.IsConnected() {
		h.m.natsConnected.Set(1)
	} else {
		h.m.natsConnected.Set(0)
	}
	if h.Ready(c) == nil {
		h.m.jsReady.Set(1)
	} else {
		h.m.jsReady.Set(0)
		return
	}
	for name := range h.dests {
		if ci, err := h.js.Consumer(c, broker.StreamLetters, ConsumerName(name)); err == nil {
			if info, err := ci.Info(c); err == nil {
				h.m.pending.WithLabelValues(name).Set(float64(info.NumPending + uint64(info.NumAckPending)))
				h.notePosition(c, name, info, false)
			}
		}
		h.m.held.WithLabelValues(name).Set(float64(len(h.subs[name].Held())))
	}
	// A failed count leaves the last figures rather than showing an empty queue.
	if stats, err := h.queue.Stats(c); err == nil {
		for name := range h.dests {
			h.m.parkedNow.WithLabelValues(name).Set(0)
			h.m.parkedOldest.WithLabelValues(name).Set(0)
		}
		for _, s := range stats {
			h.m.parkedNow.WithLabelValues(s.Destination).Set(float64(s.Count))
			if !s.Oldest.IsZero() {
				h.m.parkedOldest.WithLabelValues(s.Destination).Set(h.now().Sub(s.Oldest).Seconds())
			}
		}
	}
	h.blobs.UpdateGauge(c)
	for _, st := range []string{broker.StreamLetters, broker.StreamParked, broker.StreamJourney, broker.StreamAudit} {
		if s, err := h.js.Stream(c, st); err == nil {
			if info, err := s.Info(c); err == nil {
				h.m.storeBytes.WithLabelValues(st).Set(float64(info.State.Bytes))
			}
		}
	}
}

// blobCollectorLoop deletes, on the one replica holding the lease, the
// blobs no letter can name any more, every pipeline.blob_gc_interval (an
// hour by default). The time of the last run is kept in the state bucket,
// so restarts and a lease moving between replicas do not run it more often.
func (h *Hub) blobCollectorLoop(ctx context.Context) {
	kv, err := h.js.KeyValue(ctx, broker.BucketState)
	if err != nil {
		h.log.Error("blob collector not started", "err", err)
		return
	}
	const lastKey = "hub.blob-collector-last"
	every := h.opt.Settings.BlobGCInterval
	if every <= 0 {
		every = time.Hour
	}
	_ = broker.RunLeased(ctx, h.js, "blob-collector", h.holder, h.log, func(ctx context.Context) error {
		for {
			wait := time.Duration(0)
			if e, err := kv.Get(ctx, lastKey); err == nil {
				if last, err := time.Parse(time.RFC3339Nano, string(e.Value())); err == nil {
					wait = time.Until(last.Add(every))
				}
			}
			adapters.Sleep(ctx, wait)
			if ctx.Err() != nil {
				return nil
			}
			cutoff := h.now().Add(-h.opt.Streams.LettersMaxAge - h.opt.Settings.BlobsGrace)
			n, err := h.CollectBlobs(ctx, cutoff)
			if err != nil {
				h.log.Warn("blob collection failed; trying again next round", "err", err)
			} else {
				h.log.Info("blobs collected", "deleted", n)
			}
			if _, err := kv.Put(ctx, lastKey, []byte(h.now().UTC().Format(time.RFC3339Nano))); err != nil && ctx.Err() == nil {
				h.log.Warn("blob collector: last run not recorded", "err", err)
				adapters.Sleep(ctx, every)
			}
		}
	})
}

// CollectBlobs deletes the blobs dated before cutoff that no parked letter
// names (letters on the letter stream name only blobs dated after
// now − letters_max_age − blobs_grace, see blobs.Store.Collect), and
// returns how many it deleted. The hub calls it from its collector loop;
// operators and tests may call it directly.
func (h *Hub) CollectBlobs(ctx context.Context, cutoff time.Time) (int, error) {
	keep, err := h.parkedBlobs(ctx)
	if err != nil {
		return 0, err
	}
	return h.blobs.Collect(ctx, cutoff, keep)
}

// parkedHeader is retryq's entry header (retryq keeps its name private);
// only the blob names are read from it.
const parkedHeader = "Samhub-Parked"

// parkedBlobs reads the blob names of every parked entry, from headers
// only. Unlike broker.Scan it fails unless it saw every entry present: a
// missed entry would let its blobs be deleted.
func (h *Hub) parkedBlobs(ctx context.Context) (map[string]bool, error) {
	cons, err := h.js.OrderedConsumer(ctx, broker.StreamParked, jetstream.OrderedConsumerConfig{FilterSubjects: broker.ParkedFilter(""), HeadersOnly: true})
	if err != nil {
		return nil, err
	}
	keep := map[string]bool{}
	for {
		batch, err := cons.Fetch(512, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return nil, err
		}
		got := 0
		for m := range batch.Messages() {
			got++
			var e struct {
				Blobs []string `json:"blobs"`
			}
			if err := json.Unmarshal([]byte(m.Headers().Get(parkedHeader)), &e); err != nil {
				return nil, fmt.Errorf("parked entry without a readable header: %w", err)
			}
			for _, b := range e.Blobs {
				keep[b] = true
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return nil, err
		}
		if got > 0 {
			continue
		}
		info, err := cons.Info(ctx)
		if err != nil {
			return nil, err
		}
		if info.NumPending > 0 {
			return nil, errors.New("the retry queue could not be read to its end")
		}
		return keep, nil
	}
}
