package jspubsub

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Provisioner returns a ProvisionFunc for tests and development: it creates
// (or keeps) a file-storage stream that holds exactly the topic's subject,
// named after the topic, refusing new messages when full rather than
// dropping old ones, and a durable pull consumer named consumer with explicit
// acks, DeliverAll, the given AckWait and MaxAckPending. Production streams
// and consumers are provisioned by the pipeline's own code and bound with
// SubscriberConfig.Consumer.
func Provisioner(consumer string, ackWait time.Duration, maxAckPending int) ProvisionFunc {
	return func(ctx context.Context, js jetstream.JetStream, topic string) (string, string, error) {
		stream := StreamName(topic)
		_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:     stream,
			Subjects: []string{topic},
			Storage:  jetstream.FileStorage,
			Discard:  jetstream.DiscardNew,
		})
		if err != nil {
			return "", "", fmt.Errorf("create stream %q: %w", stream, err)
		}
		_, err = js.CreateOrUpdateConsumer(ctx, stream, jetstream.ConsumerConfig{
			Durable:       consumer,
			AckPolicy:     jetstream.AckExplicitPolicy,
			DeliverPolicy: jetstream.DeliverAllPolicy,
			AckWait:       ackWait,
			MaxAckPending: maxAckPending,
		})
		if err != nil {
			return "", "", fmt.Errorf("create consumer %q on stream %q: %w", consumer, stream, err)
		}
		return stream, consumer, nil
	}
}

// StreamName turns a subject into a valid stream name by replacing the
// characters stream names may not contain.
func StreamName(subject string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '.', '*', '>', ' ', '\t', '/', '\\':
			return '_'
		}
		return r
	}, subject)
}
