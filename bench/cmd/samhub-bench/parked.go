package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/samhub/samhub/adapters/medcom/oioxml"
	"github.com/samhub/samhub/internal/config"
	"github.com/samhub/samhub/pipeline/broker"
	"github.com/samhub/samhub/pipeline/letter"
	"github.com/samhub/samhub/pipeline/retryq"
)

// parkedResult is latest.json's "parked": the hub's memory with an empty
// retry queue and with n parked letters, while it keeps working.
type parkedResult struct {
	N             int      `json:"n"`
	LetterBytes   int      `json:"letter_bytes"` // the letter JSON of one parked entry; the phase is about count, not size
	StoredMB      float64  `json:"stored_mb"`    // the parked stream on disk
	FillS         float64  `json:"fill_s"`
	FillPerS      float64  `json:"fill_per_s"`
	FillHow       string   `json:"fill_how"`
	RestartS      float64  `json:"restart_s"` // hub start on the filled store
	RSSEmptyMB    float64  `json:"rss_empty_mb"`
	RSSFullMB     float64  `json:"rss_full_mb"`
	PeakEmptyMB   float64  `json:"peak_empty_mb"`
	PeakMB        float64  `json:"peak_mb"` // with the full queue
	HeapEmptyMB   float64  `json:"go_heap_empty_mb"`
	HeapFullMB    float64  `json:"go_heap_full_mb"`
	Empty         workRun  `json:"empty"`
	Full          workRun  `json:"full"`
	HeapTopInuse  []string `json:"heap_top_inuse_full"`
	HeapTopGrowth []string `json:"heap_top_inuse_growth"` // full minus empty
	Profiles      []string `json:"profiles,omitempty"`
}

// workRun is what the hub did while its memory was measured.
type workRun struct {
	Delivered   int     `json:"delivered"` // letters to all three destinations
	LettersPerS float64 `json:"letters_per_s"`
	ListMs      float64 `json:"list_first_page_ms"` // retry queue, first page (500, the API's default)
	Listed      int     `json:"listed"`
	StatsMs     float64 `json:"stats_ms"` // per-destination counts (console overview, hub gauges every 5 s)
	StatsCount  int     `json:"stats_count"`
	StatsErr    string  `json:"stats_error,omitempty"`
	GetMs       float64 `json:"get_one_ms"`
	// Peak RSS per step (the hub's gauge loop counts the queue every 5 s
	// throughout).
	PeakDeliverMB float64  `json:"peak_deliver_mb"`
	PeakListGetMB float64  `json:"peak_list_get_mb"`
	PeakStatsMB   float64  `json:"peak_stats_mb"`
	PeakIdleMB    float64  `json:"peak_idle_mb"`
	StatsAllocTop []string `json:"stats_alloc_top,omitempty"` // go tool pprof -top -sample_index=alloc_space over the Stats call
}

const parkedWorkLetters = 300

// measureParked runs the retry-queue memory phase on a hub of its own.
func measureParked(ctx context.Context, tmp string, gen *letters, n int) (parkedResult, error) {
	res := parkedResult{N: n}
	dir := tmp + "/parked"
	rig, err := startRig(ctx, dir, gen, func(c *config.Config) {
		// Room for n entries (a parked letter of ~1 KB plus its header is
		// ~1.6 KB stored); the sum of the streams stays under max_store.
		c.Streams.ParkedMaxBytes = fmt.Sprintf("%dMB", max(512, n*3/1000))
	}, &logLines{})
	if err != nil {
		return res, err
	}
	defer rig.close()
	if _, err := rig.run("parked: warm-up", 3, 200, 0, 2*time.Minute); err != nil {
		return res, err
	}
	if res.Empty, err = rig.work(ctx, 4, tmp); err != nil {
		return res, fmt.Errorf("empty queue: %w", err)
	}
	res.PeakEmptyMB = res.Empty.peak()
	res.RSSEmptyMB = settledRSSMB()
	res.HeapEmptyMB = heapInuseMB()
	empty, err := writeHeap(tmp, "heap-parked-empty.pb.gz")
	if err != nil {
		return res, err
	}
	logf("parked: empty queue, RSS %.0f MB (peak %.0f MB), Go heap %.0f MB", res.RSSEmptyMB, res.PeakEmptyMB, res.HeapEmptyMB)

	if err := rig.stop(); err != nil {
		return res, err
	}
	logf("parked: filling the retry queue with %d letters (hub stopped)", n)
	start := time.Now()
	if res.LetterBytes, res.StoredMB, err = fillParked(ctx, rig.cfg, n); err != nil {
		return res, fmt.Errorf("fill: %w", err)
	}
	res.FillS = time.Since(start).Seconds()
	res.FillPerS = float64(n) / res.FillS
	res.FillHow = "hub stopped; retryq.Park (the hub's own format) with 64 in flight on an embedded server on the hub's store without SyncAlways, duplicate window 1 s during the fill (restored to the configured one when the hub starts) so the store does not look like a million letters parked within the last two minutes; then the hub restarted on that store"
	logf("parked: %d letters of %d B stored (%.0f MB) in %.1f s (%.0f/s)", n, res.LetterBytes, res.StoredMB, res.FillS, res.FillPerS)
	// The restarted server rebuilds its duplicate memory from the entries
	// stored within the (lowered) window before it; let the window pass.
	time.Sleep(1500 * time.Millisecond)
	runtime.GC()

	start = time.Now()
	if err := rig.start(ctx); err != nil {
		return res, fmt.Errorf("restart on the filled store: %w", err)
	}
	res.RestartS = time.Since(start).Seconds()
	if _, err := rig.run("parked: warm-up (full)", 5, 200, 0, 3*time.Minute); err != nil {
		return res, err
	}
	if res.Full, err = rig.work(ctx, 6, tmp); err != nil {
		return res, fmt.Errorf("full queue: %w", err)
	}
	res.PeakMB = res.Full.peak()
	res.RSSFullMB = settledRSSMB()
	res.HeapFullMB = heapInuseMB()
	full, err := writeHeap(tmp, "heap-parked-full.pb.gz")
	if err != nil {
		return res, err
	}
	res.HeapTopInuse = pprofTop(full, "inuse_space", "")
	res.HeapTopGrowth = pprofTop(full, "inuse_space", empty)
	for _, p := range []string{empty, full} {
		if k := keepProfile(p); k != "" {
			res.Profiles = append(res.Profiles, k)
		}
	}
	logf("parked: %d parked, RSS %.0f MB (peak %.0f MB), Go heap %.0f MB; restart %.1f s; list %.0f ms, stats %.0f ms, get %.1f ms", n, res.RSSFullMB, res.PeakMB, res.HeapFullMB, res.RestartS, res.Full.ListMs, res.Full.StatsMs, res.Full.GetMs)
	return res, nil
}

