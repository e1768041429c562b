package archtest

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/samhub/samhub/"

// The parts of the letter's path that take plain option structs know no
// configuration loader and no adapter: only cmd/ and internal/config read
// the configuration file (viper), and the adapters depend on the letter,
// not the other way round.
func TestLetterPathPartsKnowNoConfigurationAndNoAdapter(t *testing.T) {
	forbidden := []string{"github.com/spf13/viper", module + "internal/config", module + "adapters"}
	for _, pkg := range []string{"pipeline/route", "pipeline/broker", "pipeline/letter"} {
		for _, dep := range deps(t, module+pkg) {
			for _, f := range forbidden {
				if dep == f || strings.HasPrefix(dep, f+"/") {
					t.Errorf("%s depends on %s (through its imports); it takes plain options and knows no configuration or adapter", pkg, dep)
				}
			}
		}
	}
}

// No part of the pipeline reads the configuration file: every package
// under pipeline/ takes plain options (internal/config builds them). Only
// package pipeline, which builds the adapters and calls the sinks, knows
// adapters; its parts (broker, route, blobs, council, …) do not.
func TestPipelineKnowsNoConfigurationAndOnlyTheHubKnowsAdapters(t *testing.T) {
	all := packageDeps(t, module+"pipeline/...")
	if len(all) < 10 {
		t.Fatalf("go list found %d packages under pipeline/, expected the hub and its parts", len(all))
	}
	noConfig := []string{"github.com/spf13/viper", module + "internal/config"}
	for pkg, deps := range all {
		for _, dep := range deps {
			for _, f := range noConfig {
				if dep == f || strings.HasPrefix(dep, f+"/") {
					t.Errorf("%s depends on %s (through its imports); the pipeline takes plain options", pkg, dep)
				}
			}
			if pkg != module+"pipeline" && (dep == module+"adapters" || strings.HasPrefix(dep, module+"adapters/")) {
				t.Errorf("%s depends on %s (through its imports); only package pipeline wires the adapters", pkg, dep)
			}
		}
	}
}

// The letter is what every part shares: it imports nothing of the module.
func TestLetterImportsNothingOfTheModule(t *testing.T) {
	for _, dep := range deps(t, module+"pipeline/letter") {
		if strings.HasPrefix(dep, module) && dep != module+"pipeline/letter" {
			t.Errorf("pipeline/letter depends on %s", dep)
		}
	}
}

// deps lists pkg and every package it imports, directly or not (tests
// excluded), as the go command resolves them.
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", pkg).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("go list -deps %s: %v %s", pkg, err, stderr)
	}
	list := strings.Fields(string(out))
	if len(list) < 2 {
		t.Fatalf("go list -deps %s listed %v: expected the package and the standard library", pkg, list)
	}
	return list
}

// packageDeps lists, for each package pattern matches (tests excluded),
// every package it imports, directly or not.
func packageDeps(t *testing.T, pattern string) map[string][]string {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}{{range .Deps}} {{.}}{{end}}", pattern).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("go list %s: %v %s", pattern, err, stderr)
	}
	all := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		all[f[0]] = f[1:]
	}
	return all
}
