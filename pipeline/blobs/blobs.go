// Package blobs keeps the large parts of letters (the original bytes and big
// attachments) in a JetStream Object Store, so that a letter of up to the
// MedCom adapter's 100 MB still fits in one message on the letter stream.
//
// JetStream stores one message in one file-store record, and nats-server
// refuses records over 32 MiB whatever a stream's max_msg_size says; a
// letter's JSON is about 3× its attachment (base64 of an XML that holds the
// attachment in base64, plus the decoded attachment in base64), so a 20 MB
// attachment could not be stored at all. The object store splits a blob into
// chunks of ChunkSize, each an ordinary small message.
//
// Blobs are content-addressed (sha256-<hex>): the same attachment stored
// twice, as in a MedCom resend, is one blob, and a put is idempotent. Blobs
// have no age limit of their own; Collect deletes those no letter can name
// any more. A stored letter names its blobs in Ref fields ("blob:sha256-…")
// with Data nil. Parts move as streams (stream.go): PutFrom stores what a
// source opens, chunk by chunk; Bind gives a sink's copy of the letter
// parts that open from the store as it sends, anew on every attempt.
// Resolve reads them in whole, into a copy, for the content view.
package blobs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/samhub/samhub/pipeline/broker"
	"github.com/samhub/samhub/pipeline/letter"
)

// RefPrefix starts every Ref the pipeline writes.
const RefPrefix = "blob:"

// Defaults for Options.
const (
	DefaultMinSize   = 64 << 10
	DefaultChunkSize = 1 << 20
	// DefaultTouchAfter: a blob reused by a new letter is re-dated when it
	// is older than this, so it lives as long as the newest letter naming
	// it. The collector's grace must exceed it (config checks blobs_grace).
	DefaultTouchAfter = time.Hour
)

// chunkHeaderRoom is what a chunk leaves of the server's max_payload for
// its headers (the expected stream: about 60 bytes).
const chunkHeaderRoom = 4 << 10

// Errors a read can end in. Both mean the letter cannot be delivered as
// stored: a retry will not bring the bytes back.
var (
	ErrMissing = errors.New("blob not in the blob store")
	ErrCorrupt = errors.New("blob content does not match its name")
	errBadRef  = fmt.Errorf("%w: the letter names a part by a ref that is not a blob name", ErrMissing)
)

// Options tune a Store; zero values take the defaults.
type Options struct {
	MinSize    int           // parts smaller than this stay inline
	ChunkSize  int           // object chunk size, capped at the connection's max payload
	TouchAfter time.Duration // see DefaultTouchAfter
	Registerer prometheus.Registerer
}

// Store reads and writes the hub's blob bucket.
type Store struct {
	obs        jetstream.ObjectStore
	js         jetstream.JetStream
	stream     jetstream.Stream // the bucket's stream, for chunk reads and purges
	streamName string
	minSize    int
	chunk      int
	touchAfter time.Duration
	stored     *prometheus.CounterVec
	bytes      prometheus.Gauge
}

// New opens the bucket broker.Provision made.
func New(ctx context.Context, js jetstream.JetStream, o Options) (*Store, error) {
	obs, err := js.ObjectStore(ctx, broker.BucketBlobs)
	if err != nil {
		return nil, fmt.Errorf("object store %s: %w", broker.BucketBlobs, err)
	}
	s := &Store{obs: obs, js: js, streamName: "OBJ_" + broker.BucketBlobs, minSize: o.MinSize, chunk: o.ChunkSize, touchAfter: o.TouchAfter}
	if s.stream, err = js.Stream(ctx, s.streamName); err != nil {
		return nil, fmt.Errorf("object store %s: %w", broker.BucketBlobs, err)
	}
	if s.minSize <= 0 {
		s.minSize = DefaultMinSize
	}
	if s.chunk <= 0 {
		s.chunk = DefaultChunkSize
	}
	// A chunk is one NATS message: with its headers it must fit the
	// server's max_payload (1 MB on a default external server), which
	// counts headers and data together.
	if mp := js.Conn().MaxPayload(); mp > 0 && int64(s.chunk) > mp-chunkHeaderRoom {
		s.chunk = int(mp - chunkHeaderRoom)
	}
	if s.touchAfter <= 0 {
		s.touchAfter = DefaultTouchAfter
	}
	s.stored = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "samhub_blobs_stored_total", Help: "Letter parts moved to the blob store, by result (stored: a new blob; existing: the same bytes were stored before)."}, []string{"result"})
	s.bytes = prometheus.NewGauge(prometheus.GaugeOpts{Name: "samhub_blob_bytes", Help: "Bytes held by the blob store (bucket samhub_blobs)."})
	if o.Registerer != nil {
		if err := o.Registerer.Register(s.stored); err != nil {
			return nil, err
		}
		if err := o.Registerer.Register(s.bytes); err != nil {
			return nil, err
		}
	}
	s.stored.WithLabelValues("stored")
	s.stored.WithLabelValues("existing")
	return s, nil
}

