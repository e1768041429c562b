package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/samhub/samhub/pipeline/council"
	"github.com/samhub/samhub/pipeline/letter"
)

// The council's month: meetings, referrals and figures (role coordinator;
// kpi also operations).

// when writes a meeting time in the council's zone with the zone's name.
func when(t time.Time, zone string) string {
	if t.IsZero() {
		return "-"
	}
	if loc, err := time.LoadLocation(zone); err == nil {
		t = t.In(loc)
	}
	return t.Format("2006-01-02 15:04 MST")
}

// day writes a date in the council's zone, as the console and the agenda
// do: a referral at 00:30 in Copenhagen is that day's, also when samhubctl
// runs on a machine whose clock is UTC. Without a zone (an older hub), the
// machine's.
func day(t time.Time, zone string) string {
	if t.IsZero() {
		return "-"
	}
	if loc, err := time.LoadLocation(zone); err == nil && zone != "" {
		return t.In(loc).Format("2006-01-02")
	}
	return t.Local().Format("2006-01-02")
}

// stamp is a time to the second in the council's zone, naming the zone.
func stamp(t time.Time, zone string) string {
	if t.IsZero() {
		return "-"
	}
	if loc, err := time.LoadLocation(zone); err == nil && zone != "" {
		return t.In(loc).Format("2006-01-02 15:04:05 MST")
	}
	return ts(t)
}

