package broker

import (
	"cmp"
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// scanIdle is how long the server keeps a scan's consumer when the scan
// could not delete it (the hub stopped half way): not the five minutes of
// an ordered consumer, since views poll and every scan makes one.
const scanIdle = 30 * time.Second

// Scan reads the messages a consumer with cfg sees now, in stream order,
// calling fn for each until fn returns false, max messages were read (0: no
// cap) or the messages present at the start are done. It is how the hub
// reads journeys, the retry queue, the audit log and letter searches.
//
// It reads through one ephemeral pull consumer without acknowledgements,
// deleted when the scan ends, rather than nats.go's ordered consumer: that
// one is created, then replaced on the first fetch, and left on the server
// for five minutes, so a console page that traces thirty letters every few
// seconds left hundreds of consumers that every publish on the stream had
// to be matched against. A scan is short and its reader gone when it ends,
// so the ordered consumer's gap recovery buys nothing here.
func Scan(ctx context.Context, js jetstream.JetStream, stream string, cfg jetstream.OrderedConsumerConfig, max uint64, fn func(jetstream.Msg) bool) error {
	cc := jetstream.ConsumerConfig{
		FilterSubjects:    cfg.FilterSubjects,
		DeliverPolicy:     cfg.DeliverPolicy,
		OptStartSeq:       cfg.OptStartSeq,
		OptStartTime:      cfg.OptStartTime,
		HeadersOnly:       cfg.HeadersOnly,
		AckPolicy:         jetstream.AckNonePolicy,
		InactiveThreshold: cmp.Or(cfg.InactiveThreshold, scanIdle),
		MemoryStorage:     true,
		Replicas:          1,
	}
	if len(cc.FilterSubjects) == 1 {
		// One filter goes in the older field, understood by every server.
		cc.FilterSubject, cc.FilterSubjects = cc.FilterSubjects[0], nil
	}
	cons, err := js.CreateConsumer(ctx, stream, cc)
	if err != nil {
		return err
	}
	defer func() {
		// Not the caller's context: a cancelled request still removes its
		// consumer; a failure leaves it to the inactive threshold.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_ = js.DeleteConsumer(dctx, stream, cons.CachedInfo().Name)
		cancel()
	}()
	info := cons.CachedInfo()
	pending := info.NumPending
	if max > 0 {
		pending = min(pending, max)
	}
	read := uint64(0)
	for pending > 0 {
		got, stop, err := fetch(cons, int(min(pending, 512)), 2*time.Second, fn)
		if err != nil || stop || got == 0 {
			return err
		}
		pending -= uint64(got)
		read += uint64(got)
	}
	// On a cluster the server may place the scan's consumer on a replica
	// that has not yet applied the stream's last writes (a key created a
	// moment ago), so its count at creation can be short, even 0. What
	// that replica applies next reaches the consumer as new messages:
	// wait for them a moment (CI run 47 saw a scan miss two keys written
	// just before it). A single server's count is exact; it pays nothing.
	if info.Cluster != nil && info.Cluster.Name != "" {
		for max == 0 || read < max {
			n := 512
			if max > 0 {
				n = int(min(max-read, 512))
			}
			got, stop, err := fetch(cons, n, clusterCatchUp, fn)
			if err != nil || stop || got == 0 {
				return err
			}
			read += uint64(got)
		}
	}
	return nil
}

// clusterCatchUp is how long a scan on a cluster waits for writes its
// consumer's replica had not applied when the scan began.
const clusterCatchUp = 100 * time.Millisecond

// fetch reads up to n messages into fn, waiting at most wait for the
// first; stop is fn's wish to end the scan.
func fetch(cons jetstream.Consumer, n int, wait time.Duration, fn func(jetstream.Msg) bool) (got int, stop bool, err error) {
	batch, err := cons.Fetch(n, jetstream.FetchMaxWait(wait))
	if err != nil {
		return 0, false, err
	}
	for m := range batch.Messages() {
		got++
		if !fn(m) {
			return got, true, nil
		}
	}
	if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
		return got, false, err
	}
	return got, false, nil
}
