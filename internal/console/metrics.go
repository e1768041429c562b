package console

import (
	"bytes"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The hub's Prometheus registry is not reachable from a mount, so the
// overview reads the same numbers operations see: it asks the server's own
// /metrics handler in process and parses the text format.
type bufferWriter struct {
	h      http.Header
	status int
	buf    bytes.Buffer
}

func (b *bufferWriter) Header() http.Header         { return b.h }
func (b *bufferWriter) Write(p []byte) (int, error) { return b.buf.Write(p) }
func (b *bufferWriter) WriteHeader(s int)           { b.status = s }

// metricSums returns, per metric name asked for, the sum over all label
// sets, and whether the metric was present at all.
func (c *Console) metricSums(r *http.Request, names ...string) (map[string]float64, map[string]bool) {
	sums, seen := map[string]float64{}, map[string]bool{}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, "/metrics", nil)
	if err != nil {
		return sums, seen
	}
	req.Header.Set("Accept", "text/plain")
	bw := &bufferWriter{h: http.Header{}, status: 200}
	c.srv.ServeHTTP(bw, req)
	if bw.status != 200 {
		return sums, seen
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(&bw.buf)
	if err != nil {
		c.log.Warn("console: cannot read the hub's metrics", "err", err)
		return sums, seen
	}
	for _, n := range names {
		f, ok := fams[n]
		if !ok {
			continue
		}
		seen[n] = true
		for _, m := range f.GetMetric() {
			switch {
			case m.GetCounter() != nil:
				sums[n] += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				sums[n] += m.GetGauge().GetValue()
			}
		}
	}
	return sums, seen
}

// todayCounter turns the received-letters counter (which counts since the
// process started) into "today": the counter's value at the first look of
// the day is the baseline, unless the process itself started today, in which
// case the whole count is today's. The page says since when it counted.
type todayCounter struct {
	mu    sync.Mutex
	day   string
	base  float64
	since time.Time
}

func (t *todayCounter) count(now time.Time, total, processStart float64) (float64, time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	local := now // in the console's zone: its day is the coordinator's
	day := local.Format("2006-01-02")
	if t.day != day || total < t.base { // a new day, or the counter was reset
		t.day = day
		midnight := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, now.Location())
		start := time.Unix(int64(processStart), 0)
		if processStart > 0 && !start.Before(midnight) {
			t.base, t.since = 0, start
		} else {
			t.base, t.since = total, local
		}
	}
	return total - t.base, t.since
}
