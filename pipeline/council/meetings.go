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
	// Cancelled is when the coordinator cancelled the meeting (a summer
	// break, say): it seats no one, and Room is 0.
	Cancelled *time.Time `json:"cancelled,omitempty"`
	// DayOff names the Danish public holiday or closing day the meeting
	// falls on (e.g. "Kristi Himmelfartsdag"): the coordinator moves or
	// cancels it. Referrals are seated there all the same.
	DayOff    string `json:"dayOff,omitempty"`
	Cap       int    `json:"cap"`
	Referrals int    `json:"referrals"`
	Room      int    `json:"room"`
	Answered  int    `json:"answered"`
	// Unanswered are its referrals past council.watch_days without a
	// recommendation.
	Unanswered int `json:"unanswered"`
	// Withdrawn are its referrals the coordinator withdrew: listed, and
	// not counted in Referrals; they take no place.
	Withdrawn int  `json:"withdrawn,omitempty"`
	Past      bool `json:"past"`
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

// place puts each referral in the first meeting after it arrived with
// room, looking two years ahead, else among the waiting; a referral the
// register holds stays where it is (with reseat, a waiting one may take a
// meeting, and no new one is placed). A referral of a child with an open
// referral (openFor) joins that one in its record and takes no seat. Each
// record touched is one compare-and-set, so a fetch's worth of referrals
// for one meeting is one write, and two replicas placing at once neither
// place a referral twice nor fill a meeting past its cap. It returns the
// referrals as placed (for a joined one, the referral it joined).
func (c *Council) place(ctx context.Context, refs []Referral, reseat bool) ([]Referral, error) {
	out := make([]Referral, 0, len(refs))
	todo := refs
	for round := 0; len(todo) > 0; round++ {
		if round == 20 {
			return out, errGiveUp
		}
		if round > 0 {
			// A round left referrals because another replica filled or
			// moved their meeting: plan the next on the copy once the watch
			// has brought that in (not on a fresh read applied here, which
			// would take a referral out of its old record before the copy
			// knows its new one, and a letter following it would find none).
			time.Sleep(time.Duration(round) * 20 * time.Millisecond)
		}
		type join struct {
			r  Referral
			to string // the key of the referral it joins
		}
		type group struct {
			key   string
			cand  meetingRecord
			refs  []Referral
			joins []join
		}
		var groups []*group
		byKey := map[string]*group{}
		groupOf := func(key string, cand meetingRecord) *group {
			g := byKey[key]
			if g == nil {
				g = &group{key: key}
				byKey[key] = g
				groups = append(groups, g)
			}
			if g.cand.ID == "" {
				g.cand = cand
			}
			return g
		}
		taken, planned := map[string]int{}, map[string]int{}
		// The referrals this round seats, by child, and the records they
		// go to: a later one of the same child in the same fetch joins the
		// first.
		fresh, freshIn := map[string]Referral{}, map[string]string{}
		for _, r := range todo {
			if cur, ok := c.reg.joinedTo(r.Key); ok {
				out = append(out, cur)
				continue
			}
			if _, known := c.reg.referral(r.Key); !known && !reseat {
				to, ok := c.openFor(r)
				in, _ := c.reg.holder(to.Key)
				if f, seen := fresh[childOf(r)]; !ok && seen && !f.Received.After(r.Received) {
					to, in, ok = f, freshIn[f.Key], true
				}
				if ok && in != "" {
					g := groupOf(in, meetingRecord{})
					g.joins = append(g.joins, join{r, to.Key})
					continue
				}
			}
			p, ok := c.reg.referral(r.Key)
			if ok && (!reseat || p.Meeting != "") {
				out = append(out, p)
				continue
			}
			if ok {
				r = p // a waiting referral as the copy has it now, with what followed it since
			}
			if reseat && !r.awaits() {
				// Answered or withdrawn while it waited: no meeting takes
				// it, and its GP gets no receipt naming one.
				continue
			}
			key, cand := "", meetingRecord{}
			earliest := c.earliest(r, reseat)
			for _, m := range c.meetingsBetween(earliest, earliest.Add(horizon)) {
				if m.Cancelled.IsZero() && m.At.After(earliest) && c.taking(m)+taken[m.ID] < c.capOf(m) {
					key, cand = prefixMeeting+m.ID, m
					break
				}
			}
			switch {
			case key != "":
				taken[cand.ID]++
				r.Meeting, r.Assigned = cand.ID, c.now().UTC()
			case reseat:
				continue // still no room: it keeps waiting
			default:
				key = c.reg.chunkFor(r.Received.In(c.rule.Loc).Format("2006-01"), planned)
				planned[key]++
				r.Meeting, r.Assigned = "", time.Time{}
				c.noRoom(r.LetterID)
			}
			g := groupOf(key, cand)
			g.refs = append(g.refs, r)
			if id := childOf(r); id != "" && !reseat {
				if _, seen := fresh[id]; !seen {
					fresh[id], freshIn[r.Key] = r, key
				}
			}
		}
		todo = nil
		for _, g := range groups {
			var placed, left []Referral
			_, err := update(ctx, c.reg, g.key, func(cur *meetingRecord, exists bool) (bool, error) {
				placed, left = placed[:0], left[:0]
				if !exists {
					*cur = g.cand
					cur.Referrals = nil
					if strings.HasPrefix(g.key, prefixWaiting) {
						*cur = meetingRecord{Origin: "waiting"}
					}
				}
				changed := false
				for _, r := range g.refs {
					i := cur.index(r.Key)
					switch {
					case i >= 0:
						placed = append(placed, cur.Referrals[i])
					case cur.Origin == "waiting" && len(cur.Referrals) >= waitingChunk,
						cur.Origin != "waiting" && (c.taking(*cur) >= c.capOf(*cur) || !cur.At.After(c.earliest(r, reseat)) || !cur.Cancelled.IsZero()):
						left = append(left, r) // filled, moved or cancelled meanwhile
					default:
						cur.Referrals = append(cur.Referrals, r)
						placed = append(placed, r)
						changed = true
					}
				}
				for _, j := range g.joins {
					i := cur.index(j.to)
					if i < 0 || !cur.Referrals[i].awaits() {
						// Taken elsewhere or answered meanwhile: planned
						// again from the copy.
						left = append(left, j.r)
						continue
					}
					if cur.Referrals[i].join(j.r) {
						changed = true
					}
					placed = append(placed, cur.Referrals[i])
				}
				return changed, nil
			})
			if err != nil {
				return out, err
			}
			out = append(out, placed...)
			todo = append(todo, left...)
		}
	}
	if reseat {
		return out, c.leaveWaiting(ctx, out)
	}
	return out, nil
}

