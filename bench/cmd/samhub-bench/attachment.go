package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/samhub/samhub/adapters/email"
	"github.com/samhub/samhub/adapters/medcom/fhirmsg"
	"github.com/samhub/samhub/internal/config"
	"github.com/samhub/samhub/pipeline/broker"
	"github.com/samhub/samhub/pipeline/letter"
)

// attachmentResult is latest.json's "attachment": MedCom CareCommunications
// (FHIR XML; XDIS91 only references its binaries) with large attachments
// dropped into the inbox of an idle hub and followed to every destination
// of the bench flow, each arrival checked by the attachment's digest.
type attachmentResult struct {
	Bytes     int    `json:"bytes"`   // the headline try's attachment (20 MB)
	Arrived   bool   `json:"arrived"` // the headline try arrived, intact, everywhere
	StoppedAt string `json:"stopped_at,omitempty"`
	// The headline try's peak RSS growth over the idle hub.
	LargestArrivedBytes int     `json:"largest_arrived_bytes"`
	PeakGrowthMB        float64 `json:"peak_growth_mb"`
	Ratio               float64 `json:"ratio"` // peak growth ÷ attachment size
	// Label is the headline's tries' label: the targets are judged on them.
	Label string `json:"label,omitempty"`
	// Tries of earlier code on this machine (label "before: <commit>") are
	// kept when BENCH_ONLY=attachment runs again (see BENCH_ATTACHMENT_LABEL).
	Tries []attachmentTry `json:"tries"`
}

// attachmentTry is one or more letters dropped at once on a fresh hub.
type attachmentTry struct {
	Label        string          `json:"label"` // "after: <commit>" or "before: <commit>"
	Name         string          `json:"name"`  // "20 MB", "100 MB", "4 × 20 MB at once"
	Letters      int             `json:"letters"`
	Bytes        int             `json:"bytes"`      // each letter's attachment
	FileBytes    int             `json:"file_bytes"` // each FHIR XML dropped into the inbox
	Limits       string          `json:"limits"`
	Destinations []string        `json:"destinations"`
	StreamMaxMsg int32           `json:"letter_stream_max_msg_size"` // as the server has it
	Arrived      map[string]bool `json:"arrived"`                    // every letter there, its attachment's digest checked
	All          bool            `json:"all_arrived"`
	Seconds      float64         `json:"seconds"`
	BaselineMB   float64         `json:"baseline_rss_mb"`
	PeakMB       float64         `json:"peak_rss_mb"`
	PeakGrowthMB float64         `json:"peak_growth_mb"`
	// Ratio is peak growth ÷ (attachment × letters at once): ≤ 2 is the
	// target (for several at once: 2 × one letter × the concurrency).
	Ratio     float64  `json:"ratio"`
	StoppedAt string   `json:"stopped_at,omitempty"`
	AllocTop  []string `json:"alloc_top,omitempty"` // go tool pprof -top, alloc_space during the try
	Profile   string   `json:"profile,omitempty"`
}

const attachmentTarget = 20_000_000

var (
	benchGP = fhirmsg.Organization{Name: "Lægehuset Østergade", SOR: "441211000016000", GLN: "5790001987244"}
	council = fhirmsg.Organization{Name: "Samrådet for Børn og Unge", SOR: "1144561000016002", GLN: "5790001382445"} // hubtest's self
)

// benchDestinations are the bench flow's destinations: the letter at the
// case system and the EPJ, its "arrived" notice by mail.
var benchDestinations = []string{"casefile", "region", "notices"}

// attachmentPlan is the phase's tries: BENCH_ATTACHMENT_TRIES picks some by
// name ("20", "100", "4x20", "2"; default all).
type attachmentPlan struct {
	key           string
	name          string
	size, letters int
	maxBytes      int64 // medcom max_bytes for the try (0: the bench's 100 MB)
	// timeout, when set, is the sink timeout and the case system's and
	// EPJ's request timeout for the try: sixteen uploads at once share
	// the machine, and the bench's 10 s would cut them off.
	timeout time.Duration
	limits  string
}

