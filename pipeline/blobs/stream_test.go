package blobs_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/samhub/samhub/pipeline/blobs"
	"github.com/samhub/samhub/pipeline/broker"
	"github.com/samhub/samhub/pipeline/letter"
)

// fileLike is a part a source gives as something to open: every Open
// starts again, and counts.
type fileLike struct {
	data  []byte
	opens int
}

func (f *fileLike) open(context.Context) (io.ReadCloser, error) {
	f.opens++
	return io.NopCloser(bytes.NewReader(f.data)), nil
}

func hexDigest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// A letter whose parts a source gives as readers is stored from them and
// read back by a sink through Bind, chunk by chunk, with the bytes intact;
// the library's own object-store reader reads the same blob (the layout is
// the object store's).
func TestStreamedPartsStoreAndOpen(t *testing.T) {
	st, js := open(t, blobs.Options{ChunkSize: 256 << 10})
	ctx := context.Background()
	origBytes, attBytes := random(t, 3<<20+17), random(t, 5<<20+1)
	orig, att := &fileLike{data: origBytes}, &fileLike{data: attBytes}
	l := &letter.Letter{ID: "s-1", Kind: letter.KindReferral, Source: "medcom",
		Original:    letter.Original{ContentType: "application/fhir+xml", Size: int64(len(origBytes)), SHA256: hexDigest(origBytes)},
		Attachments: []letter.Attachment{letter.StreamedAttachment("scan.pdf", "application/pdf", int64(len(attBytes)), hexDigest(attBytes), att.open)},
	}
	l.Original = l.Original.WithOpener(orig.open)
	if err := l.Validate(); err != nil {
		t.Fatalf("a letter with a streamed original must be valid: %v", err)
	}
	stored, err := st.Externalise(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	if orig.opens != 1 || att.opens != 1 {
		t.Errorf("opened the original %d and the attachment %d times, want once each", orig.opens, att.opens)
	}
	if stored.Original.Ref == "" || stored.Attachments[0].Ref == "" || stored.Original.Size != int64(len(origBytes)) {
		t.Fatalf("stored letter: %+v", stored.Original)
	}
	raw, err := letter.Marshal(stored)
	if err != nil {
		t.Fatal(err)
	}
	back, err := letter.Unmarshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := back.Attachments[0].Open(ctx); !errors.Is(err, letter.ErrNotOpenable) {
		t.Errorf("a stored ref without the store opened: %v", err)
	}
	bound := st.Bind(back, nil)
	for i := 0; i < 2; i++ { // a retry opens again from the first byte
		got, err := letter.ReadAll(ctx, bound.Attachments[0].Open)
		if err != nil || !bytes.Equal(got, attBytes) {
			t.Fatalf("read %d: %d bytes, %v", i, len(got), err)
		}
	}
	got, err := letter.ReadAll(ctx, bound.Original.Open)
	if err != nil || !bytes.Equal(got, origBytes) {
		t.Fatalf("original: %d bytes, %v", len(got), err)
	}
	obs, _ := js.ObjectStore(ctx, broker.BucketBlobs)
	lib, err := obs.GetBytes(ctx, blobs.NameOf(stored.Attachments[0].Ref))
	if err != nil || !bytes.Equal(lib, attBytes) {
		t.Fatalf("the object store's own reader: %d bytes, %v", len(lib), err)
	}
	info, err := obs.GetInfo(ctx, blobs.NameOf(stored.Attachments[0].Ref))
	if err != nil || info.Chunks != 21 {
		t.Errorf("info %+v, %v: want 21 chunks of 256 KiB", info, err)
	}

	// Stored again from the same kind of source: nothing is read or written.
	again := &fileLike{data: attBytes}
	if _, err := st.PutFrom(ctx, "sha256-"+hexDigest(attBytes), int64(len(attBytes)), again.open); err != nil || again.opens != 0 {
		t.Errorf("a blob stored before was read again (%d opens, %v)", again.opens, err)
	}
}

// A source whose bytes are not what it recorded (a file changed after it
// was read) stores nothing under the recorded name.
func TestPutFromRefusesBytesThatDoNotMatch(t *testing.T) {
	st, js := open(t, blobs.Options{ChunkSize: 64 << 10})
	ctx := context.Background()
	want := random(t, 300<<10)
	changed := append([]byte(nil), want...)
	changed[200<<10] ^= 1
	f := &fileLike{data: changed}
	_, err := st.PutFrom(ctx, "sha256-"+hexDigest(want), int64(len(want)), f.open)
	if err == nil || !strings.Contains(err.Error(), "do not match") {
		t.Fatalf("put of changed bytes: %v", err)
	}
	if ok, _ := st.Exists(ctx, "sha256-"+hexDigest(want)); ok {
		t.Fatal("the blob exists after a refused put")
	}
	s, err := js.Stream(ctx, "OBJ_"+broker.BucketBlobs)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := s.Info(ctx); err != nil || info.State.Msgs != 0 {
		t.Errorf("the refused put left %d messages (%v)", info.State.Msgs, err)
	}
}

// A blob whose chunk is gone, or whose bytes do not match its name, fails
// its reader before the end: a sink sending from it sees an error, never
// io.EOF after a short or wrong body.
func TestDamagedBlobFailsTheReaderBeforeEOF(t *testing.T) {
	st, js := open(t, blobs.Options{ChunkSize: 64 << 10})
	ctx := context.Background()
	data := random(t, 640<<10)
	ref, err := st.Put(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, "OBJ_"+broker.BucketBlobs)
	if err != nil {
		t.Fatal(err)
	}
	// Delete the fifth chunk (sequence 5: chunks come first, then the
	// description).
	if err := s.DeleteMsg(ctx, 5); err != nil {
		t.Fatal(err)
	}
	r, err := st.Open(ctx, blobs.NameOf(ref))
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, r)
	if !errors.Is(err, blobs.ErrCorrupt) {
		t.Fatalf("read %d bytes then %v, want ErrCorrupt", n, err)
	}
	if n >= int64(len(data)) {
		t.Errorf("read %d bytes of a blob missing a chunk", n)
	}
	if c := blobs.Classify(err); !strings.Contains(c.Error(), "damaged") {
		t.Errorf("classified %v", c)
	}

	obs, _ := js.ObjectStore(ctx, broker.BucketBlobs)
	claimed := blobs.Name([]byte("what the letter had"))
	if _, err := obs.PutBytes(ctx, claimed, random(t, 100<<10)); err != nil {
		t.Fatal(err)
	}
	r, err = st.Open(ctx, claimed)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, r); !errors.Is(err, blobs.ErrCorrupt) {
		t.Fatalf("wrong bytes under a name: %v, want ErrCorrupt", err)
	}
	if _, err := st.Open(ctx, blobs.Name([]byte("never stored"))); !errors.Is(err, blobs.ErrMissing) {
		t.Fatalf("missing blob: %v", err)
	}
	if c := blobs.Classify(errors.New("nats: timeout")); !strings.Contains(c.Error(), "did not answer") {
		t.Errorf("a store that does not answer: %v", c)
	}
}

// BenchmarkPutOpen100MB stores a 100 MB part from a reader and reads it
// back through a sink's reader: the work of one large attachment at
// ingest and at one destination. B/op stays near the chunk buffers
// (a few MiB), not the part's size.
func BenchmarkPutOpen100MB(b *testing.B) {
	st, _ := open(b, blobs.Options{})
	ctx := context.Background()
	data := random(b, 100_000_000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		data[0] = byte(i) // a new blob each round
		f := &fileLike{data: data}
		ref, err := st.PutFrom(ctx, "sha256-"+hexDigest(data), int64(len(data)), f.open)
		if err != nil {
			b.Fatal(err)
		}
		r, err := st.Open(ctx, blobs.NameOf(ref))
		if err != nil {
			b.Fatal(err)
		}
		if n, err := io.Copy(io.Discard, r); err != nil || n != int64(len(data)) {
			b.Fatalf("read %d, %v", n, err)
		}
	}
}
