package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/samhub/samhub/adapters/email"
	"github.com/samhub/samhub/bench/loopsim"
	"github.com/samhub/samhub/internal/app"
	"github.com/samhub/samhub/internal/config"
	"github.com/samhub/samhub/internal/hubtest"
	"github.com/samhub/samhub/internal/logging"
	"github.com/samhub/samhub/pipeline"
	"github.com/samhub/samhub/pipeline/broker"
	"github.com/samhub/samhub/pipeline/journey"
	"github.com/samhub/samhub/pipeline/letter"
)

const (
	coordinator = "koordinator@samraad.example"
	mailFrom    = "samraad@kommune.example"
)

// hubRig is a whole hub in this process with its three destinations on
// loopback: the case system (REST), the region's EPJ (FHIR) and an SMTP
// relay (implicit TLS).
type hubRig struct {
	app  *app.App
	cs   *loopsim.CaseSystem
	epj  *loopsim.EPJ
	mail *loopsim.SMTP
	in   string
	gen  *letters
	// oneSink: the rig carries letters to the case system only (the
	// same-flow phase, sameflow.go); run waits for that destination alone.
	oneSink bool
	// latencies: when set, run writes each letter's latencies to this
	// file (BENCH_LATENCIES).
	latencies string
}

// benchConfig is hubtest's configuration (the council's routes, MedCom in
// and out, case system, EPJ) with one MedCom referral going to three
// destinations:
//   - casefile (case system): the default "letters-to-case" rule;
//   - region (EPJ): a rule for referrals; the region needs consent, which
//     the harness records for the test person (Hub.RecordConsent), as a
//     coordinator does once the parents have consented;
//   - notices (SMTP, internal sector): the coordinator's "a letter arrived"
//     notice, the hub's own notification flow.
func benchConfig(dir string, cs *loopsim.CaseSystem, epj *loopsim.EPJ, mail *loopsim.SMTP) *config.Config {
	c := hubtest.DefaultConfig(filepath.Join(dir, "data"), filepath.Join(dir, "medcom"), cs.URL, epj.URL)
	c.NATS.Embedded.MaxStore = "24GB" // room for the parked phase's million letters beside the rest
	c.Streams.LettersMaxBytes, c.Streams.JourneyMaxBytes, c.Streams.BlobsMaxBytes = "8GB", "2GB", "2GB"
	c.Log.Level = "info"
	if os.Getenv("BENCH_NO_COUNCIL") != "" {
		c.Council.Enabled = false // to measure the council register's share
	}
	if w := env("BENCH_MEDCOM_WORKERS", 0); w > 0 {
		c.Adapters["medcom"]["workers"] = w
	}
	c.Adapters["mail"] = map[string]any{"type": "smtp", "host": mail.Host, "port": mail.Port, "tls": "implicit",
		"ca_file": mail.CAFile, "from": mailFrom, "allow": []any{"@samraad.example"}}
	c.Destinations["notices"] = config.Destination{Adapter: "mail", Sector: "internal"}
	c.Routes = append(c.Routes, config.Route{Name: "referral-to-region", Match: config.Match{Kind: []string{"referral"}}, To: []string{"region"}})
	c.Notify = config.Notify{Destination: "notices", Recipients: []string{coordinator}, On: []string{"arrived"}}
	return c
}

func startHub(ctx context.Context, dir string, gen *letters) (*hubRig, error) {
	m, err := startRig(ctx, dir, gen, nil, nil)
	if err != nil {
		return nil, err
	}
	return m.hubRig, nil
}

func (r *hubRig) close() {
	if r.app != nil {
		_ = r.app.Stop()
	}
	r.cs.Close()
	r.epj.Close()
	r.mail.Close()
}

// memRig is a hub with its destinations that can be stopped and started
// again on the same store: the bench configuration plus a phase's own
// overrides (tune). With logs set it keeps warnings and errors (redacted by
// the hub's logging handler) so a phase can say where a letter stopped;
// without, logs are formatted as in production (JSON, info) and thrown
// away, so their cost is in the figures.
type memRig struct {
	*hubRig
	cfg  *config.Config
	logs *logLines
}

func startRig(ctx context.Context, dir string, gen *letters, tune func(*config.Config), logs *logLines) (*memRig, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	r := &hubRig{gen: gen}
	var err error
	if r.cs, err = loopsim.StartCaseSystem(); err != nil {
		return nil, err
	}
	if r.epj, err = loopsim.StartEPJ(); err != nil {
		r.cs.Close()
		return nil, err
	}
	if r.mail, err = loopsim.StartSMTP(dir); err != nil {
		r.cs.Close()
		r.epj.Close()
		return nil, err
	}
	m := &memRig{hubRig: r, cfg: benchConfig(dir, r.cs, r.epj, r.mail), logs: logs}
	if tune != nil {
		tune(m.cfg)
	}
	if err := m.cfg.Validate(); err != nil {
		m.close()
		return nil, err
	}
	if err := m.start(ctx); err != nil {
		m.close()
		return nil, err
	}
	if needsConsent(m.cfg) {
		now := time.Now().UTC()
		if err := r.app.Hub.RecordConsent(ctx, testCPR, letter.Consent{GivenBy: "custody-holder", Form: "written", GivenAt: now.Add(-time.Hour),
			Scopes: []letter.Scope{letter.ScopeMunicipality, letter.ScopeRegionPsychiatry}}); err != nil {
			m.close()
			return nil, err
		}
	}
	r.in = filepath.Join(m.cfg.DataDir, "..", "medcom", "in")
	if err := os.MkdirAll(r.in, 0o700); err != nil {
		m.close()
		return nil, err
	}
	return m, nil
}