func meetingCmd(o *options) *cobra.Command {
	m := group("meeting", "The council's meetings and the referrals each takes (role coordinator)")

	var from, to string
	list := &cobra.Command{
		Use:   "list [--from DATE] [--to DATE]",
		Short: "List the meetings (default: three months back to six months ahead) with their places taken",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			if from != "" {
				q.Set("from", from)
			}
			if to != "" {
				q.Set("to", to)
			}
			var v struct {
				Zone, Rule string
				Cap        int
				Meetings   []council.Meeting
			}
			if printed, err := o.fetch(cmd, "GET", "/api/v1/meetings", q, nil, &v); err != nil || printed {
				return err
			}
			fmt.Fprintf(o.out, "Rule: %s (%s), %d referrals per meeting.\n", v.Rule, v.Zone, v.Cap)
			if len(v.Meetings) == 0 {
				fmt.Fprintln(o.out, "No meetings in that period.")
				return nil
			}
			tw := o.table()
			fmt.Fprintln(tw, "ID\tWHEN\tORIGIN\tREFERRALS\tROOM\tANSWERED\tUNANSWERED")
			for _, mt := range v.Meetings {
				origin := mt.Origin
				if mt.MovedFrom != nil {
					origin += ", moved from " + when(*mt.MovedFrom, v.Zone)
				}
				if mt.Cancelled != nil {
					origin += ", CANCELLED"
				} else if mt.DayOff != "" && !mt.Past {
					origin += ", ON " + mt.DayOff + " (move or cancel it)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%d\t%d\t%d\n", mt.ID, when(mt.At, v.Zone), origin, mt.Referrals, mt.Cap, mt.Room, mt.Answered, mt.Unanswered)
			}
			return tw.Flush()
		},
	}
	list.Flags().StringVar(&from, "from", "", "first date (YYYY-MM-DD)")
	list.Flags().StringVar(&to, "to", "", "date after the last (YYYY-MM-DD)")

	var names bool
	var showReason string
	show := &cobra.Command{
		Use:   "show ID [--names --reason TEXT]",
		Short: "Show a meeting's children: referral, GP, consent per sector, documents, recommendation sent and to whom, acknowledgements",
		Long: "Show a meeting's children: referral, GP, consent per sector, documents gathered, recommendation sent\n" +
			"and to whom, acknowledgements. Children are shown by letter id; --names reads each child's name from\n" +
			"the stored referral, a read of personal data that is audited with your --reason.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var v council.MeetingView
			path := "/api/v1/meetings/" + url.PathEscape(args[0])
			var printed bool
			var err error
			if names {
				if strings.TrimSpace(showReason) == "" {
					return fail(exitUsage, "--reason: say why you need the children's names (it goes to the audit log)")
				}
				printed, err = o.fetch(cmd, "POST", path+"/agenda", nil, map[string]any{"reason": showReason}, &v)
			} else {
				printed, err = o.fetch(cmd, "GET", path, nil, nil, &v)
			}
			if err != nil || printed {
				return err
			}
			printMeeting(o.out, v)
			return nil
		},
	}
	show.Flags().BoolVar(&names, "names", false, "show the children's names (audited; needs --reason)")
	show.Flags().StringVar(&showReason, "reason", "", "why you read the names (audited)")

	var exportReason, format, outFile string
	export := &cobra.Command{
		Use:   "export ID --reason TEXT [--format csv|json] [--out FILE]",
		Short: "Export a meeting's agenda with the children's names (CSV for a spreadsheet); audited, needs --reason",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(exportReason) == "" {
				return fail(exitUsage, "--reason: say why you export the agenda (it goes to the audit log)")
			}
			if format != "csv" && format != "json" {
				return fail(exitUsage, "--format: must be csv or json")
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			var raw json.RawMessage // the CSV's bytes, too
			if err := c.do(cmd.Context(), "POST", "/api/v1/meetings/"+url.PathEscape(args[0])+"/agenda", nil, map[string]any{"reason": exportReason, "format": format, "export": true}, &raw); err != nil {
				return err
			}
			var w io.Writer = o.out
			if outFile != "" {
				f, err := os.OpenFile(outFile, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
				if err != nil {
					return fail(exitUsage, "--out: %v", err)
				}
				defer f.Close()
				w = f
			}
			_, err = w.Write(raw)
			return err
		},
	}
	export.Flags().StringVar(&exportReason, "reason", "", "why (required; audited)")
	export.Flags().StringVar(&format, "format", "csv", "csv (semicolon-separated, UTF-8) or json")
	export.Flags().StringVar(&outFile, "out", "", "write to this file (mode 0600) instead of standard output")

	var at, addReason string
	var capacity int
	add := &cobra.Command{
		Use:   "add --at \"2026-03-24 13:00\" --reason TEXT [--cap N]",
		Short: "Add a meeting (audited); referrals waiting for room take it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if at == "" {
				return fail(exitUsage, "--at: the meeting's date and time, e.g. \"2026-03-24 13:00\" (the council's zone)")
			}
			if strings.TrimSpace(addReason) == "" {
				return fail(exitUsage, "--reason: say why (it goes to the audit log)")
			}
			var v council.Meeting
			if printed, err := o.fetch(cmd, "POST", "/api/v1/meetings", nil, map[string]any{"at": at, "cap": capacity, "reason": addReason}, &v); err != nil || printed {
				return err
			}
			fmt.Fprintf(o.out, "Meeting %s added: %s, %d referrals.\n", v.ID, when(v.At, v.Zone), v.Cap)
			warnDayOff(o.out, v)
			return nil
		},
	}
	add.Flags().StringVar(&at, "at", "", "date and time, e.g. \"2026-03-24 13:00\" (in the council's zone) or RFC 3339")
	add.Flags().StringVar(&addReason, "reason", "", "why (required; audited)")
	add.Flags().IntVar(&capacity, "cap", 0, "referrals it takes (default council.meetings.cap)")

	var moveAt, moveReason string
	move := &cobra.Command{
		Use:   "move ID --at \"2026-03-12 09:00\" --reason TEXT",
		Short: "Move a meeting to another time (audited); its referrals go with it, their GPs told (with receipts on)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if moveAt == "" {
				return fail(exitUsage, "--at: the new date and time, e.g. \"2026-03-12 09:00\"")
			}
			if strings.TrimSpace(moveReason) == "" {
				return fail(exitUsage, "--reason: say why (it goes to the audit log)")
			}
			var v council.Meeting
			if printed, err := o.fetch(cmd, "POST", "/api/v1/meetings/"+url.PathEscape(args[0])+"/move", nil, map[string]any{"at": moveAt, "reason": moveReason}, &v); err != nil || printed {
				return err
			}
			fmt.Fprintf(o.out, "Meeting %s moved to %s; its %d referrals go with it.\n", v.ID, when(v.At, v.Zone), v.Referrals)
			warnDayOff(o.out, v)
			return nil
		},
	}
	move.Flags().StringVar(&moveAt, "at", "", "new date and time")
	move.Flags().StringVar(&moveReason, "reason", "", "why (required; audited)")

	var cancelReason string
	cancel := &cobra.Command{
		Use:   "cancel ID --reason TEXT",
		Short: "Cancel a meeting that will not be held (audited); move its children first (referral move)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(cancelReason) == "" {
				return fail(exitUsage, "--reason: say why (it goes to the audit log)")
			}
			var v council.Meeting
			if printed, err := o.fetch(cmd, "POST", "/api/v1/meetings/"+url.PathEscape(args[0])+"/cancel", nil, map[string]any{"reason": cancelReason}, &v); err != nil || printed {
				return err
			}
			fmt.Fprintf(o.out, "Meeting %s (%s) is cancelled; new referrals take the next meeting with room.\n", v.ID, when(v.At, v.Zone))
			return nil
		},
	}
	cancel.Flags().StringVar(&cancelReason, "reason", "", "why (required; audited)")

	m.AddCommand(list, show, export, add, move, cancel)
	return m
}

