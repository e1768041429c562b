package reliability

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/samhub/samhub/internal/app"
	"github.com/samhub/samhub/internal/hubtest"
	"github.com/samhub/samhub/pipeline/broker"
)

// TestScenarioSoak is S12. First the hub must refuse to start on a NATS
// whose letter stream is unsafe (memory storage, DiscardOld, work-queue
// retention, no size limit), with a message naming the problem. Then a
// steady flow of referrals and recommendations, to every destination kind,
// runs for SAMHUB_SOAK_DURATION (30 s in CI, 10 minutes under make soak)
// with about 1 % injected faults (503s and lost answers from the case
// system and the EPJ, 451 from the mail server) into a hub running as a
// child process, while the test samples the hub's live heap and
// goroutines from its metrics. At the end every letter is delivered once
// everywhere, and the hub, idle again, must be back near its warm
// baseline:
//
//   - goroutines at most base + 5 % + 10: a goroutine leak grows with
//     letters; the margin covers timers, pooled connections and the
//     store's flushers;
//   - live heap (the GC's own figure: go_memstats_next_gc_bytes is twice
//     the heap that survived the last collection) at most base + 16 MiB +
//     2 KiB per letter sent after the baseline. 16 MiB covers the embedded
//     store's block buffers (nats-server holds the block being written in
//     memory, up to 8 MiB for the letter stream, and pools such buffers)
//     and the collector's pacing; 2 KiB per letter covers the store's
//     indexes, which grow with letters by design (a per-subject entry for
//     every letter, journey and state key, some 100–300 bytes each). A
//     letter's content is 8 KiB or more, so keeping letters or their
//     parse trees alive fails the bound.
func TestScenarioSoak(t *testing.T) {
	t.Parallel()
	refused := r1UnsafeStreams(t)

	dur := r1Dur("SOAK_DURATION", 30*time.Second, 10*time.Minute)
	rate := size("SOAK_RATE", 20, 10) // letters per second
	every := r1Dur("SOAK_SAMPLE", 2*time.Second, 15*time.Second)
	seed := r1Seed()
	rng := r1Rand(seed)
	w := oNewWorld(t)
	w.Case.SetDelay(r1Dur("SOAK_SINK_DELAY", 0, 0))
	cfg, url := w.Config(filepath.Join(w.Dir, "hub"), oHubOpts{})
	hub := oStartHub(t, cfg, url, 0, "")
	oWaitReady(t, hub, time.Minute)
	metrics := url + "/metrics"
	type sample struct {
		live, rss  uint64
		goroutines int
		sent       int
	}
	take := func(sent int) sample {
		_, page := r1Get(t, metrics)
		return sample{live: uint64(metricSum(page, "go_memstats_next_gc_bytes")) / 2, rss: uint64(metricSum(page, "process_resident_memory_bytes")),
			goroutines: int(metricSum(page, "go_goroutines")), sent: sent}
	}
	var samples []sample
	faults := 0
	start := time.Now()
	nextSample := start
	sent := 0
	r1Letter(t, "SOK", 0)
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for time.Since(start) < dur {
		<-tick.C
		var err error
		if sent%3 == 2 {
			err = w.Recommend("SOK", sent)
		} else {
			err = w.Referral("SOK", sent)
		}
		if err != nil {
			t.Fatal(err)
		}
		sent++
		if rng.IntN(100) == 0 {
			switch rng.IntN(4) {
			case 0:
				w.Case.FailNext(1, http.StatusServiceUnavailable, 0)
			case 1:
				w.Case.DropResponses("POST /cases/{caseId}/documents", 1)
			case 2:
				w.EPJ.DropNext(1)
			default:
				w.Mail.FailNextRcpt(1, &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"})
			}
			faults++
		}
		if time.Now().After(nextSample) {
			samples = append(samples, take(sent))
			nextSample = nextSample.Add(every)
		}
	}
	w.WaitAll(t, time.Duration(sent/10+120)*time.Second, false)
	// The baseline is the sample halfway through the run: caches,
	// connections, pools and the store's block buffers are warm by then
	// (in a 30 s run the live heap rises in steps for about 18 s, then
	// stays flat).
	base := samples[len(samples)/2]
	// Idle again: after a backlog, letters whose copy is stored may still
	// be in retry (a slow answer outlived the sink timeout), so this waits
	// up to two minutes for the hub to come back within the bounds; the
	// live heap is the lowest of the samples since the run ended (it
	// changes only when the GC runs, so an idle hub keeps its last figure).
	goroutineBound := func(base int) int { return base + base/20 + 10 }
	heapBound := func(b sample) uint64 { return b.live + 16<<20 + 2<<10*uint64(sent-b.sent) }
	end := take(sent)
	idle := time.Now()
	for time.Since(idle) < 2*time.Minute {
		time.Sleep(time.Second)
		s := take(sent)
		end.goroutines, end.rss = s.goroutines, s.rss
		end.live = min(end.live, s.live)
		if end.goroutines <= goroutineBound(base.goroutines) && end.live <= heapBound(base) {
			break
		}
	}
	parked := oParked(t, url)
	v := w.Verdict(parked)
	stacks := ""
	if end.goroutines > goroutineBound(base.goroutines) {
		stacks = r1Stacks(t, hub)
	} else {
		hub.Stop(syscall.SIGTERM)
	}
	life := hub.Life()
	peak := base
	for _, s := range samples {
		peak.live, peak.rss, peak.goroutines = max(peak.live, s.live), max(peak.rss, s.rss), max(peak.goroutines, s.goroutines)
	}
	growth := func(a, b uint64) string {
		return fmt.Sprintf("%+.1f%%", 100*(float64(b)-float64(a))/float64(max(a, 1)))
	}
	perLetter := (float64(end.live) - float64(base.live)) / float64(max(1, sent-base.sent))
	report(t, "soak", append(append([]any{"duration", dur, "letters", sent, "deliveries", w.Ledger.Expected(), "faults", faults,
		"crashes", map[bool]int{true: 1, false: 0}[life.Crash], "panics", life.Panics}, v.Figures()...),
		"samples", len(samples), "live_heap_base_mb", r1MB(base.live), "live_heap_end_mb", r1MB(end.live), "live_heap_peak_mb", r1MB(peak.live),
		"live_heap_growth", growth(base.live, end.live), "live_heap_bytes_per_letter", fmt.Sprintf("%.0f", perLetter), "live_heap_bound_mb", r1MB(heapBound(base)),
		"rss_base_mb", r1MB(base.rss), "rss_end_mb", r1MB(end.rss), "rss_peak_mb", r1MB(peak.rss), "rss_growth", growth(base.rss, end.rss),
		"goroutines_base", base.goroutines, "goroutines_end", end.goroutines, "goroutines_peak", peak.goroutines, "goroutines_bound", goroutineBound(base.goroutines),
		"unsafe_configs_refused", refused, "seed", seed)...)
	oRequire(t, v, oAllow{})
	if end.goroutines > goroutineBound(base.goroutines) {
		t.Errorf("goroutines grew from %d to %d (bound %d); the hub's goroutines by top frame:\n%s", base.goroutines, end.goroutines, goroutineBound(base.goroutines), stacks)
	}
	if end.live > heapBound(base) {
		t.Errorf("live heap grew from %s MB to %s MB over %d letters (%.0f bytes per letter); the bound is %s MB (base + 16 MiB + 2 KiB per letter)",
			r1MB(base.live), r1MB(end.live), sent-base.sent, perLetter, r1MB(heapBound(base)))
	}
	if life.Crash || life.Panics != 0 {
		t.Errorf("the hub ended with %s, %d panics", life.Exit, life.Panics)
	}
}

// r1UnsafeStreams creates the letter stream with each unsafe setting on a
// fresh NATS server and checks that the hub refuses to start against it,
// naming the problem. It returns how many were refused.
func r1UnsafeStreams(t *testing.T) int {
	cases := []struct {
		name string
		edit func(*jetstream.StreamConfig)
		want string
	}{
		{"memory storage", func(c *jetstream.StreamConfig) { c.Storage = jetstream.MemoryStorage }, "memory storage"},
		{"discard old", func(c *jetstream.StreamConfig) { c.Discard = jetstream.DiscardOld }, "DiscardOld"},
		{"work queue", func(c *jetstream.StreamConfig) { c.Retention = jetstream.WorkQueuePolicy }, "work-queue"},
		{"no limit", func(c *jetstream.StreamConfig) { c.MaxBytes = 0 }, "no size limit"},
	}
	refused := 0
	for _, c := range cases {
		t.Run("refuses "+c.name, func(t *testing.T) {
			srv := r1StartNATS(t, &server.Options{ServerName: "unsafe", Host: "127.0.0.1", Port: -1, JetStream: true,
				StoreDir: filepath.Join(t.TempDir(), "js"), JetStreamMaxStore: 1 << 30, JetStreamMaxMemory: 256 << 20, NoSigs: true})
			nc, err := nats.Connect(r1AuthURL(srv.ClientURL()))
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			js, _ := jetstream.New(nc)
			sc := jetstream.StreamConfig{Name: broker.StreamLetters, Subjects: []string{broker.SubjLetters + ".>"}, Storage: jetstream.FileStorage,
				Discard: jetstream.DiscardNew, MaxBytes: 64 << 20}
			c.edit(&sc)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := js.CreateStream(ctx, sc); err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			cfg := hubtest.DefaultConfig(filepath.Join(dir, "data"), filepath.Join(dir, "medcom"), "http://127.0.0.1:9", "http://127.0.0.1:9")
			cfg.NATS.URL, cfg.NATS.Replicas = r1AuthURL(srv.ClientURL()), 1
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			a, err := app.Start(ctx, cfg, slog.New(slog.DiscardHandler))
			if err == nil {
				_ = a.Stop()
				t.Fatalf("the hub started on a letter stream with %s", c.name)
			}
			if !strings.Contains(err.Error(), broker.StreamLetters) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("refusal %q does not name the stream and %q", err, c.want)
			}
			refused++
		})
	}
	if refused != len(cases) {
		t.Fatalf("%d of %d unsafe stream settings refused", refused, len(cases))
	}
	return refused
}

