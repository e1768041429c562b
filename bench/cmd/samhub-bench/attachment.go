package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/samhub/samhub/adapters/email"
	"github.com/samhub/samhub/adapters/medcom/fhirmsg"
	"github.com/samhub/samhub/pipeline/broker"
	"github.com/samhub/samhub/pipeline/letter"
)

// attachmentResult is latest.json's "attachment": one MedCom
// CareCommunication (FHIR XML; XDIS91 only references its binaries) with a
// 20 MB attachment dropped into the inbox and followed to the case system,
// the EPJ and the coordinator's notice.
type attachmentResult struct {
	Bytes     int    `json:"bytes"`
	Arrived   bool   `json:"arrived"` // with the bench's configuration
	StoppedAt string `json:"stopped_at,omitempty"`
	// The largest of 20, 10, 5 and 1 MB that arrived with the bench's
	// configuration, and its peak RSS growth over the idle hub.
	LargestArrivedBytes int     `json:"largest_arrived_bytes"`
	PeakGrowthMB        float64 `json:"peak_growth_mb"`
	Ratio               float64 `json:"ratio"` // peak growth ÷ attachment size
	// Why no limit in the bench's configuration is raised to let it through.
	HardLimit string          `json:"hard_limit,omitempty"`
	Tries     []attachmentTry `json:"tries"`
}

// attachmentTry is one letter on a fresh hub.
type attachmentTry struct {
	Bytes        int             `json:"bytes"`      // the attachment
	FileBytes    int             `json:"file_bytes"` // the FHIR XML dropped into the inbox
	Limits       string          `json:"limits"`
	StreamMaxMsg int32           `json:"letter_stream_max_msg_size"` // as the server has it
	Arrived      map[string]bool `json:"arrived"`                    // casefile, region, notices
	All          bool            `json:"all_arrived"`
	Seconds      float64         `json:"seconds"`
	BaselineMB   float64         `json:"baseline_rss_mb"`
	PeakMB       float64         `json:"peak_rss_mb"`
	PeakGrowthMB float64         `json:"peak_growth_mb"`
	Ratio        float64         `json:"ratio"`
	StoppedAt    string          `json:"stopped_at,omitempty"`
	AllocTop     []string        `json:"alloc_top,omitempty"` // go tool pprof -top, alloc_space during this letter
	Profile      string          `json:"profile,omitempty"`
}

const attachmentTarget = 20_000_000

// storeRecordLimit is why the bench raises no limit for the full size: the
// bound is not configurable.
const storeRecordLimit = "nats-server v2.15.2's file store refuses any record over 32 MiB (rlBadThresh in server/filestore.go: 'message too large', err_code 10077), whatever streams.max_msg_size (32MB) and max_payload (64 MiB) say; the letter is stored as one JSON message carrying the original FHIR XML (the attachment in base64) in base64 plus the decoded attachment in base64, about 3.1× the attachment, so about 10.8 MB is the largest attachment a letter can carry"

var (
	benchGP = fhirmsg.Organization{Name: "Lægehuset Østergade", SOR: "441211000016000", GLN: "5790001987244"}
	council = fhirmsg.Organization{Name: "Samrådet for Børn og Unge", SOR: "1144561000016002", GLN: "5790001382445"} // hubtest's self
)

func measureAttachment(ctx context.Context, tmp string, gen *letters) (attachmentResult, error) {
	res := attachmentResult{Bytes: attachmentTarget}
	n := 0
	try := func(size int, limits string) (attachmentTry, error) {
		n++
		t, err := tryAttachment(ctx, filepath.Join(tmp, fmt.Sprintf("attachment-%d", n)), gen, 7+n, size, limits)
		if err != nil {
			return t, err
		}
		res.Tries = append(res.Tries, t)
		logf("attachment: %s with %s: arrived %v in %.1f s, peak RSS +%.0f MB (%.1f× the attachment)%s", mb(size), limits, t.Arrived, t.Seconds, t.PeakGrowthMB, t.Ratio, stoppedSuffix(t.StoppedAt))
		return t, nil
	}
	const defaults = "bench configuration (streams.max_msg_size 32MB, medcom max_bytes 100 MB)"
	for _, size := range []int{attachmentTarget, 10_000_000, 5_000_000, 1_000_000} {
		t, err := try(size, defaults)
		if err != nil {
			return res, err
		}
		if size == attachmentTarget {
			res.Arrived, res.StoppedAt = t.All, t.StoppedAt
		}
		if t.All {
			res.LargestArrivedBytes, res.PeakGrowthMB, res.Ratio = size, t.PeakGrowthMB, t.Ratio
			break
		}
	}
	if !res.Arrived {
		res.HardLimit = storeRecordLimit
	}
	return res, nil
}

