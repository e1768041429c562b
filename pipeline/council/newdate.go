package council

import (
	"context"
	"time"
)

// NewDateID is the id of the letter telling the GP who sent referral
// referralID of the new meeting date decided at at (Retold.At): one per
// referral and change, however often it is tried (the letter stream
// refuses an id it has).
func NewDateID(referralID string, at time.Time) string {
	return ReceiptID(referralID) + "@" + at.UTC().Format("20060102T150405.000000000Z")
}

// retold is r with a new date decided at now, its GPs having known of the
// meeting at before (zero: of none).
func retold(r *Referral, now, before time.Time) {
	r.Retold = append(r.Retold, Retold{At: now.UTC(), Before: before.UTC()})
}

// known is the meeting time the GPs of seat r were last told, its
// meeting being at at now: at, unless the change that put it there was
// decided when at had passed already (no letter told it; a meeting moved
// to a time that has passed), so they know the time before that change.
func known(r Referral, at time.Time) time.Time {
	if n := len(r.Retold); n > 0 && !at.After(r.Retold[n-1].At) {
		return r.Retold[n-1].Before
	}
	return at
}

// tellNewDate tells each GP who referred the child in seat r (the seat's
// referral and those joined to it) the seat's newest new date: the meeting
// that takes it now. Nothing when receipts are off, the seat no longer
// waits for its recommendation, the change is more than seven days old (a
// register built anew), or the meeting has begun or is cancelled.
//
// The register stores the change first, and this runs after it, so a
// crash in between leaves a change no GP was told of: the referral watch
// runs this for every seat (retellAll), and a letter already stored is not
// stored again.
func (c *Council) tellNewDate(ctx context.Context, r Referral) error {
	if !c.cfg.Receipt.Enabled || len(r.Retold) == 0 || !r.awaits() {
		return nil
	}
	last := r.Retold[len(r.Retold)-1]
	now := c.now()
	m, ok := c.meetingByID(r.Meeting)
	if now.Sub(last.At) > receiptMaxAge || !ok || !m.At.After(now) || !m.Cancelled.IsZero() {
		return nil
	}
	ids := []string{r.LetterID}
	for _, j := range r.Joined {
		if j.Received.After(last.At) {
			// Joined after the change: its receipt named the meeting as
			// it is now, and the date before was never its GP's.
			continue
		}
		ids = append(ids, j.LetterID)
	}
	for _, id := range ids {
		nid := NewDateID(id, last.At)
		if c.isTold(nid) {
			continue
		}
		had, err := c.d.StoredLetter(ctx, nid)
		if err != nil {
			return err
		}
		if had != nil {
			c.markTold(nid, last.At)
			continue
		}
		ref, err := c.d.StoredLetter(ctx, id)
		if err != nil {
			return err
		}
		if ref == nil {
			continue // past retention: nothing to answer in
		}
		if err := c.tellGP(ctx, ref, nid, m.ID, m.At, last.Before); err != nil {
			return err
		}
		c.markTold(nid, last.At)
	}
	return nil
}

func (c *Council) isTold(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.told[id]
	return ok
}

// markTold remembers letter id (a new date's, or a receipt's) of a change
// or referral at at as stored or not to be sent, and forgets those too old
// to be told.
func (c *Council) markTold(id string, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.told == nil {
		c.told = map[string]time.Time{}
	}
	c.told[id] = at
	now := c.now()
	for k, t := range c.told {
		if now.Sub(t) > receiptMaxAge {
			delete(c.told, k)
		}
	}
}

// retellAll tells the GPs of every seat with a new date of the last seven
// days that no letter told yet (a move cut short by a crash, or a letter
// the store refused for a moment).
func (c *Council) retellAll(ctx context.Context) error {
	if !c.cfg.Receipt.Enabled {
		return nil
	}
	now := c.now()
	for _, r := range c.reg.allReferrals() {
		if n := len(r.Retold); n > 0 && now.Sub(r.Retold[n-1].At) <= receiptMaxAge {
			if err := c.tellNewDate(ctx, r); err != nil {
				return err
			}
		}
	}
	return nil
}

// tellNow tells seat r's GPs its new date right after a coordinator's
// change; a failure is left to the watch (retellAll), as the change itself
// is stored.
func (c *Council) tellNow(ctx context.Context, r Referral) {
	if err := c.tellNewDate(ctx, r); err != nil {
		c.log.Warn("council register: telling the GP a new meeting date failed; the watch tries again", "letter_id", r.LetterID, "err", err)
	}
}
