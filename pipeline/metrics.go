package pipeline

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/samhub/samhub/internal/version"
)

// metrics are Samhub's own Prometheus series (deploy/ builds alerts and the
// dashboard on exactly these names). Labels are adapter and destination
// names from configuration, never letter data.
type metrics struct {
	received        *prometheus.CounterVec
	rejected        *prometheus.CounterVec
	duplicates      *prometheus.CounterVec
	unrouted        *prometheus.CounterVec
	publishFailures *prometheus.CounterVec
	deliveries      *prometheus.CounterVec
	failures        *prometheus.CounterVec
	retries         *prometheus.CounterVec
	parked          *prometheus.CounterVec
	replayed        *prometheus.CounterVec
	discarded       *prometheus.CounterVec
	referrals       prometheus.Counter
	referralsParked prometheus.Counter
	duration        *prometheus.HistogramVec
	latency         *prometheus.HistogramVec
	leadTime        prometheus.Histogram
	parkedNow       *prometheus.GaugeVec
	parkedOldest    *prometheus.GaugeVec
	pending         *prometheus.GaugeVec
	held            *prometheus.GaugeVec
	natsConnected   prometheus.Gauge
	jsReady         prometheus.Gauge
	storeBytes      *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		received:        prometheus.NewCounterVec(prometheus.CounterOpts{Name: "samhub_letters_received_total", Help: "Letters stored in JetStream, by source adapter."}, []string{"source"}),
		rejected:        prometheus.NewCounterVec(prometheus.CounterOpts{Name: "samhub_letters_rejected_total", Help: "Letters refused before storage, by source and reason code."}, []string{"source", "code"}),
		duplicates:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "samhub_letters_duplicate_total", Help: "Letters seen before and not routed again, by source."}, []string{"source"}),
		unrouted:        prometheus.NewCounterVec(prometheus.CounterOpts{Name: "samhub_letters_unrouted_total", Help: "Letters stored that no route sends to any destination, by source and kind."}, []string{"source", "kind"}),
		publishFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "samhub_publish_failures_total", Help: "Failed attempts to store a letter in JetStream, by source."}, []string{"source"}),
		deliveries:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "samhub_deliveries_total", Help: "Letters delivered, by destination and result (delivered, existing)."}, []string{"destination", "result"}),
		failures:        prometheus.NewCounterVec(prometheus.CounterOpts{Name: "samhub_delivery_failures_total", Help: "Failed delivery attempts, by destination and class."}, []string{"destination", "class"}),
		retries:         prometheus.NewCounterVec(prometheus.CounterOpts{Name: "samhub_delivery_retries_total", Help: "Delivery retries, by destination."}, []string{"destination"}),
		parked:          prometheus.NewCounterVec(prometheus.CounterOpts{Name: "samhub_letters_parked_total", Help: "Letters parked in the retry queue, by destination."}, []string{"destination"}),
		replayed:        prometheus.NewCounterVec(prometheus.CounterOpts{Name: "samhub_letters_replayed_total", Help: "Parked letters replayed, by destination."}, []string{"destination"}),
		discarded:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "samhub_letters_discarded_total", Help: "Parked letters discarded, by destination."}, []string{"destination"}),
		referrals:       prometheus.NewCounter(prometheus.CounterOpts{Name: "samhub_referrals_received_total", Help: "Referrals received."}),
		referralsParked: prometheus.NewCounter(prometheus.CounterOpts{Name: "samhub_referrals_parked_total", Help: "Referrals parked for the coordinator."}),
		duration:        prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "samhub_delivery_duration_seconds", Help: "Time of one sink call.", Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12)}, []string{"destination"}),
		latency:         prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "samhub_letter_latency_seconds", Help: "Time from receipt to delivery.", Buckets: prometheus.ExponentialBuckets(0.002, 3, 14)}, []string{"destination"}),
		leadTime:        prometheus.NewHistogram(prometheus.HistogramOpts{Name: "samhub_recommendation_lead_time_seconds", Help: "Time from a referral to the council's recommendation in its thread.", Buckets: []float64{86400, 3 * 86400, 7 * 86400, 14 * 86400, 30 * 86400, 60 * 86400, 90 * 86400}}),
		parkedNow:       prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "samhub_parked_letters", Help: "Letters in the retry queue, by destination."}, []string{"destination"}),
		parkedOldest:    prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "samhub_parked_oldest_age_seconds", Help: "Age of the oldest parked letter, by destination."}, []string{"destination"}),
		pending:         prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "samhub_destination_pending_letters", Help: "Letters waiting for a destination (not yet delivered or parked)."}, []string{"destination"}),
		held:            prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "samhub_threads_held", Help: "Threads held back behind a failing letter, by destination."}, []string{"destination"}),
		natsConnected:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "samhub_nats_connected", Help: "1 while the hub is connected to NATS."}),
		jsReady:         prometheus.NewGauge(prometheus.GaugeOpts{Name: "samhub_jetstream_ready", Help: "1 while JetStream answers and the streams are usable."}),
		storeBytes:      prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "samhub_store_bytes", Help: "Bytes stored per stream."}, []string{"stream"}),
	}
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "samhub_build_info", Help: "Build information."}, []string{"version", "goversion"})
	build.WithLabelValues(version.Version, runtime.Version()).Set(1)
	reg.MustRegister(m.received, m.rejected, m.duplicates, m.unrouted, m.publishFailures, m.deliveries, m.failures, m.retries, m.parked, m.replayed, m.discarded,
		m.referrals, m.referralsParked, m.duration, m.latency, m.leadTime, m.parkedNow, m.parkedOldest, m.pending, m.held, m.natsConnected, m.jsReady, m.storeBytes, build)
	return m
}

// zero creates every known series at 0, so that increase() and alerts see
// the first letter (a series that appears at 1 hides its first increment).
// rejectCodes are the codes each source reports besides the hub's own.
func (m *metrics) zero(sources, dests []string, rejectCodes map[string][]string) {
	for _, s := range sources {
		m.received.WithLabelValues(s)
		m.duplicates.WithLabelValues(s)
		m.publishFailures.WithLabelValues(s)
		for _, code := range append([]string{"invalid_letter", "letter_too_large"}, rejectCodes[s]...) {
			m.rejected.WithLabelValues(s, code)
		}
	}
	for _, d := range dests {
		for _, r := range []string{"delivered", "existing"} {
			m.deliveries.WithLabelValues(d, r)
		}
		for _, c := range []string{"retryable", "permanent"} {
			m.failures.WithLabelValues(d, c)
		}
		m.retries.WithLabelValues(d)
		m.parked.WithLabelValues(d)
		m.replayed.WithLabelValues(d)
		m.discarded.WithLabelValues(d)
		m.parkedNow.WithLabelValues(d)
		m.parkedOldest.WithLabelValues(d)
		m.pending.WithLabelValues(d)
		m.held.WithLabelValues(d)
	}
}
