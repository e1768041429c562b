// Package casesys connects Samhub to a municipal case system through the
// generic REST contract in schemas/casesys/openapi.yaml. One instance is
// both a Sink (journalise a letter as a document plus a journal note on the
// child's case) and a Source (turn the council's outbox into letters).
//
// Delivery is idempotent in two layers: every write carries an
// Idempotency-Key "samhub:<letter id>:<instance>:<operation>", and every
// object carries a permanent externalId that is looked up before any
// create (under a guard per externalId, guard.go), so a lost answer or a
// concurrent redelivery never makes a second document, even against a
// case system that ignores Idempotency-Key. CPR numbers travel only in
// request bodies, never in URLs.
package casesys

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/samhub/samhub/adapters"
)

func init() {
	adapters.RegisterSourceSink("casesys", adapterSpec, func(deps adapters.Deps, cfg Config) (adapters.Source, adapters.Sink, error) {
		a, err := New(deps, cfg)
		if err != nil {
			return nil, nil, err
		}
		return a, a, nil
	})
}

// Adapter is one configured case system: Sink, Source (with
// StatusReporter for the outbox's recipients) and Readiness.
type Adapter struct {
	cfg  Config
	name string
	log  *slog.Logger
	st   adapters.StateStore
	now  func() time.Time
	api  *client
	// locks serialise search-then-create per externalId (guard.go).
	locks keyedLock
	// flusher writes recipient statuses in the background (status.go).
	flusher flusher
}

var (
	_ adapters.Sink           = (*Adapter)(nil)
	_ adapters.Source         = (*Adapter)(nil)
	_ adapters.Readiness      = (*Adapter)(nil)
	_ adapters.StatusReporter = (*Adapter)(nil)
)

// New builds an adapter from a Config decoded from a block (ParseConfig),
// or adapters.Defaults[Config]() with fields set.
func New(deps adapters.Deps, cfg Config) (*Adapter, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	api, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	a := &Adapter{cfg: cfg, name: deps.Name, log: deps.Logger, st: deps.State, now: deps.Now, api: api}
	if a.name == "" {
		a.name = "casesys"
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.now == nil {
		a.now = time.Now
	}
	return a, nil
}

// Ready reports whether a token can be had and the case system answers
// /healthz.
func (a *Adapter) Ready(ctx context.Context) error {
	resp, err := a.api.do(ctx, request{method: http.MethodGet, path: "/healthz"})
	if err != nil {
		return err
	}
	if resp.status != http.StatusOK {
		return fmt.Errorf("case system health check answered HTTP %d", resp.status)
	}
	return nil
}
