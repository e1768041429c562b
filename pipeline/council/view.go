package council

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/samhub/samhub/pipeline/journey"
	"github.com/samhub/samhub/pipeline/letter"
)

// Tracked is a letter's way through the hub, read from its journey: where
// it was delivered and to whom, where it waits, and how receivers answered.
type Tracked struct {
	LetterID         string     `json:"letterId"`
	Kind             string     `json:"kind,omitempty"`
	Source           string     `json:"source,omitempty"`
	Received         time.Time  `json:"received"`
	Deliveries       []Delivery `json:"deliveries"`
	Waiting          []Waiting  `json:"waiting,omitempty"`
	Acknowledgements []Ack      `json:"acknowledgements,omitempty"`
}

// Delivery is one delivery of a letter: To names organisations by GLN or
// SOR and parents only as a count.
type Delivery struct {
	Destination string    `json:"destination"`
	Sector      string    `json:"sector,omitempty"`
	To          string    `json:"to,omitempty"`
	RemoteID    string    `json:"remoteId,omitempty"`
	At          time.Time `json:"at"`
}

// Waiting is a destination a letter has not reached: Step is parked,
// consent-denied, held or discarded (the journey's step), Code the reason
// code as the retry queue shows it.
type Waiting struct {
	Destination string    `json:"destination"`
	Sector      string    `json:"sector,omitempty"`
	Step        string    `json:"step"`
	Code        string    `json:"code,omitempty"`
	Reason      string    `json:"reason,omitempty"`
	Since       time.Time `json:"since"`
}

// Ack is a receiver's acknowledgement of a letter.
type Ack struct {
	At       time.Time `json:"at"`
	Code     string    `json:"code"`
	Positive bool      `json:"positive"`
	Reason   string    `json:"reason,omitempty"`
}

// ConsentState is the consent in force for the child per sector: given,
// missing, withdrawn or refused (by a young person of 15–17).
type ConsentState struct {
	// Source is recorded (by the coordinator), letter (as the newest letter
	// about the child stated it: the referral, or the case system on the
	// council's letters; Letter names it) or none.
	Source             string            `json:"source"`
	Letter             string            `json:"letter,omitempty"`
	GivenBy            string            `json:"givenBy,omitempty"`
	Form               string            `json:"form,omitempty"`
	GivenAt            *time.Time        `json:"givenAt,omitempty"`
	WithdrawnAt        *time.Time        `json:"withdrawnAt,omitempty"`
	YoungPersonRefused bool              `json:"youngPersonRefused,omitempty"`
	Sectors            map[string]string `json:"sectors"`
}

// Child is one referral as the meeting page shows it.
type Child struct {
	Key      string    `json:"key"`
	LetterID string    `json:"letterId"`
	Received time.Time `json:"received"`
	Source   string    `json:"source"`
	Format   string    `json:"format,omitempty"`
	GP       Org       `json:"gp"`
	// Patient is the child's token: the same child across referrals.
	Patient string `json:"patient,omitempty"`
	Meeting string `json:"meeting,omitempty"`
	// MovedFrom is the meeting the coordinator moved the child from.
	MovedFrom string `json:"movedFrom,omitempty"`
	// Withdrawn is when the coordinator withdrew the referral (State
	// withdrawn, unless a recommendation came all the same).
	Withdrawn *time.Time `json:"withdrawn,omitempty"`
	// State is waiting (for a recommendation), answered, or unanswered
	// (past Due without one).
	State   string       `json:"state"`
	Due     time.Time    `json:"due"`
	Flagged *time.Time   `json:"flagged,omitempty"`
	Consent ConsentState `json:"consent"`
	// Referral is the referral's own way (filed in the case system).
	Referral Tracked `json:"referral"`
	// LaterReferrals are the later referrals of the child that joined this
	// one while it was open (a supplement, a second GP), oldest first:
	// they take no seat of their own, and the recommendation answers them
	// too. Received, Due and the figures run from the first referral.
	LaterReferrals  []LaterReferral `json:"laterReferrals,omitempty"`
	Documents       []Tracked       `json:"documents"`
	Recommendations []Tracked       `json:"recommendations"`
	Receipt         *Tracked        `json:"receipt,omitempty"`
	// NewDates are the letters that told the GP a new meeting date (the
	// meeting moved, or the coordinator moved the seat), oldest first.
	NewDates []Tracked `json:"newDates,omitempty"`
	// AnswerCopies are the recommendations' copies to this referral's GP,
	// made when a recommendation went to another referring GP (see
	// LaterReferral.AnswerCopies).
	AnswerCopies []Tracked `json:"answerCopies,omitempty"`
	Rejections   []Ref     `json:"rejections,omitempty"`
	// Name is the child's name, read from the stored referral, in the
	// agenda only (an audited read); NameUnavailable when the letter is
	// no longer stored.
	Name            string `json:"name,omitempty"`
	NameUnavailable bool   `json:"nameUnavailable,omitempty"`
}

