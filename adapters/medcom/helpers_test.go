package medcom

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/pipeline/letter"

	"github.com/samhub/samhub/adapters/adaptertest"
)

const testdata = "../../testdata/medcom"

// memState is the shared in-memory StateStore.
type memState = adaptertest.State

func newState() *memState { return adaptertest.NewState() }

// recPub records published letters; failAfter >= 0 makes every publish
// after that many successes fail.
type recPub struct {
	mu          sync.Mutex
	letters     []*letter.Letter
	rejected    map[string]int // by code, as the hub's InputReporter counts them
	duplicates  int
	failAfter   int
	refuseAfter int               // >= 0: publishes after that many are refused for good, as the hub refuses a letter too large to store
	checkpoints map[string][]byte // stored letters' checkpoints, by letter id
}

func newPub() *recPub {
	return &recPub{failAfter: -1, refuseAfter: -1, checkpoints: map[string][]byte{}}
}

// PublishBatch answers as the hub's intake does: a letter stored before is
// a duplicate carrying its stored checkpoint, and a letter that fails for
// a reason that may pass holds back the later letters of its thread.
func (p *recPub) PublishBatch(ctx context.Context, items []adapters.Item) []adapters.Result {
	res := make([]adapters.Result, len(items))
	held := map[string]error{}
	for i, it := range items {
		l := it.Letter
		if err := held[l.Thread()]; err != nil {
			res[i] = adapters.Result{Err: err}
			continue
		}
		p.mu.Lock()
		cp, dup := p.checkpoints[l.ID]
		p.mu.Unlock()
		if dup {
			p.Duplicate()
			res[i] = adapters.Result{Outcome: adapters.Duplicate, Checkpoint: cp}
			continue
		}
		if err := p.Publish(ctx, l); err != nil {
			res[i] = adapters.Result{Err: err}
			if class, _, _ := adapters.Classify(err); class != adapters.ClassPermanent {
				held[l.Thread()] = err
			}
			continue
		}
		p.mu.Lock()
		p.checkpoints[l.ID] = it.Checkpoint
		p.mu.Unlock()
		res[i] = adapters.Result{Outcome: adapters.Stored}
	}
	return res
}

func (p *recPub) Publish(_ context.Context, l *letter.Letter) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failAfter >= 0 && len(p.letters) >= p.failAfter {
		return errors.New("broker unavailable")
	}
	if p.refuseAfter >= 0 && len(p.letters) >= p.refuseAfter {
		return adapters.Permanent("letter_too_large", "the letter is 62 MB as stored; the hub stores at most 32 MB", errors.New("message too large"))
	}
	if err := l.Validate(); err != nil {
		return err
	}
	p.letters = append(p.letters, l)
	return nil
}

func (p *recPub) Rejected(code string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rejected == nil {
		p.rejected = map[string]int{}
	}
	p.rejected[code]++
}

func (p *recPub) Duplicate() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.duplicates++
}

// letter returns the i-th published letter (safe while a source runs).
func (p *recPub) letter(i int) *letter.Letter {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.letters[i]
}

func (p *recPub) ids() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, l := range p.letters {
		out = append(out, l.ID)
	}
	return out
}

func (p *recPub) setFailAfter(n int) {
	p.mu.Lock()
	p.failAfter = n
	p.mu.Unlock()
}

// clock is a settable Deps.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	dir     string
	state   *memState
	clock   *clock
	reg     *prometheus.Registry
	letters *hubLetters
	log     *slog.Logger // the adapters' logger; nil discards
}

func newEnv(t *testing.T) *env {
	return &env{dir: t.TempDir(), state: newState(), clock: &clock{t: time.Date(2026, 3, 4, 9, 0, 0, 0, time.UTC)}, reg: prometheus.NewRegistry(), letters: &hubLetters{}}
}