func attachmentPlans() []attachmentPlan {
	all := []attachmentPlan{
		{key: "20", name: "20 MB", size: attachmentTarget, letters: 1, limits: "bench configuration (medcom max_bytes 100 MB)"},
		// MedCom's cap is 100 MB for the whole message: a 100 MB attachment
		// (a 133 MB file) stands for what a case system or a mail may carry.
		// The tries measure memory, not the machine's speed: where a busy
		// 2-core machine needs more than the bench's 10 s for an upload,
		// the timeout is raised as a deployment carrying such letters would.
		{key: "100", name: "100 MB", size: 100_000_000, letters: 1, maxBytes: 150_000_000, timeout: 3 * time.Minute,
			limits: "medcom max_bytes raised to 150 MB (beyond MedCom's 100 MB cap, to carry a 100 MB attachment); pipeline.sink_timeout and the case system's and EPJ's timeout 3m"},
		{key: "4x20", name: "4 × 20 MB at once", size: attachmentTarget, letters: 4, timeout: 3 * time.Minute,
			limits: "bench configuration (medcom workers 16; all share pipeline.blob_memory); pipeline.sink_timeout and the case system's and EPJ's timeout 3m"},
		// As many as the MedCom source takes at once by default (workers).
		{key: "16x20", name: "16 × 20 MB at once", size: attachmentTarget, letters: 16, timeout: 3 * time.Minute,
			limits: "medcom workers 16 (as many as arrive); pipeline.sink_timeout and the case system's and EPJ's timeout 3m (the bench's 10 s cuts sixteen uploads at once off); all share pipeline.blob_memory"},
		// The part of the growth that is the blob path's and not the size's.
		{key: "2", name: "2 MB (control)", size: 2_000_000, letters: 1, limits: "bench configuration"},
	}
	want := os.Getenv("BENCH_ATTACHMENT_TRIES")
	if want == "" {
		return all
	}
	var out []attachmentPlan
	for _, p := range all {
		if slices.Contains(strings.Split(want, ","), p.key) {
			out = append(out, p)
		}
	}
	return out
}

func attachmentLabel(repo string) string {
	if l := os.Getenv("BENCH_ATTACHMENT_LABEL"); l != "" {
		return l
	}
	return "after: " + gitCommit(repo)
}

func measureAttachment(ctx context.Context, tmp, label string, gen *letters) (attachmentResult, error) {
	res := attachmentResult{Bytes: attachmentTarget, Label: label}
	n := 0
	for _, plan := range attachmentPlans() {
		n++
		t, err := tryAttachment(ctx, filepath.Join(tmp, fmt.Sprintf("attachment-%d", n)), gen, 7+n, plan)
		if err != nil {
			return res, err
		}
		t.Label = label
		res.Tries = append(res.Tries, t)
		logf("attachment: %s: arrived %v in %.1f s, peak RSS +%.0f MB (%.2f× the attachments)%s", t.Name, t.Arrived, t.Seconds, t.PeakGrowthMB, t.Ratio, stoppedSuffix(t.StoppedAt))
		if plan.key == "20" {
			res.Arrived, res.StoppedAt = t.All, t.StoppedAt
			if t.All {
				res.LargestArrivedBytes, res.PeakGrowthMB, res.Ratio = t.Bytes, t.PeakGrowthMB, t.Ratio
			}
		}
	}
	return res, nil
}

func stoppedSuffix(s string) string {
	if s == "" {
		return ""
	}
	return "; stopped: " + s
}

// staged is one letter written before the baseline.
type staged struct {
	path, id, noticeID, digest string
}

