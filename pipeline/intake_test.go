package pipeline_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/internal/config"
	"github.com/samhub/samhub/pipeline"
	"github.com/samhub/samhub/pipeline/blobs"
	"github.com/samhub/samhub/pipeline/broker"
	"github.com/samhub/samhub/pipeline/letter"
)

// idleSource is a source that publishes nothing: the test publishes through
// the hub's publisher for it and reads stored letters through its Deps.
type idleSource struct{ deps adapters.Deps }

func (s *idleSource) Run(ctx context.Context, _ adapters.Publisher) error {
	<-ctx.Done()
	return nil
}

var (
	idleMu  sync.Mutex
	idleSrc = map[string]*idleSource{}
)

func init() {
	adapters.RegisterSource("test-idle", adapters.Spec{}, func(d adapters.Deps, _ struct{}) (adapters.Source, error) {
		idleMu.Lock()
		defer idleMu.Unlock()
		s := &idleSource{deps: d}
		idleSrc[d.Name] = s
		return s, nil
	})
}

// batchEnv is a hub with an idle source named batch<n>.
func batchEnv(t *testing.T) (*env, string, adapters.Publisher, adapters.StoredLetters) {
	t.Helper()
	var name string
	e := newEnvWith(t, func(cfg *config.Config, n int) {
		name = fmt.Sprintf("batch%d", n)
		cfg.Adapters[name] = map[string]any{"type": "test-idle"}
	})
	idleMu.Lock()
	src := idleSrc[name]
	idleMu.Unlock()
	if src == nil || src.deps.Letters == nil {
		t.Fatal("the hub gave the source no reader of stored letters")
	}
	return e, name, e.hub.Publisher(name), src.deps.Letters
}

func outcomes(rs []adapters.Result) string {
	var s []string
	for _, r := range rs {
		s = append(s, r.Outcome.String())
	}
	return strings.Join(s, " ")
}

// filler are n letters of their own threads, to make a round large enough
// for an atomic batch.
func filler(prefix string, n int) []adapters.Item {
	var items []adapters.Item
	for i := range n {
		id := fmt.Sprintf("%s%03d", prefix, i)
		items = append(items, adapters.Item{Letter: mkLetter(id, letter.KindReferral, ""), Checkpoint: []byte("ack-" + id)})
	}
	return items
}

