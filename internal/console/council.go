package console

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/samhub/samhub/internal/console/agendapdf"
	"github.com/samhub/samhub/pipeline/council"
	"github.com/samhub/samhub/pipeline/council/schedule"
	"github.com/samhub/samhub/pipeline/letter"
)

// The council's pages: the meetings, a meeting with its children, the
// agenda (print, PDF, CSV) and the figures. They are views of the
// council's register (pipeline/council), as the API's routes are; the
// register audits moves, additions and every read of the children's
// names. Nothing a page shows is kept: names are read from the stored
// referrals each time.

// register returns the council's register, or answers that it is off.
func (c *Console) register(w http.ResponseWriter, r *http.Request, ses *session) (*council.Council, bool) {
	k := c.hub.Council()
	if k == nil {
		c.render(w, r, ses, http.StatusNotFound, "error", errorPage{Message: tr(c.lang, "m.off")})
		return nil, false
	}
	return k, true
}

func (c *Console) councilActor(r *http.Request, ses *session) council.Actor {
	a := c.actor(r, ses)
	return council.Actor{Name: a.Name, Role: a.Role, Remote: a.Remote}
}

// --- times and words ---------------------------------------------------------

var enWeeks = map[int]string{1: "first", 2: "second", 3: "third", 4: "fourth", -1: "last"}
var daWeeks = map[int]string{1: "første", 2: "anden", 3: "tredje", 4: "fjerde", -1: "sidste"}

// ruleWords says the meeting rule in the console's language.
func ruleWords(lang string, r schedule.Rule) string {
	if lang == "da" {
		return fmt.Sprintf("%s %s i måneden kl. %02d.%02d", daWeeks[r.Week], schedule.DanishWeekday(time.Date(2026, 1, 4+int(r.Weekday), 0, 0, 0, 0, time.UTC)), r.Hour, r.Minute)
	}
	return fmt.Sprintf("the %s %s of the month at %02d:%02d", enWeeks[r.Week], r.Weekday, r.Hour, r.Minute)
}

// meetingTime says when a meeting is, in the council's zone (the zone its
// rule is kept in); where the console's zone differs, the zone is named
// and the time given in the console's zone too.
func meetingTime(lang string, t time.Time, council, console *time.Location) string {
	if t.IsZero() {
		return "–"
	}
	lt := t.In(council)
	s := lt.Format("Monday 2 January 2006, 15:04")
	if lang == "da" {
		s = schedule.Danish(lt)
	}
	if council.String() != console.String() {
		s += " (" + council.String() + "; " + when(t, console) + ")"
	}
	return s
}

// meetingDate is a meeting's date alone, for headings.
func meetingDate(lang string, t time.Time, loc *time.Location) string {
	lt := t.In(loc)
	if lang == "da" {
		return schedule.DanishDate(lt)
	}
	return lt.Format("2 January 2006")
}

// days writes a number of days as the language does (35, 0,5 / 0.5).
func days(lang string, d float64) string {
	s := strconv.FormatFloat(d, 'f', -1, 64)
	if lang == "da" {
		s = strings.Replace(s, ".", ",", 1)
	}
	return s
}

// period says council.watch_days in words: days, or for a watch of less
// than a day (a trial) hours, minutes or seconds.
func period(lang string, d float64) string {
	secs := d * 86400
	switch {
	case d == 1:
		return tr(lang, "u.day", "1")
	case d >= 1:
		return tr(lang, "u.days", days(lang, r1(d)))
	case secs >= 3600:
		return tr(lang, "u.hours", days(lang, r1(secs/3600)))
	case secs >= 60:
		return tr(lang, "u.minutes", days(lang, r1(secs/60)))
	}
	return tr(lang, "u.seconds", days(lang, math.Round(secs)))
}

// day is a date in the console's zone.
func day(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return "–"
	}
	return t.In(loc).Format("2006-01-02")
}

// --- meetings ----------------------------------------------------------------

type meetingRow struct {
	council.Meeting
	When, Moved, Cancelled string
}

type addForm struct{ At, Cap, Reason string }

type meetingsPage struct {
	Rule, Zone  string
	ZoneDiffers bool
	Cap         int
	WatchDays   string
	Upcoming    []meetingRow
	Recent      []meetingRow
	Waiting     int
	Unanswered  []watchRow
	Add         addForm
	Today       string // the add form's earliest date
}

func (c *Console) meetingRow(m council.Meeting, loc *time.Location) meetingRow {
	row := meetingRow{Meeting: m, When: meetingTime(c.lang, m.At, loc, c.loc)}
	if m.MovedFrom != nil {
		row.Moved = meetingTime(c.lang, *m.MovedFrom, loc, c.loc)
	}
	if m.Cancelled != nil {
		row.Cancelled = when(*m.Cancelled, c.loc)
	}
	return row
}

