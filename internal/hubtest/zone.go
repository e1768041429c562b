package hubtest

import (
	"time"

	_ "time/tzdata" // the zone loads on hosts without zoneinfo too
)

// Today is the date, and ThisMonth the month, in the zone the console
// shows dates in and the council counts its months in by default
// (Europe/Copenhagen): a day or a month ahead of UTC from 23:00 UTC
// (22:00 in summer), so a test must not take them in the machine's zone.
func Today() string { return time.Now().In(zone).Format("2006-01-02") }

// ThisMonth: see Today.
func ThisMonth() string { return time.Now().In(zone).Format("2006-01") }

var zone = mustZone("Europe/Copenhagen")

func mustZone(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}
