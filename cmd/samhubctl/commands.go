package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/samhub/samhub/pipeline/audit"
	"github.com/samhub/samhub/pipeline/journey"
	"github.com/samhub/samhub/pipeline/retryq"
)

const rootHelp = `samhubctl operates a running Samhub hub through its HTTP API.

It needs the hub's address (--server or SAMHUB_SERVER) and an API token
(--token, --token-file or SAMHUB_TOKEN) of a configured user; the user's role
decides what is allowed (coordinator: queue, letters, refused input,
consent, meetings, referrals, figures; operations: queue stats, the list of
refused input and figures; auditor: audit log).

Output is a table for people; use -o json for scripts.

Exit codes:
  0  success
  1  usage error: unknown command or flag, bad argument, missing --reason
  2  not found: no parked letter, letter or refused file with that id
  3  authentication or authorisation: no or wrong token, or your role may not do this
  4  the hub failed or could not be reached
  5  a replay ran, but none of its letters went on to delivery (they park again)`

// options are the global flags.
type options struct {
	server, token, tokenFile, output string
	getenv                           func(string) string
	out                              io.Writer
}

// run executes samhubctl with args and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	root := newRoot(stdout, getenv)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(stderr, "samhubctl:", err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	// Cobra's own errors: unknown command, bad flag, wrong argument count.
	fmt.Fprintln(stderr, "Run 'samhubctl --help' for usage.")
	return exitUsage
}

func newRoot(stdout io.Writer, getenv func(string) string) *cobra.Command {
	o := &options{getenv: getenv, out: stdout}
	server := getenv("SAMHUB_SERVER")
	if server == "" {
		server = "http://127.0.0.1:8080"
	}
	root := &cobra.Command{
		Use:           "samhubctl",
		Short:         "Operate a running Samhub: retry queue, letter journeys, consents, the council's meetings and figures, audit log",
		Long:          rootHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if o.output != "table" && o.output != "json" {
				return fail(exitUsage, "-o/--output: must be table or json, not %q", o.output)
			}
			return nil
		},
	}
	pf := root.PersistentFlags()
	pf.StringVar(&o.server, "server", server, "hub address (env SAMHUB_SERVER)")
	pf.StringVar(&o.token, "token", "", "API token (env SAMHUB_TOKEN); prefer --token-file, a flag shows in the process list")
	pf.StringVar(&o.tokenFile, "token-file", "", "file holding the API token")
	pf.StringVarP(&o.output, "output", "o", "table", "output format: table or json")
	root.AddCommand(queueCmd(o), letterCmd(o), rejectedCmd(o), consentCmd(o), meetingCmd(o), referralCmd(o), kpiCmd(o), auditCmd(o), whoamiCmd(o))
	return root
}

func (o *options) client() (*client, error) {
	tok := o.token
	if tok == "" && o.tokenFile != "" {
		b, err := os.ReadFile(o.tokenFile)
		if err != nil {
			return nil, fail(exitUsage, "--token-file: %v", err)
		}
		tok = strings.TrimSpace(string(b))
		if tok == "" {
			return nil, fail(exitAuth, "--token-file %s is empty", o.tokenFile)
		}
	}
	if tok == "" {
		tok = strings.TrimSpace(o.getenv("SAMHUB_TOKEN"))
	}
	return newClient(o.server, tok)
}

func (o *options) json() bool { return o.output == "json" }

// printJSON writes the hub's answer indented.
func (o *options) printJSON(raw json.RawMessage) error {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return fail(exitServer, "the hub's answer is not JSON: %v", err)
	}
	enc := json.NewEncoder(o.out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (o *options) table() *tabwriter.Writer { return tabwriter.NewWriter(o.out, 0, 4, 2, ' ', 0) }

func ts(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// parseSeq reads a parked id as shown by `queue list` (a number, optionally
// with a P in front).
func parseSeq(s string) (uint64, error) {
	n, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimPrefix(s, "P"), "p"), 10, 64)
	if err != nil || n == 0 {
		return 0, fail(exitUsage, "parked id %q: must be a positive number as shown by 'samhubctl queue list'", s)
	}
	return n, nil
}