func (c *Console) meetingsData(k *council.Council) meetingsPage {
	loc := k.Rule().Loc
	now := c.now().In(loc)
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, loc)
	p := meetingsPage{Rule: ruleWords(c.lang, k.Rule()), Zone: loc.String(), ZoneDiffers: loc.String() != c.loc.String(), Cap: k.Cap(),
		WatchDays: period(c.lang, k.WatchDays()), Today: today.Format("2006-01-02T15:04")}
	for _, m := range k.Meetings(today.AddDate(0, -3, 0), today.AddDate(0, 6, 0)) {
		if m.Past {
			p.Recent = append(p.Recent, c.meetingRow(m, loc))
		} else {
			p.Upcoming = append(p.Upcoming, c.meetingRow(m, loc))
		}
	}
	slices.Reverse(p.Recent) // the latest first
	for _, ch := range k.Referrals(council.ReferralFilter{}) {
		if ch.Meeting == "" {
			p.Waiting++
		}
	}
	p.Unanswered = c.watchRows(k)
	return p
}

func (c *Console) meetings(w http.ResponseWriter, r *http.Request, ses *session) {
	k, ok := c.register(w, r, ses)
	if !ok {
		return
	}
	c.render(w, r, ses, http.StatusOK, "meetings", c.meetingsData(k))
}

// meetingAdd adds a meeting; the register audits it.
func (c *Console) meetingAdd(w http.ResponseWriter, r *http.Request, ses *session) {
	k, ok := c.register(w, r, ses)
	if !ok {
		return
	}
	f := addForm{At: strings.TrimSpace(r.PostForm.Get("at")), Cap: strings.TrimSpace(r.PostForm.Get("cap")), Reason: strings.TrimSpace(r.PostForm.Get("reason"))}
	var errs []string
	capacity := 0
	if f.Cap != "" {
		n, err := strconv.Atoi(f.Cap)
		if err != nil || n < 1 || n > 100 {
			errs = append(errs, tr(c.lang, "m.cap.bad"))
		}
		capacity = n
	}
	if _, err := k.Rule().ParseTime(f.At); err != nil {
		errs = append(errs, tr(c.lang, "m.at.bad"))
	}
	if f.Reason == "" {
		errs = append(errs, tr(c.lang, "q.reason.required"))
	}
	if len(errs) == 0 {
		m, err := k.AddMeeting(r.Context(), c.councilActor(r, ses), f.At, capacity, f.Reason)
		if err == nil {
			c.sessions.addFlash(ses, tr(c.lang, "m.added", meetingTime(c.lang, m.At, k.Rule().Loc, c.loc)))
			http.Redirect(w, r, "/console/meetings/"+urlPath(m.ID), http.StatusSeeOther)
			return
		}
		msg, ok := c.meetingError(k, err, f.At)
		if !ok {
			c.internal(w, r, "add meeting", err)
			return
		}
		errs = append(errs, msg)
	}
	p := c.meetingsData(k)
	p.Add = f
	c.render(w, r, ses, http.StatusBadRequest, "meetings", p, errs...)
}

// meetingError says a refused move or addition in words; false: not the
// coordinator's to fix.
func (c *Console) meetingError(k *council.Council, err error, at string) (string, bool) {
	switch {
	case errors.Is(err, council.ErrReasonRequired):
		return tr(c.lang, "q.reason.required"), true
	case errors.Is(err, council.ErrMeetingClash):
		other := ""
		if t, perr := k.Rule().ParseTime(at); perr == nil {
			start := time.Date(t.In(k.Rule().Loc).Year(), t.In(k.Rule().Loc).Month(), t.In(k.Rule().Loc).Day(), 0, 0, 0, 0, k.Rule().Loc)
			if ms := k.Meetings(start, start.AddDate(0, 0, 1)); len(ms) > 0 {
				other = meetingTime(c.lang, ms[0].At, k.Rule().Loc, c.loc)
			}
		}
		return tr(c.lang, "m.clash", other), true
	case errors.Is(err, council.ErrBadTime):
		return tr(c.lang, "m.at.bad"), true
	case errors.Is(err, council.ErrNoMeeting):
		return tr(c.lang, "err.notfound"), true
	}
	return "", false
}

// --- one meeting -------------------------------------------------------------

type moveForm struct{ At, Reason string }

// seatForm moves one child's seat to another meeting: the children still
// waiting for a recommendation, and the meetings ahead with room.
type seatForm struct {
	Letter, To, Reason string
	Children, Meetings []option
}

