# Samhub build and test targets. `make run` and `make test` are the two
# commands README promises work on a fresh machine.
GO      ?= go
# The toolchain go.mod names (go1.26.11: the standard-library fixes that
# govulncheck finds missing in 1.26.8), fetched through the Go module proxy
# once when the machine's Go is older; machines set GOTOOLCHAIN=local, which
# would otherwise build with known-vulnerable net/http and crypto/tls.
export GOTOOLCHAIN := go1.26.11+auto
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/samhub/samhub/internal/version.Version=$(VERSION)
# release leaves the adapters' conformance harnesses (their test servers and
# the testing package) out of the shipped binaries.
TAGS    := release
PKGS    := ./...
FUZZTIME ?= 10m

.PHONY: all build samhub samhubctl run test test-tools test-race lint vulncheck generate fuzz fuzz-quick bench bench-quick soak clean

all: build

build: samhub samhubctl

samhub:
	CGO_ENABLED=0 $(GO) build -trimpath -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o bin/samhub ./cmd/samhub

samhubctl:
	CGO_ENABLED=0 $(GO) build -trimpath -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o bin/samhubctl ./cmd/samhubctl

# run: the hub on its embedded NATS JetStream with the demo simulators.
run: build
	./bin/samhub serve --config deploy/demo/samhub.yaml

# test: every test, including short fuzz runs; stays under 15 minutes on 2 cores.
# No test skips for a missing tool: test-tools installs them first.
test: test-tools
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -timeout 14m $(PKGS)
	$(MAKE) fuzz-quick

# generate rewrites what is made from the adapters' specs and the
# configuration types; tests fail while either is out of date.
generate:
	$(GO) run ./cmd/samhub config schema > schemas/samhub.schema.json
	$(GO) run ./cmd/samhub config reference > docs/configuration.md

# test-tools installs what the tests run besides Go (as root with apt-get;
# elsewhere it says what to install): xmllint checks generated MedCom
# letters against MedCom's XSD, headless Chromium drives the console's
# browser tests (chromedp speaks to it directly; no chromedriver), and
# poppler (pdftotext, pdfinfo, pdffonts) reads back the agenda PDFs.
test-tools:
	./scripts/need.sh xmllint:libxml2-utils /usr/bin/chromium:chromium pdftotext:poppler-utils

lint:
	test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet $(PKGS)
	$(GO) vet -tags '$(TAGS)' $(PKGS)

# vulncheck runs govulncheck with the Go vulnerability database taken from
# the Go module proxy (golang.org/x/vulndb), since CI cannot reach
# vuln.go.dev; it fails when vulnerable code is reached and says NOT
# CHECKED (without failing) when the proxy cannot be reached.
# VULNDB_VERSION pins the database CI checks against, so a run is
# reproducible and a vulnerability published tomorrow shows up when the pin
# is moved (make vulncheck VULNDB_VERSION=latest shows the newest).
VULNDB_VERSION ?= v0.0.0-20261105234957-e22db6528018
vulncheck:
	GO=$(GO) VULNDB_VERSION=$(VULNDB_VERSION) ./scripts/vulncheck.sh

# fuzz-quick runs each fuzz target briefly: a count, not a duration, since
# Go 1.26's fuzz coordinator can fail a target with a bare "context deadline
# exceeded" when a duration ends mid-run on a busy machine (go.dev/issue/75804,
# fixed in Go 1.27). fuzz runs each for FUZZTIME.
fuzz-quick:
	FUZZTIME=3000x ./scripts/fuzz.sh

fuzz:
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

bench:
	./scripts/bench.sh

bench-quick:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 200ms $(PKGS)

soak:
	SAMHUB_SOAK=1 $(GO) test -count=1 -timeout 0 -run 'Scenario' -v ./reliability/...
	SAMHUB_COUNCIL_SEQ_SEEDS=500 SAMHUB_COUNCIL_SEQ_STEPS=80 $(GO) test -count=1 -timeout 0 -run TestCouncilSequences ./pipeline/council/
	SAMHUB_QUEUE_SEQ_SEEDS=30 SAMHUB_QUEUE_SEQ_STEPS=30 $(GO) test -count=1 -timeout 0 -run TestQueueSequences ./pipeline/

clean:
	rm -rf bin data
