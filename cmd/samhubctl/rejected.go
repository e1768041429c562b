package main

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// rejectedCmd is the input the sources refused and set aside (the MedCom
// drop folder's error/): what operations looks at when SamhubInputRejected
// fires, and the coordinator's put-back once the cause is fixed. The
// console's Rejected files page does the same.
func rejectedCmd(o *options) *cobra.Command {
	r := &cobra.Command{
		Use:   "rejected",
		Short: "Input the sources refused and set aside (MedCom error/): list it, put a file back to be read again",
	}
	var limit int
	list := &cobra.Command{
		Use:   "list [--limit N]",
		Short: "List refused input, newest first: source, id, when, code, whether the sender was answered, why",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var v struct {
				Entries []struct {
					Source, ID, Code, Reason string
					Size                     int64
					At                       time.Time
					Answered                 bool
				}
			}
			q := url.Values{}
			if limit > 0 {
				q.Set("limit", strconv.Itoa(limit))
			}
			if printed, err := o.fetch(cmd, "GET", "/api/v1/rejected", q, nil, &v); err != nil || printed {
				return err
			}
			if len(v.Entries) == 0 {
				fmt.Fprintln(o.out, "No refused input is set aside.")
				return nil
			}
			tw := o.table()
			fmt.Fprintln(tw, "SOURCE\tID\tREFUSED\tCODE\tSIZE\tSENDER ANSWERED\tWHY")
			for _, e := range v.Entries {
				answered := "no"
				if e.Answered {
					answered = "yes (negative)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", e.Source, e.ID, ts(e.At), e.Code, e.Size, answered, e.Reason)
			}
			return tw.Flush()
		},
	}
	list.Flags().IntVar(&limit, "limit", 0, "at most this many (default 500, at most 5000)")
	var reason string
	putBack := &cobra.Command{
		Use:   "put-back SOURCE ID --reason TEXT",
		Short: "Give a refused file back to its source to be read again, once its cause is fixed (audited, needs --reason)",
		Long: `Gives a refused file back to its source (MedCom: back into in/), which reads
it as if it had just arrived. Refused when the sender was already answered
for a letter of the file: MedCom repeats the same answer to a copy, so ask
the sender to send the letter again under a new letter id instead.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(reason) == "" {
				return fail(exitUsage, "--reason: say why the file may be read again (it goes to the audit log)")
			}
			path := "/api/v1/rejected/" + url.PathEscape(args[0]) + "/" + url.PathEscape(args[1]) + "/put-back"
			var v struct{ PutBack bool }
			if printed, err := o.fetch(cmd, "POST", path, nil, map[string]any{"reason": reason}, &v); err != nil || printed {
				return err
			}
			fmt.Fprintf(o.out, "Put back: %s reads %s again.\n", args[0], args[1])
			return nil
		},
	}
	putBack.Flags().StringVar(&reason, "reason", "", "why (required; audited, no personal data)")
	r.AddCommand(list, putBack)
	return r
}
