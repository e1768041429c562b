package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/internal/config"
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

// A round is stored at once; a second round holding copies of stored
// letters (the stream refuses the whole atomic batch for them) and a copy
// within itself is stored letter by letter: the new letters are stored,
// each copy is a duplicate carrying the first copy's checkpoint, and
// nothing is delivered twice.
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
	first := []adapters.Item{item("B1", "T1", "ack-B1"), item("B2", "T1", "ack-B2"), item("B3", "T2", "ack-B3"), item("B4", "", "")}
	if got := outcomes(bp.PublishBatch(ctx, first)); got != "stored stored stored stored" {
		t.Fatalf("first round: %s", got)
	}
	second := []adapters.Item{item("B5", "T1", "ack-B5"), item("B2", "T1", "other"), item("B6", "", "ack-B6"), item("B6", "", "again"), item("B4", "", "x")}
	rs := bp.PublishBatch(ctx, second)
	if got := outcomes(rs); got != "stored duplicate stored duplicate duplicate" {
		t.Fatalf("second round: %s", got)
	}
	for i, want := range []string{"", "ack-B2", "", "ack-B6", ""} {
		if got := string(rs[i].Checkpoint); got != want {
			t.Errorf("second round, item %d: checkpoint %q, want %q (the first copy's)", i, got, want)
		}
	}
	eventually(t, "six letters in the case file", func() bool { return e.muni.total() == 6 })
	for _, id := range []string{"B1", "B2", "B3", "B4", "B5", "B6"} {
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
	st, err := e.b.JS.Stream(ctx, broker.StreamLetters)
	if err != nil {
		t.Fatal(err)
	}
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
	e, _, pub, _ := batchEnv(t)
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
	items := []adapters.Item{
		{Letter: mkLetter("S1", letter.KindReferral, "")},
		{Letter: big},
		{Letter: mkLetter("S2", letter.KindReferral, "")},
	}
	rs := pub.(adapters.BatchPublisher).PublishBatch(ctx, items)
	if got := outcomes(rs); got != "stored failed stored" {
		t.Fatalf("outcomes %s (%v)", got, rs[1].Err)
	}
	if class, _, code := adapters.Classify(rs[1].Err); class != adapters.ClassPermanent || code != "letter_too_large" {
		t.Errorf("the refused letter: %s %s (%v), want permanent letter_too_large", class, code, rs[1].Err)
	}
	if _, err := st.GetLastMsgForSubject(ctx, broker.InSubject(big.Source, "BIG")); !errors.Is(err, jetstream.ErrMsgNotFound) {
		t.Errorf("the refused letter is stored: %v", err)
	}
	eventually(t, "the two others delivered", func() bool { return e.muni.count("S1") == 1 && e.muni.count("S2") == 1 })
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
