package council

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/samhub/samhub/pipeline/letter"
)

// Which meeting takes a referral at the edges of the day, the month, the
// year and the clock changes: the first that starts after it arrived.
func TestReferralsAtTheEdgesOfTheCalendar(t *testing.T) {
	f := newFixture(t, func(k *Options) { k.Meetings.Cap = 10 })
	for _, c := range []struct {
		id   string
		at   time.Time
		want string
	}{
		{"eve", time.Date(2026, 3, 9, 23, 30, 0, 0, cph), "2026-03-10"},          // 22:30 UTC the day before
		{"just-before", time.Date(2026, 3, 10, 12, 59, 0, 0, cph), "2026-03-10"}, // the meeting has not started
		{"at-the-hour", time.Date(2026, 3, 10, 13, 0, 0, 0, cph), "2026-04-14"},  // it has
		{"dst-night", time.Date(2026, 3, 29, 3, 30, 0, 0, cph), "2026-04-14"},
		{"december", time.Date(2026, 12, 8, 13, 30, 0, 0, cph), "2027-01-12"},
		{"new-year", time.Date(2027, 1, 1, 0, 5, 0, 0, cph), "2027-01-12"},
	} {
		f.apply(f.c, f.referral(c.id, c.at, "")) // another child each
		if r, _ := f.c.reg.referral(tokenOf(c.id)); r.Meeting != c.want {
			t.Errorf("a referral at %s takes meeting %q, want %s", c.at, r.Meeting, c.want)
		}
	}
	// The figures count by month in the council's zone: 23:30 on 31 March
	// (21:30 UTC) is March's, 00:30 on 1 April (22:30 UTC on the 31st) April's.
	refs := []Referral{
		{Key: "a", Received: time.Date(2026, 3, 31, 23, 30, 0, 0, cph).UTC()},
		{Key: "b", Received: time.Date(2026, 4, 1, 0, 30, 0, 0, cph).UTC()},
		{Key: "c", Received: time.Date(2025, 12, 31, 23, 30, 0, 0, cph).UTC()},
	}
	k := Figures(refs, nil, FigureOptions{Now: time.Date(2026, 4, 15, 12, 0, 0, 0, time.UTC), Months: 6, Loc: cph, Watch: 35 * 24 * time.Hour})
	got := map[string]int{}
	for _, m := range k.Months {
		got[m.Month] = m.Referrals
	}
	if fmt.Sprint(got) != "map[2025-11:0 2025-12:1 2026-01:0 2026-02:0 2026-03:1 2026-04:1]" || k.From.Format(time.RFC3339) != "2025-11-01T00:00:00+01:00" {
		t.Errorf("months %v from %s", got, k.From)
	}
}

// A meeting moved and then moved back to its planned time is not shown as
// moved.
func TestMovingAMeetingBackUndoesTheMove(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	who := Actor{Name: "koordinator", Role: "coordinator"}
	f.apply(f.c, f.referral("R1", f.clock.now(), "2509479989"))
	if m, err := f.c.MoveMeeting(ctx, who, "2026-03-10", "2026-03-12 09:00", "Lokalet er optaget"); err != nil || m.MovedFrom == nil {
		t.Fatalf("moved: %+v %v", m, err)
	}
	m, err := f.c.MoveMeeting(ctx, who, "2026-03-10", "2026-03-10 13:00", "Lokalet blev ledigt")
	if err != nil {
		t.Fatal(err)
	}
	if m.MovedFrom != nil || m.At.Format(time.RFC3339) != "2026-03-10T13:00:00+01:00" || m.Referrals != 1 {
		t.Errorf("moved back: %+v, moved from %v", m, m.MovedFrom)
	}
	if ms := f.c.Meetings(f.clock.now(), f.clock.now().AddDate(0, 1, 0)); len(ms) != 1 || ms[0].MovedFrom != nil {
		t.Errorf("meetings %+v", ms)
	}
}

// The receipt's note names the meeting the referral was put on (its id),
// not the day that meeting was moved to, which is no meeting's id.
func TestReceiptNamesTheMeetingItWasPutOn(t *testing.T) {
	f := newFixture(t, receiptsOn)
	if _, err := f.c.MoveMeeting(context.Background(), Actor{Name: "koordinator"}, "2026-03-10", "2026-03-12 09:00", "Lokalet er optaget"); err != nil {
		t.Fatal(err)
	}
	f.apply(f.c, f.referral("R1", f.clock.now(), "2509479989"))
	if len(f.hub.receipts) != 1 {
		t.Fatalf("%d receipts", len(f.hub.receipts))
	}
	rc := f.hub.receipts[0]
	if rc.Meta[MetaMeeting] != "2026-03-10" || rc.Meta[MetaReferral] != "R1" {
		t.Errorf("receipt notes %v, want the meeting 2026-03-10", rc.Meta)
	}
	if _, err := f.c.MeetingView(context.Background(), rc.Meta[MetaMeeting]); err != nil {
		t.Errorf("the meeting the receipt names: %v", err)
	}
	if want := "torsdag den 12. marts 2026 kl. 09.00"; !strings.Contains(rc.Text, want) {
		t.Errorf("receipt text %q, want the meeting's new time %q", rc.Text, want)
	}
}