// LaterReferral is a later referral of a child that joined its open one:
// the letter's way, the referring practice, and its own receipt.
type LaterReferral struct {
	Tracked
	GP      Org      `json:"gp"`
	Receipt *Tracked `json:"receipt,omitempty"`
	// NewDates are the letters that told this referral's GP a new meeting
	// date, oldest first.
	NewDates []Tracked `json:"newDates,omitempty"`
	// AnswerCopies are the copies of the recommendations the hub sent
	// this referral's GP, in its thread, when the recommendation itself
	// went to another GP who referred the child: one per recommendation.
	AnswerCopies []Tracked `json:"answerCopies,omitempty"`
}

// MeetingView is a meeting with its children.
type MeetingView struct {
	Meeting  Meeting `json:"meeting"`
	Children []Child `json:"children"`
}

// StateNames are a referral's states in words, English and Danish: the
// one table the console's pages and the agenda CSV (Danish, as its
// headers) both read.
var StateNames = map[string][2]string{
	"waiting":    {"waiting", "venter"},
	"answered":   {"answered", "besvaret"},
	"unanswered": {"unanswered", "ubesvaret"},
	"withdrawn":  {"withdrawn", "trukket tilbage"},
}

// ScopeNames are the consent's sectors in words, English and Danish: the
// agenda's spreadsheet and the console show them alike.
var ScopeNames = map[letter.Scope][2]string{
	letter.ScopeMunicipality:     {"the municipality", "kommunen"},
	letter.ScopeGP:               {"the GP", "egen læge"},
	letter.ScopeParents:          {"the parents", "forældrene"},
	letter.ScopeRegionPsychiatry: {"child and adolescent psychiatry", "børne- og ungdomspsykiatrien"},
	letter.ScopeSchoolPPR:        {"school / PPR", "skole / PPR"},
}

// StateName is state in words in lang ("da" or "en"); a state without
// words stays as it is.
func StateName(state, lang string) string {
	n, ok := StateNames[state]
	switch {
	case !ok:
		return state
	case lang == "da":
		return n[1]
	}
	return n[0]
}

// state says where a referral stands now.
func (c *Council) state(r Referral, now time.Time) (string, time.Time) {
	due := r.Received.Add(c.watch)
	switch {
	case r.Answered():
		return "answered", due
	case !r.WithdrawnAt.IsZero():
		return "withdrawn", due
	case !now.Before(due):
		return "unanswered", due
	}
	return "waiting", due
}

// child is a referral without its journeys.
func (c *Council) child(r Referral, now time.Time) Child {
	ch := Child{Key: r.Key, LetterID: r.LetterID, Received: r.Received, Source: r.Source, Format: r.Format, GP: r.GP, Patient: r.Patient,
		Meeting: r.Meeting, MovedFrom: r.MovedFrom, Rejections: r.Rejections, Documents: []Tracked{}, Recommendations: []Tracked{},
		Referral: Tracked{LetterID: r.LetterID, Kind: string(letter.KindReferral), Source: r.Source, Received: r.Received, Deliveries: []Delivery{}}}
	ch.State, ch.Due = c.state(r, now)
	if !r.WithdrawnAt.IsZero() {
		w := r.WithdrawnAt
		ch.Withdrawn = &w
	}
	if !r.Flagged.IsZero() {
		f := r.Flagged
		ch.Flagged = &f
	}
	for _, x := range r.Documents {
		ch.Documents = append(ch.Documents, Tracked{LetterID: x.LetterID, Kind: x.Kind, Source: x.Source, Received: x.Received, Deliveries: []Delivery{}})
	}
	for _, x := range r.Recommendations {
		ch.Recommendations = append(ch.Recommendations, Tracked{LetterID: x.LetterID, Kind: x.Kind, Source: x.Source, Received: x.Received, Deliveries: []Delivery{}})
	}
	for _, j := range r.Joined {
		ch.LaterReferrals = append(ch.LaterReferrals, LaterReferral{GP: j.GP,
			Tracked: Tracked{LetterID: j.LetterID, Kind: string(letter.KindReferral), Source: j.Source, Received: j.Received, Deliveries: []Delivery{}}})
	}
	slices.SortStableFunc(ch.LaterReferrals, func(a, b LaterReferral) int { return a.Received.Compare(b.Received) })
	ch.Consent = consentState(nil, r.Consent, now, c.consentScopes())
	if ch.Consent.Source == "letter" {
		ch.Consent.Letter = r.ConsentFrom
	}
	return ch
}

