package council

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/samhub/samhub/pipeline/letter"
)

// MetaCopyFor is the Letter.Meta key of an answer copy: the referral's
// letter id it answers (a note for whoever traces it).
const MetaCopyFor = "council_copy_for"

// CopyID is the id of the copy of recommendation recID for the GP who
// sent referral referralID: one copy per pair, however often the register
// reads the recommendation (the letter stream refuses an id it has).
func CopyID(recID, referralID string) string { return "copy:" + recID + "|" + referralID }

// referrer is a referring letter a recommendation answers, and its GP.
type referrer struct {
	letterID string
	gp       Org
}

// copyAnswer sends the recommendation rec to each GP who referred the
// child in a referral rec answers (a later referral joined to the seat, or
// another open referral it answers) and whom rec itself does not reach:
// the register counts such a referral answered, so its GP must have the
// answer. Each copy is a hub-made letter in that referral's thread
// (InReplyTo), naming that GP as its only receiver; the routes carry it as
// they carry rec (the same rules, the same consent), and only to that GP's
// sector (route: Letter.CopyOf). Old recommendations (a register built
// anew) send none, as receipts do not.
func (c *Council) copyAnswer(ctx context.Context, rec *letter.Letter, seat Referral) error {
	if c.now().Sub(rec.Received) > receiptMaxAge {
		return nil
	}
	answered := c.answeredBy(rec, seat)
	reached := reachedBy(rec, answered)
	toGP := slices.ContainsFunc(reached, func(o Org) bool {
		return o.Role == letter.RoleGP || slices.ContainsFunc(answered, func(a referrer) bool { return a.gp.same(o) })
	})
	if !toGP {
		// rec goes to no GP itself: it names none (only the region,
		// say: a letter's own recipients are never widened), or it
		// answers no referral the register knows (it parks unresolved).
		// A copy would send what rec does not.
		return nil
	}
	var full *letter.Letter
	for _, a := range answered {
		if !hasOrgID(a.gp) || slices.ContainsFunc(reached, a.gp.same) {
			continue
		}
		reached = append(reached, a.gp)
		ref, err := c.d.StoredLetter(ctx, a.letterID)
		if err != nil {
			return err
		}
		if ref == nil {
			continue // past retention: nothing to answer in
		}
		if full == nil {
			full = rec
			if c.d.Bind != nil {
				full = c.d.Bind(rec)
			}
		}
		if err := c.d.Publish(ctx, answerCopy(full, ref, c.now())); err != nil {
			return fmt.Errorf("answer copy: %w", err)
		}
	}
	return nil
}

// answeredBy lists the referring letters rec answers: the seat's and its
// joined referrals', and those of the child's other referrals that list
// rec among their recommendations (answerOthers).
func (c *Council) answeredBy(rec *letter.Letter, seat Referral) []referrer {
	var out []referrer
	add := func(r Referral) {
		out = append(out, referrer{r.LetterID, r.GP})
		for _, j := range r.Joined {
			out = append(out, referrer{j.LetterID, j.GP})
		}
	}
	add(seat)
	if seat.Patient == "" {
		return out
	}
	for _, o := range c.reg.ofChild(seat.Patient, "") {
		if o.Key != seat.Key && slices.ContainsFunc(o.Recommendations, func(x Ref) bool { return x.LetterID == rec.ID }) {
			add(o)
		}
	}
	return out
}

// reachedBy is whom rec goes to: the parties it names with an identifier
// (any sector), else the GP of the referral it answers.
func reachedBy(rec *letter.Letter, answered []referrer) []Org {
	var out []Org
	for _, p := range rec.Receivers {
		if o := org(p); hasOrgID(o) {
			out = append(out, o)
		}
	}
	if len(rec.Receivers) > 0 {
		return out
	}
	for _, a := range answered {
		if a.letterID == rec.InReplyTo && hasOrgID(a.gp) {
			return []Org{a.gp}
		}
	}
	return nil
}

func hasOrgID(o Org) bool { return o.GLN != "" || o.SOR != "" }

// same reports whether o and p are one organisation: a GLN or a SOR code
// in common.
func (o Org) same(p Org) bool {
	eq := func(a, b string) bool { return a != "" && strings.EqualFold(a, b) }
	return eq(o.GLN, p.GLN) || eq(o.SOR, p.SOR)
}

// answerCopy is rec as a hub-made letter answering the referral ref, to
// ref's sender alone. Parts rec keeps in the blob store are named afresh
// (their Ref cleared where they open from the store), so storing the copy
// re-dates the blobs it shares with rec.
func answerCopy(rec, ref *letter.Letter, now time.Time) *letter.Letter {
	c := *rec
	c.ID, c.CopyOf, c.Source = CopyID(rec.ID, ref.ID), rec.ID, HubSource
	c.InReplyTo, c.ThreadID = ref.ID, ref.Thread()
	c.Received = now.UTC()
	to := ref.Sender
	if to.Role == "" {
		// Referrals come from GPs; the receiver directory, where it lists
		// the party, still has the last word on its role (pipeline/route).
		to.Role = letter.RoleGP
	}
	c.Receivers, c.To = []letter.Party{to}, nil
	c.ContactEmail, c.SourceDocumentID, c.Ack = "", "", nil
	c.Meta = map[string]string{MetaCopyFor: ref.ID}
	if c.Original.Streamed() {
		c.Original.Ref = ""
	}
	c.Attachments = slices.Clone(rec.Attachments)
	for i := range c.Attachments {
		if c.Attachments[i].Streamed() {
			c.Attachments[i].Ref = ""
		}
	}
	return &c
}
