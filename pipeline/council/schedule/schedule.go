// Package schedule reads the council's meeting rule ("second tuesday 13:00"
// in a time zone) and lists the meetings it makes. It knows no broker and no
// configuration loader, so configuration checks and the council register
// read the rule the same way.
package schedule

import (
	"errors"
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // the zone must load on a minimal container image too
)

// Rule is a monthly meeting: the nth (or last) weekday of every month at a
// time of day, in a zone.
type Rule struct {
	// Week is 1–4 for the first to fourth such weekday of the month, or -1
	// for the last.
	Week    int
	Weekday time.Weekday
	Hour    int
	Minute  int
	Loc     *time.Location
}

var ordinals = map[string]int{
	"first": 1, "second": 2, "third": 3, "fourth": 4, "last": -1,
	"1st": 1, "2nd": 2, "3rd": 3, "4th": 4,
	"første": 1, "anden": 2, "tredje": 3, "fjerde": 4, "sidste": -1,
	"1.": 1, "2.": 2, "3.": 3, "4.": 4,
}

var weekdays = map[string]time.Weekday{
	"monday": time.Monday, "tuesday": time.Tuesday, "wednesday": time.Wednesday, "thursday": time.Thursday, "friday": time.Friday,
	"saturday": time.Saturday, "sunday": time.Sunday,
	"mandag": time.Monday, "tirsdag": time.Tuesday, "onsdag": time.Wednesday, "torsdag": time.Thursday, "fredag": time.Friday,
	"lørdag": time.Saturday, "søndag": time.Sunday,
}

// Example is how a rule is written.
const Example = `"second tuesday 13:00" (or in Danish "anden tirsdag 13:00")`

// Parse reads a rule such as "second tuesday 13:00", "last Thursday, 9:30"
// or "anden tirsdag 13.00" in the named zone (an IANA name such as
// Europe/Copenhagen).
func Parse(rule, zone string) (Rule, error) {
	var r Rule
	loc, err := time.LoadLocation(zone)
	if err != nil || zone == "" {
		return r, fmt.Errorf("zone %q is not a time zone name such as Europe/Copenhagen", zone)
	}
	r.Loc = loc
	f := strings.Fields(strings.ToLower(strings.ReplaceAll(rule, ",", " ")))
	if len(f) != 3 {
		return r, fmt.Errorf("%q: write the week of the month, a weekday and a time, e.g. %s", rule, Example)
	}
	var ok bool
	if r.Week, ok = ordinals[f[0]]; !ok {
		return r, fmt.Errorf("%q: %q is not a week of the month (first, second, third, fourth or last)", rule, f[0])
	}
	if r.Weekday, ok = weekdays[f[1]]; !ok {
		return r, fmt.Errorf("%q: %q is not a weekday (monday … sunday)", rule, f[1])
	}
	hm, err := time.Parse("15:04", strings.Replace(f[2], ".", ":", 1))
	if err != nil {
		return r, fmt.Errorf("%q: %q is not a time of day such as 13:00", rule, f[2])
	}
	r.Hour, r.Minute = hm.Hour(), hm.Minute()
	return r, nil
}

// In returns the rule's meeting in a month.
func (r Rule) In(year int, month time.Month) time.Time {
	if r.Week < 0 {
		last := time.Date(year, month+1, 0, r.Hour, r.Minute, 0, 0, r.Loc)
		back := (int(last.Weekday()) - int(r.Weekday) + 7) % 7
		return last.AddDate(0, 0, -back)
	}
	first := time.Date(year, month, 1, r.Hour, r.Minute, 0, 0, r.Loc)
	ahead := (int(r.Weekday) - int(first.Weekday()) + 7) % 7
	return first.AddDate(0, 0, ahead+7*(r.Week-1))
}