type meetingPage struct {
	M            meetingRow
	Zone         string
	ZoneDiffers  bool
	WatchDays    string
	Children     []childBlock
	Move         moveForm
	Seat         seatForm
	Withdraw     seatForm // the withdraw form: Letter, Reason and Children
	Reinstate    seatForm // the reinstate form: the withdrawn children, this meeting ("") or another with room
	CancelReason string   // the cancel form's reason, after a refusal
	Reason       string   // the agenda form's reason, after a refusal
}

func (c *Console) meeting(w http.ResponseWriter, r *http.Request, ses *session) {
	c.showMeeting(w, r, ses, http.StatusOK, meetingPage{})
}

func (c *Console) showMeeting(w http.ResponseWriter, r *http.Request, ses *session, status int, p meetingPage, errs ...string) {
	k, ok := c.register(w, r, ses)
	if !ok {
		return
	}
	v, err := k.MeetingView(r.Context(), r.PathValue("id"))
	if errors.Is(err, council.ErrNoMeeting) {
		c.fail(w, r, http.StatusNotFound)
		return
	}
	if err != nil {
		c.internal(w, r, "meeting view", err)
		return
	}
	loc := k.Rule().Loc
	p.M, p.Zone, p.ZoneDiffers, p.WatchDays = c.meetingRow(v.Meeting, loc), loc.String(), loc.String() != c.loc.String(), period(c.lang, k.WatchDays())
	for i, ch := range v.Children {
		p.Children = append(p.Children, c.childBlock(i+1, ch, k.WatchDays(), false))
	}
	if p.Move.At == "" {
		p.Move.At = v.Meeting.At.In(loc).Format("2006-01-02T15:04")
	}
	p.Seat.Children, p.Seat.Meetings, p.Withdraw.Children, p.Reinstate.Children, p.Reinstate.Meetings = nil, nil, nil, nil, nil
	for _, ch := range v.Children {
		label := tr(c.lang, "sm.child.opt", ch.LetterID, cmp.Or(ch.GP.Name, orgIDs(ch.GP), "–"))
		switch ch.State {
		case "answered":
		case "withdrawn":
			p.Reinstate.Children = append(p.Reinstate.Children, option{Value: ch.LetterID, Label: label, Selected: ch.LetterID == p.Reinstate.Letter})
		default:
			p.Seat.Children = append(p.Seat.Children, option{Value: ch.LetterID, Label: label, Selected: ch.LetterID == p.Seat.Letter})
			p.Withdraw.Children = append(p.Withdraw.Children, option{Value: ch.LetterID, Label: label, Selected: ch.LetterID == p.Withdraw.Letter})
		}
	}
	if m := v.Meeting; !m.Past && m.Cancelled == nil && m.Room > 0 {
		// A withdrawn child takes no place: one free here is its own.
		p.Reinstate.Meetings = append(p.Reinstate.Meetings, option{Value: "", Label: tr(c.lang, "ri.here", formatNum(c.lang, m.Room)), Selected: p.Reinstate.To == ""})
	}
	now := time.Now()
	for _, m := range k.Meetings(now, now.AddDate(1, 0, 0)) {
		if m.ID != v.Meeting.ID && !m.Past && m.Room > 0 {
			label := tr(c.lang, "sm.meeting.opt", meetingTime(c.lang, m.At, loc, c.loc), formatNum(c.lang, m.Room))
			p.Seat.Meetings = append(p.Seat.Meetings, option{Value: m.ID, Label: label, Selected: m.ID == p.Seat.To})
			p.Reinstate.Meetings = append(p.Reinstate.Meetings, option{Value: m.ID, Label: label, Selected: m.ID == p.Reinstate.To})
		}
	}
	c.render(w, r, ses, status, "meeting", p, errs...)
}

// meetingCancel cancels a meeting that seats no child; the register
// audits it.
func (c *Console) meetingCancel(w http.ResponseWriter, r *http.Request, ses *session) {
	k, ok := c.register(w, r, ses)
	if !ok {
		return
	}
	id := r.PathValue("id")
	reason := strings.TrimSpace(r.PostForm.Get("reason"))
	m, err := k.CancelMeeting(r.Context(), c.councilActor(r, ses), id, reason)
	var msg string
	switch {
	case err == nil:
		c.sessions.addFlash(ses, tr(c.lang, "mc.done", meetingTime(c.lang, m.At, k.Rule().Loc, c.loc)))
		http.Redirect(w, r, "/console/meetings/"+urlPath(id), http.StatusSeeOther)
		return
	case errors.Is(err, council.ErrNoMeeting):
		c.fail(w, r, http.StatusNotFound)
		return
	case errors.Is(err, council.ErrReasonRequired):
		msg = tr(c.lang, "q.reason.required")
	case errors.Is(err, council.ErrNotEmpty):
		msg = tr(c.lang, "mc.notempty")
	case errors.Is(err, council.ErrBadTime):
		msg = tr(c.lang, "mc.past")
	default:
		c.internal(w, r, "cancel meeting", err)
		return
	}
	c.showMeeting(w, r, ses, http.StatusBadRequest, meetingPage{CancelReason: reason}, msg)
}