// A recommendation that lands on a referral while it waits for room is
// kept when the referral takes a seat, whether the seat is planned from an
// earlier read of the waiting referral or written before the letter's
// update of the waiting copy is taken away.
func TestALetterOnAWaitingReferralIsKeptWhenItTakesASeat(t *testing.T) {
	f := newFixture(t, func(k *Options) { k.Meetings.Cap = 1 })
	ctx := context.Background()
	who := Actor{Name: "koordinator", Role: "coordinator"}
	// Room for 24 (cap 1, two years): W1 and W2 wait.
	for i := range 24 {
		f.apply(f.c, f.referral(fmt.Sprintf("R%02d", i), f.clock.now().Add(time.Duration(i)*time.Minute), ""))
	}
	f.apply(f.c, f.referral("W1", f.clock.now().Add(time.Hour), "1509819996"))
	f.apply(f.c, f.referral("W2", f.clock.now().Add(time.Hour), "2512489996"))
	var read []Referral // what seatWaiting read before the letters came
	for _, w := range f.c.reg.storedRecords(prefixWaiting) {
		read = append(read, w.Referrals...)
	}
	if len(read) != 2 {
		t.Fatalf("%d referrals waiting, want 2", len(read))
	}
	rec := func(id, to string) *letter.Letter {
		return &letter.Letter{ID: id, Kind: letter.KindRecommendation, Source: "casesys", InReplyTo: to, Received: f.clock.now().Add(2 * time.Hour).UTC()}
	}
	f.apply(f.c, rec("D1", "W1"))
	f.apply(f.c, rec("D2", "W2"))
	if _, err := f.c.AddMeeting(ctx, who, "2026-03-24 13:00", 1, "Ekstra møde"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.c.AddMeeting(ctx, who, "2026-03-26 13:00", 1, "Ekstra møde"); err != nil {
		t.Fatal(err)
	}
	// W1: seated from the earlier read; the register's copy has its
	// recommendation, so it waits for no meeting and stays where it is,
	// with the recommendation (a seat would send its GP a receipt).
	var w1 Referral
	for _, r := range read {
		if r.LetterID == "W1" {
			w1 = r
		}
	}
	if _, err := f.c.place(ctx, []Referral{w1}, true); err != nil {
		t.Fatal(err)
	}
	// W2: its seat written from the earlier read, then taken out of waiting.
	var w2 Referral
	for _, r := range read {
		if r.LetterID == "W2" {
			w2 = r
		}
	}
	w2.Meeting, w2.Assigned = "2026-03-26", f.clock.now().UTC()
	if _, err := update(ctx, f.c.reg, prefixMeeting+"2026-03-26", func(cur *meetingRecord, _ bool) (bool, error) {
		cur.Referrals = append(cur.Referrals, w2)
		return true, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := f.c.leaveWaiting(ctx, []Referral{w2}); err != nil {
		t.Fatal(err)
	}
	for id, meeting := range map[string]string{"W1": "", "W2": "2026-03-26"} {
		r, ok := f.c.reg.referral(tokenOf(id))
		if !ok || r.Meeting != meeting || !r.Answered() {
			t.Errorf("%s: meeting %q, recommendations %v; want %q with its recommendation", id, r.Meeting, r.Recommendations, meeting)
		}
	}
	for _, w := range f.c.reg.storedRecords(prefixWaiting) {
		for _, r := range w.Referrals {
			if r.LetterID != "W1" {
				t.Errorf("still waiting: %s", r.LetterID)
			}
		}
	}
	if n := f.c.unanswered(f.clock.now().Add(60 * 24 * time.Hour)); n != 24 {
		t.Errorf("%d unanswered after the watch, want the 24 seated without a recommendation", n)
	}
}

// A meeting on one of the municipality's own closing days says so too.
func TestAMeetingOnTheMunicipalitysClosingDaySaysSo(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.Meetings.ClosedDays = []string{"2026-04-14 Personaledag"} })
	if m, _ := f.c.Meeting("2026-04-14"); m.DayOff != "Personaledag" {
		t.Errorf("the rule's meeting on 14 April, a closing day: day off %q", m.DayOff)
	}
	if m, _ := f.c.Meeting("2026-03-10"); m.DayOff != "" {
		t.Errorf("the rule's meeting on 10 March: day off %q", m.DayOff)
	}
}

// A meeting on a Danish public holiday says which, whether the rule, the
// coordinator's addition or a move put it there; it still takes referrals.
func TestAMeetingOnADayOffSaysSo(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	who := Actor{Name: "koordinator", Role: "coordinator"}
	if m, _ := f.c.Meeting("2026-03-10"); m.DayOff != "" {
		t.Errorf("the rule's meeting on 10 March: day off %q", m.DayOff)
	}
	m, err := f.c.AddMeeting(ctx, who, "2026-05-14 10:00", 2, "Ekstra møde")
	if err != nil || m.DayOff != "Kristi Himmelfartsdag" || m.Room != 2 {
		t.Errorf("a meeting added on Ascension Day 2026: %+v, %v", m, err)
	}
	if m, err = f.c.MoveMeeting(ctx, who, "2026-03-10", "2026-04-06 13:00", "Lokalet er optaget"); err != nil || m.DayOff != "Anden påskedag" {
		t.Errorf("a meeting moved to Easter Monday 2026: %+v, %v", m, err)
	}
}
