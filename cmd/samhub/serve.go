package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/samhub/samhub/internal/app"
	"github.com/samhub/samhub/internal/config"
	"github.com/samhub/samhub/internal/console"
	"github.com/samhub/samhub/internal/logging"
)

func serveCmd() *cobra.Command {
	var cfgFile string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the hub",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.LoadChecked(cfgFile)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			log := logging.New(os.Stderr, parseLevel(cfg.Log.Level), cfg.Log.Format)
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			a, err := app.Start(ctx, cfg, log, console.MountWith(cfg.Console, console.Options{Logger: log, SecureCookies: cfg.Console.SecureCookies}))
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			base := "http://" + a.HTTPAddr.String()
			if cfg.HTTP.TLSCertFile != "" {
				base = "https://" + a.HTTPAddr.String()
			}
			fmt.Fprintf(out, "samhub running (embedded NATS: %v)\n  API:     %s/api/v1\n  console: %s/console/\n  metrics: %s/metrics\n  health:  %s/healthz  ready: %s/readyz\n", cfg.NATS.URL == "", base, base, base, base, base)
			for name, u := range a.Sims.URLs {
				fmt.Fprintf(out, "  simulator %s: %s\n", name, u)
			}
			werr := a.Wait(ctx)
			log.Info("shutting down")
			if err := a.Stop(); err != nil {
				return err
			}
			// The last line says the drain finished: whoever pressed Ctrl-C or
			// ran systemctl stop knows the hub did not die mid-way.
			log.Info("stopped")
			return werr
		},
	}
	cmd.Flags().StringVarP(&cfgFile, "config", "c", "", "configuration file (YAML); SAMHUB_* environment variables override it")
	return cmd
}

func parseLevel(s string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return slog.LevelInfo
	}
	return l
}