// referralWithdraw withdraws a child's referral on this meeting; the
// register audits it.
func (c *Console) referralWithdraw(w http.ResponseWriter, r *http.Request, ses *session) {
	c.seatAction(w, r, ses, "withdraw a referral",
		func(k *council.Council, who council.Actor, f seatForm) (council.Child, error) {
			return k.WithdrawReferral(r.Context(), who, f.Letter, f.Reason)
		},
		func(_ *council.Council, ch council.Child) string { return tr(c.lang, "wd.done", ch.LetterID) },
		func(f seatForm) meetingPage { return meetingPage{Withdraw: f} })
}

// referralReinstate undoes the withdrawal of a child's referral on this
// meeting, here or in the meeting picked; the register audits it.
func (c *Console) referralReinstate(w http.ResponseWriter, r *http.Request, ses *session) {
	c.seatAction(w, r, ses, "reinstate a referral",
		func(k *council.Council, who council.Actor, f seatForm) (council.Child, error) {
			return k.ReinstateReferral(r.Context(), who, f.Letter, f.To, f.Reason)
		},
		func(k *council.Council, ch council.Child) string {
			return tr(c.lang, "ri.done", ch.LetterID, c.meetingWhen(k, ch.Meeting))
		},
		func(f seatForm) meetingPage { return meetingPage{Reinstate: f} })
}

// seatMove moves a child's seat from this meeting to another; the register
// audits it.
func (c *Console) seatMove(w http.ResponseWriter, r *http.Request, ses *session) {
	c.seatAction(w, r, ses, "move a seat",
		func(k *council.Council, who council.Actor, f seatForm) (council.Child, error) {
			return k.MoveReferral(r.Context(), who, f.Letter, f.To, f.Reason)
		},
		func(k *council.Council, ch council.Child) string {
			return tr(c.lang, "sm.done", ch.LetterID, c.meetingWhen(k, ch.Meeting))
		},
		func(f seatForm) meetingPage { return meetingPage{Seat: f} })
}

// seatAction runs a coordinator's action on a child's seat, posted from
// this meeting's page: done words the flash after it, and a refusal shows
// the page again with the form as back fills it.
func (c *Console) seatAction(w http.ResponseWriter, r *http.Request, ses *session, what string,
	act func(k *council.Council, who council.Actor, f seatForm) (council.Child, error),
	done func(k *council.Council, ch council.Child) string, back func(f seatForm) meetingPage) {
	k, ok := c.register(w, r, ses)
	if !ok {
		return
	}
	id := r.PathValue("id")
	f := seatForm{Letter: r.PostForm.Get("letter"), To: r.PostForm.Get("to"), Reason: strings.TrimSpace(r.PostForm.Get("reason"))}
	ch, err := act(k, c.councilActor(r, ses), f)
	if err == nil {
		c.sessions.addFlash(ses, done(k, ch))
		http.Redirect(w, r, "/console/meetings/"+urlPath(id), http.StatusSeeOther)
		return
	}
	msg, ok := c.seatError(err)
	if !ok {
		c.internal(w, r, what, err)
		return
	}
	c.showMeeting(w, r, ses, http.StatusBadRequest, back(f), msg)
}

// meetingWhen is when meeting id is, as the console writes it.
func (c *Console) meetingWhen(k *council.Council, id string) string {
	m, _ := k.Meeting(id)
	return meetingTime(c.lang, m.At, k.Rule().Loc, c.loc)
}

// seatError words the register's refusal of an action on a child's seat.
func (c *Console) seatError(err error) (string, bool) {
	switch {
	case errors.Is(err, council.ErrReasonRequired):
		return tr(c.lang, "q.reason.required"), true
	case errors.Is(err, council.ErrNoRoom):
		return tr(c.lang, "sm.noroom"), true
	case errors.Is(err, council.ErrAnswered):
		return tr(c.lang, "sm.answered"), true
	case errors.Is(err, council.ErrWithdrawn):
		return tr(c.lang, "sm.withdrawn"), true
	case errors.Is(err, council.ErrChildOpen):
		return tr(c.lang, "ri.childopen"), true
	case errors.Is(err, council.ErrNotSeat), errors.Is(err, council.ErrNoReferral):
		return tr(c.lang, "sm.noseat"), true
	case errors.Is(err, council.ErrBadTime), errors.Is(err, council.ErrNoMeeting):
		return tr(c.lang, "sm.past"), true
	}
	return "", false
}

