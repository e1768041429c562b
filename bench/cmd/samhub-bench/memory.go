package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"sync"
)

// logLines keeps the hub's warning and error records (JSON lines, already
// redacted by logging.New) and throws the rest away, as the throughput
// phases do.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte(`"level":"WARN"`)) || bytes.Contains(p, []byte(`"level":"ERROR"`)) {
		l.mu.Lock()
		if len(l.lines) < 10000 {
			l.lines = append(l.lines, strings.TrimSpace(string(p)))
		}
		l.mu.Unlock()
	}
	return len(p), nil
}

// since returns the records from index i on.
func (l *logLines) since(i int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if i >= len(l.lines) {
		return nil
	}
	return append([]string(nil), l.lines[i:]...)
}

func (l *logLines) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.lines)
}

// settledRSSMB is the process's RSS once the Go heap has been collected and
// returned to the OS, so what remains is live memory (Go heap in use, the
// runtime, mapped files and non-Go allocations).
func settledRSSMB() float64 {
	runtime.GC()
	debug.FreeOSMemory()
	return rssMB()
}

// writeHeap writes a heap profile (after a GC, so in-use figures are live
// memory) to dir/name.
func writeHeap(dir, name string) (string, error) {
	runtime.GC()
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if err := pprof.WriteHeapProfile(f); err != nil {
		return "", err
	}
	return path, f.Close()
}

// pprofTop summarises a heap profile with `go tool pprof -top` (the profile
// is symbolised, so no binary is needed): the ten biggest entries of
// sampleIndex (inuse_space, alloc_space), relative to base when given.
func pprofTop(path, sampleIndex, base string) []string {
	args := []string{"tool", "pprof", "-top", "-nodecount=10", "-sample_index=" + sampleIndex}
	if base != "" {
		args = append(args, "-base", base)
	}
	out, err := exec.Command("go", append(args, path)...).CombinedOutput()
	if err != nil {
		return []string{"go tool pprof failed: " + strings.TrimSpace(string(out))}
	}
	var top []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "Showing nodes"), strings.HasPrefix(line, "flat "), strings.HasPrefix(line, "flat\t"):
			top = append(top, line)
		case len(top) > 0:
			top = append(top, strings.Join(strings.Fields(line), " "))
		}
	}
	return top
}

// keepProfile copies a profile to BENCH_HEAPPROFILE_DIR when set; profiles
// otherwise go with the run's temporary directory.
func keepProfile(path string) string {
	dir := os.Getenv("BENCH_HEAPPROFILE_DIR")
	if dir == "" || path == "" {
		return ""
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return ""
	}
	dst := filepath.Join(dir, filepath.Base(path))
	in, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return ""
	}
	defer out.Close()
	if _, err := io.Copy(out, in); err != nil {
		return ""
	}
	return dst
}

func mb(n int) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }

// measureMemory runs the two memory phases of issue 10 unless switched off
// (BENCH_NO_PARKED=1, BENCH_NO_ATTACHMENT=1); a phase that fails is noted
// in the results rather than failing the run.
func measureMemory(ctx context.Context, tmp, label string, gen *letters, res *results) {
	if os.Getenv("BENCH_NO_PARKED") == "" {
		n := env("BENCH_PARKED_N", 1_000_000)
		logf("parked: retry queue memory with %d parked letters", n)
		if p, err := measureParked(ctx, tmp, gen, n); err != nil {
			res.ParkedNote = "parked phase failed: " + err.Error()
			logf("%s", res.ParkedNote)
		} else {
			res.Parked = &p
		}
	} else {
		res.ParkedNote = "not run (BENCH_NO_PARKED)"
	}
	if os.Getenv("BENCH_NO_ATTACHMENT") == "" {
		logf("attachment: letters with large attachments")
		if a, err := measureAttachment(ctx, tmp, label, gen); err != nil {
			res.AttachmentNote = "attachment phase failed: " + err.Error()
			logf("%s", res.AttachmentNote)
		} else {
			res.Attachment = &a
		}
	} else {
		res.AttachmentNote = "not run (BENCH_NO_ATTACHMENT)"
	}
}

// parkedTarget is the "RSS flat with 1 M parked letters" row: met when the
// settled RSS with the full queue is within 150 MB and within 10 % of the
// empty queue's.
func parkedTarget(r results) target {
	t := target{What: "RSS flat with 1 M parked letters", Goal: "≤ 150 MB", Value: "—", Result: "not measured"}
	p := r.Parked
	if p == nil {
		return t
	}
	t.What = fmt.Sprintf("RSS flat with %d parked letters (settled RSS, empty → full queue; peak while working)", p.N)
	t.Value = fmt.Sprintf("%.0f → %.0f MB (peak %.0f MB)", p.RSSEmptyMB, p.RSSFullMB, p.PeakMB)
	// Flat: within the budget while working, and the full queue costs at
	// most a tenth of the budget (15 MB) per million parked letters more
	// than the empty one.
	t.Result = "short"
	perMillion := (p.RSSFullMB - p.RSSEmptyMB) / float64(p.N) * 1e6
	if p.RSSFullMB <= 150 && p.PeakMB <= 150 && perMillion <= 15 {
		t.Result = "met"
	}
	return t
}