// detail fills a child's consent in force and its letters' journeys.
func (c *Council) detail(ctx context.Context, r Referral, ch *Child, now time.Time) error {
	if r.Patient != "" && c.d.Consent != nil {
		rec, err := c.d.Consent(ctx, r.Patient)
		if err != nil {
			return err
		}
		ch.Consent = consentState(rec, r.Consent, now, c.consentScopes())
		if ch.Consent.Source == "letter" {
			ch.Consent.Letter = r.ConsentFrom
		}
	}
	fill := func(t *Tracked) error {
		steps, err := c.d.Trace(ctx, t.LetterID)
		if err != nil {
			return err
		}
		c.track(t, steps)
		return nil
	}
	if err := fill(&ch.Referral); err != nil {
		return err
	}
	for i := range ch.Documents {
		if err := fill(&ch.Documents[i]); err != nil {
			return err
		}
	}
	for i := range ch.Recommendations {
		if err := fill(&ch.Recommendations[i]); err != nil {
			return err
		}
	}
	// A receipt is a letter of its own: shown when one was stored.
	stored := func(id string) (*Tracked, error) {
		rc, err := c.d.StoredLetter(ctx, id)
		if err != nil || rc == nil {
			return nil, err
		}
		t := &Tracked{LetterID: rc.ID, Kind: string(rc.Kind), Source: rc.Source, Received: rc.Received, Deliveries: []Delivery{}}
		return t, fill(t)
	}
	receipt := func(referralID string) (*Tracked, error) { return stored(ReceiptID(referralID)) }
	// So is each new date's letter.
	newDates := func(referralID string) ([]Tracked, error) {
		var out []Tracked
		for _, x := range r.Retold {
			t, err := stored(NewDateID(referralID, x.At))
			if err != nil {
				return nil, err
			}
			if t != nil {
				out = append(out, *t)
			}
		}
		return out, nil
	}
	// So is an answer copy: one per recommendation and referral.
	copies := func(referralID string) ([]Tracked, error) {
		var out []Tracked
		for _, rec := range ch.Recommendations {
			cp, err := c.d.StoredLetter(ctx, CopyID(rec.LetterID, referralID))
			if err != nil {
				return nil, err
			}
			if cp == nil {
				continue
			}
			t := Tracked{LetterID: cp.ID, Kind: string(cp.Kind), Source: cp.Source, Received: cp.Received, Deliveries: []Delivery{}}
			if err := fill(&t); err != nil {
				return nil, err
			}
			out = append(out, t)
		}
		return out, nil
	}
	var err error
	if ch.Receipt, err = receipt(r.LetterID); err != nil {
		return err
	}
	if ch.NewDates, err = newDates(r.LetterID); err != nil {
		return err
	}
	if ch.AnswerCopies, err = copies(r.LetterID); err != nil {
		return err
	}
	for i := range ch.LaterReferrals {
		j := &ch.LaterReferrals[i]
		if err := fill(&j.Tracked); err != nil {
			return err
		}
		if j.Receipt, err = receipt(j.LetterID); err != nil {
			return err
		}
		if j.NewDates, err = newDates(j.LetterID); err != nil {
			return err
		}
		if j.AnswerCopies, err = copies(j.LetterID); err != nil {
			return err
		}
	}
	return nil
}

