package main

import (
	"bufio"
	"os"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// cpuSeconds is user+system CPU time of this process so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

// heapAllocs is the bytes the Go heap has allocated so far and the
// collections completed (runtime/metrics: no stop of the world).
func heapAllocs() (bytes, cycles uint64) {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}, {Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	return s[0].Value.Uint64(), s[1].Value.Uint64()
}

// procStatusMB reads a "Vm…: N kB" line of /proc/self/status in MiB.
func procStatusMB(field string) float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// resetPeakRSS restarts the VmHWM high-water mark (Linux ≥ 4.0), so each
// phase reports its own peak.
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

func peakRSSMB() float64 { return procStatusMB("VmHWM") }
func rssMB() float64     { return procStatusMB("VmRSS") }

// jsCounts is what the server has stored per stream (last sequence, i.e.
// every message ever written, deletes included) and its API call count.
type jsCounts struct {
	seq   map[string]uint64
	bytes map[string]uint64 // bytes held, which retention and KV history can lower
	async map[string]bool   // streams that persist without an fsync per write
	api   uint64
}

func snapshotJS(s *server.Server) jsCounts {
	c := jsCounts{seq: map[string]uint64{}, bytes: map[string]uint64{}, async: map[string]bool{}}
	info, err := s.Jsz(&server.JSzOptions{Accounts: true, Streams: true, Config: true})
	if err != nil {
		return c
	}
	c.api = info.API.Total
	for _, a := range info.AccountDetails {
		for _, st := range a.Streams {
			c.seq[st.Name] = st.State.LastSeq
			c.bytes[st.Name] = st.State.Bytes
			c.async[st.Name] = st.Config != nil && st.Config.PersistMode == server.AsyncPersistMode
		}
	}
	return c
}

// grown returns the bytes each stream holds more in b than in a, where it
// grew: for a stream that keeps every message (the letters, the journey)
// that is what the messages written between took on disk, headers and
// framing included.
func (b jsCounts) grown(a jsCounts) map[string]uint64 {
	out := map[string]uint64{}
	for k, v := range b.bytes {
		if v > a.bytes[k] {
			out[k] = v - a.bytes[k]
		}
	}
	return out
}

// diff returns messages stored per stream and API calls between a and b.
func (b jsCounts) diff(a jsCounts) (map[string]uint64, uint64) {
	out := map[string]uint64{}
	for k, v := range b.seq {
		if d := v - a.seq[k]; d > 0 {
			out[k] = d
		}
	}
	return out, b.api - a.api
}

// percentile of sorted durations, in milliseconds.
func percentileMS(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	i = max(0, min(i, len(sorted)-1))
	return float64(sorted[i].Microseconds()) / 1000
}

func sortDurations(d []time.Duration) []time.Duration {
	slices.Sort(d)
	return d
}
