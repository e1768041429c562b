package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/samhub/samhub/internal/config"
)

// Exit statuses of `samhub config check`, as docs/configuration.md states.
const (
	exitInvalid = 1 // the configuration has mistakes
	exitUsage   = 2 // no file, an unknown flag
)

func configCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Check a configuration file, or print its schema or reference",
	}
	var print bool
	check := &cobra.Command{
		Use:   "check [--print] FILE",
		Short: "Decode and check a configuration as serve would, adapters included, without starting anything",
		Long: "Reads FILE and the SAMHUB_* environment, applies defaults and checks every key, each adapter block by its\n" +
			"type's spec (files such as secrets and TLS certificates must be readable). Prints each mistake as\n" +
			"\"key: what was expected\". With --print, prints the effective configuration with secrets masked.\n" +
			"Exit status: 0 valid, 1 invalid, 2 usage error.",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return &exitError{code: exitUsage, err: errors.New("config check takes one configuration file")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := config.LoadChecked(args[0])
			if err != nil {
				return &exitError{code: exitInvalid, err: fmt.Errorf("%s is not valid:\n  %s", args[0], strings.ReplaceAll(err.Error(), "\n", "\n  "))}
			}
			out := cmd.OutOrStdout()
			if print {
				y, err := c.Effective()
				if err != nil {
					return &exitError{code: exitInvalid, err: err}
				}
				fmt.Fprint(out, string(y))
				return nil
			}
			fmt.Fprintf(out, "%s: OK (%d adapters, %d destinations, %d routes)\n", args[0], len(c.Adapters), len(c.Destinations), len(c.Routes))
			return nil
		},
	}
	check.Flags().BoolVar(&print, "print", false, "print the effective configuration (defaults and SAMHUB_* applied, secrets masked)")
	check.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &exitError{code: exitUsage, err: err} })
	schema := &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON schema of the configuration file",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := config.Schema()
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(s)
			return err
		},
	}
	reference := &cobra.Command{
		Use:   "reference",
		Short: "Print the configuration reference (Markdown, docs/configuration.md)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprint(cmd.OutOrStdout(), config.Reference())
			return err
		},
	}
	cmd.AddCommand(check, schema, reference)
	return cmd
}
