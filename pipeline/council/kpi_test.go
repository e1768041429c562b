package council

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestFigures(t *testing.T) {
	day := func(y int, m time.Month, d, h int) time.Time { return time.Date(y, m, d, h, 0, 0, 0, cph) }
	aero := Org{Name: "Lægehuset Ærø", GLN: "5790000000005"}
	oster := Org{Name: "Lægerne i Østergade", GLN: "5790000000029"}
	rec := func(at time.Time) []Ref { return []Ref{{LetterID: "rec", Received: at}} }
	refs := []Referral{
		// Before the window (March 2025): not counted, but its recommendation
		// in April 2025 is, in the window's first month.
		{Key: "a", Received: day(2025, 3, 31, 23), GP: aero, Recommendations: rec(day(2025, 4, 10, 12))},
		// The window's first day, local time (UTC is still March 31st).
		{Key: "b", Received: day(2025, 4, 1, 0).Add(30 * time.Minute), GP: aero, Recommendations: rec(day(2025, 4, 3, 0).Add(30 * time.Minute))},
		{Key: "c", Received: day(2026, 2, 2, 9), GP: oster, Recommendations: []Ref{{Received: day(2026, 3, 20, 9)}, {Received: day(2026, 3, 2, 9)}}}, // the first is 28 days
		{Key: "d", Received: day(2026, 2, 3, 9), GP: Org{Name: "Lægerne i Østergade (ny)", GLN: "5790000000029"}, Recommendations: rec(day(2026, 3, 5, 9))},
		{Key: "e", Received: day(2026, 3, 1, 9), GP: oster},                    // waiting: due April 5th
		{Key: "f", Received: day(2026, 1, 20, 9), GP: Org{Name: "", SOR: "1"}}, // unanswered (a practice known by SOR only)
	}
	rejections := []Rejection{{Received: day(2026, 3, 10, 9)}, {Received: day(2025, 3, 10, 9)}}
	k := Figures(refs, rejections, FigureOptions{Now: day(2026, 3, 31, 12), Months: 12, Loc: cph, Watch: 35 * 24 * time.Hour, WatchDays: 35, RejectionRules: []string{"bup"}})

	if k.From.Format(time.RFC3339) != "2025-04-01T00:00:00+02:00" || k.To.Format(time.RFC3339) != "2026-04-01T00:00:00+02:00" || len(k.Months) != 12 || k.Months[0].Month != "2025-04" || k.Months[11].Month != "2026-03" {
		t.Fatalf("window %s – %s, months %v", k.From, k.To, k.Months)
	}
	if k.Referrals != 5 || k.Months[0].Referrals != 1 || k.Months[10].Referrals != 2 || k.Months[11].Referrals != 1 || k.Months[9].Referrals != 1 {
		t.Errorf("referrals %d, per month %+v", k.Referrals, k.Months)
	}
	// Lead times: a 9 d 13 h, b 2 d, c 28 d, d 30 d (the DST change on
	// March 29th is after all of them).
	days := func(d float64) float64 { return d * 86400 }
	a := days(9) + 13*3600
	if k.LeadTime.Count != 4 {
		t.Fatalf("lead time %+v", k.LeadTime)
	}
	// Sorted: 2, 9.54, 28, 30 days. Median between 9.54 and 28; p90 at
	// rank 2.7: 28 + 0.7 × 2.
	wantMedian, wantP90 := (a+days(28))/2, days(28)+0.7*days(2)
	if fmt.Sprintf("%.0f %.0f", k.LeadTime.MedianSeconds, k.LeadTime.P90Seconds) != fmt.Sprintf("%.0f %.0f", wantMedian, wantP90) || k.LeadTime.MedianDays != 18.8 || k.LeadTime.P90Days != 29.4 {
		t.Errorf("lead time %+v, want median %.0f s, p90 %.0f s", k.LeadTime, wantMedian, wantP90)
	}
	if m := k.Months[0]; m.Recommended != 2 || m.LeadTime.Count != 2 {
		t.Errorf("April 2025: %+v", m)
	}
	if m := k.Months[11]; m.Recommended != 2 || m.LeadTime.MedianSeconds != days(29) || m.Rejections != 1 {
		t.Errorf("March 2026: %+v", m)
	}
	if k.Unanswered != 1 || k.Rejections.Total != 1 || !k.Rejections.Configured {
		t.Errorf("unanswered %d, rejections %+v", k.Unanswered, k.Rejections)
	}
	got := fmt.Sprint(k.PerPractice)
	// The newest name a practice used; named practices before those known
	// by number only.
	want := "[{{Lægerne i Østergade 5790000000029  } 3} {{Lægehuset Ærø 5790000000005  } 1} {{  1 } 1}]"
	if got != want {
		t.Errorf("per practice %s, want %s", got, want)
	}
	if empty := Figures(nil, nil, FigureOptions{Now: day(2026, 3, 31, 12), Loc: cph}); empty.LeadTime.Count != 0 || len(empty.Months) != 12 || empty.PerPractice == nil || empty.Rejections.Configured {
		t.Errorf("no referrals: %+v", empty)
	}
}

