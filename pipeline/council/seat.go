package council

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/samhub/samhub/pipeline/broker"
)

// Errors of a seat move.
var (
	ErrNoReferral = errors.New("no referral with that letter id in the council register")
	ErrNotSeat    = errors.New("a later referral joined to a child's seat moves with it")
	ErrAnswered   = errors.New("the referral has its recommendation")
	ErrNoRoom     = errors.New("the meeting has no room")
	ErrWithdrawn  = errors.New("the referral was withdrawn")
)

// MoveReferral moves a child's seat (its first referral, with the later
// referrals joined to it) to another meeting that lies ahead and has
// room: the council did not reach the child, its papers are not ready, or
// a child waiting for a meeting gets one the coordinator added. Audited;
// a reason is required. The seat keeps its clock (due and the watch run
// from the referral). With receipts on, each GP who referred the child in
// the seat is told the new date (tellNewDate).
//
// Two records change: the new meeting's first, then the old one's. After
// a crash in between, the old record still lists the seat; the register
// places it where it was assigned last (putRecord), the views show it
// there only (seated), and moving it again finishes the move.
func (c *Council) MoveReferral(ctx context.Context, who Actor, letterID, to, reason string) (Child, error) {
	if strings.TrimSpace(reason) == "" {
		return Child{}, ErrReasonRequired
	}
	key, p, err := c.openSeat(letterID, "move")
	if err != nil {
		return Child{}, err
	}
	if !p.WithdrawnAt.IsZero() {
		return Child{}, fmt.Errorf("%w, so it waits for no meeting (reinstate it into a meeting instead)", ErrWithdrawn)
	}
	return c.moveSeat(ctx, who, key, p, to, reason, false)
}

// moveSeat moves seat p (key) to meeting to; with reinstate, a withdrawn
// seat, which takes a place there again.
func (c *Council) moveSeat(ctx context.Context, who Actor, key string, p Referral, to, reason string, reinstate bool) (Child, error) {
	letterID := p.LetterID
	dest, ok := c.meetingByID(to)
	if !ok {
		return Child{}, ErrNoMeeting
	}
	now := c.now()
	if !dest.At.After(now) {
		return Child{}, fmt.Errorf("%w: meeting %s has begun or been held; pick one that lies ahead", ErrBadTime, dest.ID)
	}
	if !dest.Cancelled.IsZero() {
		return Child{}, fmt.Errorf("%w: meeting %s is cancelled", ErrNoRoom, dest.ID)
	}
	target := prefixMeeting + dest.ID
	var before time.Time // the meeting the GPs knew of
	if m, ok := c.meetingByID(p.Meeting); ok {
		before = known(p, m.At)
	}
	if reinstate && !p.Known.IsZero() {
		before = p.Known // its meeting may have moved while it was withdrawn
	}
	if in, _ := c.reg.holder(key); in != target {
		action := "referral-move"
		if reinstate {
			action = "referral-reinstate"
		}
		// A full meeting is refused before the audit record, which would
		// otherwise say the child was moved.
		if n := c.taking(dest); dest.index(key) < 0 && n >= c.capOf(dest) {
			return Child{}, fmt.Errorf("%w: meeting %s takes %d children and has %d; add a meeting or move another child", ErrNoRoom, dest.ID, c.capOf(dest), n)
		}
		rec := fmt.Sprintf("referral:%s from:%s to:%s", letterID, cmp.Or(p.Meeting, "waiting"), dest.ID)
		if err := c.audit(ctx, who, action, rec, reason, "ok"); err != nil {
			return Child{}, err
		}
		if _, err := update(ctx, c.reg, target, func(cur *meetingRecord, exists bool) (bool, error) {
			if !exists {
				*cur = dest
				cur.Referrals = nil
			}
			if i := cur.index(key); i >= 0 {
				// Written before a move was cut short, while the
				// register places the seat elsewhere: assigned anew,
				// with what the other copy knows, it is placed here.
				cur.Referrals[i].merge(p)
				cur.Referrals[i].Assigned = now.UTC()
				if reinstate {
					cur.Referrals[i].WithdrawnAt, cur.Referrals[i].Known = time.Time{}, time.Time{}
				}
				return true, nil
			}
			if !cur.Cancelled.IsZero() {
				return false, fmt.Errorf("%w: meeting %s is cancelled", ErrNoRoom, dest.ID)
			}
			if n := c.taking(*cur); n >= c.capOf(*cur) {
				return false, fmt.Errorf("%w: meeting %s takes %d children and has %d; add a meeting or move another child", ErrNoRoom, dest.ID, c.capOf(*cur), n)
			}
			r := p
			if r.MovedFrom == "" {
				r.MovedFrom = p.Meeting
			}
			retold(&r, now, before)
			r.Meeting, r.Assigned = dest.ID, now.UTC()
			if reinstate {
				r.WithdrawnAt, r.Known = time.Time{}, time.Time{}
			}
			cur.Referrals = append(cur.Referrals, r)
			return true, nil
		}); err != nil {
			c.auditUndone(ctx, who, action, rec, err)
			return Child{}, err
		}
	}
	if err := c.dropElsewhere(ctx, key, target); err != nil {
		return Child{}, err
	}
	r, _ := c.reg.referral(key)
	c.tellNow(ctx, r)
	return c.childOf(ctx, key, now)
}

