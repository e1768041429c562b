package hubtest

import (
	"strings"
	"testing"
)

func TestMetricSeriesDropsValuesKeepsLabels(t *testing.T) {
	in := "# HELP x_total Bytes.\nprocess_network_transmit_bytes_total 1.2509479989e+10\nsamhub_deliveries_total{destination=\"2509479989\"} 3\n"
	got := string(MetricSeries([]byte(in)))
	if !strings.Contains(got, `destination="2509479989"}`) || strings.Contains(got, "1.2509479989e+10") || !strings.Contains(got, "# HELP x_total Bytes.") {
		t.Fatalf("got %q: want help and labels kept, values dropped", got)
	}
}