// earliest is the time after which referral r may take a meeting: when it
// arrived, plus council.meetings.cutoff_days, so the members can read it
// first. A waiting referral seated later counts from now: a meeting that
// was held while it waited (one a child was moved out of) is no seat.
func (c *Council) earliest(r Referral, reseat bool) time.Time {
	t := r.Received
	if now := c.now(); reseat && now.After(t) {
		t = now
	}
	return t.Add(time.Duration(c.cfg.Meetings.CutoffDays) * 24 * time.Hour)
}

// childOf names the child a referral is about: its patient token, else
// (no CPR or replacement id) its thread.
func childOf(r Referral) string {
	if r.Patient != "" {
		return "p:" + r.Patient
	}
	if r.Thread != "" {
		return "t:" + r.Thread
	}
	return ""
}

// openFor finds the referral a new referral r joins: the first referral of
// the same child, arrived at or before r, still without a recommendation,
// and still to be taken by the council (its meeting starts after r
// arrived, or it waits for one). A child whose meeting has been held gets
// a new seat: the council has not seen what the later referral says, and
// its sender's receipt names a meeting that lies ahead.
func (c *Council) openFor(r Referral) (Referral, bool) {
	if r.Patient == "" && r.Thread == "" {
		return Referral{}, false
	}
	for _, o := range c.reg.ofChild(r.Patient, r.Thread) {
		if o.Key == r.Key || !o.awaits() || o.Received.After(r.Received) {
			continue
		}
		if o.Meeting == "" {
			return o, true
		}
		if m, ok := c.meetingByID(o.Meeting); ok && m.At.After(r.Received) {
			return o, true
		}
	}
	return Referral{}, false
}

