package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/samhub/samhub/internal/config"
	"github.com/samhub/samhub/internal/logging"
	"github.com/samhub/samhub/pipeline/broker"
)

func storeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "store",
		Short: "Work on the embedded JetStream store while the hub is stopped",
	}
	var cfgFile, newKey string
	rekey := &cobra.Command{
		Use:   "rekey --config FILE --new-key-file NEW",
		Short: "Encrypt the embedded store under a new key",
		Long: `Copies every stream of the embedded store, with its messages and each
destination's place in it, into a new store encrypted with the key in
NEW, checks the copy, and puts it in place of the old store, which is kept
beside it (printed) until you remove it. The hub must be stopped. Then
point nats.embedded.key_file (or key_env) at the new key and start the hub;
started with the old key, it refuses to run. See docs/operations.md,
"Rotate the encryption key".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if newKey == "" {
				return &exitError{code: 2, err: errors.New("--new-key-file is required")}
			}
			cfg, err := config.LoadChecked(cfgFile)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			if cfg.NATS.URL != "" {
				return &exitError{code: 2, err: errors.New("nats.url: the hub uses an external NATS, whose servers hold its key (their own key rotation); rekey is for the embedded store")}
			}
			opts, err := cfg.NATS.Broker()
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			// The data directory's lock: no hub may run on the store.
			rep, err := broker.ClaimReplica(cfg.DataDir)
			if err != nil {
				return err
			}
			defer rep.Release()
			log := logging.New(os.Stderr, parseLevel(cfg.Log.Level), cfg.Log.Format)
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			res, err := broker.Rekey(ctx, opts.Embedded, newKey, log)
			if err != nil {
				return fmt.Errorf("rekey: %w (the store is as it was)", err)
			}
			out := cmd.OutOrStdout()
			for _, s := range res.Streams {
				fmt.Fprintf(out, "  %-24s %8d messages %12d bytes %3d consumers\n", s.Name, s.Msgs, s.Bytes, s.Consumers)
			}
			fmt.Fprintf(out, "rekeyed %d streams into %s\nthe old store is at %s\nnow point nats.embedded.key_file (or key_env) at %s and start the hub; once it runs, remove the old store\n",
				len(res.Streams), opts.Embedded.StoreDir, res.OldStore, newKey)
			return nil
		},
	}
	rekey.Flags().StringVarP(&cfgFile, "config", "c", "", "the hub's configuration file (YAML)")
	rekey.Flags().StringVar(&newKey, "new-key-file", "", "file holding the new key")
	cmd.AddCommand(rekey)
	return cmd
}