// fetch calls the API and either prints its JSON or decodes it into v.
func (o *options) fetch(cmd *cobra.Command, method, path string, q url.Values, body, v any) (printed bool, err error) {
	c, err := o.client()
	if err != nil {
		return false, err
	}
	var raw json.RawMessage
	if err := c.do(cmd.Context(), method, path, q, body, &raw); err != nil {
		return false, err
	}
	// Decoded with -o json too: a caller may still need the answer (a
	// replay's exit code).
	if err := json.Unmarshal(raw, v); err != nil {
		return false, fail(exitServer, "the hub's answer could not be read: %v", err)
	}
	if o.json() {
		return true, o.printJSON(raw)
	}
	return false, nil
}

// group is a command that only holds subcommands: alone it shows its help,
// with an unknown subcommand it is a usage error (cobra would print help
// and succeed).
func group(use, short string) *cobra.Command {
	return &cobra.Command{Use: use, Short: short, Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fail(exitUsage, "unknown command %q for %q; see 'samhubctl %s --help'", args[0], cmd.CommandPath(), use)
			}
			return cmd.Help()
		}}
}

func whoamiCmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "whoami",
		Short: "Show the user and role of the token",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var v struct{ Name, Role string }
			if printed, err := o.fetch(cmd, "GET", "/api/v1/whoami", nil, nil, &v); err != nil || printed {
				return err
			}
			fmt.Fprintf(o.out, "%s (%s)\n", v.Name, v.Role)
			return nil
		},
	}
}

