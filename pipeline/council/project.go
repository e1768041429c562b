package council

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/samhub/samhub/internal/clock"
	"github.com/samhub/samhub/pipeline/broker"
	"github.com/samhub/samhub/pipeline/letter"
	"github.com/samhub/samhub/pipeline/retryq"
	"github.com/samhub/samhub/pipeline/route"
)

// project reads the letters as stored (not replays) through the durable
// consumer and applies each to the register, in stream order, until ctx
// ends. A new consumer starts at the beginning of the stream, so a new
// register is built from every letter still stored; applying a letter is
// idempotent, so one read again after a crash changes nothing.
func (c *Council) project(ctx context.Context) error {
	cfg := jetstream.ConsumerConfig{
		Durable:        ConsumerName,
		Description:    "Samhub council register",
		FilterSubjects: []string{broker.SubjLetters + ".in.>"},
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        30 * time.Second,
		MaxAckPending:  1024,
		MaxDeliver:     -1,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		Replicas:       c.cfg.Replicas,
	}
	cons, err := c.d.JS.CreateOrUpdateConsumer(ctx, broker.StreamLetters, cfg)
	if err != nil {
		return err
	}
	wait := time.Duration(0)
	for ctx.Err() == nil {
		clock.Sleep(ctx, wait)
		msgs, err := c.fetch(cons)
		if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrConsumerDeleted) {
			// Deleted to build the register anew: made again, from the
			// beginning of the stream.
			return err
		}
		if err != nil {
			if ctx.Err() == nil {
				c.log.Warn("council register: reading the letter stream failed; trying again", "err", err)
			}
			wait = time.Second
			continue
		}
		// The letters are applied in stream order; referrals are placed
		// together (one write per meeting), and acknowledged only once
		// all of them are in the register.
		var b pending
		for _, m := range msgs {
			if err = c.applyMsg(ctx, m, &b); err != nil {
				break
			}
		}
		if err == nil {
			err = c.flush(ctx, &b)
		}
		wait = 0
		if err != nil {
			if ctx.Err() == nil {
				c.log.Warn("council register: letters could not be applied; trying again", "err", err)
			}
			for _, m := range msgs {
				_ = m.Nak()
			}
			wait = 2 * time.Second
			continue
		}
		for _, m := range msgs {
			_ = m.Ack()
		}
	}
	return nil
}

// fetch waits for the next letter, then gathers what else comes within
// linger (up to 256 in all): a flood is applied in batches of a few writes,
// a single letter a moment after it was stored.
func (c *Council) fetch(cons jetstream.Consumer) ([]jetstream.Msg, error) {
	var msgs []jetstream.Msg
	for _, next := range []func() (jetstream.MessageBatch, error){
		func() (jetstream.MessageBatch, error) { return cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second)) },
		func() (jetstream.MessageBatch, error) { return cons.Fetch(255, jetstream.FetchMaxWait(linger)) },
	} {
		batch, err := next()
		if err != nil {
			return msgs, err
		}
		for m := range batch.Messages() {
			msgs = append(msgs, m)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return msgs, err
		}
		if len(msgs) == 0 {
			return nil, nil
		}
	}
	return msgs, nil
}

// linger is how long the register gathers letters before it writes: the
// register is not on any letter's path, and a flood then costs a write per
// meeting every linger instead of one per letter or two.
const linger = 200 * time.Millisecond

// pending are the referrals read and not yet placed, with their letters
// (for receipts).
type pending struct {
	refs    []Referral
	letters map[string]*letter.Letter
}

func (c *Council) applyMsg(ctx context.Context, m jetstream.Msg, b *pending) error {
	l, err := letter.Unmarshal(m.Data())
	if err != nil {
		// The pipeline parks what it cannot decode; the register skips it.
		return nil
	}
	var seq uint64
	if md, err := m.Metadata(); err == nil {
		seq = md.Sequence.Stream
	}
	return c.apply(ctx, l, seq, b)
}

// Apply records what a stored letter means for the register: a referral
// is registered and placed in a meeting, a recommendation, document or
// rejection is added to the referral it follows. It is idempotent.
func (c *Council) Apply(ctx context.Context, l *letter.Letter, seq uint64) error {
	var b pending
	if err := c.apply(ctx, l, seq, &b); err != nil {
		return err
	}
	return c.flush(ctx, &b)
}

