package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/samhub/samhub/pipeline/council"
)

// Months before the register's retention read "not kept", not 0, and the
// totals say from when they count.
func TestKPISaysWhatIsNotKept(t *testing.T) {
	loc, err := time.LoadLocation("Europe/Copenhagen")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 31, 12, 0, 0, 0, loc)
	refs := []council.Referral{{Key: "a", Received: time.Date(2025, 6, 2, 9, 0, 0, 0, loc)}}
	k := council.Figures(refs, nil, council.FigureOptions{Now: now, Months: 24, Loc: loc, Retention: 400 * 24 * time.Hour})
	var out bytes.Buffer
	printKPI(&options{out: &out}, k)
	got := out.String()
	mustHave(t, got, "Months before 2025-03 are not kept (council.retention_days is 400 days): the figures count from 2025-03-01.")
	if !regexp.MustCompile(`(?m)^2025-02 +not kept +not kept +- +- +not kept$`).MatchString(got) {
		t.Errorf("February 2025 is not shown as not kept:\n%s", got)
	}
	if !regexp.MustCompile(`(?m)^2025-06 +1 +0 `).MatchString(got) || strings.Contains(got, "2024-04  0") {
		t.Errorf("months kept:\n%s", got)
	}
}