// work is the hub keeping busy while memory is watched: letters delivered
// to all three destinations, the console's first page of the retry queue
// and one parked letter looked up, the per-destination counts (console
// overview and API stats), then two of the hub's 5-second gauge rounds
// (which count the queue too) while idle. Each step has its own peak RSS;
// the hub's gauge loop runs throughout.
func (m *memRig) work(ctx context.Context, runNo int, dir string) (workRun, error) {
	var w workRun
	resetPeakRSS()
	p, err := m.run(fmt.Sprintf("parked: work %d", runNo), runNo, parkedWorkLetters, 0, 5*time.Minute)
	if err != nil {
		return w, err
	}
	w.Delivered, w.LettersPerS, w.PeakDeliverMB = p.Letters, p.LettersPerS, peakRSSMB()
	q := m.app.Hub.Queue()
	c, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	resetPeakRSS()
	t := time.Now()
	list, err := q.List(c, retryq.Filter{Limit: 500})
	if err != nil {
		return w, fmt.Errorf("list the retry queue: %w", err)
	}
	w.ListMs, w.Listed = ms(time.Since(t)), len(list)
	if len(list) > 0 {
		t = time.Now()
		if _, _, err := q.Get(c, list[len(list)/2].Seq); err != nil {
			return w, fmt.Errorf("look up a parked letter: %w", err)
		}
		w.GetMs = ms(time.Since(t))
	}
	w.PeakListGetMB = peakRSSMB()

	before, err := writeHeap(dir, fmt.Sprintf("heap-stats-before-%d.pb.gz", runNo))
	if err != nil {
		return w, err
	}
	resetPeakRSS()
	t = time.Now()
	stats, err := q.Stats(c)
	w.StatsMs = ms(time.Since(t))
	w.PeakStatsMB = peakRSSMB()
	if err != nil {
		w.StatsErr = err.Error() // reported: the console overview and the gauges use it
	}
	for _, s := range stats {
		w.StatsCount += s.Count
	}
	if after, err := writeHeap(dir, fmt.Sprintf("heap-stats-after-%d.pb.gz", runNo)); err == nil {
		w.StatsAllocTop = pprofTop(after, "alloc_space", before)
	}

	resetPeakRSS()
	time.Sleep(11 * time.Second)
	w.PeakIdleMB = peakRSSMB()
	return w, nil
}

