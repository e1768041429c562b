// Package app assembles a running samhub from configuration: broker,
// simulators, pipeline and HTTP server. cmd/samhub and the end-to-end tests
// both start the hub through it, so tests run the real wiring.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/samhub/samhub/internal/config"
	"github.com/samhub/samhub/internal/httpapi"
	"github.com/samhub/samhub/pipeline"
	"github.com/samhub/samhub/pipeline/broker"
)

// App is one running hub.
type App struct {
	Config   *config.Config
	Broker   *broker.Broker
	Hub      *pipeline.Hub
	HTTP     *httpapi.Server
	HTTPAddr net.Addr
	Registry *prometheus.Registry
	Sims     *Simulators

	log     *slog.Logger
	replica *broker.Replica
	cancel  context.CancelFunc
	runDone chan error
	httpErr <-chan error
}

// Mounts are extra HTTP handlers (the console) added before serving.
type Mount func(*httpapi.Server) error

// Start brings the hub up and returns once it is running.
func Start(ctx context.Context, cfg *config.Config, log *slog.Logger, mounts ...Mount) (*App, error) {
	a := &App{Config: cfg, log: log, runDone: make(chan error, 1)}
	if os.Getenv("GOGC") == "" && cfg.GCPercent > 0 {
		debug.SetGCPercent(cfg.GCPercent)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data_dir: %w", err)
	}
	// The replica's lease holder name, kept in the data directory: after a
	// crash the restarted hub takes its sources' leases up at once.
	rep, err := broker.ClaimReplica(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	a.replica = rep
	sims, err := StartSimulators(cfg.Simulators, log)
	if err != nil {
		rep.Release()
		return nil, err
	}
	a.Sims = sims
	bo, err := cfg.NATS.Broker()
	if err != nil {
		sims.Close()
		rep.Release()
		return nil, err
	}
	b, err := broker.Open(ctx, bo, log)
	if err != nil {
		sims.Close()
		rep.Release()
		return nil, err
	}
	a.Broker = b
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a.Registry = reg
	hctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	ho := cfg.HubOptions()
	ho.Broker, ho.Logger, ho.Registry, ho.Holder = b, log, reg, rep.ID
	hub, err := pipeline.New(hctx, ho)
	if err != nil {
		b.Close()
		sims.Close()
		rep.Release()
		return nil, err
	}
	a.Hub = hub
	a.HTTP = httpapi.New(hub, httpapi.NewUsers(cfg.Console.Users), reg, log)
	proxies, err := httpapi.ParseProxies(cfg.HTTP.TrustedProxies)
	if err != nil {
		b.Close()
		sims.Close()
		rep.Release()
		return nil, fmt.Errorf("http.trusted_proxies: %w", err)
	}
	a.HTTP.TrustProxies(proxies)
	for _, m := range mounts {
		if err := m(a.HTTP); err != nil {
			b.Close()
			sims.Close()
			rep.Release()
			return nil, err
		}
	}
	runCtx, runCancel := context.WithCancel(context.Background())
	a.cancel = runCancel
	addr, httpErr, err := httpapi.Listen(runCtx, cfg.HTTP.Listen, cfg.HTTP.TLSCertFile, cfg.HTTP.TLSKeyFile, a.HTTP, log)
	if err != nil {
		runCancel()
		b.Close()
		sims.Close()
		rep.Release()
		return nil, err
	}
	a.HTTPAddr, a.httpErr = addr, httpErr
	go func() { a.runDone <- hub.Run(runCtx) }()
	return a, nil
}

// Wait blocks until the hub stops by itself (an error) or ctx ends.
func (a *App) Wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case err := <-a.runDone:
		a.runDone <- err
		return err
	case err := <-a.httpErr:
		if err != nil {
			return fmt.Errorf("http server: %w", err)
		}
		return nil
	}
}

// Stop shuts down gracefully: sources, deliveries, HTTP, NATS, simulators.
func (a *App) Stop() error {
	a.cancel()
	var err error
	select {
	case err = <-a.runDone:
	case <-time.After(a.Config.Pipeline.ShutdownGrace + 10*time.Second):
		err = errors.New("pipeline did not stop in time")
	}
	a.Broker.Close()
	a.Sims.Close()
	a.replica.Release()
	return err
}
