// Command samhub-bench is `make bench`: in one run on one machine it
// measures the broker ceiling (raw JetStream with the hub's storage
// settings), drives the whole hub with fictitious 10 KB XDIS91 letters
// dropped into the MedCom inbox to three loopback destinations (case
// system, EPJ, SMTP) at a fixed offered load and at saturation, runs the
// hub on the Benthos peer's one-sink flow (drop folder → case system) and
// the peer itself side by side, and writes results/latest.json and
// results/latest.md. It reports the targets; it never fails on them.
//
// Sizes come from the environment (see scripts/bench.sh):
//
//	BENCH_CEILING_N   messages for the ceiling         (default 20000)
//	BENCH_RATE        offered load, letters/s          (default 200)
//	BENCH_RATE_SECS   seconds at the offered load      (default 30)
//	BENCH_N           letters at saturation            (default 10000)
//	BENCH_PEER_N      letters for the peer             (default 10000)
//	BENCH_SAMEFLOW_N  letters for the hub on the peer's flow (default BENCH_PEER_N)
//	BENCH_NO_SAMEFLOW skip the hub on the peer's flow (sameflow.go)
//	BENCH_PEER_BIN    peer binary; empty skips the peer
//	BENCH_OUT         results directory                (default bench/results)
//	BENCH_CPUPROFILE  write a CPU profile of the saturation phase here
//	BENCH_CPUPROFILE_OFFERED  the same for the offered-load phase
//	BENCH_LATENCIES   write the offered-load phase's letters here, one line each: when it
//	                  was dropped (s into the phase), its latency and each sink's (ms);
//	                  it shows whether the slow letters come together (a stall before
//	                  the sinks) or alone (one sink)
//	BENCH_PARKED_N    parked letters for the retry-queue memory phase (default 1000000)
//	BENCH_NO_PARKED, BENCH_NO_ATTACHMENT  skip a memory phase (memory.go)
//	BENCH_HEAPPROFILE_DIR  keep the memory phases' heap profiles here
//	BENCH_NO_COUNCIL  run the hub without the council register (council.enabled: false)
//	BENCH_ONLY=attachment  run only the large-attachment phase and put its tries into
//	                  the existing latest.json (tries of other labels kept)
//	BENCH_ATTACHMENT_TRIES  which tries: 20,100,4x20,16x20,2 (default all)
//	BENCH_PEAK_PROFILE  a directory: heap profiles taken when the heap in use was highest,
//	                  peak-offered.pb.gz and peak-saturation.pb.gz (the hub's two
//	                  phases), peak.pb.gz (attachment tries)
//	BENCH_ATTACHMENT_LABEL  the tries' label (default "after: <commit>"; "before: …"
//	                  when this harness runs against earlier code)
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

