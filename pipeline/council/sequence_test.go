package council

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/samhub/samhub/internal/seqtest"
	"github.com/samhub/samhub/pipeline/council/schedule"
	"github.com/samhub/samhub/pipeline/letter"
)

// The sequence test drives the register and a small reference model of it
// with the same seeded random operations (referrals from three GPs about
// three or four children, some referred twice; meetings added, moved and
// cancelled; seats moved, withdrawn and reinstated; recommendations; time
// passing with the watch; restarts) and compares them after every step:
// where each referral sits and how it stands, the meetings, and every
// letter the hub made (receipts, new dates, answer copies), which must be
// exactly the ones the model expects, to the party the model expects.
//
// SAMHUB_COUNCIL_SEQ_SEEDS and SAMHUB_COUNCIL_SEQ_STEPS run more (the
// default is short); SAMHUB_COUNCIL_SEQ_SEED=N replays one seed.

var seqGPs = []letter.Party{practiceAero, practiceOster,
	{Role: letter.RoleGP, Name: "Lægehuset Prøvevej", GLN: "5790000000111", SOR: "999999999999999"}}

// seqChildren are fictitious test persons; a filler (index -1) is a child
// named by no number (the register tells them apart by thread).
var seqChildren = []letter.Patient{
	{CPR: "2509479989", GivenName: "Bruno Test", FamilyName: "Elmer"},
	{CPR: "1509819996", GivenName: "Bruno Test", FamilyName: "Elmer"},
	{ReplacementID: "0703921VJ4", GivenName: "Birgit", FamilyName: "Berggren"},
	{CPR: "2512489996", GivenName: "Bruno Test", FamilyName: "Elmer"},
}

const seqTemplate = "NY|{{.Weekday}} den {{.Date}} kl. {{.Time}}|"
const seqMovedTemplate = "NY|{{.Weekday}} den {{.Date}} kl. {{.Time}}|{{.Before}}"

// seqOp is one operation, recorded so that a failing sequence can be
// replayed and shrunk.
type seqOp struct {
	Kind    string // refer, rec, mmove, mcancel, madd, rmove, withdraw, reinstate, time, restart
	ID      string // the referral (refer: the new one) or recommendation letter id
	Ref     string // rec: the referral it answers
	Child   int
	GP      int
	Meeting string
	At      string // local "2006-01-02 15:04"
	Cap     int
	Dur     time.Duration
}

func (o seqOp) String() string {
	switch o.Kind {
	case "refer":
		return fmt.Sprintf("refer %s child %d gp %d", o.ID, o.Child, o.GP)
	case "rec":
		return fmt.Sprintf("recommendation %s answering %s", o.ID, o.Ref)
	case "mmove":
		return fmt.Sprintf("move meeting %s to %s", o.Meeting, o.At)
	case "mcancel":
		return "cancel meeting " + o.Meeting
	case "madd":
		return fmt.Sprintf("add meeting %s cap %d", o.At, o.Cap)
	case "rmove":
		return fmt.Sprintf("move referral %s to %s", o.ID, o.Meeting)
	case "withdraw":
		return "withdraw " + o.ID
	case "reinstate":
		return fmt.Sprintf("reinstate %s to %q", o.ID, o.Meeting)
	case "time":
		return "time passes " + o.Dur.String() + ", the watch runs"
	case "restart":
		return "restart"
	}
	return o.Kind
}

// seqConfig is a seed's configuration.
type seqConfig struct {
	Cap, Cutoff int
	Fill        bool // fillers take every meeting of the next two years first
}

// ---- the model ----

type mMeeting struct {
	id        string
	at        time.Time
	cap       int
	cancelled bool
}

type mRef struct {
	id       string
	child    int // -1: a filler
	gp       int
	received time.Time
	seat     string   // the seat it joined ("" for a seat)
	joined   []string // a seat's later referrals, in the order they joined
	meeting  string   // a seat's meeting ("" waiting)
	withdraw bool
	recs     []string
	flagged  bool
	told     time.Time // the meeting time its GP was last told (zero: none)
}

func (r *mRef) awaits() bool { return len(r.recs) == 0 && !r.withdraw }

type wantLetter struct {
	kind        string // receipt, newdate, copy
	ref         string
	meeting     string
	at, before  time.Time
	rec         string
	receiptText bool // a new date's letter to a GP told no date has the receipt's text
}