// attachmentTargetRow is the "20 MB attachment streamed" row.
func attachmentTargetRow(r results) target {
	t := target{What: "20 MB attachment streamed", Goal: "RSS growth ≤ 2× size", Value: "—", Result: "not measured"}
	a := r.Attachment
	if a == nil {
		return t
	}
	t.Result = "short"
	switch {
	case a.Arrived:
		t.Value = fmt.Sprintf("arrived intact everywhere; peak RSS +%.0f MB = %.1f×", a.PeakGrowthMB, a.Ratio)
		if a.Ratio <= 2 {
			t.Result = "met"
		}
	default:
		t.Value = "did not arrive: " + a.StoppedAt
	}
	return t
}

// attachmentTargetRows are the headline row and one row for each larger or
// concurrent try of the headline's label: growth ≤ 2× the attachments
// dropped at once (issue 21: 2× one letter × the letters let in at once).
func attachmentTargetRows(r results) []target {
	rows := []target{attachmentTargetRow(r)}
	a := r.Attachment
	if a == nil || a.Label == "" {
		return rows
	}
	for _, tr := range a.Tries {
		if tr.Label != a.Label || tr.Name == "20 MB" || tr.Bytes < attachmentTarget {
			continue
		}
		limit := 2 * float64(tr.Bytes*tr.Letters) / 1e6
		t := target{What: tr.Name + " attachment streamed", Goal: fmt.Sprintf("RSS growth ≤ 2× size × letters (%.0f MB)", limit), Result: "short"}
		if !tr.All {
			t.Value = "did not arrive: " + tr.StoppedAt
		} else {
			t.Value = fmt.Sprintf("arrived intact everywhere; peak RSS +%.0f MB = %.2f×", tr.PeakGrowthMB, tr.Ratio)
			if tr.Ratio <= 2 {
				t.Result = "met"
			}
		}
		rows = append(rows, t)
	}
	return rows
}

// memorySummary is latest.md's section on the two memory phases.
func memorySummary(b *strings.Builder, r results) {
	b.WriteString("\n## Memory: parked letters\n\n")
	if p := r.Parked; p != nil {
		fmt.Fprintf(b, "%d parked letters of %d B each (the phase is about count, not size; %.0f MB stored), filled in %.1f s (%.0f/s): %s. Hub restart on the filled store %.1f s.\n\n", p.N, p.LetterBytes, p.StoredMB, p.FillS, p.FillPerS, p.FillHow, p.RestartS)
		b.WriteString("| queue | settled RSS MB | Go heap in use MB | letters/s (300 delivered) | list first page ms | get one ms | stats ms | peak RSS MB: delivering / list+get / stats / idle |\n|---|---|---|---|---|---|---|---|\n")
		row := func(name string, rss, heap float64, w workRun) {
			stats := fmt.Sprintf("%.0f", w.StatsMs)
			if w.StatsErr != "" {
				stats += " (error: " + w.StatsErr + ")"
			}
			fmt.Fprintf(b, "| %s | %.0f | %.0f | %.0f | %.1f | %.1f | %s | %.0f / %.0f / %.0f / %.0f |\n", name, rss, heap, w.LettersPerS, w.ListMs, w.GetMs, stats, w.PeakDeliverMB, w.PeakListGetMB, w.PeakStatsMB, w.PeakIdleMB)
		}
		row("empty", p.RSSEmptyMB, p.HeapEmptyMB, p.Empty)
		row(fmt.Sprintf("%d parked", p.N), p.RSSFullMB, p.HeapFullMB, p.Full)
		b.WriteString("\nHeap in use with the full queue, growth over the empty one (`go tool pprof -top -sample_index=inuse_space -base empty full`):\n\n```\n")
		b.WriteString(strings.Join(p.HeapTopGrowth, "\n"))
		b.WriteString("\n```\n")
		if len(p.Full.StatsAllocTop) > 0 {
			b.WriteString("\nAllocated during one `retryq.Queue.Stats` call with the full queue (`-sample_index=alloc_space`, before → after):\n\n```\n")
			b.WriteString(strings.Join(p.Full.StatsAllocTop, "\n"))
			b.WriteString("\n```\n")
		}
	} else {
		fmt.Fprintf(b, "%s\n", r.ParkedNote)
	}
	b.WriteString("\n## Memory: letters with large attachments\n\n")
	if a := r.Attachment; a != nil {
		b.WriteString("FHIR CareCommunications (XML), category regarding-referral, one attachment of random bytes each, dropped into the MedCom inbox of an idle hub (fresh per try) and followed to the case system and the EPJ (the attachment's SHA-256 checked there) and the notice by mail; peak RSS growth over the settled idle RSS, ÷ the attachments dropped at once.\n\n")
		b.WriteString("| code | try | file | limits | arrived intact | s | peak growth MB | × attachments | stopped at |\n|---|---|---|---|---|---|---|---|---|\n")
		for _, t := range a.Tries {
			var arr []string
			for _, d := range t.Destinations {
				if t.Arrived[d] {
					arr = append(arr, d)
				}
			}
			fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %.1f | %.0f | %.2f | %s |\n", t.Label, t.Name, mb(t.FileBytes), t.Limits, strings.Join(arr, ", "), t.Seconds, t.PeakGrowthMB, t.Ratio, strings.ReplaceAll(t.StoppedAt, "|", "/"))
		}
		for _, t := range a.Tries {
			if len(t.AllocTop) > 0 {
				fmt.Fprintf(b, "\nAllocated while %s went through (%s; `go tool pprof -top -sample_index=alloc_space`, idle → after):\n\n```\n%s\n```\n", t.Name, t.Label, strings.Join(t.AllocTop, "\n"))
			}
		}
	} else {
		fmt.Fprintf(b, "%s\n", r.AttachmentNote)
	}
}