// Name is the content address of data.
func Name(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256-" + hex.EncodeToString(sum[:])
}

// NameOf returns the blob name a Ref holds, or "" for a Ref that is not one
// of ours.
func NameOf(ref string) string {
	name, ok := strings.CutPrefix(ref, RefPrefix)
	if !ok || !validName(name) {
		return ""
	}
	return name
}

func validName(name string) bool {
	h, ok := strings.CutPrefix(name, "sha256-")
	if !ok || len(h) != 64 {
		return false
	}
	_, err := hex.DecodeString(h)
	return err == nil
}

// Put stores data under its content address and returns the Ref to put in
// a letter. Storing bytes already there writes nothing (but re-dates an old
// blob, see DefaultTouchAfter).
func (s *Store) Put(ctx context.Context, data []byte) (string, error) {
	return s.PutFrom(ctx, Name(data), int64(len(data)), func(context.Context) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	})
}

func (s *Store) touch(ctx context.Context, info *jetstream.ObjectInfo) error {
	meta := info.ObjectMeta
	md := map[string]string{}
	for k, v := range meta.Metadata {
		md[k] = v
	}
	md["touched"] = time.Now().UTC().Format(time.RFC3339)
	meta.Metadata = md
	return s.obs.UpdateMeta(ctx, info.Name, meta)
}

// Touch re-dates the named blobs so they live as long as a letter stored
// now (a replayed letter is stored again). Missing blobs are skipped: the
// replayed letter then parks with blob_missing, visibly.
func (s *Store) Touch(ctx context.Context, names []string) error {
	for _, n := range names {
		info, err := s.obs.GetInfo(ctx, n)
		if errors.Is(err, jetstream.ErrObjectNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("blob store: %w", err)
		}
		if time.Since(info.ModTime) < s.touchAfter {
			continue
		}
		if err := s.touch(ctx, info); err != nil && !errors.Is(err, jetstream.ErrUpdateMetaDeleted) {
			return fmt.Errorf("blob store: %w", err)
		}
	}
	return nil
}

// Get reads a blob whole, into one buffer of its exact size, and checks its
// bytes against its name. It fails with ErrMissing or ErrCorrupt when the
// bytes cannot be had; any other error is the store's and may pass. Only
// for blobs known to be small and for tests: senders stream from Open.
func (s *Store) Get(ctx context.Context, name string) ([]byte, error) {
	r, err := s.Open(ctx, name)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	info, err := s.obs.GetInfo(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("blob store: %w", err)
	}
	// One allocation of the right size instead of a growing buffer.
	buf := make([]byte, info.Size)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, s.readErr(name, err)
	}
	if n, err := r.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
		if err == nil || errors.Is(err, io.EOF) {
			err = fmt.Errorf("%w: %s: longer than recorded", ErrCorrupt, name)
		}
		return nil, s.readErr(name, err)
	}
	return buf, nil
}

func (s *Store) readErr(name string, err error) error {
	if errors.Is(err, ErrCorrupt) || errors.Is(err, ErrMissing) {
		return err
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %s: %v", ErrCorrupt, name, err)
	}
	return fmt.Errorf("blob store: read %s: %w", name, err)
}

// Delete removes a blob (tests and the collector).
func (s *Store) Delete(ctx context.Context, name string) error {
	err := s.obs.Delete(ctx, name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil
	}
	return err
}

// Exists reports whether a blob is stored.
func (s *Store) Exists(ctx context.Context, name string) (bool, error) {
	_, err := s.obs.GetInfo(ctx, name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return false, nil
	}
	return err == nil, err
}

