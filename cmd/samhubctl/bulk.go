package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/samhub/samhub/pipeline/retryq"
)

// queuePage is the API's page of the retry queue.
type queuePage struct {
	Entries  []retryq.Entry
	Total    int
	Page     int
	PageSize int
	Pages    int
	Next     string
}

func listCmd(o *options) *cobra.Command {
	var filters []string
	var dest, code, cursor, reason string
	var page, pageSize, limit int
	list := &cobra.Command{
		Use:   "list [--filter K=V]... [--page N | --cursor C]",
		Short: "List parked letters, a page at a time, with how many match",
		Long: "List parked letters in the order they were parked, a page at a time; the hub filters\n" +
			"and counts, so a long queue is listed as fast as a short one.\n\n" + filterHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := parseFilter(filters, time.Now())
			if err != nil {
				return err
			}
			if f.all {
				return fail(exitUsage, "--filter all: list lists everything without a filter")
			}
			if dest != "" {
				f.Destination = dest
			}
			if code != "" {
				f.Code = code
			}
			if cmd.Flags().Changed("limit") && !cmd.Flags().Changed("page-size") {
				pageSize = limit
			}
			if pageSize < 1 || pageSize > 5000 {
				return fail(exitUsage, "--page-size: must be between 1 and 5000")
			}
			if page < 1 {
				return fail(exitUsage, "--page: must be 1 or more")
			}
			if cursor != "" && cmd.Flags().Changed("page") {
				return fail(exitUsage, "give --page or --cursor, not both")
			}
			var v queuePage
			var printed bool
			if f.Patient != "" {
				// The CPR goes in a body, never a URL; the search is audited.
				if strings.TrimSpace(reason) == "" {
					return fail(exitUsage, "--reason: a search by CPR is audited; say why you search")
				}
				body := map[string]any{"filter": f, "page": page, "pageSize": pageSize, "cursor": cursor, "reason": reason}
				printed, err = o.fetch(cmd, "POST", "/api/v1/queue/search", nil, body, &v)
			} else {
				q := f.query()
				q.Set("pageSize", strconv.Itoa(pageSize))
				if cursor != "" {
					q.Set("cursor", cursor)
				} else {
					q.Set("page", strconv.Itoa(page))
				}
				printed, err = o.fetch(cmd, "GET", "/api/v1/queue", q, nil, &v)
			}
			if err != nil || printed {
				return err
			}
			if v.Total == 0 {
				if f.empty() {
					fmt.Fprintln(o.out, "No parked letters.")
				} else {
					fmt.Fprintf(o.out, "No parked letters match %s.\n", f)
				}
				return nil
			}
			if len(v.Entries) > 0 {
				printEntries(o, v.Entries)
			}
			printPageFooter(o, v)
			return nil
		},
	}
	fl := list.Flags()
	fl.StringArrayVar(&filters, "filter", nil, "a condition key=value (repeat, or separate with commas); see above")
	fl.StringVar(&dest, "destination", "", "only this destination (as --filter destination=D)")
	fl.StringVar(&code, "code", "", "only this reason code (as --filter code=C)")
	fl.IntVar(&page, "page", 1, "page number")
	fl.IntVar(&pageSize, "page-size", 100, "entries per page (1-5000)")
	fl.StringVar(&cursor, "cursor", "", "the next cursor a page printed: the page after it")
	fl.IntVar(&limit, "limit", 100, "as --page-size (kept for scripts written before pages)")
	fl.StringVar(&reason, "reason", "", "why (needed with patient=, which is audited)")
	_ = fl.MarkHidden("limit")
	return list
}

func printEntries(o *options, es []retryq.Entry) {
	tw := o.table()
	fmt.Fprintln(tw, "ID\tPARKED\tDESTINATION\tKIND\tCODE\tATTEMPTS\tLETTER\tREASON")
	for _, e := range es {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", e.Seq, ts(e.ParkedAt), e.Destination, dash(e.Kind), dash(e.LastError.Code), e.Attempts, e.LetterID, e.LastError.Reason)
	}
	_ = tw.Flush()
}

func printPageFooter(o *options, v queuePage) {
	switch {
	case v.Page > 0 && len(v.Entries) > 0:
		first := (v.Page-1)*v.PageSize + 1
		fmt.Fprintf(o.out, "Entries %d–%d of %d that match (page %d of %d).", first, first+len(v.Entries)-1, v.Total, v.Page, v.Pages)
	case v.Page > 0:
		fmt.Fprintf(o.out, "Page %d is past the end: %d match (%d pages).", v.Page, v.Total, v.Pages)
	default:
		fmt.Fprintf(o.out, "%d entries of %d that match.", len(v.Entries), v.Total)
	}
	if v.Next != "" {
		if v.Page > 0 {
			fmt.Fprintf(o.out, " Next: --page %d or --cursor %s", v.Page+1, v.Next)
		} else {
			fmt.Fprintf(o.out, " Next: --cursor %s", v.Next)
		}
	}
	fmt.Fprintln(o.out)
}