// A round is stored as one atomic batch; a second round holding copies of
// stored letters (the stream refuses the whole atomic batch for them) and
// a copy within itself is stored letter by letter: the new letters are
// stored, each copy is a duplicate carrying the first copy's checkpoint,
// and nothing is delivered twice.
func TestBatchDuplicatesAcrossAndWithinRounds(t *testing.T) {
	e, source, pub, stored := batchEnv(t)
	ctx := context.Background()
	bp, ok := pub.(adapters.BatchPublisher)
	if !ok {
		t.Fatal("the hub's publisher takes no rounds")
	}
	item := func(id, thread, cp string) adapters.Item {
		return adapters.Item{Letter: mkLetter(id, letter.KindReferral, thread), Checkpoint: []byte(cp)}
	}
	st, err := e.b.JS.Stream(ctx, broker.StreamLetters)
	if err != nil {
		t.Fatal(err)
	}
	first := append([]adapters.Item{item("B1", "T1", "ack-B1"), item("B2", "T1", "ack-B2"), item("B3", "T2", "ack-B3"), item("B4", "", "")}, filler("F", 40)...)
	letters0, commits0 := pipeline.IntakeWriteStats()
	if got := outcomes(bp.PublishBatch(ctx, first)); got != strings.TrimSpace(strings.Repeat("stored ", len(first))) {
		t.Fatalf("first round: %s", got)
	}
	if l, c := pipeline.IntakeWriteStats(); l-letters0 != uint64(len(first)) || c-commits0 != 1 {
		t.Errorf("first round: %d letters in %d writes, want %d in one atomic batch", l-letters0, c-commits0, len(first))
	}
	second := append([]adapters.Item{item("B5", "T1", "ack-B5"), item("B2", "T1", "other"), item("B6", "", "ack-B6")}, filler("G", 40)...)
	second = append(second, item("B6", "", "again"), item("B4", "", "x"))
	letters1, commits1 := pipeline.IntakeWriteStats()
	rs := bp.PublishBatch(ctx, second)
	if l, c := pipeline.IntakeWriteStats(); l-letters1 != 42 || c-commits1 != 42 {
		t.Errorf("second round: %d letters in %d writes, want 42 in 42: the refused batch stored letter by letter", l-letters1, c-commits1)
	}
	want := "stored duplicate stored " + strings.Repeat("stored ", 40) + "duplicate duplicate"
	if got := outcomes(rs); got != want {
		t.Fatalf("second round:\n %s\nwant\n %s", got, want)
	}
	last := len(second) - 1
	for i, want := range map[int]string{0: "", 1: "ack-B2", 2: "", last - 1: "ack-B6", last: ""} {
		if got := string(rs[i].Checkpoint); got != want {
			t.Errorf("second round, item %d: checkpoint %q, want %q (the first copy's)", i, got, want)
		}
	}
	total := len(first) + 2 + 40
	eventually(t, "every letter in the case file", func() bool { return e.muni.total() == total })
	for _, id := range []string{"B1", "B2", "B3", "B4", "B5", "B6", "F000", "G039"} {
		if n := e.muni.count(id); n != 1 {
			t.Errorf("%s delivered %d times", id, n)
		}
	}
	cp, err := stored.Checkpoint(ctx, source, "B3")
	if err != nil || string(cp) != "ack-B3" {
		t.Errorf("stored checkpoint of B3: %q, %v", cp, err)
	}
	if cp, err := stored.Checkpoint(ctx, source, "B4"); err != nil || cp != nil {
		t.Errorf("B4 was stored without a checkpoint: %q, %v", cp, err)
	}
	if _, err := stored.Checkpoint(ctx, source, "NOPE"); !errors.Is(err, adapters.ErrNotFound) {
		t.Errorf("a letter never stored: %v, want ErrNotFound", err)
	}
	// Letters of one thread are stored in the order given.
	seq := map[string]uint64{}
	for _, id := range []string{"B1", "B2", "B5"} {
		m, err := st.GetLastMsgForSubject(ctx, broker.InSubject(source, id))
		if err != nil {
			t.Fatal(err)
		}
		seq[id] = m.Sequence
	}
	if !(seq["B1"] < seq["B2"] && seq["B2"] < seq["B5"]) {
		t.Errorf("thread T1 stored out of order: %v", seq)
	}
}

// A batch the server refuses because of one letter in it (here the stream
// takes smaller messages than the hub was configured for) is stored letter
// by letter: the others are stored, the one too large fails for good.
func TestBatchRefusedByTheServerStoresTheOthers(t *testing.T) {
	e, source, pub, _ := batchEnv(t)
	ctx := context.Background()
	st, err := e.b.JS.Stream(ctx, broker.StreamLetters)
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	cfg.MaxMsgSize = 16 << 10
	if _, err := e.b.JS.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	big := mkLetter("BIG", letter.KindReferral, "")
	big.Text = strings.Repeat("lang tekst ", 4000)
	items := filler("S", 40)
	items = append(items[:20], append([]adapters.Item{{Letter: big}}, items[20:]...)...)
	rs := pub.(adapters.BatchPublisher).PublishBatch(ctx, items)
	want := strings.Repeat("stored ", 20) + "failed" + strings.Repeat(" stored", 20)
	if got := outcomes(rs); got != want {
		t.Fatalf("outcomes %s (%v)", got, rs[20].Err)
	}
	if class, _, code := adapters.Classify(rs[20].Err); class != adapters.ClassPermanent || code != "letter_too_large" {
		t.Errorf("the refused letter: %s %s (%v), want permanent letter_too_large", class, code, rs[20].Err)
	}
	if _, err := st.GetLastMsgForSubject(ctx, broker.InSubject(source, "BIG")); !errors.Is(err, jetstream.ErrMsgNotFound) {
		t.Errorf("the refused letter is stored: %v", err)
	}
	eventually(t, "the others delivered", func() bool { return e.muni.total() == 40 })
}