type model struct {
	rule     schedule.Rule
	cfg      seqConfig
	watch    time.Duration
	now      time.Time
	meetings map[string]*mMeeting // materialised: touched rule meetings and added ones
	refs     map[string]*mRef
	order    []string // referral ids in arrival order
	want     map[string]wantLetter
	notices  []string
}

func (m *model) capOf(x *mMeeting) int { return cmp.Or(x.cap, m.cfg.Cap) }

// lookup is a meeting by id: materialised, or the rule's not touched yet.
func (m *model) lookup(id string) (*mMeeting, bool) {
	if x, ok := m.meetings[id]; ok {
		return x, true
	}
	d, err := time.ParseInLocation(time.DateOnly, id, m.rule.Loc)
	if err != nil {
		return nil, false
	}
	t := m.rule.In(d.Year(), d.Month())
	if m.rule.ID(t) != id {
		return nil, false
	}
	return &mMeeting{id: id, at: t.UTC()}, true
}

func (m *model) materialise(id string) *mMeeting {
	x, _ := m.lookup(id)
	m.meetings[id] = x
	return x
}

func (m *model) between(from, to time.Time) []*mMeeting {
	var out []*mMeeting
	for _, x := range m.meetings {
		if !x.at.Before(from) && x.at.Before(to) {
			out = append(out, x)
		}
	}
	for _, t := range m.rule.Between(from, to) {
		if _, ok := m.meetings[m.rule.ID(t)]; !ok {
			out = append(out, &mMeeting{id: m.rule.ID(t), at: t.UTC()})
		}
	}
	slices.SortFunc(out, func(a, b *mMeeting) int { return cmp.Or(a.at.Compare(b.at), strings.Compare(a.id, b.id)) })
	return out
}

func (m *model) taking(id string) int {
	n := 0
	for _, r := range m.refs {
		if r.seat == "" && r.meeting == id && !r.withdraw {
			n++
		}
	}
	return n
}

func (m *model) sameChild(a, b *mRef) bool {
	if a.child < 0 || b.child < 0 {
		return a.id == b.id
	}
	return a.child == b.child
}

// seatsOf are the seats of r's child, oldest first.
func (m *model) seatsOf(r *mRef) []*mRef {
	var out []*mRef
	for _, id := range m.order {
		if o := m.refs[id]; o.seat == "" && m.sameChild(o, r) {
			out = append(out, o)
		}
	}
	return out
}

func (m *model) seatOf(r *mRef) *mRef {
	if r.seat != "" {
		return m.refs[r.seat]
	}
	return r
}

// gps are the referrals whose GPs a seat's letters go to: the seat's and
// its later ones'.
func (m *model) gps(seat *mRef) []*mRef {
	out := []*mRef{seat}
	for _, j := range seat.joined {
		out = append(out, m.refs[j])
	}
	return out
}

func (m *model) expect(id string, w wantLetter) { m.want[id] = w }

// receipt tells r's GP the meeting that takes it: a recent referral, or
// (seatedNow) one seated from the waiting just now, whose GP knows no date.
func (m *model) receipt(r *mRef, x *mMeeting, seatedNow bool) {
	if !x.at.After(m.now) || !seatedNow && m.now.Sub(r.received) > receiptMaxAge {
		return
	}
	m.expect(ReceiptID(r.id), wantLetter{kind: "receipt", ref: r.id, meeting: x.id, at: x.at})
	r.told = x.at
}

// tell is a new date for every GP of seat: the one each was last told,
// and the new one; nothing for a meeting that has begun or is cancelled.
func (m *model) tell(seat *mRef, x *mMeeting) {
	if !x.at.After(m.now) || x.cancelled {
		return
	}
	for _, g := range m.gps(seat) {
		m.expect(NewDateID(g.id, m.now), wantLetter{kind: "newdate", ref: g.id, meeting: x.id, at: x.at, before: g.told, receiptText: g.told.IsZero()})
		g.told = x.at
	}
}

// seatIn finds the first meeting after earliest with room.
func (m *model) seatIn(earliest time.Time) (*mMeeting, bool) {
	for _, x := range m.between(earliest, earliest.Add(horizon)) {
		if !x.cancelled && x.at.After(earliest) && m.taking(x.id) < m.capOf(x) {
			return x, true
		}
	}
	return nil, false
}

