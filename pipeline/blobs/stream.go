package blobs

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/samhub/samhub/pipeline/broker"
	"github.com/samhub/samhub/pipeline/letter"
)

// Why the store writes and reads chunks itself rather than through
// jetstream.ObjectStore's Put and Get: Put publishes every chunk
// asynchronously with up to 4,000 unconfirmed, so the client's and the
// server's queues held most of a 100 MB blob while a synced store worked
// through them; Get pushes chunks through an ordered consumer as fast as
// the server sends them. Both held tens of megabytes per blob in flight.
// Here at most inFlight chunks are unconfirmed on a put, and a read asks
// for one chunk at a time (a direct get of the next message on the blob's
// chunk subject). The layout is the object store's own (chunks on
// $O.<bucket>.C.<nuid>, the description on $O.<bucket>.M.<name>, digest
// "SHA-256=…"), so the bucket stays an ordinary object store: listing,
// GetInfo, Delete, Status and the nats CLI work on it as before.

// inFlight is how many chunks of one put may wait for the server's
// confirmation: enough to keep a synced store busy, few enough that a
// 100 MB blob is never queued whole.
const inFlight = 4

func chunkSubject(nuid string) string { return "$O." + broker.BucketBlobs + ".C." + nuid }

func metaSubject(name string) string {
	return "$O." + broker.BucketBlobs + ".M." + base64.URLEncoding.EncodeToString([]byte(name))
}

// PutFrom stores the bytes open gives under name, their content address
// (sha256-<hex>), unless a blob of that name and size is stored already
// (then it only re-dates an old one, as Put does). size is their length.
// The bytes are read once, in chunks, and checked against name and size
// before the blob is named: a reader that gives other bytes than it
// promised (a file changed under it) fails the put and leaves nothing.
func (s *Store) PutFrom(ctx context.Context, name string, size int64, open letter.Opener) (string, error) {
	if !validName(name) {
		return "", fmt.Errorf("blob store: %q is not a content address", name)
	}
	info, err := s.obs.GetInfo(ctx, name)
	switch {
	case err == nil && info.Size == uint64(size):
		if time.Since(info.ModTime) < s.touchAfter {
			s.stored.WithLabelValues("existing").Inc()
			return RefPrefix + name, nil
		}
		// Re-dating publishes the blob's description again (one small
		// message); the chunks stay. If the collector deleted the blob
		// meanwhile, the update fails and the blob is stored anew.
		if err := s.touch(ctx, info); err == nil {
			s.stored.WithLabelValues("existing").Inc()
			return RefPrefix + name, nil
		} else if !errors.Is(err, jetstream.ErrUpdateMetaDeleted) {
			return "", err
		}
	case err != nil && !errors.Is(err, jetstream.ErrObjectNotFound):
		return "", fmt.Errorf("blob store: %w", err)
	}
	r, err := open(ctx)
	if err != nil {
		return "", fmt.Errorf("blob store: put %s: open: %w", name, err)
	}
	defer r.Close()
	if err := s.write(ctx, name, size, r); err != nil {
		return "", fmt.Errorf("blob store: put %s: %w", name, err)
	}
	s.stored.WithLabelValues("stored").Inc()
	return RefPrefix + name, nil
}

// write publishes r's bytes as the chunks of a new object and then its
// description. Chunks of a write that fails are purged.
func (s *Store) write(ctx context.Context, name string, size int64, r io.Reader) (err error) {
	done := transfers.begin()
	defer done()
	id := nuid.Next()
	subj := chunkSubject(id)
	defer func() {
		if err != nil {
			// Chunks without a description are never read; purge them so
			// they take no room (best effort: a crash leaves them, as it
			// would with the library's own Put).
			pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			_ = s.stream.Purge(pctx, jetstream.WithPurgeSubject(subj))
			cancel()
		}
	}()
	// A ring of inFlight+1 buffers: a buffer is reused only once the
	// publish that carried it was confirmed (a future keeps its message
	// for a resend until then).
	bufs := make([][]byte, inFlight+1)
	var pending []jetstream.PubAckFuture
	wait := func(f jetstream.PubAckFuture) error {
		select {
		case <-f.Ok():
			return nil
		case err := <-f.Err():
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	h := sha256.New()
	var total int64
	var chunks uint32
	for i := 0; ; i++ {
		if len(pending) == inFlight {
			if err := wait(pending[0]); err != nil {
				return err
			}
			pending = pending[1:]
		}
		b := bufs[i%len(bufs)]
		if b == nil {
			b = make([]byte, s.chunk)
			bufs[i%len(bufs)] = b
		}
		n, rerr := io.ReadFull(r, b)
		if rerr != nil && !errors.Is(rerr, io.EOF) && !errors.Is(rerr, io.ErrUnexpectedEOF) {
			return rerr
		}
		if n > 0 {
			h.Write(b[:n])
			total += int64(n)
			if total > size {
				return fmt.Errorf("the part is longer than its recorded %d bytes", size)
			}
			m := nats.NewMsg(subj)
			m.Data = b[:n]
			f, err := s.js.PublishMsgAsync(m, jetstream.WithExpectStream(s.streamName))
			if err != nil {
				return err
			}
			pending = append(pending, f)
			chunks++
		}
		if rerr != nil {
			break
		}
	}
	for _, f := range pending {
		if err := wait(f); err != nil {
			return err
		}
	}
	sum := h.Sum(nil)
	if total != size || "sha256-"+hex.EncodeToString(sum) != name {
		return fmt.Errorf("the part's bytes (%d) do not match its recorded size (%d) and digest", total, size)
	}
	info := jetstream.ObjectInfo{
		ObjectMeta: jetstream.ObjectMeta{Name: name, Opts: &jetstream.ObjectMetaOptions{ChunkSize: uint32(s.chunk)}},
		Bucket:     broker.BucketBlobs, NUID: id, Size: uint64(total), Chunks: chunks,
		Digest: "SHA-256=" + base64.URLEncoding.EncodeToString(sum),
	}
	data, err := json.Marshal(info)
	if err != nil {
		return err
	}
	m := nats.NewMsg(metaSubject(name))
	m.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
	m.Data = data
	if _, err := s.js.PublishMsg(ctx, m, jetstream.WithExpectStream(s.streamName)); err != nil {
		return err
	}
	return nil
}

// Open returns a reader over the named blob. It reads one chunk at a time,
// and checks the bytes against the name at the end: a reader of a damaged
// blob fails before it reports io.EOF. Errors wrap ErrMissing or
// ErrCorrupt when the bytes cannot be had; others are the store's and may
// pass (see Classify).
func (s *Store) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	if !validName(name) {
		return nil, fmt.Errorf("%w: %q is not a blob name", ErrMissing, name)
	}
	info, err := s.obs.GetInfo(ctx, name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrMissing, name)
	}
	if err != nil {
		return nil, fmt.Errorf("blob store: %w", err)
	}
	if info.NUID == "" {
		return nil, fmt.Errorf("%w: %s has no chunks", ErrCorrupt, name)
	}
	return &chunkReader{ctx: ctx, s: s, name: name, subj: chunkSubject(info.NUID), size: info.Size, seq: 1, h: sha256.New(), done: transfers.begin()}, nil
}