// UpdateGauge sets samhub_blob_bytes from the bucket's status.
func (s *Store) UpdateGauge(ctx context.Context) {
	if st, err := s.obs.Status(ctx); err == nil {
		s.bytes.Set(float64(st.Size()))
	}
}

// Refs lists the blob names a stored letter refers to, without repeats.
func Refs(l *letter.Letter) []string {
	var out []string
	add := func(ref string) {
		if n := NameOf(ref); n != "" {
			for _, o := range out {
				if o == n {
					return
				}
			}
			out = append(out, n)
		}
	}
	add(l.Original.Ref)
	for _, a := range l.Attachments {
		add(a.Ref)
	}
	return out
}

// InlineSize is about how many bytes l takes as JSON (letter.Marshal), the
// parts counted by the base64 length of their bytes, without encoding or
// reading them: the decision to move parts out must not cost a copy of the
// whole letter. A part already named by a Ref counts as its Ref.
func InlineSize(l *letter.Letter) (int, error) {
	c := *l
	c.Original.Data = nil
	c.Attachments = make([]letter.Attachment, len(l.Attachments))
	n := 0
	for i, a := range l.Attachments {
		if a.Ref == "" {
			n += b64Len(int(a.Len()))
		}
		a.Data = nil
		c.Attachments[i] = a
	}
	if l.Original.Ref == "" {
		n += b64Len(int(l.Original.Len()))
	}
	rest, err := letter.Marshal(&c)
	if err != nil {
		return 0, err
	}
	return n + len(rest), nil
}

// b64Len is what encoding/json writes for a []byte of n bytes: standard
// base64 in quotes, with its `"data":` key.
func b64Len(n int) int {
	if n == 0 {
		return 0
	}
	return (n+2)/3*4 + len(`"data":"",`)
}

// Externalise returns a copy of l in which the original and every
// attachment of at least MinSize bytes are stored as blobs and named by
// Ref, their Data nil. A part a source gave as something to open (a file
// it has not read) is stored from its reader, checked against the size and
// digest the source recorded. l itself is not changed. The blobs are
// stored before the copy is returned, so a letter stored afterwards never
// names a blob that is not there.
func (s *Store) Externalise(ctx context.Context, l *letter.Letter) (*letter.Letter, error) {
	c := *l
	if o := l.Original; o.Ref == "" && (o.Streamed() || o.Len() >= int64(s.minSize)) {
		ref, sum, err := s.putPart(ctx, o.Data, o.SHA256, o.Len(), o.Open)
		if err != nil {
			return nil, fmt.Errorf("the original: %w", err)
		}
		c.Original = o.WithOpener(nil)
		c.Original.Ref, c.Original.SHA256, c.Original.Size = ref, sum, o.Len()
	}
	if len(l.Attachments) > 0 {
		c.Attachments = make([]letter.Attachment, len(l.Attachments))
		copy(c.Attachments, l.Attachments)
		for i := range c.Attachments {
			a := c.Attachments[i]
			if a.Ref != "" || (!a.Streamed() && a.Len() < int64(s.minSize)) {
				continue
			}
			ref, sum, err := s.putPart(ctx, a.Data, a.SHA256, a.Len(), a.Open)
			if err != nil {
				return nil, fmt.Errorf("attachment %d: %w", i+1, err)
			}
			size := a.Len()
			a = a.WithOpener(nil)
			a.Ref, a.SHA256, a.Size = ref, sum, size
			c.Attachments[i] = a
		}
	}
	return &c, nil
}

// putPart stores one part: inline bytes under their digest, or what open
// gives under the digest the source recorded (hex SHA-256).
func (s *Store) putPart(ctx context.Context, data []byte, sum string, size int64, open letter.Opener) (ref, digest string, err error) {
	if data != nil {
		ref, err := s.Put(ctx, data)
		return ref, strings.TrimPrefix(NameOf(ref), "sha256-"), err
	}
	if len(sum) != 64 {
		return "", "", errors.New("a part to be read from its source carries no SHA-256")
	}
	ref, err = s.PutFrom(ctx, "sha256-"+sum, size, open)
	return ref, sum, err
}

