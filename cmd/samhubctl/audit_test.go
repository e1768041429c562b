package main

import (
	"context"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/samhub/samhub/internal/hubtest"
	"github.com/samhub/samhub/pipeline/council"
	"github.com/samhub/samhub/pipeline/retryq"
)

// ctlCase is one run of samhubctl and the audit action it must leave
// ("" for none).
type ctlCase struct {
	args   []string
	token  string // default: the coordinator's
	action string
	target string // a part of the record's target
}

// TestEveryCommandThatActsIsAudited walks samhubctl's own command tree:
// each command needs its case here, so a command added without one fails.
// A command that takes --reason must have a case that leaves exactly one
// record of its action by the coordinator, with the reason as typed (a
// CPR number in it masked) and a result; the others must leave none.
func TestEveryCommandThatActsIsAudited(t *testing.T) {
	h := hubtest.Start(t)
	ids := dropReferrals(t, h, 3)
	parking := h.ParkWithHold(2)
	entries, hold := parking.Own, parking.Held
	k := h.App.Hub.Council()
	next := k.Referrals(council.ReferralFilter{})[0].Meeting
	var other string
	for _, m := range k.Meetings(time.Now(), time.Now().AddDate(1, 0, 0)) {
		if m.ID != next && !m.Past && m.Cancelled == nil && m.Room > 0 {
			other = m.ID
			break
		}
	}
	setAside(t, h, "taken-early.xml")
	seq := func(e retryq.Entry) string { return strconv.FormatUint(e.Seq, 10) }
	cpr := "1509819996"
	// Every reason names a child the way a coordinator might.
	const why, logged = "forældrene ringede om 250947-9989", "forældrene ringede om [CPR]"
	// In this order: each acts on what the one before left.
	cases := []struct {
		path string
		runs []ctlCase
	}{
		{"samhubctl whoami", []ctlCase{{args: []string{"whoami"}}}},
		{"samhubctl queue list", []ctlCase{{args: []string{"queue", "list"}}, {args: []string{"queue", "list", "--filter", "patient=" + cpr, "--reason", why}, action: "search-cpr", target: "patient:" + retryq.PatientToken(cpr)}}},
		{"samhubctl queue stats", []ctlCase{{args: []string{"queue", "stats"}}}},
		{"samhubctl queue show", []ctlCase{{args: []string{"queue", "show", seq(entries[0])}}}},
		{"samhubctl queue replay", []ctlCase{{args: []string{"queue", "replay", seq(entries[0]), "--dry-run"}}, {args: []string{"queue", "replay", seq(entries[0]), "--reason", why}, action: "replay", target: "parked:" + seq(entries[0])},
			// A replay by filter that matches nothing is refused and leaves none.
			{args: []string{"queue", "replay", "--filter", "destination=nowhere", "--reason", why}}}},
		{"samhubctl queue discard", []ctlCase{{args: []string{"queue", "discard", seq(entries[1]), "--reason", why}, action: "discard", target: "parked:" + seq(entries[1])}}},
		{"samhubctl queue held", []ctlCase{{args: []string{"queue", "held"}}}},
		{"samhubctl queue release", []ctlCase{{args: []string{"queue", "release", "casefile", "0000", "--reason", why}}, {args: []string{"queue", "release", hold.Destination, hold.Thread, "--reason", why}, action: "release-thread", target: "thread:" + hold.Thread}}},
		{"samhubctl queue bulk-replays", []ctlCase{{args: []string{"queue", "bulk-replays"}}}},
		{"samhubctl rejected list", []ctlCase{{args: []string{"rejected", "list"}}, {args: []string{"rejected", "list"}, token: hubtest.OperationsToken}}},
		{"samhubctl rejected put-back", []ctlCase{{args: []string{"rejected", "put-back", "medcom", "taken-early.xml", "--reason", why}, action: "put-back", target: "rejected:medcom:taken-early.xml"}}},
		{"samhubctl letter trace", []ctlCase{{args: []string{"letter", "trace", ids[0]}}}},
		{"samhubctl consent list", []ctlCase{{args: []string{"consent", "list", "--patient", cpr, "--reason", why}, action: "consent-read", target: "patient:" + retryq.PatientToken(cpr)}}},
		{"samhubctl consent record", []ctlCase{{args: []string{"consent", "record", "--patient", cpr, "--scope", "gp", "--given-by", "custody-holder", "--form", "written", "--reason", why}, action: "consent-record", target: "patient:" + retryq.PatientToken(cpr)}}},
		{"samhubctl consent revoke", []ctlCase{{args: []string{"consent", "revoke", "--patient", cpr, "--reason", why}, action: "consent-withdraw", target: "patient:" + retryq.PatientToken(cpr)}}},
		{"samhubctl meeting list", []ctlCase{{args: []string{"meeting", "list"}}}},
		{"samhubctl meeting show", []ctlCase{{args: []string{"meeting", "show", next}}, {args: []string{"meeting", "show", next, "--names", "--reason", why}, action: "agenda-read", target: "meeting:" + next}}},
		{"samhubctl meeting export", []ctlCase{{args: []string{"meeting", "export", next, "--reason", why}, action: "agenda-export", target: "meeting:" + next + " format:csv"}}},
		{"samhubctl meeting add", []ctlCase{{args: []string{"meeting", "add", "--at", "2099-01-20 10:00", "--cap", "3", "--reason", why}, action: "meeting-add", target: "meeting:2099-01-20"}}},
		{"samhubctl meeting move", []ctlCase{{args: []string{"meeting", "move", "2099-01-20", "--at", "2099-01-21 10:00", "--reason", why}, action: "meeting-move", target: "meeting:2099-01-20"}}},
		{"samhubctl meeting cancel", []ctlCase{{args: []string{"meeting", "cancel", "2099-01-20", "--reason", why}, action: "meeting-cancel", target: "meeting:2099-01-20"}}},
		{"samhubctl referral list", []ctlCase{{args: []string{"referral", "list"}}}},
		{"samhubctl referral move", []ctlCase{{args: []string{"referral", "move", ids[0], "--to", other, "--reason", why}, action: "referral-move", target: "referral:" + ids[0] + " from:" + next + " to:" + other}}},
		{"samhubctl referral withdraw", []ctlCase{{args: []string{"referral", "withdraw", ids[1], "--reason", why}, action: "referral-withdraw", target: "referral:" + ids[1]}}},
		{"samhubctl referral reinstate", []ctlCase{{args: []string{"referral", "reinstate", ids[1], "--reason", why}, action: "referral-reinstate", target: "referral:" + ids[1]}}},
		{"samhubctl kpi", []ctlCase{{args: []string{"kpi"}}}},
		{"samhubctl audit tail", []ctlCase{{args: []string{"audit", "tail"}, token: hubtest.AuditorToken}}},
	}

	var leaves []*cobra.Command
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		if !c.HasSubCommands() {
			leaves = append(leaves, c)
		}
		for _, s := range c.Commands() {
			if s.Name() != "help" && s.Name() != "completion" {
				walk(s)
			}
		}
	}
	walk(newRoot(io.Discard, func(string) string { return "" }))
	byPath := map[string][]ctlCase{}
	for _, c := range cases {
		byPath[c.path] = c.runs
	}
	for _, c := range leaves {
		path := c.CommandPath()
		runs, ok := byPath[path]
		if !ok {
			t.Errorf("%s has no audit case: say what it records (or that it changes and reveals nothing)", path)
			continue
		}
		delete(byPath, path)
		audited := false
		for _, r := range runs {
			audited = audited || r.action != ""
		}
		if takesReason := c.Flags().Lookup("reason") != nil; takesReason != audited {
			t.Errorf("%s: takes --reason %v, but a case of it audited %v", path, takesReason, audited)
		}
	}
	for path := range byPath {
		t.Errorf("the audit cases name %q, which samhubctl does not have", path)
	}
	for _, c := range cases {
		for _, r := range c.runs {
			t.Run(strings.Join(r.args, " "), func(t *testing.T) {
				before, err := h.App.Hub.Audit().Tail(context.Background(), 100000)
				if err != nil {
					t.Fatal(err)
				}
				tok := r.token
				if tok == "" {
					tok = hubtest.CoordinatorToken
				}
				code, out, errs := ctl(t, h, tok, r.args...)
				after, err := h.App.Hub.Audit().Tail(context.Background(), 100000)
				if err != nil {
					t.Fatal(err)
				}
				got := after[len(before):]
				if r.action == "" {
					if len(got) > 0 {
						t.Errorf("exit %d; left audit records %+v", code, got)
					}
					return
				}
				if code != 0 {
					t.Fatalf("exit %d: %s %s", code, out, errs)
				}
				if len(got) != 1 {
					t.Fatalf("%d audit records, want 1: %+v", len(got), got)
				}
				rec := got[0]
				if rec.Action != r.action || rec.Actor != "koordinator" || rec.Role != "coordinator" || !strings.Contains(rec.Target, r.target) || rec.Reason != logged || rec.Result == "" {
					t.Errorf("record %+v, want %s of %q with reason %q", rec, r.action, r.target, logged)
				}
			})
		}
	}
}