// meetingMove moves a meeting; the register audits it.
func (c *Console) meetingMove(w http.ResponseWriter, r *http.Request, ses *session) {
	k, ok := c.register(w, r, ses)
	if !ok {
		return
	}
	id := r.PathValue("id")
	f := moveForm{At: strings.TrimSpace(r.PostForm.Get("at")), Reason: strings.TrimSpace(r.PostForm.Get("reason"))}
	var errs []string
	if _, err := k.Rule().ParseTime(f.At); err != nil {
		errs = append(errs, tr(c.lang, "m.at.bad"))
	}
	if f.Reason == "" {
		errs = append(errs, tr(c.lang, "q.reason.required"))
	}
	if len(errs) == 0 {
		m, err := k.MoveMeeting(r.Context(), c.councilActor(r, ses), id, f.At, f.Reason)
		if errors.Is(err, council.ErrNoMeeting) {
			c.fail(w, r, http.StatusNotFound)
			return
		}
		if err == nil {
			c.sessions.addFlash(ses, tr(c.lang, "mv.done", meetingTime(c.lang, m.At, k.Rule().Loc, c.loc), formatNum(c.lang, m.Referrals)))
			http.Redirect(w, r, "/console/meetings/"+urlPath(id), http.StatusSeeOther)
			return
		}
		msg, ok := c.meetingError(k, err, f.At)
		if !ok {
			c.internal(w, r, "move meeting", err)
			return
		}
		errs = append(errs, msg)
	}
	c.showMeeting(w, r, ses, http.StatusBadRequest, meetingPage{Move: f}, errs...)
}

// --- a child's facts ---------------------------------------------------------

// line is one fact: text, and where it links to (a letter's journey).
type line struct {
	Text, Href string
	Warn       bool
}

// row is a label and its facts.
type row struct {
	ID, Label string
	Lines     []line
}

// childBlock is one child as the meeting page and the agenda show it. The
// same rows make the page, the printed agenda and the PDF, so the three
// say the same.
type childBlock struct {
	N        int
	Key      string
	Heading  string
	Name     string // the agenda only
	State    string // waiting, answered, unanswered
	Flag     string // set when the watch flagged it
	LetterID string
	Rows     []row
}

func (c *Console) journeyLink(id string) string { return "/console/letters/" + urlPath(id) }

// childBlock lays out one child; withName: the agenda (the name was read).
func (c *Console) childBlock(n int, ch council.Child, watchDays float64, withName bool) childBlock {
	b := childBlock{N: n, Key: ch.Key, State: ch.State, LetterID: ch.LetterID, Heading: tr(c.lang, "mt.child", n)}
	if withName {
		b.Name = ch.Name
		if ch.NameUnavailable || ch.Name == "" {
			b.Name = tr(c.lang, "ag.name.gone")
		}
		b.Heading = fmt.Sprintf("%d. %s", n, b.Name)
	}
	lang := c.lang
	state := line{}
	switch ch.State {
	case "answered":
		state.Text = tr(lang, "st.answered")
	case "withdrawn":
		state.Text = tr(lang, "st.withdrawn", when(*ch.Withdrawn, c.loc))
	case "unanswered":
		state = line{Text: tr(lang, "st.unanswered", period(lang, watchDays), day(ch.Due, c.loc)), Warn: true}
	default:
		state.Text = tr(lang, "st.waiting", day(ch.Due, c.loc))
	}
	states := []line{state}
	if ch.MovedFrom != "" {
		states = append(states, line{Text: tr(lang, "st.moved", ch.MovedFrom)})
	}
	if ch.Flagged != nil {
		b.Flag = tr(lang, "st.flagged", period(lang, watchDays), when(*ch.Flagged, c.loc))
		if ch.State != "unanswered" {
			states = append(states, line{Text: b.Flag})
		}
	}
	gp := ch.GP.Name
	if ids := orgIDs(ch.GP); ids != "" {
		gp = strings.TrimSpace(gp + " (" + ids + ")")
	}
	letters := []line{{Text: ch.LetterID, Href: c.journeyLink(ch.LetterID)}}
	received := []line{{Text: when(ch.Received, c.loc)}}
	gps := []line{{Text: cmp.Or(gp, "–")}}
	for _, j := range ch.LaterReferrals {
		// A later referral of the child that joined this seat: its
		// letter, date and practice under the first's.
		jgp := j.GP.Name
		if ids := orgIDs(j.GP); ids != "" {
			jgp = strings.TrimSpace(jgp + " (" + ids + ")")
		}
		letters = append(letters, line{Text: tr(lang, "ch.again", j.LetterID), Href: c.journeyLink(j.LetterID)})
		received = append(received, line{Text: tr(lang, "ch.again", when(j.Received, c.loc))})
		gps = append(gps, line{Text: tr(lang, "ch.again", cmp.Or(jgp, "–"))})
	}
	b.Rows = []row{
		{ID: "referral", Label: tr(lang, "ch.letter"), Lines: letters},
		{ID: "received", Label: tr(lang, "ch.received"), Lines: received},
		{ID: "gp", Label: tr(lang, "ch.gp"), Lines: gps},
		{ID: "state", Label: tr(lang, "ch.state"), Lines: states},
		{ID: "consent", Label: tr(lang, "ch.consent"), Lines: c.consentLines(ch.Consent)},
		{ID: "documents", Label: tr(lang, "ch.documents"), Lines: c.documentLines(ch)},
		{ID: "recommendation", Label: tr(lang, "ch.recommendation"), Lines: c.recommendationLines(ch)},
		{ID: "receipt", Label: tr(lang, "ch.receipt"), Lines: c.receiptLines(ch)},
	}
	if len(ch.Rejections) > 0 {
		var ls []line
		for _, x := range ch.Rejections {
			ls = append(ls, line{Text: tr(lang, "doc.line", kindWord(lang, x.Kind), c.source(x.Source), when(x.Received, c.loc)), Href: c.journeyLink(x.LetterID), Warn: true})
		}
		b.Rows = append(b.Rows, row{ID: "rejections", Label: tr(lang, "ch.rejections"), Lines: ls})
	}
	return b
}

