package config

import (
	"fmt"
	"io"
	"strings"
	"text/template"

	"github.com/samhub/samhub/pipeline/council"
	"github.com/samhub/samhub/pipeline/council/schedule"
)

// validateCouncil checks the council block, naming the key at fault.
func (c *Config) validateCouncil(bad func(key, msg string, args ...any)) {
	k := c.Council
	if !k.Enabled {
		return
	}
	if _, err := schedule.Parse(k.Meetings.Rule, k.Meetings.Zone); err != nil {
		key := "council.meetings.rule"
		if strings.HasPrefix(err.Error(), "zone ") {
			key = "council.meetings.zone"
		}
		bad(key, "%v", err)
	}
	if k.Meetings.Cap < 1 || k.Meetings.Cap > 100 {
		bad("council.meetings.cap", "must be between 1 and 100 referrals per meeting (default 6)")
	}
	if k.Meetings.CutoffDays < 0 || k.Meetings.CutoffDays > 60 {
		bad("council.meetings.cutoff_days", "must be between 0 and 60 days before a meeting (default 0)")
	}
	for i, d := range k.Meetings.ClosedDays {
		if _, err := schedule.ParseClosingDays([]string{d}); err != nil {
			bad(fmt.Sprintf("council.meetings.closed_days[%d]", i), "%v", err)
		}
	}
	if k.WatchDays <= 0 || k.WatchDays > 366 {
		bad("council.watch_days", "must be more than 0 and at most 366 days (default 35)")
	}
	if k.RetentionDays < 400 {
		bad("council.retention_days", "must be at least 400 days, so the council's figures cover twelve whole months (default 760)")
	}
	if r := k.Receipt; r.Enabled {
		if d, ok := c.Destinations[r.Destination]; !ok {
			bad("council.receipt.destination", "must name a destination of sector gp that sends to the referring GP (got %q)", r.Destination)
		} else if d.Sector != "gp" {
			bad("council.receipt.destination", "must be a destination of sector gp; %q is %s", r.Destination, d.Sector)
		}
		if err := checkReceiptTemplate(r.Template, false); err != nil {
			bad("council.receipt.template", "%v", err)
		}
		if err := checkReceiptTemplate(r.MovedTemplate, true); err != nil {
			bad("council.receipt.moved_template", "%v", err)
		}
	}
	names := map[string]bool{}
	for i, r := range k.Rejections {
		key := fmt.Sprintf("council.rejections[%d]", i)
		if r.Name == "" {
			bad(key+".name", "must not be empty")
		} else if names[r.Name] {
			bad(key+".name", "duplicate rule name %q", r.Name)
		}
		names[r.Name] = true
		m := r.Match
		if len(m.Kind)+len(m.Source)+len(m.Category)+len(m.Sender)+len(m.Receiver)+len(m.Format)+len(r.Words) == 0 {
			bad(key+".match", "matches every letter; name the child psychiatry's sender (GLN or SOR), a source, kind or category, or words")
		}
		for _, kd := range m.Kind {
			if !contains(kinds, kd) {
				bad(key+".match.kind", "%q is not one of %s", kd, strings.Join(kinds, ", "))
			}
		}
		for _, s := range m.Source {
			if _, ok := c.Adapters[s]; !ok {
				bad(key+".match.source", "names unknown adapter %q", s)
			}
		}
		for _, w := range r.Words {
			if strings.TrimSpace(w) == "" {
				bad(key+".words", "must not hold an empty word (it would match every letter)")
			}
		}
	}
}

// checkReceiptTemplate parses the receipt template and writes it once with
// sample values, so a field it names that does not exist fails at start;
// moved is the new date's template, which may also use .Before.
func checkReceiptTemplate(s string, moved bool) error {
	if moved && s == "" {
		return nil // the default (a configuration built in Go, not read)
	}
	if strings.TrimSpace(s) == "" {
		return fmt.Errorf("must not be empty")
	}
	t, err := template.New("receipt").Option("missingkey=error").Parse(s)
	if err != nil {
		return fmt.Errorf("is not a valid template: %v", err)
	}
	f := council.ReceiptFields{Date: "10. marts 2026", Time: "13.00", Weekday: "tirsdag", Council: "Samrådet", Practice: "Lægehuset"}
	fields := ".Date, .Time, .Weekday, .Council, .Practice"
	if moved {
		f.Before, fields = "tirsdag den 3. marts 2026 kl. 13.00", fields+", .Before"
	}
	if err := t.Execute(io.Discard, f); err != nil {
		return fmt.Errorf("cannot be written (it may use only %s): %v", fields, err)
	}
	if !moved && strings.Contains(s, ".Before") {
		return fmt.Errorf("cannot use .Before: a receipt tells the first date (use council.receipt.moved_template for a new one)")
	}
	return nil
}
