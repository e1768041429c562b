package schedule

import (
	"strings"
	"testing"
	"time"
)

func TestParseAndIn(t *testing.T) {
	cph, _ := time.LoadLocation("Europe/Copenhagen")
	for _, c := range []struct {
		rule  string
		year  int
		month time.Month
		want  string
	}{
		{"second tuesday 13:00", 2026, time.March, "2026-03-10T13:00:00+01:00"},
		{"Second Tuesday, 13:00", 2026, time.September, "2026-09-08T13:00:00+02:00"}, // summer time
		{"anden tirsdag 13.00", 2026, time.February, "2026-02-10T13:00:00+01:00"},
		{"first monday 9:30", 2026, time.June, "2026-06-01T09:30:00+02:00"},       // the 1st is a Monday
		{"last thursday 15:00", 2026, time.December, "2026-12-31T15:00:00+01:00"}, // the 31st is a Thursday
		{"sidste fredag 08:00", 2026, time.February, "2026-02-27T08:00:00+01:00"}, // February's last day is a Saturday
		{"fourth wednesday 12:00", 2026, time.April, "2026-04-22T12:00:00+02:00"},
	} {
		r, err := Parse(c.rule, "Europe/Copenhagen")
		if err != nil {
			t.Fatalf("%s: %v", c.rule, err)
		}
		got := r.In(c.year, c.month)
		if got.Format(time.RFC3339) != c.want || got.Location().String() != cph.String() {
			t.Errorf("%s in %s %d = %s, want %s", c.rule, c.month, c.year, got.Format(time.RFC3339), c.want)
		}
	}
}

func TestParseRefusesWithTheReason(t *testing.T) {
	for rule, want := range map[string]string{
		"tuesday 13:00":             "week of the month",
		"fifth tuesday 13:00":       `"fifth" is not a week`,
		"second tuesdy 13:00":       `"tuesdy" is not a weekday`,
		"second tuesday 25:00":      "not a time of day",
		"second tuesday at 13:00 x": "week of the month",
	} {
		if _, err := Parse(rule, "Europe/Copenhagen"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want an error saying %q", rule, err, want)
		}
	}
	if _, err := Parse("second tuesday 13:00", "Europe/Kbh"); err == nil || !strings.Contains(err.Error(), "time zone") {
		t.Errorf("an unknown zone: %v", err)
	}
}

func TestBetween(t *testing.T) {
	r, _ := Parse("second tuesday 13:00", "Europe/Copenhagen")
	from := time.Date(2026, 3, 10, 13, 0, 0, 0, r.Loc) // exactly a meeting: included
	to := time.Date(2026, 6, 9, 13, 0, 0, 0, r.Loc)    // exactly a meeting: excluded
	var ids []string
	for _, m := range r.Between(from, to) {
		ids = append(ids, r.ID(m))
	}
	if got := strings.Join(ids, " "); got != "2026-03-10 2026-04-14 2026-05-12" {
		t.Errorf("meetings %s", got)
	}
	// Across a year end, from a time zone other than the rule's.
	ids = ids[:0]
	for _, m := range r.Between(time.Date(2026, 12, 20, 0, 0, 0, 0, time.UTC), time.Date(2027, 2, 28, 0, 0, 0, 0, time.UTC)) {
		ids = append(ids, r.ID(m))
	}
	if got := strings.Join(ids, " "); got != "2027-01-12 2027-02-09" {
		t.Errorf("meetings across the year end: %s", got)
	}
}

func TestParseTimeAndDanish(t *testing.T) {
	r, _ := Parse("second tuesday 13:00", "Europe/Copenhagen")
	for _, s := range []string{"2026-03-24 13:00", "2026-03-24T13:00", "2026-03-24T12:00:00Z"} {
		got, err := r.ParseTime(s)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if got.In(r.Loc).Format("2006-01-02 15:04") != "2026-03-24 13:00" {
			t.Errorf("%s read as %s", s, got.In(r.Loc))
		}
	}
	if _, err := r.ParseTime("24/3 kl. 13"); err == nil || !strings.Contains(err.Error(), "Europe/Copenhagen") {
		t.Errorf("a time in another shape: %v", err)
	}
	if got := Danish(r.In(2026, time.March)); got != "tirsdag den 10. marts 2026 kl. 13.00" {
		t.Errorf("Danish: %q", got)
	}
	if got := r.String(); got != "second tuesday 13:00" {
		t.Errorf("String: %q", got)
	}
}

