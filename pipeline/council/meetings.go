package council

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/samhub/samhub/internal/logging"
	"github.com/samhub/samhub/pipeline/audit"
)

// Meeting is a council meeting as the API shows it.
type Meeting struct {
	ID   string    `json:"id"` // the local date it was first planned for, e.g. 2026-03-10
	At   time.Time `json:"at"`
	Zone string    `json:"zone"` // the council's time zone (council.meetings.zone)
	// Origin is rule (from council.meetings.rule) or added (by the
	// coordinator).
	Origin    string     `json:"origin"`
	MovedFrom *time.Time `json:"movedFrom,omitempty"`
	Cap       int        `json:"cap"`
	Referrals int        `json:"referrals"`
	Room      int        `json:"room"`
	Answered  int        `json:"answered"`
	// Unanswered are its referrals past council.watch_days without a
	// recommendation.
	Unanswered int  `json:"unanswered"`
	Past       bool `json:"past"`
}

// Actor is who asks for an operation; it is audited.
type Actor struct{ Name, Role, Remote string }

// Errors of the coordinator's meeting operations.
var (
	ErrNoMeeting      = errors.New("no council meeting with that id")
	ErrMeetingClash   = errors.New("a meeting is planned that day already")
	ErrReasonRequired = errors.New("a reason is required")
	ErrBadTime        = errors.New("bad meeting time")
)

func (c *Council) capOf(m meetingRecord) int {
	if m.Cap > 0 {
		return m.Cap
	}
	return c.cfg.Meetings.Cap
}

// meetingsBetween lists the meetings at or after from and before to: the
// rule's (as stored, once one was moved or took a referral) and the added
// ones, in time order.
func (c *Council) meetingsBetween(from, to time.Time) []meetingRecord {
	stored := map[string]meetingRecord{}
	var out []meetingRecord
	for _, m := range c.reg.storedMeetings() {
		stored[m.ID] = m
		if !m.At.Before(from) && m.At.Before(to) {
			out = append(out, m)
		}
	}
	for _, t := range c.rule.Between(from, to) {
		id := c.rule.ID(t)
		if _, ok := stored[id]; !ok {
			out = append(out, meetingRecord{ID: id, At: t.UTC(), Origin: "rule"})
		}
	}
	slices.SortFunc(out, func(a, b meetingRecord) int { return cmp.Or(a.At.Compare(b.At), strings.Compare(a.ID, b.ID)) })
	return out
}

// meetingByID finds a stored meeting, or a rule meeting not stored yet.
func (c *Council) meetingByID(id string) (meetingRecord, bool) {
	if m, ok := c.reg.meeting(id); ok {
		return m, true
	}
	d, err := time.ParseInLocation(time.DateOnly, id, c.rule.Loc)
	if err != nil {
		return meetingRecord{}, false
	}
	t := c.rule.In(d.Year(), d.Month())
	if c.rule.ID(t) != id {
		return meetingRecord{}, false
	}
	return meetingRecord{ID: id, At: t.UTC(), Origin: "rule"}, true
}

// seat gives the referral key a seat in the first meeting after received
// with room, or finds the one it has. Each step is a compare-and-set on
// the meeting, so two replicas seating at once neither seat a referral
// twice nor fill a meeting past its cap. No meeting with room within the
// horizon: the zero meeting.
func (c *Council) seat(ctx context.Context, key string, received time.Time) (meetingRecord, error) {
	if m, ok := c.reg.seatOf(key); ok {
		return m, nil
	}
	for _, cand := range c.meetingsBetween(received, received.Add(horizon)) {
		if !cand.At.After(received) || len(cand.Referrals) >= c.capOf(cand) {
			continue
		}
		seated := false
		m, err := update(ctx, c.reg, prefixMeeting+cand.ID, func(cur *meetingRecord, exists bool) (bool, error) {
			if !exists {
				*cur = cand
			}
			switch {
			case slices.Contains(cur.Referrals, key):
				seated = true
				return false, nil
			case len(cur.Referrals) >= c.capOf(*cur) || !cur.At.After(received):
				return false, nil // filled or moved meanwhile
			}
			cur.Referrals = append(cur.Referrals, key)
			seated = true
			return true, nil
		})
		if err != nil {
			return meetingRecord{}, err
		}
		if seated {
			return m, nil
		}
	}
	return meetingRecord{}, nil
}

func (c *Council) summary(m meetingRecord, now time.Time) Meeting {
	s := Meeting{ID: m.ID, At: m.At.In(c.rule.Loc), Zone: c.rule.Loc.String(), Origin: m.Origin, Cap: c.capOf(m), Referrals: len(m.Referrals), Past: m.At.Before(now)}
	if !m.MovedFrom.IsZero() {
		t := m.MovedFrom.In(c.rule.Loc)
		s.MovedFrom = &t
	}
	s.Room = max(0, s.Cap-s.Referrals)
	for _, k := range m.Referrals {
		r, ok := c.reg.referral(k)
		switch {
		case !ok:
		case r.Answered():
			s.Answered++
		case !now.Before(r.Received.Add(c.watch)):
			s.Unanswered++
		}
	}
	return s
}

