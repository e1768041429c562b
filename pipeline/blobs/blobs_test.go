package blobs_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/samhub/samhub/pipeline/blobs"
	"github.com/samhub/samhub/pipeline/broker"
	"github.com/samhub/samhub/pipeline/letter"
)

// open starts an embedded JetStream server (the hub's own, on a temporary
// store), provisions the hub's streams and bucket and opens the blob store.
func open(tb testing.TB, o blobs.Options) (*blobs.Store, jetstream.JetStream) {
	tb.Helper()
	b, err := broker.Open(context.Background(), broker.Options{Embedded: broker.EmbeddedOptions{StoreDir: tb.TempDir(), MaxStore: 2 << 30, Cipher: "chacha"}}, slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(b.Close)
	s := broker.Streams{LettersMaxBytes: 64 << 20, ParkedMaxBytes: 32 << 20, JourneyMaxBytes: 32 << 20, AuditMaxBytes: 32 << 20, MaxMsgSize: 8 << 20, BlobsMaxBytes: 1 << 30,
		LettersMaxAge: time.Hour, DedupWindow: 2 * time.Minute, JourneyMaxAge: time.Hour, AuditMaxAge: time.Hour}
	if err := broker.Provision(context.Background(), b.JS, s, 1); err != nil {
		tb.Fatal(err)
	}
	st, err := blobs.New(context.Background(), b.JS, o)
	if err != nil {
		tb.Fatal(err)
	}
	return st, b.JS
}

func random(tb testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return b
}

// bigLetter is a referral for MedCom's test person Bruno Test Elmer with an
// original of origSize bytes and one attachment of attSize bytes.
func bigLetter(tb testing.TB, origSize, attSize int) *letter.Letter {
	orig := random(tb, origSize)
	return &letter.Letter{ID: "big-1", Kind: letter.KindReferral, Source: "medcom", Format: "fhir-carecommunication",
		Patient:     &letter.Patient{CPR: "2509479989", GivenName: "Bruno Test", FamilyName: "Elmer"},
		Text:        "Henvisning med bilag",
		Original:    letter.Original{Data: orig, ContentType: "application/fhir+xml", SHA256: letter.Digest(orig)},
		Attachments: []letter.Attachment{letter.NewAttachment("scan.pdf", "application/pdf", random(tb, attSize)), letter.NewAttachment("small.txt", "text/plain", []byte("kort"))},
	}
}

func TestExternaliseThenResolveGivesTheSameBytes(t *testing.T) {
	reg := prometheus.NewRegistry()
	st, _ := open(t, blobs.Options{Registerer: reg})
	ctx := context.Background()
	l := bigLetter(t, 3<<20, 20<<20)
	before := letter.Digest(l.Attachments[0].Data)

	stored, err := st.Externalise(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	if l.Original.Data == nil || l.Original.Ref != "" || l.Attachments[0].Data == nil || l.Attachments[0].Ref != "" {
		t.Fatal("Externalise changed the letter it was given")
	}
	if stored.Original.Data != nil || stored.Attachments[0].Data != nil {
		t.Fatal("large parts are still inline")
	}
	if stored.Attachments[1].Ref != "" || string(stored.Attachments[1].Data) != "kort" {
		t.Errorf("a small attachment must stay inline: %+v", stored.Attachments[1])
	}
	if got := blobs.Refs(stored); len(got) != 2 {
		t.Fatalf("refs %v, want the original's and the attachment's", got)
	}
	if err := stored.Validate(); err != nil {
		t.Fatalf("an externalised letter must still be valid: %v", err)
	}
	raw, err := letter.Marshal(stored)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) > 4<<10 {
		t.Errorf("stored letter is %d bytes; want it small", len(raw))
	}

	// A stored letter comes back from JSON; the sink's copy is resolved.
	back, err := letter.Unmarshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	out, err := st.Resolve(ctx, back)
	if err != nil {
		t.Fatal(err)
	}
	if back.Original.Data != nil || back.Attachments[0].Data != nil {
		t.Fatal("Resolve changed the (shared) letter it was given")
	}
	if !bytes.Equal(out.Original.Data, l.Original.Data) {
		t.Error("original bytes differ after resolve")
	}
	if got := letter.Digest(out.Attachments[0].Data); got != before || got != out.Attachments[0].SHA256 {
		t.Errorf("attachment digest %s, want %s", got, before)
	}
	if out.Original.Ref != "" || out.Attachments[0].Ref != "" {
		t.Error("a resolved letter should carry its bytes, not refs")
	}
	if got := metric(t, reg, "samhub_blobs_stored_total", "stored"); got != 2 {
		t.Errorf("samhub_blobs_stored_total{result=stored} = %v, want 2", got)
	}
	st.UpdateGauge(ctx)
	if got := metric(t, reg, "samhub_blob_bytes", ""); got < 23<<20 {
		t.Errorf("samhub_blob_bytes = %v, want at least the 23 MiB stored", got)
	}
}

func TestSameBytesTwiceIsOneBlob(t *testing.T) {
	reg := prometheus.NewRegistry()
	st, js := open(t, blobs.Options{Registerer: reg})
	ctx := context.Background()
	l := bigLetter(t, 200<<10, 2<<20)
	a, err := st.Externalise(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	resend := *l
	resend.ID = "big-1-resend"
	b, err := st.Externalise(ctx, &resend)
	if err != nil {
		t.Fatal(err)
	}
	if a.Attachments[0].Ref != b.Attachments[0].Ref || a.Original.Ref != b.Original.Ref {
		t.Fatal("the same bytes got different names")
	}
	obs, err := js.ObjectStore(ctx, broker.BucketBlobs)
	if err != nil {
		t.Fatal(err)
	}
	list, err := obs.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 {
		t.Fatalf("%d blobs stored, want 2 (original and attachment once each)", len(list))
	}
	if got := metric(t, reg, "samhub_blobs_stored_total", "existing"); got != 2 {
		t.Errorf("samhub_blobs_stored_total{result=existing} = %v, want 2", got)
	}
}

func TestMissingOrDamagedBlobIsPermanent(t *testing.T) {
	st, js := open(t, blobs.Options{})
	ctx := context.Background()
	missing := &letter.Letter{ID: "m", Kind: letter.KindNote, Source: "medcom", Original: letter.Original{Ref: blobs.RefPrefix + blobs.Name([]byte("never stored"))}}
	_, err := st.Resolve(ctx, missing)
	assertPermanent(t, err, "missing")

	// Bytes stored under another content's name: the read must notice.
	obs, err := js.ObjectStore(ctx, broker.BucketBlobs)
	if err != nil {
		t.Fatal(err)
	}
	claimed := blobs.Name([]byte("what the letter had"))
	if _, err := obs.PutBytes(ctx, claimed, []byte("something else entirely")); err != nil {
		t.Fatal(err)
	}
	damaged := &letter.Letter{ID: "d", Kind: letter.KindNote, Source: "medcom", Attachments: []letter.Attachment{{Name: "x", Ref: blobs.RefPrefix + claimed}}}
	_, err = st.Resolve(ctx, damaged)
	assertPermanent(t, err, "damaged")
	if _, err := st.Get(ctx, claimed); !errors.Is(err, blobs.ErrCorrupt) {
		t.Errorf("Get: %v, want ErrCorrupt", err)
	}

	bad := &letter.Letter{ID: "b", Kind: letter.KindNote, Source: "medcom", Original: letter.Original{Ref: "blob:../../etc"}}
	_, err = st.Resolve(ctx, bad)
	assertPermanent(t, err, "recognise")
}

func assertPermanent(t *testing.T, err error, reasonPart string) {
	t.Helper()
	var e *blobs.ReadError
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not classified", err)
	}
	if !e.Permanent || e.Code != "blob_missing" {
		t.Errorf("permanent %v code %s, want permanent blob_missing", e.Permanent, e.Code)
	}
	if !bytes.Contains([]byte(e.Reason), []byte(reasonPart)) {
		t.Errorf("reason %q does not say %q", e.Reason, reasonPart)
	}
}

func TestCollectDeletesOnlyOldUnreferencedBlobs(t *testing.T) {
	st, _ := open(t, blobs.Options{TouchAfter: time.Nanosecond})
	ctx := context.Background()
	put := func(s string) string {
		ref, err := st.Put(ctx, bytes.Repeat([]byte(s), 100<<10))
		if err != nil {
			t.Fatal(err)
		}
		return blobs.NameOf(ref)
	}
	expired, parked, reused := put("a"), put("b"), put("c")
	time.Sleep(20 * time.Millisecond) // server timestamps must differ from the cutoff
	cutoff := time.Now()
	time.Sleep(20 * time.Millisecond)
	young := put("d")
	// A new letter reuses "c": its blob is re-dated and must stay.
	if again := put("c"); again != reused {
		t.Fatal("reuse changed the name")
	}

	n, err := st.Collect(ctx, cutoff, map[string]bool{parked: true})
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("deleted %d blobs, want 1", n)
	}
	for name, want := range map[string]bool{expired: false, parked: true, reused: true, young: true} {
		ok, err := st.Exists(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if ok != want {
			t.Errorf("blob %s exists=%v, want %v", name[:16], ok, want)
		}
	}
	// A deleted blob stored again is readable again.
	if got := put("a"); got != expired {
		t.Fatal("name changed")
	}
	if _, err := st.Get(ctx, expired); err != nil {
		t.Errorf("blob stored again after collection: %v", err)
	}
}

func TestInlineSizeIsCloseToTheMarshalledSize(t *testing.T) {
	for _, l := range []*letter.Letter{bigLetter(t, 1000, 5000), bigLetter(t, 0, 1), {ID: "x", Kind: letter.KindNote, Source: "s"}} {
		raw, err := letter.Marshal(l)
		if err != nil {
			t.Fatal(err)
		}
		got, err := blobs.InlineSize(l)
		if err != nil {
			t.Fatal(err)
		}
		if d := got - len(raw); d < 0 || d > 64 {
			t.Errorf("InlineSize %d, marshalled %d", got, len(raw))
		}
	}
}

// BenchmarkExternaliseResolve20MB stores a letter with a 20 MB attachment
// (and a 27 MB original, as a FHIR CareCommunication carrying it has) in
// the blob store and reads it back for a sink: what ingest and one
// destination's delivery cost in time and allocation. B/op is dominated by
// the two exact-size read buffers (≈ 47 MB).
func BenchmarkExternaliseResolve20MB(b *testing.B) {
	st, _ := open(b, blobs.Options{})
	ctx := context.Background()
	l := bigLetter(b, 27<<20, 20<<20)
	b.SetBytes(int64(len(l.Original.Data) + len(l.Attachments[0].Data)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i > 0 {
			// Fresh blobs each round, or every round after the first
			// measures only the "already stored" look-up.
			l.Original.Data[0], l.Attachments[0].Data[0] = byte(i), byte(i)
		}
		stored, err := st.Externalise(ctx, l)
		if err != nil {
			b.Fatal(err)
		}
		out, err := st.Resolve(ctx, stored)
		if err != nil {
			b.Fatal(err)
		}
		if len(out.Attachments[0].Data) != 20<<20 {
			b.Fatal("short attachment")
		}
	}
}

// metric reads one series from reg: the one whose only label has value
// label, or the unlabelled one.
func metric(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) == 0 && label == "" || len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == label {
				if m.Counter != nil {
					return m.GetCounter().GetValue()
				}
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no series %s{%s}", name, label)
	return 0
}