func env(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// results is latest.json.
type results struct {
	// The headline keys the issue asks for.
	LettersPerS           float64 `json:"letters_per_s"`
	P99msAt200            float64 `json:"p99_ms_at_200"`
	RSSMB                 float64 `json:"rss_mb"`
	RatioVsCeiling        float64 `json:"ratio_vs_ceiling"`
	RatioVsPeer           float64 `json:"ratio_vs_peer,omitempty"`
	SameFlowRatioVsPeer   float64 `json:"same_flow_ratio_vs_peer,omitempty"` // the hub on the peer's one-sink flow ÷ the peer, same run
	PeerLettersPerS       float64 `json:"peer_letters_per_s,omitempty"`
	SameFlowLettersPerS   float64 `json:"same_flow_letters_per_s,omitempty"`
	CeilingOpsPerS        float64 `json:"ceiling_ops_per_s"`
	JetStreamOpsPerLetter float64 `json:"jetstream_ops_per_letter"`
	SyncedWritesPerLetter float64 `json:"synced_writes_per_letter"`
	CPUSecPer1000         float64 `json:"cpu_s_per_1000"`

	Machine  machine     `json:"machine"`
	Commit   string      `json:"commit"`
	When     time.Time   `json:"when"`
	Ceiling  ceiling     `json:"ceiling"`
	Parse    parseSpeed  `json:"parse"`
	Phases   []phase     `json:"phases"`
	Peer     *peerResult `json:"peer,omitempty"`
	PeerNote string      `json:"peer_note,omitempty"`
	Targets  []target    `json:"targets"`
	// SameFlowNote says why the same-flow phase is missing.
	SameFlowNote string `json:"same_flow_note,omitempty"`

	// The memory phases (memory.go).
	Parked         *parkedResult     `json:"parked,omitempty"`
	ParkedNote     string            `json:"parked_note,omitempty"`
	Attachment     *attachmentResult `json:"attachment,omitempty"`
	AttachmentNote string            `json:"attachment_note,omitempty"`
}

type machine struct {
	CPU     string `json:"cpu"`
	Cores   int    `json:"cores"`
	MemGiB  int    `json:"mem_gib"`
	Kernel  string `json:"kernel"`
	Go      string `json:"go"`
	OS      string `json:"os"`
	Storage string `json:"storage_dir_fs"`
}

type target struct {
	What   string `json:"what"`
	Goal   string `json:"goal"`
	Value  string `json:"value"`
	Result string `json:"result"` // met, short, not measured
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "samhub-bench:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx := context.Background()
	repo, err := repoRoot()
	if err != nil {
		return err
	}
	out := os.Getenv("BENCH_OUT")
	if out == "" {
		out = filepath.Join(repo, "bench", "results")
	}
	tmp, err := os.MkdirTemp(os.Getenv("BENCH_TMP"), "samhub-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	gen, err := loadLetters(repo)
	if err != nil {
		return err
	}
	res := results{Machine: describeMachine(tmp), Commit: gitCommit(repo), When: time.Now().UTC()}
	if os.Getenv("BENCH_ONLY") == "attachment" {
		return onlyAttachment(ctx, out, tmp, attachmentLabel(repo), gen)
	}

	logf("ceiling: %d × %d B", env("BENCH_CEILING_N", 20000), len(gen.tmpl))
	_, sample, _ := gen.letter(8, 0)
	if res.Ceiling, err = measureCeiling(ctx, tmp, sample, env("BENCH_CEILING_N", 20000)); err != nil {
		return fmt.Errorf("ceiling: %w", err)
	}
	logf("ceiling: async %.0f/s, sync %.0f/s, atomic(100) %.0f/s, consume %.0f/s", res.Ceiling.PublishAsyncPerS, res.Ceiling.PublishSyncPerS, res.Ceiling.PublishAtomicPerS, res.Ceiling.ConsumePerS)

	res.Parse = measureParse(sample)
	logf("parse+validate %.0f µs, etree read %.0f µs: %.0f %%", res.Parse.ParseValidateUS, res.Parse.EtreeReadUS, res.Parse.Ratio*100)

	rig, err := startHub(ctx, tmp, gen)
	if err != nil {
		return fmt.Errorf("start hub: %w", err)
	}
	// Warm up (connections, tokens, the case) before measuring.
	if _, err := rig.run("warm-up", 0, 200, 0, 2*time.Minute); err != nil {
		rig.close()
		return err
	}
	rate, secs := env("BENCH_RATE", 200), env("BENCH_RATE_SECS", 30)
	logf("hub: %d letters/s offered for %d s", rate, secs)
	stopPeak := peakProfile("peak-offered.pb.gz")
	stopProfile := profile(os.Getenv("BENCH_CPUPROFILE_OFFERED"))
	rig.latencies = os.Getenv("BENCH_LATENCIES")
	fixed, err := rig.run(fmt.Sprintf("offered %d/s", rate), 1, rate*secs, float64(rate), 10*time.Minute)
	rig.latencies = ""
	stopProfile()
	stopPeak()
	if err != nil {
		rig.close()
		return err
	}
	logf("hub: p50 %.1f ms p95 %.1f ms p99 %.1f ms, peak RSS %.0f MB", fixed.P50ms, fixed.P95ms, fixed.P99ms, fixed.PeakRSSMB)
	n := env("BENCH_N", 10000)
	logf("hub: saturation with %d letters", n)
	stopProfile = profile(os.Getenv("BENCH_CPUPROFILE"))
	stopPeak = peakProfile("peak-saturation.pb.gz")
	sat, err := rig.run("saturation", 2, n, 0, 20*time.Minute)
	stopPeak()
	stopProfile()
	rig.close()
	if err != nil {
		return err
	}
	logf("hub: %.0f letters/s, p99 %.0f ms, %.2f synced writes and %.2f JetStream ops per letter, %.2f CPU s per 1000", sat.LettersPerS, sat.P99ms, sat.SyncedPerLtr, sat.OpsPerLetter, sat.CPUSecPer1000)
	res.Phases = []phase{fixed, sat}

	// The hub on the peer's flow, then the peer: side by side.
	var same *phase
	if os.Getenv("BENCH_NO_SAMEFLOW") == "" {
		sn := env("BENCH_SAMEFLOW_N", env("BENCH_PEER_N", 10000))
		logf("hub, same flow as the peer (MedCom inbox → case system only): saturation with %d letters", sn)
		if p, err := measureSameFlow(ctx, tmp, gen, sn); err != nil {
			res.SameFlowNote = "same-flow phase failed: " + err.Error()
			logf("%s", res.SameFlowNote)
		} else {
			same = &p
			res.Phases = append(res.Phases, p)
			logf("hub, same flow: %.0f letters/s, p99 %.0f ms, %.2f synced writes and %.2f JetStream ops per letter, %.2f CPU s per 1000, peak RSS %.0f MB", p.LettersPerS, p.P99ms, p.SyncedPerLtr, p.OpsPerLetter, p.CPUSecPer1000, p.PeakRSSMB)
		}
	} else {
		res.SameFlowNote = "not run (BENCH_NO_SAMEFLOW)"
	}
	if bin := os.Getenv("BENCH_PEER_BIN"); bin != "" {
		pn := env("BENCH_PEER_N", 10000)
		logf("peer: %d letters", pn)
		p, err := runPeer(ctx, bin, tmp, gen, pn)
		if err != nil {
			res.PeerNote = "peer failed: " + err.Error()
			logf("%s", res.PeerNote)
		} else {
			res.Peer = &p
			logf("peer: ingest %.0f letters/s, end to end %.0f letters/s", p.IngestLettersPerS, p.EndToEndLettersPerS)
		}
	} else {
		res.PeerNote = "peer not run (BENCH_PEER_BIN empty)"
	}
	measureMemory(ctx, tmp, attachmentLabel(repo), gen, &res)

	res.LettersPerS = sat.LettersPerS
	res.P99msAt200 = fixed.P99ms
	res.RSSMB = max(fixed.PeakRSSMB, sat.PeakRSSMB)
	res.CeilingOpsPerS = res.Ceiling.PublishAsyncPerS
	res.JetStreamOpsPerLetter = sat.OpsPerLetter
	res.SyncedWritesPerLetter = sat.SyncedPerLtr
	res.CPUSecPer1000 = sat.CPUSecPer1000
	res.RatioVsCeiling = sat.LettersPerS * sat.SyncedPerLtr / res.Ceiling.PublishAsyncPerS
	if res.Peer != nil && res.Peer.EndToEndLettersPerS > 0 {
		res.PeerLettersPerS = res.Peer.EndToEndLettersPerS
		res.RatioVsPeer = sat.LettersPerS / res.Peer.EndToEndLettersPerS
	}
	if same != nil {
		res.SameFlowLettersPerS = same.LettersPerS
	}
	if same != nil && res.PeerLettersPerS > 0 {
		res.SameFlowRatioVsPeer = same.LettersPerS / res.PeerLettersPerS
		logf("same flow: hub %.0f letters/s ÷ peer %.0f letters/s = %.2f×", same.LettersPerS, res.PeerLettersPerS, res.SameFlowRatioVsPeer)
	} else {
		why := res.PeerNote
		if same == nil {
			why = "same flow " + res.SameFlowNote
		}
		logf("same flow: ratio to the peer not measured (%s)", why)
	}
	res.Targets = targets(res, rate)
	return write(out, res)
}

func targets(r results, rate int) []target {
	judge := func(ok bool) string {
		if ok {
			return "met"
		}
		return "short"
	}
	t := []target{
		{"end-to-end throughput, 2 cores, SyncAlways", "≥ 2000 letters/s", fmt.Sprintf("%.0f letters/s", r.LettersPerS), judge(r.LettersPerS >= 2000)},
		{"ratio_vs_ceiling (letters/s × synced writes per letter ÷ ceiling)", "≥ 0.6", fmt.Sprintf("%.2f", r.RatioVsCeiling), judge(r.RatioVsCeiling >= 0.6)},
		{fmt.Sprintf("p99 drop → last delivery at %d letters/s", rate), "≤ 50 ms", fmt.Sprintf("%.1f ms", r.P99msAt200), judge(r.P99msAt200 <= 50)},
		{"peak RSS (whole process: hub, embedded NATS, simulators)", "≤ 150 MB", fmt.Sprintf("%.0f MB", r.RSSMB), judge(r.RSSMB <= 150)},
	}
	if r.RatioVsPeer > 0 {
		t = append(t, target{"versus the peer, end to end (hub three sinks, peer one)", "≥ 1.5×", fmt.Sprintf("%.2f×", r.RatioVsPeer), judge(r.RatioVsPeer >= 1.5)})
	} else {
		t = append(t, target{"versus the peer, end to end (hub three sinks, peer one)", "≥ 1.5×", "—", "not measured"})
	}
	if r.SameFlowRatioVsPeer > 0 {
		t = append(t, target{"versus the peer on the same flow (drop folder → case system), same run", "≥ 1.5×",
			fmt.Sprintf("%.2f× (%.0f vs %.0f letters/s)", r.SameFlowRatioVsPeer, r.SameFlowLettersPerS, r.PeerLettersPerS), judge(r.SameFlowRatioVsPeer >= 1.5)})
	} else {
		t = append(t, target{"versus the peer on the same flow (drop folder → case system), same run", "≥ 1.5×", "—", "not measured"})
	}
	t = append(t, parkedTarget(r))
	t = append(t, attachmentTargetRows(r)...)
	t = append(t,
		target{"parse + validate vs bare etree read (10 KB)", "≥ 80 %", fmt.Sprintf("%.0f %% (%.0f µs vs %.0f µs)", r.Parse.Ratio*100, r.Parse.ParseValidateUS, r.Parse.EtreeReadUS), judge(r.Parse.Ratio >= 0.8)},
	)
	return t
}

func write(dir string, r results) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "latest.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	md := summary(r)
	fmt.Print(md)
	return os.WriteFile(filepath.Join(dir, "latest.md"), []byte(md), 0o644)
}

func summary(r results) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Samhub benchmark — %s\n\n", r.When.Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "Commit %s; %s, %d cores, %d GiB, %s, %s; store on %s.\n\n", r.Commit, r.Machine.CPU, r.Machine.Cores, r.Machine.MemGiB, r.Machine.Kernel, r.Machine.Go, r.Machine.Storage)
	b.WriteString("| target | goal | this run | |\n|---|---|---|---|\n")
	for _, t := range r.Targets {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", t.What, t.Goal, t.Value, t.Result)
	}
	c := r.Ceiling
	fmt.Fprintf(&b, "\n## Broker ceiling (%d × %d B, file store, SyncAlways, in process)\n\n", c.Msgs, c.MsgBytes)
	fmt.Fprintf(&b, "| publish async (256 in flight) | publish sync (1 in flight) | atomic batches of 100 | consume (explicit acks) |\n|---|---|---|---|\n| %.0f/s | %.0f/s | %.0f/s | %.0f/s |\n", c.PublishAsyncPerS, c.PublishSyncPerS, c.PublishAtomicPerS, c.ConsumePerS)
	b.WriteString("\n## Hub\n\n")
	b.WriteString("Offered load and saturation: MedCom inbox → case system + EPJ + SMTP notice.")
	if r.SameFlowNote == "" {
		fmt.Fprintf(&b, " %q: MedCom inbox → case system only, the peer's flow.", sameFlowName)
	}
	b.WriteString("\n\n")
	b.WriteString("| phase | letters | letters/s | p50 ms | p95 ms | p99 ms | max ms | peak RSS MB | CPU s / 1000 | synced writes / letter | JetStream ops / letter |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, p := range r.Phases {
		fmt.Fprintf(&b, "| %s | %d | %.0f | %.1f | %.1f | %.1f | %.1f | %.0f | %.2f | %.2f | %.2f |\n", p.Name, p.Letters, p.LettersPerS, p.P50ms, p.P95ms, p.P99ms, p.MaxMs, p.PeakRSSMB, p.CPUSecPer1000, p.SyncedPerLtr, p.OpsPerLetter)
	}
	if len(r.Phases) > 0 {
		b.WriteString("\nStored messages per letter (from the server):\n\n")
	}
	for _, p := range r.Phases {
		fmt.Fprintf(&b, "- %s: %s; JetStream API calls %.2f; journey events %.2f in %.2f commits.\n", p.Name, perStream(p.StoredPerLtr, "%s %.2f"), p.APIPerLetter, p.JourneyPerLtr, p.JourneyCommits)
	}
	if len(r.Phases) > 0 {
		b.WriteString("\nStored bytes per letter, streams that grew (from the server; the letter stream's figure is what its block caches hold per letter):\n\n")
	}
	for _, p := range r.Phases {
		fmt.Fprintf(&b, "- %s: %s.\n", p.Name, perStream(p.BytesPerLtr, "%s %.0f B"))
	}
	if len(r.Phases) > 0 {
		b.WriteString("\nGo heap allocated per letter (whole process: hub, embedded NATS, simulators, the harness):\n\n")
	}
	for _, p := range r.Phases {
		fmt.Fprintf(&b, "- %s: %.0f KB, %.2f collections per 1,000 letters.\n", p.Name, p.AllocKBPerLtr, p.GCPer1000)
	}
	if r.SameFlowNote != "" {
		fmt.Fprintf(&b, "\nSame flow as the peer: %s\n", r.SameFlowNote)
	}
	b.WriteString("\n## Peer\n\n")
	if r.Peer != nil {
		fmt.Fprintf(&b, "%s, %d letters: ingest alone %.0f letters/s; end to end (one sink) %.0f letters/s.\n", r.Peer.Engine, r.Peer.Letters, r.Peer.IngestLettersPerS, r.Peer.EndToEndLettersPerS)
	} else {
		fmt.Fprintf(&b, "%s\n", r.PeerNote)
	}
	memorySummary(&b, r)
	return b.String()
}

