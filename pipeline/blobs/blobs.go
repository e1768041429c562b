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
// with Data nil; Resolve fills Data back in, into a copy, for a sink.
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

	"github.com/samhub/samhub/adapters"
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

// Errors a read can end in. Both mean the letter cannot be delivered as
// stored: a retry will not bring the bytes back.
var (
	ErrMissing = errors.New("blob not in the blob store")
	ErrCorrupt = errors.New("blob content does not match its name")
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
	s := &Store{obs: obs, minSize: o.MinSize, chunk: o.ChunkSize, touchAfter: o.TouchAfter}
	if s.minSize <= 0 {
		s.minSize = DefaultMinSize
	}
	if s.chunk <= 0 {
		s.chunk = DefaultChunkSize
	}
	// A chunk is one NATS message: it must fit the server's max_payload
	// (1 MB on a default external server).
	if mp := js.Conn().MaxPayload(); mp > 0 && int64(s.chunk) > mp {
		s.chunk = int(mp)
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
	name := Name(data)
	info, err := s.obs.GetInfo(ctx, name)
	switch {
	case err == nil && info.Size == uint64(len(data)):
		if time.Since(info.ModTime) < s.touchAfter {
			s.stored.WithLabelValues("existing").Inc()
			return RefPrefix + name, nil
		}
		// Re-dating publishes the blob's metadata again (one small
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
	_, err = s.obs.Put(ctx, jetstream.ObjectMeta{Name: name, Opts: &jetstream.ObjectMetaOptions{ChunkSize: uint32(s.chunk)}}, bytes.NewReader(data))
	if err != nil {
		return "", fmt.Errorf("blob store: put %s: %w", name, err)
	}
	s.stored.WithLabelValues("stored").Inc()
	return RefPrefix + name, nil
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
// bytes cannot be had; any other error is the store's and may pass.
func (s *Store) Get(ctx context.Context, name string) ([]byte, error) {
	if !validName(name) {
		return nil, fmt.Errorf("%w: %q is not a blob name", ErrMissing, name)
	}
	res, err := s.obs.Get(ctx, name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrMissing, name)
	}
	if err != nil {
		return nil, fmt.Errorf("blob store: %w", err)
	}
	defer res.Close()
	info, err := res.Info()
	if err != nil {
		return nil, fmt.Errorf("blob store: %w", err)
	}
	// One allocation of the right size instead of a growing buffer (which
	// would hold up to twice the blob while it grows).
	buf := make([]byte, info.Size)
	if _, err := io.ReadFull(res, buf); err != nil {
		return nil, s.readErr(name, err)
	}
	// Read to EOF: the library checks its stored digest there.
	var one [1]byte
	if n, err := res.Read(one[:]); n != 0 || !errors.Is(err, io.EOF) {
		if err == nil || errors.Is(err, io.EOF) {
			err = errors.New("longer than recorded")
		}
		return nil, s.readErr(name, err)
	}
	if Name(buf) != name {
		return nil, fmt.Errorf("%w: %s", ErrCorrupt, name)
	}
	return buf, nil
}

func (s *Store) readErr(name string, err error) error {
	if errors.Is(err, jetstream.ErrDigestMismatch) || errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(err.Error(), "longer than recorded") {
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
// byte fields counted by their base64 length, without encoding them: the
// decision to move parts out must not cost a copy of the whole letter.
func InlineSize(l *letter.Letter) (int, error) {
	c := *l
	c.Original.Data = nil
	c.Attachments = make([]letter.Attachment, len(l.Attachments))
	n := 0
	for i, a := range l.Attachments {
		a.Data = nil
		c.Attachments[i] = a
		n += b64Len(len(l.Attachments[i].Data))
	}
	n += b64Len(len(l.Original.Data))
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
// Ref, their Data nil. l itself is not changed. The blobs are stored before
// the copy is returned, so a letter stored afterwards never names a blob
// that is not there.
func (s *Store) Externalise(ctx context.Context, l *letter.Letter) (*letter.Letter, error) {
	c := *l
	if len(l.Original.Data) >= s.minSize {
		ref, err := s.Put(ctx, l.Original.Data)
		if err != nil {
			return nil, err
		}
		if c.Original.SHA256 == "" {
			c.Original.SHA256 = letter.Digest(l.Original.Data)
		}
		c.Original.Data, c.Original.Ref = nil, ref
	}
	if len(l.Attachments) > 0 {
		c.Attachments = make([]letter.Attachment, len(l.Attachments))
		copy(c.Attachments, l.Attachments)
		for i := range c.Attachments {
			a := &c.Attachments[i]
			if len(a.Data) < s.minSize {
				continue
			}
			ref, err := s.Put(ctx, a.Data)
			if err != nil {
				return nil, err
			}
			if a.SHA256 == "" {
				a.SHA256 = letter.Digest(a.Data)
			}
			if a.Size == 0 {
				a.Size = int64(len(a.Data))
			}
			a.Data, a.Ref = nil, ref
		}
	}
	return &c, nil
}

// Resolve returns l with every Ref replaced by its bytes, as a copy: l may
// be shared (the decode cache) and is never changed. A letter with no refs
// is returned as it is. Errors are classified for the delivery loop: a
// missing or damaged blob is permanent (code blob_missing, the letter
// parks), trouble reaching the store is retryable (blob_unavailable).
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
		return nil, adapters.Permanent("blob_missing", "the letter names a stored part the hub does not recognise; it cannot be delivered as stored", fmt.Errorf("%w: bad ref", ErrMissing))
	}
	b, err := s.Get(ctx, name)
	switch {
	case errors.Is(err, ErrMissing):
		return nil, adapters.Permanent("blob_missing", "a stored part of the letter (its original or an attachment) is missing from the hub's blob store", err)
	case errors.Is(err, ErrCorrupt):
		return nil, adapters.Permanent("blob_missing", "a stored part of the letter (its original or an attachment) is damaged in the hub's blob store", err)
	case err != nil:
		return nil, adapters.Retryable("blob_unavailable", "the hub's blob store did not answer", err)
	}
	return b, nil
}