func (m *model) refer(op seqOp) {
	r := &mRef{id: op.ID, child: op.Child, gp: op.GP, received: m.now}
	if _, dup := m.refs[r.id]; dup {
		return
	}
	for _, o := range m.seatsOf(r) {
		if !o.awaits() || o.received.After(r.received) {
			continue
		}
		if o.meeting != "" {
			if x, _ := m.lookup(o.meeting); !x.at.After(r.received) {
				continue
			}
		}
		m.refs[r.id], r.seat = r, o.id
		m.order = append(m.order, r.id)
		o.joined = append(o.joined, r.id)
		if o.meeting != "" {
			x, _ := m.lookup(o.meeting)
			m.receipt(r, x, false)
		}
		return
	}
	m.refs[r.id] = r
	m.order = append(m.order, r.id)
	if x, ok := m.seatIn(r.received.Add(time.Duration(m.cfg.Cutoff) * 24 * time.Hour)); ok {
		r.meeting = m.materialise(x.id).id
		m.receipt(r, x, false)
	}
}

func (m *model) rec(op seqOp) {
	to := m.refs[op.Ref]
	seat := m.seatOf(to)
	answered := m.gps(seat)
	if !slices.Contains(seat.recs, op.ID) {
		seat.recs = append(seat.recs, op.ID)
	}
	if seat.child >= 0 {
		for _, o := range m.seatsOf(seat) {
			if o == seat || !o.awaits() || o.received.After(m.now) || o.meeting == "" {
				continue
			}
			if x, _ := m.lookup(o.meeting); x.at.After(m.now) {
				continue
			}
			o.recs = append(o.recs, op.ID)
			answered = append(answered, m.gps(o)...)
		}
	}
	// The recommendation names nobody: it reaches the GP of the referral
	// it answers; every other GP whose referral it answers gets one copy.
	reached := []int{to.gp}
	for _, a := range answered {
		if slices.Contains(reached, a.gp) {
			continue
		}
		reached = append(reached, a.gp)
		m.expect(CopyID(op.ID, a.id), wantLetter{kind: "copy", ref: a.id, rec: op.ID})
	}
}

var errNone = errors.New("")

// seat is a coordinator's action's referral: its seat, or an error as
// openSeat gives it.
func (m *model) seat(id string) (*mRef, error) {
	r, ok := m.refs[id]
	switch {
	case !ok:
		return nil, ErrNoReferral
	case r.seat != "":
		return nil, ErrNotSeat
	case len(r.recs) > 0:
		return nil, ErrAnswered
	}
	return r, nil
}

func (m *model) dest(id string) (*mMeeting, error) {
	x, ok := m.lookup(id)
	switch {
	case !ok:
		return nil, ErrNoMeeting
	case !x.at.After(m.now):
		return nil, ErrBadTime
	case x.cancelled:
		return nil, ErrNoRoom
	}
	return x, nil
}

func (m *model) moveSeat(r *mRef, to string, reinstate bool) error {
	x, err := m.dest(to)
	if err != nil {
		return err
	}
	if r.meeting == x.id {
		return nil
	}
	if m.taking(x.id) >= m.capOf(x) {
		return ErrNoRoom
	}
	r.meeting = m.materialise(x.id).id
	if reinstate {
		r.withdraw = false
	}
	m.tell(r, x)
	return nil
}

func (m *model) sameDay(id string, t time.Time) bool {
	start, _ := time.ParseInLocation(time.DateOnly, m.rule.ID(t), m.rule.Loc)
	for _, x := range m.between(start, start.AddDate(0, 0, 1)) {
		if x.id != id && !x.cancelled {
			return true
		}
	}
	return false
}

