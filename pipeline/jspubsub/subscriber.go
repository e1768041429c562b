package jspubsub

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go/jetstream"
)

// Defaults used when the SubscriberConfig field is zero.
const (
	DefaultMaxInFlight  = 256
	DefaultPullBatch    = 32
	DefaultNackDelay    = time.Second
	DefaultCloseTimeout = 30 * time.Second
	DefaultAckTimeout   = 5 * time.Second
	DefaultAckAttempts  = 3
	DefaultPullExpiry   = 2 * time.Second
)

// ProvisionFunc creates (or finds) the stream and durable consumer for a
// topic and names them.
type ProvisionFunc func(ctx context.Context, js jetstream.JetStream, topic string) (stream, consumer string, err error)

// SubscriberConfig configures a Subscriber. Exactly one of Consumer and
// Provision must be set.
type SubscriberConfig struct {
	// Consumer names the existing durable pull consumer a topic is read
	// from. Subscribe fails if it does not exist; it never creates one.
	Consumer func(topic string) (stream, consumer string)
	// Provision creates the stream and consumer on Subscribe (tests and
	// development; see Provisioner).
	Provision ProvisionFunc
	// Recreate, when set, is called when the consumer a subscription reads
	// is deleted under it (by hand, or lost with a cluster node's store),
	// until it returns nil; it should make the consumer again where the
	// caller wants reading to resume. The subscription then binds to it
	// and goes on, its channel open. Without Recreate the subscription
	// ends and its channel closes.
	Recreate func(ctx context.Context, topic string) error

	// OrderKey groups messages that must be handled one at a time in stream
	// order (for example the thread of a letter). Nil makes every message
	// its own group.
	OrderKey func(*message.Message) string

	// MaxInFlight bounds the messages one subscription holds: emitted to the
	// handler or waiting behind their key. Default 256.
	MaxInFlight int
	// PullBatch is how many messages nats.go buffers ahead of MaxInFlight.
	// Keep it small: buffered messages already count against AckWait.
	// Default min(32, MaxInFlight).
	PullBatch int
	// NackDelay is the pause before a nacked message is emitted again.
	// Default 1 s.
	NackDelay time.Duration
	// CloseTimeout is how long shutdown waits for handlers to ack or nack
	// the messages they hold. Default 30 s.
	CloseTimeout time.Duration
	// AckTimeout bounds one confirmed ack (DoubleAck) attempt; AckAttempts
	// is how many are made. Defaults 5 s and 3.
	AckTimeout  time.Duration
	AckAttempts int
	// PullExpiry is how long one pull request waits on the server. At
	// shutdown the subscriber waits this long before Nak-ing what it holds:
	// the server would otherwise hand a Nak'd message straight to the
	// stopped iterator's still-open pull request, where nobody reads it,
	// and it would come back only after AckWait. Default 2 s.
	PullExpiry time.Duration
}

func (c *SubscriberConfig) setDefaults() error {
	if (c.Consumer == nil) == (c.Provision == nil) {
		return errors.New("consumer/provision: exactly one of Consumer and Provision must be set")
	}
	for name, d := range map[string]time.Duration{"nack_delay": c.NackDelay, "close_timeout": c.CloseTimeout, "ack_timeout": c.AckTimeout} {
		if d < 0 {
			return fmt.Errorf("%s: must not be negative, got %s", name, d)
		}
	}
	if c.MaxInFlight < 0 || c.PullBatch < 0 || c.AckAttempts < 0 {
		return errors.New("max_in_flight/pull_batch/ack_attempts: must not be negative")
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.PullBatch == 0 {
		c.PullBatch = min(DefaultPullBatch, c.MaxInFlight)
	}
	if c.NackDelay == 0 {
		c.NackDelay = DefaultNackDelay
	}
	if c.CloseTimeout == 0 {
		c.CloseTimeout = DefaultCloseTimeout
	}
	if c.AckTimeout == 0 {
		c.AckTimeout = DefaultAckTimeout
	}
	if c.PullExpiry == 0 {
		c.PullExpiry = DefaultPullExpiry
	}
	if c.PullExpiry < time.Second {
		return fmt.Errorf("pull_expiry: must be at least 1s, got %s", c.PullExpiry)
	}
	if c.AckAttempts == 0 {
		c.AckAttempts = DefaultAckAttempts
	}
	return nil
}

// Subscriber reads durable JetStream pull consumers as Watermill messages.
type Subscriber struct {
	js     jetstream.JetStream
	cfg    SubscriberConfig
	logger watermill.LoggerAdapter

	mu      sync.Mutex
	closed  bool
	closing chan struct{}
	subs    map[*subscription]struct{}
	wg      sync.WaitGroup // one per running subscription
}

// NewSubscriber returns a Subscriber on js. A nil logger discards logs.
func NewSubscriber(js jetstream.JetStream, cfg SubscriberConfig, logger watermill.LoggerAdapter) (*Subscriber, error) {
	if js == nil {
		return nil, errors.New("jspubsub: new subscriber: jetstream context is nil")
	}
	if err := cfg.setDefaults(); err != nil {
		return nil, fmt.Errorf("jspubsub: new subscriber: %w", err)
	}
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	return &Subscriber{
		js: js, cfg: cfg, logger: logger,
		closing: make(chan struct{}),
		subs:    map[*subscription]struct{}{},
	}, nil
}

// Subscribe binds to the durable consumer for topic and returns its
// messages. The channel is closed after ctx is cancelled or Close is called
// and the subscription has shut down (see the package documentation).
func (s *Subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	cons, err := s.bind(ctx, topic)
	if err != nil {
		return nil, err
	}
	info := cons.CachedInfo()
	ackWait := info.Config.AckWait
	if len(info.Config.BackOff) > 0 && (ackWait == 0 || info.Config.BackOff[0] < ackWait) {
		ackWait = info.Config.BackOff[0] // BackOff replaces AckWait for the first delivery
	}
	if ackWait <= 0 {
		ackWait = 30 * time.Second // the server's default
	}
	iter, err := s.messages(cons)
	if err != nil {
		return nil, err
	}
	sub := newSubscription(s, ctx, iter, ackWait)
	sub.topic = topic

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		iter.Stop()
		return nil, ErrClosed
	}
	s.subs[sub] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()

	s.logger.Info("subscribed", watermill.LogFields{"topic": topic, "stream": info.Stream, "consumer": info.Name})
	go sub.run(ctx)
	return sub.out, nil
}