// tryAttachment starts a hub, warms it up, then drops the plan's letters at
// once and follows them until each reached every destination intact or
// clearly stopped.
func tryAttachment(ctx context.Context, dir string, gen *letters, runNo int, plan attachmentPlan) (attachmentTry, error) {
	t := attachmentTry{Name: plan.name, Letters: plan.letters, Bytes: plan.size, Limits: plan.limits, Destinations: benchDestinations, Arrived: map[string]bool{}}
	tune := func(c *config.Config) {
		if plan.maxBytes > 0 {
			c.Adapters["medcom"]["max_bytes"] = plan.maxBytes
		}
		if plan.timeout > 0 {
			c.Pipeline.SinkTimeout = plan.timeout
			c.Adapters["casesys"]["timeout"] = plan.timeout.String()
			c.Adapters["epj"]["timeout"] = plan.timeout.String()
		}
	}
	rig, err := startRig(ctx, dir, gen, tune, &logLines{})
	if err != nil {
		return t, err
	}
	defer rig.close()
	if _, err := rig.run("attachment: warm-up", runNo, 20, 0, 2*time.Minute); err != nil {
		return t, err
	}
	if st, err := rig.app.Broker.JS.Stream(ctx, broker.StreamLetters); err == nil {
		t.StreamMaxMsg = st.CachedInfo().Config.MaxMsgSize
	}

	// The files are built and written before the baseline, so the
	// harness's copies are garbage by the time memory is measured.
	var letters []staged
	for i := range plan.letters {
		s := staged{path: filepath.Join(dir, fmt.Sprintf("staged-%d.xml", i))}
		if s.id, s.digest, err = stageAttachmentLetter(s.path, plan.size, uint64(runNo*10+i)); err != nil {
			return t, err
		}
		s.noticeID = email.MessageID("notice:arrived::"+s.id, coordinator, mailFrom)
		if fi, err := os.Stat(s.path); err == nil {
			t.FileBytes = int(fi.Size())
		}
		letters = append(letters, s)
	}
	medcomDir := filepath.Dir(rig.in)
	before, err := writeHeap(dir, fmt.Sprintf("heap-attachment-%s-before.pb.gz", plan.key))
	if err != nil {
		return t, err
	}
	t.BaselineMB = settledRSSMB()
	logs0 := rig.logs.len()
	resetPeakRSS()
	start := time.Now()
	stopPeak := peakProfile("peak.pb.gz")
	defer stopPeak()
	for i, s := range letters {
		if err := os.Rename(s.path, filepath.Join(rig.in, fmt.Sprintf("attachment-%d.xml", i))); err != nil {
			return t, err
		}
	}

	// Follow the letters: arrivals (digest checked) at the destinations,
	// the files' places in the MedCom directories, the hub's warnings.
	timeout := 60*time.Second + time.Duration(plan.letters*plan.size/2_000_000)*time.Second
	var firstProblem time.Time
	for {
		for _, d := range benchDestinations {
			all := true
			for _, s := range letters {
				switch d {
				case "casefile":
					all = all && rig.cs.Files.Has(s.id, s.digest)
				case "region":
					all = all && rig.epj.Files.Has(s.id, s.digest)
				case "notices":
					_, ok := rig.mail.Letters.At(s.noticeID)
					all = all && ok
				}
			}
			t.Arrived[d] = all
		}
		t.All = !slices.Contains(mapValues(t.Arrived), false)
		if t.All {
			break
		}
		// A file the source keeps retrying (still in in/ or processing/) or
		// rejected (error/) after a warning is not going to be stored: give
		// it a few seconds, then call it. A stored letter gets the whole
		// timeout, for the destinations' retries.
		stuck := fileIn(medcomDir, "in") || fileIn(medcomDir, "processing") || fileIn(medcomDir, "error")
		if stuck && len(rig.logs.since(logs0)) > 0 && firstProblem.IsZero() {
			firstProblem = time.Now()
		}
		if !firstProblem.IsZero() && time.Since(firstProblem) > 8*time.Second || time.Since(start) > timeout {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Seconds = time.Since(start).Seconds()
	t.PeakMB = peakRSSMB()
	t.PeakGrowthMB = t.PeakMB - t.BaselineMB
	t.Ratio = t.PeakGrowthMB * 1e6 / float64(plan.size*plan.letters)
	after, err := writeHeap(dir, fmt.Sprintf("heap-attachment-%s-after.pb.gz", plan.key))
	if err != nil {
		return t, err
	}
	t.AllocTop = pprofTop(after, "alloc_space", before)
	t.Profile = keepProfile(after)
	if !t.All {
		t.StoppedAt = whereStopped(ctx, rig, medcomDir, letters[0].id, rig.logs.since(logs0), t.Arrived)
	}
	return t, nil
}

func mapValues(m map[string]bool) []bool {
	var out []bool
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// stageAttachmentLetter writes a new CareCommunication (category
// regarding-referral, so the hub routes it like a referral: case system,
// EPJ and notice) about MedCom's test person Bruno Test Elmer, from a test
// GP to the council, with one size-byte PDF-typed attachment of random
// bytes (random so no layer can compress it away). It returns the hub's id
// of the letter (its MessageHeader.id) and the attachment's SHA-256. The
// file is written as it is built, its attachment never held twice.
func stageAttachmentLetter(path string, size int, seed uint64) (id, digest string, err error) {
	data := make([]byte, size)
	var key [32]byte
	key[0], key[1] = byte(seed), byte(seed>>8)
	_, _ = rand.NewChaCha8(key).Read(data)
	copy(data, "%PDF-1.7\n")
	sum := sha256.Sum256(data)
	l := &letter.Letter{
		Patient:  &letter.Patient{CPR: testCPR, GivenName: "Bruno Test", FamilyName: "Elmer"},
		Category: "regarding-referral",
		Topic:    "Henvisning med bilag",
		Text:     "Henvisning til samrådet med scannet journal som bilag. Testbrev.",
		Attachments: []letter.Attachment{
			letter.NewAttachment("Journaludskrift", "application/pdf", data),
		},
	}
	out, id, err := fhirmsg.BuildCareCommunication(l, fhirmsg.BuildOptions{Encoding: fhirmsg.EncodingXML, Self: benchGP, To: council, Mode: fhirmsg.ModeNew})
	if err != nil {
		return "", "", err
	}
	return id, hex.EncodeToString(sum[:]), os.WriteFile(path, out, 0o600)
}

func fileIn(medcomDir, sub string) bool {
	es, _ := os.ReadDir(filepath.Join(medcomDir, sub))
	for _, e := range es {
		if strings.HasPrefix(e.Name(), "attachment") {
			return true
		}
	}
	return false
}

// whereStopped says, free of personal data, where the letter stopped: the
// MedCom directory holding the file (and the source's error note), the
// journey's last steps, and the hub's distinct warnings (already redacted
// by its logging handler; only message, code, destination and error kept).
func whereStopped(ctx context.Context, rig *memRig, medcomDir, id string, logs []string, arrived map[string]bool) string {
	var parts []string
	var missing []string
	for _, d := range benchDestinations {
		if !arrived[d] {
			missing = append(missing, d)
		}
	}
	parts = append(parts, "not at "+strings.Join(missing, ", "))
	for _, sub := range []string{"in", "processing", "processed", "error"} {
		if fileIn(medcomDir, sub) {
			parts = append(parts, "file in medcom "+sub+"/")
		}
	}
	if notes, _ := filepath.Glob(filepath.Join(medcomDir, "error", "*.error.txt")); len(notes) > 0 {
		if b, err := os.ReadFile(notes[0]); err == nil {
			parts = append(parts, "medcom error note: "+strings.TrimSpace(string(b)))
		}
	}
	if rig.app != nil {
		c, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if tr, err := rig.app.Hub.TraceLetter(c, id); err == nil {
			var steps []string
			for _, s := range tr.Steps {
				st := s.Step
				if s.Destination != "" {
					st += " " + s.Destination
				}
				if s.Code != "" {
					st += " (" + s.Code + ")"
				}
				steps = append(steps, st)
			}
			parts = append(parts, "journey: "+strings.Join(steps, ", "))
		} else {
			parts = append(parts, "journey: "+err.Error())
		}
	}
	var seen []string
	for _, line := range logs {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil {
			continue
		}
		s := fmt.Sprint(rec["msg"])
		for _, k := range []string{"destination", "code", "err", "error"} {
			if v, ok := rec[k]; ok {
				s += fmt.Sprintf(" %s=%v", k, v)
			}
		}
		if !slices.Contains(seen, s) {
			seen = append(seen, s)
		}
	}
	if len(seen) > 0 {
		parts = append(parts, fmt.Sprintf("hub warnings (%d records): %s", len(logs), strings.Join(seen, " | ")))
	}
	return strings.Join(parts, "; ")
}

// peakProfile (BENCH_PEAK_PROFILE=dir) writes dir/name, a heap profile taken
// when the heap in use is at its highest until the returned func is called:
// for finding what is live then.
func peakProfile(name string) func() {
	dir := os.Getenv("BENCH_PEAK_PROFILE")
	if dir == "" {
		return func() {}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		logf("BENCH_PEAK_PROFILE: %v", err)
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		var best uint64
		// runtime/metrics, not ReadMemStats, which stops the world each time.
		sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		for {
			select {
			case <-done:
				return
			case <-time.After(2 * time.Millisecond):
			}
			metrics.Read(sample)
			if heap := sample[0].Value.Uint64(); heap > best+4<<20 {
				best = heap
				f, err := os.Create(filepath.Join(dir, name))
				if err == nil {
					_ = pprof.Lookup("heap").WriteTo(f, 0)
					f.Close()
				}
			}
		}
	}()
	return func() { close(done) }
}
