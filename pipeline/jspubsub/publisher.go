package jspubsub

import (
	"context"
	"errors"
	"fmt"
	"net/textproto"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// MsgIDKey is the metadata key (and NATS header) JetStream de-duplicates on.
const MsgIDKey = jetstream.MsgIDHeader

// DefaultPublishTimeout bounds one Publish call when PublisherConfig.Timeout is zero.
const DefaultPublishTimeout = 10 * time.Second

// ErrClosed is returned by Publish and Subscribe after Close.
var ErrClosed = errors.New("jspubsub: closed")

// PublisherConfig configures a Publisher.
type PublisherConfig struct {
	// Timeout bounds one Publish call, from the first send to the last PubAck.
	// Zero means DefaultPublishTimeout.
	Timeout time.Duration
	// ExpectStream, when set, makes the server reject a publish whose subject
	// is not stored by this stream, so a missing or misrouted stream fails at
	// once instead of waiting for the timeout.
	ExpectStream string
}

// Publisher publishes Watermill messages to JetStream and returns only after
// every message is stored (PubAck received).
type Publisher struct {
	js     jetstream.JetStream
	cfg    PublisherConfig
	logger watermill.LoggerAdapter

	mu     sync.RWMutex
	closed bool
}

// NewPublisher returns a Publisher on js. A nil logger discards logs.
func NewPublisher(js jetstream.JetStream, cfg PublisherConfig, logger watermill.LoggerAdapter) (*Publisher, error) {
	if js == nil {
		return nil, errors.New("jspubsub: new publisher: jetstream context is nil")
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("jspubsub: new publisher: timeout: must not be negative, got %s", cfg.Timeout)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultPublishTimeout
	}
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	return &Publisher{js: js, cfg: cfg, logger: logger}, nil
}

// Publish stores msgs on the subject topic. The messages are sent pipelined
// and Publish waits for every PubAck; a nil error means every message is
// stored (a PubAck marked duplicate counts as stored: an earlier copy with the
// same Nats-Msg-Id is). The error names each message that failed by UUID and
// position.
func (p *Publisher) Publish(topic string, msgs ...*message.Message) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return ErrClosed
	}
	if topic == "" {
		return errors.New("jspubsub: publish: topic: must be a NATS subject, got an empty string")
	}
	if len(msgs) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.Timeout)
	defer cancel()

	// Build every NATS message first so one bad message rejects the whole
	// call before anything is sent.
	out := make([]*nats.Msg, len(msgs))
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		nm, id, err := toNATS(topic, m)
		if err != nil {
			return fmt.Errorf("jspubsub: publish to %q: message %s (index %d): %w", topic, m.UUID, i, err)
		}
		out[i], ids[i] = nm, id
	}

	futures := make([]jetstream.PubAckFuture, len(out))
	errs := make([]error, len(out))
	for i, nm := range out {
		opts := []jetstream.PublishOpt{jetstream.WithMsgID(ids[i])}
		if p.cfg.ExpectStream != "" {
			opts = append(opts, jetstream.WithExpectStream(p.cfg.ExpectStream))
		}
		futures[i], errs[i] = p.js.PublishMsgAsync(nm, opts...)
	}
	for i, f := range futures {
		if f == nil {
			continue
		}
		select {
		case ack := <-f.Ok():
			if ack.Duplicate {
				p.logger.Debug("publish was a duplicate; earlier copy is stored", watermill.LogFields{"uuid": msgs[i].UUID, "stream": ack.Stream, "seq": ack.Sequence})
			}
		case err := <-f.Err():
			errs[i] = err
		case <-ctx.Done():
			errs[i] = fmt.Errorf("no PubAck within %s: %w", p.cfg.Timeout, ctx.Err())
		}
	}
	return joinFailures(topic, msgs, errs)
}

// joinFailures reports which messages failed and why, or nil.
func joinFailures(topic string, msgs []*message.Message, errs []error) error {
	var failed []error
	for i, err := range errs {
		if err != nil {
			failed = append(failed, fmt.Errorf("message %s (index %d): %w", msgs[i].UUID, i, err))
		}
	}
	if len(failed) == 0 {
		return nil
	}
	return fmt.Errorf("jspubsub: publish to %q: %d of %d messages not stored: %w", topic, len(failed), len(msgs), errors.Join(failed...))
}

// Close makes further Publish calls fail with ErrClosed. It waits for running
// Publish calls and does not close the NATS connection it was given.
func (p *Publisher) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	return nil
}

// toNATS converts a Watermill message. It rejects metadata NATS cannot carry
// unchanged rather than letting nats.go trim or rewrite it silently.
func toNATS(subject string, m *message.Message) (*nats.Msg, string, error) {
	nm := nats.NewMsg(subject)
	nm.Data = m.Payload
	id := m.UUID
	for k, v := range m.Metadata {
		if k == MsgIDKey {
			id = v
			continue
		}
		if err := checkHeader(k, v); err != nil {
			return nil, "", err
		}
		nm.Header.Set(k, v)
	}
	if id == "" {
		return nil, "", fmt.Errorf("metadata %s: must not be empty when the message UUID is empty", MsgIDKey)
	}
	if err := checkValue(MsgIDKey, id); err != nil {
		return nil, "", err
	}
	return nm, id, nil
}

// checkHeader applies the rules of NATS ADR-4 as nats.go enforces them
// (nats.go only reports a bare ErrBadHeaderMsg for keys and rewrites values),
// and refuses server-interpreted Nats-* headers, which could roll up or purge
// a stream if they arrived through metadata.
func checkHeader(k, v string) error {
	if k == "" {
		return errors.New("metadata key: must not be empty")
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c < 33 || c > 126 || strings.IndexByte(`"()/,:;<=>?@[\]{}`, c) >= 0 {
			return fmt.Errorf("metadata key %q: byte %d (%q) is not allowed in a NATS header name (printable ASCII without separators)", k, i, c)
		}
	}
	if isReserved(k) {
		return fmt.Errorf("metadata key %q: Nats-* headers are reserved for the server (only %s may be set)", k, MsgIDKey)
	}
	return checkValue(k, v)
}

func isReserved(k string) bool { return len(k) >= 5 && strings.EqualFold(k[:5], "Nats-") }

func checkValue(k, v string) error {
	if strings.ContainsAny(v, "\r\n") {
		return fmt.Errorf("metadata %q: value contains a line break, which a NATS header cannot carry", k)
	}
	if textproto.TrimString(v) != v {
		return fmt.Errorf("metadata %q: value has leading or trailing white space, which NATS would strip", k)
	}
	return nil
}
