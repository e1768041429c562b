package pipeline

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/pipeline/letter"
	"github.com/samhub/samhub/pipeline/route"
)

// Statuses told back to a letter's source. A source whose system keeps a
// status for what it handed over (the case system's outbox) implements
// adapters.StatusReporter; the hub tells it, per recipient the letter
// names, when a destination delivered, is retrying, holds, parks or
// discards the letter, and, when the letter is stored, which recipients no
// destination serves at all. The adapter makes each report durable and
// writes it to its system in its own time.

// report tells l's source what became of the recipients d serves. to are
// the addressees of the delivery when known. The report names the
// recipients as the letter named them, so the source can find them in its
// own list; a recipient the letter did not name (the thread's GP) is
// reported as resolved.
func (h *Hub) report(ctx context.Context, l *letter.Letter, d *destination, to []letter.Party, state adapters.RecipientState, code, reason string) {
	h.reportSome(ctx, l, d, to, nil, state, code, reason)
}

// reportSome is report for the recipients keep selects (by their index in
// recipients(l, d, to) and the party); nil keeps all.
func (h *Hub) reportSome(ctx context.Context, l *letter.Letter, d *destination, to []letter.Party, keep func(int, letter.Party) bool, state adapters.RecipientState, code, reason string) {
	sr, ok := h.reporters[l.Source]
	if !ok {
		return
	}
	for i, p := range h.recipients(l, d, to) {
		if keep != nil && !keep(i, p) {
			continue
		}
		h.tell(ctx, sr, adapters.RecipientStatus{LetterID: l.ID, Destination: d.name, Recipient: p, State: state, Code: code, Reason: scrubText(reason), At: h.now().UTC()})
	}
}

// recipients are the recipients of l that d serves, as the letter names
// them; else the delivery's addressees to; else one unnamed party of the
// sector. Nil for the municipality's own file and internal notices, which
// are no recipients of the letter.
func (h *Hub) recipients(l *letter.Letter, d *destination, to []letter.Party) []letter.Party {
	roles := route.SectorRoles(d.cfg.Sector)
	if roles == nil {
		return nil
	}
	var out []letter.Party
	dir := h.router.Directory()
	for _, p := range l.Receivers {
		if slices.Contains(roles, dir.Enrich(p).Role) {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		out = to
	}
	if len(out) == 0 {
		out = []letter.Party{{Role: roles[0]}}
	}
	return out
}

// among returns a keep function for reportSome that selects the
// recipients who are (in true) or are not (in false) one of the addressees
// ps of a delivery (a partial delivery's Delivered, as in the letter's To).
func (h *Hub) among(ps []letter.Party, in bool) func(int, letter.Party) bool {
	dir := h.router.Directory()
	return func(_ int, p letter.Party) bool {
		e := dir.Enrich(p)
		found := slices.ContainsFunc(ps, func(q letter.Party) bool { return e.SamePerson(dir.Enrich(q)) })
		return found == in
	}
}

// deliveredIndexes are the indexes in recipients(l, d, nil) of the
// addressees ps a partial delivery reached, kept with a parked letter so a
// discard does not report them failed (retryq.Entry.DeliveredTo).
func (h *Hub) deliveredIndexes(l *letter.Letter, d *destination, ps []letter.Party) []int {
	if len(ps) == 0 {
		return nil
	}
	var out []int
	keep := h.among(ps, true)
	for i, p := range h.recipients(l, d, nil) {
		if keep(i, p) {
			out = append(out, i)
		}
	}
	return out
}

// reportUnserved tells the source of a newly stored letter which of the
// recipients it names no destination delivers to (no destination of that
// sector, or no rule sends this letter there), so such a copy shows as not
// sent instead of vanishing.
func (h *Hub) reportUnserved(ctx context.Context, l *letter.Letter) {
	sr, ok := h.reporters[l.Source]
	if !ok || len(l.Receivers) == 0 {
		return
	}
	dir := h.router.Directory()
	for _, p := range l.Receivers {
		role := dir.Enrich(p).Role
		if role == "" || role == letter.RoleMunicipality {
			continue
		}
		served := false
		for name, d := range h.dests {
			if !slices.Contains(route.SectorRoles(d.cfg.Sector), role) {
				continue
			}
			// Skip does not depend on consent; a denial still serves the
			// recipient (it waits for the consent).
			if h.router.Decide(l, name, l.Consent, h.now()).Verdict != route.Skip {
				served = true
				break
			}
		}
		if !served {
			h.tell(ctx, sr, adapters.RecipientStatus{LetterID: l.ID, Recipient: p, State: adapters.StateNotSent, Code: "no_destination",
				Reason: fmt.Sprintf("no destination delivers to the %s: none of that sector is configured, or no routing rule sends this letter there", role), At: h.now().UTC()})
		}
	}
}

// tell hands one report to the source, retrying briefly; a report that
// cannot be made durable is logged (the status in the source's system then
// lags, it never claims more than happened).
func (h *Hub) tell(ctx context.Context, sr adapters.StatusReporter, s adapters.RecipientStatus) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if err = sr.ReportStatus(ctx, s); err == nil {
			return
		}
		adapters.Sleep(ctx, time.Duration(attempt+1)*200*time.Millisecond)
	}
	h.log.Warn("recipient status not recorded", "letter_id", s.LetterID, "destination", s.Destination, "state", string(s.State), "err", redactErr(err))
}
