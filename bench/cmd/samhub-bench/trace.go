package main

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// traceRates prints, every second while a phase runs, how many letters each
// stage handled in that second (BENCH_TRACE=1): letters stored per source,
// deliveries per destination, the mean sink call time and the mean time
// from receipt (the source read the file) to delivery. It shows which
// stage sets the pace, which the end-to-end figures cannot.
func traceRates(reg *prometheus.Registry, stop <-chan struct{}) {
	if os.Getenv("BENCH_TRACE") == "" {
		return
	}
	prev := map[string]float64{}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		cur := map[string]float64{}
		mfs, err := reg.Gather()
		if err != nil {
			continue
		}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				lbl := ""
				for _, l := range m.GetLabel() {
					if l.GetName() == "source" || l.GetName() == "destination" {
						lbl = l.GetValue()
					}
				}
				switch mf.GetName() {
				case "samhub_letters_received_total":
					cur["in:"+lbl] = m.GetCounter().GetValue()
				case "samhub_deliveries_total":
					cur["out:"+lbl] += m.GetCounter().GetValue()
				case "samhub_delivery_duration_seconds":
					cur["n:"+lbl] = float64(m.GetHistogram().GetSampleCount())
					cur["s:"+lbl] = m.GetHistogram().GetSampleSum()
				case "samhub_letter_latency_seconds":
					cur["ln:"+lbl] = float64(m.GetHistogram().GetSampleCount())
					cur["ls:"+lbl] = m.GetHistogram().GetSampleSum()
				}
			}
		}
		var parts []string
		for k, v := range cur {
			if strings.HasPrefix(k, "in:") || strings.HasPrefix(k, "out:") {
				parts = append(parts, fmt.Sprintf("%s=%.0f", k, v-prev[k]))
			}
			if strings.HasPrefix(k, "n:") {
				d := k[2:]
				if n := v - prev[k]; n > 0 {
					parts = append(parts, fmt.Sprintf("call:%s=%.1fms", d, (cur["s:"+d]-prev["s:"+d])/n*1000))
				}
			}
			if strings.HasPrefix(k, "ln:") {
				d := k[3:]
				if n := v - prev[k]; n > 0 {
					parts = append(parts, fmt.Sprintf("received→delivered:%s=%.1fms", d, (cur["ls:"+d]-prev["ls:"+d])/n*1000))
				}
			}
		}
		sort.Strings(parts)
		logf("trace: %s", strings.Join(parts, " "))
		prev = cur
	}
}