// do applies op to the model: the error the register is to refuse it with
// (nil: done).
func (m *model) do(op seqOp) error {
	switch op.Kind {
	case "refer":
		m.refer(op)
	case "rec":
		if _, ok := m.refs[op.Ref]; ok {
			m.rec(op)
		}
	case "mmove":
		x, ok := m.lookup(op.Meeting)
		if !ok {
			return ErrNoMeeting
		}
		t, _ := m.rule.ParseTime(op.At)
		if m.sameDay(op.Meeting, t) {
			return ErrMeetingClash
		}
		if x.at.Equal(t) {
			return nil
		}
		x = m.materialise(x.id)
		x.at = t.UTC()
		for _, id := range m.order {
			if r := m.refs[id]; r.seat == "" && r.meeting == x.id && r.awaits() {
				m.tell(r, x)
			}
		}
	case "mcancel":
		x, ok := m.lookup(op.Meeting)
		switch {
		case !ok:
			return ErrNoMeeting
		case !x.at.After(m.now):
			return ErrBadTime
		case x.cancelled:
			return nil
		case m.taking(x.id) > 0:
			return ErrNotEmpty
		}
		m.materialise(x.id).cancelled = true
	case "madd":
		t, _ := m.rule.ParseTime(op.At)
		id := m.rule.ID(t)
		if x, ok := m.lookup(id); ok && !x.cancelled {
			return ErrMeetingClash
		}
		if m.sameDay(id, t) {
			return ErrMeetingClash
		}
		m.meetings[id] = &mMeeting{id: id, at: t.UTC(), cap: op.Cap}
	case "rmove":
		r, err := m.seat(op.ID)
		if err != nil {
			return err
		}
		if r.withdraw {
			return ErrWithdrawn
		}
		return m.moveSeat(r, op.Meeting, false)
	case "withdraw":
		r, err := m.seat(op.ID)
		if err != nil {
			return err
		}
		r.withdraw = true
	case "reinstate":
		r, err := m.seat(op.ID)
		if err != nil || !r.withdraw {
			return err
		}
		for _, o := range m.seatsOf(r) {
			if o != r && o.awaits() {
				return ErrChildOpen
			}
		}
		if op.Meeting != "" && op.Meeting != r.meeting {
			return m.moveSeat(r, op.Meeting, true)
		}
		if r.meeting != "" {
			x, _ := m.lookup(r.meeting)
			switch {
			case !x.at.After(m.now):
				return ErrBadTime
			case x.cancelled:
				return ErrNoRoom
			case m.taking(x.id) >= m.capOf(x):
				return ErrNoRoom
			}
			// Its meeting may have moved while it was withdrawn, telling
			// its GPs nothing: they are told now.
			if x.at.After(m.now) && slices.ContainsFunc(m.gps(r), func(g *mRef) bool { return !g.told.Equal(x.at) }) {
				m.tell(r, x)
			}
		}
		r.withdraw = false
	case "time":
		m.now = m.now.Add(op.Dur)
		// The watch: flags, then seats the waiting (oldest first), then
		// tells what no letter told yet (nothing: every change is told
		// as it is made).
		for _, id := range m.order {
			r := m.refs[id]
			due := r.received.Add(m.watch)
			if r.seat != "" || !r.awaits() || r.flagged || m.now.Before(due) {
				continue
			}
			r.flagged = true
			if m.now.Sub(due) <= remindMaxAge {
				m.notices = append(m.notices, EventUnanswered+":"+r.id)
			}
		}
		for _, id := range m.order {
			r := m.refs[id]
			if r.seat != "" || r.meeting != "" || !r.awaits() {
				continue
			}
			earliest := m.now.Add(time.Duration(m.cfg.Cutoff) * 24 * time.Hour)
			if x, ok := m.seatIn(earliest); ok {
				r.meeting = m.materialise(x.id).id
				for _, g := range m.gps(r) {
					m.receipt(g, x, true)
				}
			}
		}
	}
	return nil
}

func (m *model) state(r *mRef) string {
	switch {
	case len(r.recs) > 0:
		return "answered"
	case r.withdraw:
		return "withdrawn"
	case !m.now.Before(r.received.Add(m.watch)):
		return "unanswered"
	}
	return "waiting"
}

// ---- the run ----

type seqRun struct {
	t      testing.TB
	f      *fixture
	c      *Council
	m      *model
	ctx    context.Context
	opts   Options
	seen   int // hub letters checked
	failed bool
	log    []string
}

func (s *seqRun) fail(format string, args ...any) {
	s.failed = true
	s.log = append(s.log, fmt.Sprintf(format, args...))
}

func newSeqRun(t testing.TB, cfg seqConfig) *seqRun {
	o := func(k *Options) {
		k.Meetings.Cap, k.Meetings.CutoffDays = cfg.Cap, cfg.Cutoff
		k.Receipt = Receipt{Enabled: true, Destination: "gp", Template: seqTemplate, MovedTemplate: seqMovedTemplate}
	}
	f := newFixtureTB(t, o)
	f.hub.noticeOn = true
	s := &seqRun{t: t, f: f, c: f.c, ctx: context.Background(), opts: newOptions(o)}
	s.m = &model{rule: f.c.rule, cfg: cfg, watch: f.c.watch, now: f.clock.now(), meetings: map[string]*mMeeting{}, refs: map[string]*mRef{}, want: map[string]wantLetter{}}
	return s
}