func orgIDs(o council.Org) string {
	var ids []string
	if o.GLN != "" {
		ids = append(ids, "GLN "+o.GLN)
	}
	if o.SOR != "" {
		ids = append(ids, "SOR "+o.SOR)
	}
	return strings.Join(ids, ", ")
}

func kindWord(lang, k string) string { return trOr(lang, "kind."+k, k) }

// source names a letter's source adapter in words where the catalogue
// knows it (the names the configuration examples use), else as named.
func (c *Console) source(s string) string { return trOr(c.lang, "src."+s, s) }

// destination names a destination by its sector, and by name.
func (c *Console) destination(dest, sector string) string {
	if sector == "" {
		return dest
	}
	return trOr(c.lang, "scope."+sector, sector) + " (" + dest + ")"
}

// recipient says whom a delivery reached: organisations by GLN or SOR,
// parents as a count (as the register gives them: "parents (2)").
func (c *Console) recipient(to string) string {
	if n, ok := strings.CutPrefix(to, "parents ("); ok {
		return tr(c.lang, "to.parents", strings.TrimSuffix(n, ")"))
	}
	return to
}

func (c *Console) consentLines(k council.ConsentState) []line {
	lang := c.lang
	var ls []line
	for _, s := range letter.Scopes {
		// The register lists the sectors whose consent a route needs: a
		// consent no route asks for is not "missing".
		st, ok := k.Sectors[string(s)]
		if !ok {
			continue
		}
		ls = append(ls, line{Text: trOr(lang, "scope."+string(s), string(s)) + ": " + trOr(lang, "cs."+st, st), Warn: st == "withdrawn" || st == "refused"})
	}
	src := trOr(lang, "cs.src."+k.Source, k.Source)
	if k.GivenBy != "" || k.GivenAt != nil {
		form := map[string]string{"written": tr(lang, "c.written"), "oral": tr(lang, "c.oral")}[k.Form]
		at := "–"
		if k.GivenAt != nil {
			at = day(*k.GivenAt, c.loc)
		}
		src += "; " + tr(lang, "cs.given.by", trOr(lang, "givenby."+k.GivenBy, cmp.Or(k.GivenBy, "–")), cmp.Or(form, "–"), at)
	}
	if k.WithdrawnAt != nil {
		src += "; " + tr(lang, "cs.withdrawn.at", day(*k.WithdrawnAt, c.loc))
	}
	return append(ls, line{Text: src})
}

// deliveryLines are where a letter went, where it waits, and the
// acknowledgements.
func (c *Console) deliveryLines(t council.Tracked) []line {
	lang := c.lang
	var ls []line
	for _, d := range t.Deliveries {
		to := c.destination(d.Destination, d.Sector)
		if d.To != "" {
			to += " – " + c.recipient(d.To)
		}
		ls = append(ls, line{Text: tr(lang, "dl.delivered", to, when(d.At, c.loc))})
	}
	for _, x := range t.Waiting {
		why := trOr(lang, "step."+x.Step, x.Step)
		if x.Code != "" {
			why += ": " + explainCode(lang, x.Code, x.Reason).What
		}
		ls = append(ls, line{Text: tr(lang, "dl.waiting", c.destination(x.Destination, x.Sector), why), Warn: true})
	}
	for _, a := range t.Acknowledgements {
		key := "ack.negative"
		if a.Positive {
			key = "ack.positive"
		}
		ls = append(ls, line{Text: tr(lang, key, when(a.At, c.loc)), Warn: !a.Positive})
	}
	return ls
}