// A letter that fails for a retryable reason holds back the later letters
// of its thread in the same round, and only those.
func TestBatchFailureHoldsItsThread(t *testing.T) {
	_, _, pub, _ := batchEnv(t)
	ctx := context.Background()
	bad := mkLetter("BAD", letter.KindReferral, "T9")
	bad.Kind = "no-such-kind" // refused by Validate: unclassified, so retryable
	items := []adapters.Item{
		{Letter: bad},
		{Letter: mkLetter("NEXT", letter.KindReferral, "T9")},
		{Letter: mkLetter("OTHER", letter.KindReferral, "T8")},
	}
	rs := pub.(adapters.BatchPublisher).PublishBatch(ctx, items)
	if got := outcomes(rs); got != "failed failed stored" {
		t.Fatalf("outcomes %s", got)
	}
	if class, _, _ := adapters.Classify(rs[1].Err); class != adapters.ClassRetryable {
		t.Errorf("the held letter: %v", rs[1].Err)
	}
}

// StoredLetters.Original gives a stored letter's original as received: a
// small one inline, a large one opened from the blob store as it is read.
// A letter never stored, or an original whose blob is gone (collected
// past retention), is ErrNotFound: the reply it was wanted for goes out
// without it.
func TestStoredLettersGiveTheOriginal(t *testing.T) {
	var name string
	e := newEnvWith(t, func(cfg *config.Config, n int) {
		name = fmt.Sprintf("orig%d", n)
		cfg.Adapters[name] = map[string]any{"type": "test-idle"}
		cfg.Pipeline.InlineMaxBytes = "256KiB"
	})
	idleMu.Lock()
	stored := idleSrc[name].deps.Letters
	idleMu.Unlock()
	ctx := context.Background()
	pub := e.hub.Publisher(name)

	small := mkLetter("O1", letter.KindReferral, "")
	large := mkLetter("O2", letter.KindReferral, "")
	big := bytes.Repeat([]byte("<segment>Bruno Test Elmer</segment>\n"), 20000) // 740 KB
	large.Original = letter.Original{Data: big, ContentType: "application/fhir+xml"}
	for _, l := range []*letter.Letter{small, large} {
		if err := pub.Publish(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	o, err := stored.Original(ctx, name, "O1")
	if err != nil || !o.Inline() || string(o.Data) != "<letter/>" {
		t.Fatalf("small original: %q inline %v, %v", o.Data, o.Inline(), err)
	}
	o, err = stored.Original(ctx, name, "O2")
	if err != nil {
		t.Fatal(err)
	}
	if o.Inline() || o.Ref == "" || o.Len() != int64(len(big)) {
		t.Fatalf("large original: inline %v, ref %q, %d bytes; want it in the blob store", o.Inline(), o.Ref, o.Len())
	}
	got, err := letter.ReadAll(ctx, o.Open)
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("large original read back: %d bytes, %v", len(got), err)
	}
	if _, err := stored.Original(ctx, name, "NOPE"); !errors.Is(err, adapters.ErrNotFound) {
		t.Errorf("a letter never stored: %v, want ErrNotFound", err)
	}
	if _, err := stored.Original(ctx, "another", "O1"); !errors.Is(err, adapters.ErrNotFound) {
		t.Errorf("a letter of another source: %v, want ErrNotFound", err)
	}

	eventually(t, "both letters delivered", func() bool { return e.muni.count("O1") == 1 && e.muni.count("O2") == 1 })
	bs, err := blobs.New(ctx, e.b.JS, blobs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := bs.Delete(ctx, blobs.NameOf(o.Ref)); err != nil {
		t.Fatal(err)
	}
	o, err = stored.Original(ctx, name, "O2")
	if err == nil {
		_, err = letter.ReadAll(ctx, o.Open)
	}
	if !errors.Is(err, adapters.ErrNotFound) {
		t.Errorf("an original whose blob is gone: %v, want ErrNotFound", err)
	}
	if err != nil && strings.Contains(err.Error(), "Bruno") {
		t.Errorf("the error quotes the original: %v", err)
	}
}