// bulkPreview is the API's dry run of a bulk replay.
type bulkPreview struct {
	Total         int
	ByDestination map[string]int
	ByCode        map[string]int
	UpTo          uint64
	First         []retryq.Entry
}

// bulkReplay is the API's bulk replay.
type bulkReplay struct {
	ID                                   string
	Planned, Replayed, StillDenied, Gone int
	Failed, NotRouted, StillHeld         int
	StillDeniedBy                        map[string]int // reason code: how many parked again for it
	Failures                             []struct {
		Seq             uint64
		LetterID, Error string
	}
	State, Error, Actor, Reason string
	Started, Updated, Finished  time.Time
	Filter                      map[string]any
}

func (r bulkReplay) progress() string {
	s := fmt.Sprintf("%d of %d replayed: %d sent on for delivery, %d parked again", r.Replayed, r.Planned, r.sentOn(), r.StillDenied)
	if len(r.StillDeniedBy) > 0 {
		s += " (" + countsLine(r.StillDeniedBy) + ")"
	}
	if r.NotRouted > 0 {
		s += fmt.Sprintf(", %d parked again as not_routed (the destination no longer takes them)", r.NotRouted)
	}
	if r.StillHeld > 0 {
		s += fmt.Sprintf(", %d left parked behind an earlier letter of their thread (they follow it)", r.StillHeld)
	}
	return s + fmt.Sprintf(", %d no longer parked, %d failed", r.Gone, r.Failed)
}

// sentOn is how many replayed letters the routing let through to their
// destination (which may still refuse them and park them anew).
func (r bulkReplay) sentOn() int { return r.Replayed - r.StillDenied - r.NotRouted }

