package broker

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/samhub/samhub/internal/state"
)

// StateStore is the adapters' durable state (adapters.StateStore, checked
// in the package's tests) on a JetStream KV bucket, with every key prefixed
// by the adapter instance so adapters cannot see each other's state.
type StateStore struct {
	js     jetstream.JetStream
	kv     jetstream.KeyValue
	stream jetstream.Stream // the bucket's, for Delete
	prefix string
}

// NewStateStore opens the state bucket for one adapter instance.
func NewStateStore(ctx context.Context, js jetstream.JetStream, instance string) (*StateStore, error) {
	kv, err := js.KeyValue(ctx, BucketState)
	if err != nil {
		return nil, fmt.Errorf("state bucket: %w", err)
	}
	st, err := js.Stream(ctx, "KV_"+BucketState)
	if err != nil {
		return nil, fmt.Errorf("state bucket: %w", err)
	}
	return &StateStore{js: js, kv: kv, stream: st, prefix: instance + "."}, nil
}

func (s *StateStore) key(k string) (string, error) {
	if k == "" || strings.ContainsAny(k, " *>\t\r\n") {
		return "", fmt.Errorf("state key %q: must match [A-Za-z0-9_=.-]+", k)
	}
	return s.prefix + k, nil
}

func (s *StateStore) Get(ctx context.Context, k string) ([]byte, uint64, error) {
	key, err := s.key(k)
	if err != nil {
		return nil, 0, err
	}
	e, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return nil, 0, state.ErrNotFound
	}
	if err != nil {
		return nil, 0, err
	}
	return e.Value(), e.Revision(), nil
}

func (s *StateStore) Put(ctx context.Context, k string, v []byte) (uint64, error) {
	key, err := s.key(k)
	if err != nil {
		return 0, err
	}
	return s.kv.Put(ctx, key, v)
}

func (s *StateStore) Create(ctx context.Context, k string, v []byte) (uint64, error) {
	key, err := s.key(k)
	if err != nil {
		return 0, err
	}
	rev, err := s.kv.Create(ctx, key, v)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return 0, state.ErrExists
	}
	return rev, err
}

func (s *StateStore) Update(ctx context.Context, k string, v []byte, rev uint64) (uint64, error) {
	key, err := s.key(k)
	if err != nil {
		return 0, err
	}
	n, err := s.kv.Update(ctx, key, v, rev)
	if err != nil && IsConflict(err) {
		return 0, state.ErrConflict
	}
	return n, err
}

// Delete purges the key's subject rather than writing a delete marker: a
// marker would stay for good, and each costs the server about 150 bytes of
// memory for its subject, one per letter for keys an adapter keeps per
// letter until it is answered (the MedCom outbox). No adapter watches its
// state, so no reader misses the marker; an Update holding the key's old
// revision still fails, as the subject's last sequence is then 0.
func (s *StateStore) Delete(ctx context.Context, k string) error {
	key, err := s.key(k)
	if err != nil {
		return err
	}
	return s.stream.Purge(ctx, jetstream.WithPurgeSubject("$KV."+BucketState+"."+key))
}

// Scan reads the last value of every key under prefix through one
// consumer on the bucket's stream (Scan in scan.go): a few requests
// however many keys, where a Get per key costs a round trip each, on a
// cluster a network one. Not nats.go's KV watcher: it ends on the server's
// count of what it will deliver, and a key purged (Delete) between that
// count and the delivery is never delivered, so the watcher waits for
// ever, and with it the adapter's loop. Scan's fetch ends on a short wait
// instead. On a cluster a key deleted a moment before can still be listed:
// a purge adds no sequence that the scan's replica could be seen to lack,
// so callers treat it as a key deleted during the scan (a later Update or
// Get finds it gone).
func (s *StateStore) Scan(ctx context.Context, prefix string) ([]state.Entry, error) {
	if prefix != "" && (!strings.HasSuffix(prefix, ".") || strings.ContainsAny(prefix, " *>\t\r\n")) {
		return nil, fmt.Errorf("state prefix %q: must be empty or keys' first tokens ending in a dot", prefix)
	}
	subjects := "$KV." + BucketState + "." + s.prefix
	var out []state.Entry
	at := map[string]int{} // key → its index in out
	var bad error
	err := Scan(ctx, s.js, "KV_"+BucketState, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subjects + prefix + ">"},
		DeliverPolicy:  jetstream.DeliverLastPerSubjectPolicy,
	}, 0, func(m jetstream.Msg) bool {
		if op := m.Headers().Get(kvOperationHeader); op == "DEL" || op == "PURGE" {
			return true // a delete marker of earlier versions
		}
		md, err := m.Metadata()
		if err != nil {
			bad = fmt.Errorf("state scan: %w", err)
			return false
		}
		e := state.Entry{Key: strings.TrimPrefix(m.Subject(), subjects), Value: m.Data(), Revision: md.Sequence.Stream}
		// A key purged during the scan can let a write made since in under
		// the count, so a key could come twice: the newer, later, wins.
		if i, ok := at[e.Key]; ok {
			out[i] = e
			return true
		}
		at[e.Key] = len(out)
		out = append(out, e)
		return true
	})
	if err == nil {
		err = bad
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// kvOperationHeader marks a KV delete or purge message (nats.go's
// unexported kvop header, part of the KV protocol: ADR-8).
const kvOperationHeader = "KV-Operation"

// IsConflict reports whether a key-value write failed because the key's
// revision was not the one given (Update) or the key exists (Create). A
// replicated (R>1) bucket reports the conflict with error code 10164 rather
// than 10071; nats.go maps both to ErrKeyRevisionMismatch on Update, and
// the code is checked too for what it does not map.
func IsConflict(err error) bool {
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) &&
		(apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// unanswered are the errors of a call nobody answered in time: a server
// restarting, a stream electing its leader, a cut connection.
var unanswered = []error{context.DeadlineExceeded, nats.ErrTimeout, nats.ErrNoResponders, nats.ErrConnectionClosed,
	nats.ErrDisconnected, nats.ErrConnectionReconnecting, jetstream.ErrNoStreamResponse}

// IsUnavailable reports whether a JetStream call failed because the server
// or the stream's leader did not answer, not because of what was asked:
// the same call can succeed later. (A value too large, a bad key or a
// missing bucket are not: trying again changes nothing.) JetStream's own
// "temporarily unavailable" answers carry HTTP code 503.
func IsUnavailable(err error) bool {
	for _, e := range unanswered {
		if errors.Is(err, e) {
			return true
		}
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.Code == 503
}
