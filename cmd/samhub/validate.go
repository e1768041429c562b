package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/samhub/samhub/adapters/medcom"
	"github.com/samhub/samhub/adapters/medcom/fhirmsg"
	"github.com/samhub/samhub/adapters/medcom/oioxml"
	"github.com/samhub/samhub/adapters/medcom/xmlsafe"
	"github.com/samhub/samhub/internal/config"
	"github.com/samhub/samhub/pipeline/letter"
	"github.com/samhub/samhub/pipeline/route"
)

func validateCmd() *cobra.Command {
	var ack, stats bool
	var maxBytes int64
	cmd := &cobra.Command{
		Use:   "validate [--ack] FILE...",
		Short: "Check MedCom files (XDIS91, XBIN01, FHIR CareCommunication/Acknowledgement, receipts) as the hub would",
		Long: "For each file prints OK or its errors with element paths. With --ack also prints the acknowledgement\n" +
			"the hub would send. Exit status 1 when any file is invalid, 2 on usage errors.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			lim := xmlsafe.DefaultLimits()
			if maxBytes > 0 {
				lim.MaxBytes = maxBytes
			}
			bad := 0
			for _, f := range args {
				data, err := os.ReadFile(f)
				if err != nil {
					fmt.Fprintf(out, "%s: cannot read: %v\n", f, err)
					bad++
					continue
				}
				size, start := len(data), time.Now()
				// The bytes are not used after the check, so the collector may
				// free them while the check runs (a VANSEnvelope's decoded
				// message outlives its envelope).
				r := medcom.Check(data, lim)
				took := time.Since(start)
				if stats {
					// For measurements (hubtest.MeasureValidate): the check's
					// time, and the process's peak resident memory so far.
					fmt.Fprintf(cmd.ErrOrStderr(), "stats: file=%q bytes=%d check_us=%d peak_rss_bytes=%d\n", f, size, took.Microseconds(), peakRSS())
				}
				if r.Valid() {
					fmt.Fprintf(out, "%s: OK (%s)\n", f, r.Format)
				} else {
					bad++
					fmt.Fprintf(out, "%s: INVALID\n", f)
					for _, e := range r.Errors {
						fmt.Fprintf(out, "  %s\n", e)
					}
				}
				if ack {
					if len(r.Acks) == 0 {
						fmt.Fprintf(out, "  (no acknowledgement is owed for this file)\n")
					}
					for _, a := range r.Acks {
						fmt.Fprintf(out, "--- acknowledgement for %s ---\n%s\n", filepath.Base(f), bytes.TrimSpace(a))
					}
				}
			}
			if bad > 0 {
				return &exitError{code: 1, err: fmt.Errorf("%d of %d files invalid", bad, len(args))}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&ack, "ack", false, "print the acknowledgement the hub would send")
	cmd.Flags().BoolVar(&stats, "stats", false, "print each file's check time and the peak memory so far on stderr")
	cmd.Flags().Int64Var(&maxBytes, "max-bytes", 0, "byte limit per file (default 100 MB)")
	return cmd
}

func routeCmd() *cobra.Command {
	var cfgFile string
	var dry bool
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "route --dry-run [--config FILE] FILE...",
		Short: "Show which destinations letters would go to, and why, without sending anything",
		Long: "Reads each MedCom file, applies the routing rules and consent of the configuration and prints, per\n" +
			"destination, deliver/deny/skip with the rule and the reason. Consents recorded by the coordinator in a\n" +
			"running hub are not consulted: only the consent carried by the letter itself.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !dry {
				return &exitError{code: 2, err: errors.New("route only runs with --dry-run")}
			}
			cfg, err := config.LoadChecked(cfgFile)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			r := route.New(config.RouteOptions(cfg.Routes, cfg.Destinations, cfg.Receivers))
			out := cmd.OutOrStdout()
			for _, f := range args {
				data, err := os.ReadFile(f)
				if err != nil {
					return err
				}
				letters, err := lettersOf(data, f)
				if err != nil {
					return &exitError{code: 1, err: fmt.Errorf("%s: %w", f, err)}
				}
				for _, l := range letters {
					decisions := r.PlanAddressed(l, l.Consent, time.Now(), nil)
					if asJSON {
						_ = json.NewEncoder(out).Encode(map[string]any{"file": f, "letter": l.ID, "kind": l.Kind, "decisions": decisions})
						continue
					}
					fmt.Fprintf(out, "%s: letter %s (%s)\n", f, l.ID, l.Kind)
					tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "  DESTINATION\tVERDICT\tRULE\tTO\tWHY")
					for _, d := range decisions {
						fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", d.Destination, d.Verdict, d.Route, addressedTo(d), d.Reason)
					}
					_ = tw.Flush()
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&cfgFile, "config", "c", "", "configuration file")
	cmd.Flags().BoolVar(&dry, "dry-run", false, "required: decide only, send nothing")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON lines")
	return cmd
}

// addressedTo says whom a delivery goes to: organisations by name and GLN
// or SOR, with the format the receiver directory gives.
func addressedTo(d route.Decision) string {
	if d.Verdict != route.Deliver {
		return "-"
	}
	if len(d.To) == 0 {
		if d.Addressed != "" {
			return d.Addressed
		}
		return "(the municipality's own)"
	}
	var parts []string
	for _, p := range d.To {
		s := p.Name
		switch {
		case p.GLN != "":
			s += " GLN " + p.GLN
		case p.SOR != "":
			s += " SOR " + p.SOR
		}
		if len(p.Accepts) > 0 {
			s += " [" + strings.Join(p.Accepts, ",") + "]"
		}
		parts = append(parts, strings.TrimSpace(s))
	}
	return strings.Join(parts, "; ")
}

// lettersOf reads a MedCom file into letters the way the MedCom source does.
func lettersOf(data []byte, name string) ([]*letter.Letter, error) {
	lim := xmlsafe.DefaultLimits()
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && (trimmed[0] == '{' || bytes.Contains(trimmed[:min(len(trimmed), 512)], []byte("<Bundle")) || bytes.Contains(trimmed[:min(len(trimmed), 512)], []byte("<VANSEnvelope"))) {
		m, err := fhirmsg.Parse(data, lim)
		if err != nil {
			return nil, err
		}
		if err := fhirmsg.Validate(m); err != nil {
			return nil, err
		}
		ct := fhirmsg.MIMEXML
		if m.Encoding == fhirmsg.EncodingJSON {
			ct = fhirmsg.MIMEJSON
		}
		return []*letter.Letter{m.Letter("route-dry-run", data, ct)}, nil
	}
	m, err := oioxml.Parse(data, lim)
	if err != nil {
		return nil, err
	}
	ls := m.ToLetters(oioxml.Input{Source: "route-dry-run", Data: data, Filename: filepath.Base(name), Received: time.Now()})
	if len(ls) == 0 {
		return nil, errors.New("no letters in the file")
	}
	for _, l := range ls {
		l.Source = strings.TrimSpace(l.Source)
	}
	return ls, nil
}
