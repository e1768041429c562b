package config_test

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/samhub/samhub/internal/config"
)

// Random routing blocks as a user would write them, some with a mistake,
// loaded from YAML: what configuration refuses (and the key it names) is
// what docs and comments call invalid, no more and no less, and what it
// accepts reaches the router as written. SAMHUB_ROUTE_PROP_SEEDS=n runs n
// files (default 150); SAMHUB_ROUTE_PROP_SEED=N replays one.

const routesBase = `data_dir: ./data
adapters:
  medcom: {type: medcom, dir: ./m}
  casesys: {type: casesys, url: "http://127.0.0.1:1"}
  epj: {type: epj, url: "http://127.0.0.1:3"}
  mail: {type: smtp, host: mail.kommune.example, from: samraad@kommune.example, allow: ["@kommune.example"]}
  post: {type: digitalpost, url: 'http://127.0.0.1:2', client_id: samhub, client_secret: s, sender: {cvr: '29189846', name: Odense Kommune}}
`

// routesSectors: each destination of the generated files and its sector.
var routesSectors = map[string]string{"casefile": "municipality", "notices": "internal", "gp": "gp",
	"parents": "parents", "region": "region_psychiatry", "school": "school_ppr"}

var routesAdapter = map[string]string{"casefile": "casesys", "notices": "mail", "gp": "medcom",
	"parents": "post", "region": "epj", "school": "mail"}

// routesDirectory: identifier → role.
var routesDirectory = []struct{ id, role string }{
	{"5790000123456", "gp"}, {"6071000016008", "region"}, {"5790000120400", "hospital"},
	{"5790001382445", "municipality"}, {"1234567000016009", "school"},
}

// routeCase is one generated file and what the documentation says of it.
type routeCase struct {
	yaml string
	want []string // keys that must be reported, sorted; nil: valid
	// rules as written, for a valid file.
	rules []config.Route
}

func genRoutes(rng *rand.Rand) routeCase {
	var b strings.Builder
	b.WriteString(routesBase)
	b.WriteString("receivers:\n")
	for _, r := range routesDirectory {
		key := "gln"
		if len(r.id) != 13 {
			key = "sor"
		}
		fmt.Fprintf(&b, "  - {name: x, role: %s, %s: '%s'}\n", r.role, key, r.id)
	}
	var want, typos []string
	// A careful user's file has no mistakes of the kinds below but may
	// still write require_consent: false where it is not allowed.
	careless := rng.IntN(2) == 0
	oops := func(n int) bool { return careless && rng.IntN(n) == 0 }
	b.WriteString("destinations:\n")
	for _, name := range slices.Sorted(maps.Keys(routesSectors)) {
		fmt.Fprintf(&b, "  %s: {adapter: %s, sector: %s", name, routesAdapter[name], routesSectors[name])
		// Parents are reached by the custody holders the letter names,
		// never a receiver of the directory (which lists organisations).
		if roles := serves(routesSectors[name]); roles != nil && name != "parents" && rng.IntN(3) == 0 {
			r := routesDirectory[rng.IntN(len(routesDirectory))]
			for !careless && !slices.Contains(roles, r.role) {
				r = routesDirectory[rng.IntN(len(routesDirectory))]
			}
			fmt.Fprintf(&b, ", receiver: '%s'", r.id)
			if !slices.Contains(roles, r.role) {
				// Its role decides whose consent is needed: a receiver of
				// another sector is refused.
				want = append(want, "destinations."+name+".receiver")
			}
		}
		b.WriteString("}\n")
	}
	b.WriteString("routes:\n")
	dests := []string{"casefile", "notices", "gp", "parents", "region", "school"}
	kinds := []string{"referral", "reply", "recommendation", "acknowledgement", "discharge-note", "note"}
	var rules []config.Route
	names := map[string]bool{}
	for i := range 1 + rng.IntN(5) {
		key := fmt.Sprintf("routes[%d]", i)
		r := config.Route{Name: fmt.Sprintf("r%d", i)}
		switch {
		case oops(12):
			r.Name = ""
		case i > 0 && oops(12):
			r.Name = "r0"
		}
		if r.Name == "" || names[r.Name] {
			want = append(want, key+".name")
		}
		names[r.Name] = true
		for range 1 + rng.IntN(3) {
			r.To = append(r.To, dests[rng.IntN(len(dests))])
		}
		if oops(12) {
			r.To = append(r.To, "casefiles")
			want = append(want, key+".to")
		}
		if rng.IntN(3) == 0 {
			r.Match.Kind = []string{kinds[rng.IntN(len(kinds))]}
			if rng.IntN(3) == 0 {
				r.Match.Kind = []string{"discharge-note"}
			}
			if oops(10) {
				r.Match.Kind = append(r.Match.Kind, "letter")
				want = append(want, key+".match.kind")
			}
		}
		if rng.IntN(4) == 0 {
			r.Match.Source = []string{"medcom"}
			if oops(6) {
				r.Match.Source = []string{"imap"} // no such adapter here
				want = append(want, key+".match.source")
			}
		}
		if rng.IntN(4) == 0 {
			r.Match.Sender = []string{"5790000123456", "role:gp"}
		}
		r.Anonymise = rng.IntN(4) == 0
		switch rng.IntN(6) {
		case 0:
			t := true
			r.RequireConsent = &t
		case 1:
			f := false
			r.RequireConsent = &f
			// Docs: false only for municipality or internal destinations,
			// or for discharge notes to the GP.
			discharge := len(r.Match.Kind) > 0 && !slices.ContainsFunc(r.Match.Kind, func(k string) bool { return k != "discharge-note" })
			for _, to := range r.To {
				s, known := routesSectors[to]
				if known && s != "municipality" && s != "internal" && (s != "gp" || !discharge) {
					want = append(want, key+".require_consent")
					break
				}
			}
		}
		line := fmt.Sprintf("  - {name: '%s', to: [%s]", r.Name, strings.Join(r.To, ", "))
		m := []string{}
		for _, f := range []struct {
			key string
			v   []string
		}{{"kind", r.Match.Kind}, {"source", r.Match.Source}, {"sender", r.Match.Sender}} {
			if len(f.v) > 0 {
				m = append(m, fmt.Sprintf("%s: ['%s']", f.key, strings.Join(f.v, "', '")))
			}
		}
		if oops(15) {
			// A misspelt condition must not be a condition silently
			// dropped (a rule then matching every letter).
			k := []string{"kinds", "senders", "recipient", "sorce"}[rng.IntN(4)]
			m = append(m, k+": [x]")
			typos = append(typos, key+".match."+k)
		}
		if len(m) > 0 {
			line += ", match: {" + strings.Join(m, ", ") + "}"
		}
		anon, rc := "anonymise", "require_consent"
		if oops(20) {
			anon = "anonymize"
			typos = append(typos, key+"."+anon)
		}
		if oops(20) {
			rc = "require_consnet"
			typos = append(typos, key+"."+rc)
		}
		if r.Anonymise || anon != "anonymise" {
			line += fmt.Sprintf(", %s: %v", anon, r.Anonymise)
		}
		if r.RequireConsent != nil || rc != "require_consent" {
			v := "true"
			if r.RequireConsent != nil {
				v = strconv.FormatBool(*r.RequireConsent)
			}
			line += fmt.Sprintf(", %s: %s", rc, v)
		}
		b.WriteString(line + "}\n")
		rules = append(rules, r)
	}
	if len(typos) > 0 {
		// A key that is none is reported before anything is checked.
		want = typos
	}
	slices.Sort(want)
	want = slices.Compact(want)
	return routeCase{yaml: b.String(), want: want, rules: rules}
}

