package council

import (
	"context"
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
	f := newFixture(t, func(k *Options) {
		k.Meetings.Cap = 1
		k.Receipt = Receipt{Enabled: true, Destination: "gp", Template: DefaultReceiptTemplate}
	})
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
