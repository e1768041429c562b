package schedule

import (
	"fmt"
	"strings"
	"time"

	"github.com/rickar/cal/v2"
	"github.com/rickar/cal/v2/dk"
)

// closed are the days Danish public offices do not work: the public
// holidays (rickar/cal's, which knows Store bededag ended in 2023) and the
// customary closing days on the eves of Christmas and New Year.
var closed = append([]*cal.Holiday{
	{Name: "Juleaftensdag", Type: cal.ObservanceOther, Month: time.December, Day: 24, Func: cal.CalcDayOfMonth},
	{Name: "Nytårsaftensdag", Type: cal.ObservanceOther, Month: time.December, Day: 31, Func: cal.CalcDayOfMonth},
}, dk.Holidays...)

// DayOff names the day of t, in t's location, when it is a Danish public
// holiday or closing day (e.g. "Kristi Himmelfartsdag"); "" otherwise.
// Weekends are not named: a rule may put meetings there on purpose.
func DayOff(t time.Time) string {
	y, m, d := t.Date()
	for _, h := range closed {
		if a, _ := h.Calc(y); !a.IsZero() {
			if ay, am, ad := a.Date(); ay == y && am == m && ad == d {
				return h.Name
			}
		}
	}
	return ""
}

// ClosingDays are a municipality's own closing days beside the national
// ones (council.meetings.closed_days), by local date: a day it closes its
// offices, such as the Friday after Ascension Day, which no calendar knows.
type ClosingDays map[string]string

// ParseClosingDays reads entries "YYYY-MM-DD", optionally followed by the
// day's name ("2026-05-15 Fredag efter Kristi himmelfart"); a day without a
// name is called "Kommunens lukkedag".
func ParseClosingDays(entries []string) (ClosingDays, error) {
	out := ClosingDays{}
	for _, e := range entries {
		date, name, _ := strings.Cut(strings.TrimSpace(e), " ")
		if _, err := time.Parse(time.DateOnly, date); err != nil {
			return nil, fmt.Errorf("must be a date YYYY-MM-DD, optionally followed by the day's name (got %q)", e)
		}
		if name = strings.TrimSpace(name); name == "" {
			name = "Kommunens lukkedag"
		}
		out[date] = name
	}
	return out, nil
}

// DayOff names the day of t, in t's location, when it is a Danish public
// holiday or closing day or one of these; "" otherwise.
func (c ClosingDays) DayOff(t time.Time) string {
	if n := DayOff(t); n != "" {
		return n
	}
	return c[t.Format(time.DateOnly)]
}