// apply records a letter: a referral joins the pending ones; any other
// letter is applied at once, after the pending referrals it may follow.
func (c *Council) apply(ctx context.Context, l *letter.Letter, seq uint64, b *pending) error {
	if l.Source == HubSource || l.Kind == letter.KindNotification || l.Kind == letter.KindAcknowledgement {
		return nil
	}
	if l.Kind == letter.KindReferral {
		b.add(c.referralOf0(l, seq), l)
		if c.rejectionRule(l) == "" {
			return nil
		}
	}
	if err := c.flush(ctx, b); err != nil {
		return err
	}
	if rule := c.rejectionRule(l); rule != "" {
		if err := c.recordRejection(ctx, l, rule); err != nil {
			return err
		}
	}
	switch l.Kind {
	case letter.KindReferral:
		return nil
	case letter.KindRecommendation:
		return c.follow(ctx, l, func(r *Referral) *[]Ref { return &r.Recommendations })
	default:
		return c.follow(ctx, l, func(r *Referral) *[]Ref { return &r.Documents })
	}
}

func patientToken(l *letter.Letter) string {
	if id := l.Patient.Identifier(); id != "" {
		return retryq.PatientToken(id)
	}
	return ""
}

func ref(l *letter.Letter) Ref {
	return Ref{LetterID: l.ID, Kind: string(l.Kind), Source: l.Source, Received: l.Received.UTC()}
}

// org is a letter party as the register keeps it: an organisation's name
// only when the party has an organisation's identifier (GLN or SOR), so an
// email sender's own name is never kept.
func org(p letter.Party) Org {
	o := Org{GLN: p.GLN, SOR: p.SOR, Role: p.Role}
	if p.GLN != "" || p.SOR != "" {
		o.Name = p.Name
	}
	return o
}

// referralOf0 is a referral's record as it arrives.
func (c *Council) referralOf0(l *letter.Letter, seq uint64) Referral {
	r := Referral{Key: broker.Token(l.ID), LetterID: l.ID, Seq: seq, Thread: broker.Token(l.Thread()), Patient: patientToken(l),
		Received: l.Received.UTC(), Source: l.Source, Format: l.Format, GP: org(l.Sender)}
	if len(l.Receivers) > 0 {
		r.Council = org(l.Receivers[0])
	}
	if l.Consent != nil {
		r.Consent, r.ConsentFrom = consentFacts(l.Consent), l.ID
	}
	return r
}

func (b *pending) add(r Referral, l *letter.Letter) {
	if b.letters == nil {
		b.letters = map[string]*letter.Letter{}
	}
	if _, dup := b.letters[r.Key]; dup {
		return
	}
	b.letters[r.Key] = l
	b.refs = append(b.refs, r)
}

// flush places the pending referrals and sends the receipts of those a
// meeting took (again after a crash: the letter stream stores a receipt's
// id once).
func (c *Council) flush(ctx context.Context, b *pending) error {
	if len(b.refs) == 0 {
		return nil
	}
	placed, err := c.place(ctx, b.refs, false)
	if err != nil {
		return err
	}
	if err := c.receipts(ctx, placed, func(key string) *letter.Letter { return b.letters[key] }, nil); err != nil {
		return err
	}
	b.refs, b.letters = nil, nil
	return nil
}

// receipts sends the receipts of referrals seated in a meeting, and of the
// later referrals joined to them: each referring letter letterOf knows
// gets one, naming the meeting that takes the child. A seat news reports
// as decided just now (nil: none) is news however old its referrals are.
func (c *Council) receipts(ctx context.Context, placed []Referral, letterOf func(key string) *letter.Letter, news func(Referral) bool) error {
	if !c.cfg.Receipt.Enabled {
		return nil
	}
	sent := map[string]bool{}
	for _, r := range placed {
		m, ok := c.meetingByID(r.Meeting)
		if r.Meeting == "" || !ok {
			continue
		}
		keys := []string{r.Key}
		for _, j := range r.Joined {
			keys = append(keys, j.Key)
		}
		for _, k := range keys {
			if sent[k] {
				continue
			}
			if l := letterOf(k); l != nil {
				if err := c.sendReceipt(ctx, l, m.ID, m.At, news != nil && news(r)); err != nil {
					return err
				}
				sent[k] = true
			}
		}
	}
	return nil
}

// noRoom warns that a referral found no meeting with room, at most once an
// hour (a flood of referrals must not flood the log).
func (c *Council) noRoom(letterID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waiting++
	if now := c.now(); now.Sub(c.warned) >= time.Hour {
		c.log.Warn("no council meeting with room in the next two years; referrals wait for one (add a meeting)", "letter_id", letterID, "waiting_since_last_warning", c.waiting)
		c.warned, c.waiting = now, 0
	}
}