// warnDayOff says when a meeting the coordinator just set falls on a
// Danish public holiday or closing day (it is set all the same).
func warnDayOff(w io.Writer, mt council.Meeting) {
	if mt.DayOff != "" {
		fmt.Fprintf(w, "Note: %s is %s, a Danish public holiday or closing day.\n", mt.At.Format("2006-01-02"), mt.DayOff)
	}
}

func printMeeting(w io.Writer, v council.MeetingView) {
	mt := v.Meeting
	fmt.Fprintf(w, "Meeting %s: %s, %d of %d places taken", mt.ID, when(mt.At, mt.Zone), mt.Referrals, mt.Cap)
	if mt.MovedFrom != nil {
		fmt.Fprintf(w, " (moved from %s)", when(*mt.MovedFrom, mt.Zone))
	}
	if mt.Cancelled != nil {
		fmt.Fprint(w, "; CANCELLED")
	} else if mt.DayOff != "" && !mt.Past {
		fmt.Fprintf(w, "; it falls on %s, a Danish public holiday or closing day: move or cancel it", mt.DayOff)
	}
	fmt.Fprintln(w)
	if len(v.Children) == 0 {
		fmt.Fprintln(w, "No referrals yet.")
		return
	}
	for i, ch := range v.Children {
		gp := dash(ch.GP.Name)
		if ch.GP.GLN != "" {
			gp += " (GLN " + ch.GP.GLN + ")"
		}
		fmt.Fprintf(w, "\n%d. Referral %s, %s from %s: %s", i+1, ch.LetterID, day(ch.Received, mt.Zone), gp, ch.State)
		if ch.State != "answered" {
			fmt.Fprintf(w, " (due %s)", day(ch.Due, mt.Zone))
		}
		if ch.MovedFrom != "" {
			fmt.Fprintf(w, "; moved here from meeting %s", ch.MovedFrom)
		}
		fmt.Fprintln(w)
		switch {
		case ch.Name != "":
			fmt.Fprintf(w, "   Child: %s\n", ch.Name)
		case ch.NameUnavailable:
			fmt.Fprintln(w, "   Child: (the referral is no longer stored)")
		}
		// The hub lists the sectors whose consent a route needs: only those.
		var sectors []string
		for _, s := range letter.Scopes {
			if st, ok := ch.Consent.Sectors[string(s)]; ok {
				sectors = append(sectors, string(s)+" "+st)
			}
		}
		source := ch.Consent.Source
		switch source {
		case "recorded":
			source = "recorded by the coordinator"
		case "letter":
			source = "as letter " + ch.Consent.Letter + " states it"
		}
		if len(sectors) == 0 {
			sectors = []string{"no route needs one"}
		}
		fmt.Fprintf(w, "   Consent (%s): %s\n", source, strings.Join(sectors, ", "))
		printTracked(w, "   Referral", ch.Referral)
		for _, j := range ch.LaterReferrals {
			// A later referral of the child, joined to this seat.
			jgp := dash(j.GP.Name)
			if j.GP.GLN != "" {
				jgp += " (GLN " + j.GP.GLN + ")"
			}
			printTracked(w, "   Referred again "+j.LetterID+", "+day(j.Received, mt.Zone)+" from "+jgp, j.Tracked)
			if j.Receipt != nil {
				printTracked(w, "     Receipt to that GP", *j.Receipt)
			}
			for _, x := range j.NewDates {
				printTracked(w, "     New meeting date told that GP "+x.LetterID, x)
			}
			for _, x := range j.AnswerCopies {
				printTracked(w, "     Recommendation copied to that GP "+x.LetterID, x)
			}
		}
		for _, x := range ch.AnswerCopies {
			printTracked(w, "   Recommendation copied to the first GP "+x.LetterID, x)
		}
		if len(ch.Documents) > 0 {
			fmt.Fprintf(w, "   Documents gathered: %d\n", len(ch.Documents))
			for _, d := range ch.Documents {
				printTracked(w, "     "+dash(d.Kind)+" from "+dash(d.Source)+" "+d.LetterID, d)
			}
		}
		if len(ch.Recommendations) == 0 {
			fmt.Fprintln(w, "   Recommendation: none yet")
		}
		for _, r := range ch.Recommendations {
			printTracked(w, "   Recommendation "+r.LetterID+" ("+day(r.Received, mt.Zone)+")", r)
		}
		if ch.Receipt != nil {
			printTracked(w, "   Receipt to the GP", *ch.Receipt)
		}
		for _, x := range ch.NewDates {
			printTracked(w, "   New meeting date told the GP "+x.LetterID, x)
		}
		for _, x := range ch.Rejections {
			fmt.Fprintf(w, "   Turned down by child psychiatry: %s (%s)\n", x.LetterID, day(x.Received, mt.Zone))
		}
	}
}