func r1MB(b uint64) string { return fmt.Sprintf("%.1f", float64(b)/(1<<20)) }

// r1Stacks makes the child hub dump its goroutines (SIGQUIT) and counts
// them by the first frame in samhub's or a library's code.
func r1Stacks(t testing.TB, hub *oHub) string {
	hub.Signal(syscall.SIGQUIT)
	<-hub.done
	b, err := os.ReadFile(hub.Log)
	if err != nil {
		return err.Error()
	}
	count := map[string]int{}
	for _, g := range strings.Split(string(b), "\n\ngoroutine ")[1:] {
		lines := strings.Split(g, "\n")
		frame := ""
		for _, l := range lines[1:] {
			if strings.HasPrefix(l, "\t") || strings.HasPrefix(l, "runtime.") || strings.HasPrefix(l, "internal/") ||
				strings.HasPrefix(l, "sync.") || strings.HasPrefix(l, "time.") || strings.HasPrefix(l, "io.") || strings.HasPrefix(l, "bufio.") || strings.HasPrefix(l, "net.") || strings.HasPrefix(l, "os.") {
				continue
			}
			frame = l
			break
		}
		count[frame]++
	}
	type kv struct {
		f string
		n int
	}
	var all []kv
	for f, n := range count {
		all = append(all, kv{f, n})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].n > all[j].n })
	var sb strings.Builder
	for i, e := range all {
		if i == 15 {
			break
		}
		fmt.Fprintf(&sb, "%6d %s\n", e.n, e.f)
	}
	return sb.String()
}