// openSeat is the referral with letter id letterID that a coordinator's
// action (verb) may act on: a child's seat (a later referral acts with its
// child's first) still without a recommendation.
func (c *Council) openSeat(letterID, verb string) (string, Referral, error) {
	key := broker.Token(letterID)
	p, ok := c.reg.referral(key)
	if !ok {
		if seat, joined := c.reg.joinedTo(key); joined {
			return key, p, fmt.Errorf("%w: %s the child's first referral, %s", ErrNotSeat, verb, seat.LetterID)
		}
		return key, p, ErrNoReferral
	}
	if p.Answered() {
		return key, p, fmt.Errorf("%w (%s), so it waits for no meeting", ErrAnswered, p.Recommendations[0].LetterID)
	}
	return key, p, nil
}

// dropElsewhere takes the referral key out of every record but keep, and
// gives the seat in keep what a copy taken out knew and it did not (a
// letter that followed the referral while it moved).
func (c *Council) dropElsewhere(ctx context.Context, key, keep string) error {
	for _, k := range c.reg.recordsWith(key) {
		if k != keep {
			if err := c.takeOut(ctx, k, func(r Referral) bool { return r.Key == key }); err != nil {
				return err
			}
		}
	}
	return nil
}

// takeOut removes from record k the referrals drop selects, and gives
// each one's seat (where the register places it now) what the copy taken
// out knew and the seat did not.
func (c *Council) takeOut(ctx context.Context, k string, drop func(Referral) bool) error {
	var gone []Referral
	if _, err := update(ctx, c.reg, k, func(cur *meetingRecord, exists bool) (bool, error) {
		gone = gone[:0]
		n := len(cur.Referrals)
		cur.Referrals = slices.DeleteFunc(cur.Referrals, func(r Referral) bool {
			if drop(r) {
				gone = append(gone, r)
				return true
			}
			return false
		})
		return exists && len(cur.Referrals) != n, nil
	}); err != nil {
		return err
	}
	for _, g := range gone {
		if _, err := c.reg.updateReferral(ctx, g.Key, func(cur *Referral) bool { return cur.merge(g) }); err != nil {
			return err
		}
	}
	return nil
}

// seated are the referrals record m holds: a seat moved away is listed by
// its old record until the move's second write, and shown only where it
// went.
func (c *Council) seated(m meetingRecord) []Referral {
	out := make([]Referral, 0, len(m.Referrals))
	k := prefixMeeting + m.ID
	for _, r := range m.Referrals {
		if c.reg.holds(k, r.Key) {
			out = append(out, r)
		}
	}
	return out
}

// taking counts the children record m seats that take a place: a
// withdrawn referral keeps its record and takes none. It runs for every
// meeting a new referral looks at, so it counts without copying.
func (c *Council) taking(m meetingRecord) int {
	return c.reg.countHeld(prefixMeeting+m.ID, m.Referrals, func(r *Referral) bool { return r.WithdrawnAt.IsZero() })
}

// WithdrawReferral withdraws a child's referral that the council is not
// to take (sent by mistake, or the parents withdrew their consent): it
// stays on its meeting's page as withdrawn, takes no place, is not
// watched, and a later referral of the child takes a seat of its own.
// Letters that follow it are still added. The GP is not told: that is the
// coordinator's letter to write. Audited; a reason is required.
func (c *Council) WithdrawReferral(ctx context.Context, who Actor, letterID, reason string) (Child, error) {
	if strings.TrimSpace(reason) == "" {
		return Child{}, ErrReasonRequired
	}
	key, p, err := c.openSeat(letterID, "withdraw")
	if err != nil {
		return Child{}, err
	}
	now := c.now()
	if p.WithdrawnAt.IsZero() {
		rec := fmt.Sprintf("referral:%s meeting:%s", letterID, cmp.Or(p.Meeting, "waiting"))
		if err := c.audit(ctx, who, "referral-withdraw", rec, reason, "ok"); err != nil {
			return Child{}, err
		}
		if _, err := c.reg.updateReferral(ctx, key, func(cur *Referral) bool {
			if !cur.WithdrawnAt.IsZero() || cur.Answered() {
				return false
			}
			cur.WithdrawnAt = now.UTC()
			if m, ok := c.meetingByID(cur.Meeting); ok {
				cur.Known = known(*cur, m.At)
			}
			return true
		}); err != nil {
			c.auditUndone(ctx, who, "referral-withdraw", rec, err)
			return Child{}, err
		}
	}
	return c.childOf(ctx, key, now)
}

