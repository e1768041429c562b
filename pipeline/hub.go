// Package pipeline runs Samhub's letter flow on NATS JetStream. Its parts,
// in the order a letter meets them:
//
//   - intake (intake.go): the sources' Publisher and BatchPublisher; stores
//     a source's round of letters on the letter stream (an atomic batch for
//     a large round), each once, with the source's checkpoint; then
//     afterstore.go and acks.go do what follows from a stored letter (the
//     source's recipient status, a receiver's acknowledgement).
//   - destinations (destination.go): one per sink, each reading the letter
//     stream through its own durable consumer (a Watermill router handler
//     over jspubsub); per letter it decides (route, consent, thread hold),
//     addresses, delivers with retry and backoff, and parks what keeps
//     failing in the retry queue. holds.go and release.go keep a thread's
//     later letters behind a parked one; status.go tells the source what
//     became of each recipient; notices.go renders the coordinator's
//     notices at the notification destination.
//   - operations (operations.go, bulkreplay.go, rejected.go): find, trace,
//     replay, discard, release, for the API and the console; each audited.
//   - readers: stored.go (letters by id), consent.go (the consent
//     register), steps.go (the journey, package journey).
//
// hub.go wires them; upkeep.go keeps gauges and collects blobs.
package pipeline

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmetrics "github.com/ThreeDotsLabs/watermill/components/metrics"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/internal/logging"
	"github.com/samhub/samhub/pipeline/audit"
	"github.com/samhub/samhub/pipeline/blobs"
	"github.com/samhub/samhub/pipeline/broker"
	"github.com/samhub/samhub/pipeline/council"
	"github.com/samhub/samhub/pipeline/journey"
	"github.com/samhub/samhub/pipeline/jspubsub"
	"github.com/samhub/samhub/pipeline/letter"
	"github.com/samhub/samhub/pipeline/retryq"
	"github.com/samhub/samhub/pipeline/route"
)

// Hub is one running replica of the pipeline.
type Hub struct {
	opt      Options
	b        *broker.Broker
	js       jetstream.JetStream
	log      *slog.Logger
	m        *metrics
	reg      prometheus.Registerer
	now      func() time.Time
	holder   string
	secret   []byte
	letters  jetstream.Stream
	stored   *storedLetters
	consents *consents
	// positions: each destination's place in the letter stream, recorded
	// so a lost consumer resumes there (positions.go).
	positions *positions

	journey *journey.Recorder
	queue   *retryq.Queue
	audit   *audit.Log
	router  *route.Router

	sources map[string]adapters.Source
	// reporters are the sources told each recipient's status (status.go).
	reporters map[string]adapters.StatusReporter
	holds     *holds           // threads held back behind a parked letter, per destination
	bulks     *bulks           // bulk replays (bulkreplay.go)
	council   *council.Council // the council's register; nil when council.enabled is false
	dests     map[string]*destination
	subs      map[string]*jspubsub.Subscriber
	decoded   *decoded // one decode of a stored letter for all destinations
	blobs     *blobs.Store
	// inlineMax: above it a letter's large parts go to the blob store;
	// msgMax: the letter stream's max message size.
	inlineMax, msgMax int
	all               map[string]any

	writes     writeHealth
	background sync.WaitGroup // notices being stored
	stopping   context.Context
	stop       context.CancelFunc
	routerDone chan struct{}
	wm         *message.Router
	mu         sync.Mutex
}

