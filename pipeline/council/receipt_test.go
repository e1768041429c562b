package council

import (
	"context"
	"slices"
	"strings"
	"testing"
)

// A receipt whose publish failed after the watch stored the seat of a
// child who waited for a meeting with room (the letter stream refusing for
// a moment) is sent by a later round, once. Before, the referral no longer
// waited, so no round seated it again, and its GP never heard which
// meeting takes the child.
func TestAReceiptNoLetterSentIsSentByTheWatch(t *testing.T) {
	f := newFixture(t, receiptsOnOnePlace)
	ctx := context.Background()
	n := f.waitedNineDays()
	f.hub.mu.Lock()
	f.hub.refuse = 1
	f.hub.mu.Unlock()
	_ = f.c.seatWaiting(ctx) // the receipt refused (the watch logs it)
	if err := f.c.seatWaiting(ctx); err != nil {
		t.Fatal(err)
	}
	if r, _ := f.c.reg.referral(tokenOf("W1")); r.Meeting != "2026-03-24" {
		t.Fatalf("W1 in %q; want the added meeting", r.Meeting)
	}
	if got := ids(f.hub.receipts[n:]); len(got) != 0 {
		t.Fatalf("receipts before the resend: %v", got)
	}
	for range 3 {
		if err := f.c.resendReceipts(ctx); err != nil {
			t.Fatal(err)
		}
	}
	got := f.hub.receipts[n:]
	if len(got) != 1 || got[0].ID != ReceiptID("W1") || got[0].InReplyTo != "W1" || !strings.Contains(got[0].Text, "tirsdag den 24. marts 2026 kl. 13.00") {
		t.Fatalf("letters %v; want W1's receipt naming 24 March, once", ids(got))
	}
	f.hub.mu.Lock()
	reads := f.hub.reads[ReceiptID("W1")]
	f.hub.mu.Unlock()
	if reads != 1 {
		t.Errorf("the sent receipt was looked up %d times in three rounds, want once", reads)
	}
	// Seats whose receipts went (the filled meetings') get none again.
	if all := ids(f.hub.receipts); len(all) != len(slices.Compact(slices.Sorted(slices.Values(all)))) {
		t.Errorf("a receipt went twice: %v", all)
	}
}