// A child referred again while its referral was open is one referral in
// the figures; a second practice that referred it counts for that
// practice, a practice's own supplement does not count twice.
func TestFiguresCountAChildReferredAgainOnce(t *testing.T) {
	aero := Org{Name: "Lægehuset Ærø", GLN: "5790000000005"}
	oster := Org{Name: "Lægerne i Østergade", GLN: "5790000000029"}
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	refs := []Referral{{Key: "a", Received: at, GP: aero, Joined: []Joined{
		{Key: "b", Received: at.Add(24 * time.Hour), GP: aero},
		{Key: "c", Received: at.Add(48 * time.Hour), GP: oster},
	}}}
	k := Figures(refs, nil, FigureOptions{Now: at.AddDate(0, 0, 10), Months: 12, Loc: time.UTC, Watch: 35 * 24 * time.Hour})
	var practices []string
	for _, p := range k.PerPractice {
		practices = append(practices, fmt.Sprintf("%s:%d", p.Name, p.Referrals))
	}
	if k.Referrals != 1 || k.Joined != 2 || fmt.Sprint(practices) != "[Lægehuset Ærø:1 Lægerne i Østergade:1]" {
		t.Errorf("referrals %d, joined %d, practices %v", k.Referrals, k.Joined, practices)
	}
}

// Months before the register's retention are "not kept", not 0: their
// figures are null in JSON with the reason, and the totals count only the
// months kept (a month the retention cuts through is not kept whole).
func TestFiguresSayWhatIsNotKept(t *testing.T) {
	day := func(y int, m time.Month, d, h int) time.Time { return time.Date(y, m, d, h, 0, 0, 0, cph) }
	refs := []Referral{
		{Key: "old", Received: day(2025, 2, 26, 9)}, // still in the register, but its month is cut through
		{Key: "new", Received: day(2025, 3, 2, 9), Recommendations: []Ref{{Received: day(2025, 3, 20, 9)}}},
	}
	// 400 days before 2026-03-31 12:00 is 2025-02-24: March 2025 is the
	// first month kept whole.
	k := Figures(refs, []Rejection{{Received: day(2025, 2, 25, 9)}}, FigureOptions{Now: day(2026, 3, 31, 12), Months: 24, Loc: cph, RejectionRules: []string{"bup"}, Retention: 400 * 24 * time.Hour})
	if k.KeptFrom.Format(time.RFC3339) != "2025-03-01T00:00:00+01:00" || k.RetentionDays != 400 {
		t.Fatalf("kept from %s, retention %d days", k.KeptFrom, k.RetentionDays)
	}
	for _, m := range k.Months {
		if notKept := m.Month < "2025-03"; notKept != (m.NotKept != "") {
			t.Errorf("month %s: notKept %q", m.Month, m.NotKept)
		}
	}
	if k.Referrals != 1 || k.Rejections.Total != 0 || k.LeadTime.Count != 1 || len(k.PerPractice) != 1 {
		t.Errorf("totals %d referrals, %d rejections, %d lead times, %v: want only March 2025 on", k.Referrals, k.Rejections.Total, k.LeadTime.Count, k.PerPractice)
	}
	b, err := json.Marshal(k.Months[10]) // 2025-02
	if err != nil {
		t.Fatal(err)
	}
	if got := string(b); !strings.Contains(got, `"month":"2025-02","referrals":null,"recommended":null,"leadTime":null,"rejections":null,"notKept":"`) || !strings.Contains(got, "retention_days") {
		t.Errorf("a month not kept in JSON: %s", got)
	}
	var back Month
	if err := json.Unmarshal(b, &back); err != nil || back.NotKept == "" || back.Month != "2025-02" {
		t.Errorf("read back %+v, %v", back, err)
	}
	if b, _ := json.Marshal(k.Months[11]); strings.Contains(string(b), "null") || strings.Contains(string(b), "notKept") {
		t.Errorf("a month kept in JSON: %s", b)
	}
	// Without a retention (or within it) every month is kept.
	if all := Figures(refs, nil, FigureOptions{Now: day(2026, 3, 31, 12), Months: 24, Loc: cph}); !all.KeptFrom.IsZero() || all.Referrals != 2 || all.Months[0].NotKept != "" {
		t.Errorf("no retention: %+v", all)
	}
}