// A local time the clocks skip or pass twice is refused, not moved an hour
// or guessed: the meeting would not be when the coordinator typed.
func TestParseTimeAcrossTheClockChanges(t *testing.T) {
	r, _ := Parse("second tuesday 13:00", "Europe/Copenhagen")
	for s, want := range map[string]string{
		"2026-03-29 02:30": "does not exist in Europe/Copenhagen",
		"2026-10-25 02:30": "happens twice in Europe/Copenhagen",
		"2026-02-29 13:00": "must be a date and time",
	} {
		if got, err := r.ParseTime(s); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseTime(%q) = %v, %v; want an error saying %q", s, got, err, want)
		}
	}
	for s, want := range map[string]string{
		"2026-03-29 01:30":          "2026-03-29T01:30:00+01:00",
		"2026-03-29 03:00":          "2026-03-29T03:00:00+02:00",
		"2026-10-25 01:59":          "2026-10-25T01:59:00+02:00",
		"2026-10-25 03:00":          "2026-10-25T03:00:00+01:00",
		"2028-02-29 13:00":          "2028-02-29T13:00:00+01:00",
		"2026-10-25T02:30:00+01:00": "2026-10-25T02:30:00+01:00",
		"2026-12-31 9:05":           "2026-12-31T09:05:00+01:00",
	} {
		got, err := r.ParseTime(s)
		if err != nil || got.In(r.Loc).Format(time.RFC3339) != want {
			t.Errorf("ParseTime(%q) = %v, %v; want %s", s, got, err, want)
		}
	}
}

// DayOff names Denmark's public holidays and the customary closing days
// as the year has them (Store bededag was abolished from 2024), and not an
// ordinary working day.
func TestDayOffNamesDanishHolidays(t *testing.T) {
	cph, err := time.LoadLocation("Europe/Copenhagen")
	if err != nil {
		t.Fatal(err)
	}
	first, err := Parse("first thursday 13:00", "Europe/Copenhagen")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		at   time.Time
		want string
	}{
		{first.In(2027, time.May), "Kristi Himmelfartsdag"}, // 6 May 2027
		{time.Date(2026, 4, 2, 13, 0, 0, 0, cph), "Skærtorsdag"},
		{time.Date(2026, 4, 6, 13, 0, 0, 0, cph), "Anden påskedag"},
		{time.Date(2023, 5, 5, 13, 0, 0, 0, cph), "Store bededag"},
		{time.Date(2024, 4, 26, 13, 0, 0, 0, cph), ""}, // Store bededag's date, abolished
		{time.Date(2026, 6, 5, 9, 0, 0, 0, cph), "Grundlovsdag"},
		{time.Date(2026, 12, 24, 10, 0, 0, 0, cph), "Juleaftensdag"},
		{time.Date(2026, 12, 31, 10, 0, 0, 0, cph), "Nytårsaftensdag"},
		{time.Date(2027, 1, 1, 10, 0, 0, 0, cph), "Nytårsdag"},
		{time.Date(2026, 3, 10, 13, 0, 0, 0, cph), ""},
		{time.Date(2026, 12, 23, 23, 30, 0, 0, time.UTC), "Juleaftensdag"}, // 00:30 on the 24th in Copenhagen
	} {
		at := c.at.In(cph)
		if got := DayOff(at); got != c.want {
			t.Errorf("DayOff(%s) = %q, want %q", at.Format(time.RFC3339), got, c.want)
		}
	}
}

// A municipality's own closing days are marked beside the national ones,
// named as configured or as its closing day; an entry that is not a date
// is refused.
func TestClosingDaysAddTheMunicipalitysOwn(t *testing.T) {
	cph, err := time.LoadLocation("Europe/Copenhagen")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseClosingDays([]string{"2026-05-15 Fredag efter Kristi himmelfart", " 2026-12-28 ", "2026-12-24 Lukket"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		at   time.Time
		want string
	}{
		{time.Date(2026, 5, 15, 13, 0, 0, 0, cph), "Fredag efter Kristi himmelfart"},
		{time.Date(2026, 12, 28, 9, 0, 0, 0, cph), "Kommunens lukkedag"},
		{time.Date(2026, 12, 24, 9, 0, 0, 0, cph), "Juleaftensdag"}, // the national name first
		{time.Date(2026, 5, 14, 13, 0, 0, 0, cph), "Kristi Himmelfartsdag"},
		{time.Date(2026, 5, 16, 13, 0, 0, 0, cph), ""},
		{time.Date(2026, 5, 14, 22, 30, 0, 0, time.UTC).In(cph), "Fredag efter Kristi himmelfart"}, // 00:30 on the 15th
	} {
		if got := c.DayOff(tc.at); got != tc.want {
			t.Errorf("DayOff(%s) = %q, want %q", tc.at.Format(time.RFC3339), got, tc.want)
		}
	}
	for _, bad := range []string{"", "15-05-2026", "2026-02-30", "maj 2026"} {
		if _, err := ParseClosingDays([]string{bad}); err == nil || !strings.Contains(err.Error(), "YYYY-MM-DD") {
			t.Errorf("ParseClosingDays(%q) = %v, want a refusal naming the form", bad, err)
		}
	}
}
