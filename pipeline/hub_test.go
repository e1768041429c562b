package pipeline_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/internal/config"
	"github.com/samhub/samhub/pipeline"
	"github.com/samhub/samhub/pipeline/broker"
	"github.com/samhub/samhub/pipeline/broker/brokertest"
	"github.com/samhub/samhub/pipeline/journey"
	"github.com/samhub/samhub/pipeline/letter"
	"github.com/samhub/samhub/pipeline/retryq"
)

// feed is a real in-process Source: letters pushed to it are published. It
// keeps what the hub tells it about each recipient, as a case system's
// outbox would.
type feed struct {
	ch chan *letter.Letter

	mu      sync.Mutex
	reports []adapters.RecipientStatus
}

func (f *feed) ReportStatus(_ context.Context, s adapters.RecipientStatus) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reports = append(f.reports, s)
	return nil
}

// latest is the last state reported for a letter's recipient of role.
func (f *feed) latest(letterID, role string) (adapters.RecipientStatus, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.reports) - 1; i >= 0; i-- {
		if r := f.reports[i]; r.LetterID == letterID && r.Recipient.Role == role {
			return r, true
		}
	}
	return adapters.RecipientStatus{}, false
}

func (f *feed) Run(ctx context.Context, pub adapters.Publisher) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case l := <-f.ch:
			for {
				if err := pub.Publish(ctx, l); err == nil {
					break
				} else if ctx.Err() != nil {
					return nil
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
}

// box is a real in-process Sink with an idempotent store and fault switches.
type box struct {
	mu        sync.Mutex
	got       map[string]int // letter id → creations
	order     []string
	failNext  int            // retryable failures to return
	stateDown int            // failures of the hub's own state store to answer, returned first
	stateFull int            // failures of the state store refusing a write, returned next
	failFor   map[string]int // per letter id
	permanent bool
	refuse    map[string]bool // per letter id: refused permanently
	down      bool            // every call fails, retryably
	calls     map[string]int  // letter id → successful calls, new or existing
	delay     time.Duration
	letters   []*letter.Letter
	capacity  int          // adapters.Capacity; 0: none of its own
	active    atomic.Int32 // deliveries in progress
	peak      atomic.Int32
}

// Capacity is read when the hub is built.
func (b *box) Capacity() int { return b.capacity }

func newBox() *box {
	return &box{got: map[string]int{}, failFor: map[string]int{}, refuse: map[string]bool{}, calls: map[string]int{}}
}

func (b *box) Deliver(ctx context.Context, l *letter.Letter) (adapters.Delivery, error) {
	for n := b.active.Add(1); ; {
		if p := b.peak.Load(); n <= p || b.peak.CompareAndSwap(p, n) {
			break
		}
	}
	defer b.active.Add(-1)
	b.mu.Lock()
	delay := b.delay
	b.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return adapters.Delivery{}, ctx.Err()
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.permanent {
		return adapters.Delivery{}, adapters.Permanent("rejected", "the destination refused the letter (case 2509479989 closed)", nil)
	}
	if b.refuse[l.ID] {
		return adapters.Delivery{}, adapters.Permanent("rejected", "the destination refused this letter", nil)
	}
	if b.down {
		return adapters.Delivery{}, adapters.Retryable("http_503", "the destination is unavailable", nil)
	}
	if b.stateDown > 0 {
		b.stateDown--
		return adapters.Delivery{}, adapters.StateUnavailable("the hub's state store did not answer", nats.ErrNoResponders)
	}
	if b.stateFull > 0 {
		b.stateFull--
		return adapters.Delivery{}, adapters.StateUnavailable("the hub's state store refused the write", nats.ErrMaxPayload)
	}
	if b.failNext > 0 {
		b.failNext--
		return adapters.Delivery{}, adapters.Retryable("http_503", "the destination is unavailable", nil)
	}
	if b.failFor[l.ID] > 0 {
		b.failFor[l.ID]--
		return adapters.Delivery{}, adapters.Retryable("http_503", "the destination is unavailable", nil)
	}
	b.calls[l.ID]++
	if b.got[l.ID] > 0 {
		return adapters.Delivery{RemoteID: "doc-" + l.ID, Existing: true}, nil
	}
	b.got[l.ID]++
	b.order = append(b.order, l.ID)
	b.letters = append(b.letters, l)
	return adapters.Delivery{RemoteID: "doc-" + l.ID}, nil
}

func (b *box) count(id string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.got[id]
}

func (b *box) total() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.got)
}