// hubLetters is the adapters.StoredLetters of the env's adapters: the
// checkpoints the publisher given to use stored, as the hub reads them
// from the stored letters.
type hubLetters struct {
	mu  sync.Mutex
	pub *recPub
	// gone: letters past the hub's retention (Original answers
	// ErrNotFound); down: the store does not answer Original.
	gone map[string]bool
	down error
	// stored holds originals as the hub's blob store keeps them, for
	// letters whose original the publisher got as a reader over an
	// input file that is closed after its round; opened, not inline.
	stored map[string][]byte
}

// Original is the original of a letter the publisher stored, as the hub
// keeps it; opened (not inline) when it was given as something to open.
func (h *hubLetters) Original(_ context.Context, source, id string) (letter.Original, error) {
	h.mu.Lock()
	p, gone, down, stored := h.pub, h.gone[id], h.down, h.stored[id]
	h.mu.Unlock()
	if down != nil {
		return letter.Original{}, down
	}
	if p == nil || source != "medcom" || gone {
		return letter.Original{}, adapters.ErrNotFound
	}
	if stored != nil {
		o := letter.Original{Size: int64(len(stored)), SHA256: letter.Digest(stored), Ref: "sha256-" + letter.Digest(stored)}
		return o.WithOpener(func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(stored)), nil }), nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.letters {
		if l.ID == id {
			return l.Original, nil
		}
	}
	return letter.Original{}, adapters.ErrNotFound
}

func (h *hubLetters) use(p *recPub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pub = p
}

func (h *hubLetters) Checkpoint(_ context.Context, source, id string) ([]byte, error) {
	h.mu.Lock()
	p := h.pub
	h.mu.Unlock()
	if p == nil || source != "medcom" {
		return nil, adapters.ErrNotFound
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	cp, ok := p.checkpoints[id]
	if !ok {
		return nil, adapters.ErrNotFound
	}
	return cp, nil
}

// adapter builds an instance through the registry, as the hub does.
func (e *env) adapter(t *testing.T, extra map[string]any) *Adapter {
	t.Helper()
	cfg := map[string]any{"dir": e.dir, "self": map[string]any{"gln": "5790000000012", "sor": "123456789012345", "name": "Samrådet Odense"}}
	for k, v := range extra {
		cfg[k] = v
	}
	inst, err := adapters.Build(TypeName, adapters.Deps{Name: "medcom", State: e.state, Metrics: e.reg, Now: e.clock.now, DataDir: filepath.Join(e.dir, "data"), Letters: e.letters, Logger: e.log}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return inst.(*Adapter)
}

func readFile(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testdata, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// drop writes a file into in/ the way a VANS client does: tmp, then rename.
// Its modification time is a minute old, as a finished file moved in is:
// Poll called directly has no watch to see the rename, and takes the file
// because no writer holds it and it has not changed for the settle time.
func (e *env) drop(t *testing.T, name string, data []byte) {
	t.Helper()
	e.dropAged(t, name, data, time.Minute)
}

// dropAged is drop with a modification time age ago.
func (e *env) dropAged(t *testing.T, name string, data []byte, age time.Duration) {
	t.Helper()
	tmp := filepath.Join(e.dir, "in", name+".tmp")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-age)
	if err := os.Chtimes(tmp, old, old); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(e.dir, "in", name)); err != nil {
		t.Fatal(err)
	}
}

func (e *env) files(t *testing.T, sub string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(e.dir, sub))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, en := range ents {
		if !strings.HasPrefix(en.Name(), ".") {
			out = append(out, en.Name())
		}
	}
	sort.Strings(out)
	return out
}

func (e *env) read(t *testing.T, sub, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e.dir, sub, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (e *env) gauge(t *testing.T) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "samhub_medcom_acks_missing" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "adapter" && lp.GetValue() == "medcom" {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatal("gauge samhub_medcom_acks_missing{adapter=\"medcom\"} not registered")
	return 0
}

// metric is the value of a counter or gauge series of the env's registry
// whose labels include the given name/value pairs.
func (e *env) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					found = found || (lp.GetName() == labels[i] && lp.GetValue() == labels[i+1])
				}
				if !found {
					continue next
				}
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}

func sameBytes(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("%s: bytes differ (%d vs %d bytes)", what, len(got), len(want))
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