// New provisions streams, builds every configured adapter and prepares the
// router; nothing flows until Run.
func New(ctx context.Context, o Options) (*Hub, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Holder == "" {
		host, _ := os.Hostname()
		// The pid alone would make two hubs in one process share a lease.
		suffix := make([]byte, 4)
		_, _ = rand.Read(suffix)
		o.Holder = fmt.Sprintf("%s-%d-%x", host, os.Getpid(), suffix)
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	h := &Hub{opt: o, b: o.Broker, js: o.Broker.JS, log: o.Logger, reg: o.Registry, now: o.Now, holder: o.Holder,
		journey: journey.New(o.Broker.JS).WithLogger(o.Logger), queue: retryq.New(o.Broker.JS), audit: audit.New(o.Broker.JS),
		router: newRouter(o.Route, o.Notify, o.Council), sources: map[string]adapters.Source{}, reporters: map[string]adapters.StatusReporter{}, dests: map[string]*destination{},
		subs: map[string]*jspubsub.Subscriber{}, all: map[string]any{}, routerDone: make(chan struct{})}
	h.stopping, h.stop = context.WithCancel(context.Background())
	h.m = newMetrics(o.Registry)
	// Writes refused before the embedded store was restarted after a fault
	// (a full disk) say nothing about the restarted one.
	o.Broker.OnStoreRestart(func() { h.writes.observe(nil) })
	if err := broker.Provision(ctx, h.js, o.Streams, o.Replicas); err != nil {
		return nil, err
	}
	var err error
	if h.letters, err = h.js.Stream(ctx, broker.StreamLetters); err != nil {
		return nil, err
	}
	consentKV, err := h.js.KeyValue(ctx, broker.BucketConsent)
	if err != nil {
		return nil, err
	}
	h.consents = &consents{kv: consentKV}
	if h.positions, err = newPositions(ctx, h.js); err != nil {
		return nil, err
	}
	if h.secret, err = loadSecret(ctx, h.js); err != nil {
		return nil, err
	}
	if h.holds, err = newHolds(ctx, h.js); err != nil {
		return nil, err
	}
	if err := h.holds.watch(h.stopping, h.log); err != nil {
		return nil, fmt.Errorf("thread holds: %w", err)
	}
	if h.bulks, err = newBulks(ctx, h.js); err != nil {
		return nil, err
	}
	// A reused blob is re-dated well inside the collector's grace (see
	// blobs.Store.Collect).
	touch := min(blobs.DefaultTouchAfter, o.Settings.BlobsGrace/2)
	if h.blobs, err = blobs.New(ctx, h.js, blobs.Options{Registerer: o.Registry, TouchAfter: touch}); err != nil {
		return nil, err
	}
	h.stored = &storedLetters{stream: h.letters, blobs: h.blobs}
	blobs.SetTransferMemory(o.Settings.BlobMemory)
	h.inlineMax, h.msgMax = int(o.Settings.InlineMaxBytes), int(o.Streams.MaxMsgSize)
	if h.inlineMax <= 0 { // settings not made from a loaded configuration
		h.inlineMax = 1 << 20
	}
	if h.msgMax <= 0 {
		h.msgMax = storeRecordMax
	}
	if err := h.buildAdapters(ctx); err != nil {
		return nil, err
	}
	if err := h.buildRouter(ctx); err != nil {
		return nil, err
	}
	if h.council, err = h.newCouncil(ctx); err != nil {
		return nil, err
	}
	codes := map[string][]string{}
	for name, src := range h.sources {
		if rc, ok := src.(adapters.RejectCodes); ok {
			codes[name] = rc.RejectCodes()
		}
	}
	h.m.zero(h.sourceNames(), h.destNames(), codes)
	return h, nil
}

func (h *Hub) buildAdapters(ctx context.Context) error {
	names := make([]string, 0, len(h.opt.Adapters))
	for n := range h.opt.Adapters {
		names = append(names, n)
	}
	sort.Strings(names)
	var errs []error
	for _, name := range names {
		block := map[string]any{}
		for k, v := range h.opt.Adapters[name] {
			if k != "type" {
				block[k] = v
			}
		}
		typ, _ := h.opt.Adapters[name]["type"].(string)
		state, err := broker.NewStateStore(ctx, h.js, name)
		if err != nil {
			return err
		}
		dir := filepath.Join(h.opt.DataDir, "adapters", name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("adapters.%s: data dir: %w", name, err)
		}
		inst, err := adapters.Build(typ, adapters.Deps{Name: name, Logger: h.log.With("adapter", name), DataDir: dir, State: state, Metrics: h.reg, Now: h.now, Letters: checkpoints{h}}, block)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		h.all[name] = inst
		if s, ok := inst.(adapters.Source); ok {
			h.sources[name] = s
			if sr, ok := inst.(adapters.StatusReporter); ok {
				h.reporters[name] = sr
			}
		}
	}
	for name, dc := range h.opt.Destinations {
		sink, ok := h.all[dc.Adapter].(adapters.Sink)
		if !ok {
			if _, built := h.all[dc.Adapter]; built {
				errs = append(errs, fmt.Errorf("destinations.%s.adapter: adapter %q cannot deliver letters (it is not a sink)", name, dc.Adapter))
			}
			continue
		}
		h.dests[name] = newDestination(name, sink, dc, h.opt.Settings)
	}
	return errors.Join(errs...)
}

func (h *Hub) buildRouter(ctx context.Context) error {
	wlog := watermill.NewSlogLoggerWithLevelMapping(h.log.With("component", "router"), map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})
	r, err := message.NewRouter(message.RouterConfig{CloseTimeout: h.opt.Settings.ShutdownGrace}, wlog)
	if err != nil {
		return err
	}
	r.AddMiddleware(middleware.Recoverer)
	h.decoded = newDecoded(len(h.dests), h.opt.Settings.MaxInFlight)
	wmetrics.NewPrometheusMetricsBuilder(h.reg, "samhub", "router").AddPrometheusRouterMetrics(r)
	for name, d := range h.dests {
		if err := h.ensureConsumer(ctx, d); err != nil {
			return err
		}
		sub, err := jspubsub.NewSubscriber(h.js, jspubsub.SubscriberConfig{
			Consumer: func(string) (string, string) { return broker.StreamLetters, ConsumerName(name) },
			// A consumer deleted under a running hub is made again at the
			// destination's recorded place (positions.go), as at a start.
			Recreate:     func(ctx context.Context, _ string) error { return h.ensureConsumer(ctx, d) },
			OrderKey:     func(m *message.Message) string { return m.Metadata.Get(HdrThread) },
			MaxInFlight:  d.inFlight,
			CloseTimeout: h.opt.Settings.ShutdownGrace,
		}, wlog)
		if err != nil {
			return err
		}
		h.subs[name] = sub
		r.AddConsumerHandler("deliver-"+name, name, sub, h.handler(d))
	}
	h.wm = r
	return nil
}

