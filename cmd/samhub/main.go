// Command samhub is the integration hub service: `samhub serve` runs it,
// `samhub config check` checks a configuration, `samhub validate` checks
// MedCom files, `samhub route --dry-run` shows where a letter would go,
// `samhub version` prints the build.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	_ "github.com/samhub/samhub/internal/plugins" // every adapter type
	"github.com/samhub/samhub/internal/version"
)

func main() {
	root := &cobra.Command{
		Use:           "samhub",
		Short:         "Samhub: the integration hub for the council for children and young people",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(serveCmd(), configCmd(), versionCmd(), validateCmd(), routeCmd(), storeCmd(), userCmd())
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "samhub:", err)
		os.Exit(exitCode(err))
	}
}

func versionCmd() *cobra.Command {
	return &cobra.Command{Use: "version", Short: "Print the version", Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, _ []string) error {
		fmt.Fprintln(cmd.OutOrStdout(), "samhub", version.Version)
		return nil
	}}
}

// exitError carries a specific exit status.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

func exitCode(err error) int {
	if e, ok := err.(*exitError); ok {
		return e.code
	}
	return 1
}