// perStream writes each stream's figure with format (name, value), in
// name order.
func perStream(m map[string]float64, format string) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf(format, k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func sortedKeys(m map[string]float64) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// profile writes a CPU profile of the saturation phase to path (pprof).
func profile(path string) func() {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		logf("cpu profile: %v", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		logf("cpu profile: %v", err)
		f.Close()
		return func() {}
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func repoRoot() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		return "", fmt.Errorf("find the repository (run from inside it): %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

func gitCommit(repo string) string {
	out, err := exec.Command("git", "-C", repo, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	// The results a run writes are no change to the code measured.
	if d, _ := exec.Command("git", "-C", repo, "status", "--porcelain", "--untracked-files=no", "--", "pipeline", "bench", "adapters", "internal", ":!bench/results").Output(); len(d) > 0 {
		c += "+dirty"
	}
	return c
}

func describeMachine(dir string) machine {
	m := machine{Cores: runtime.NumCPU(), Go: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				m.CPU = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int
		fmt.Sscanf(strings.SplitN(string(b), "\n", 2)[0], "MemTotal: %d kB", &kb)
		m.MemGiB = (kb + 512*1024) / (1024 * 1024)
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = "Linux " + strings.TrimSpace(string(b))
	}
	if out, err := exec.Command("df", "-T", dir).Output(); err == nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if f := strings.Fields(lines[len(lines)-1]); len(f) > 1 {
			m.Storage = f[1]
		}
	}
	return m
}

// onlyAttachment runs the attachment phase alone and merges its tries into
// latest.json: tries with the same label are replaced, others (earlier
// code's, "before: …") kept, and the summary and targets written again.
func onlyAttachment(ctx context.Context, out, tmp, label string, gen *letters) error {
	var res results
	if b, err := os.ReadFile(filepath.Join(out, "latest.json")); err == nil {
		if err := json.Unmarshal(b, &res); err != nil {
			return fmt.Errorf("latest.json: %w", err)
		}
	}
	a, err := measureAttachment(ctx, tmp, label, gen)
	if err != nil {
		return err
	}
	if res.Attachment != nil {
		for _, t := range res.Attachment.Tries {
			if t.Label != label {
				a.Tries = append(a.Tries, t)
			}
		}
	}
	sort.SliceStable(a.Tries, func(i, j int) bool { return a.Tries[i].Label > a.Tries[j].Label })
	if !strings.HasPrefix(label, "after") && res.Attachment != nil {
		// A run of earlier code adds its tries; the headline stays.
		a.Bytes, a.Arrived, a.StoppedAt = res.Attachment.Bytes, res.Attachment.Arrived, res.Attachment.StoppedAt
		a.LargestArrivedBytes, a.PeakGrowthMB, a.Ratio = res.Attachment.LargestArrivedBytes, res.Attachment.PeakGrowthMB, res.Attachment.Ratio
		a.Label = res.Attachment.Label
	}
	res.Attachment, res.AttachmentNote = &a, ""
	rate := env("BENCH_RATE", 200)
	res.Targets = targets(res, rate)
	return write(out, res)
}