// ErrChildOpen refuses to reinstate a referral whose child has another
// referral waiting for the council.
var ErrChildOpen = errors.New("the child has another referral waiting for the council")

// ReinstateReferral undoes a withdrawal (made by mistake, or the parents
// gave their consent again): the referral waits for the council again,
// with its clock and its letters. It takes its place back in its own
// meeting when that lies ahead and has room (to "" or that meeting), or
// goes to the meeting to names, as a move does (the GPs are told the new
// date). Refused when the child has another referral waiting since (the
// council takes that one) or the meeting has no room. A referral not
// withdrawn is left as it is. Audited; a reason is required.
func (c *Council) ReinstateReferral(ctx context.Context, who Actor, letterID, to, reason string) (Child, error) {
	if strings.TrimSpace(reason) == "" {
		return Child{}, ErrReasonRequired
	}
	key, p, err := c.openSeat(letterID, "reinstate")
	if err != nil {
		return Child{}, err
	}
	now := c.now()
	if p.WithdrawnAt.IsZero() {
		// Reinstated already; a reinstating move cut short after its
		// first write is finished here.
		if in, ok := c.reg.holder(key); ok {
			if err := c.dropElsewhere(ctx, key, in); err != nil {
				return Child{}, err
			}
		}
		return c.childOf(ctx, key, now)
	}
	for _, o := range c.reg.ofChild(p.Patient, p.Thread) {
		if o.Key != key && o.awaits() {
			return Child{}, fmt.Errorf("%w (%s): the council takes that one", ErrChildOpen, o.LetterID)
		}
	}
	if to != "" && to != p.Meeting {
		return c.moveSeat(ctx, who, key, p, to, reason, true)
	}
	in, ok := c.reg.holder(key)
	if !ok {
		return Child{}, ErrNoReferral
	}
	if p.Meeting != "" {
		m, _ := c.meetingByID(p.Meeting)
		switch {
		case !m.At.After(now):
			return Child{}, fmt.Errorf("%w: its meeting %s has begun or been held; reinstate it into one that lies ahead", ErrBadTime, p.Meeting)
		case !m.Cancelled.IsZero():
			return Child{}, fmt.Errorf("%w: its meeting %s is cancelled; reinstate it into another", ErrNoRoom, p.Meeting)
		case c.taking(m) >= c.capOf(m):
			return Child{}, fmt.Errorf("%w: its meeting %s has given the place to another child; reinstate it into another meeting", ErrNoRoom, p.Meeting)
		}
	}
	rec := fmt.Sprintf("referral:%s meeting:%s", letterID, cmp.Or(p.Meeting, "waiting"))
	if err := c.audit(ctx, who, "referral-reinstate", rec, reason, "ok"); err != nil {
		return Child{}, err
	}
	// The record that holds the seat is the unit that keeps a meeting
	// within its cap; a seat waiting for a meeting needs no room.
	if _, err := update(ctx, c.reg, in, func(cur *meetingRecord, exists bool) (bool, error) {
		i := cur.index(key)
		if !exists || i < 0 || cur.Referrals[i].WithdrawnAt.IsZero() {
			return false, nil
		}
		if cur.Origin != "waiting" {
			if n := c.taking(*cur); n >= c.capOf(*cur) {
				return false, fmt.Errorf("%w: meeting %s takes %d children and has %d; reinstate it into another meeting", ErrNoRoom, cur.ID, c.capOf(*cur), n)
			}
		}
		r := &cur.Referrals[i]
		if m, ok := c.meetingByID(r.Meeting); ok && !r.Known.IsZero() && !r.Known.Equal(m.At) {
			// Its meeting moved while it was withdrawn: its GPs are told.
			retold(r, now, r.Known)
		}
		r.WithdrawnAt, r.Known = time.Time{}, time.Time{}
		return true, nil
	}); err != nil {
		c.auditUndone(ctx, who, "referral-reinstate", rec, err)
		return Child{}, err
	}
	if r, ok := c.reg.referral(key); ok {
		c.tellNow(ctx, r)
	}
	return c.childOf(ctx, key, now)
}

// childOf is the seat key as the meeting page shows it after an action.
func (c *Council) childOf(ctx context.Context, key string, now time.Time) (Child, error) {
	r, _ := c.reg.referral(key)
	ch := c.child(r, now)
	return ch, c.detail(ctx, r, &ch, now)
}