func (s *seqRun) letterOf(op seqOp) *letter.Letter {
	l := &letter.Letter{ID: op.ID, Kind: letter.KindReferral, Format: "xdis91", Source: "medcom", ThreadID: "episode-" + op.ID, Received: s.f.clock.now().UTC(),
		Sender: seqGPs[op.GP], Receivers: []letter.Party{theCouncil},
		Consent:  &letter.Consent{GivenBy: "custody-holder", Form: "oral", Scopes: []letter.Scope{letter.ScopeMunicipality, letter.ScopeGP}},
		Original: letter.Original{Data: []byte("<x/>")}}
	p := letter.Patient{GivenName: "Test", FamilyName: "Fyld"}
	if op.Child >= 0 {
		p = seqChildren[op.Child]
	}
	l.Patient = &p
	s.f.hub.mu.Lock()
	s.f.hub.letters[l.ID] = l
	s.f.hub.mu.Unlock()
	return l
}

// run applies op to the register; the error it answers with.
func (s *seqRun) run(op seqOp) error {
	who := Actor{Name: "koordinator", Role: "coordinator"}
	why := "Sekvenstest"
	var err error
	switch op.Kind {
	case "refer":
		err = s.c.Apply(s.ctx, s.letterOf(op), 1)
	case "rec":
		to, ok := s.m.refs[op.Ref]
		if !ok {
			return nil
		}
		l := &letter.Letter{ID: op.ID, Kind: letter.KindRecommendation, Source: "casesys", InReplyTo: op.Ref, ThreadID: "episode-" + op.Ref,
			Received: s.f.clock.now().UTC(), Patient: &letter.Patient{}}
		if to.child >= 0 {
			p := seqChildren[to.child]
			l.Patient = &p
		}
		s.f.hub.mu.Lock()
		s.f.hub.letters[l.ID] = l
		s.f.hub.mu.Unlock()
		err = s.c.Apply(s.ctx, l, 1)
	case "mmove":
		_, err = s.c.MoveMeeting(s.ctx, who, op.Meeting, op.At, why)
	case "mcancel":
		_, err = s.c.CancelMeeting(s.ctx, who, op.Meeting, why)
	case "madd":
		_, err = s.c.AddMeeting(s.ctx, who, op.At, op.Cap, why)
	case "rmove":
		_, err = s.c.MoveReferral(s.ctx, who, op.ID, op.Meeting, why)
	case "withdraw":
		_, err = s.c.WithdrawReferral(s.ctx, who, op.ID, why)
	case "reinstate":
		_, err = s.c.ReinstateReferral(s.ctx, who, op.ID, op.Meeting, why)
	case "time":
		s.f.clock.set(s.f.clock.now().Add(op.Dur))
		now := s.f.clock.now()
		if err = s.c.Watch(s.ctx, now); err == nil {
			if err = s.c.seatWaiting(s.ctx); err == nil {
				if err = s.c.resendReceipts(s.ctx); err == nil {
					err = s.c.retellAll(s.ctx)
				}
			}
		}
	case "restart":
		c2, _ := open(s.t, s.f.js, s.f.clock, s.f.hub, s.opts)
		if a, b := snapshot(s.c), snapshot(c2); a != b {
			s.fail("the register read back after a restart differs from the one in memory:\nmemory  %s\nrestart %s", a, b)
		}
		s.c = c2
	}
	return err
}

// step applies op to both and compares.
func (s *seqRun) step(op seqOp) {
	// Each action at its own instant, as a coordinator's would be.
	s.f.clock.set(s.f.clock.now().Add(time.Minute))
	s.m.now = s.f.clock.now()
	before := snapshot(s.c)
	s.m.want = map[string]wantLetter{}
	want := s.m.do(op)
	got := s.run(op)
	switch {
	case want == nil && got != nil:
		s.fail("%s: refused with %q; the model does it", op, got)
	case want != nil && got == nil:
		s.fail("%s: done; the model refuses it with %q", op, want)
	case want != nil && !errors.Is(got, want):
		s.fail("%s: refused with %q; the model refuses it with %q", op, got, want)
	}
	if want != nil && got != nil {
		if after := snapshot(s.c); after != before {
			s.fail("%s: refused (%v), and the register changed:\nbefore %s\nafter  %s", op, got, before, after)
		}
	}
	s.checkLetters(op)
	s.compare(op)
}

