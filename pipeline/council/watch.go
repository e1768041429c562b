package council

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/samhub/samhub/internal/clock"
	"github.com/samhub/samhub/pipeline/broker"
	"github.com/samhub/samhub/pipeline/council/schedule"
	"github.com/samhub/samhub/pipeline/letter"
)

// remindMaxAge: a referral found unanswered long after its watch ran out
// (a register built anew, a long outage) is flagged without a reminder;
// the overview shows it.
const remindMaxAge = 7 * 24 * time.Hour

// EventUnanswered is the notice event of the referral watch's reminder.
const EventUnanswered = "unanswered"

// watchLoop runs, on the replica holding the lease, the referral watch,
// seats referrals still waiting for a meeting with room, sends receipts and
// tells GPs new meeting dates no letter told yet, and prunes
// what is past council.retention_days, until ctx ends.
func (c *Council) watchLoop(ctx context.Context) {
	every := min(time.Minute, max(time.Second, c.watch/20))
	var pruned time.Time
	for ctx.Err() == nil {
		now := c.now()
		if err := c.Watch(ctx, now); err != nil && ctx.Err() == nil {
			c.log.Warn("referral watch: a round failed; trying again", "err", err)
		}
		if err := c.seatWaiting(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("council register: seating waiting referrals failed; trying again", "err", err)
		}
		if err := c.resendReceipts(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("council register: sending a receipt no letter sent failed; trying again", "err", err)
		}
		if err := c.retellAll(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("council register: telling GPs a new meeting date failed; trying again", "err", err)
		}
		if now.Sub(pruned) > 24*time.Hour {
			if n, err := c.Prune(ctx, now); err != nil && ctx.Err() == nil {
				c.log.Warn("council register: pruning failed; trying again tomorrow", "err", err)
			} else if n > 0 {
				c.log.Info("council register: pruned facts past council.retention_days", "entries", n)
			}
			pruned = now
		}
		clock.Sleep(ctx, every)
	}
}

// Watch flags every referral with no recommendation council.watch_days
// after it arrived, once, and reminds the coordinator (notifications.on:
// [unanswered]) with a notice that names the referral's letter id and the
// meeting date, nothing about the child.
func (c *Council) Watch(ctx context.Context, now time.Time) error {
	for _, r := range c.reg.allReferrals() {
		due := r.Received.Add(c.watch)
		if !r.awaits() || !r.Flagged.IsZero() || now.Before(due) {
			continue
		}
		if c.d.NoticeOn != nil && c.d.NoticeOn(EventUnanswered) && now.Sub(due) <= remindMaxAge {
			// The notice's id is the referral's: a second round (after a
			// crash before the flag was stored) stores no second notice.
			days := fmt.Sprintf("%g", c.cfg.WatchDays)
			da := "En henvisning til Samrådet har ikke fået en anbefaling " + days + " dage efter, at den kom."
			en := "A referral to the council has had no recommendation " + days + " days after it arrived."
			if m, ok := c.reg.meeting(r.Meeting); ok {
				da += " Den hører til mødet " + schedule.Danish(m.At.In(c.rule.Loc)) + "."
				en += " It belongs to the meeting of " + m.At.In(c.rule.Loc).Format("2006-01-02 15:04") + "."
			}
			if err := c.d.Notice(ctx, EventUnanswered, r.LetterID, da, en); err != nil {
				return err
			}
		}
		if _, err := c.reg.updateReferral(ctx, r.Key, func(cur *Referral) bool {
			if !cur.awaits() || !cur.Flagged.IsZero() {
				return false
			}
			cur.Flagged = now.UTC()
			return true
		}); err != nil {
			return err
		}
		c.log.Info("referral unanswered after the watch period", "letter_id", r.LetterID, "meeting", r.Meeting)
	}
	return nil
}

// seatWaiting gives referrals that found no meeting with room a seat once
// one has room (the coordinator added a meeting), with a receipt: their
// GPs were told no date, so it is news however long they waited.
func (c *Council) seatWaiting(ctx context.Context) error {
	start := c.now()
	var waiting []Referral
	for _, m := range c.reg.storedRecords(prefixWaiting) {
		waiting = append(waiting, m.Referrals...)
	}
	if len(waiting) == 0 {
		return nil
	}
	// The child waiting longest takes the first place that comes free
	// (the records come in no order).
	slices.SortStableFunc(waiting, func(a, b Referral) int { return cmp.Or(a.Received.Compare(b.Received), strings.Compare(a.Key, b.Key)) })
	placed, err := c.place(ctx, waiting, true)
	if err != nil {
		return err
	}
	return c.receipts(ctx, placed, func(key string) *letter.Letter {
		id, ok := c.reg.letterID(key)
		if !ok {
			return nil
		}
		l, err := c.d.StoredLetter(ctx, id)
		if err != nil {
			return nil // no receipt this time; the watch is no place to fail
		}
		return l
	}, func(r Referral) bool { return !r.Assigned.Before(start.UTC()) })
}

// Prune deletes the meetings held (with their referrals' facts) and the
// waiting referrals and rejections that arrived more than
// council.retention_days ago; it returns how many entries it deleted.
func (c *Council) Prune(ctx context.Context, now time.Time) (int, error) {
	cut := now.Add(-c.keep)
	n := 0
	for _, m := range c.reg.storedMeetings() {
		if m.At.Before(cut) {
			if err := c.reg.delete(ctx, prefixMeeting+m.ID); err != nil {
				return n, err
			}
			n++
		}
	}
	month := cut.In(c.rule.Loc).Format("2006-01")
	for _, k := range c.reg.waitingKeys() {
		if m, _, _ := strings.Cut(strings.TrimPrefix(k, prefixWaiting), "."); m < month {
			if err := c.reg.delete(ctx, k); err != nil {
				return n, err
			}
			n++
		}
	}
	for _, x := range c.reg.allRejections() {
		if x.Received.Before(cut) {
			if err := c.reg.delete(ctx, prefixRejection+broker.Token(x.LetterID)); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}