func printTracked(w io.Writer, label string, t council.Tracked) {
	var parts []string
	for _, d := range t.Deliveries {
		s := "delivered to " + d.Destination
		if d.To != "" {
			s += " (" + d.To + ")"
		}
		if d.RemoteID != "" {
			s += " as " + d.RemoteID
		}
		parts = append(parts, s)
	}
	for _, x := range t.Waiting {
		// A discard has no code; its reason is the coordinator's (e.g. "sendt
		// som fysisk brev"), which says the letter did reach the family.
		detail := x.Code
		if detail == "" {
			detail = x.Reason
		}
		parts = append(parts, x.Step+" at "+x.Destination+" ("+dash(detail)+")")
	}
	for _, a := range t.Acknowledgements {
		verdict := "refused"
		if a.Positive {
			verdict = "acknowledged"
		}
		parts = append(parts, verdict+" ("+a.Code+")")
	}
	if len(parts) == 0 {
		parts = []string{"on its way"}
	}
	fmt.Fprintf(w, "%s: %s\n", label, strings.Join(parts, "; "))
}

func referralCmd(o *options) *cobra.Command {
	r := group("referral", "The council's referral register (role coordinator)")
	var state, meeting string
	list := &cobra.Command{
		Use:   "list [--state waiting|answered|unanswered|withdrawn] [--meeting ID]",
		Short: "List referrals with their meeting and state; unanswered are past council.watch_days without a recommendation",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			if state != "" {
				q.Set("state", state)
			}
			if meeting != "" {
				q.Set("meeting", meeting)
			}
			var v struct {
				WatchDays float64
				Zone      string
				Referrals []council.Child
			}
			if printed, err := o.fetch(cmd, "GET", "/api/v1/referrals", q, nil, &v); err != nil || printed {
				return err
			}
			if len(v.Referrals) == 0 {
				fmt.Fprintln(o.out, "No referrals.")
				return nil
			}
			tw := o.table()
			fmt.Fprintln(tw, "LETTER\tRECEIVED\tGP\tMEETING\tSTATE\tDUE\tFLAGGED")
			for _, c := range v.Referrals {
				flagged := "-"
				if c.Flagged != nil {
					flagged = stamp(*c.Flagged, v.Zone)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.LetterID, stamp(c.Received, v.Zone), dash(c.GP.Name), dash(c.Meeting), c.State, day(c.Due, v.Zone), flagged)
			}
			return tw.Flush()
		},
	}
	list.Flags().StringVar(&state, "state", "", "only waiting, answered, unanswered or withdrawn")
	list.Flags().StringVar(&meeting, "meeting", "", "only this meeting's")

	var to, reason string
	move := &cobra.Command{
		Use:   "move LETTER-ID --to MEETING --reason TEXT",
		Short: "Move a child's seat, with its later referrals, to a later meeting with room (audited); its GPs are told (with receipts on)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if to == "" {
				return fail(exitUsage, "--to: the meeting's id, e.g. 2026-04-14 (samhubctl meeting list)")
			}
			if strings.TrimSpace(reason) == "" {
				return fail(exitUsage, "--reason: say why (it goes to the audit log)")
			}
			var c council.Child
			if printed, err := o.fetch(cmd, "POST", "/api/v1/referrals/"+url.PathEscape(args[0])+"/move", nil, map[string]any{"meeting": to, "reason": reason}, &c); err != nil || printed {
				return err
			}
			fmt.Fprintf(o.out, "Referral %s now sits in meeting %s", c.LetterID, c.Meeting)
			if c.MovedFrom != "" {
				fmt.Fprintf(o.out, " (moved from %s)", c.MovedFrom)
			}
			if n := len(c.LaterReferrals); n > 0 {
				fmt.Fprintf(o.out, "; its %d later referral(s) go with it", n)
			}
			fmt.Fprintln(o.out, ".")
			return nil
		},
	}
	move.Flags().StringVar(&to, "to", "", "the meeting's id (a date, e.g. 2026-04-14)")
	move.Flags().StringVar(&reason, "reason", "", "why (required; audited)")

	var wreason string
	withdraw := &cobra.Command{
		Use:   "withdraw LETTER-ID --reason TEXT",
		Short: "Withdraw a referral the council is not to take (audited): listed as withdrawn, it takes no place and is not watched; its GP is not told",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(wreason) == "" {
				return fail(exitUsage, "--reason: say why (it goes to the audit log)")
			}
			var c council.Child
			if printed, err := o.fetch(cmd, "POST", "/api/v1/referrals/"+url.PathEscape(args[0])+"/withdraw", nil, map[string]any{"reason": wreason}, &c); err != nil || printed {
				return err
			}
			fmt.Fprintf(o.out, "Referral %s is withdrawn; its place in meeting %s is free.\n", c.LetterID, dash(c.Meeting))
			return nil
		},
	}
	withdraw.Flags().StringVar(&wreason, "reason", "", "why (required; audited)")

	var rto, rreason string
	reinstate := &cobra.Command{
		Use:   "reinstate LETTER-ID [--to MEETING] --reason TEXT",
		Short: "Undo a withdrawal (audited): the referral waits for the council again, in its own meeting or the one --to names",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(rreason) == "" {
				return fail(exitUsage, "--reason: say why (it goes to the audit log)")
			}
			var c council.Child
			if printed, err := o.fetch(cmd, "POST", "/api/v1/referrals/"+url.PathEscape(args[0])+"/reinstate", nil, map[string]any{"meeting": rto, "reason": rreason}, &c); err != nil || printed {
				return err
			}
			if c.Meeting == "" {
				fmt.Fprintf(o.out, "Referral %s is reinstated; it waits for a meeting with room.\n", c.LetterID)
				return nil
			}
			fmt.Fprintf(o.out, "Referral %s is reinstated in meeting %s.\n", c.LetterID, c.Meeting)
			return nil
		},
	}
	reinstate.Flags().StringVar(&rto, "to", "", "the meeting it goes to (default: its own, if that lies ahead and has room)")
	reinstate.Flags().StringVar(&rreason, "reason", "", "why (required; audited)")
	r.AddCommand(list, move, withdraw, reinstate)
	return r
}