func stoppedSuffix(s string) string {
	if s == "" {
		return ""
	}
	return "; stopped: " + s
}

// tryAttachment starts a hub, warms it up, then drops one letter with a
// size-byte attachment and follows it until it reached all three
// destinations or clearly stopped.
func tryAttachment(ctx context.Context, dir string, gen *letters, runNo, size int, limits string) (attachmentTry, error) {
	t := attachmentTry{Bytes: size, Limits: limits, Arrived: map[string]bool{}}
	rig, err := startRig(ctx, dir, gen, nil, &logLines{})
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

	// The file is built and written before the baseline, so the harness's
	// copies are garbage by the time memory is measured.
	staged := filepath.Join(dir, "staged.xml")
	id, err := stageAttachmentLetter(staged, size, uint64(runNo))
	if err != nil {
		return t, err
	}
	if fi, err := os.Stat(staged); err == nil {
		t.FileBytes = int(fi.Size())
	}
	noticeID := email.MessageID("notice:arrived::"+id, coordinator, mailFrom)
	medcomDir := filepath.Dir(rig.in)
	before, err := writeHeap(dir, fmt.Sprintf("heap-attachment-%d-before.pb.gz", size))
	if err != nil {
		return t, err
	}
	t.BaselineMB = settledRSSMB()
	logs0 := rig.logs.len()
	resetPeakRSS()
	start := time.Now()
	if err := os.Rename(staged, filepath.Join(rig.in, "attachment.xml")); err != nil {
		return t, err
	}

	// Follow the letter: arrivals at the destinations, the file's place in
	// the MedCom directories, its journey and the hub's warnings.
	const timeout = 60 * time.Second
	var firstProblem time.Time
	for {
		_, t.Arrived["casefile"] = rig.cs.Letters.At(id)
		_, t.Arrived["region"] = rig.epj.Letters.At(id)
		_, t.Arrived["notices"] = rig.mail.Letters.At(noticeID)
		t.All = t.Arrived["casefile"] && t.Arrived["region"] && t.Arrived["notices"]
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
	t.Ratio = t.PeakGrowthMB * (1 << 20) / float64(size)
	after, err := writeHeap(dir, fmt.Sprintf("heap-attachment-%d-after.pb.gz", size))
	if err != nil {
		return t, err
	}
	t.AllocTop = pprofTop(after, "alloc_space", before)
	t.Profile = keepProfile(after)
	if !t.All {
		t.StoppedAt = whereStopped(ctx, rig, medcomDir, id, rig.logs.since(logs0), t.Arrived)
	}
	return t, nil
}

// stageAttachmentLetter writes a new CareCommunication (category
// regarding-referral, so the hub routes it like a referral: case system,
// EPJ and notice) about MedCom's test person Bruno Test Elmer, from a test
// GP to the council, with one size-byte PDF-typed attachment of random
// bytes (random so no layer can compress it away). It returns the hub's id
// of the letter (its MessageHeader.id).
func stageAttachmentLetter(path string, size int, seed uint64) (string, error) {
	data := make([]byte, size)
	var key [32]byte
	key[0] = byte(seed)
	_, _ = rand.NewChaCha8(key).Read(data)
	copy(data, "%PDF-1.7\n")
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
		return "", err
	}
	return id, os.WriteFile(path, out, 0o600)
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
	for _, d := range []string{"casefile", "region", "notices"} {
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
