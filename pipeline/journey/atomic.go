package journey

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Atomic batch publish headers (ADR-50, nats-server 2.12+).
const (
	hdrBatchID     = "Nats-Batch-Id"
	hdrBatchSeq    = "Nats-Batch-Sequence"
	hdrBatchCommit = "Nats-Batch-Commit"
)

// MaxAtomicBatch is the server's default limit on messages per atomic batch.
const MaxAtomicBatch = 1000

// PublishAtomic stores msgs on one stream as a single atomic batch: all of
// them or none, with one fsync for the whole batch on a SyncAlways server.
// The stream must allow atomic publish (AllowAtomicPublish).
//
// Written by hand because nats.go v1.55 has no helper for it. Every message
// but the last is a plain publish; the server stages them and answers only
// the commit (the last message, sent as a request), with one PubAck for the
// batch or the reason it was refused. Messages are sent in order on one
// connection, which is what the server's gap detection expects. msgs get
// the batch headers added.
func PublishAtomic(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, msgs []*nats.Msg) (*jetstream.PubAck, error) {
	switch {
	case len(msgs) == 0:
		return nil, errors.New("atomic batch: no messages")
	case len(msgs) > MaxAtomicBatch:
		return nil, fmt.Errorf("atomic batch: %d messages, more than the server's limit of %d", len(msgs), MaxAtomicBatch)
	}
	var rnd [12]byte
	_, _ = rand.Read(rnd[:])
	id := hex.EncodeToString(rnd[:])
	for i, m := range msgs {
		if m.Header == nil {
			m.Header = nats.Header{}
		}
		m.Header.Set(hdrBatchID, id)
		m.Header.Set(hdrBatchSeq, strconv.Itoa(i+1))
		if i == len(msgs)-1 {
			m.Header.Set(hdrBatchCommit, "1")
			break
		}
		if err := nc.PublishMsg(m); err != nil {
			return nil, fmt.Errorf("atomic batch: message %d: %w", i+1, err)
		}
	}
	ack, err := js.PublishMsg(ctx, msgs[len(msgs)-1])
	if err != nil {
		return nil, fmt.Errorf("atomic batch of %d: %w", len(msgs), err)
	}
	return ack, nil
}