// Meetings lists the meetings at or after from and before to.
func (c *Council) Meetings(from, to time.Time) []Meeting {
	now := c.now()
	var out []Meeting
	for _, m := range c.meetingsBetween(from, to) {
		out = append(out, c.summary(m, now))
	}
	return out
}

// sameDay finds another meeting on t's local date.
func (c *Council) sameDay(id string, t time.Time) (meetingRecord, bool) {
	day := c.rule.ID(t)
	start, _ := time.ParseInLocation(time.DateOnly, day, c.rule.Loc)
	for _, m := range c.meetingsBetween(start, start.AddDate(0, 0, 1)) {
		if m.ID != id {
			return m, true
		}
	}
	return meetingRecord{}, false
}

// AddMeeting adds a meeting at a time the coordinator names ("2026-03-24
// 13:00" in the rule's zone, or RFC 3339), with its own cap (0: the
// configured one). Audited; a reason is required.
func (c *Council) AddMeeting(ctx context.Context, who Actor, at string, capacity int, reason string) (Meeting, error) {
	if strings.TrimSpace(reason) == "" {
		return Meeting{}, ErrReasonRequired
	}
	t, err := c.rule.ParseTime(at)
	if err != nil {
		return Meeting{}, fmt.Errorf("%w: at: %v", ErrBadTime, err)
	}
	if capacity < 0 || capacity > 100 {
		return Meeting{}, fmt.Errorf("%w: cap: must be between 1 and 100 (0 or none: council.meetings.cap)", ErrBadTime)
	}
	id := c.rule.ID(t)
	if m, ok := c.meetingByID(id); ok {
		return Meeting{}, fmt.Errorf("%w (%s at %s); move that one instead", ErrMeetingClash, m.ID, m.At.In(c.rule.Loc).Format("2006-01-02 15:04"))
	}
	if m, ok := c.sameDay(id, t); ok {
		return Meeting{}, fmt.Errorf("%w (%s at %s); move that one instead", ErrMeetingClash, m.ID, m.At.In(c.rule.Loc).Format("2006-01-02 15:04"))
	}
	if err := c.audit(ctx, who, "meeting-add", fmt.Sprintf("meeting:%s at:%s cap:%d", id, t.UTC().Format(time.RFC3339), capacity), reason); err != nil {
		return Meeting{}, err
	}
	m, err := update(ctx, c.reg, prefixMeeting+id, func(cur *meetingRecord, exists bool) (bool, error) {
		if exists {
			return false, fmt.Errorf("%w (%s)", ErrMeetingClash, id)
		}
		*cur = meetingRecord{ID: id, At: t.UTC(), Origin: "added", Cap: capacity}
		return true, nil
	})
	if err != nil {
		return Meeting{}, err
	}
	return c.summary(m, c.now()), nil
}

// MoveMeeting moves a meeting to another time; the referrals it takes go
// with it. Audited; a reason is required.
func (c *Council) MoveMeeting(ctx context.Context, who Actor, id, at, reason string) (Meeting, error) {
	if strings.TrimSpace(reason) == "" {
		return Meeting{}, ErrReasonRequired
	}
	cand, ok := c.meetingByID(id)
	if !ok {
		return Meeting{}, ErrNoMeeting
	}
	t, err := c.rule.ParseTime(at)
	if err != nil {
		return Meeting{}, fmt.Errorf("%w: at: %v", ErrBadTime, err)
	}
	if m, ok := c.sameDay(id, t); ok {
		return Meeting{}, fmt.Errorf("%w (%s at %s)", ErrMeetingClash, m.ID, m.At.In(c.rule.Loc).Format("2006-01-02 15:04"))
	}
	if err := c.audit(ctx, who, "meeting-move", fmt.Sprintf("meeting:%s from:%s to:%s", id, cand.At.UTC().Format(time.RFC3339), t.UTC().Format(time.RFC3339)), reason); err != nil {
		return Meeting{}, err
	}
	m, err := update(ctx, c.reg, prefixMeeting+id, func(cur *meetingRecord, exists bool) (bool, error) {
		if !exists {
			*cur = cand
		}
		if cur.MovedFrom.IsZero() {
			cur.MovedFrom = cur.At
		}
		cur.At = t.UTC()
		return true, nil
	})
	if err != nil {
		return Meeting{}, err
	}
	return c.summary(m, c.now()), nil
}

// audit records an action before it happens: one whose record cannot be
// stored does not happen.
func (c *Council) audit(ctx context.Context, who Actor, action, target, reason string) error {
	if c.d.Audit == nil {
		return nil
	}
	return c.d.Audit.Append(ctx, audit.Record{Actor: who.Name, Role: who.Role, Remote: who.Remote, Action: action, Target: target, Reason: logging.Redact(reason)})
}
