package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	secrets "github.com/samhub/samhub/internal/secret"
)

// Rekeying the embedded store.
//
// nats-server can rewrap a store in place (JetStreamOldKey), but v2.15.3
// does not finish it: a stream that never held a message cannot be opened
// under the new key, and no durable consumer is carried over (its
// conversion handles a change of cipher, not of key): the server cannot
// open a destination's place in the letter stream. Rekey instead
// copies every stream, consumers included, through JetStream's own
// snapshot and restore: from a server on the old store and key into a
// server on a new store and key, both in this process, chunk by chunk in
// memory (a snapshot is plaintext, so it never touches the disk). Each
// stream's state and each consumer's position are compared before the
// new store takes the old one's place.

// RekeyResult says what Rekey copied and where the old store went.
type RekeyResult struct {
	Streams  []RekeyedStream
	OldStore string // the old store, renamed; remove it once the hub runs on the new key
}

// RekeyedStream is one stream as copied.
type RekeyedStream struct {
	Name      string
	Msgs      uint64
	Bytes     uint64
	Consumers int
}

// rekeyChunk is the snapshot chunk size; the server clamps it to 1 MiB.
const rekeyChunk = 256 << 10

// Rekey writes the store of e (encrypted with e's key, or not encrypted)
// anew under the key in newKeyFile, then puts the new store in its place
// and keeps the old one beside it. The hub must be stopped: the caller
// holds the data directory's lock (ClaimReplica). On any error before the
// swap the old store is untouched and the new one removed.
func Rekey(ctx context.Context, e EmbeddedOptions, newKeyFile string, log *slog.Logger) (*RekeyResult, error) {
	if e.StoreDir == "" {
		return nil, errors.New("nats.embedded.store_dir: empty")
	}
	if streams, err := storedStreams(e.StoreDir); err != nil {
		return nil, err
	} else if len(streams) == 0 {
		return nil, fmt.Errorf("nats.embedded.store_dir %s holds no streams: nothing to rekey", e.StoreDir)
	}
	if k, err := secrets.Read(newKeyFile, ""); err != nil {
		return nil, fmt.Errorf("new key: %w", err)
	} else if k == "" {
		return nil, fmt.Errorf("new key: %s is empty", newKeyFile)
	}
	newDir := e.StoreDir + ".rekey"
	if err := os.RemoveAll(newDir); err != nil { // left by an attempt that failed
		return nil, err
	}

	from := e
	from.Listen, from.ToolsPasswordFile = "", ""
	to := from
	to.StoreDir, to.KeyFile, to.KeyEnv = newDir, newKeyFile, ""

	src, err := startEmbedded(from, log, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("open the store with the current key: %w", err)
	}
	dst, err := startEmbedded(to, log, nil, nil)
	if err != nil {
		src.Server.Shutdown()
		return nil, fmt.Errorf("start a store with the new key: %w", err)
	}
	res, err := copyStreams(ctx, src, dst)
	for _, s := range []*Embedded{src, dst} {
		s.Server.Shutdown()
		s.Server.WaitForShutdown()
	}
	if err != nil {
		os.RemoveAll(newDir)
		return nil, err
	}
	res.OldStore = e.StoreDir + ".before-rekey-" + time.Now().UTC().Format("20060102T150405Z")
	if err := os.Rename(e.StoreDir, res.OldStore); err != nil {
		os.RemoveAll(newDir)
		return nil, fmt.Errorf("set the old store aside: %w", err)
	}
	if err := os.Rename(newDir, e.StoreDir); err != nil {
		// Put the old one back, so the hub starts as before.
		if rerr := os.Rename(res.OldStore, e.StoreDir); rerr != nil {
			return nil, fmt.Errorf("put the new store in place: %w; and the old store is at %s, move it back to %s", err, res.OldStore, e.StoreDir)
		}
		return nil, fmt.Errorf("put the new store in place: %w (the old store is back)", err)
	}
	if d, err := os.Open(filepath.Dir(e.StoreDir)); err == nil {
		_ = d.Sync() // the renames
		d.Close()
	}
	return res, nil
}

// copyStreams snapshots every stream of src and restores it into dst, then
// checks that dst holds the same messages and consumer positions.
func copyStreams(ctx context.Context, src, dst *Embedded) (*RekeyResult, error) {
	snc, err := src.Connect()
	if err != nil {
		return nil, err
	}
	defer snc.Close()
	dnc, err := dst.Connect()
	if err != nil {
		return nil, err
	}
	defer dnc.Close()
	sjs, err := jetstream.New(snc)
	if err != nil {
		return nil, err
	}
	djs, err := jetstream.New(dnc)
	if err != nil {
		return nil, err
	}
	var names []string
	for n := range sjs.StreamNames(ctx).Name() {
		names = append(names, n)
	}
	slices.Sort(names)
	res := &RekeyResult{}
	for _, name := range names {
		before, err := positions(ctx, sjs, name)
		if err != nil {
			return nil, fmt.Errorf("stream %s: %w", name, err)
		}
		if err := copyStream(ctx, snc, dnc, name); err != nil {
			return nil, fmt.Errorf("stream %s: %w", name, err)
		}
		after, err := positions(ctx, djs, name)
		if err != nil {
			return nil, fmt.Errorf("stream %s, after the copy: %w", name, err)
		}
		if d := before.differs(after); d != "" {
			return nil, fmt.Errorf("stream %s: the copy differs: %s", name, d)
		}
		res.Streams = append(res.Streams, RekeyedStream{Name: name, Msgs: before.state.Msgs, Bytes: before.state.Bytes, Consumers: len(before.consumers)})
	}
	return res, nil
}

