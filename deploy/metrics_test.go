package deploy

import (
	"encoding/json"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// hubMetrics is the metric contract the hub exports (counters, histograms,
// gauges). Dashboards and alerts may name only these, Watermill's router
// metrics under the samhub namespace, the Go/process collectors and up.
var hubMetrics = []string{
	"samhub_letters_received_total", "samhub_letters_rejected_total", "samhub_deliveries_total",
	"samhub_delivery_failures_total", "samhub_delivery_retries_total", "samhub_letters_parked_total",
	"samhub_letters_replayed_total", "samhub_letters_discarded_total", "samhub_referrals_received_total",
	"samhub_referrals_parked_total", "samhub_referrals_unanswered", "samhub_publish_failures_total",
	"samhub_delivery_duration_seconds", "samhub_letter_latency_seconds", "samhub_recommendation_lead_time_seconds",
	"samhub_parked_letters", "samhub_parked_oldest_age_seconds", "samhub_destination_pending_letters",
	"samhub_threads_held", "samhub_medcom_acks_missing", "samhub_nats_connected", "samhub_jetstream_ready",
	"samhub_store_bytes", "samhub_build_info", "samhub_letters_duplicate_total", "samhub_letters_unrouted_total",
	"samhub_auth_throttled_total",
	// The MedCom adapter's own (adapters/medcom).
	"samhub_medcom_files_ignored_total",
	// Watermill's components/metrics, built by the pipeline with namespace
	// "samhub" and subsystem "router" (pipeline/hub.go).
	"samhub_router_handler_execution_time_seconds", "samhub_router_publish_time_seconds",
	"samhub_router_subscriber_messages_received_total",
	// Prometheus itself.
	"up",
}

// histograms may also appear as their _bucket, _sum and _count series.
var histograms = []string{
	"samhub_delivery_duration_seconds", "samhub_letter_latency_seconds",
	"samhub_recommendation_lead_time_seconds", "samhub_router_handler_execution_time_seconds",
	"samhub_router_publish_time_seconds",
}

// knownMetric reports whether name is in the contract; extraPrefixes admits
// whole families (go_, process_, node_filesystem_).
func knownMetric(name string, extraPrefixes ...string) bool {
	for _, m := range hubMetrics {
		if name == m {
			return true
		}
	}
	for _, h := range histograms {
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if name == h+suf {
				return true
			}
		}
	}
	for _, p := range extraPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

var (
	// PromQL parts that never name a metric: quoted strings (label values,
	// regexps), label matchers, range/subquery brackets and the label lists
	// of by/without/on/ignoring/group_left/group_right.
	promStrings   = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`")
	promMatchers  = regexp.MustCompile(`\{[^}]*\}`)
	promRanges    = regexp.MustCompile(`\[[^\]]*\]`)
	promLabelList = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promToken     = regexp.MustCompile(`\$?[A-Za-z_:][A-Za-z0-9_:]*(\s*\()?|[0-9][0-9A-Za-z_.]*`)
	promKeywords  = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true,
		"inf": true, "nan": true, "Inf": true, "NaN": true}
)

// metricNames lists the metric names an expression selects. The PromQL
// parser lives in github.com/prometheus/prometheus, a large module Samhub
// does not otherwise need, so this is a small lexer that is enough for
// selectors: it strips everything that cannot be a metric name and keeps the
// identifiers that are not function calls or keywords.
func metricNames(expr string) []string {
	s := promStrings.ReplaceAllString(expr, `""`)
	s = promMatchers.ReplaceAllString(s, " ")
	s = promRanges.ReplaceAllString(s, " ")
	s = promLabelList.ReplaceAllString(s, " ")
	var names []string
	for _, m := range promToken.FindAllStringSubmatch(s, -1) {
		tok := m[0]
		if m[1] != "" || tok[0] == '$' || (tok[0] >= '0' && tok[0] <= '9') || promKeywords[tok] {
			continue // function call, Grafana variable, number or duration, keyword
		}
		names = append(names, tok)
	}
	return names
}

func TestMetricNamesLexer(t *testing.T) {
	tests := []struct {
		expr string
		want []string
	}{
		{`histogram_quantile(0.95, sum by (le, destination) (rate(samhub_delivery_duration_seconds_bucket{destination=~"$destination"}[$__rate_interval])))`,
			[]string{"samhub_delivery_duration_seconds_bucket"}},
		{"sum(increase(a_total[15m])) > 0 and on () (sum(increase(b_total[15m])) or vector(0)) == 0",
			[]string{"a_total", "b_total"}},
		{`up{job="samhub"} == 0`, []string{"up"}},
		{`x > 0.8 * 8 * 1024 offset 1h`, []string{"x"}},
		{`max without (instance) (y) / ignoring(code) group_left (z) w`, []string{"y", "w"}},
	}
	for _, tt := range tests {
		got := metricNames(tt.expr)
		if strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("metricNames(%q) = %v, want %v", tt.expr, got, tt.want)
		}
	}
}

// dashboardExprs walks the dashboard JSON and returns every "expr" and
// templating query, keyed by where it was found.
func dashboardExprs(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("grafana/samhub-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash map[string]any
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("grafana/samhub-dashboard.json is not valid JSON: %v", err)
	}
	for _, k := range []string{"title", "uid", "panels", "templating", "schemaVersion"} {
		if _, ok := dash[k]; !ok {
			t.Errorf("dashboard has no %q", k)
		}
	}
	// label_values(selector, label) in templating queries.
	labelValues := regexp.MustCompile(`^label_values\((.+),\s*[A-Za-z_]\w*\)$`)
	exprs := map[string]string{}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch t := v.(type) {
		case map[string]any:
			name := path
			if title, ok := t["title"].(string); ok {
				name = title
			}
			for k, e := range t {
				s, ok := e.(string)
				switch {
				case ok && k == "expr":
					exprs[name+": "+s] = s
				case ok && labelValues.MatchString(s):
					exprs[name+": "+s] = labelValues.FindStringSubmatch(s)[1]
				default:
					walk(name, e)
				}
			}
		case []any:
			for _, e := range t {
				walk(path, e)
			}
		}
	}
	walk("dashboard", dash)
	return exprs
}

func TestDashboardUsesOnlyContractMetrics(t *testing.T) {
	exprs := dashboardExprs(t)
	if len(exprs) < 20 {
		t.Fatalf("found only %d queries in the dashboard", len(exprs))
	}
	used := map[string]bool{}
	for where, expr := range exprs {
		names := metricNames(expr)
		if len(names) == 0 {
			t.Errorf("%s: query names no metric", where)
		}
		for _, n := range names {
			used[strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_sum"), "_count")] = true
			if !knownMetric(n, "go_", "process_") {
				t.Errorf("%s: metric %q is not in the hub's metric contract", where, n)
			}
		}
	}
	// The brief's panels: every contract metric of the hub should be on the
	// dashboard somewhere, or someone forgot a panel.
	var missing []string
	for _, m := range hubMetrics {
		if !used[m] && m != "samhub_router_publish_time_seconds" && m != "samhub_router_subscriber_messages_received_total" {
			missing = append(missing, m)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("metrics on no dashboard panel: %v", missing)
	}
}

// alertRules is the part of a Prometheus rules file the checks need.
type alertRules struct {
	Groups []struct {
		Name     string `yaml:"name"`
		Interval string `yaml:"interval"`
		Rules    []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// TestAlertRules checks what promtool does not: every alert names only
// contract metrics (node_filesystem_* from node_exporter aside), carries a
// severity, summary, description and a runbook link whose anchor exists in
// docs/operations.md, and the alerts the operations guide promises exist.
func TestAlertRules(t *testing.T) {
	b, err := os.ReadFile("prometheus/samhub-alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rules alertRules
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&rules); err != nil {
		t.Fatalf("prometheus/samhub-alerts.yml: %v", err)
	}
	anchors := markdownAnchors(t, "../docs/operations.md")
	seen := map[string]bool{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			seen[r.Alert] = true
			for _, n := range metricNames(r.Expr) {
				if !knownMetric(n, "node_filesystem_") {
					t.Errorf("%s: metric %q is not in the hub's metric contract", r.Alert, n)
				}
			}
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("%s: severity %q, want critical or warning", r.Alert, s)
			}
			for _, k := range []string{"summary", "description", "runbook_url"} {
				if r.Annotations[k] == "" {
					t.Errorf("%s: no %s annotation", r.Alert, k)
				}
			}
			_, anchor, _ := strings.Cut(r.Annotations["runbook_url"], "#")
			if !anchors[anchor] {
				t.Errorf("%s: runbook anchor #%s is not a heading in docs/operations.md", r.Alert, anchor)
			}
		}
	}
	for _, a := range []string{"SamhubDown", "SamhubNoDeliveries", "SamhubDestinationQueueGrowing", "SamhubParkedLetterOld",
		"SamhubMedcomAcksMissing", "SamhubNATSDisconnected", "SamhubJetStreamNotReady", "SamhubStoreNearlyFull"} {
		if !seen[a] {
			t.Errorf("alert %s is missing", a)
		}
	}
}

// markdownAnchors returns the GitHub-style anchors of a Markdown file's headings.
func markdownAnchors(t *testing.T, path string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	drop := regexp.MustCompile(`[^\p{L}\p{N} _-]`)
	anchors := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		h := strings.TrimSpace(strings.TrimLeft(line, "#"))
		h = drop.ReplaceAllString(strings.ToLower(h), "")
		anchors[strings.ReplaceAll(h, " ", "-")] = true
	}
	return anchors
}
