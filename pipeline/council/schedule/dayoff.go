package schedule

import (
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