// serves is the roles a sector's destination delivers to (docs: "Routes
// narrow, never widen"; the directory's role decides whose consent).
func serves(sector string) []string {
	return map[string][]string{"gp": {"gp"}, "parents": {"parents"}, "region_psychiatry": {"region", "hospital"}, "school_ppr": {"school"}}[sector]
}

// errorKeys is the key of each reported mistake ("key: what").
func errorKeys(err error) []string {
	var keys []string
	for line := range strings.SplitSeq(err.Error(), "\n") {
		if k, _, ok := strings.Cut(line, ": "); ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

func TestRoutingConfigurationProperties(t *testing.T) {
	seeds := 150
	if v, err := strconv.Atoi(os.Getenv("SAMHUB_ROUTE_PROP_SEEDS")); err == nil && v > 0 {
		seeds = v
	}
	first := uint64(1)
	if v, err := strconv.ParseUint(os.Getenv("SAMHUB_ROUTE_PROP_SEED"), 10, 64); err == nil {
		first, seeds = v, 1
	}
	dir := t.TempDir()
	valid, invalid := 0, 0
	for seed := first; seed < first+uint64(seeds); seed++ {
		c := genRoutes(rand.New(rand.NewPCG(seed, 0xc0f)))
		p := filepath.Join(dir, fmt.Sprintf("samhub-%d.yaml", seed))
		if err := os.WriteFile(p, []byte(c.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Load(p)
		fail := func(f string, args ...any) {
			t.Fatalf("seed %d (SAMHUB_ROUTE_PROP_SEED=%d): %s\n%s", seed, seed, fmt.Sprintf(f, args...), c.yaml)
		}
		if c.want == nil {
			valid++
			if err != nil {
				fail("refused a valid file: %v", err)
			}
			o := config.RouteOptions(cfg.Routes, cfg.Destinations, cfg.Receivers)
			for i, r := range c.rules {
				got := o.Rules[i]
				rc := func(p *bool) string {
					if p == nil {
						return "unset"
					}
					return strconv.FormatBool(*p)
				}
				if got.Name != r.Name || !slices.Equal(got.To, r.To) || got.Anonymise != r.Anonymise || rc(got.RequireConsent) != rc(r.RequireConsent) ||
					!slices.Equal(got.Match.Kind, r.Match.Kind) || !slices.Equal(got.Match.Source, r.Match.Source) || !slices.Equal(got.Match.Sender, r.Match.Sender) {
					fail("routes[%d] reaches the router as %+v (require_consent %s), written %+v (require_consent %s)", i, got, rc(got.RequireConsent), r, rc(r.RequireConsent))
				}
			}
			continue
		}
		invalid++
		if err == nil {
			fail("accepted; want mistakes at %v", c.want)
		}
		if got := errorKeys(err); !slices.Equal(got, c.want) {
			fail("mistakes reported at %v, want %v:\n%v", got, c.want, err)
		}
	}
	if valid == 0 || invalid == 0 {
		t.Fatalf("generator too narrow: %d valid, %d invalid files", valid, invalid)
	}
	t.Logf("%d files: %d valid, %d refused", seeds, valid, invalid)
}