// messages starts pulling from cons.
func (s *Subscriber) messages(cons jetstream.Consumer) (jetstream.MessagesContext, error) {
	iter, err := cons.Messages(jetstream.PullMaxMessages(s.cfg.PullBatch), jetstream.PullExpiry(s.cfg.PullExpiry))
	if err != nil {
		info := cons.CachedInfo()
		return nil, fmt.Errorf("jspubsub: start pulling from consumer %q on stream %q: %w", info.Name, info.Stream, err)
	}
	return iter, nil
}

// bind finds (or, in provisioning mode, creates) the consumer and checks it
// is one this package can keep its promises on.
func (s *Subscriber) bind(ctx context.Context, topic string) (jetstream.Consumer, error) {
	var stream, name string
	if s.cfg.Provision != nil {
		var err error
		if stream, name, err = s.cfg.Provision(ctx, s.js, topic); err != nil {
			return nil, fmt.Errorf("jspubsub: subscribe %q: provision: %w", topic, err)
		}
	} else {
		stream, name = s.cfg.Consumer(topic)
	}
	if stream == "" || name == "" {
		return nil, fmt.Errorf("jspubsub: subscribe %q: no stream and consumer configured for this topic", topic)
	}
	cons, err := s.js.Consumer(ctx, stream, name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return nil, fmt.Errorf("jspubsub: subscribe %q: stream %q does not exist; provision it before starting: %w", topic, stream, err)
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		return nil, fmt.Errorf("jspubsub: subscribe %q: durable consumer %q on stream %q does not exist; provision it before starting: %w", topic, name, stream, err)
	case err != nil:
		return nil, fmt.Errorf("jspubsub: subscribe %q: look up consumer %q on stream %q: %w", topic, name, stream, err)
	}
	cc := cons.CachedInfo().Config
	if cc.Durable == "" {
		return nil, fmt.Errorf("jspubsub: subscribe %q: consumer %q on stream %q is not durable (the server deletes ephemeral consumers when idle); provision it with a Durable name", topic, name, stream)
	}
	if cc.AckPolicy != jetstream.AckExplicitPolicy {
		return nil, fmt.Errorf("jspubsub: subscribe %q: consumer %q on stream %q has ack policy %s; expected explicit", topic, name, stream, cc.AckPolicy)
	}
	return cons, nil
}

// SubscribeInitialize provisions topic in provisioning mode and checks that
// the consumer exists otherwise (Watermill's message.SubscribeInitializer).
func (s *Subscriber) SubscribeInitialize(topic string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := s.bind(ctx, topic)
	return err
}

// Held returns, per order key, how many messages wait behind an earlier
// message of the same key that is not yet acked. Keys without waiting
// messages are left out.
func (s *Subscriber) Held() map[string]int {
	s.mu.Lock()
	subs := make([]*subscription, 0, len(s.subs))
	for sub := range s.subs {
		subs = append(subs, sub)
	}
	s.mu.Unlock()
	held := map[string]int{}
	for _, sub := range subs {
		sub.held(held)
	}
	return held
}

// Close shuts every subscription down as described in the package
// documentation and waits for them. It is idempotent and safe to call
// concurrently with Subscribe. It does not close the NATS connection.
func (s *Subscriber) Close() error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.closing)
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

func (s *Subscriber) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

func (s *Subscriber) forget(sub *subscription) {
	s.mu.Lock()
	delete(s.subs, sub)
	s.mu.Unlock()
	s.wg.Done()
}

var (
	_ message.Subscriber           = (*Subscriber)(nil)
	_ message.SubscribeInitializer = (*Subscriber)(nil)
	_ message.Publisher            = (*Publisher)(nil)
)