func queueCmd(o *options) *cobra.Command {
	q := group("queue", "List, show, replay and discard parked letters (role coordinator)")

	list := listCmd(o)

	stats := &cobra.Command{
		Use:   "stats",
		Short: "Queue sizes per destination (coordinator, operations)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var v struct {
				Parked       []retryq.Stat
				Held         map[string]int
				Destinations []string
			}
			if printed, err := o.fetch(cmd, "GET", "/api/v1/stats", nil, nil, &v); err != nil || printed {
				return err
			}
			per := map[string]retryq.Stat{}
			for _, s := range v.Parked {
				per[s.Destination] = s
			}
			tw := o.table()
			fmt.Fprintln(tw, "DESTINATION\tPARKED\tOLDEST\tHELD THREADS")
			for _, d := range v.Destinations {
				fmt.Fprintf(tw, "%s\t%d\t%s\t%d\n", d, per[d].Count, ts(per[d].Oldest), v.Held[d])
			}
			return tw.Flush()
		},
	}

	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show one parked letter's entry (no personal content)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			seq, err := parseSeq(args[0])
			if err != nil {
				return err
			}
			var e retryq.Entry
			if printed, err := o.fetch(cmd, "GET", "/api/v1/queue/"+strconv.FormatUint(seq, 10), nil, nil, &e); err != nil || printed {
				return err
			}
			tw := o.table()
			for _, kv := range [][2]string{
				{"ID", strconv.FormatUint(e.Seq, 10)}, {"Letter", e.LetterID}, {"Destination", e.Destination}, {"Kind", dash(e.Kind)},
				{"Source", dash(e.Source)}, {"Parked", ts(e.ParkedAt)}, {"Attempts", strconv.Itoa(e.Attempts)},
				{"First error", fmt.Sprintf("%s  %s (%s)", ts(e.FirstError.At), e.FirstError.Reason, dash(e.FirstError.Code))},
				{"Last error", fmt.Sprintf("%s  %s (%s)", ts(e.LastError.At), e.LastError.Reason, dash(e.LastError.Code))},
			} {
				fmt.Fprintf(tw, "%s:\t%s\n", kv[0], kv[1])
			}
			return tw.Flush()
		},
	}

	var reason string
	var dryRun, all, noWait bool
	var replayDest string
	var filters []string
	replay := &cobra.Command{
		Use:   "replay ID... | --filter K=V... | --all --destination D",
		Short: "Send parked letters again to the destination that failed: by id, or all that match a filter",
		Long: "Send parked letters again to the destination that failed. Consent is checked again; the\n" +
			"destination's idempotency makes a second delivery impossible. Every replay is audited with\n" +
			"your --reason.\n\n" +
			"By id: --dry-run shows the routing decision without replaying.\n\n" +
			"By filter: the hub replays every letter that matches, in the order they parked, in the\n" +
			"background; this command follows its progress (--no-wait: it does not). --dry-run shows\n" +
			"how many match, per destination and code, and the first ten, and the filter that replays\n" +
			"exactly those (up-to=N). A replay by filter is audited once, with the filter and the count.\n" +
			"--all --destination D is --filter destination=D.\n\n" + filterHelp,
		RunE: func(cmd *cobra.Command, args []string) error {
			byFilter := len(filters) > 0 || all
			if byFilter == (len(args) > 0) {
				return fail(exitUsage, "give parked ids, or --filter (or --all --destination D), not both")
			}
			if strings.TrimSpace(reason) == "" && !dryRun {
				return fail(exitUsage, "--reason: say why you replay (it goes to the audit log)")
			}
			if byFilter {
				f, err := parseFilter(filters, time.Now())
				if err != nil {
					return err
				}
				if all {
					if replayDest == "" {
						return fail(exitUsage, "--all needs --destination")
					}
					if !f.empty() {
						return fail(exitUsage, "give --all --destination or --filter, not both")
					}
					f = queueFilter{Destination: replayDest}
				}
				if f.empty() && !f.all {
					return fail(exitUsage, "--filter: give conditions, or --filter all to replay every parked letter")
				}
				return replayFilter(cmd, o, f, reason, dryRun, noWait)
			}
			var seqs []uint64
			for _, a := range args {
				s, err := parseSeq(a)
				if err != nil {
					return err
				}
				seqs = append(seqs, s)
			}
			if len(seqs) == 1 {
				return replayOne(cmd, o, seqs[0], reason, dryRun)
			}
			return replayMany(cmd, o, seqs, reason, dryRun)
		},
	}
	replay.Flags().StringVar(&reason, "reason", "", "why (required unless --dry-run; audited, no personal data)")
	replay.Flags().BoolVar(&dryRun, "dry-run", false, "by id: the routing decision; by filter: the preview")
	replay.Flags().StringArrayVar(&filters, "filter", nil, "replay all that match: a condition key=value (repeat, or separate with commas)")
	replay.Flags().BoolVar(&noWait, "no-wait", false, "by filter: start the replay and return without following it")
	replay.Flags().BoolVar(&all, "all", false, "replay every parked letter of --destination (as --filter destination=D)")
	replay.Flags().StringVar(&replayDest, "destination", "", "destination for --all")

	var discardReason string
	discard := &cobra.Command{
		Use:   "discard ID",
		Short: "Remove a parked letter for good (audited, needs --reason)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			seq, err := parseSeq(args[0])
			if err != nil {
				return err
			}
			if strings.TrimSpace(discardReason) == "" {
				return fail(exitUsage, "--reason: say why you discard the letter (it goes to the audit log)")
			}
			var v struct {
				Seq       uint64
				Discarded bool
			}
			if printed, err := o.fetch(cmd, "POST", fmt.Sprintf("/api/v1/queue/%d/discard", seq), nil, map[string]any{"reason": discardReason}, &v); err != nil || printed {
				return err
			}
			fmt.Fprintf(o.out, "Discarded %d.\n", v.Seq)
			return nil
		},
	}
	discard.Flags().StringVar(&discardReason, "reason", "", "why (required; audited, no personal data)")

	held := &cobra.Command{
		Use:   "held",
		Short: "List threads held back behind a parked letter (their later letters wait, parked as thread_held)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var v struct {
				Holds []struct {
					Destination, Thread, WaitsFor string
					Since                         time.Time
				}
			}
			if printed, err := o.fetch(cmd, "GET", "/api/v1/holds", nil, nil, &v); err != nil || printed {
				return err
			}
			if len(v.Holds) == 0 {
				fmt.Fprintln(o.out, "No thread is held.")
				return nil
			}
			tw := o.table()
			fmt.Fprintln(tw, "DESTINATION\tTHREAD\tWAITS FOR LETTER\tSINCE")
			for _, h := range v.Holds {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", h.Destination, h.Thread, h.WaitsFor, ts(h.Since))
			}
			return tw.Flush()
		},
	}
	var releaseReason string
	release := &cobra.Command{
		Use:   "release DESTINATION THREAD",
		Short: "Let the letters held behind a parked letter go on without it (audited, needs --reason); the parked letter stays",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(releaseReason) == "" {
				return fail(exitUsage, "--reason: say why the thread need not wait (it goes to the audit log)")
			}
			var v struct{ Released bool }
			path := "/api/v1/holds/" + url.PathEscape(args[0]) + "/" + url.PathEscape(args[1]) + "/release"
			if printed, err := o.fetch(cmd, "POST", path, nil, map[string]any{"reason": releaseReason}, &v); err != nil || printed {
				return err
			}
			fmt.Fprintf(o.out, "Released: the held letters go on to %s in their order.\n", args[0])
			return nil
		},
	}
	release.Flags().StringVar(&releaseReason, "reason", "", "why (required; audited, no personal data)")

	q.AddCommand(list, stats, show, replay, discard, held, release, bulkReplaysCmd(o))
	return q
}

