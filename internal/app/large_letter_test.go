package app_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/internal/config"
	"github.com/samhub/samhub/internal/hubtest"
	"github.com/samhub/samhub/internal/logging"
	casesyssim "github.com/samhub/samhub/internal/sim/casesys"
	"github.com/samhub/samhub/pipeline"
	"github.com/samhub/samhub/pipeline/blobs"
	"github.com/samhub/samhub/pipeline/broker"
	"github.com/samhub/samhub/pipeline/letter"
	"github.com/samhub/samhub/pipeline/retryq"
)

// largeHub is a test hub whose case system takes uploads of 256 MiB (the
// shared simulator stops at 20 MiB, as small ESDH installations do).
func largeHub(t *testing.T, edit func(*config.Config)) (*hubtest.Hub, *casesyssim.Server) {
	t.Helper()
	cs, err := casesyssim.New(casesyssim.Config{DataDir: t.TempDir(), ClientID: "samhub", ClientSecret: "case-secret", MaxUploadBytes: 256 << 20})
	if err != nil {
		t.Fatal(err)
	}
	url, err := cs.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	h := hubtest.Start(t, hubtest.WithConfig(func(c *config.Config) {
		c.Adapters["casesys"]["url"] = url
		if edit != nil {
			edit(c)
		}
	}))
	return h, cs
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// fhirLetter is a FHIR CareCommunication for MedCom's test person Bruno
// Test Elmer carrying attachment in base64, as the MedCom source builds it:
// the original keeps the whole XML, the attachment is also decoded.
func fhirLetter(id string, kind letter.Kind, attachment []byte) *letter.Letter {
	var x bytes.Buffer
	x.WriteString(`<Bundle xmlns="http://hl7.org/fhir"><entry><resource><Communication><payload><contentAttachment><contentType value="application/pdf"/><data value="`)
	x.WriteString(base64.StdEncoding.EncodeToString(attachment))
	x.WriteString(`"/></contentAttachment></payload></Communication></resource></entry></Bundle>`)
	return &letter.Letter{ID: id, Kind: kind, Format: "fhir-carecommunication", ThreadID: "thread-" + id,
		Sender:  letter.Party{Role: "gp", Name: "Lægerne Test", GLN: "5790000123459"},
		Patient: &letter.Patient{CPR: "2509479989", GivenName: "Bruno Test", FamilyName: "Elmer"},
		Subject: "Henvisning til samrådet", Text: "Se vedhæftede udredning.",
		Original:    letter.Original{Data: x.Bytes(), ContentType: "application/fhir+xml", Filename: id + ".xml"},
		Attachments: []letter.Attachment{letter.NewAttachment("udredning.pdf", "application/pdf", attachment)},
	}
}

func objectStore(t *testing.T, h *hubtest.Hub) jetstream.ObjectStore {
	t.Helper()
	obs, err := h.App.Broker.JS.ObjectStore(context.Background(), broker.BucketBlobs)
	if err != nil {
		t.Fatal(err)
	}
	return obs
}

func blobCount(t *testing.T, h *hubtest.Hub) int {
	t.Helper()
	list, err := objectStore(t, h).List(context.Background())
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return len(list)
}

// Issue 10: a letter with a 20 MB attachment (a 26.7 MB file, 62 MB as
// inline JSON) used to fail Publish for ever. It now arrives with its bytes
// intact while the letter stream holds a small message.
func TestLetterWithTwentyMBAttachmentArrivesIntact(t *testing.T) {
	h, cs := largeHub(t, nil)
	ctx := context.Background()
	att := randomBytes(t, 20<<20)
	l := fhirLetter("large-1", letter.KindReferral, att)
	origDigest, attDigest := letter.Digest(l.Original.Data), letter.Digest(att)
	pub := h.App.Hub.Publisher("medcom")
	if err := pub.Publish(ctx, l); err != nil {
		t.Fatalf("publish: %v", err)
	}

	st, err := h.App.Broker.JS.Stream(ctx, broker.StreamLetters)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := st.GetLastMsgForSubject(ctx, broker.InSubject("medcom", l.ID))
	if err != nil {
		t.Fatal(err)
	}
	if len(raw.Data) >= 1<<20 {
		t.Errorf("the stored letter is %d bytes; want under 1 MiB", len(raw.Data))
	}
	stored, err := letter.Unmarshal(raw.Data)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Original.Ref == "" || stored.Attachments[0].Ref == "" {
		t.Fatal("the stored letter does not name its blobs")
	}

	h.Eventually("the document in the case system", func() bool { return len(cs.Documents()) >= 1 })
	doc := cs.Documents()[0]
	got := map[string]bool{}
	for i := range doc.Files {
		b, err := cs.FileData(doc.ID, i)
		if err != nil {
			t.Fatal(err)
		}
		got[letter.Digest(b)] = true
	}
	if !got[origDigest] {
		t.Error("the original file did not arrive byte for byte")
	}
	if !got[attDigest] {
		t.Error("the 20 MB attachment did not arrive byte for byte")
	}

	// The console's and samhubctl's content view reads the parts back.
	full, _, err := h.App.Hub.Letter(ctx, l.ID)
	if err != nil {
		t.Fatal(err)
	}
	if letter.Digest(full.Original.Data) != origDigest || letter.Digest(full.Attachments[0].Data) != attDigest {
		t.Error("Hub.Letter did not give the letter's content back")
	}

	// A resend of the same content under a new id stores no second blob.
	if n := blobCount(t, h); n != 2 {
		t.Fatalf("%d blobs after one letter, want 2", n)
	}
	resend := fhirLetter("large-1-resend", letter.KindReferral, att)
	if err := pub.Publish(ctx, resend); err != nil {
		t.Fatal(err)
	}
	if n := blobCount(t, h); n != 2 {
		t.Errorf("%d blobs after the resend, want still 2", n)
	}
	h.Eventually("the resend delivered", func() bool { return len(cs.Documents()) >= 2 })
	body := get(t, h.BaseURL+"/metrics")
	for _, want := range []string{`samhub_blobs_stored_total{result="stored"} 2`, `samhub_blobs_stored_total{result="existing"} 2`, "samhub_blob_bytes"} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if logging.ContainsCPR(string(hubtest.MetricSeries([]byte(body)))) {
		t.Error("metric series contain a CPR-shaped number")
	}
}

// A letter whose text alone is beyond what one message may hold is refused
// for good, with a reason a coordinator can read, instead of retried for
// ever: both when the hub sees it (over streams.max_msg_size) and when the
// server refuses it (its file store takes no record over 32 MiB whatever
// max_msg_size says).
func TestLetterOverTheHardLimitIsPermanentlyTooLarge(t *testing.T) {
	h, _ := largeHub(t, func(c *config.Config) { c.Streams.MaxMsgSize = "48MB" })
	ctx := context.Background()
	pub := h.App.Hub.Publisher("medcom")
	for id, size := range map[string]int{"too-large-for-hub": 50 << 20, "too-large-for-store": 40 << 20} {
		l := fhirLetter(id, letter.KindReferral, randomBytes(t, 1<<20))
		l.Text = strings.Repeat("Bruno Test Elmer 2509479989 ", size/28+1)
		err := pub.Publish(ctx, l)
		var e *adapters.Error
		if !errors.As(err, &e) {
			t.Fatalf("%d MB text: error %v, want a classified error", size>>20, err)
		}
		if e.Class != adapters.ClassPermanent || e.Code != "letter_too_large" {
			t.Errorf("%d MB text: %s %s, want permanent letter_too_large", size>>20, e.Class, e.Code)
		}
		if !strings.Contains(e.Reason, "MB") || !strings.Contains(e.Reason, "streams.max_msg_size") || logging.ContainsCPR(e.Reason) || strings.Contains(e.Reason, "Bruno") {
			t.Errorf("reason %q: want sizes, the setting and no personal data", e.Reason)
		}
	}
}

// A stored letter naming a blob that is gone parks with blob_missing at
// once (no retries), and its parked entry names the blob.
func TestMissingBlobParksTheLetter(t *testing.T) {
	h, _ := largeHub(t, nil)
	ctx := context.Background()
	gone := blobs.Name([]byte("a blob lost from the store"))
	l := &letter.Letter{ID: "lost-blob", Kind: letter.KindReferral, Source: "medcom", Format: "xdis91", Received: time.Now().UTC(),
		Patient:  &letter.Patient{CPR: "1509819996"},
		Original: letter.Original{Ref: blobs.RefPrefix + gone, ContentType: "application/xml"}}
	data, err := letter.Marshal(l)
	if err != nil {
		t.Fatal(err)
	}
	msg := nats.NewMsg(broker.InSubject("medcom", l.ID))
	msg.Data = data
	msg.Header.Set(pipeline.HdrThread, broker.Token(l.Thread()))
	msg.Header.Set(pipeline.HdrKind, string(l.Kind))
	msg.Header.Set(pipeline.HdrSource, "medcom")
	if _, err := h.App.Broker.JS.PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}
	var parked []retryq.Entry
	h.Eventually("the letter parked", func() bool {
		parked, err = h.App.Hub.Queue().List(ctx, retryq.Filter{Destination: "casefile"})
		return err == nil && len(parked) == 1
	})
	e := parked[0]
	if e.LastError.Code != "blob_missing" || e.LastError.Class != "permanent" || e.Attempts != 1 {
		t.Errorf("parked with %+v after %d attempts, want permanent blob_missing after 1", e.LastError, e.Attempts)
	}
	if len(e.Blobs) != 1 || e.Blobs[0] != gone {
		t.Errorf("entry names blobs %v, want [%s]", e.Blobs, gone)
	}
}