// needsConsent reports whether the configuration sends letters beyond the
// municipality's own sectors, where a route needs the parents' consent
// unless it says otherwise (pipeline/route); only then does the harness
// record the test person's consent before measuring.
func needsConsent(c *config.Config) bool {
	for _, d := range c.Destinations {
		if d.Sector != "municipality" && d.Sector != "internal" {
			return true
		}
	}
	return false
}

// start runs the hub (again) on the rig's configuration and store.
func (m *memRig) start(ctx context.Context) error {
	var w io.Writer = io.Discard
	if m.logs != nil {
		w = m.logs
	}
	log := logging.New(w, slog.LevelInfo, "json")
	a, err := app.Start(ctx, m.cfg, log)
	if err != nil {
		return err
	}
	m.app = a
	return nil
}

// stop stops the hub and leaves the destinations running.
func (m *memRig) stop() error {
	if m.app == nil {
		return nil
	}
	err := m.app.Stop()
	m.app = nil
	return err
}

// phase is one measured run of the hub.
type phase struct {
	Name           string             `json:"name"`
	Letters        int                `json:"letters"`
	OfferedPerS    float64            `json:"offered_per_s,omitempty"` // 0 = as fast as the hub takes them
	Seconds        float64            `json:"seconds"`                 // first drop to last delivery
	LettersPerS    float64            `json:"letters_per_s"`
	P50ms          float64            `json:"p50_ms"`
	P95ms          float64            `json:"p95_ms"`
	P99ms          float64            `json:"p99_ms"`
	MaxMs          float64            `json:"max_ms"`
	PeakRSSMB      float64            `json:"peak_rss_mb"`
	EndRSSMB       float64            `json:"end_rss_mb"`
	CPUSecPer1000  float64            `json:"cpu_s_per_1000"`
	AllocKBPerLtr  float64            `json:"alloc_kb_per_letter"` // Go heap bytes allocated (whole process), what the collector then has to clear
	GCPer1000      float64            `json:"gc_cycles_per_1000"`
	StoredPerLtr   map[string]float64 `json:"stored_msgs_per_letter"`  // per stream, from the server
	BytesPerLtr    map[string]float64 `json:"stored_bytes_per_letter"` // per stream that grew, from the server
	APIPerLetter   float64            `json:"js_api_calls_per_letter"`
	OpsPerLetter   float64            `json:"jetstream_ops_per_letter"`   // stored messages + API calls
	SyncedPerLtr   float64            `json:"synced_writes_per_letter"`   // fsyncs: stored messages, a journey batch counting once
	JourneyPerLtr  float64            `json:"journey_events_per_letter"`  // from the recorder
	JourneyCommits float64            `json:"journey_commits_per_letter"` // publishes the events took
}