func kpiCmd(o *options) *cobra.Command {
	var months int
	k := &cobra.Command{
		Use:   "kpi [--months N]",
		Short: "The council's figures: referrals per month, lead time to recommendation, per practice, turned down by child psychiatry",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if months < 1 || months > 60 {
				return fail(exitUsage, "--months: must be between 1 and 60")
			}
			var k council.KPI
			if printed, err := o.fetch(cmd, "GET", "/api/v1/kpi", url.Values{"months": {strconv.Itoa(months)}}, nil, &k); err != nil || printed {
				return err
			}
			printKPI(o, k)
			return nil
		},
	}
	k.Flags().IntVar(&months, "months", 12, "whole months, the current one included (1-60)")
	return k
}

// duration writes a lead time in days, or hours and minutes when short.
func duration(secs float64) string {
	d := time.Duration(secs * float64(time.Second))
	if d >= 48*time.Hour {
		return fmt.Sprintf("%.1f days", secs/86400)
	}
	return d.Round(time.Second).String()
}

func printKPI(o *options, k council.KPI) {
	w := o.out
	fmt.Fprintf(w, "Council figures %s to %s (%s)\n", k.From.Format("2006-01-02"), k.To.AddDate(0, 0, -1).Format("2006-01-02"), k.Zone)
	if !k.KeptFrom.IsZero() {
		fmt.Fprintf(w, "Months before %s are not kept (council.retention_days is %d days): the figures count from %s.\n",
			k.KeptFrom.Format("2006-01"), k.RetentionDays, k.KeptFrom.Format("2006-01-02"))
	}
	fmt.Fprintf(w, "Referrals: %d\n", k.Referrals)
	if k.LeadTime.Count > 0 {
		fmt.Fprintf(w, "Lead time referral → recommendation: median %s, 90th percentile %s (%d recommendations)\n", duration(k.LeadTime.MedianSeconds), duration(k.LeadTime.P90Seconds), k.LeadTime.Count)
	} else {
		fmt.Fprintln(w, "Lead time referral → recommendation: no recommendations in the period")
	}
	if k.Rejections.Configured {
		fmt.Fprintf(w, "Turned down by child psychiatry: %d (rules: %s)\n", k.Rejections.Total, strings.Join(k.Rejections.Rules, ", "))
	} else {
		fmt.Fprintln(w, "Turned down by child psychiatry: not counted (no council.rejections rule configured)")
	}
	fmt.Fprintf(w, "Unanswered now (no recommendation after %g days): %d\n\n", k.WatchDays, k.Unanswered)
	tw := o.table()
	fmt.Fprintln(tw, "MONTH\tREFERRALS\tRECOMMENDED\tMEDIAN LEAD TIME\tP90 LEAD TIME\tTURNED DOWN")
	for _, m := range k.Months {
		if m.NotKept != "" {
			fmt.Fprintf(tw, "%s\tnot kept\tnot kept\t-\t-\tnot kept\n", m.Month)
			continue
		}
		med, p90 := "-", "-"
		if m.LeadTime.Count > 0 {
			med, p90 = duration(m.LeadTime.MedianSeconds), duration(m.LeadTime.P90Seconds)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%d\n", m.Month, m.Referrals, m.Recommended, med, p90, m.Rejections)
	}
	_ = tw.Flush()
	if len(k.PerPractice) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw = o.table()
	fmt.Fprintln(tw, "PRACTICE\tGLN\tSOR\tREFERRALS")
	for _, p := range k.PerPractice {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", dash(p.Name), dash(p.GLN), dash(p.SOR), p.Referrals)
	}
	_ = tw.Flush()
}
