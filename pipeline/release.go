package pipeline

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/samhub/samhub/pipeline/audit"
	"github.com/samhub/samhub/pipeline/broker"
	"github.com/samhub/samhub/pipeline/journey"
	"github.com/samhub/samhub/pipeline/letter"
	"github.com/samhub/samhub/pipeline/retryq"
)

// releaseThread delivers the letters held behind a destination's thread,
// oldest first, and lifts the hold. It runs in the thread's turn at the
// destination (after the letter they waited for was delivered, or for a
// release message), so no later letter of the thread can overtake them.
// A released letter that parks again holds the thread in turn; those after
// it stay held. blocker is the letter that was delivered ("" for a release
// message: the thread is released whatever holds it).
func (h *Hub) releaseThread(ctx context.Context, d *destination, thread, blocker string) error {
	entries, err := h.queue.List(ctx, retryq.Filter{Destination: d.name, Thread: thread, Code: CodeThreadHeld})
	if err != nil {
		return err
	}
	slices.SortFunc(entries, func(a, b retryq.Entry) int { return cmp.Compare(origSeq(a), origSeq(b)) })
	for _, e := range entries {
		_, raw, err := h.queue.Get(ctx, e.Seq)
		if errors.Is(err, retryq.ErrNotParked) {
			continue // replayed or discarded meanwhile
		}
		if err != nil {
			return err
		}
		l, err := letter.Unmarshal(raw)
		if err != nil {
			return fmt.Errorf("held letter unreadable: %w", err)
		}
		h.recordStep(ctx, journey.Event{LetterID: l.ID, Step: journey.Released, Destination: d.name})
		res, err := h.handle(ctx, d, l, raw, position{seq: e.LetterSeq, orig: origSeq(e), cause: e.Seq}, true, false)
		if err != nil {
			return err // not handled: the release runs again when it comes back
		}
		if err := h.queue.Remove(ctx, e.Seq); err != nil && !errors.Is(err, retryq.ErrNotParked) {
			return err
		}
		if res == outParked {
			// It parked again: it holds the thread now, and the letters
			// after it wait for it.
			return h.holds.set(ctx, d.name, thread, l.ID, true, h.now())
		}
	}
	if hd, held := h.holds.get(d.name, thread); held && (blocker == "" || hd.LetterID == blocker) {
		return h.holds.clear(ctx, d.name, thread)
	}
	return nil
}

func origSeq(e retryq.Entry) uint64 {
	if e.OrigSeq != 0 {
		return e.OrigSeq
	}
	return e.LetterSeq
}

// requestRelease asks the destination to release a held thread: a message
// on its replay subject, handled in the thread's turn like a letter.
func (h *Hub) requestRelease(ctx context.Context, dest, thread string) error {
	msg := nats.NewMsg(broker.ReplaySubject(dest, "release:"+thread))
	msg.Header.Set(jetstream.MsgIDHeader, "release:"+dest+":"+thread+":"+nuid.Next())
	msg.Header.Set(HdrThread, thread)
	msg.Header.Set(HdrReplay, dest)
	msg.Header.Set(HdrRelease, "1")
	_, err := h.js.PublishMsg(ctx, msg, jetstream.WithExpectStream(broker.StreamLetters))
	return err
}

// ErrNotHeld means the destination holds no such thread.
var ErrNotHeld = errors.New("no held thread with that token at that destination")

// Holds lists the threads held back at each destination behind a parked
// letter.
func (h *Hub) Holds() []Hold {
	out := h.holds.list()
	slices.SortFunc(out, func(a, b Hold) int {
		return cmp.Or(strings.Compare(a.Destination, b.Destination), a.Since.Compare(b.Since))
	})
	return out
}

// ReleaseThread lets the letters held behind a parked letter go on to the
// destination without it (the coordinator decided they need not wait);
// the parked letter itself stays in the queue. Audited, reason required.
func (h *Hub) ReleaseThread(ctx context.Context, who Actor, dest, thread, reason string) error {
	if strings.TrimSpace(reason) == "" {
		return ErrReasonRequired
	}
	hd, held := h.holds.get(dest, thread)
	if !held {
		return ErrNotHeld
	}
	rec := audit.Record{Actor: who.Name, Role: who.Role, Remote: who.Remote, Action: "release-thread",
		Target: fmt.Sprintf("thread:%s destination:%s waiting-for:%s", thread, dest, hd.LetterID), Reason: scrubText(reason), Result: "ok"}
	if err := h.audit.Append(ctx, rec); err != nil {
		return err
	}
	if err := h.requestRelease(ctx, dest, thread); err != nil {
		h.auditUndone(ctx, rec, err)
		return err
	}
	return nil
}