// streamPositions is what must survive a copy: the stream's state and
// each durable consumer's place in it.
type streamPositions struct {
	state     jetstream.StreamState
	consumers map[string]consumerPosition
}

type consumerPosition struct {
	Delivered, AckFloor uint64 // stream sequences
	AckPending          int
	Redelivered         int
}

func positions(ctx context.Context, js jetstream.JetStream, name string) (*streamPositions, error) {
	st, err := js.Stream(ctx, name)
	if err != nil {
		return nil, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, err
	}
	p := &streamPositions{state: info.State, consumers: map[string]consumerPosition{}}
	cl := st.ListConsumers(ctx)
	for ci := range cl.Info() {
		p.consumers[ci.Name] = consumerPosition{Delivered: ci.Delivered.Stream, AckFloor: ci.AckFloor.Stream,
			AckPending: ci.NumAckPending, Redelivered: ci.NumRedelivered}
	}
	if err := cl.Err(); err != nil {
		return nil, fmt.Errorf("list consumers: %w", err)
	}
	return p, nil
}

// differs names the first difference between two streams' positions.
func (a *streamPositions) differs(b *streamPositions) string {
	sa, sb := a.state, b.state
	switch {
	case sa.Msgs != sb.Msgs:
		return fmt.Sprintf("%d messages, the copy %d", sa.Msgs, sb.Msgs)
	case sa.Msgs > 0 && (sa.FirstSeq != sb.FirstSeq || sa.LastSeq != sb.LastSeq):
		return fmt.Sprintf("sequences %d-%d, the copy %d-%d", sa.FirstSeq, sa.LastSeq, sb.FirstSeq, sb.LastSeq)
	case sa.Bytes != sb.Bytes:
		return fmt.Sprintf("%d bytes, the copy %d", sa.Bytes, sb.Bytes)
	}
	for name, ca := range a.consumers {
		cb, ok := b.consumers[name]
		switch {
		case !ok:
			return "consumer " + name + " missing"
		case ca != cb:
			return fmt.Sprintf("consumer %s at %+v, the copy at %+v", name, ca, cb)
		}
	}
	if len(b.consumers) != len(a.consumers) {
		return fmt.Sprintf("%d consumers, the copy %d", len(a.consumers), len(b.consumers))
	}
	return ""
}

// copyStream streams one stream's snapshot from src into a restore on
// dst: JetStream's snapshot API sends chunks to an inbox, each acked by a
// reply; the restore API takes chunks as requests and an empty one as the
// end.
func copyStream(ctx context.Context, src, dst *nats.Conn, name string) error {
	inbox := src.NewInbox()
	chunks, err := src.SubscribeSync(inbox)
	if err != nil {
		return err
	}
	defer chunks.Unsubscribe()
	var snap server.JSApiStreamSnapshotResponse
	if err := apiCall(ctx, src, fmt.Sprintf(server.JSApiStreamSnapshotT, name),
		server.JSApiStreamSnapshotRequest{DeliverSubject: inbox, ChunkSize: rekeyChunk}, &snap); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	if snap.Config == nil || snap.State == nil {
		return errors.New("snapshot: the server sent no configuration or state")
	}
	var rest server.JSApiStreamRestoreResponse
	if err := apiCall(ctx, dst, fmt.Sprintf(server.JSApiStreamRestoreT, name),
		server.JSApiStreamRestoreRequest{Config: *snap.Config, State: *snap.State}, &rest); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	for {
		m, err := chunks.NextMsgWithContext(ctx)
		if err != nil {
			return fmt.Errorf("snapshot: %w", err)
		}
		if len(m.Data) == 0 {
			// The end, or the server's error, in the status header.
			if st := m.Header.Get("Status"); st != "" && st != "204" {
				return fmt.Errorf("snapshot: the server ended it with %s %s", st, m.Header.Get("Description"))
			}
			break
		}
		r, err := dst.RequestWithContext(ctx, rest.DeliverSubject, m.Data)
		if err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		if len(r.Data) > 0 { // the restore's refusal
			return fmt.Errorf("restore: %w", apiError(r.Data))
		}
		if m.Reply == "" {
			continue // the last chunk: the server wants no ack
		}
		if err := m.Respond(nil); err != nil { // opens the snapshot's window
			return fmt.Errorf("snapshot: %w", err)
		}
	}
	r, err := dst.RequestWithContext(ctx, rest.DeliverSubject, nil)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	return apiError(r.Data)
}

// apiCall makes a JetStream API request and decodes its answer.
func apiCall(ctx context.Context, nc *nats.Conn, subject string, req, resp any) error {
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	m, err := nc.RequestWithContext(ctx, subject, b)
	if err != nil {
		return err
	}
	if err := apiError(m.Data); err != nil {
		return err
	}
	return json.Unmarshal(m.Data, resp)
}

// apiError is the error a JetStream API answer carries, if any.
func apiError(data []byte) error {
	var r server.ApiResponse
	if err := json.Unmarshal(data, &r); err != nil {
		return fmt.Errorf("unreadable answer from the server: %w", err)
	}
	if r.Error != nil {
		return r.Error
	}
	return nil
}