var (
	regMu sync.Mutex
	feeds = map[string]*feed{}
	boxes = map[string]*box{}
)

func init() {
	adapters.RegisterSource("test-feed", adapters.Spec{}, func(d adapters.Deps, _ struct{}) (adapters.Source, error) {
		regMu.Lock()
		defer regMu.Unlock()
		return feeds[d.Name], nil
	})
	adapters.RegisterSink("test-box", adapters.Spec{}, func(d adapters.Deps, _ struct{}) (adapters.Sink, error) {
		regMu.Lock()
		defer regMu.Unlock()
		return boxes[d.Name], nil
	})
}

type env struct {
	t     testing.TB
	cfg   *config.Config
	feed  *feed
	muni  *box // municipality sector, no consent needed
	gp    *box // gp sector, consent needed
	notes *box // internal sector: the coordinator's notices
	b     *broker.Broker
	hub   *pipeline.Hub
	stop  context.CancelFunc
	done  chan error
	store string
}

var envN int

func newEnv(t *testing.T) *env { t.Helper(); return newEnvWith(t, nil) }

// newEnvWith is newEnv with edit changing the configuration before the hub
// starts; n names this environment's adapter instances (feed<n>, …).
func newEnvWith(t testing.TB, edit func(cfg *config.Config, n int)) *env {
	t.Helper()
	regMu.Lock()
	envN++
	n := envN
	e := &env{t: t, feed: &feed{ch: make(chan *letter.Letter, 1000)}, muni: newBox(), gp: newBox(), notes: newBox(), store: t.TempDir()}
	feeds[fmt.Sprintf("feed%d", n)] = e.feed
	boxes[fmt.Sprintf("muni%d", n)] = e.muni
	boxes[fmt.Sprintf("gp%d", n)] = e.gp
	boxes[fmt.Sprintf("notes%d", n)] = e.notes
	regMu.Unlock()
	cfg, err := config.Load("")
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = t.TempDir()
	cfg.NATS.Embedded.StoreDir = e.store
	cfg.Pipeline.BackoffInitial = 20 * time.Millisecond
	cfg.Pipeline.BackoffMax = 100 * time.Millisecond
	cfg.Pipeline.MaxAttempts = 4
	cfg.Pipeline.ShutdownGrace = 3 * time.Second
	// The embedded server forgets Naks when it stops with the hub: letters
	// released at shutdown come back after the ack wait.
	cfg.Pipeline.AckWait = 3 * time.Second
	cfg.Adapters = map[string]map[string]any{
		fmt.Sprintf("feed%d", n):  {"type": "test-feed"},
		fmt.Sprintf("muni%d", n):  {"type": "test-box"},
		fmt.Sprintf("gp%d", n):    {"type": "test-box"},
		fmt.Sprintf("notes%d", n): {"type": "test-box"},
	}
	cfg.Destinations = map[string]config.Destination{
		"casefile": {Adapter: fmt.Sprintf("muni%d", n), Sector: "municipality"},
		"doctor":   {Adapter: fmt.Sprintf("gp%d", n), Sector: "gp"},
		"notices":  {Adapter: fmt.Sprintf("notes%d", n), Sector: "internal"},
	}
	cfg.Notify = config.Notify{Destination: "notices", Recipients: []string{"koordinator@samraad.example"}, On: []string{"arrived", "parked", "answered"}}
	cfg.Routes = []config.Route{
		{Name: "all-to-case", To: []string{"casefile"}},
		{Name: "recommendations-to-gp", Match: config.Match{Kind: []string{"recommendation"}}, To: []string{"doctor"}},
	}
	if edit != nil {
		edit(cfg, n)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	e.cfg = cfg
	e.start()
	t.Cleanup(func() { e.shutdown() })
	return e
}

// waitParked waits until the retry queue holds n letters and returns them.
func (e *env) waitParked(t *testing.T, what string, n int) []retryq.Entry {
	t.Helper()
	var parked []retryq.Entry
	eventually(t, what, func() bool {
		parked, _ = e.hub.Queue().List(context.Background(), retryq.Filter{})
		return len(parked) == n
	})
	return parked
}

func (e *env) start() {
	e.t.Helper()
	var w io.Writer = io.Discard
	if os.Getenv("SAMHUB_TEST_LOG") != "" {
		w = os.Stderr
	}
	log := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	bo, err := e.cfg.NATS.Broker()
	if err != nil {
		e.t.Fatal(err)
	}
	b, err := broker.Open(context.Background(), bo, log)
	if err != nil {
		e.t.Fatal(err)
	}
	o := e.cfg.HubOptions()
	o.Broker, o.Logger = b, log
	hub, err := pipeline.New(context.Background(), o)
	if err != nil {
		b.Close()
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.b, e.hub, e.stop, e.done = b, hub, cancel, make(chan error, 1)
	go func() { e.done <- hub.Run(ctx) }()
}

func (e *env) shutdown() {
	if e.stop == nil {
		return
	}
	e.stop()
	<-e.done
	e.b.Close()
	e.stop = nil
}

// gpA is the GP the test recommendations name.
var gpA = letter.Party{Role: letter.RoleGP, Name: "Lægehuset Ærø", GLN: "5790000123456"}

func mkLetter(id string, kind letter.Kind, thread string) *letter.Letter {
	l := &letter.Letter{ID: id, Kind: kind, Format: "test", ThreadID: thread,
		Patient:  &letter.Patient{CPR: "2509479989", GivenName: "Bruno Test", FamilyName: "Elmer"},
		Text:     "Henvisning vedr. Bruno Test Elmer",
		Original: letter.Original{Data: []byte("<letter/>"), ContentType: "application/xml"}}
	if kind == letter.KindRecommendation {
		l.Receivers = []letter.Party{gpA}
	}
	return l
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestLettersReachEveryRoutedDestinationOnce(t *testing.T) {
	e := newEnv(t)
	for i := range 30 {
		e.feed.ch <- mkLetter(fmt.Sprintf("L%03d", i), letter.KindReferral, fmt.Sprintf("T%d", i%5))
	}
	eventually(t, "30 letters in the case file", func() bool { return e.muni.total() == 30 })
	for i := range 30 {
		if n := e.muni.count(fmt.Sprintf("L%03d", i)); n != 1 {
			t.Errorf("letter %d delivered %d times", i, n)
		}
	}
	if e.gp.total() != 0 {
		t.Errorf("referrals must not reach the GP destination; got %d", e.gp.total())
	}
	tr, err := e.hub.TraceLetter(context.Background(), "L007")
	if err != nil {
		t.Fatal(err)
	}
	steps := map[string]bool{}
	for _, s := range tr.Steps {
		steps[s.Step+"/"+s.Destination] = true
	}
	if !steps["received/"] || !steps["delivered/casefile"] {
		t.Errorf("journey incomplete: %+v", tr.Steps)
	}
}

func TestDuplicateLetterIsNotRoutedAgain(t *testing.T) {
	e := newEnv(t)
	e.feed.ch <- mkLetter("DUP1", letter.KindReferral, "")
	eventually(t, "first delivery", func() bool { return e.muni.count("DUP1") == 1 })
	// Reset the sink's memory: only the hub's own duplicate check can now
	// stop a second creation.
	e.muni.mu.Lock()
	e.muni.got = map[string]int{}
	e.muni.mu.Unlock()
	e.feed.ch <- mkLetter("DUP1", letter.KindReferral, "")
	e.feed.ch <- mkLetter("AFTER", letter.KindReferral, "")
	eventually(t, "the next letter", func() bool { return e.muni.count("AFTER") == 1 })
	if n := e.muni.count("DUP1"); n != 0 {
		t.Fatalf("duplicate letter routed again (%d deliveries)", n)
	}
}

func TestConsentDeniedParksThenReplayDeliversOnce(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	l := mkLetter("REC1", letter.KindRecommendation, "T1")
	e.feed.ch <- l
	eventually(t, "case file delivery", func() bool { return e.muni.count("REC1") == 1 })
	var parked []retryq.Entry
	eventually(t, "a parked entry for the GP", func() bool {
		parked, _ = e.hub.Queue().List(ctx, retryq.Filter{Destination: "doctor"})
		return len(parked) == 1
	})
	if parked[0].LastError.Code != "consent_missing" {
		t.Fatalf("parked code = %q, want consent_missing", parked[0].LastError.Code)
	}
	if e.gp.total() != 0 {
		t.Fatal("letter reached the GP without consent")
	}
	who := pipeline.Actor{Name: "koordinator", Role: "coordinator"}
	// Replay without consent: it parks again.
	dec, err := e.hub.Replay(ctx, who, parked[0].Seq, "try", true)
	if err != nil || dec.Verdict != "deny" {
		t.Fatalf("dry-run replay without consent: %v %+v", err, dec)
	}
	if err := e.hub.RecordConsent(ctx, "2509479989", letter.Consent{GivenBy: "custody-holder", Form: "oral", GivenAt: time.Now(), Scopes: []letter.Scope{letter.ScopeGP}}); err != nil {
		t.Fatal(err)
	}
	dec, err = e.hub.Replay(ctx, who, parked[0].Seq, "consent recorded", false)
	if err != nil || dec.Verdict != "deliver" {
		t.Fatalf("replay: %v %+v", err, dec)
	}
	eventually(t, "GP delivery after replay", func() bool { return e.gp.count("REC1") == 1 })
	if _, err := e.hub.Replay(ctx, who, parked[0].Seq, "again", false); err == nil {
		t.Fatal("replaying a removed entry must fail")
	}
	time.Sleep(200 * time.Millisecond)
	if n := e.gp.count("REC1"); n != 1 {
		t.Fatalf("GP got %d copies", n)
	}
	recs, err := e.hub.Audit().Tail(ctx, 10)
	if err != nil || len(recs) == 0 || recs[len(recs)-1].Action != "replay" || recs[len(recs)-1].Actor != "koordinator" {
		t.Fatalf("audit: %v %+v", err, recs)
	}
	if left, _ := e.hub.Queue().List(ctx, retryq.Filter{}); len(left) != 0 {
		t.Fatalf("queue not empty after replay: %+v", left)
	}
}

// A replayed letter its destination no longer takes (here: the letter
// names only the council, so the GP's destination is no receiver of it)
// parks again as not_routed rather than leaving the queue undelivered: a
// letter leaves the retry queue delivered or discarded, nothing else.
func TestAReplayTheDestinationNoLongerTakesParksAgain(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	l := mkLetter("NR1", letter.KindReferral, "T-NR1")
	l.Receivers = []letter.Party{{Role: letter.RoleMunicipality, Name: "Samrådet for Børn og Unge", GLN: "5790001382445"}}
	raw, err := letter.Marshal(l)
	if err != nil {
		t.Fatal(err)
	}
	f := retryq.Failure{At: time.Now().UTC(), Class: "permanent", Code: "consent_missing", Reason: "no consent is recorded (test)"}
	if err := e.hub.Queue().Park(ctx, retryq.Entry{LetterID: l.ID, Destination: "doctor", Kind: string(l.Kind), Thread: broker.Token(l.Thread()),
		Attempts: 1, FirstError: f, LastError: f, LetterSeq: 1 << 40}, raw); err != nil {
		t.Fatal(err)
	}
	parked := e.waitParked(t, "the letter parked", 1)
	dec, err := e.hub.Replay(ctx, pipeline.Actor{Name: "koordinator", Role: "coordinator"}, parked[0].Seq, "the routes changed", false)
	if err != nil || dec.Verdict != "skip" {
		t.Fatalf("replay: %v %+v", err, dec)
	}
	var again []retryq.Entry
	eventually(t, "the letter parked again as not_routed", func() bool {
		again, _ = e.hub.Queue().List(ctx, retryq.Filter{Destination: "doctor"})
		return len(again) == 1 && again[0].Seq != parked[0].Seq
	})
	if again[0].LetterID != "NR1" || again[0].LastError.Code != pipeline.CodeNotRouted || !strings.Contains(again[0].LastError.Reason, "doctor no longer takes it") {
		t.Errorf("parked again: %+v", again[0])
	}
	if n := e.gp.count("NR1"); n != 0 {
		t.Errorf("the GP got %d copies of a letter its destination does not take", n)
	}
}

var cprPattern = regexp.MustCompile(`\d{6}-?\d{4}`)

func TestPermanentFailureParksWithoutPersonalData(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.muni.mu.Lock()
	e.muni.permanent = true
	e.muni.mu.Unlock()
	e.feed.ch <- mkLetter("P1", letter.KindReferral, "")
	p := e.waitParked(t, "parked", 1)[0]
	if p.LastError.Class != "permanent" || p.Attempts != 1 {
		t.Fatalf("entry %+v", p)
	}
	if cprPattern.MatchString(p.LastError.Reason) || cprPattern.MatchString(p.FirstError.Reason) {
		t.Fatalf("parked reason carries a CPR: %q", p.LastError.Reason)
	}
	if err := e.hub.Discard(ctx, pipeline.Actor{Name: "k", Role: "coordinator"}, p.Seq, ""); err == nil {
		t.Fatal("discard without reason must fail")
	}
	if err := e.hub.Discard(ctx, pipeline.Actor{Name: "k", Role: "coordinator"}, p.Seq, "sent by post instead"); err != nil {
		t.Fatal(err)
	}
	tr, _ := e.hub.TraceLetter(ctx, "P1")
	last := tr.Steps[len(tr.Steps)-1]
	if last.Step != journey.Discarded {
		t.Fatalf("last step %q, want discarded", last.Step)
	}
}

func TestRetryableFailuresRetryThenDeliverOnce(t *testing.T) {
	e := newEnv(t)
	e.muni.mu.Lock()
	e.muni.failNext = 2
	e.muni.mu.Unlock()
	e.feed.ch <- mkLetter("R1", letter.KindReferral, "")
	eventually(t, "delivery after retries", func() bool { return e.muni.count("R1") == 1 })
	if l, _ := e.hub.Queue().List(context.Background(), retryq.Filter{}); len(l) != 0 {
		t.Fatalf("nothing should park: %+v", l)
	}
}

// TestTheHubsOwnStoreFailingNeverParksALetter: attempts that failed on
// the hub's own state store (a KV leader moving, a cluster restarting) do
// not count toward max_attempts (4 here), so the letter is delivered once
// the store answers; the destination's own failures still park it at
// max_attempts. (The cluster scenario once parked a GP letter after six
// tries in 1.5 s while its state bucket elected a leader.)
func TestTheHubsOwnStoreFailingNeverParksALetter(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.muni.mu.Lock()
	e.muni.stateDown, e.muni.failNext = 6, 2
	e.muni.mu.Unlock()
	e.feed.ch <- mkLetter("H1", letter.KindReferral, "")
	eventually(t, "delivery after the store came back", func() bool { return e.muni.count("H1") == 1 })
	if l, _ := e.hub.Queue().List(ctx, retryq.Filter{}); len(l) != 0 {
		t.Fatalf("parked although the destination failed only twice: %+v", l)
	}

	e.muni.mu.Lock()
	e.muni.stateDown, e.muni.failNext = 3, 4
	e.muni.mu.Unlock()
	e.feed.ch <- mkLetter("H2", letter.KindReferral, "")
	if p := e.waitParked(t, "parked after the destination's own failures", 1)[0]; p.LetterID != "H2" || p.Attempts != 7 || p.LastError.Code != "http_503" {
		t.Errorf("parked %+v, want H2 after 7 attempts (3 on the hub's store, 4 by the destination)", p)
	}

	// A store that answers with a refusal is no outage: those count.
	e.muni.mu.Lock()
	e.muni.stateFull = 4
	e.muni.mu.Unlock()
	e.feed.ch <- mkLetter("H3", letter.KindReferral, "")
	var h3 *retryq.Entry
	for _, p := range e.waitParked(t, "parked after the store's refusals", 2) {
		if p.LetterID == "H3" {
			h3 = &p
		}
	}
	if h3 == nil || h3.Attempts != 4 || h3.LastError.Code != adapters.CodeStateUnavailable {
		t.Errorf("parked %+v, want H3 after 4 refused writes", h3)
	}
}

func TestFailingLetterHoldsOnlyItsThread(t *testing.T) {
	e := newEnv(t)
	e.muni.mu.Lock()
	e.muni.failFor["A1"] = 3 // three failures, delivered on the 4th (last) attempt
	e.muni.mu.Unlock()
	e.feed.ch <- mkLetter("A1", letter.KindReferral, "A")
	e.feed.ch <- mkLetter("A2", letter.KindReferral, "A")
	for i := range 5 {
		e.feed.ch <- mkLetter(fmt.Sprintf("B%d", i), letter.KindReferral, "B")
	}
	eventually(t, "all delivered", func() bool { return e.muni.total() == 7 })
	e.muni.mu.Lock()
	order := append([]string(nil), e.muni.order...)
	e.muni.mu.Unlock()
	pos := map[string]int{}
	for i, id := range order {
		pos[id] = i
	}
	if pos["A2"] < pos["A1"] {
		t.Fatalf("thread order broken: %v", order)
	}
	if pos["B4"] > pos["A1"] {
		t.Fatalf("thread B waited for thread A's failing letter: %v", order)
	}
}

func TestShutdownDuringRetryNeverParksAndRestartDelivers(t *testing.T) {
	e := newEnv(t)
	e.muni.mu.Lock()
	e.muni.failNext = 1000
	e.muni.mu.Unlock()
	e.cfg.Pipeline.MaxAttempts = 1000
	e.shutdown()
	e.start()
	e.feed.ch <- mkLetter("S1", letter.KindReferral, "")
	eventually(t, "a failed attempt", func() bool {
		e.muni.mu.Lock()
		defer e.muni.mu.Unlock()
		return e.muni.failNext < 999
	})
	e.shutdown()
	ctx := context.Background()
	e.start()
	if l, _ := e.hub.Queue().List(ctx, retryq.Filter{}); len(l) != 0 {
		t.Fatalf("shutdown parked a letter: %+v", l)
	}
	e.muni.mu.Lock()
	e.muni.failNext = 0
	e.muni.mu.Unlock()
	eventually(t, "delivery after restart", func() bool { return e.muni.count("S1") == 1 })
}

func TestNoticesReachTheCoordinatorWithoutPersonalData(t *testing.T) {
	e := newEnv(t)
	e.muni.mu.Lock()
	e.muni.permanent = true
	e.muni.mu.Unlock()
	e.feed.ch <- mkLetter("N1", letter.KindReferral, "")
	eventually(t, "an arrival and a parked notice", func() bool { return e.notes.total() == 2 })
	e.notes.mu.Lock()
	defer e.notes.mu.Unlock()
	for _, n := range e.notes.letters {
		if !strings.HasPrefix(n.ID, "notice:") || n.Kind != letter.KindNotification {
			t.Fatalf("unexpected letter in the notice box: %s", n.ID)
		}
		all := n.Subject + n.Text
		for _, bad := range []string{"2509479989", "Bruno", "Elmer", "Henvisning"} {
			if strings.Contains(all, bad) {
				t.Fatalf("notice carries personal data %q: %q", bad, all)
			}
		}
		if n.Patient != nil || len(n.Receivers) != 1 || n.Receivers[0].Email != "koordinator@samraad.example" {
			t.Fatalf("notice addressed wrongly: %+v", n)
		}
	}
	if e.muni.total() != 0 || e.gp.total() != 0 {
		t.Fatal("notices must not reach other destinations")
	}
}

func TestFindLettersByThreadAndPatient(t *testing.T) {
	e := newEnv(t)
	e.feed.ch <- mkLetter("F1", letter.KindReferral, "THREAD-A")
	e.feed.ch <- mkLetter("F2", letter.KindReferral, "THREAD-A")
	other := mkLetter("F3", letter.KindReferral, "THREAD-B")
	other.Patient = &letter.Patient{CPR: "1509819996"}
	e.feed.ch <- other
	eventually(t, "stored", func() bool { return e.muni.total() == 3 })
	ctx := context.Background()
	got, err := e.hub.FindLetters(ctx, pipeline.Query{ThreadID: "THREAD-A"})
	if err != nil || len(got) != 2 || got[0].ID != "F1" || got[1].ID != "F2" {
		t.Fatalf("thread search: %v %+v", err, got)
	}
	got, err = e.hub.FindLetters(ctx, pipeline.Query{PatientID: "150981-9996"})
	if err != nil || len(got) != 1 || got[0].ID != "F3" {
		t.Fatalf("patient search: %v %+v", err, got)
	}
	got, _ = e.hub.FindLetters(ctx, pipeline.Query{PatientID: "2512489996"})
	if len(got) != 0 {
		t.Fatalf("unknown patient found letters: %+v", got)
	}
}

// The hub takes plain options, no configuration file; a destination whose
// adapter cannot deliver is refused naming the configuration key.
func TestDestinationWhoseAdapterIsNoSinkNamesItsKey(t *testing.T) {
	b := brokertest.Open(t)
	regMu.Lock()
	feeds["nosink-feed"] = &feed{ch: make(chan *letter.Letter, 1)}
	regMu.Unlock()
	_, err := pipeline.New(context.Background(), pipeline.Options{Broker: b, Logger: slog.New(slog.DiscardHandler), DataDir: t.TempDir(),
		Streams: brokertest.Streams(), Settings: pipeline.Settings{MaxInFlight: 8, BlobsGrace: time.Hour},
		Adapters:     map[string]map[string]any{"nosink-feed": {"type": "test-feed"}},
		Destinations: map[string]pipeline.Destination{"casefile": {Adapter: "nosink-feed", Sector: "municipality"}}})
	want := `destinations.casefile.adapter: adapter "nosink-feed" cannot deliver letters (it is not a sink)`
	if err == nil || err.Error() != want {
		t.Fatalf("New gave %v, want %s", err, want)
	}
}

// A sink that can take only so many deliveries at once (adapters.Capacity)
// gets no more: the rest wait in the stream. Without it, the destination
// takes up to pipeline.max_in_flight.
func TestADestinationHoldsNoMoreThanItsSinkTakes(t *testing.T) {
	e := newEnv(t)
	e.muni.mu.Lock()
	e.muni.delay = 100 * time.Millisecond
	e.muni.mu.Unlock()
	for i := range 12 {
		e.feed.ch <- mkLetter(fmt.Sprintf("C%d", i), letter.KindReferral, "")
	}
	eventually(t, "the first twelve delivered", func() bool { return e.muni.total() == 12 })
	if p := e.muni.peak.Load(); p <= 2 {
		t.Fatalf("without a capacity the sink had at most %d deliveries at once; the check below could not fail", p)
	}
	e.shutdown()
	e.muni.capacity = 2
	e.muni.peak.Store(0)
	e.start()
	for i := range 12 {
		e.feed.ch <- mkLetter(fmt.Sprintf("D%d", i), letter.KindReferral, "")
	}
	eventually(t, "the next twelve delivered", func() bool { return e.muni.total() == 24 })
	if p := e.muni.peak.Load(); p > 2 {
		t.Errorf("a sink of capacity 2 had %d deliveries at once", p)
	}
}
