package casesys

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"go.yaml.in/yaml/v3"

	casesyssim "github.com/samhub/samhub/internal/sim/casesys"
)

// spec is openapi.yaml reduced to path → method → declared statuses.
type spec map[string]map[string]map[string]bool

var (
	specOnce sync.Once
	specData spec
	specErr  error
)

func loadSpec(t testing.TB) spec {
	t.Helper()
	specOnce.Do(func() {
		b, err := os.ReadFile("../../schemas/casesys/openapi.yaml")
		if err != nil {
			specErr = err
			return
		}
		var doc struct {
			OpenAPI string                    `yaml:"openapi"`
			Paths   map[string]map[string]any `yaml:"paths"`
		}
		if err := yaml.Unmarshal(b, &doc); err != nil {
			specErr = err
			return
		}
		specData = spec{}
		for p, ops := range doc.Paths {
			specData[p] = map[string]map[string]bool{}
			for m, op := range ops {
				opMap, ok := op.(map[string]any)
				if !ok || m == "parameters" {
					continue
				}
				responses, _ := opMap["responses"].(map[string]any)
				st := map[string]bool{}
				for code := range responses {
					st[code] = true
				}
				specData[p][strings.ToUpper(m)] = st
			}
		}
	})
	if specErr != nil {
		t.Fatalf("openapi.yaml: %v", specErr)
	}
	return specData
}

// checkAgainstSpec fails when the simulator answered a contract route or a
// status that openapi.yaml does not declare.
func checkAgainstSpec(t testing.TB, reqs []casesyssim.Request) {
	t.Helper()
	sp := loadSpec(t)
	for _, r := range reqs {
		if r.Route == "" || r.Status == 0 {
			continue
		}
		method, path, _ := strings.Cut(r.Route, " ")
		ops, ok := sp[path]
		if !ok || ops[method] == nil {
			t.Errorf("simulator route %q is not in openapi.yaml", r.Route)
			continue
		}
		if !ops[method][strconv.Itoa(r.Status)] {
			t.Errorf("openapi.yaml does not declare status %d for %s", r.Status, r.Route)
		}
	}
}

var digitRun = regexp.MustCompile(`[0-9]{10}`)

// checkNoCPRInURLs fails when any request URI carries a CPR-like run.
func checkNoCPRInURLs(t testing.TB, reqs []casesyssim.Request) {
	t.Helper()
	for _, r := range reqs {
		if digitRun.MatchString(r.URI) {
			t.Errorf("a request URL carries a 10-digit run: %s %s", r.Method, r.URI)
		}
	}
}
