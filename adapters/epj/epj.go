// Package epj delivers council letters to a region's child and adolescent
// psychiatry, and reads the notes it sends back, through a FHIR R4 REST
// gateway (registered adapter type "epj").
//
// In real life a municipality does not write into the region's EPJ
// (Columna, Epic): letters to child psychiatry go as MedCom correspondence
// over VANS, or through whatever gateway the region offers. This adapter is
// built against a regional FHIR R4 gateway as described in
// shared/domain/interfaces.md §2.4: OAuth2 client credentials, patient
// lookup by POST /Patient/_search (the CPR travels in the form body, never
// in a URL), the letter as a Communication created conditionally with
// If-None-Exist on identifier urn:samhub:letter|<letter id>, errors as
// OperationOutcome. A deployment without such a gateway routes region
// letters through the MedCom adapter instead.
//
// Sink: a letter goes out only when its consent covers region_psychiatry
// (interfaces.md §5.4, checked again behind the router); 201 and 200 are
// success (200 = an earlier delivery found), 412 is a duplicate the
// coordinator must resolve, 409 (two attempts of one letter racing) is
// retried and then finds the copy stored. Source: Communication and DocumentReference
// resources addressed to the municipality's SOR id are polled by
// _lastUpdated; the cursor (last instant and the versions seen at it) lives
// in the state store and moves only after Publish succeeded. Until a poll
// has run feed_overlap past the newest note, the feed is read from
// feed_overlap before the cursor, for notes another server of the region
// stamped earlier; the cursor keeps the versions read in that span, so
// none is published twice. A next-page link to another host than url is
// not followed (the token goes nowhere else): the poll keeps what it read
// and warns.
//
// FHIR model decision: the types in internal/fhir are hand-written and hold
// only the elements used. samply/golang-fhir-models v0.3.2 was tried: its
// generated Communication has no contained element, and its payload
// content[x] fields are non-pointer without omitempty, so every payload
// would carry all three choices (invalid FHIR). google/fhir's Go packages
// bring protobuf-generated types and a large dependency tree for a handful
// of elements. A dozen small structs are easier to check.
package epj

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/adapters/epj/internal/fhir"
	"github.com/samhub/samhub/adapters/httpclient"
	"github.com/samhub/samhub/pipeline/letter"
)

// TypeName is the adapter type in configuration.
const TypeName = "epj"

func init() {
	adapters.RegisterSourceSink(TypeName, spec, func(deps adapters.Deps, cfg Config) (adapters.Source, adapters.Sink, error) {
		a, err := New(deps, cfg)
		if err != nil {
			return nil, nil, err
		}
		if cfg.PollInterval == 0 {
			// A sink only, so the hub schedules no source that would do nothing.
			return nil, sinkOnly{a}, nil
		}
		return a, a, nil
	})
}

// Adapter is one configured gateway: a Sink, a Source and a Readiness.
type Adapter struct {
	cfg  Config
	name string
	log  *slog.Logger
	st   adapters.StateStore
	now  func() time.Time
	c    *client
}

var (
	_ adapters.Sink      = (*Adapter)(nil)
	_ adapters.Source    = (*Adapter)(nil)
	_ adapters.Readiness = (*Adapter)(nil)
)

// sinkOnly is what the hub gets when poll_interval is 0.
type sinkOnly struct{ a *Adapter }

func (s sinkOnly) Deliver(ctx context.Context, l *letter.Letter) (adapters.Delivery, error) {
	return s.a.Deliver(ctx, l)
}
func (s sinkOnly) Ready(ctx context.Context) error { return s.a.Ready(ctx) }

// New builds an adapter from a config (decoded from a block, or
// adapters.Defaults[Config]() with fields set). It checks it and reads the
// TLS files; it makes no network call.
func New(deps adapters.Deps, cfg Config) (*Adapter, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	if cfg.PollInterval > 0 && deps.State == nil {
		return nil, fmt.Errorf("epj: the source needs a state store for its cursor")
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := deps.Now
	if now == nil {
		now = time.Now
	}
	hc, err := httpclient.New(cfg.Config, cfg.Scope, now)
	if err != nil {
		return nil, err
	}
	// The gateway's links are followed by hand (client.do); the client
	// follows no redirect (httpclient.New).
	a := &Adapter{cfg: cfg, name: deps.Name, log: log, st: deps.State, now: now}
	a.c = &client{base: cfg.URL, http: hc.HTTP, tokens: hc.Tokens, timeout: cfg.Timeout}
	return a, nil
}

// Ready fetches a token (if none is cached) and the CapabilityStatement,
// and checks the server speaks FHIR R4.
func (a *Adapter) Ready(ctx context.Context) error {
	resp, err := a.c.do(ctx, http.MethodGet, "metadata", "", nil, nil)
	if err != nil {
		return err
	}
	if resp.status != http.StatusOK {
		return classify(resp, "capability check")
	}
	var cs fhir.CapabilityStatement
	if err := json.Unmarshal(resp.body, &cs); err != nil || cs.ResourceType != "CapabilityStatement" {
		return adapters.Retryable("bad_metadata", "the region's gateway did not return a CapabilityStatement", err)
	}
	if !strings.HasPrefix(cs.FHIRVersion, "4.0") {
		return adapters.Permanent("fhir_version", fmt.Sprintf("the region's gateway speaks FHIR %q, not R4 (4.0.x)", cs.FHIRVersion), nil)
	}
	return nil
}

var unsafeKey = regexp.MustCompile(`[^A-Za-z0-9_=.-]`)

// stateKey names a state entry of this instance.
func (a *Adapter) stateKey(parts ...string) string {
	return unsafeKey.ReplaceAllString("epj."+a.name+"."+strings.Join(parts, "."), "_")
}