// track reads a journey: each destination's last step says whether the
// letter is delivered there or waits; acknowledgements are listed.
func (c *Council) track(t *Tracked, steps []journey.Event) {
	type last struct {
		ev journey.Event
		i  int
	}
	at := map[string]last{}
	for i, s := range steps {
		switch s.Step {
		case journey.Acknowledged:
			t.Acknowledgements = append(t.Acknowledgements, Ack{At: s.At, Code: s.Code, Positive: positiveAck(s.Code), Reason: s.Reason})
		case journey.Delivered, journey.Parked, journey.Denied, journey.Held, journey.Discarded:
			if s.Destination != "" {
				at[s.Destination] = last{s, i}
			}
		}
		if (s.Step == journey.Delivered || s.Step == journey.PartlyDelivered) && s.Destination != "" {
			t.Deliveries = append(t.Deliveries, Delivery{Destination: s.Destination, Sector: c.sector(s.Destination), To: s.To, RemoteID: s.RemoteID, At: s.At})
		}
	}
	dests := make([]string, 0, len(at))
	for d := range at {
		dests = append(dests, d)
	}
	slices.SortFunc(dests, func(a, b string) int { return at[a].i - at[b].i })
	for _, d := range dests {
		if s := at[d].ev; s.Step != journey.Delivered {
			t.Waiting = append(t.Waiting, Waiting{Destination: d, Sector: c.sector(d), Step: s.Step, Code: s.Code, Reason: s.Reason, Since: s.At})
		}
	}
}

func (c *Council) sector(dest string) string { return c.cfg.Sectors[dest] }

// positiveAck reads letter.Ack.Code as the journey keeps it: positive
// (XCTL receipts) and ok (FHIR) are the positive answers.
func positiveAck(code string) bool { return code == "positive" || code == "ok" }

// consentScopes are the scopes whose consent the routes need, in the
// order of letter.Scopes: a consent no route asks for (the municipality's
// own, usually) is not shown as missing.
func (c *Council) consentScopes() []letter.Scope {
	if c.cfg.ConsentSectors == nil {
		return letter.Scopes
	}
	var out []letter.Scope
	for _, s := range letter.Scopes {
		if slices.Contains(c.cfg.ConsentSectors, string(s)) {
			out = append(out, s)
		}
	}
	return out
}

// consentState is the consent in force for each of scopes: the
// coordinator's record when there is one, else the newest letter's
// statement.
func consentState(rec *letter.Consent, facts *ConsentFacts, now time.Time, scopes []letter.Scope) ConsentState {
	cs := ConsentState{Source: "none", Sectors: map[string]string{}}
	var k *letter.Consent
	switch {
	case rec != nil:
		cs.Source, k = "recorded", rec
	case facts != nil:
		cs.Source = "letter"
		k = &letter.Consent{GivenBy: facts.GivenBy, Form: facts.Form, GivenAt: facts.GivenAt, YoungPersonRefused: facts.YoungPersonRefused, WithdrawnAt: facts.WithdrawnAt}
		for _, s := range facts.Scopes {
			k.Scopes = append(k.Scopes, letter.Scope(s))
		}
	}
	for _, s := range scopes {
		state := "missing"
		switch {
		case k == nil:
		case !k.WithdrawnAt.IsZero() && !now.Before(k.WithdrawnAt):
			state = "withdrawn"
		case k.YoungPersonRefused && s != letter.ScopeMunicipality:
			state = "refused"
		case k.Allows(s, now):
			state = "given"
		}
		cs.Sectors[string(s)] = state
	}
	if k != nil {
		cs.GivenBy, cs.Form, cs.YoungPersonRefused = k.GivenBy, k.Form, k.YoungPersonRefused
		if !k.GivenAt.IsZero() {
			t := k.GivenAt
			cs.GivenAt = &t
		}
		if !k.WithdrawnAt.IsZero() {
			t := k.WithdrawnAt
			cs.WithdrawnAt = &t
		}
	}
	return cs
}

// MeetingView is a meeting with each child's referral, consent in force,
// documents, recommendations, receipt and acknowledgements. It names no
// child: ids and tokens only.
func (c *Council) MeetingView(ctx context.Context, id string) (MeetingView, error) {
	m, ok := c.meetingByID(id)
	if !ok {
		return MeetingView{}, ErrNoMeeting
	}
	now := c.now()
	v := MeetingView{Meeting: c.summary(m, now), Children: []Child{}}
	for _, r := range c.seated(m) {
		ch := c.child(r, now)
		if err := c.detail(ctx, r, &ch, now); err != nil {
			return MeetingView{}, err
		}
		v.Children = append(v.Children, ch)
	}
	return v, nil
}