// leaveWaiting takes referrals now seated in a meeting out of the waiting
// chunks. A letter that followed a referral while it was being seated may
// have landed on its waiting copy (the seat was written from an earlier
// read): what the waiting copy has and the seat lacks is carried over, so
// a recommendation is not lost and the referral not flagged unanswered.
func (c *Council) leaveWaiting(ctx context.Context, seated []Referral) error {
	gone := map[string]bool{}
	for _, r := range seated {
		if r.Meeting != "" {
			gone[r.Key] = true
		}
	}
	for _, k := range c.reg.waitingKeys() {
		if err := c.takeOut(ctx, k, func(r Referral) bool {
			in, _ := c.reg.holder(r.Key)
			return gone[r.Key] || strings.HasPrefix(in, prefixMeeting)
		}); err != nil {
			return err
		}
	}
	return nil
}

func (c *Council) summary(m meetingRecord, now time.Time) Meeting {
	m.Referrals = c.seated(m)
	s := Meeting{ID: m.ID, At: m.At.In(c.rule.Loc), Zone: c.rule.Loc.String(), Origin: m.Origin, Cap: c.capOf(m), Referrals: len(m.Referrals), Past: m.At.Before(now)}
	s.DayOff = c.closed.DayOff(s.At)
	if !m.MovedFrom.IsZero() {
		t := m.MovedFrom.In(c.rule.Loc)
		s.MovedFrom = &t
	}
	if !m.Cancelled.IsZero() {
		t := m.Cancelled.In(c.rule.Loc)
		s.Cancelled = &t
	}
	for _, r := range m.Referrals {
		switch {
		case r.Answered():
			s.Answered++
		case !r.WithdrawnAt.IsZero():
			s.Referrals-- // it takes no place
			s.Withdrawn++
		case !now.Before(r.Received.Add(c.watch)):
			s.Unanswered++
		}
	}
	if s.Cancelled == nil {
		s.Room = max(0, s.Cap-s.Referrals)
	}
	return s
}

// Meeting is one meeting's summary (a stored one, or a rule meeting not
// stored yet), without reading its children's journeys.
func (c *Council) Meeting(id string) (Meeting, bool) {
	m, ok := c.meetingByID(id)
	if !ok {
		return Meeting{}, false
	}
	return c.summary(m, c.now()), true
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
		if m.ID != id && m.Cancelled.IsZero() {
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
	if m, ok := c.meetingByID(id); ok && m.Cancelled.IsZero() {
		return Meeting{}, fmt.Errorf("%w (%s at %s); move that one instead", ErrMeetingClash, m.ID, m.At.In(c.rule.Loc).Format("2006-01-02 15:04"))
	}
	if m, ok := c.sameDay(id, t); ok {
		return Meeting{}, fmt.Errorf("%w (%s at %s); move that one instead", ErrMeetingClash, m.ID, m.At.In(c.rule.Loc).Format("2006-01-02 15:04"))
	}
	target := fmt.Sprintf("meeting:%s at:%s cap:%d", id, t.UTC().Format(time.RFC3339), capacity)
	if err := c.audit(ctx, who, "meeting-add", target, reason, "ok"); err != nil {
		return Meeting{}, err
	}
	m, err := update(ctx, c.reg, prefixMeeting+id, func(cur *meetingRecord, exists bool) (bool, error) {
		if exists && cur.Cancelled.IsZero() {
			return false, fmt.Errorf("%w (%s)", ErrMeetingClash, id)
		}
		// A cancelled meeting's record gives way to the new one. It seats
		// no child, but keeps the referrals withdrawn there (they take no
		// place): the register has no other record of them.
		kept := cur.Referrals
		*cur = meetingRecord{ID: id, At: t.UTC(), Origin: "added", Cap: capacity, Referrals: kept}
		return true, nil
	})
	if err != nil {
		c.auditUndone(ctx, who, "meeting-add", target, err)
		return Meeting{}, err
	}
	return c.summary(m, c.now()), nil
}

// MoveMeeting moves a meeting to another time; the referrals it takes go
// with it, and with receipts on, the GPs who referred a child still
// waiting for its recommendation there are told the new date
// (tellNewDate). Audited; a reason is required.
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
	target := fmt.Sprintf("meeting:%s from:%s to:%s", id, cand.At.UTC().Format(time.RFC3339), t.UTC().Format(time.RFC3339))
	if err := c.audit(ctx, who, "meeting-move", target, reason, "ok"); err != nil {
		return Meeting{}, err
	}
	now := c.now()
	m, err := update(ctx, c.reg, prefixMeeting+id, func(cur *meetingRecord, exists bool) (bool, error) {
		if !exists {
			*cur = cand
		}
		if cur.At.Equal(t) {
			return false, nil // moved there already (a repeated request)
		}
		for i := range cur.Referrals {
			if r := &cur.Referrals[i]; r.awaits() && c.reg.holds(prefixMeeting+id, r.Key) {
				retold(r, now, known(*r, cur.At))
			}
		}
		if cur.MovedFrom.IsZero() {
			cur.MovedFrom = cur.At
		}
		cur.At = t.UTC()
		if cur.At.Equal(cur.MovedFrom) {
			// Moved back to where it was planned: it is not moved.
			cur.MovedFrom = time.Time{}
		}
		return true, nil
	})
	if err != nil {
		c.auditUndone(ctx, who, "meeting-move", target, err)
		return Meeting{}, err
	}
	for _, r := range c.seated(m) {
		c.tellNow(ctx, r)
	}
	return c.summary(m, c.now()), nil
}