func (s *seqRun) checkLetters(op seqOp) {
	s.f.hub.mu.Lock()
	made := slices.Clone(s.f.hub.receipts[s.seen:])
	s.seen = len(s.f.hub.receipts)
	s.f.hub.mu.Unlock()
	for _, l := range made {
		w, ok := s.m.want[l.ID]
		delete(s.m.want, l.ID)
		if !ok {
			s.fail("%s: an unexpected letter %s (answering %s%s)", op, l.ID, l.InReplyTo, describe(l))
			continue
		}
		r := s.m.refs[w.ref]
		if l.InReplyTo != w.ref || l.ThreadID != "episode-"+w.ref {
			s.fail("%s: letter %s answers %s in thread %s; want %s", op, l.ID, l.InReplyTo, l.ThreadID, w.ref)
		}
		if r != nil && r.child >= 0 && (l.Patient == nil || l.Patient.Identifier() != seqChildren[r.child].Identifier()) {
			s.fail("%s: letter %s is about another child than referral %s's", op, l.ID, w.ref)
		}
		switch w.kind {
		case "copy":
			if l.CopyOf != w.rec || len(l.Receivers) != 1 || !org(l.Receivers[0]).same(org(seqGPs[r.gp])) {
				s.fail("%s: copy %s of %s goes to %v; want %s alone", op, l.ID, l.CopyOf, l.Receivers, seqGPs[r.gp].Name)
			}
		default:
			parts := strings.Split(l.Text, "|")
			wantBefore := ""
			if !w.before.IsZero() {
				wantBefore = schedule.Danish(w.before.In(cph))
			}
			if len(parts) != 3 || parts[1] != schedule.Danish(w.at.In(cph)) || parts[2] != wantBefore || l.Meta[MetaMeeting] != w.meeting {
				s.fail("%s: letter %s to %s's GP names %s (meeting %s; before: %q); want %s (meeting %s; before: %q)", op, l.ID, w.ref,
					field(parts, 1), l.Meta[MetaMeeting], field(parts, 2), schedule.Danish(w.at.In(cph)), w.meeting, wantBefore)
			}
		}
	}
	for id, w := range s.m.want {
		s.fail("%s: no letter %s (%s to %s's GP, %s, before %s)", op, id, w.kind, w.ref, w.at.In(cph).Format("2006-01-02 15:04"), w.before.In(cph).Format("2006-01-02 15:04"))
	}
	s.f.hub.mu.Lock()
	notices := slices.Clone(s.f.hub.notices)
	s.f.hub.mu.Unlock()
	if !slices.Equal(notices, s.m.notices) {
		s.fail("%s: reminders %v; want %v", op, notices, s.m.notices)
		s.m.notices = notices
	}
}

func field(p []string, i int) string {
	if i < len(p) {
		return p[i]
	}
	return ""
}

// describe says what a letter the model did not expect names (dates
// only: never the letter's text).
func describe(l *letter.Letter) string {
	p := strings.Split(l.Text, "|")
	if len(p) == 3 {
		return fmt.Sprintf(", naming %s, before %q", p[1], p[2])
	}
	return ""
}

