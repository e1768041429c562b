package council

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/samhub/samhub/pipeline/letter"
)

// newDates lists the new date letters the hub stored, as "id → text"
// lines, in the order stored.
func (f *fixture) newDates() []*letter.Letter {
	f.hub.mu.Lock()
	defer f.hub.mu.Unlock()
	var out []*letter.Letter
	for _, l := range f.hub.receipts {
		if strings.Contains(l.ID, "@") {
			out = append(out, l)
		}
	}
	return out
}

// When the meeting moves, or the coordinator moves a child to another
// meeting, each GP who referred a child still waiting there is told the
// new date, in its own referral's thread, once; the GPs of an answered or
// a withdrawn referral are not. The child's page lists the letters.
func TestGPsAreToldANewMeetingDate(t *testing.T) {
	f := newFixture(t, receiptsOn)
	ctx := context.Background()
	who := Actor{Name: "koordinator", Role: "coordinator"}
	start := f.clock.now()
	f.referredTwice("R", "2509479989", start) // R1 from Ærø, R2 from Østergade, one seat
	f.apply(f.c, f.referral("B1", start, "1509819996"))
	f.apply(f.c, f.referral("W1", start, "2512489996"))
	f.apply(f.c, recommendation("D1", "B1", start.Add(2*24*time.Hour)))
	if _, err := f.c.WithdrawReferral(ctx, who, "W1", "Sendt ved en fejl"); err != nil {
		t.Fatal(err)
	}
	if got := len(f.hub.receipts); got != 4 {
		t.Fatalf("%d receipts before the move, want 4 (R1, R2, B1, W1)", got)
	}

	f.clock.set(start.Add(3 * 24 * time.Hour))
	moved := f.clock.now()
	if _, err := f.c.MoveMeeting(ctx, who, "2026-03-10", "2026-03-12 09:00", "Lokalet er optaget"); err != nil {
		t.Fatal(err)
	}
	// Asked again (a retried request): no second letter.
	if _, err := f.c.MoveMeeting(ctx, who, "2026-03-10", "2026-03-12 09:00", "Lokalet er optaget"); err != nil {
		t.Fatal(err)
	}
	want := func(l *letter.Letter, id, referral, gpWas, now string) {
		t.Helper()
		text := "Henvisningen behandles nu på samrådsmødet " + now + " og ikke som tidligere meddelt " + gpWas + ".\n\nVenlig hilsen\nSamrådet for Børn og Unge\n"
		if l.ID != id || l.InReplyTo != referral || l.ThreadID != "episode-"+referral || l.Kind != letter.KindReply || l.Text != text ||
			l.Subject != "Nyt tidspunkt for behandling af henvisning" || l.Patient == nil || l.Patient.CPR != "2509479989" {
			t.Errorf("new date letter %s (%s in %s): %q\nwant %s: %q", l.ID, l.InReplyTo, l.ThreadID, l.Text, id, text)
		}
	}
	got := f.newDates()
	if len(got) != 2 {
		t.Fatalf("%d new date letters after the meeting moved, want 2 (R1's GP, R2's GP): %v", len(got), ids(got))
	}
	want(got[0], NewDateID("R1", moved), "R1", "tirsdag den 10. marts 2026 kl. 13.00", "torsdag den 12. marts 2026 kl. 09.00")
	want(got[1], NewDateID("R2", moved), "R2", "tirsdag den 10. marts 2026 kl. 13.00", "torsdag den 12. marts 2026 kl. 09.00")

	f.clock.set(start.Add(4 * 24 * time.Hour))
	second := f.clock.now()
	ch, err := f.c.MoveReferral(ctx, who, "R1", "2026-04-14", "Samrådet nåede ikke sagen")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.c.MoveReferral(ctx, who, "R1", "2026-04-14", "Samrådet nåede ikke sagen"); err != nil {
		t.Fatal(err)
	}
	got = f.newDates()
	if len(got) != 4 {
		t.Fatalf("%d new date letters after the child moved, want 4: %v", len(got), ids(got))
	}
	want(got[2], NewDateID("R1", second), "R1", "torsdag den 12. marts 2026 kl. 09.00", "tirsdag den 14. april 2026 kl. 13.00")
	want(got[3], NewDateID("R2", second), "R2", "torsdag den 12. marts 2026 kl. 09.00", "tirsdag den 14. april 2026 kl. 13.00")

	var later []string
	for _, j := range ch.LaterReferrals {
		later = append(later, ids2(j.NewDates)...)
	}
	if a, b := ids2(ch.NewDates), []string{NewDateID("R1", moved), NewDateID("R1", second)}; !slices.Equal(a, b) ||
		!slices.Equal(later, []string{NewDateID("R2", moved), NewDateID("R2", second)}) {
		t.Errorf("the child's page lists new dates %v and, for the later referral, %v", a, later)
	}
}

// A change the register stored but no letter told (the hub stopped in
// between, or the letter stream refused the letter for a moment) is told
// by the watch's round, once; a change more than seven days old is not,
// nor any with receipts off.
func TestANewDateNoLetterToldIsToldByTheWatch(t *testing.T) {
	for _, on := range []bool{true, false} {
		t.Run(fmt.Sprintf("receipts %v", on), func(t *testing.T) {
			f := newFixture(t, func(k *Options) {
				k.Receipt = Receipt{Enabled: on, Destination: "gp", Template: DefaultReceiptTemplate}
			})
			ctx := context.Background()
			start := f.clock.now()
			f.apply(f.c, f.referral("R1", start, "2509479989"))
			f.apply(f.c, f.referral("B1", start, "1509819996"))
			// The move's write alone, as a hub stopped after it leaves it:
			// R1's change is new, B1's was decided ten days ago.
			if _, err := update(ctx, f.c.reg, prefixMeeting+"2026-03-10", func(cur *meetingRecord, _ bool) (bool, error) {
				before := cur.At
				cur.At = time.Date(2026, 3, 12, 8, 0, 0, 0, time.UTC)
				retold(&cur.Referrals[cur.index(tokenOf("R1"))], start, before)
				retold(&cur.Referrals[cur.index(tokenOf("B1"))], start.Add(-10*24*time.Hour), before)
				return true, nil
			}); err != nil {
				t.Fatal(err)
			}
			for range 3 {
				if err := f.c.retellAll(ctx); err != nil {
					t.Fatal(err)
				}
			}
			got := ids(f.newDates())
			if want := []string{NewDateID("R1", start)}; on && !slices.Equal(got, want) || !on && len(got) != 0 {
				t.Errorf("told %v (receipts %v)", got, on)
			}
			// A letter told is not looked up again by the later rounds.
			f.hub.mu.Lock()
			n := f.hub.reads[NewDateID("R1", start)]
			f.hub.mu.Unlock()
			if on && n != 1 {
				t.Errorf("the told letter was read %d times in three rounds, want once", n)
			}
		})
	}
}

func ids(ls []*letter.Letter) []string {
	var out []string
	for _, l := range ls {
		out = append(out, l.ID)
	}
	return out
}

func ids2(ts []Tracked) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.LetterID)
	}
	return out
}