// ErrNotEmpty refuses to cancel a meeting that still seats children.
var ErrNotEmpty = errors.New("the meeting still seats children")

// CancelMeeting cancels a meeting that will not be held (a summer break, a
// day the council cannot meet): it seats no one from then on, and new
// referrals take the next meeting with room. A meeting that seats children
// is refused: move them first (MoveReferral), so that each child's new
// meeting is the coordinator's choice, not the hub's. Audited; a reason is
// required. Adding a meeting that day later takes its place.
func (c *Council) CancelMeeting(ctx context.Context, who Actor, id, reason string) (Meeting, error) {
	if strings.TrimSpace(reason) == "" {
		return Meeting{}, ErrReasonRequired
	}
	cand, ok := c.meetingByID(id)
	if !ok {
		return Meeting{}, ErrNoMeeting
	}
	now := c.now()
	if !cand.At.After(now) {
		return Meeting{}, fmt.Errorf("%w: meeting %s has begun or been held", ErrBadTime, id)
	}
	if !cand.Cancelled.IsZero() {
		return c.summary(cand, now), nil
	}
	if n := c.taking(cand); n > 0 {
		return Meeting{}, fmt.Errorf("%w: %d; move each to another meeting first", ErrNotEmpty, n)
	}
	target := fmt.Sprintf("meeting:%s at:%s", id, cand.At.UTC().Format(time.RFC3339))
	if err := c.audit(ctx, who, "meeting-cancel", target, reason, "ok"); err != nil {
		return Meeting{}, err
	}
	m, err := update(ctx, c.reg, prefixMeeting+id, func(cur *meetingRecord, exists bool) (bool, error) {
		if !exists {
			*cur = cand
		}
		if !cur.Cancelled.IsZero() {
			return false, nil
		}
		if n := c.taking(*cur); n > 0 {
			return false, fmt.Errorf("%w: %d; move each to another meeting first", ErrNotEmpty, n)
		}
		cur.Cancelled = now.UTC()
		return true, nil
	})
	if err != nil {
		c.auditUndone(ctx, who, "meeting-cancel", target, err)
		return Meeting{}, err
	}
	return c.summary(m, now), nil
}

// audit records an action before it happens, with the result it is to
// have: one whose record cannot be stored does not happen.
func (c *Council) audit(ctx context.Context, who Actor, action, target, reason, result string) error {
	if c.d.Audit == nil {
		return nil
	}
	return c.d.Audit.Append(ctx, audit.Record{Actor: who.Name, Role: who.Role, Remote: who.Remote, Action: action, Target: target, Reason: logging.Redact(reason), Result: result})
}

// auditUndone records that an action audited before it was done did not
// happen after all, so the log does not leave it standing as done: refused
// when the register changed in between (the meeting filled, a seat moved),
// failed when the register could not be written.
func (c *Council) auditUndone(ctx context.Context, who Actor, action, target string, why error) {
	if c.d.Audit == nil {
		return
	}
	result := "failed"
	for _, e := range []error{ErrNoRoom, ErrMeetingClash, ErrNotEmpty, ErrNoMeeting, ErrNoReferral, ErrAnswered, ErrWithdrawn, ErrNotSeat, ErrChildOpen, ErrBadTime} {
		if errors.Is(why, e) {
			result = "refused"
		}
	}
	if err := c.d.Audit.Append(context.WithoutCancel(ctx), audit.Record{Actor: who.Name, Role: who.Role, Remote: who.Remote, Action: action, Target: target, Reason: logging.Redact(why.Error()), Result: result}); err != nil {
		c.log.Warn("council: an action audited as done that did not happen was not audited again", "action", action, "err", err)
	}
}
