package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/samhub/samhub/internal/config"
)

func TestCouncilDefaults(t *testing.T) {
	p := filepath.Join(t.TempDir(), "samhub.yaml")
	if err := os.WriteFile(p, []byte(base), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	k := c.Council
	if !k.Enabled || k.Meetings.Rule != "second tuesday 13:00" || k.Meetings.Zone != "Europe/Copenhagen" || k.Meetings.Cap != 6 ||
		k.WatchDays != 35 || k.RetentionDays != 760 || k.Receipt.Enabled || !strings.Contains(k.Receipt.Template, "Henvisningen er modtaget") {
		t.Errorf("council defaults: %+v", k)
	}
}

func TestCouncilMistakesNameTheKey(t *testing.T) {
	for _, c := range []struct{ name, yaml, want string }{
		{"rule", "council: {meetings: {rule: 'every tuesday'}}\n", "council.meetings.rule: "},
		{"weekday", "council: {meetings: {rule: 'second tusday 13:00'}}\n", `council.meetings.rule: "second tusday 13:00": "tusday" is not a weekday`},
		{"zone", "council: {meetings: {zone: Europe/Kbh}}\n", "council.meetings.zone: "},
		{"cap", "council: {meetings: {cap: 0}}\n", "council.meetings.cap: must be between 1 and 100"},
		{"cutoff", "council: {meetings: {cutoff_days: 61}}\n", "council.meetings.cutoff_days: must be between 0 and 60"},
		{"closed day", "council: {meetings: {closed_days: ['2026-05-15', '15-05-2026 Lukkedag']}}\n", `council.meetings.closed_days[1]: must be a date YYYY-MM-DD, optionally followed by the day's name (got "15-05-2026 Lukkedag")`},
		{"watch", "council: {watch_days: 0}\n", "council.watch_days: must be more than 0"},
		{"retention", "council: {retention_days: 90}\n", "council.retention_days: must be at least 400"},
		{"receipt without destination", "council: {receipt: {enabled: true}}\n", "council.receipt.destination: must name a destination of sector gp"},
		{"receipt to the case file", "council: {receipt: {enabled: true, destination: casefile}}\n", `council.receipt.destination: must be a destination of sector gp; "casefile" is municipality`},
		{"receipt template field", "council: {receipt: {enabled: true, destination: gp, template: 'Mødet {{.Dato}}'}}\n", "council.receipt.template: cannot be written"},
		{"receipt template syntax", "council: {receipt: {enabled: true, destination: gp, template: 'Mødet {{.Date'}}\n", "council.receipt.template: is not a valid template"},
		{"moved template field", "council: {receipt: {enabled: true, destination: gp, moved_template: 'Mødet {{.Før}}'}}\n", "council.receipt.moved_template: cannot be written (it may use only .Date, .Time, .Weekday, .Council, .Practice, .Before)"},
		{"receipt template with a date before", "council: {receipt: {enabled: true, destination: gp, template: 'Mødet {{.Date}}, ikke {{.Before}}'}}\n", "council.receipt.template: cannot use .Before"},
		{"rejection without criteria", "council: {rejections: [{name: bup}]}\n", "council.rejections[0].match: matches every letter"},
		{"rejection name", "council: {rejections: [{match: {sender: ['6071000016008']}}]}\n", "council.rejections[0].name: must not be empty"},
		{"rejection kind", "council: {rejections: [{name: bup, match: {kind: [afvisning]}}]}\n", `council.rejections[0].match.kind: "afvisning" is not one of`},
		{"rejection source", "council: {rejections: [{name: bup, match: {source: [epj]}}]}\n", `council.rejections[0].match.source: names unknown adapter "epj"`},
		{"unanswered needs no new key", "notifications: {destination: casefile, recipients: [a@b.dk], on: [unanswerd]}\n", `notifications.on: "unanswerd" is not one of arrived, parked, answered, unanswered`},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := load(t, base+c.yaml)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
}

func TestCouncilValidBlockLoads(t *testing.T) {
	yaml := base + `council:
  meetings: {rule: "sidste torsdag 9.30", zone: Europe/Copenhagen, cap: 4, closed_days: ["2026-05-15 Fredag efter Kristi himmelfart", "2026-12-28"]}
  watch_days: 0.5
  receipt: {enabled: true, destination: gp, template: "Modtaget; mødet er den {{.Date}}."}
  rejections:
    - {name: bup-afviser, match: {source: [medcom], sender: ["6071000016008"]}, words: [afvis]}
`
	if err := load(t, yaml); err != nil {
		t.Fatal(err)
	}
	// Off, the council block is not checked.
	if err := load(t, base+"council: {enabled: false, meetings: {cap: 0}}\n"); err != nil {
		t.Fatal(err)
	}
}
