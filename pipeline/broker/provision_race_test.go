package broker_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/samhub/samhub/internal/natstest"
	"github.com/samhub/samhub/pipeline/broker"
)

// TestTwoReplicasProvisionAtOnce starts two hubs' provisioning at once on
// a fresh 3-node cluster, as two replicas do after a restore into a new
// cluster. A request about a stream the other replica was making went
// unanswered and waited out the whole start: one replica exited with
// "bucket samhub_leases: context deadline exceeded".
func TestTwoReplicasProvisionAtOnce(t *testing.T) {
	urls := natstest.StartCluster(t)
	s := broker.Streams{LettersMaxBytes: 64 << 20, LettersMaxAge: time.Hour, DedupWindow: time.Minute,
		ParkedMaxBytes: 64 << 20, JourneyMaxBytes: 64 << 20, JourneyMaxAge: time.Hour, AuditMaxBytes: 64 << 20, AuditMaxAge: time.Hour,
		MaxMsgSize: 1 << 20, BlobsMaxBytes: 64 << 20}
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			nc, err := nats.Connect(urls)
			if err != nil {
				errs <- err
				return
			}
			defer nc.Close()
			js, _ := jetstream.New(nc)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // as serve waits
			defer cancel()
			errs <- broker.Provision(ctx, js, s, 3)
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
