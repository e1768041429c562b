package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/samhub/samhub/pipeline/journey"
	"github.com/samhub/samhub/pipeline/letter"
	"github.com/samhub/samhub/pipeline/retryq"
)

// CodeNegativeAck parks a letter its receiver refused.
const CodeNegativeAck = "negative_ack"

// acknowledged records a receiver's answer (ack, stored at ackSeq) in the
// journey of the letter it answers. A refusal parks that letter at the
// destination that sent it, so the coordinator sees it in the retry queue
// with the receiver's reason and can send it again (replay, after fixing
// what was wrong: the receiver's formats, the document) or discard it. A
// transient error is not parked: the receiver takes the letter later and
// the sender resends it by itself.
func (h *Hub) acknowledged(ctx context.Context, ack *letter.Letter, ackSeq uint64) {
	// RemoteID names the acknowledgement itself, so a second delivery of
	// the same one (ackRecorded) is not recorded, nor parked, twice.
	ev := journey.Event{LetterID: ack.InReplyTo, Step: journey.Acknowledged, Source: ack.Source, RemoteID: ack.ID}
	if a := ack.Ack; a != nil {
		ev.Code, ev.Reason = a.Code, scrubText(a.Reason)
	}
	h.recordStep(ctx, ev)
	if ack.Ack == nil || ack.Ack.Positive || ack.Ack.Transient {
		return
	}
	if err := h.parkRefused(ctx, ack, ackSeq); err != nil {
		h.log.Error("a receiver refused a letter, but it could not be parked for the coordinator; the journey shows the refusal", "letter_id", ack.InReplyTo, "err", err)
	}
}

// ackRecorded reports whether the acknowledgement ack is in the journey
// of the letter it answers; when the journey cannot be read it says no,
// since recording it twice is the smaller harm than losing a refusal.
func (h *Hub) ackRecorded(ctx context.Context, ack *letter.Letter) bool {
	steps, err := h.journey.Trace(ctx, ack.InReplyTo)
	if err != nil {
		return false
	}
	for _, s := range steps {
		if s.Step == journey.Acknowledged && s.RemoteID == ack.ID {
			return true
		}
	}
	return false
}

// parkRefused parks the refused letter at the destination that delivered
// it through the adapter the refusal came back through.
func (h *Hub) parkRefused(ctx context.Context, ack *letter.Letter, ackSeq uint64) error {
	steps, err := h.journey.Trace(ctx, ack.InReplyTo)
	if err != nil {
		return err
	}
	var d *destination
	for _, s := range steps {
		if dd, ok := h.dests[s.Destination]; ok && s.Step == journey.Delivered && dd.cfg.Adapter == ack.Source {
			d = dd
		}
	}
	if d == nil {
		h.log.Warn("a refusal names no letter this hub delivered through that adapter", "letter_id", ack.InReplyTo, "source", ack.Source)
		return nil
	}
	l, raw, err := h.stored.get(ctx, ack.InReplyTo)
	if errors.Is(err, ErrUnknownLetter) {
		return fmt.Errorf("the refused letter is no longer stored (past streams.letters_max_age)")
	}
	if err != nil {
		return err
	}
	reason := fmt.Sprintf("the receiver refused the letter (%s", ack.Ack.Code)
	if ack.Ack.Reason != "" {
		reason += ": " + ack.Ack.Reason
	}
	reason += "); correct what it names (the receiver directory's formats, the document) and replay to send it again, or discard it"
	f := retryq.Failure{At: h.now().UTC(), Class: "permanent", Code: CodeNegativeAck, Reason: reason}
	h.log.Warn("receiver refused a letter", slog.Any("letter", l), "destination", d.name, "code", ack.Ack.Code)
	// The refusal's own sequence keeps this park apart from an earlier
	// park of the same letter at the same destination.
	return h.park(ctx, d, l, raw.Data, position{seq: raw.Sequence, orig: raw.Sequence, cause: ackSeq}, 0, f, f)
}