// compare checks the register against the model, and the invariants.
func (s *seqRun) compare(op seqOp) {
	c, m := s.c, s.m
	states := map[string]string{}
	for _, ch := range c.Referrals(ReferralFilter{}) {
		states[ch.LetterID] = ch.State
	}
	seats := 0
	for _, id := range m.order {
		r := m.refs[id]
		if r.seat != "" {
			got, ok := c.reg.joinedTo(tokenOf(id))
			if !ok || got.LetterID != r.seat {
				s.fail("%s: %s joined %q in the register; the model: %s", op, id, got.LetterID, r.seat)
			}
			continue
		}
		seats++
		got, ok := c.reg.referral(tokenOf(id))
		if !ok {
			s.fail("%s: the register lost referral %s (model: meeting %q, withdrawn %v)", op, id, r.meeting, r.withdraw)
			continue
		}
		var recs, joined []string
		for _, x := range got.Recommendations {
			recs = append(recs, x.LetterID)
		}
		for _, j := range got.Joined {
			joined = append(joined, j.LetterID)
		}
		if got.Meeting != r.meeting || got.WithdrawnAt.IsZero() == r.withdraw || !slices.Equal(recs, r.recs) || !slices.Equal(joined, r.joined) ||
			got.Flagged.IsZero() == r.flagged {
			s.fail("%s: %s in the register: meeting %q withdrawn %v recommendations %v joined %v flagged %v; the model: %q %v %v %v %v", op, id,
				got.Meeting, !got.WithdrawnAt.IsZero(), recs, joined, !got.Flagged.IsZero(), r.meeting, r.withdraw, r.recs, r.joined, r.flagged)
		}
		if st := states[id]; st != m.state(r) {
			s.fail("%s: %s reads %q; the model: %q", op, id, st, m.state(r))
		}
		// One record holds each seat: its meeting's, or a waiting one.
		in := c.reg.recordsWith(tokenOf(id))
		if len(in) != 1 || r.meeting != "" && in[0] != prefixMeeting+r.meeting || r.meeting == "" && !strings.HasPrefix(in[0], prefixWaiting) {
			s.fail("%s: %s is listed by %v (model: meeting %q)", op, id, in, r.meeting)
		}
	}
	if n := len(c.reg.allReferrals()); n != seats {
		s.fail("%s: the register holds %d seats; the model %d", op, n, seats)
	}
	for _, x := range c.reg.storedMeetings() {
		mx, ok := m.lookup(x.ID)
		if !ok || !mx.at.Equal(x.At) || mx.cancelled == x.Cancelled.IsZero() || m.capOf(mx) != c.capOf(x) {
			s.fail("%s: meeting %s at %s cancelled %v cap %d; the model: %+v", op, x.ID, x.At, !x.Cancelled.IsZero(), c.capOf(x), mx)
		}
		if n := c.taking(x); n > c.capOf(x) {
			s.fail("%s: meeting %s seats %d children past its cap %d", op, x.ID, n, c.capOf(x))
		}
		if !x.Cancelled.IsZero() && c.taking(x) > 0 {
			s.fail("%s: cancelled meeting %s seats %d children", op, x.ID, c.taking(x))
		}
	}
	for id, mx := range m.meetings {
		if x, ok := c.meetingByID(id); !ok || !x.At.Equal(mx.at) || x.Cancelled.IsZero() == mx.cancelled {
			s.fail("%s: meeting %s in the register %+v (found %v); the model %+v", op, id, x.At, ok, mx)
		}
	}
	if g := c.unanswered(c.now()); g != countIf(m, func(r *mRef) bool { return r.seat == "" && m.state(r) == "unanswered" }) {
		s.fail("%s: %d unanswered in the gauge", op, g)
	}
}

func countIf(m *model, f func(*mRef) bool) int {
	n := 0
	for _, r := range m.refs {
		if f(r) {
			n++
		}
	}
	return n
}

// ---- the generator ----

type seqGen struct {
	rnd  *rand.Rand
	m    *model
	n    int // letters made
	kids int
}

func (g *seqGen) pick(ids []string) string {
	if len(ids) == 0 {
		return "NOPE"
	}
	return ids[g.rnd.IntN(len(ids))]
}

// meeting picks a meeting near now: mostly one ahead.
func (g *seqGen) meeting() string {
	var ids []string
	for _, x := range g.m.between(g.m.now.AddDate(0, 0, -40), g.m.now.AddDate(0, 6, 0)) {
		ids = append(ids, x.id)
	}
	return g.pick(ids)
}

func (g *seqGen) when() string {
	d := g.m.now.In(cph).AddDate(0, 0, g.rnd.IntN(120)-10)
	h := []int{9, 13, 15}[g.rnd.IntN(3)]
	return time.Date(d.Year(), d.Month(), d.Day(), h, 0, 0, 0, cph).Format("2006-01-02 15:04")
}

// referral picks a referral, mostly a child's (not a filler's).
func (g *seqGen) referral() string {
	var kids, all []string
	for _, id := range g.m.order {
		all = append(all, id)
		if g.m.refs[id].child >= 0 {
			kids = append(kids, id)
		}
	}
	switch r := g.rnd.IntN(20); {
	case r == 0:
		return "NOPE"
	case r < 3 || len(kids) == 0:
		return g.pick(all)
	}
	return g.pick(kids)
}

