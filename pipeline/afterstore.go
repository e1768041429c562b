package pipeline

import (
	"context"
	"log/slog"

	"github.com/samhub/samhub/pipeline/letter"
	"github.com/samhub/samhub/pipeline/route"
)

// afterStore runs once per newly stored letter: the sources' recipient
// status and the council's business figures. Arrival notices are not made
// here: the notification destination derives them from the stored letter
// (noticeFor), so a crash between storing a letter and its notice cannot
// lose the notice, and a letter costs one stored message, not two.
func (h *Hub) afterStore(ctx context.Context, l *letter.Letter) {
	h.reportUnserved(ctx, l)
	h.observeLeadTime(ctx, l)
	h.noteUnrouted(l)
}

// noteUnrouted counts and logs a stored letter that no route sends to any
// destination (the routes leave out its kind or its source): each
// destination's journey step says skipped, and without this nobody would
// learn that a referral went nowhere (alert SamhubLetterUnrouted). An
// acknowledgement is the hub's own business and goes nowhere by design.
func (h *Hub) noteUnrouted(l *letter.Letter) {
	if l.Kind == letter.KindAcknowledgement || len(h.dests) == 0 {
		return
	}
	now := h.now()
	for name := range h.dests {
		// Skip does not depend on consent (a denial parks the letter).
		if h.router.Decide(l, name, l.Consent, now).Verdict != route.Skip {
			return
		}
	}
	h.m.unrouted.WithLabelValues(l.Source, string(l.Kind)).Inc()
	h.log.Warn("letter stored, but no route sends it to any destination; samhub route --dry-run shows why, and the console its journey",
		slog.Any("letter", l))
}

// afterDuplicate does again what afterStore may not have done for a letter
// a source gives again: a source gives a letter again exactly when it did
// not learn that it was stored (the store's answer lost, the hub killed
// between store and answer), and the first time's afterStore may then
// never have run. Each part is safe to repeat: a recipient's status is
// written as it is, and a receiver's acknowledgement is recorded only when
// its journey lacks it. The lead time is a process counter and is not
// observed twice.
func (h *Hub) afterDuplicate(ctx context.Context, l *letter.Letter, seq uint64) {
	h.reportUnserved(ctx, l)
	if l.Kind == letter.KindAcknowledgement && l.InReplyTo != "" && !h.ackRecorded(ctx, l) {
		h.acknowledged(ctx, l, seq)
	}
}

// observeLeadTime records the time from a referral to the council's
// recommendation answering it (the evaluation figure the council reports).
func (h *Hub) observeLeadTime(ctx context.Context, l *letter.Letter) {
	if l.Kind != letter.KindRecommendation || l.InReplyTo == "" || l.CopyOf != "" {
		return // a copy for another referring GP is no answer of its own
	}
	ref, _, err := h.StoredLetter(ctx, l.InReplyTo) // times only: no blobs read
	if err != nil || ref.Kind != letter.KindReferral {
		return
	}
	if d := l.Received.Sub(ref.Received); d >= 0 {
		h.m.leadTime.Observe(d.Seconds())
	}
}