// Between lists the rule's meetings at or after from and before to, in order.
func (r Rule) Between(from, to time.Time) []time.Time {
	var out []time.Time
	m := from.In(r.Loc)
	y, mo := m.Year(), m.Month()
	for {
		t := r.In(y, mo)
		if !t.Before(to) {
			return out
		}
		if !t.Before(from) {
			out = append(out, t)
		}
		if mo == time.December {
			y, mo = y+1, time.January
		} else {
			mo++
		}
	}
}

// ID names a meeting by its local date, e.g. 2026-03-10.
func (r Rule) ID(t time.Time) string { return t.In(r.Loc).Format(time.DateOnly) }

// String writes the rule back in English.
func (r Rule) String() string {
	week := map[int]string{1: "first", 2: "second", 3: "third", 4: "fourth", -1: "last"}[r.Week]
	return fmt.Sprintf("%s %s %02d:%02d", week, strings.ToLower(r.Weekday.String()), r.Hour, r.Minute)
}

// ParseTime reads a meeting time the coordinator types: RFC 3339, or a
// local date and time in the rule's zone ("2026-03-24 13:00",
// "2026-03-24T13:00").
func (r Rule) ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02 15:04", "2006-01-02T15:04", "2006-01-02 15.04"} {
		if wall, err := time.Parse(layout, s); err == nil {
			return r.resolve(wall)
		}
	}
	return time.Time{}, errors.New("must be a date and time such as 2026-03-24 13:00 (in " + r.Loc.String() + ") or RFC 3339")
}

// resolve finds the instant a wall-clock time (read as UTC) names in the
// rule's zone. time.Date would quietly move a time the clocks skip (02:30
// on the last Sunday of March) an hour, and pick one of the two instants
// of a time that happens twice (the last Sunday of October): an audited
// meeting would then not be at the time typed, so both are refused.
func (r Rule) resolve(wall time.Time) (time.Time, error) {
	var found []time.Time
	seen := map[int]bool{}
	// The zone's offsets within a few hours either side are the candidates.
	for _, probe := range []time.Duration{-3 * time.Hour, 0, 3 * time.Hour} {
		_, off := wall.Add(probe).In(r.Loc).Zone()
		if seen[off] {
			continue
		}
		seen[off] = true
		t := wall.Add(-time.Duration(off) * time.Second).In(r.Loc)
		if t.Year() == wall.Year() && t.YearDay() == wall.YearDay() && t.Hour() == wall.Hour() && t.Minute() == wall.Minute() {
			found = append(found, t)
		}
	}
	local := wall.Format("2006-01-02 15:04")
	switch {
	case len(found) == 0:
		return time.Time{}, fmt.Errorf("%s does not exist in %s (the clocks are put forward that night); choose another time", local, r.Loc)
	case len(found) > 1 && !found[0].Equal(found[1]):
		return time.Time{}, fmt.Errorf("%s happens twice in %s (the clocks are put back that night); write it in RFC 3339 with its offset, e.g. %s",
			local, r.Loc, found[0].Format(time.RFC3339))
	}
	return found[0], nil
}

var (
	daWeekdays = [...]string{"søndag", "mandag", "tirsdag", "onsdag", "torsdag", "fredag", "lørdag"}
	daMonths   = [...]string{"januar", "februar", "marts", "april", "maj", "juni", "juli", "august", "september", "oktober", "november", "december"}
)

// Danish writes a meeting time as a Danish letter does:
// "tirsdag den 10. marts 2026 kl. 13.00".
func Danish(t time.Time) string {
	return fmt.Sprintf("%s den %s kl. %02d.%02d", DanishWeekday(t), DanishDate(t), t.Hour(), t.Minute())
}

// DanishDate writes a date as "10. marts 2026".
func DanishDate(t time.Time) string {
	return fmt.Sprintf("%d. %s %d", t.Day(), daMonths[t.Month()-1], t.Year())
}

// DanishWeekday is the weekday's Danish name, e.g. "tirsdag".
func DanishWeekday(t time.Time) string { return daWeekdays[t.Weekday()] }
