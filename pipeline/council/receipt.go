package council

import (
	"cmp"
	"context"
	"fmt"
	"strings"
	"text/template"
	"time"

	"github.com/samhub/samhub/pipeline/council/schedule"
	"github.com/samhub/samhub/pipeline/letter"
	"github.com/samhub/samhub/pipeline/route"
)

// Letter.Meta keys of a receipt: notes for whoever traces it (see
// letter.Letter.Meta).
const (
	MetaMeeting  = "council_meeting"  // the meeting the referral was put on
	MetaReferral = "council_referral" // the referral's letter id
)

// receiptMaxAge: a referral older than this gets no receipt (a register
// built anew from a stored stream must not send old referrals receipts).
const receiptMaxAge = 7 * 24 * time.Hour

// ReceiptID is the id of the receipt for a referral: one receipt per
// referral, however often the register reads the referral (the letter
// stream refuses a letter id it has stored).
func ReceiptID(referralID string) string { return "receipt:" + referralID }

// ReceiptRoute is the rule that carries receipts, when they are on: hub-
// made replies to the receipt destination. Consent is checked only when
// council.receipt.require_consent is set (see docs/council.md).
func ReceiptRoute(k Options) (route.Rule, bool) {
	if !k.Enabled || !k.Receipt.Enabled {
		return route.Rule{}, false
	}
	require := k.Receipt.RequireConsent
	return route.Rule{Name: "council-receipt", Match: route.Match{Kind: []string{string(letter.KindReply)}, Source: []string{HubSource}},
		To: []string{k.Receipt.Destination}, RequireConsent: &require}, true
}

// sendReceipt stores the receipt for referral ref, taken by the meeting
// (its id) at at, when receipts are on and it is still news: the meeting
// lies ahead and the referral is recent, or (seatedNow) it waited for a
// meeting with room and got one just now.
func (c *Council) sendReceipt(ctx context.Context, ref *letter.Letter, meeting string, at time.Time, seatedNow bool) error {
	if !seatedNow && c.now().Sub(ref.Received) > receiptMaxAge {
		return nil
	}
	return c.tellGP(ctx, ref, ReceiptID(ref.ID), meeting, at, time.Time{})
}

// tellGP stores letter id telling the GP who sent referral ref that the
// meeting (its id) at at takes it: a receipt, or, when the GP was told of
// a meeting at before, its new date. Nothing when receipts are off or the
// meeting has begun. It goes to the referring GP as a reply in the
// referral's thread (the gp destination addresses the thread's party), in
// the format the receiver directory names for that GP. It carries the
// child's identity as the GP sent it, the meeting date and nothing more.
func (c *Council) tellGP(ctx context.Context, ref *letter.Letter, id, meeting string, at, before time.Time) error {
	now := c.now()
	switch {
	case !c.cfg.Receipt.Enabled, !at.After(now):
		return nil
	case ref.Sender.GLN == "" && ref.Sender.SOR == "":
		return nil // not a MedCom party: nothing to answer to
	}
	text, err := c.receiptText(ref, at, before)
	if err != nil {
		return err
	}
	var sender letter.Party
	if len(ref.Receivers) > 0 {
		r := ref.Receivers[0] // the council's address the GP wrote to
		sender = letter.Party{Name: r.Name, GLN: r.GLN, SOR: r.SOR, Municipality: r.Municipality, Unit: r.Unit}
	}
	sender.Role = letter.RoleMunicipality
	var patient *letter.Patient
	if ref.Patient != nil {
		p := *ref.Patient
		patient = &p
	}
	subject := "Kvittering for henvisning"
	if !before.IsZero() {
		subject = "Nyt tidspunkt for behandling af henvisning"
	}
	l := &letter.Letter{
		ID: id, Kind: letter.KindReply, Format: "text", ThreadID: ref.ThreadID, InReplyTo: ref.ID,
		Received: now.UTC(), Sender: sender, Patient: patient, Consent: ref.Consent,
		Subject: subject, Text: text,
		Original: letter.Original{Data: []byte(text), ContentType: "text/plain; charset=utf-8", Charset: "utf-8", Filename: "kvittering.txt"},
		Meta:     map[string]string{MetaMeeting: meeting, MetaReferral: ref.ID},
	}
	if err := c.d.Publish(ctx, l); err != nil {
		return fmt.Errorf("receipt: %w", err)
	}
	return nil
}

// resendReceipts sends the receipt of every referral seated in the last
// seven days in a meeting ahead whose receipt the letter stream does not
// hold. The register stores a seat before its receipt goes, and a referral
// the watch seats from the waiting is not seated again, so a failed
// publish (the store refusing for a moment, a stop in between) left a
// seat no letter told. A receipt stored already is not stored again.
func (c *Council) resendReceipts(ctx context.Context) error {
	if !c.cfg.Receipt.Enabled {
		return nil
	}
	now := c.now()
	for _, r := range c.reg.allReferrals() {
		if !r.awaits() || len(r.Retold) > 0 || now.Sub(r.Assigned) > receiptMaxAge {
			continue // (a new date's letter names the meeting since)
		}
		m, ok := c.meetingByID(r.Meeting)
		if !ok || !m.At.After(now) || !m.Cancelled.IsZero() {
			continue
		}
		for _, id := range append([]string{r.LetterID}, joinedIDs(r)...) {
			rid := ReceiptID(id)
			if c.isTold(rid) {
				continue
			}
			had, err := c.d.StoredLetter(ctx, rid)
			if err != nil {
				return err
			}
			if had == nil {
				ref, err := c.d.StoredLetter(ctx, id)
				if err != nil {
					return err
				}
				if ref != nil {
					// News however old the referral: its seat is recent.
					if err := c.sendReceipt(ctx, ref, m.ID, m.At, true); err != nil {
						return err
					}
				}
			}
			c.markTold(rid, r.Assigned)
		}
	}
	return nil
}

func joinedIDs(r Referral) []string {
	ids := make([]string, 0, len(r.Joined))
	for _, j := range r.Joined {
		ids = append(ids, j.LetterID)
	}
	return ids
}

// receiptText is the receipt's text, or a new date's when before (the
// meeting's time the GP knew of) is set.
func (c *Council) receiptText(ref *letter.Letter, at, before time.Time) (string, error) {
	key, text := "council.receipt.template", c.cfg.Receipt.Template
	if !before.IsZero() {
		key, text = "council.receipt.moved_template", cmp.Or(c.cfg.Receipt.MovedTemplate, DefaultMovedTemplate)
	}
	t, err := template.New("receipt").Option("missingkey=error").Parse(text)
	if err != nil {
		return "", fmt.Errorf("%s: %w", key, err)
	}
	local := at.In(c.rule.Loc)
	f := ReceiptFields{Date: schedule.DanishDate(local), Time: local.Format("15.04"), Weekday: schedule.DanishWeekday(local), Practice: ref.Sender.Name}
	if !before.IsZero() {
		f.Before = schedule.Danish(before.In(c.rule.Loc))
	}
	if len(ref.Receivers) > 0 {
		f.Council = ref.Receivers[0].Name
	}
	var b strings.Builder
	if err := t.Execute(&b, f); err != nil {
		return "", fmt.Errorf("%s: %w", key, err)
	}
	return b.String(), nil
}