// follow adds a letter to the list field picks of the referral it follows,
// if the register knows one (letters about children never referred to
// the council are not the council's). A recommendation also answers the
// child's other open referrals (answerOthers).
func (c *Council) follow(ctx context.Context, l *letter.Letter, field func(*Referral) *[]Ref) error {
	r, ok := c.referralOf(l)
	if !ok || l.ID == r.LetterID {
		return nil
	}
	if err := c.addTo(ctx, r.Key, l, field); err != nil {
		return err
	}
	if l.Kind != letter.KindRecommendation {
		return nil
	}
	if err := c.answerOthers(ctx, l, r); err != nil {
		return err
	}
	if r, ok = c.reg.referral(r.Key); !ok {
		return nil
	}
	return c.copyAnswer(ctx, l, r)
}

// answerOthers adds a recommendation to the child's other referrals that
// have none, arrived no later than it, and whose meeting has been held by
// then: the council answers a child, not a letter, and the case system
// answers in the thread of the referral that opened the child's case,
// which may be an earlier one than the council last took. A referral
// whose meeting still lies ahead (or that waits for one) is left to its
// own meeting's recommendation.
func (c *Council) answerOthers(ctx context.Context, l *letter.Letter, to Referral) error {
	patient := cmp.Or(to.Patient, patientToken(l))
	if patient == "" {
		return nil
	}
	for _, o := range c.reg.ofChild(patient, "") {
		if o.Key == to.Key || !o.awaits() || o.Received.After(l.Received) || o.Meeting == "" {
			continue
		}
		if m, ok := c.meetingByID(o.Meeting); !ok || m.At.After(l.Received) {
			continue
		}
		if err := c.addTo(ctx, o.Key, l, func(r *Referral) *[]Ref { return &r.Recommendations }); err != nil {
			return err
		}
	}
	return nil
}

// addTo adds letter l to the list field picks of the referral key, once.
func (c *Council) addTo(ctx context.Context, key string, l *letter.Letter, field func(*Referral) *[]Ref) error {
	_, err := c.reg.updateReferral(ctx, key, func(cur *Referral) bool {
		list := field(cur)
		if slices.ContainsFunc(*list, func(x Ref) bool { return x.LetterID == l.ID }) {
			return false
		}
		*list = append(*list, ref(l))
		if l.Consent != nil && !l.Received.Before(cur.consentAt()) {
			// The newest statement of the child's consent (the case
			// system's, on the council's letters) is the one shown.
			cur.Consent, cur.ConsentFrom = consentFacts(l.Consent), l.ID
		}
		return true
	})
	return err
}

func consentFacts(k *letter.Consent) *ConsentFacts {
	f := &ConsentFacts{GivenBy: k.GivenBy, Form: k.Form, GivenAt: k.GivenAt, YoungPersonRefused: k.YoungPersonRefused, WithdrawnAt: k.WithdrawnAt}
	for _, s := range k.Scopes {
		f.Scopes = append(f.Scopes, string(s))
	}
	return f
}

// referralOf finds the referral a letter follows: the one it answers,
// else the newest of its thread, else the newest about its child, received
// no later than the letter.
func (c *Council) referralOf(l *letter.Letter) (Referral, bool) {
	var answers, thread string
	if l.InReplyTo != "" {
		answers = broker.Token(l.InReplyTo)
	}
	if l.ThreadID != "" {
		thread = broker.Token(l.ThreadID)
	}
	return c.reg.find(answers, thread, patientToken(l), l.Received)
}

// rejectionRule names the first council.rejections rule the letter
// matches, or "".
func (c *Council) rejectionRule(l *letter.Letter) string {
	for _, rule := range c.cfg.Rejections {
		if !route.Matches(rule.Match, l) {
			continue
		}
		if len(rule.Words) > 0 && !containsAny(strings.ToLower(l.Subject+"\n"+l.Text), rule.Words) {
			continue
		}
		return rule.Name
	}
	return ""
}

func containsAny(s string, words []string) bool {
	for _, w := range words {
		if w = strings.ToLower(strings.TrimSpace(w)); w != "" && strings.Contains(s, w) {
			return true
		}
	}
	return false
}

func (c *Council) recordRejection(ctx context.Context, l *letter.Letter, rule string) error {
	x := Rejection{LetterID: l.ID, Received: l.Received.UTC(), Rule: rule, Sender: org(l.Sender), Patient: patientToken(l)}
	if r, ok := c.referralOf(l); ok {
		x.Referral = r.Key
		if _, err := c.reg.updateReferral(ctx, r.Key, func(cur *Referral) bool {
			if slices.ContainsFunc(cur.Rejections, func(v Ref) bool { return v.LetterID == l.ID }) {
				return false
			}
			cur.Rejections = append(cur.Rejections, ref(l))
			return true
		}); err != nil {
			return err
		}
	}
	_, err := update(ctx, c.reg, prefixRejection+broker.Token(l.ID), func(cur *Rejection, exists bool) (bool, error) {
		if exists {
			return false, nil
		}
		*cur = x
		return true, nil
	})
	return err
}