// Agenda is the meeting view with each child's name, read from the
// stored referral now. It is a read of personal data: audited first (an
// export — export names its format: csv, pdf, print — needs a reason and
// is audited as one, with the format), and not read if the audit record
// cannot be stored.
func (c *Council) Agenda(ctx context.Context, who Actor, id, reason, export string) (_ MeetingView, err error) {
	if export != "" && strings.TrimSpace(reason) == "" {
		return MeetingView{}, ErrReasonRequired
	}
	if _, ok := c.meetingByID(id); !ok {
		return MeetingView{}, ErrNoMeeting
	}
	action, target := "agenda-read", "meeting:"+id
	if export != "" {
		action, target = "agenda-export", target+" format:"+export
	}
	if err := c.audit(ctx, who, action, target, reason, "shown"); err != nil {
		return MeetingView{}, err
	}
	defer func() {
		if err != nil { // nothing was shown after all
			c.auditUndone(ctx, who, action, target, err)
		}
	}()
	v, err := c.MeetingView(ctx, id)
	if err != nil {
		return v, err
	}
	for i := range v.Children {
		ch := &v.Children[i]
		l, err := c.d.StoredLetter(ctx, ch.LetterID)
		if err != nil {
			return v, err
		}
		if l == nil || l.Patient == nil {
			ch.NameUnavailable = true
			continue
		}
		ch.Name = strings.TrimSpace(l.Patient.GivenName + " " + l.Patient.FamilyName)
		ch.NameUnavailable = ch.Name == ""
	}
	return v, nil
}

// ReferralFilter selects referrals; empty fields match all.
type ReferralFilter struct {
	State   string // waiting, answered, unanswered
	Meeting string
}

// Referrals lists the register's referrals, oldest first, without
// journeys (the overview).
func (c *Council) Referrals(f ReferralFilter) []Child {
	now := c.now()
	out := []Child{}
	for _, r := range c.reg.allReferrals() {
		ch := c.child(r, now)
		if (f.State == "" || f.State == ch.State) && (f.Meeting == "" || f.Meeting == ch.Meeting) {
			out = append(out, ch)
		}
	}
	return out
}

// WriteCSV writes an agenda for a spreadsheet: one row per child,
// semicolon-separated (what a Danish spreadsheet expects), UTF-8 with a
// byte-order mark so æ, ø and å read right.
func (c *Council) WriteCSV(w io.Writer, v MeetingView) error {
	if _, err := io.WriteString(w, "\ufeff"); err != nil {
		return err
	}
	cw := csv.NewWriter(w)
	cw.Comma = ';'
	_ = cw.Write([]string{"Møde", "Barn", "Henvist", "Henvisende læge", "Samtykke", "Dokumenter", "Anbefaling sendt", "Kvitteret", "Status", "Brev-id"})
	meeting := v.Meeting.At.In(c.rule.Loc).Format("2006-01-02 15:04")
	for _, ch := range v.Children {
		name := ch.Name
		if ch.NameUnavailable {
			name = "(ikke længere gemt)"
		}
		var given []string
		for _, s := range letter.Scopes {
			if ch.Consent.Sectors[string(s)] == "given" {
				given = append(given, ScopeNames[s][1])
			}
		}
		var sent []string
		acked := "nej"
		// The recommendations, and their copies to the other GPs who
		// referred the child.
		recs := slices.Clone(ch.Recommendations)
		recs = append(recs, ch.AnswerCopies...)
		for _, j := range ch.LaterReferrals {
			recs = append(recs, j.AnswerCopies...)
		}
		for _, r := range recs {
			for _, d := range r.Deliveries {
				sent = append(sent, d.Destination+" "+d.To)
			}
			for _, a := range r.Acknowledgements {
				if a.Positive {
					acked = "ja"
				}
			}
		}
		gp := csvPractice(ch.GP)
		for _, j := range ch.LaterReferrals {
			// A later referral joined to this one: its practice and date.
			gp += ", " + csvPractice(j.GP) + " (" + j.Received.In(c.rule.Loc).Format("2006-01-02") + ")"
		}
		_ = cw.Write(cells(meeting, name, ch.Received.In(c.rule.Loc).Format("2006-01-02"), gp, strings.Join(given, ", "),
			fmt.Sprint(len(ch.Documents)), strings.Join(sent, ", "), acked, StateName(ch.State, "da"), ch.LetterID))
	}
	cw.Flush()
	return cw.Error()
}

// csvPractice names a practice for the agenda's spreadsheet.
func csvPractice(o Org) string {
	if o.Name != "" {
		return o.Name
	}
	return strings.TrimSpace(o.GLN + " " + o.SOR)
}

// cells keeps text from other systems (a child's or a practice's name, a
// letter id) from being taken for a formula when a spreadsheet opens the
// file: a cell starting with =, +, -, @ or a control character gets a
// leading apostrophe (OWASP's advice on CSV injection).
func cells(vs ...string) []string {
	for i, v := range vs {
		if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
			vs[i] = "'" + v
		}
	}
	return vs
}