func (g *seqGen) next() seqOp {
	g.n++
	switch r := g.rnd.IntN(100); {
	case r < 24:
		return seqOp{Kind: "refer", ID: fmt.Sprintf("L%d", g.n), Child: g.rnd.IntN(g.kids), GP: g.rnd.IntN(len(seqGPs))}
	case r < 34:
		var kids []string
		for _, id := range g.m.order {
			if g.m.refs[id].child >= 0 {
				kids = append(kids, id)
			}
		}
		if len(kids) == 0 {
			return g.next()
		}
		return seqOp{Kind: "rec", ID: fmt.Sprintf("D%d", g.n), Ref: g.pick(kids)}
	case r < 42:
		return seqOp{Kind: "mmove", Meeting: g.meeting(), At: g.when()}
	case r < 47:
		return seqOp{Kind: "mcancel", Meeting: g.meeting()}
	case r < 53:
		at := g.when()
		for _, x := range g.m.meetings {
			if x.cancelled && g.rnd.IntN(2) == 0 {
				at = x.at.In(cph).Format("2006-01-02") + " 15:00" // the day of a cancelled meeting
				break
			}
		}
		return seqOp{Kind: "madd", At: at, Cap: g.rnd.IntN(3)}
	case r < 65:
		return seqOp{Kind: "rmove", ID: g.referral(), Meeting: g.meeting()}
	case r < 73:
		return seqOp{Kind: "withdraw", ID: g.referral()}
	case r < 82:
		to := ""
		if g.rnd.IntN(3) == 0 {
			to = g.meeting()
		}
		return seqOp{Kind: "reinstate", ID: g.referral(), Meeting: to}
	case r < 96:
		d := []time.Duration{6 * time.Hour, 2 * 24 * time.Hour, 9 * 24 * time.Hour, 20 * 24 * time.Hour, 40 * 24 * time.Hour}
		return seqOp{Kind: "time", Dur: d[g.rnd.IntN(len(d))]}
	}
	return seqOp{Kind: "restart"}
}

// seqPlan is a seed's configuration and operations.
func seqPlan(seed uint64, steps int) (seqConfig, []seqOp) {
	rnd := rand.New(rand.NewPCG(seed, seed^0x5eed))
	cfg := seqConfig{Cap: 1 + rnd.IntN(3), Cutoff: []int{0, 0, 3}[rnd.IntN(3)], Fill: rnd.IntN(4) == 0}
	if cfg.Fill {
		cfg.Cap = 1
	}
	var ops []seqOp
	if cfg.Fill {
		// Every meeting of the next two years takes a filler: the
		// children wait for room (an added meeting, a withdrawal, time).
		for i := range 24 {
			ops = append(ops, seqOp{Kind: "refer", ID: fmt.Sprintf("F%02d", i), Child: -1, GP: 2})
		}
	}
	// The generator plans against a model of its own, so that its picks
	// (meetings near now, referrals that exist) follow the sequence.
	m := &model{rule: mustRule(), cfg: cfg, watch: 35 * 24 * time.Hour, now: time.Date(2026, 3, 1, 10, 0, 0, 0, cph),
		meetings: map[string]*mMeeting{}, refs: map[string]*mRef{}, want: map[string]wantLetter{}}
	for _, op := range ops {
		m.now = m.now.Add(time.Minute)
		_ = m.do(op)
	}
	g := &seqGen{rnd: rnd, m: m, kids: 3 + rnd.IntN(2)}
	for range steps {
		op := g.next()
		m.now = m.now.Add(time.Minute)
		m.want = map[string]wantLetter{}
		_ = m.do(op)
		ops = append(ops, op)
	}
	return cfg, ops
}

func mustRule() schedule.Rule {
	r, err := schedule.Parse("second tuesday 13:00", "Europe/Copenhagen")
	if err != nil {
		panic(err)
	}
	return r
}

// replay runs ops on a fresh register; the failures, or nil.
func replay(t testing.TB, cfg seqConfig, ops []seqOp) []string {
	s := newSeqRun(t, cfg)
	for i, op := range ops {
		s.step(op)
		if s.failed {
			return append([]string{fmt.Sprintf("step %d of %d", i+1, len(ops))}, s.log...)
		}
	}
	s.step(seqOp{Kind: "restart"})
	if s.failed {
		return s.log
	}
	return nil
}

func TestCouncilSequences(t *testing.T) {
	var cfg seqConfig // the seed's, for Replay and the failure's first line
	seqtest.Test[seqOp]{
		Plan: func(seed uint64, steps int) ([]seqOp, string) {
			var ops []seqOp
			cfg, ops = seqPlan(seed, steps)
			return ops, fmt.Sprintf("cap %d, cutoff %d days, filled %v", cfg.Cap, cfg.Cutoff, cfg.Fill)
		},
		Replay: func(t *testing.T, ops []seqOp) []string { return replay(t, cfg, ops) },
		Budget: 400,
	}.Run(t, seqtest.FromEnv("SAMHUB_COUNCIL_SEQ", 12, 40))
}