// chunkReader reads a blob's chunks in stream order.
type chunkReader struct {
	ctx  context.Context
	s    *Store
	name string
	subj string
	size uint64 // as recorded
	got  uint64
	seq  uint64 // where the next chunk is looked for
	buf  []byte
	h    hash.Hash
	err  error
	done func() // ends the transfer (see transfers); once
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	for len(r.buf) == 0 {
		if r.got == r.size {
			r.err = r.finish()
			r.done() // at the end, whether or not the caller closes
			return 0, r.err
		}
		if err := r.next(); err != nil {
			r.err = err
			r.done()
			return 0, err
		}
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// next fetches the next chunk.
func (r *chunkReader) next() error {
	m, err := r.s.stream.GetMsg(r.ctx, r.seq, jetstream.WithGetMsgSubject(r.subj))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		// A replica that has not caught up answers "not found" too: ask once
		// more before calling the blob damaged.
		select {
		case <-time.After(100 * time.Millisecond):
		case <-r.ctx.Done():
			return r.ctx.Err()
		}
		m, err = r.s.stream.GetMsg(r.ctx, r.seq, jetstream.WithGetMsgSubject(r.subj))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return fmt.Errorf("%w: %s: a chunk is missing after %d of %d bytes", ErrCorrupt, r.name, r.got, r.size)
		}
	}
	if err != nil {
		return fmt.Errorf("blob store: read %s: %w", r.name, err)
	}
	r.seq = m.Sequence + 1
	r.got += uint64(len(m.Data))
	if r.got > r.size {
		return fmt.Errorf("%w: %s: longer than recorded", ErrCorrupt, r.name)
	}
	r.h.Write(m.Data)
	r.buf = m.Data
	return nil
}

func (r *chunkReader) finish() error {
	if "sha256-"+hex.EncodeToString(r.h.Sum(nil)) != r.name {
		return fmt.Errorf("%w: %s", ErrCorrupt, r.name)
	}
	return io.EOF
}

func (r *chunkReader) Close() error {
	r.done()
	r.buf = nil
	if r.err == nil {
		r.err = errors.New("blob store: reader closed")
	}
	return nil
}

// Opener returns what opens the blob a Ref names, for a letter handed to a
// sink. Its readers fail as Open's do.
func (s *Store) Opener(ref string) letter.Opener {
	return func(ctx context.Context) (io.ReadCloser, error) {
		name := NameOf(ref)
		if name == "" {
			return nil, errBadRef
		}
		return s.Open(ctx, name)
	}
}

// Bind returns a copy of l whose parts kept in the blob store open from
// it; wrap, when not nil, wraps each opener (the pipeline watches reads
// through it). l itself is not changed: it may be shared (the decode
// cache). A letter with no refs is returned as it is.
func (s *Store) Bind(l *letter.Letter, wrap func(what string, o letter.Opener) letter.Opener) *letter.Letter {
	if !hasRefs(l) {
		return l
	}
	if wrap == nil {
		wrap = func(_ string, o letter.Opener) letter.Opener { return o }
	}
	c := *l
	if c.Original.Ref != "" && c.Original.Data == nil {
		c.Original = c.Original.WithOpener(wrap("the original", s.Opener(c.Original.Ref)))
	}
	c.Attachments = make([]letter.Attachment, len(l.Attachments))
	copy(c.Attachments, l.Attachments)
	for i := range c.Attachments {
		a := &c.Attachments[i]
		if a.Ref == "" || a.Data != nil {
			continue
		}
		*a = a.WithOpener(wrap(fmt.Sprintf("attachment %d", i+1), s.Opener(a.Ref)))
	}
	return &c
}