type decision struct {
	Destination, Verdict, Route, Reason, Code string
}

func replayOne(cmd *cobra.Command, o *options, seq uint64, reason string, dryRun bool) error {
	var v struct {
		Seq      uint64
		DryRun   bool
		Decision decision
	}
	printed, err := o.fetch(cmd, "POST", fmt.Sprintf("/api/v1/queue/%d/replay", seq), nil, map[string]any{"reason": reason, "dryRun": dryRun}, &v)
	if err != nil {
		return err
	}
	if !printed {
		printDecision(o.out, seq, dryRun, "", v.Decision)
	}
	// As a replay by filter: a letter that parks again is no delivery, and
	// a script must be able to tell.
	if !dryRun && v.Decision.Verdict != "deliver" {
		return fail(exitNothingDelivered, "letter %d was replayed but parks again (%s)", seq, v.Decision.Verdict)
	}
	return nil
}

func printDecision(w io.Writer, seq uint64, dryRun bool, errMsg string, d decision) {
	switch {
	case errMsg != "":
		fmt.Fprintf(w, "%d: not replayed: %s\n", seq, errMsg)
	case dryRun:
		fmt.Fprintf(w, "%d: would %s to %s: %s\n", seq, d.Verdict, d.Destination, d.Reason)
	case d.Verdict == "skip":
		// The destination no longer takes it: it parks again (not_routed).
		fmt.Fprintf(w, "%d: replayed, but %s no longer takes it: %s (it parks again as not_routed: discard it with a reason, or change the routes)\n", seq, d.Destination, d.Reason)
	case d.Verdict != "deliver":
		fmt.Fprintf(w, "%d: replayed to %s, but %s: %s (it will park again until that is fixed)\n", seq, d.Destination, d.Verdict, d.Reason)
	default:
		fmt.Fprintf(w, "%d: replayed to %s\n", seq, d.Destination)
	}
}

func replayMany(cmd *cobra.Command, o *options, seqs []uint64, reason string, dryRun bool) error {
	body := map[string]any{"seqs": seqs, "reason": reason, "dryRun": dryRun}
	var v struct {
		Results []struct {
			Seq      uint64
			Decision decision
			Code     string
			Error    string
		}
	}
	printed, err := o.fetch(cmd, "POST", "/api/v1/queue/replay", nil, body, &v)
	if err != nil {
		return err
	}
	if !printed {
		if len(v.Results) == 0 {
			fmt.Fprintln(o.out, "Nothing to replay.")
		}
		for _, r := range v.Results {
			printDecision(o.out, r.Seq, dryRun, r.Error, r.Decision)
		}
	}
	// Partial failure still ends non-zero so scripts notice.
	failed, missing := 0, 0
	for _, r := range v.Results {
		if r.Error != "" {
			failed++
			if r.Code == "not-found" {
				missing++
			}
		}
	}
	delivered := 0
	for _, r := range v.Results {
		if r.Error == "" && r.Decision.Verdict == "deliver" {
			delivered++
		}
	}
	switch {
	case failed == 0 && !dryRun && len(v.Results) > 0 && delivered == 0:
		return fail(exitNothingDelivered, "none of the %d replayed letters went on to delivery: each parks again", len(v.Results))
	case failed == 0:
		return nil
	case failed == missing:
		return fail(exitNotFound, "%d of %d not found in the queue", failed, len(v.Results))
	default:
		return fail(exitServer, "%d of %d could not be replayed", failed, len(v.Results))
	}
}

