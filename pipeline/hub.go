// Package pipeline runs Samhub's letter flow on NATS JetStream: sources store
// letters on one stream; each destination reads it through its own durable
// consumer (a Watermill router handler), applies the routing rules and
// consent for itself, delivers with retry and backoff, and parks what keeps
// failing in the retry queue. Every step lands in the letter's journey.
package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/json"
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
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/internal/config"
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

// Options wire a Hub.
type Options struct {
	Config   *config.Config
	Broker   *broker.Broker
	Logger   *slog.Logger
	Registry prometheus.Registerer
	Holder   string // this replica's name, for leases; default host name + pid
	Now      func() time.Time
}

// Hub is one running replica of the pipeline.
type Hub struct {
	cfg      *config.Config
	b        *broker.Broker
	js       jetstream.JetStream
	log      *slog.Logger
	m        *metrics
	reg      prometheus.Registerer
	now      func() time.Time
	holder   string
	secret   []byte
	letters  jetstream.Stream
	consents jetstream.KeyValue

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
	c := o.Config
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
	h := &Hub{cfg: c, b: o.Broker, js: o.Broker.JS, log: o.Logger, reg: o.Registry, now: o.Now, holder: o.Holder,
		journey: journey.New(o.Broker.JS), queue: retryq.New(o.Broker.JS), audit: audit.New(o.Broker.JS),
		router: newRouter(c), sources: map[string]adapters.Source{}, reporters: map[string]adapters.StatusReporter{}, dests: map[string]*destination{},
		subs: map[string]*jspubsub.Subscriber{}, all: map[string]any{}, routerDone: make(chan struct{})}
	h.stopping, h.stop = context.WithCancel(context.Background())
	h.m = newMetrics(o.Registry)
	// Writes refused before the embedded store was restarted after a fault
	// (a full disk) say nothing about the restarted one.
	o.Broker.OnStoreRestart(func() { h.writes.observe(nil) })
	if err := broker.Provision(ctx, h.js, c.Streams, c.NATS.Replicas); err != nil {
		return nil, err
	}
	var err error
	if h.letters, err = h.js.Stream(ctx, broker.StreamLetters); err != nil {
		return nil, err
	}
	if h.consents, err = h.js.KeyValue(ctx, broker.BucketConsent); err != nil {
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
	touch := min(blobs.DefaultTouchAfter, c.Streams.BlobsGrace/2)
	if h.blobs, err = blobs.New(ctx, h.js, blobs.Options{Registerer: o.Registry, TouchAfter: touch}); err != nil {
		return nil, err
	}
	inlineMax, _ := config.ParseBytes(c.Pipeline.InlineMaxBytes)
	blobMemory, _ := config.ParseBytes(c.Pipeline.BlobMemory) // checked by config.Validate
	blobs.SetTransferMemory(blobMemory)
	msgMax, _ := config.ParseBytes(c.Streams.MaxMsgSize)
	h.inlineMax, h.msgMax = int(inlineMax), int(msgMax)
	if h.inlineMax <= 0 { // a configuration not made by config.Load
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
	names := make([]string, 0, len(h.cfg.Adapters))
	for n := range h.cfg.Adapters {
		names = append(names, n)
	}
	sort.Strings(names)
	var errs []error
	for _, name := range names {
		block := map[string]any{}
		for k, v := range h.cfg.Adapters[name] {
			if k != "type" {
				block[k] = v
			}
		}
		typ, _ := h.cfg.Adapters[name]["type"].(string)
		state, err := broker.NewStateStore(ctx, h.js, name)
		if err != nil {
			return err
		}
		dir := filepath.Join(h.cfg.DataDir, "adapters", name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("adapters.%s: data dir: %w", name, err)
		}
		inst, err := adapters.Build(typ, adapters.Deps{Name: name, Logger: h.log.With("adapter", name), DataDir: dir, State: state, Metrics: h.reg, Now: h.now, Letters: storedLetters{h}}, block)
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
	for name, dc := range h.cfg.Destinations {
		sink, ok := h.all[dc.Adapter].(adapters.Sink)
		if !ok {
			if _, built := h.all[dc.Adapter]; built {
				errs = append(errs, &config.Error{Key: "destinations." + name + ".adapter", Msg: fmt.Sprintf("adapter %q cannot deliver letters (it is not a sink)", dc.Adapter)})
			}
			continue
		}
		d := &destination{name: name, sink: sink, cfg: dc, maxAttempts: h.cfg.Pipeline.MaxAttempts, backoffMin: h.cfg.Pipeline.BackoffInitial, backoffMax: h.cfg.Pipeline.BackoffMax, timeout: h.cfg.Pipeline.SinkTimeout}
		if dc.MaxAttempts > 0 {
			d.maxAttempts = dc.MaxAttempts
		}
		if dc.BackoffInitial > 0 {
			d.backoffMin = dc.BackoffInitial
		}
		if dc.BackoffMax > 0 {
			d.backoffMax = dc.BackoffMax
		}
		if dc.SinkTimeout > 0 {
			d.timeout = dc.SinkTimeout
		}
		h.dests[name] = d
	}
	return errors.Join(errs...)
}

// ConsumerName is the durable consumer a destination reads through.
func ConsumerName(dest string) string { return "dest-" + dest }

func (h *Hub) buildRouter(ctx context.Context) error {
	wlog := watermill.NewSlogLoggerWithLevelMapping(h.log.With("component", "router"), map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})
	r, err := message.NewRouter(message.RouterConfig{CloseTimeout: h.cfg.Pipeline.ShutdownGrace}, wlog)
	if err != nil {
		return err
	}
	r.AddMiddleware(middleware.Recoverer)
	h.decoded = newDecoded(len(h.dests), h.cfg.Pipeline.MaxInFlight)
	wmetrics.NewPrometheusMetricsBuilder(h.reg, "samhub", "router").AddPrometheusRouterMetrics(r)
	for name, d := range h.dests {
		if err := h.ensureConsumer(ctx, d); err != nil {
			return err
		}
		sub, err := jspubsub.NewSubscriber(h.js, jspubsub.SubscriberConfig{
			Consumer:     func(string) (string, string) { return broker.StreamLetters, ConsumerName(name) },
			OrderKey:     func(m *message.Message) string { return m.Metadata.Get(HdrThread) },
			MaxInFlight:  h.cfg.Pipeline.MaxInFlight,
			CloseTimeout: h.cfg.Pipeline.ShutdownGrace,
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

// ensureConsumer creates the destination's durable consumer, or updates the
// settings that may change in place. A new destination starts with letters
// that arrive from now on; an existing one keeps its position.
func (h *Hub) ensureConsumer(ctx context.Context, d *destination) error {
	// Short: the subscriber sends InProgress while a letter is held, so a
	// slow sink call never times out, and after a crash letters come back
	// within this time.
	ackWait := h.cfg.Pipeline.AckWait
	cfg := jetstream.ConsumerConfig{
		Durable:        ConsumerName(d.name),
		Description:    "Samhub destination " + d.name,
		FilterSubjects: []string{broker.SubjLetters + ".in.>", broker.SubjLetters + ".replay." + d.name + ".>"},
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        ackWait,
		MaxAckPending:  h.cfg.Pipeline.MaxInFlight,
		MaxDeliver:     -1, // the hub parks by itself; JetStream's limit would drop silently
		DeliverPolicy:  jetstream.DeliverNewPolicy,
		Replicas:       h.cfg.NATS.Replicas,
	}
	existing, err := h.js.Consumer(ctx, broker.StreamLetters, cfg.Durable)
	if err == nil {
		cur := existing.CachedInfo().Config
		cur.FilterSubjects, cur.AckWait, cur.MaxAckPending, cur.MaxDeliver, cur.Description = cfg.FilterSubjects, cfg.AckWait, cfg.MaxAckPending, cfg.MaxDeliver, cfg.Description
		cur.FilterSubject = ""
		_, err = h.js.UpdateConsumer(ctx, broker.StreamLetters, cur)
		return err
	}
	if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return err
	}
	_, err = h.js.CreateConsumer(ctx, broker.StreamLetters, cfg)
	if err != nil {
		return fmt.Errorf("consumer for destination %s: %w", d.name, err)
	}
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

func (h *Hub) gaugeLoop(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		h.updateGauges(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (h *Hub) updateGauges(ctx context.Context) {
	c, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if h.b.Conn.IsConnected() {
		h.m.natsConnected.Set(1)
	} else {
		h.m.natsConnected.Set(0)
	}
	if h.Ready(c) == nil {
		h.m.jsReady.Set(1)
	} else {
		h.m.jsReady.Set(0)
		return
	}
	for name := range h.dests {
		if ci, err := h.js.Consumer(c, broker.StreamLetters, ConsumerName(name)); err == nil {
			if info, err := ci.Info(c); err == nil {
				h.m.pending.WithLabelValues(name).Set(float64(info.NumPending + uint64(info.NumAckPending)))
			}
		}
		h.m.held.WithLabelValues(name).Set(float64(len(h.subs[name].Held())))
	}
	// A failed count leaves the last figures rather than showing an empty queue.
	if stats, err := h.queue.Stats(c); err == nil {
		for name := range h.dests {
			h.m.parkedNow.WithLabelValues(name).Set(0)
			h.m.parkedOldest.WithLabelValues(name).Set(0)
		}
		for _, s := range stats {
			h.m.parkedNow.WithLabelValues(s.Destination).Set(float64(s.Count))
			if !s.Oldest.IsZero() {
				h.m.parkedOldest.WithLabelValues(s.Destination).Set(h.now().Sub(s.Oldest).Seconds())
			}
		}
	}
	h.blobs.UpdateGauge(c)
	for _, st := range []string{broker.StreamLetters, broker.StreamParked, broker.StreamJourney, broker.StreamAudit} {
		if s, err := h.js.Stream(c, st); err == nil {
			if info, err := s.Info(c); err == nil {
				h.m.storeBytes.WithLabelValues(st).Set(float64(info.State.Bytes))
			}
		}
	}
}

// blobCollectorLoop deletes, on the one replica holding the lease, the
// blobs no letter can name any more, every pipeline.blob_gc_interval (an
// hour by default). The time of the last run is kept in the state bucket,
// so restarts and a lease moving between replicas do not run it more often.
func (h *Hub) blobCollectorLoop(ctx context.Context) {
	kv, err := h.js.KeyValue(ctx, broker.BucketState)
	if err != nil {
		h.log.Error("blob collector not started", "err", err)
		return
	}
	const lastKey = "hub.blob-collector-last"
	every := h.cfg.Pipeline.BlobGCInterval
	if every <= 0 {
		every = time.Hour
	}
	_ = broker.RunLeased(ctx, h.js, "blob-collector", h.holder, h.log, func(ctx context.Context) error {
		for {
			wait := time.Duration(0)
			if e, err := kv.Get(ctx, lastKey); err == nil {
				if last, err := time.Parse(time.RFC3339Nano, string(e.Value())); err == nil {
					wait = time.Until(last.Add(every))
				}
			}
			adapters.Sleep(ctx, wait)
			if ctx.Err() != nil {
				return nil
			}
			cutoff := h.now().Add(-h.cfg.Streams.LettersMaxAge - h.cfg.Streams.BlobsGrace)
			n, err := h.CollectBlobs(ctx, cutoff)
			if err != nil {
				h.log.Warn("blob collection failed; trying again next round", "err", err)
			} else {
				h.log.Info("blobs collected", "deleted", n)
			}
			if _, err := kv.Put(ctx, lastKey, []byte(h.now().UTC().Format(time.RFC3339Nano))); err != nil && ctx.Err() == nil {
				h.log.Warn("blob collector: last run not recorded", "err", err)
				adapters.Sleep(ctx, every)
			}
		}
	})
}

// CollectBlobs deletes the blobs dated before cutoff that no parked letter
// names (letters on the letter stream name only blobs dated after
// now − letters_max_age − blobs_grace, see blobs.Store.Collect), and
// returns how many it deleted. The hub calls it from its collector loop;
// operators and tests may call it directly.
func (h *Hub) CollectBlobs(ctx context.Context, cutoff time.Time) (int, error) {
	keep, err := h.parkedBlobs(ctx)
	if err != nil {
		return 0, err
	}
	return h.blobs.Collect(ctx, cutoff, keep)
}

// parkedHeader is retryq's entry header (retryq keeps its name private);
// only the blob names are read from it.
const parkedHeader = "Samhub-Parked"

// parkedBlobs reads the blob names of every parked entry, from headers
// only. Unlike broker.Scan it fails unless it saw every entry present: a
// missed entry would let its blobs be deleted.
func (h *Hub) parkedBlobs(ctx context.Context) (map[string]bool, error) {
	cons, err := h.js.OrderedConsumer(ctx, broker.StreamParked, jetstream.OrderedConsumerConfig{FilterSubjects: broker.ParkedFilter(""), HeadersOnly: true})
	if err != nil {
		return nil, err
	}
	keep := map[string]bool{}
	for {
		batch, err := cons.Fetch(512, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return nil, err
		}
		got := 0
		for m := range batch.Messages() {
			got++
			var e struct {
				Blobs []string `json:"blobs"`
			}
			if err := json.Unmarshal([]byte(m.Headers().Get(parkedHeader)), &e); err != nil {
				return nil, fmt.Errorf("parked entry without a readable header: %w", err)
			}
			for _, b := range e.Blobs {
				keep[b] = true
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return nil, err
		}
		if got > 0 {
			continue
		}
		info, err := cons.Info(ctx)
		if err != nil {
			return nil, err
		}
		if info.NumPending > 0 {
			return nil, errors.New("the retry queue could not be read to its end")
		}
		return keep, nil
	}
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

func newRouter(c *config.Config) *route.Router {
	routes := c.Routes
	if r, ok := council.ReceiptRoute(c.Council); ok {
		routes = append([]config.Route{r}, routes...)
	}
	if r, ok := notifyRoute(c.Notify); ok {
		routes = append([]config.Route{r}, routes...)
	}
	return route.New(routes, c.Destinations, c.Receivers)
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