// run drops n letters (at rate per second, or as fast as possible when
// rate is 0) and waits until each reached every destination of the rig's
// flow (sinks).
func (r *hubRig) run(name string, runNo, n int, rate float64, timeout time.Duration) (phase, error) {
	p := phase{Name: name, Letters: n, OfferedPerS: rate}
	for _, a := range []*loopsim.Arrivals{r.cs.Letters, r.epj.Letters, r.mail.Letters} {
		a.Reset()
	}
	sinks := r.sinks()
	// Only names and ids are made up front; each letter's bytes are made
	// as it is dropped, so the harness's copies (6,000 letters held at the
	// start of a 30 s phase: 38 MB in use at its peak) do not count as the
	// hub's memory.
	items := make([]item, n)
	for i := range n {
		nm, id := r.gen.names(runNo, i)
		items[i] = item{nm, id, email.MessageID("notice:arrived::"+id, coordinator, mailFrom)}
	}
	js0 := snapshotJS(r.app.Broker.Server)
	ev0, cm0 := journey.WriteStats()
	il0, ic0 := pipeline.IntakeWriteStats()
	cpu0 := cpuSeconds()
	alloc0, gc0 := heapAllocs()
	resetPeakRSS()
	stopTrace := make(chan struct{})
	defer close(stopTrace)
	go traceRates(r.app.Registry, stopTrace)
	dropped := make([]time.Time, n)
	start := time.Now()
	for i, it := range items {
		if rate > 0 {
			if d := time.Until(start.Add(time.Duration(float64(i) / rate * float64(time.Second)))); d > 0 {
				time.Sleep(d)
			}
		}
		_, data, _ := r.gen.letter(runNo, i)
		dropped[i] = time.Now()
		if err := drop(r.in, it.name, data); err != nil {
			return p, err
		}
	}
	deadline := time.Now().Add(timeout)
	for !allArrived(sinks, n) {
		if time.Now().After(deadline) {
			var got []string
			for _, s := range sinks {
				got = append(got, fmt.Sprintf("%s %d", s.name, s.at.Count()))
			}
			return p, fmt.Errorf("%s: after %s only %s of %d letters arrived", name, timeout, strings.Join(got, ", "), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cpu := cpuSeconds() - cpu0
	alloc1, gc1 := heapAllocs()
	p.AllocKBPerLtr = float64(alloc1-alloc0) / 1024 / float64(n)
	p.GCPer1000 = float64(gc1-gc0) / float64(n) * 1000
	p.PeakRSSMB, p.EndRSSMB = peakRSSMB(), rssMB()
	var last time.Time
	lat := make([]time.Duration, 0, n)
	var perLetter strings.Builder
	for i, it := range items {
		var end time.Time
		for _, s := range sinks {
			t, ok := s.at.At(s.key(it))
			if !ok {
				return p, fmt.Errorf("%s: letter %d never reached the %s (another letter's %s did)", name, i, s.name, s.what)
			}
			if t.After(end) {
				end = t
			}
		}
		if end.After(last) {
			last = end
		}
		lat = append(lat, end.Sub(dropped[i]))
		if r.latencies != "" {
			fmt.Fprintf(&perLetter, "%.3f %.1f", dropped[i].Sub(start).Seconds(), ms(end.Sub(dropped[i])))
			for _, s := range sinks {
				t, _ := s.at.At(s.key(it))
				fmt.Fprintf(&perLetter, " %s=%.1f", strings.ReplaceAll(s.name, " ", "_"), ms(t.Sub(dropped[i])))
			}
			perLetter.WriteByte('\n')
		}
	}
	if r.latencies != "" {
		if err := os.WriteFile(r.latencies, []byte(perLetter.String()), 0o644); err != nil {
			logf("latencies: %v", err)
		}
	}
	sortDurations(lat)
	p.Seconds = last.Sub(start).Seconds()
	p.LettersPerS = float64(n) / p.Seconds
	p.P50ms, p.P95ms, p.P99ms, p.MaxMs = percentileMS(lat, .50), percentileMS(lat, .95), percentileMS(lat, .99), percentileMS(lat, 1)
	p.CPUSecPer1000 = cpu / float64(n) * 1000

	// Let the last acks and state writes land before counting.
	time.Sleep(300 * time.Millisecond)
	js1 := snapshotJS(r.app.Broker.Server)
	stored, api := js1.diff(js0)
	ev1, cm1 := journey.WriteStats()
	p.StoredPerLtr, p.BytesPerLtr = map[string]float64{}, map[string]float64{}
	for k, v := range js1.grown(js0) {
		p.BytesPerLtr[k] = float64(v) / float64(n)
	}
	total, synced := 0.0, 0.0
	for k, v := range stored {
		p.StoredPerLtr[k] = float64(v) / float64(n)
		total += float64(v)
		if !js1.async[k] {
			synced += float64(v)
		}
	}
	p.APIPerLetter = float64(api) / float64(n)
	p.OpsPerLetter = (total + float64(api)) / float64(n)
	p.JourneyPerLtr = float64(ev1-ev0) / float64(n)
	p.JourneyCommits = float64(cm1-cm0) / float64(n)
	if !js1.async[broker.StreamJourney] {
		synced += float64(cm1-cm0) - float64(ev1-ev0) // a journey batch is one fsync
	}
	il1, ic1 := pipeline.IntakeWriteStats()
	synced -= float64(il1-il0) - float64(ic1-ic0) // an atomic batch of letters is one fsync
	p.SyncedPerLtr = synced / float64(n)
	return p, nil
}

// item is one letter of a run: its file, and what the destinations know it by.
type item struct {
	name, id, noticeMID string
}

// sink is one destination a run waits for: its arrivals and the key a
// letter arrives there under.
type sink struct {
	name, what string
	at         *loopsim.Arrivals
	key        func(item) string
}

// sinks are the destinations every letter of the rig's flow must reach:
// the case system, and unless the rig carries the peer's one-sink flow the
// EPJ and the coordinator's notice (by its Message-ID) too.
func (r *hubRig) sinks() []sink {
	byID := func(it item) string { return it.id }
	s := []sink{{"case system", "letter", r.cs.Letters, byID}}
	if !r.oneSink {
		s = append(s, sink{"EPJ", "letter", r.epj.Letters, byID},
			sink{"mail relay", "notice", r.mail.Letters, func(it item) string { return it.noticeMID }})
	}
	return s
}

func allArrived(sinks []sink, n int) bool {
	for _, s := range sinks {
		if s.at.Count() < n {
			return false
		}
	}
	return true
}