// countsLine is "code: n, code: n", the largest first.
func countsLine(m map[string]int) string {
	var parts []string
	for _, k := range sortedByCount(m) {
		parts = append(parts, fmt.Sprintf("%s: %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// replayFilter previews (dryRun) or runs the replay of every parked letter
// matching f, following its progress unless noWait.
func replayFilter(cmd *cobra.Command, o *options, f queueFilter, reason string, dryRun, noWait bool) error {
	if f.Patient != "" && strings.TrimSpace(reason) == "" {
		return fail(exitUsage, "--reason: a filter by CPR is audited, also in a dry run; say why")
	}
	body := map[string]any{"filter": f, "reason": reason, "dryRun": dryRun}
	if dryRun {
		var p bulkPreview
		if printed, err := o.fetch(cmd, "POST", "/api/v1/queue/bulk-replays", nil, body, &p); err != nil || printed {
			return err
		}
		if p.Total == 0 {
			fmt.Fprintf(o.out, "No parked letters match %s.\n", f)
			return nil
		}
		fmt.Fprintf(o.out, "%d parked letters match %s (counted up to entry %d).\n\n", p.Total, f, p.UpTo)
		printCounts(o, "DESTINATION", p.ByDestination)
		fmt.Fprintln(o.out)
		printCounts(o, "CODE", p.ByCode)
		fmt.Fprintf(o.out, "\nThe first %d:\n", len(p.First))
		printEntries(o, p.First)
		bound := f
		bound.UpTo = p.UpTo
		fmt.Fprintf(o.out, "\nTo replay exactly these (and not what parks meanwhile):\n  samhubctl queue replay --filter '%s' --reason \"...\"\n", bound)
		return nil
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	// One key for this replay: a retried request gets the replay the
	// first one started, never a second.
	key := requestKey()
	var r bulkReplay
	var raw json.RawMessage
	for attempt := 1; ; attempt++ {
		err = c.doWith(cmd.Context(), "POST", "/api/v1/queue/bulk-replays", nil, body, &raw, map[string]string{"Idempotency-Key": key})
		var ee *exitError
		if err == nil {
			if err := json.Unmarshal(raw, &r); err != nil {
				return fail(exitServer, "the hub's answer could not be read: %v", err)
			}
			break
		}
		if errors.As(err, &ee) && ee.status == http.StatusConflict {
			fmt.Fprintf(o.out, "No parked letters match %s.\n", f)
			return nil
		}
		if !errors.As(err, &ee) || ee.code != exitServer || attempt == 3 || cmd.Context().Err() != nil {
			return err
		}
		time.Sleep(time.Second)
	}
	if !o.json() {
		fmt.Fprintf(o.out, "Bulk replay %s: %d parked letters matching %s go back to their destinations.\n", r.ID, r.Planned, f)
	}
	if noWait {
		if o.json() {
			return o.printJSON(raw)
		}
		fmt.Fprintf(o.out, "Follow it with: samhubctl queue bulk-replays %s\n", r.ID)
		return nil
	}
	if raw, err = followBulk(cmd.Context(), o, c, &r, raw); err != nil {
		return err
	}
	return bulkOutcome(o, r, raw)
}

// followBulk polls the replay's progress until it ends and returns the
// hub's last answer.
func followBulk(ctx context.Context, o *options, c *client, r *bulkReplay, raw json.RawMessage) (json.RawMessage, error) {
	last := ""
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for r.State == "running" {
		if p := r.progress(); p != last && !o.json() {
			fmt.Fprintln(o.out, "  "+p)
			last = p
		}
		select {
		case <-ctx.Done():
			fmt.Fprintf(o.out, "Stopped following; the replay goes on in the hub: samhubctl queue bulk-replays %s\n", r.ID)
			return raw, fail(exitServer, "interrupted")
		case <-tick.C:
		}
		if err := c.do(ctx, "GET", "/api/v1/queue/bulk-replays/"+url.PathEscape(r.ID), nil, nil, &raw); err != nil {
			return raw, err
		}
		if err := json.Unmarshal(raw, r); err != nil {
			return raw, fail(exitServer, "the hub's answer could not be read: %v", err)
		}
	}
	return raw, nil
}

// bulkOutcome prints how a replay ended (raw with -o json); anything but
// a clean end exits non-zero so scripts notice.
func bulkOutcome(o *options, r bulkReplay, raw json.RawMessage) error {
	if o.json() {
		if err := o.printJSON(raw); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(o.out, "%s: %s.\n", map[string]string{"done": "Done", "stopped": "Stopped", "interrupted": "Interrupted", "running": "Running"}[r.State], r.progress())
		if r.Error != "" {
			fmt.Fprintf(o.out, "Why: %s\n", r.Error)
		}
		for _, f := range r.Failures {
			fmt.Fprintf(o.out, "  %d (%s): %s\n", f.Seq, f.LetterID, f.Error)
		}
		if r.State == "interrupted" {
			fmt.Fprintln(o.out, "What was replayed stays replayed; replay with the same filter to take the rest.")
		}
	}
	switch {
	case r.State == "running":
		return nil
	case r.State != "done":
		return fail(exitServer, "the bulk replay %s: %s", r.State, r.Error)
	case r.Failed > 0:
		return fail(exitServer, "%d of %d could not be replayed", r.Failed, r.Planned)
	case r.Replayed > 0 && r.sentOn() == 0:
		// It ran, but changed nothing a script waits for: say so apart
		// from success and from the hub failing.
		return fail(exitNothingDelivered, "none of the %d replayed letters went on to delivery: %d parked again (%d of them as not_routed)", r.Replayed, r.StillDenied+r.NotRouted, r.NotRouted)
	}
	return nil
}

func bulkReplaysCmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "bulk-replays [ID]",
		Short: "List the replays by filter of the last 30 days, or show one's progress",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				c, err := o.client()
				if err != nil {
					return err
				}
				var raw json.RawMessage
				if err := c.do(cmd.Context(), "GET", "/api/v1/queue/bulk-replays/"+url.PathEscape(args[0]), nil, nil, &raw); err != nil {
					return err
				}
				var r bulkReplay
				if err := json.Unmarshal(raw, &r); err != nil {
					return fail(exitServer, "the hub's answer could not be read: %v", err)
				}
				if !o.json() {
					fmt.Fprintf(o.out, "Bulk replay %s by %s, started %s, reason %q\n", r.ID, r.Actor, ts(r.Started), r.Reason)
				}
				return bulkOutcome(o, r, raw)
			}
			var v struct{ BulkReplays []bulkReplay }
			if printed, err := o.fetch(cmd, "GET", "/api/v1/queue/bulk-replays", nil, nil, &v); err != nil || printed {
				return err
			}
			if len(v.BulkReplays) == 0 {
				fmt.Fprintln(o.out, "No replays by filter in the last 30 days.")
				return nil
			}
			tw := o.table()
			fmt.Fprintln(tw, "ID\tSTARTED\tBY\tSTATE\tPLANNED\tREPLAYED\tSTILL DENIED\tGONE\tFAILED")
			for _, r := range v.BulkReplays {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\n", r.ID, ts(r.Started), r.Actor, r.State, r.Planned, r.Replayed, r.StillDenied, r.Gone, r.Failed)
			}
			return tw.Flush()
		},
	}
}

// sortedByCount is m's keys, the largest count first.
func sortedByCount(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] || (m[keys[i]] == m[keys[j]] && keys[i] < keys[j]) })
	return keys
}

func printCounts(o *options, head string, m map[string]int) {
	tw := o.table()
	fmt.Fprintf(tw, "%s\tCOUNT\n", head)
	for _, k := range sortedByCount(m) {
		fmt.Fprintf(tw, "%s\t%d\n", dash(k), m[k])
	}
	_ = tw.Flush()
}

func requestKey() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
