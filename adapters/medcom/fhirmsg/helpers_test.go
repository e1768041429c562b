package fhirmsg

import "time"

func fixedNow() time.Time {
	return time.Date(2025, 3, 4, 9, 15, 0, 0, time.FixedZone("CET", 3600))
}