func (w workRun) peak() float64 {
	return max(w.PeakDeliverMB, w.PeakListGetMB, w.PeakStatsMB, w.PeakIdleMB)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func heapInuseMB() float64 {
	var s runtime.MemStats
	runtime.ReadMemStats(&s)
	return float64(s.HeapInuse) / (1 << 20)
}

// fillParked stores n parked entries on the hub's store while the hub is
// stopped, through retryq.Park itself (subject, header and message id are
// exactly the hub's), on a server without SyncAlways: one fsync per entry
// would take minutes for a million, and how fast the queue was filled does
// not change what the hub holds in memory for it afterwards.
func fillParked(ctx context.Context, cfg *config.Config, n int) (letterBytes int, storedMB float64, err error) {
	maxStore, err := config.ParseBytes(cfg.NATS.Embedded.MaxStore)
	if err != nil {
		return 0, 0, err
	}
	srv, err := server.NewServer(&server.Options{
		ServerName: "samhub-embedded", JetStream: true, StoreDir: cfg.NATS.Embedded.StoreDir,
		JetStreamMaxStore: maxStore, JetStreamMaxMemory: 64 << 20, DontListen: true, NoSigs: true, MaxPayload: 64 << 20,
	})
	if err != nil {
		return 0, 0, err
	}
	go srv.Start()
	defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
	if !srv.ReadyForConnections(30 * time.Second) {
		return 0, 0, errors.New("fill server did not start")
	}
	nc, err := nats.Connect("", nats.InProcessServer(srv))
	if err != nil {
		return 0, 0, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, 0, err
	}
	st, err := js.Stream(ctx, broker.StreamParked)
	if err != nil {
		return 0, 0, err
	}
	sc := st.CachedInfo().Config
	sc.Duplicates = time.Second
	if _, err := js.UpdateStream(ctx, sc); err != nil {
		return 0, 0, err
	}

	tmpl, err := parkedLetterTemplate()
	if err != nil {
		return 0, 0, err
	}
	// Park is a synchronous publish and safe to call concurrently; the
	// first error stops the fill.
	q := retryq.New(js)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next     atomic.Int64
		errOnce  sync.Once
		fillErr  error
		wg       sync.WaitGroup
		firstAt  = time.Now().UTC().Add(-time.Duration(n) * time.Second) // parked over the past n seconds
		failures = []retryq.Failure{
			{Class: "retryable", Code: "http_503", Reason: "the case system did not answer (503)"},
			{Class: "permanent", Code: "consent_missing", Reason: "no recorded consent covers this destination"},
		}
		dests = []string{"casefile", "region"}
	)
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				id := fmt.Sprintf("PRK%011d", i)
				data := bytes.ReplaceAll(tmpl, []byte(parkedLetterPlaceholder), []byte(id))
				f := failures[i%2]
				f.At = firstAt.Add(time.Duration(i) * time.Second)
				e := retryq.Entry{LetterID: senderEAN + "#" + id, Destination: dests[i%2], Kind: string(letter.KindReferral), Source: "medcom",
					Thread: broker.Token("episode-" + id), Attempts: 8, FirstError: f, LastError: f, ParkedAt: f.At, LetterSeq: uint64(1_000_000_000 + i)}
				if err := q.Park(ctx, e, data); err != nil {
					errOnce.Do(func() { fillErr = fmt.Errorf("entry %d: %w", i, err); cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	if fillErr != nil {
		return 0, 0, fillErr
	}
	info, err := st.Info(context.WithoutCancel(ctx))
	if err != nil {
		return 0, 0, err
	}
	if info.State.Msgs < uint64(n) {
		return 0, 0, fmt.Errorf("the parked stream holds %d messages, expected at least %d", info.State.Msgs, n)
	}
	return len(tmpl), float64(info.State.Bytes) / 1e6, nil
}

// parkedLetterPlaceholder is replaced by each entry's own letter id (same
// width, so the template is patched in place).
const parkedLetterPlaceholder = "PRK00000000000"

// parkedLetterTemplate is a ~1 KB letter as the hub stores it: a referral
// from the test GP about Bruno Test Elmer (MedCom's fictitious test person)
// with a short text and a small original.
func parkedLetterTemplate() ([]byte, error) {
	orig := []byte(`<?xml version="1.0" encoding="UTF-8"?><Emessage xmlns="http://rep.oio.dk/sundcom.dk/medcom.dk/xml/schemas/2006/07/01/"><Envelope><Sent><Date>2026-11-23</Date></Sent><Identifier>` + parkedLetterPlaceholder + `</Identifier></Envelope><ClinicalEmail><Patient><CivilRegistrationNumber>2509479989</CivilRegistrationNumber></Patient></ClinicalEmail></Emessage>`)
	l := &letter.Letter{
		ID: senderEAN + "#" + parkedLetterPlaceholder, Kind: letter.KindReferral, Format: "xdis91", Source: "medcom",
		ThreadID: "episode-" + parkedLetterPlaceholder, Received: time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC),
		Sender:    letter.Party{Role: "gp", Name: "Lægehuset Test", GLN: senderEAN},
		Receivers: []letter.Party{{Role: "municipality", Name: "Samrådet for Børn og Unge", GLN: "5790001382445"}},
		Patient:   &letter.Patient{CPR: testCPR, GivenName: "Bruno Test", FamilyName: "Elmer"},
		Category:  "regarding-referral", Subject: "Henvisning til samrådet",
		Text:     "Henvisning af Bruno Test Elmer til samrådet. Drengen har haft ondt i maven og sovet dårligt i tre måneder; forældrene ønsker en samlet vurdering. Testbrev.",
		Original: letter.Original{Data: orig, ContentType: "application/xml", Charset: "utf-8", SHA256: letter.Digest(orig)},
		Meta:     map[string]string{oioxml.MetaEnvelopeID: parkedLetterPlaceholder},
	}
	b, err := letter.Marshal(l)
	if err != nil {
		return nil, err
	}
	if bytes.Count(b, []byte(parkedLetterPlaceholder)) < 2 {
		return nil, errors.New("parked letter template: placeholder lost")
	}
	return b, nil
}