// Run starts the router and the sources and blocks until ctx is cancelled.
// Shutdown order: sources stop first (no new letters), then handlers in
// backoff release their letters unacknowledged, in-flight sink calls finish,
// and the router closes.
func (h *Hub) Run(ctx context.Context) error {
	routerErr := make(chan error, 1)
	go func() {
		defer close(h.routerDone)
		routerErr <- h.wm.Run(context.Background())
	}()
	select {
	case <-h.wm.Running():
	case err := <-routerErr:
		return fmt.Errorf("router: %w", err)
	}
	srcCtx, stopSources := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for name, s := range h.sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pub := &ingest{h: h, source: name}
			err := broker.RunLeased(srcCtx, h.js, name, h.holder, h.log, func(c context.Context) error { return s.Run(c, pub) })
			if err != nil && srcCtx.Err() == nil {
				h.log.Error("source stopped", "source", name, "err", err)
			}
		}()
	}
	go h.gaugeLoop(srcCtx)
	go h.blobCollectorLoop(srcCtx)
	if h.council != nil {
		// Stopped with the sources: it stores receipts and notices.
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := h.council.Run(srcCtx); err != nil && srcCtx.Err() == nil {
				h.log.Error("council register stopped", "err", err)
			}
		}()
	}
	h.log.Info("pipeline running", "sources", len(h.sources), "destinations", len(h.dests))
	<-ctx.Done()
	stopSources()
	wg.Wait()
	h.background.Wait()
	h.log.Info("sources stopped; draining deliveries")
	h.stop()
	h.bulks.running.Wait() // a bulk replay stops between two letters
	// Close the subscribers while the router still runs, so in-flight
	// handlers can ack and every letter not acked is Nak'd back to JetStream
	// at once (the router's own Close does not close subscribers).
	var cw sync.WaitGroup
	for _, sub := range h.subs {
		cw.Add(1)
		go func() { defer cw.Done(); _ = sub.Close() }()
	}
	cw.Wait()
	_ = h.wm.Close()
	<-h.routerDone
	pctx, pcancel := context.WithTimeout(context.Background(), 5*time.Second)
	for name := range h.dests {
		h.noteConsumer(pctx, name, true)
	}
	pcancel()
	h.background.Wait() // notices of letters parked while draining
	// The journey's last steps, written in the background, before the
	// connection goes.
	fctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	if err := h.journey.Flush(fctx); err != nil {
		h.log.Warn("journey steps not all recorded before shutdown", "err", err)
	}
	cancel()
	for _, inst := range h.all {
		if c, ok := inst.(interface{ Close() error }); ok {
			_ = c.Close()
		}
	}
	return nil
}

// Ready reports whether NATS and the streams are usable.
func (h *Hub) Ready(ctx context.Context) error {
	if err := h.b.Ready(ctx); err != nil {
		return err
	}
	c, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := h.letters.Info(c); err != nil {
		return fmt.Errorf("letter stream not usable: %w", err)
	}
	return h.writes.check()
}

// loadSecret returns the hub's pseudonymisation key, made once and kept in
// the state bucket so every replica and restart derives the same pseudonyms.
func loadSecret(ctx context.Context, js jetstream.JetStream) ([]byte, error) {
	kv, err := js.KeyValue(ctx, broker.BucketState)
	if err != nil {
		return nil, err
	}
	const key = "hub.pseudonym-secret"
	if e, err := kv.Get(ctx, key); err == nil {
		return e.Value(), nil
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	if _, err := kv.Create(ctx, key, b); err != nil {
		if e, gerr := kv.Get(ctx, key); gerr == nil {
			return e.Value(), nil
		}
		return nil, err
	}
	return b, nil
}

func threadToken(l *letter.Letter) string { return broker.Token(l.Thread()) }

// scrubText masks CPR numbers (a plausible birth date and four digits) but
// leaves GLN numbers and MedCom letter ids, which contain long digit runs.
func scrubText(s string) string { return logging.Redact(s) }

// newRouter routes by o, with the hub's own rules in front: notices to
// their destination, then the council's receipts.
func newRouter(o route.Options, n Notify, k council.Options) *route.Router {
	var own []route.Rule
	if r, ok := notifyRoute(n); ok {
		own = append(own, r)
	}
	if r, ok := council.ReceiptRoute(k); ok {
		own = append(own, r)
	}
	o.Rules = append(own, o.Rules...)
	return route.New(o)
}

func (h *Hub) sourceNames() []string {
	out := []string{notifySource}
	for n := range h.sources {
		out = append(out, n)
	}
	return out
}

func (h *Hub) destNames() []string {
	out := make([]string, 0, len(h.dests))
	for n := range h.dests {
		out = append(out, n)
	}
	return out
}