func (c *Console) documentLines(ch council.Child) []line {
	lang := c.lang
	ls := []line{}
	if len(ch.Referral.Deliveries) == 0 && len(ch.Referral.Waiting) == 0 {
		ls = append(ls, line{Text: tr(lang, "doc.notfiled")})
	}
	for _, d := range ch.Referral.Deliveries {
		text := tr(lang, "doc.filed", c.destination(d.Destination, d.Sector), when(d.At, c.loc))
		if d.RemoteID != "" {
			text += " (" + d.RemoteID + ")"
		}
		ls = append(ls, line{Text: text})
	}
	for _, x := range ch.Referral.Waiting {
		ls = append(ls, c.deliveryLines(council.Tracked{Waiting: []council.Waiting{x}})...)
	}
	for _, d := range ch.Documents {
		ls = append(ls, line{Text: tr(lang, "doc.line", kindWord(lang, d.Kind), c.source(d.Source), when(d.Received, c.loc)), Href: c.journeyLink(d.LetterID)})
	}
	if len(ch.Documents) == 0 {
		ls = append(ls, line{Text: tr(lang, "doc.none")})
	}
	return ls
}

func (c *Console) recommendationLines(ch council.Child) []line {
	lang := c.lang
	if len(ch.Recommendations) == 0 {
		return []line{{Text: tr(lang, "rec.none")}}
	}
	var ls []line
	for _, x := range ch.Recommendations {
		ls = append(ls, c.trackedLines(tr(lang, "rec.line", c.source(x.Source), when(x.Received, c.loc)), x)...)
	}
	// A GP who referred the child, and whom the recommendation did not
	// reach itself, got a copy in its own referral's thread.
	copies := func(gp council.Org, xs []council.Tracked) {
		name := cmp.Or(gp.Name, orgIDs(gp), "–")
		for _, x := range xs {
			ls = append(ls, c.trackedLines(tr(lang, "rec.copy", name, when(x.Received, c.loc)), x)...)
		}
	}
	copies(ch.GP, ch.AnswerCopies)
	for _, j := range ch.LaterReferrals {
		copies(j.GP, j.AnswerCopies)
	}
	return ls
}

func (c *Console) receiptLines(ch council.Child) []line {
	ls := c.oneReceipt(ch.Receipt)
	ls = append(ls, c.newDateLines(ch.NewDates, false)...)
	for _, j := range ch.LaterReferrals {
		// Each GP who referred the child again got a receipt of its own.
		r := c.oneReceipt(j.Receipt)
		r[0].Text = tr(c.lang, "ch.again", r[0].Text)
		ls = append(ls, r...)
		ls = append(ls, c.newDateLines(j.NewDates, true)...)
	}
	return ls
}

// newDateLines are the letters that told a GP a new meeting date; again
// marks those to a GP who referred the child again.
func (c *Console) newDateLines(xs []council.Tracked, again bool) []line {
	var ls []line
	for _, x := range xs {
		h := tr(c.lang, "receipt.newdate", when(x.Received, c.loc))
		if again {
			h = tr(c.lang, "ch.again", h)
		}
		ls = append(ls, c.trackedLines(h, x)...)
	}
	return ls
}

func (c *Console) oneReceipt(rc *council.Tracked) []line {
	if rc == nil {
		return []line{{Text: tr(c.lang, "receipt.none")}}
	}
	return c.trackedLines(tr(c.lang, "receipt.made", when(rc.Received, c.loc)), *rc)
}

// trackedLines are a letter's heading, linked to its journey, and where
// it went and waits ("not delivered anywhere yet" when nowhere).
func (c *Console) trackedLines(heading string, x council.Tracked) []line {
	ls := []line{{Text: heading, Href: c.journeyLink(x.LetterID)}}
	if len(x.Deliveries) == 0 && len(x.Waiting) == 0 {
		ls = append(ls, line{Text: tr(c.lang, "dl.none")})
	}
	return append(ls, c.deliveryLines(x)...)
}

// --- the referral watch ------------------------------------------------------

// watchRow is a referral past the watch without a recommendation: no
// child, the letter and its meeting.
type watchRow struct {
	LetterID, Meeting, MeetingWhen, Received, Due, GP string
}

func (c *Console) watchRows(k *council.Council) []watchRow {
	var out []watchRow
	loc := k.Rule().Loc
	whenOf := map[string]string{}
	for _, ch := range k.Referrals(council.ReferralFilter{State: "unanswered"}) {
		w := watchRow{LetterID: ch.LetterID, Meeting: ch.Meeting, Received: when(ch.Received, c.loc), Due: when(ch.Due, c.loc), GP: cmp.Or(ch.GP.Name, orgIDs(ch.GP))}
		if ch.Meeting != "" {
			if _, ok := whenOf[ch.Meeting]; !ok {
				whenOf[ch.Meeting] = ch.Meeting // a meeting moved months away shows its id
				if d, err := time.ParseInLocation(time.DateOnly, ch.Meeting, loc); err == nil {
					for _, m := range k.Meetings(d.AddDate(0, -2, 0), d.AddDate(0, 2, 0)) {
						if m.ID == ch.Meeting {
							whenOf[ch.Meeting] = meetingTime(c.lang, m.At, loc, c.loc)
						}
					}
				}
			}
			w.MeetingWhen = whenOf[ch.Meeting]
		}
		out = append(out, w)
	}
	return out
}

