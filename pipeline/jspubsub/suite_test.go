package jspubsub_test

import (
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"

	"github.com/samhub/samhub/pipeline/jspubsub"
)

// TestPubSub runs Watermill's universal Pub/Sub suite against a real
// in-process nats-server with SyncAlways.
//
// Features, and why:
//   - Persistent, ConsumerGroups (a group is a durable consumer name): true.
//   - GuaranteedOrder with a single subscriber: the suite runs with one
//     order key for every message, which is this package's strict mode;
//     several subscribers sharing one consumer split the stream, so the
//     multi-subscriber order test does not apply (see the package doc).
//   - ExactlyOnceDelivery: false — JetStream is at-least-once.
//   - NewSubscriberReceivesOldMessages: false — a new subscriber of the same
//     durable consumer continues where it stopped.
//   - RestartServiceCommand: none; the broker restart is covered by
//     TestServerRestartResumesDurableConsumer in this package instead.
func TestPubSub(t *testing.T) {
	b := startBroker(t)
	features := tests.Features{
		ConsumerGroups:                      true,
		ExactlyOnceDelivery:                 false,
		GuaranteedOrder:                     true,
		GuaranteedOrderWithSingleSubscriber: true,
		Persistent:                          true,
	}
	single := func(*message.Message) string { return "one-key" }
	newPubSub := func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
		_, js := b.connect(t)
		logger := watermill.NopLogger{}
		pub, err := jspubsub.NewPublisher(js, jspubsub.PublisherConfig{}, logger)
		if err != nil {
			t.Fatal(err)
		}
		sub, err := jspubsub.NewSubscriber(js, jspubsub.SubscriberConfig{
			Provision:    jspubsub.Provisioner(group, 5*time.Second, 1000),
			OrderKey:     single,
			NackDelay:    20 * time.Millisecond,
			CloseTimeout: 500 * time.Millisecond,
		}, logger)
		if err != nil {
			t.Fatal(err)
		}
		return pub, sub
	}
	tests.TestPubSub(t, features,
		func(t *testing.T) (message.Publisher, message.Subscriber) { return newPubSub(t, "default") },
		newPubSub,
	)
}
