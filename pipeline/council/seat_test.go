package council

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/samhub/samhub/pipeline/letter"
)

// The coordinator moves a child the council did not reach to a later
// meeting: the seat goes with its later referral, frees its place, keeps
// its clock, and says where it came from; audited. Joined referrals,
// answered ones, meetings held and full ones are refused with a reason.
func TestTheCoordinatorMovesAChildsSeat(t *testing.T) {
	f := newFixture(t, func(k *Options) { k.Meetings.Cap = 2 })
	ctx := context.Background()
	who := Actor{Name: "koordinator", Role: "coordinator"}
	start := f.clock.now() // the first meeting is on 10 March, the next on 14 April
	f.referredTwice("R", "2509479989", start)
	f.apply(f.c, f.referral("B1", start.Add(2*24*time.Hour), "1509819996"))
	f.apply(f.c, f.referral("C1", start.Add(3*24*time.Hour), "2512489996")) // the first meeting is full: 14 April
	f.clock.set(start.Add(8 * 24 * time.Hour))

	if _, err := f.c.MoveReferral(ctx, who, "R1", "2026-04-14", " "); !errors.Is(err, ErrReasonRequired) {
		t.Errorf("no reason: %v", err)
	}
	if _, err := f.c.MoveReferral(ctx, who, "R2", "2026-04-14", "Sagen er ikke klar"); !errors.Is(err, ErrNotSeat) || !strings.Contains(err.Error(), "R1") {
		t.Errorf("a joined referral: %v", err)
	}
	if _, err := f.c.MoveReferral(ctx, who, "R1", "2026-02-10", "Sagen er ikke klar"); !errors.Is(err, ErrNoMeeting) && !errors.Is(err, ErrBadTime) {
		t.Errorf("a meeting held: %v", err)
	}
	if _, err := f.c.MoveReferral(ctx, who, "NOPE", "2026-04-14", "Sagen er ikke klar"); !errors.Is(err, ErrNoReferral) {
		t.Errorf("no such referral: %v", err)
	}

	ch, err := f.c.MoveReferral(ctx, who, "R1", "2026-04-14", "Sagen er ikke klar")
	if err != nil {
		t.Fatal(err)
	}
	if ch.Meeting != "2026-04-14" || ch.MovedFrom != "2026-03-10" || !ch.Received.Equal(start) || len(ch.LaterReferrals) != 1 || ch.LaterReferrals[0].LetterID != "R2" {
		t.Errorf("the moved seat %+v", ch)
	}
	seats := func() string {
		var out []string
		for _, id := range []string{"2026-03-10", "2026-04-14"} {
			v, err := f.c.MeetingView(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, c := range v.Children {
				ids = append(ids, c.LetterID)
			}
			out = append(out, fmt.Sprintf("%s:%v room %d", id, ids, v.Meeting.Room))
		}
		return strings.Join(out, " ")
	}
	if got, want := seats(), "2026-03-10:[B1] room 1 2026-04-14:[C1 R1] room 0"; got != want {
		t.Errorf("seats %s, want %s", got, want)
	}
	recs, _ := f.audit.Tail(ctx, 1)
	if len(recs) != 1 || recs[0].Action != "referral-move" || recs[0].Target != "referral:R1 from:2026-03-10 to:2026-04-14" || recs[0].Reason != "Sagen er ikke klar" {
		t.Errorf("audit %+v", recs)
	}
	// A letter answering the later referral still finds the seat.
	f.apply(f.c, &letter.Letter{ID: "N1", Kind: letter.KindNote, Source: "epj", ThreadID: "episode-R2", Received: f.clock.now().UTC()})
	if r, _ := f.c.reg.referral(tokenOf("R1")); len(r.Documents) != 1 {
		t.Errorf("R1's documents %+v", r.Documents)
	}

	if _, err := f.c.MoveReferral(ctx, who, "B1", "2026-04-14", "Sagen er ikke klar"); !errors.Is(err, ErrNoRoom) {
		t.Errorf("a full meeting: %v", err)
	}
	f.apply(f.c, recommendation("D1", "B1", f.clock.now()))
	if _, err := f.c.MoveReferral(ctx, who, "B1", "2026-05-12", "Sagen er ikke klar"); !errors.Is(err, ErrAnswered) {
		t.Errorf("an answered referral: %v", err)
	}
}

// A move is two writes. Killed between them, the old meeting still lists
// the seat: the register and the views place it where it went, and moving
// it again finishes the move, keeping what reached the old copy meanwhile.
// Should both copies carry the same assignment time (gap 0), the register
// places the seat by the record written last; moving again still finishes.
func TestAMoveCutShortIsFinishedByMovingAgain(t *testing.T) {
	for _, gap := range []time.Duration{time.Hour, 0} {
		t.Run(gap.String(), func(t *testing.T) { moveCutShort(t, gap) })
	}
}

func moveCutShort(t *testing.T, gap time.Duration) {
	f := newFixture(t, nil)
	ctx := context.Background()
	who := Actor{Name: "koordinator", Role: "coordinator"}
	start := f.clock.now()
	f.apply(f.c, f.referral("R1", start, "2509479989"))
	f.apply(f.c, f.referral("B1", start, "1509819996"))
	p, _ := f.c.reg.referral(tokenOf("R1"))

	// The first write only, as a move killed after it leaves it; the old
	// copy then gets a document (a letter applied from the old copy).
	f.clock.set(start.Add(gap))
	now := f.clock.now().UTC()
	if _, err := update(ctx, f.c.reg, prefixMeeting+"2026-04-14", func(cur *meetingRecord, exists bool) (bool, error) {
		*cur = meetingRecord{ID: "2026-04-14", At: time.Date(2026, 4, 14, 11, 0, 0, 0, time.UTC), Origin: "rule"}
		r := p
		r.Meeting, r.Assigned, r.MovedFrom = "2026-04-14", now, "2026-03-10"
		cur.Referrals = append(cur.Referrals, r)
		return true, nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := update(ctx, f.c.reg, prefixMeeting+"2026-03-10", func(cur *meetingRecord, exists bool) (bool, error) {
		i := cur.index(tokenOf("R1"))
		cur.Referrals[i].Documents = append(cur.Referrals[i].Documents, Ref{LetterID: "N1", Kind: "note", Received: now})
		return true, nil
	}); err != nil {
		t.Fatal(err)
	}
	if gap > 0 {
		// A second replica reading the records from the start agrees.
		c2, _ := open(t, f.js, f.clock, f.hub, newOptions(nil))
		for _, c := range []*Council{f.c, c2} {
			if r, _ := c.reg.referral(tokenOf("R1")); r.Meeting != "2026-04-14" {
				t.Errorf("the register places R1 in %q; want where it went", r.Meeting)
			}
			if v, _ := c.MeetingView(ctx, "2026-03-10"); len(v.Children) != 1 || v.Meeting.Referrals != 1 {
				t.Errorf("the old meeting shows %d children (%d referrals); want B1 alone", len(v.Children), v.Meeting.Referrals)
			}
		}
	}

	if _, err := f.c.MoveReferral(ctx, who, "R1", "2026-04-14", "Afslut flytningen"); err != nil {
		t.Fatal(err)
	}
	if got := f.c.reg.recordsWith(tokenOf("R1")); fmt.Sprint(got) != "[m.2026-04-14]" {
		t.Errorf("R1 is listed by %v", got)
	}
	if r, _ := f.c.reg.referral(tokenOf("R1")); r.Meeting != "2026-04-14" || len(r.Documents) != 1 || r.Documents[0].LetterID != "N1" || r.MovedFrom != "2026-03-10" {
		t.Errorf("R1 after the move was finished: %+v", r)
	}
}

// A child waiting for a meeting with room (every meeting two years ahead
// full) is seated by moving it into a meeting the coordinator added; the
// waiting list no longer holds it.
func TestAWaitingChildIsSeatedByAMove(t *testing.T) {
	f := newFixture(t, func(k *Options) { k.Meetings.Cap = 1 })
	ctx := context.Background()
	who := Actor{Name: "koordinator", Role: "coordinator"}
	f.fillTwoYears() // cap 1: W1 waits
	f.apply(f.c, f.referral("W1", f.clock.now().Add(time.Hour), "1509819996"))
	if r, _ := f.c.reg.referral(tokenOf("W1")); r.Meeting != "" {
		t.Fatalf("W1 seated in %s; want it waiting", r.Meeting)
	}
	if _, err := f.c.AddMeeting(ctx, who, "2026-03-24 13:00", 2, "Ekstra møde"); err != nil {
		t.Fatal(err)
	}
	ch, err := f.c.MoveReferral(ctx, who, "W1", "2026-03-24", "Ekstra møde til de ventende")
	if err != nil {
		t.Fatal(err)
	}
	if ch.Meeting != "2026-03-24" || ch.MovedFrom != "" {
		t.Errorf("W1 after the move: meeting %q, moved from %q", ch.Meeting, ch.MovedFrom)
	}
	if got := f.c.reg.recordsWith(tokenOf("W1")); fmt.Sprint(got) != "[m.2026-03-24]" {
		t.Errorf("W1 is listed by %v", got)
	}
	recs, _ := f.audit.Tail(ctx, 1)
	if len(recs) != 1 || recs[0].Target != "referral:W1 from:waiting to:2026-03-24" {
		t.Errorf("audit %+v", recs)
	}
}

// A meeting that will not be held (a summer break) is cancelled once its
// children are moved: it seats no one after, new referrals take the next
// meeting, and a meeting added that day later takes its place. Audited.
func TestAMeetingIsCancelledOnceItsChildrenAreMoved(t *testing.T) {
	f := newFixture(t, func(k *Options) { k.Meetings.Cap = 2 })
	ctx := context.Background()
	who := Actor{Name: "koordinator", Role: "coordinator"}
	start := f.clock.now()
	f.apply(f.c, f.referral("R1", start, "2509479989"))

	if _, err := f.c.CancelMeeting(ctx, who, "2026-03-10", "Sommerferie"); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("cancelling a meeting with a child: %v", err)
	}
	if _, err := f.c.CancelMeeting(ctx, who, "2026-03-10", ""); !errors.Is(err, ErrReasonRequired) {
		t.Errorf("no reason: %v", err)
	}
	if _, err := f.c.MoveReferral(ctx, who, "R1", "2026-04-14", "Mødet aflyses"); err != nil {
		t.Fatal(err)
	}
	m, err := f.c.CancelMeeting(ctx, who, "2026-03-10", "Mødet aflyses")
	if err != nil {
		t.Fatal(err)
	}
	if m.Cancelled == nil || m.Room != 0 || m.Referrals != 0 {
		t.Errorf("the cancelled meeting %+v", m)
	}
	if _, err := f.c.CancelMeeting(ctx, who, "2026-03-10", "igen"); err != nil {
		t.Errorf("cancelling again: %v", err)
	}
	recs, _ := f.audit.Tail(ctx, 1)
	if len(recs) != 1 || recs[0].Action != "meeting-cancel" || recs[0].Reason != "Mødet aflyses" {
		t.Errorf("audit %+v", recs)
	}
	f.apply(f.c, f.referral("B1", start.Add(time.Hour), "1509819996"))
	if r, _ := f.c.reg.referral(tokenOf("B1")); r.Meeting != "2026-04-14" {
		t.Errorf("a new referral took %q; want the next meeting held", r.Meeting)
	}
	if _, err := f.c.MoveReferral(ctx, who, "B1", "2026-03-10", "x"); !errors.Is(err, ErrNoRoom) {
		t.Errorf("a move into the cancelled meeting: %v", err)
	}
	if _, err := f.c.CancelMeeting(ctx, who, "2026-02-10", "x"); !errors.Is(err, ErrBadTime) && !errors.Is(err, ErrNoMeeting) {
		t.Errorf("cancelling a meeting held: %v", err)
	}

	// The council can meet that day after all: an added meeting takes the
	// cancelled one's place and seats the next referral.
	added, err := f.c.AddMeeting(ctx, who, "2026-03-10 15:00", 0, "Vi mødes alligevel")
	if err != nil {
		t.Fatal(err)
	}
	if added.Cancelled != nil || added.Origin != "added" || added.Room != 2 {
		t.Errorf("the meeting added that day %+v", added)
	}
	f.apply(f.c, f.referral("C1", start.Add(2*time.Hour), "2512489996"))
	if r, _ := f.c.reg.referral(tokenOf("C1")); r.Meeting != "2026-03-10" {
		t.Errorf("C1 took %q; want the meeting added on 10 March", r.Meeting)
	}
}

// With council.meetings.cutoff_days a referral takes a meeting at least
// that many days ahead, so the members can read it first.
func TestACutoffSeatsLateReferralsInTheNextMeeting(t *testing.T) {
	f := newFixture(t, func(k *Options) { k.Meetings.CutoffDays = 7 })
	start := f.clock.now() // Sunday 1 March; meetings on 10 March and 14 April
	f.apply(f.c, f.referral("R1", start, "2509479989"))
	late := start.Add(4 * 24 * time.Hour) // five days before the meeting
	f.clock.set(late)
	f.apply(f.c, f.referral("R2", late, "1509819996"))
	for id, want := range map[string]string{"R1": "2026-03-10", "R2": "2026-04-14"} {
		if r, _ := f.c.reg.referral(tokenOf(id)); r.Meeting != want {
			t.Errorf("%s seated in %q, want %s", id, r.Meeting, want)
		}
	}
}

// A seat freed in a meeting already held (the child moved on, as the
// council did not reach it) seats no waiting referral: the waiting take
// meetings ahead only.
func TestAWaitingReferralIsNotSeatedInAMeetingHeld(t *testing.T) {
	f := newFixture(t, func(k *Options) { k.Meetings.Cap = 1 })
	ctx := context.Background()
	who := Actor{Name: "koordinator", Role: "coordinator"}
	f.fillTwoYears() // cap 1: W1 waits
	f.apply(f.c, f.referral("W1", f.clock.now().Add(time.Hour), "1509819996"))
	f.clock.set(time.Date(2026, 3, 12, 9, 0, 0, 0, cph)) // the 10 March meeting is held
	if _, err := f.c.AddMeeting(ctx, who, "2026-03-24 13:00", 1, "Ekstra møde"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.c.MoveReferral(ctx, who, "R00", "2026-03-24", "Samrådet nåede ikke sagen"); err != nil {
		t.Fatal(err)
	}
	if err := f.c.seatWaiting(ctx); err != nil {
		t.Fatal(err)
	}
	if r, _ := f.c.reg.referral(tokenOf("W1")); r.Meeting != "" {
		t.Errorf("W1 seated in %s, a meeting held; want it still waiting", r.Meeting)
	}
}

// A referral the coordinator withdraws (sent by mistake, consent
// withdrawn) stays on its meeting's page as withdrawn, frees its place, is
// not watched or counted unanswered, and the child's next referral takes a
// seat of its own. Audited; moving it is refused.
func TestAWithdrawnReferralTakesNoPlace(t *testing.T) {
	f := newFixture(t, func(k *Options) { k.Meetings.Cap = 2 })
	ctx := context.Background()
	who := Actor{Name: "koordinator", Role: "coordinator"}
	start := f.clock.now()
	f.apply(f.c, f.referral("R1", start, "2509479989"))
	f.apply(f.c, f.referral("B1", start.Add(time.Minute), "1509819996"))

	if _, err := f.c.WithdrawReferral(ctx, who, "R1", ""); !errors.Is(err, ErrReasonRequired) {
		t.Errorf("no reason: %v", err)
	}
	ch, err := f.c.WithdrawReferral(ctx, who, "R1", "Henvist ved en fejl")
	if err != nil {
		t.Fatal(err)
	}
	if ch.State != "withdrawn" || ch.Withdrawn == nil || ch.Meeting != "2026-03-10" {
		t.Errorf("the withdrawn referral %+v", ch)
	}
	if _, err := f.c.WithdrawReferral(ctx, who, "R1", "igen"); err != nil {
		t.Errorf("withdrawing again: %v", err)
	}
	recs, _ := f.audit.Tail(ctx, 5)
	n := 0
	for _, r := range recs {
		if r.Action == "referral-withdraw" {
			n++
			if r.Target != "referral:R1 meeting:2026-03-10" || r.Reason != "Henvist ved en fejl" {
				t.Errorf("audit %+v", r)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d withdrawals audited, want 1", n)
	}
	v, err := f.c.MeetingView(ctx, "2026-03-10")
	if err != nil {
		t.Fatal(err)
	}
	if v.Meeting.Referrals != 1 || v.Meeting.Room != 1 || v.Meeting.Withdrawn != 1 || len(v.Children) != 2 {
		t.Errorf("the meeting %+v with %d children; want R1 listed, withdrawn, and its place free", v.Meeting, len(v.Children))
	}
	if _, err := f.c.MoveReferral(ctx, who, "R1", "2026-04-14", "x"); !errors.Is(err, ErrWithdrawn) {
		t.Errorf("moving a withdrawn referral: %v", err)
	}

	// Its place is free; Bruno's next referral takes a seat of its own.
	f.apply(f.c, f.referral("C1", start.Add(time.Hour), "2512489996"))
	f.apply(f.c, f.referral("R2", start.Add(2*time.Hour), "2509479989"))
	for id, want := range map[string]string{"C1": "2026-03-10", "R2": "2026-04-14"} {
		if r, _ := f.c.reg.referral(tokenOf(id)); r.Meeting != want {
			t.Errorf("%s seated in %q, want %s", id, r.Meeting, want)
		}
	}

	// Past the watch: R1 is neither flagged nor counted unanswered.
	f.clock.set(start.Add(40 * 24 * time.Hour))
	if err := f.c.Watch(ctx, f.clock.now()); err != nil {
		t.Fatal(err)
	}
	if r, _ := f.c.reg.referral(tokenOf("R1")); !r.Flagged.IsZero() {
		t.Error("the withdrawn referral was flagged")
	}
	if g := gaugeValue(t, f.reg, "samhub_referrals_unanswered"); g != 3 {
		t.Errorf("unanswered gauge %v, want 3 (B1, C1, R2)", g)
	}
	if k := f.c.KPI(12); k.Unanswered != 3 || k.Referrals != 4 {
		t.Errorf("figures: %d unanswered of %d; want 3 of 4", k.Unanswered, k.Referrals)
	}
}

// fillTwoYears seats referrals R00 to R23, each of another child, in the
// 24 meetings of the next two years, each meeting's one place (cap 1).
func (f *fixture) fillTwoYears() {
	f.t.Helper()
	for i := range 24 {
		f.apply(f.c, f.referral(fmt.Sprintf("R%02d", i), f.clock.now().Add(time.Duration(i)*time.Minute), ""))
	}
}

// A withdrawal made by mistake is undone: the referral takes its place
// back when its meeting still has room, or goes to another meeting (as a
// move); refused while the child has another referral waiting, or when no
// place is free. Audited; reinstating twice changes nothing.
func TestAWithdrawalIsUndone(t *testing.T) {
	f := newFixture(t, func(k *Options) { k.Meetings.Cap = 2 })
	ctx := context.Background()
	who := Actor{Name: "koordinator", Role: "coordinator"}
	start := f.clock.now()
	f.apply(f.c, f.referral("R1", start, "2509479989"))
	f.apply(f.c, f.referral("B1", start, "1509819996"))
	if _, err := f.c.WithdrawReferral(ctx, who, "R1", "Sendt ved en fejl"); err != nil {
		t.Fatal(err)
	}
	f.apply(f.c, f.referral("C1", start.Add(time.Hour), "2512489996")) // takes the place R1 freed

	if _, err := f.c.ReinstateReferral(ctx, who, "R1", "", " "); !errors.Is(err, ErrReasonRequired) {
		t.Errorf("no reason: %v", err)
	}
	if _, err := f.c.ReinstateReferral(ctx, who, "R1", "", "Forældrene har givet samtykke igen"); !errors.Is(err, ErrNoRoom) {
		t.Errorf("in place, with the meeting full again: %v", err)
	}
	if _, err := f.c.MoveReferral(ctx, who, "R1", "2026-04-14", "Flyt"); !errors.Is(err, ErrWithdrawn) {
		t.Errorf("a withdrawn referral moved: %v", err)
	}
	ch, err := f.c.ReinstateReferral(ctx, who, "R1", "2026-04-14", "Forældrene har givet samtykke igen")
	if err != nil {
		t.Fatal(err)
	}
	if ch.State != "waiting" || ch.Meeting != "2026-04-14" || ch.Withdrawn != nil || !ch.Received.Equal(start) {
		t.Errorf("reinstated into April: %+v", ch)
	}
	if _, err := f.c.ReinstateReferral(ctx, who, "R1", "2026-04-14", "Forældrene har givet samtykke igen"); err != nil {
		t.Errorf("reinstated twice: %v", err)
	}
	recs, _ := f.audit.Tail(ctx, 10)
	n := 0
	for _, r := range recs {
		if r.Action == "referral-reinstate" {
			n++
			if r.Target != "referral:R1 from:2026-03-10 to:2026-04-14" || r.Reason != "Forældrene har givet samtykke igen" {
				t.Errorf("audit %+v", r)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d reinstatements audited, want 1", n)
	}
	march, _ := f.c.MeetingView(ctx, "2026-03-10")
	april, _ := f.c.MeetingView(ctx, "2026-04-14")
	if len(march.Children) != 2 || march.Meeting.Room != 0 || len(april.Children) != 1 || april.Children[0].LetterID != "R1" || april.Meeting.Room != 1 {
		t.Errorf("March %d children, room %d; April %+v, room %d", len(march.Children), march.Meeting.Room, april.Children, april.Meeting.Room)
	}

	// In place, where the place is still free.
	if _, err := f.c.WithdrawReferral(ctx, who, "C1", "Sendt ved en fejl"); err != nil {
		t.Fatal(err)
	}
	if ch, err = f.c.ReinstateReferral(ctx, who, "C1", "", "Fortrudt"); err != nil || ch.State != "waiting" || ch.Meeting != "2026-03-10" {
		t.Errorf("reinstated in place: %+v, %v", ch, err)
	}

	// Not while the child has another referral waiting: the council takes
	// that one.
	if _, err := f.c.WithdrawReferral(ctx, who, "B1", "Sendt ved en fejl"); err != nil {
		t.Fatal(err)
	}
	f.apply(f.c, f.referral("B2", start.Add(2*time.Hour), "1509819996"))
	if _, err := f.c.ReinstateReferral(ctx, who, "B1", "", "Fortrudt"); !errors.Is(err, ErrChildOpen) || !strings.Contains(err.Error(), "B2") {
		t.Errorf("with the child's later referral waiting: %v", err)
	}
}