// --- the agenda --------------------------------------------------------------

type agendaPage struct {
	ID     string
	Doc    agendapdf.Document
	Blocks []childBlock
}

// agenda is the meeting with the children's names, for the council: shown
// for printing, or downloaded as PDF or CSV. The names are personal data
// leaving the hub, so each asks for a reason and the register audits it
// (agenda-export) before it reads them.
func (c *Console) agenda(w http.ResponseWriter, r *http.Request, ses *session) {
	k, ok := c.register(w, r, ses)
	if !ok {
		return
	}
	id := r.PathValue("id")
	reason := strings.TrimSpace(r.PostForm.Get("reason"))
	format := r.PostForm.Get("format")
	if format != "print" && format != "pdf" && format != "csv" {
		c.showMeeting(w, r, ses, http.StatusBadRequest, meetingPage{Reason: reason}, tr(c.lang, "ag.format.bad"))
		return
	}
	if reason == "" {
		c.showMeeting(w, r, ses, http.StatusBadRequest, meetingPage{}, tr(c.lang, "ag.reason.required"))
		return
	}
	v, err := k.Agenda(r.Context(), c.councilActor(r, ses), id, reason, format)
	if errors.Is(err, council.ErrNoMeeting) {
		c.fail(w, r, http.StatusNotFound)
		return
	}
	if err != nil {
		c.internal(w, r, "agenda", err)
		return
	}
	file := "samraad-" + strings.ReplaceAll(id, `"`, "")
	switch format {
	case "csv":
		var b bytes.Buffer
		if err := k.WriteCSV(&b, v); err != nil {
			c.internal(w, r, "agenda csv", err)
			return
		}
		download(w, "text/csv; charset=utf-8", file+".csv", b.Bytes())
		return
	}
	p := agendaPage{ID: id}
	for i, ch := range v.Children {
		p.Blocks = append(p.Blocks, c.childBlock(i+1, ch, k.WatchDays(), true))
	}
	p.Doc = c.agendaDoc(k, v, p.Blocks, ses)
	if format == "pdf" {
		var b bytes.Buffer
		if err := agendapdf.Write(&b, p.Doc); err != nil {
			c.internal(w, r, "agenda pdf", err)
			return
		}
		download(w, "application/pdf", file+".pdf", b.Bytes())
		return
	}
	c.render(w, r, ses, http.StatusOK, "agenda", p)
}

// agendaDoc is the agenda's text: the print view and the PDF use it.
func (c *Console) agendaDoc(k *council.Council, v council.MeetingView, blocks []childBlock, ses *session) agendapdf.Document {
	loc := k.Rule().Loc
	m := v.Meeting
	d := agendapdf.Document{
		Title:   tr(c.lang, "ag.heading", meetingTime(c.lang, m.At, loc, c.loc)),
		Notice:  tr(c.lang, "ag.confidential"),
		Empty:   tr(c.lang, "mt.empty"),
		Footer:  tr(c.lang, "ag.footer", m.ID),
		PageOf:  tr(c.lang, "ag.page", "{page}", "{pages}"),
		Lang:    c.lang,
		Created: c.now(),
	}
	d.Lines = append(d.Lines, tr(c.lang, "ag.places", formatNum(c.lang, m.Referrals), formatNum(c.lang, m.Cap)))
	if m.MovedFrom != nil {
		d.Lines = append(d.Lines, tr(c.lang, "m.moved", meetingTime(c.lang, *m.MovedFrom, loc, c.loc)))
	}
	d.Lines = append(d.Lines, tr(c.lang, "ag.printed", when(c.now(), c.loc), ses.user))
	for _, b := range blocks {
		s := agendapdf.Section{Heading: b.Heading, Flag: b.Flag}
		for _, rw := range b.Rows {
			pr := agendapdf.Row{Label: rw.Label}
			for _, l := range rw.Lines {
				pr.Lines = append(pr.Lines, l.Text)
			}
			s.Rows = append(s.Rows, pr)
		}
		d.Sections = append(d.Sections, s)
	}
	return d
}

func download(w http.ResponseWriter, contentType, name string, data []byte) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	h.Set("Content-Length", strconv.Itoa(len(data)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(data)
}