// The collector deletes a blob older than the cutoff that no parked letter
// names, and keeps one a parked letter names.
func TestBlobCollectorKeepsWhatParkedLettersName(t *testing.T) {
	h, cs := largeHub(t, nil)
	ctx := context.Background()
	pub := h.App.Hub.Publisher("medcom")
	delivered := fhirLetter("gc-delivered", letter.KindReferral, randomBytes(t, 2<<20))
	// A recommendation without consent is denied for the GP and the region
	// and parked for the coordinator.
	parked := fhirLetter("gc-parked", letter.KindRecommendation, randomBytes(t, 2<<20))
	for _, l := range []*letter.Letter{delivered, parked} {
		if err := pub.Publish(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	h.Eventually("one delivered, one parked twice", func() bool {
		list, err := h.App.Hub.Queue().List(ctx, retryq.Filter{})
		return err == nil && len(list) == 2 && len(cs.Documents()) == 1
	})
	list, _ := h.App.Hub.Queue().List(ctx, retryq.Filter{})
	for _, e := range list {
		if len(e.Blobs) != 2 {
			t.Fatalf("parked entry names %d blobs, want 2", len(e.Blobs))
		}
	}
	if n := blobCount(t, h); n != 4 {
		t.Fatalf("%d blobs, want 4", n)
	}
	// A cutoff in the future stands for "letters_max_age + grace have
	// passed": every blob is old enough.
	n, err := h.App.Hub.CollectBlobs(ctx, time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("collected %d blobs, want the delivered letter's 2", n)
	}
	obs := objectStore(t, h)
	for _, ref := range []string{parked.Original.Ref, parked.Attachments[0].Ref} {
		if ref != "" {
			t.Fatal("Publish changed the caller's letter")
		}
	}
	for _, b := range list[0].Blobs {
		if _, err := obs.GetInfo(ctx, b); err != nil {
			t.Errorf("blob of the parked letter: %v", err)
		}
	}
	for _, b := range []string{blobs.Name(delivered.Original.Data), blobs.Name(delivered.Attachments[0].Data)} {
		if _, err := obs.GetInfo(ctx, b); !errors.Is(err, jetstream.ErrObjectNotFound) {
			t.Errorf("blob of the delivered letter: %v, want deleted", err)
		}
	}
	// Nothing younger than the cutoff goes.
	if n, err := h.App.Hub.CollectBlobs(ctx, time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Errorf("collected %d (%v) with an old cutoff, want 0", n, err)
	}
}