// Load returns a copy of l whose parts that a source gave as something to
// open are read into Data: for a letter small enough to be stored inline.
// l itself is not changed.
func Load(ctx context.Context, l *letter.Letter) (*letter.Letter, error) {
	c := *l
	if o := l.Original; o.Streamed() {
		b, err := letter.ReadAll(ctx, o.Open)
		if err != nil {
			return nil, fmt.Errorf("the original: %w", err)
		}
		c.Original = o.WithOpener(nil)
		c.Original.Data, c.Original.Size = b, 0
	}
	c.Attachments = make([]letter.Attachment, len(l.Attachments))
	copy(c.Attachments, l.Attachments)
	for i, a := range c.Attachments {
		if !a.Streamed() {
			continue
		}
		b, err := letter.ReadAll(ctx, a.Open)
		if err != nil {
			return nil, fmt.Errorf("attachment %d: %w", i+1, err)
		}
		a = a.WithOpener(nil)
		a.Data = b
		c.Attachments[i] = a
	}
	return &c, nil
}

// Resolve returns l with every Ref replaced by its bytes, as a copy: l may
// be shared (the decode cache) and is never changed. A letter with no refs
// is returned as it is. Only for views that must show the bytes; a sink
// gets Bind's letter and reads from the store as it sends. Errors are
// classified as Classify does.
func (s *Store) Resolve(ctx context.Context, l *letter.Letter) (*letter.Letter, error) {
	if !hasRefs(l) {
		return l, nil
	}
	c := *l
	if c.Original.Ref != "" && c.Original.Data == nil {
		b, err := s.get(ctx, c.Original.Ref)
		if err != nil {
			return nil, err
		}
		c.Original.Data, c.Original.Ref = b, ""
	}
	c.Attachments = make([]letter.Attachment, len(l.Attachments))
	copy(c.Attachments, l.Attachments)
	for i := range c.Attachments {
		a := &c.Attachments[i]
		if a.Ref == "" || a.Data != nil {
			continue
		}
		b, err := s.get(ctx, a.Ref)
		if err != nil {
			return nil, err
		}
		a.Data, a.Ref = b, ""
	}
	return &c, nil
}

// hasRefs is true when any part is named by a Ref instead of carried: ours
// or not, it must be resolved (an unknown Ref fails rather than reaching a
// sink as an empty file).
func hasRefs(l *letter.Letter) bool {
	if l.Original.Ref != "" && l.Original.Data == nil {
		return true
	}
	for _, a := range l.Attachments {
		if a.Ref != "" && a.Data == nil {
			return true
		}
	}
	return false
}

func (s *Store) get(ctx context.Context, ref string) ([]byte, error) {
	name := NameOf(ref)
	if name == "" {
		return nil, Classify(errBadRef)
	}
	b, err := s.Get(ctx, name)
	if err != nil {
		return nil, Classify(err)
	}
	return b, nil
}

// ReadError is a failed read of a blob, classified for the delivery loop:
// a missing or damaged blob is permanent (code blob_missing, the letter
// parks: a retry will not bring the bytes back), trouble reaching the
// store is not (blob_unavailable). The package knows no adapter; the
// pipeline turns it into the sink's error class where it calls a sink.
// Reason is plain language without personal data.
type ReadError struct {
	Permanent bool
	Code      string
	Reason    string
	Err       error
}

func (e *ReadError) Error() string {
	class := "retryable"
	if e.Permanent {
		class = "permanent"
	}
	if e.Err == nil {
		return class + ": " + e.Reason
	}
	return fmt.Sprintf("%s: %s: %v", class, e.Reason, e.Err)
}

func (e *ReadError) Unwrap() error { return e.Err }

// Classify turns a failed read of a blob into a *ReadError.
func Classify(err error) *ReadError {
	switch {
	case errors.Is(err, errBadRef):
		return &ReadError{Permanent: true, Code: "blob_missing", Reason: "the letter names a stored part the hub does not recognise; it cannot be delivered as stored", Err: err}
	case errors.Is(err, ErrMissing):
		return &ReadError{Permanent: true, Code: "blob_missing", Reason: "a stored part of the letter (its original or an attachment) is missing from the hub's blob store", Err: err}
	case errors.Is(err, ErrCorrupt):
		return &ReadError{Permanent: true, Code: "blob_missing", Reason: "a stored part of the letter (its original or an attachment) is damaged in the hub's blob store", Err: err}
	}
	return &ReadError{Code: "blob_unavailable", Reason: "the hub's blob store did not answer", Err: err}
}
