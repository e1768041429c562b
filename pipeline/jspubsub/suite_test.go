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
// in-process nats-server with SyncAlways, in strict order mode (one order key
// for every message).
//
// Features, and why:
//   - Persistent, ConsumerGroups (a group is a durable consumer name): true.
//   - GuaranteedOrder with a single subscriber: one key is this package's
//     strict mode; several subscribers sharing one consumer split the
//     stream, so the multi-subscriber order variant does not apply (see the
//     package doc).
//   - ExactlyOnceDelivery: false — JetStream is at-least-once.
//   - NewSubscriberReceivesOldMessages: false — a new subscriber of the same
//     durable consumer continues where it stopped, so that test is skipped.
//   - RestartServiceCommand: none, so the suite skips TestReconnect. It was
//     run (this binary restarting the in-process server through a loopback
//     hook) and passed the scenario, but the suite's assertion races: it
//     appends a message to its "published" list only after Publish returns,
//     while the subscriber may already have received it, so about one run in
//     six failed with one "extra" message. TestReconnectUnderLoad runs the
//     same scenario (restarts at 1/3 and 1/2 of the messages) without that
//     race.
//   - Full sizes (not ForceShort): the suite takes about 15 s here.
func TestPubSub(t *testing.T) {
	runSuite(t, func(*message.Message) string { return "one-key" }, true)
}

// TestPubSubConcurrent runs the suite with a nil OrderKey (every message its
// own key, full concurrency), where order is not guaranteed, so the suite's
// two order tests are skipped by its own rules.
func TestPubSubConcurrent(t *testing.T) {
	runSuite(t, nil, false)
}

func runSuite(t *testing.T, orderKey func(*message.Message) string, ordered bool) {
	b := startBroker(t)
	features := tests.Features{
		ConsumerGroups:                      true,
		ExactlyOnceDelivery:                 false,
		GuaranteedOrder:                     ordered,
		GuaranteedOrderWithSingleSubscriber: ordered,
		Persistent:                          true,
	}
	newPubSub := func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
		_, js := b.connect(t)
		logger := watermill.NopLogger{}
		pub, err := jspubsub.NewPublisher(js, jspubsub.PublisherConfig{}, logger)
		if err != nil {
			t.Fatal(err)
		}
		sub, err := jspubsub.NewSubscriber(js, jspubsub.SubscriberConfig{
			Provision:    jspubsub.Provisioner(group, 5*time.Second, 1000),
			OrderKey:     orderKey,
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