func letterCmd(o *options) *cobra.Command {
	l := group("letter", "Follow letters through the hub (role coordinator)")
	trace := &cobra.Command{
		Use:   "trace ID",
		Short: "Show a letter's journey: each step with time and destination (no personal content)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var t struct {
				Letter *struct {
					ID, Kind, Format, Source, ThreadID string
					Received                           time.Time
				}
				Steps   []journey.Event
				Parked  []retryq.Entry
				Pending []string `json:"pendingDestinations"`
			}
			if printed, err := o.fetch(cmd, "GET", "/api/v1/letters/"+url.PathEscape(args[0])+"/trace", nil, nil, &t); err != nil || printed {
				return err
			}
			if t.Letter != nil {
				fmt.Fprintf(o.out, "Letter %s: %s (%s) from %s, received %s", t.Letter.ID, dash(t.Letter.Kind), dash(t.Letter.Format), t.Letter.Source, ts(t.Letter.Received))
				if t.Letter.ThreadID != "" {
					fmt.Fprintf(o.out, ", thread %s", t.Letter.ThreadID)
				}
				fmt.Fprintln(o.out)
			}
			tw := o.table()
			fmt.Fprintln(tw, "TIME\tSTEP\tDESTINATION\tTO\tATTEMPT\tREMOTE ID\tCODE\tNOTE\tBY")
			for _, s := range t.Steps {
				where := s.Destination
				if where == "" {
					where = s.Source
				}
				att := "-"
				if s.Attempt > 0 {
					att = strconv.Itoa(s.Attempt)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", ts(s.At), s.Step, dash(where), dash(s.To), att, dash(s.RemoteID), dash(s.Code), dash(s.Reason), dash(s.Actor))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			for _, p := range t.Parked {
				fmt.Fprintf(o.out, "Parked now for %s as %d (samhubctl queue show %d)\n", p.Destination, p.Seq, p.Seq)
			}
			if len(t.Pending) > 0 {
				fmt.Fprintf(o.out, "Still on its way to: %s\n", strings.Join(t.Pending, ", "))
			}
			return nil
		},
	}
	l.AddCommand(trace)
	return l
}

func auditCmd(o *options) *cobra.Command {
	a := group("audit", "Read the audit log (role auditor)")
	var n int
	tail := &cobra.Command{
		Use:   "tail",
		Short: "Show the most recent audit records, oldest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if n < 1 || n > 10000 {
				return fail(exitUsage, "-n: must be between 1 and 10000")
			}
			var v struct{ Records []audit.Record }
			if printed, err := o.fetch(cmd, "GET", "/api/v1/audit", url.Values{"n": {strconv.Itoa(n)}}, nil, &v); err != nil || printed {
				return err
			}
			if len(v.Records) == 0 {
				fmt.Fprintln(o.out, "The audit log is empty.")
				return nil
			}
			tw := o.table()
			fmt.Fprintln(tw, "TIME\tACTOR\tROLE\tACTION\tTARGET\tREASON\tRESULT\tFROM")
			for _, r := range v.Records {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", ts(r.At), r.Actor, dash(r.Role), r.Action, dash(r.Target), dash(r.Reason), dash(r.Result), dash(r.Remote))
			}
			return tw.Flush()
		},
	}
	tail.Flags().IntVarP(&n, "n", "n", 20, "number of records")
	a.AddCommand(tail)
	return a
}
