package council

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// Faults the sequence test (sequence_test.go) found, each as its shortest
// sequence.

// A referral that waited for a meeting with room and was answered or
// withdrawn meanwhile waits for no meeting: the watch, seating the
// waiting, leaves it where it is and sends its GP no receipt (before, it
// took a seat and its GP was told the council would take it on a date).
func TestTheWatchSeatsOnlyReferralsThatStillWait(t *testing.T) {
	f := newFixture(t, receiptsOnOnePlace)
	ctx := context.Background()
	who := Actor{Name: "koordinator", Role: "coordinator"}
	f.fillTwoYears()
	f.apply(f.c, f.referral("W1", f.clock.now().Add(time.Hour), "1509819996"))
	f.apply(f.c, f.referral("W2", f.clock.now().Add(time.Hour), "2512489996"))
	f.apply(f.c, recommendation("D1", "W1", f.clock.now().Add(2*time.Hour)))
	if _, err := f.c.WithdrawReferral(ctx, who, "W2", "Sendt ved en fejl"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.c.AddMeeting(ctx, who, "2026-03-24 13:00", 2, "Ekstra møde"); err != nil {
		t.Fatal(err)
	}
	n := len(f.hub.receipts)
	f.clock.set(f.clock.now().Add(6 * time.Hour))
	if err := f.c.seatWaiting(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"W1", "W2"} {
		if r, _ := f.c.reg.referral(tokenOf(id)); r.Meeting != "" {
			t.Errorf("%s (answered or withdrawn while it waited) seated in %s", id, r.Meeting)
		}
	}
	if got := ids(f.hub.receipts[n:]); len(got) != 0 {
		t.Errorf("letters %v to GPs whose referral waits for no meeting", got)
	}
}

// A GP whose referral joined a child's seat after the seat's meeting
// moved was told the new date by its receipt: the watch's round tells it
// no change made before (before, it sent that GP a second letter saying
// the meeting was no longer on a date it had never been told).
func TestALaterReferralIsNotToldAChangeMadeBeforeIt(t *testing.T) {
	f := newFixture(t, receiptsOn)
	ctx := context.Background()
	who := Actor{Name: "koordinator", Role: "coordinator"}
	start := f.clock.now()
	f.apply(f.c, f.referral("R1", start, "2509479989"))
	f.clock.set(start.Add(time.Hour))
	if _, err := f.c.MoveMeeting(ctx, who, "2026-03-10", "2026-03-12 09:00", "Lokalet er optaget"); err != nil {
		t.Fatal(err)
	}
	f.clock.set(start.Add(2 * time.Hour))
	r2 := f.referral("R2", f.clock.now(), "2509479989")
	r2.Sender = practiceOster
	f.apply(f.c, r2)
	if r, _ := f.c.reg.joinedTo(tokenOf("R2")); r.LetterID != "R1" {
		t.Fatalf("R2 joined %q; want R1", r.LetterID)
	}
	for range 2 {
		if err := f.c.retellAll(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.c.MoveReferral(ctx, who, "R1", "2026-03-10", "Gentaget"); err != nil {
		t.Fatal(err)
	}
	for _, l := range f.newDates() {
		if l.InReplyTo == "R2" {
			t.Errorf("R2's GP, told 12 March by its receipt, got %s", l.ID)
		}
	}
	if got := ids(f.newDates()); len(got) != 1 {
		t.Errorf("new date letters %v; want R1's alone", got)
	}
}

// A meeting moved to a time that has passed tells no GP (the date has
// passed); moved ahead again, its GPs are told the new date and, as the
// one they knew, the date they were told (before, the past date no letter
// had named: "not as previously told" a date they never had).
func TestANewDateNamesTheDateTheGPWasTold(t *testing.T) {
	f := newFixture(t, receiptsOn)
	ctx := context.Background()
	who := Actor{Name: "koordinator", Role: "coordinator"}
	start := f.clock.now()
	f.apply(f.c, f.referral("R1", start, "2509479989"))
	f.apply(f.c, f.referral("B1", start, "1509819996"))
	f.clock.set(start.Add(time.Hour))
	if _, err := f.c.MoveMeeting(ctx, who, "2026-03-10", "2026-02-27 13:00", "Holdt tidligere"); err != nil {
		t.Fatal(err)
	}
	if got := f.newDates(); len(got) != 0 {
		t.Fatalf("letters %v for a date that has passed", ids(got))
	}
	f.clock.set(start.Add(2 * time.Hour))
	if _, err := f.c.MoveMeeting(ctx, who, "2026-03-10", "2026-03-12 09:00", "Lokalet er optaget"); err != nil {
		t.Fatal(err)
	}
	f.clock.set(start.Add(3 * time.Hour))
	if _, err := f.c.MoveReferral(ctx, who, "B1", "2026-04-14", "Sagen er ikke klar"); err != nil {
		t.Fatal(err)
	}
	got := f.newDates()
	if len(got) != 3 {
		t.Fatalf("new date letters %v; want R1's and B1's for 12 March, B1's for 14 April", ids(got))
	}
	for i, was := range []string{"tirsdag den 10. marts 2026 kl. 13.00", "tirsdag den 10. marts 2026 kl. 13.00", "torsdag den 12. marts 2026 kl. 09.00"} {
		if !strings.Contains(got[i].Text, "ikke som tidligere meddelt "+was+".") {
			t.Errorf("%s names another date the GP knew than %s", got[i].ID, was)
		}
	}
}

// snapshot is the register's records as the copy in memory holds them.
func snapshot(c *Council) string {
	c.reg.mu.RLock()
	defer c.reg.mu.RUnlock()
	keys := make([]string, 0, len(c.reg.records))
	for k := range c.reg.records {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		v, _ := json.Marshal(c.reg.records[k].v)
		fmt.Fprintf(&b, "%s=%s\n", k, v)
	}
	return b.String()
}

// A withdrawn referral's meeting moves (its GP, waiting for nothing, is
// not told); reinstated, the GP is told the meeting's date now, and the
// date it was told as the one before, whether the referral goes back to
// its own meeting or to another (before, its own meeting's GP heard
// nothing and kept the old date, and another meeting's letter named the
// moved date as the one the GP had been told).
func TestAReinstatedReferralsGPIsToldTheDateItsMeetingMovedTo(t *testing.T) {
	f := newFixture(t, receiptsOn)
	ctx := context.Background()
	who := Actor{Name: "koordinator", Role: "coordinator"}
	start := f.clock.now()
	f.apply(f.c, f.referral("R1", start, "2509479989"))
	f.apply(f.c, f.referral("B1", start, "1509819996"))
	for i, id := range []string{"R1", "B1"} {
		f.clock.set(start.Add(time.Duration(i+1) * time.Minute))
		if _, err := f.c.WithdrawReferral(ctx, who, id, "Sendt ved en fejl"); err != nil {
			t.Fatal(err)
		}
	}
	f.clock.set(start.Add(time.Hour))
	if _, err := f.c.MoveMeeting(ctx, who, "2026-03-10", "2026-03-12 09:00", "Lokalet er optaget"); err != nil {
		t.Fatal(err)
	}
	if got := f.newDates(); len(got) != 0 {
		t.Fatalf("letters %v to GPs of withdrawn referrals", ids(got))
	}
	f.clock.set(start.Add(2 * time.Hour))
	if _, err := f.c.ReinstateReferral(ctx, who, "R1", "", "Forældrene gav samtykke igen"); err != nil {
		t.Fatal(err)
	}
	f.clock.set(start.Add(3 * time.Hour))
	if _, err := f.c.ReinstateReferral(ctx, who, "B1", "2026-04-14", "Forældrene gav samtykke igen"); err != nil {
		t.Fatal(err)
	}
	got := f.newDates()
	want := map[string]string{
		"R1": "torsdag den 12. marts 2026 kl. 09.00 og ikke som tidligere meddelt tirsdag den 10. marts 2026 kl. 13.00.",
		"B1": "tirsdag den 14. april 2026 kl. 13.00 og ikke som tidligere meddelt tirsdag den 10. marts 2026 kl. 13.00.",
	}
	if len(got) != 2 {
		t.Fatalf("new date letters %v; want one to R1's GP, one to B1's", ids(got))
	}
	for _, l := range got {
		if !strings.Contains(l.Text, want[l.InReplyTo]) {
			t.Errorf("%s (to %s's GP) names other dates than %q", l.ID, l.InReplyTo, want[l.InReplyTo])
		}
	}
}

// A referral that waited more than seven days for a meeting with room
// gets its receipt when the watch seats it: its GP was told no date
// (before, the receipt was left out as if the register were built anew,
// the GP never heard which meeting took the child, and a later move of
// that meeting told the GP it was "no longer" on a date never told).
func TestAReferralThatWaitedLongGetsItsReceiptWhenSeated(t *testing.T) {
	f := newFixture(t, receiptsOnOnePlace)
	ctx := context.Background()
	n := f.waitedNineDays()
	if err := f.c.seatWaiting(ctx); err != nil {
		t.Fatal(err)
	}
	if r, _ := f.c.reg.referral(tokenOf("W1")); r.Meeting != "2026-03-24" {
		t.Fatalf("W1 in %q; want the added meeting", r.Meeting)
	}
	got := f.hub.receipts[n:]
	if len(got) != 1 || got[0].ID != ReceiptID("W1") || !strings.Contains(got[0].Text, "tirsdag den 24. marts 2026 kl. 13.00") {
		t.Errorf("letters %v; want W1's receipt naming 24 March", ids(got))
	}
}

// Children waiting for a meeting with room take the places that come
// free in the order they were referred (before, the watch read the
// waiting month by month in a map's order, and a child referred later
// could take the place of one who had waited months longer).
func TestTheWaitingAreSeatedOldestFirst(t *testing.T) {
	f := newFixture(t, func(k *Options) { k.Meetings.Cap = 1 })
	ctx := context.Background()
	who := Actor{Name: "koordinator", Role: "coordinator"}
	f.fillTwoYears()
	var waiting []string
	for i := range 5 {
		// A month on, a filler takes the meeting two years ahead; the
		// month's child waits.
		f.clock.set(time.Date(2026, time.Month(4+i), 2, 9, 0, 0, 0, cph))
		f.apply(f.c, f.referral(fmt.Sprintf("F%d", i), f.clock.now(), ""))
		id := fmt.Sprintf("W%d", i)
		f.apply(f.c, f.referral(id, f.clock.now().Add(time.Minute), ""))
		if r, _ := f.c.reg.referral(tokenOf(id)); r.Meeting != "" {
			t.Fatalf("%s seated in %s; want it waiting", id, r.Meeting)
		}
		waiting = append(waiting, id)
	}
	for i, id := range waiting {
		day := f.clock.now().In(cph).AddDate(0, 0, 3+i)
		if _, err := f.c.AddMeeting(ctx, who, day.Format("2006-01-02")+" 13:00", 1, "Ekstra møde"); err != nil {
			t.Fatal(err)
		}
		if err := f.c.seatWaiting(ctx); err != nil {
			t.Fatal(err)
		}
		if r, _ := f.c.reg.referral(tokenOf(id)); r.Meeting != day.Format("2006-01-02") {
			t.Fatalf("the place added on %s went elsewhere than to %s, the child waiting longest (%s is in %q)", day.Format("2006-01-02"), id, id, r.Meeting)
		}
	}
}

// A meeting added on the day of a cancelled one takes its record, and
// keeps the referrals withdrawn there (before, they were dropped with the
// cancelled record: gone from the lists, the figures and the meeting
// page, and a reinstatement found no referral).
func TestAMeetingAddedOnACancelledDayKeepsItsWithdrawnReferrals(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	who := Actor{Name: "koordinator", Role: "coordinator"}
	f.apply(f.c, f.referral("R1", f.clock.now(), "2509479989"))
	if _, err := f.c.WithdrawReferral(ctx, who, "R1", "Sendt ved en fejl"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.c.CancelMeeting(ctx, who, "2026-03-10", "Sommerferie"); err != nil {
		t.Fatal(err)
	}
	m, err := f.c.AddMeeting(ctx, who, "2026-03-10 15:00", 0, "Mødet holdes alligevel")
	if err != nil {
		t.Fatal(err)
	}
	if m.Referrals != 0 || m.Withdrawn != 1 || m.Room != 6 {
		t.Errorf("the added meeting %+v; want R1 listed as withdrawn, every place free", m)
	}
	if got := f.c.Referrals(ReferralFilter{State: "withdrawn"}); len(got) != 1 || got[0].LetterID != "R1" {
		t.Fatalf("withdrawn referrals %v; want R1", got)
	}
	if ch, err := f.c.ReinstateReferral(ctx, who, "R1", "", "Forældrene gav samtykke igen"); err != nil || ch.State != "waiting" || ch.Meeting != "2026-03-10" {
		t.Errorf("R1 reinstated: %s in %q, %v", ch.State, ch.Meeting, err)
	}
}

// waitedNineDays refers W1 when every meeting is full and, nine days on,
// adds a meeting with one place on 24 March; it returns how many receipts
// went before the watch seats W1.
func (f *fixture) waitedNineDays() int {
	f.t.Helper()
	f.fillTwoYears()
	f.apply(f.c, f.referral("W1", f.clock.now().Add(time.Hour), "1509819996"))
	f.clock.set(f.clock.now().Add(9 * 24 * time.Hour))
	if _, err := f.c.AddMeeting(context.Background(), Actor{Name: "koordinator", Role: "coordinator"}, "2026-03-24 13:00", 1, "Ekstra møde"); err != nil {
		f.t.Fatal(err)
	}
	return len(f.hub.receipts)
}
