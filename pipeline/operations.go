package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/pipeline/audit"
	"github.com/samhub/samhub/pipeline/blobs"
	"github.com/samhub/samhub/pipeline/broker"
	"github.com/samhub/samhub/pipeline/journey"
	"github.com/samhub/samhub/pipeline/letter"
	"github.com/samhub/samhub/pipeline/retryq"
	"github.com/samhub/samhub/pipeline/route"
)

// Actor is who asks for an operation; every operation is audited with it.
type Actor struct {
	Name   string
	Role   string
	Remote string
}

// Queue gives read access to the retry queue.
func (h *Hub) Queue() *retryq.Queue { return h.queue }

// JetStream gives the broker the hub runs on (the console keeps its
// sessions there).
func (h *Hub) JetStream() jetstream.JetStream { return h.js }

// Audit gives the audit log.
func (h *Hub) Audit() *audit.Log { return h.audit }

// Destinations lists configured destinations.
func (h *Hub) Destinations() []string { return h.router.Destinations() }

// Held returns, per destination, the threads held back behind a failing
// letter (thread token → letters waiting).
func (h *Hub) Held() map[string]map[string]int {
	out := map[string]map[string]int{}
	for name, s := range h.subs {
		out[name] = s.Held()
	}
	return out
}

// ErrReasonRequired is returned when a discard has no reason.
var ErrReasonRequired = errors.New("a reason is required")

// ErrThreadHeld means a parked letter waits for an earlier letter of its
// thread, parked at the same destination. Replaying it would only park it
// again, and while its replay waited behind that letter's, the release
// that letter's delivery makes would send the letters parked after it
// first. It stays parked, in its place, and follows once that letter is
// delivered or discarded, or the thread is released.
var ErrThreadHeld = errors.New("the letter waits for an earlier letter of its thread; it follows once that letter is delivered or discarded, or the thread is released")

// Replay sends a parked letter back to the destination that failed. The
// letter goes through that destination's consumer again (consent is checked
// again); the sink's idempotency makes a second delivery impossible, so a
// replay delivers exactly once. With dryRun only the decision is returned.
func (h *Hub) Replay(ctx context.Context, who Actor, seq uint64, reason string, dryRun bool) (route.Decision, error) {
	return h.replay(ctx, who, seq, reason, dryRun, "")
}

// replay is Replay; bulk names the bulk replay it is part of (whose own
// audit records cover it, and which the letter's journey then names), or
// is empty for a replay audited on its own.
func (h *Hub) replay(ctx context.Context, who Actor, seq uint64, reason string, dryRun bool, bulk string) (_ route.Decision, err error) {
	e, raw, err := h.queue.Get(ctx, seq)
	if err != nil {
		return route.Decision{}, err
	}
	l, err := letter.Unmarshal(raw)
	if err != nil {
		return route.Decision{}, fmt.Errorf("parked letter unreadable: %w", err)
	}
	consent, err := h.consents.effective(ctx, l)
	if err != nil {
		return route.Decision{}, err
	}
	dec := h.router.DecideReplay(l, e.Destination, consent, h.now())
	// Checked before a dry run returns, so the preview answers as the
	// replay would.
	if e.LastError.Code == CodeThreadHeld {
		if hd, held := h.holds.get(e.Destination, e.Thread); held && hd.LetterID != e.LetterID {
			return dec, ErrThreadHeld
		}
	}
	if dryRun {
		return dec, nil
	}
	sent := false
	if bulk == "" {
		rec := audit.Record{Actor: who.Name, Role: who.Role, Remote: who.Remote, Action: "replay", Target: fmt.Sprintf("parked:%d letter:%s destination:%s", seq, e.LetterID, e.Destination), Reason: scrubText(reason), Result: "ok"}
		if err := h.audit.Append(ctx, rec); err != nil {
			return dec, err
		}
		defer func() {
			if err != nil && !sent { // once sent, the replay happened
				h.auditUndone(ctx, rec, err)
			}
		}()
	}
	// The replayed letter is stored anew and lives a full letters_max_age
	// from now; its blobs, no longer named by the parked entry once it is
	// removed, are re-dated to live as long.
	if err := h.blobs.Touch(ctx, blobs.Refs(l)); err != nil {
		return dec, fmt.Errorf("replay: %w", err)
	}
	msg := nats.NewMsg(broker.ReplaySubject(e.Destination, e.LetterID))
	msg.Data = raw
	msg.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("replay:%s:%d", e.Destination, seq))
	msg.Header.Set(HdrThread, e.Thread)
	msg.Header.Set(HdrKind, e.Kind)
	msg.Header.Set(HdrSource, e.Source)
	msg.Header.Set(HdrReplay, e.Destination)
	msg.Header.Set(HdrParked, fmt.Sprint(seq))
	if o := origSeq(e); o != 0 {
		msg.Header.Set(HdrOrigSeq, fmt.Sprint(o))
	}
	if _, err := h.js.PublishMsg(ctx, msg, jetstream.WithExpectStream(broker.StreamLetters)); err != nil {
		return dec, fmt.Errorf("replay: %w", err)
	}
	sent = true
	if err := h.queue.Remove(ctx, seq); err != nil && !errors.Is(err, retryq.ErrNotParked) {
		return dec, err
	}
	h.m.replayed.WithLabelValues(e.Destination).Inc()
	h.recordStep(ctx, journey.Event{LetterID: e.LetterID, Step: journey.Replayed, Destination: e.Destination, Actor: who.Name, Reason: bulk})
	return dec, nil
}

// auditUndone records that an action audited before it was done did not
// happen after all, so the log does not leave it standing as done:
// refused when the queue or the thread changed in between, failed when a
// write did not go through.
func (h *Hub) auditUndone(ctx context.Context, rec audit.Record, why error) {
	rec.Result, rec.Reason = "failed", scrubText(why.Error())
	for _, e := range []error{retryq.ErrNotParked, ErrNotHeld, ErrThreadHeld, adapters.ErrUnknownInput, adapters.ErrAnswered} {
		if errors.Is(why, e) {
			rec.Result = "refused"
		}
	}
	if err := h.audit.Append(context.WithoutCancel(ctx), rec); err != nil {
		h.log.Warn("an action audited as done that did not happen was not audited again", "action", rec.Action, "err", err)
	}
}

// Discard removes a parked letter for good, with a required reason.
func (h *Hub) Discard(ctx context.Context, who Actor, seq uint64, reason string) error {
	if strings.TrimSpace(reason) == "" {
		return ErrReasonRequired
	}
	e, raw, err := h.queue.Get(ctx, seq)
	if err != nil {
		return err
	}
	rec := audit.Record{Actor: who.Name, Role: who.Role, Remote: who.Remote, Action: "discard", Target: fmt.Sprintf("parked:%d letter:%s destination:%s", seq, e.LetterID, e.Destination), Reason: scrubText(reason), Result: "ok"}
	if err := h.audit.Append(ctx, rec); err != nil {
		return err
	}
	if err := h.queue.Remove(ctx, seq); err != nil {
		// Replayed or discarded by someone else in between, or not
		// written: the letter was not discarded by this request.
		h.auditUndone(ctx, rec, err)
		return err
	}
	h.m.discarded.WithLabelValues(e.Destination).Inc()
	h.recordStep(ctx, journey.Event{LetterID: e.LetterID, Step: journey.Discarded, Destination: e.Destination, Actor: who.Name, Reason: scrubText(reason)})
	if d, ok := h.dests[e.Destination]; ok {
		if l, err := letter.Unmarshal(raw); err == nil {
			// Recipients a partial delivery reached keep their "sent".
			notReached := func(i int, _ letter.Party) bool { return !slices.Contains(e.DeliveredTo, i) }
			h.reportSome(ctx, l, d, nil, notReached, adapters.StateFailed, "discarded", "discarded by the coordinator: "+scrubText(reason))
		}
	}
	if hd, held := h.holds.get(e.Destination, e.Thread); held && hd.LetterID == e.LetterID {
		// The letters held behind it need not wait any longer.
		if err := h.requestRelease(ctx, e.Destination, e.Thread); err != nil {
			return fmt.Errorf("discarded, but the letters held behind it were not released (release the thread): %w", err)
		}
	}
	return nil
}

// Trace is where a letter is: its stored summary and every journey step.
type Trace struct {
	Letter  *Summary        `json:"letter,omitempty"`
	Steps   []journey.Event `json:"steps"`
	Parked  []retryq.Entry  `json:"parked,omitempty"`
	Pending []string        `json:"pendingDestinations,omitempty"`
}

// Summary is a letter without personal content.
type Summary struct {
	ID       string    `json:"id"`
	Kind     string    `json:"kind"`
	Format   string    `json:"format"`
	Source   string    `json:"source"`
	ThreadID string    `json:"threadId,omitempty"`
	Received time.Time `json:"received"`
	Category string    `json:"category,omitempty"`
	Seq      uint64    `json:"seq"`
}

// TraceLetter returns the journey of one letter: no personal content.
func (h *Hub) TraceLetter(ctx context.Context, id string) (*Trace, error) {
	t := &Trace{}
	l, seq, err := h.StoredLetter(ctx, id) // a summary needs no content
	if err != nil && !errors.Is(err, ErrUnknownLetter) {
		return nil, err
	}
	steps, err := h.journey.Trace(ctx, id)
	if err != nil {
		return nil, err
	}
	t.Steps = steps
	if l != nil {
		t.Letter = &Summary{ID: l.ID, Kind: string(l.Kind), Format: l.Format, Source: l.Source, ThreadID: l.ThreadID, Received: l.Received, Category: l.Category, Seq: seq}
		t.Steps = append([]journey.Event{{LetterID: l.ID, At: l.Received, Step: journey.Received, Source: l.Source}}, steps...)
	} else if len(steps) == 0 {
		return nil, ErrUnknownLetter
	}
	// Destinations that should get it and have not (yet).
	if l != nil {
		consent, _ := h.consents.effective(ctx, l)
		done := map[string]bool{}
		for _, s := range steps {
			if s.Step == journey.Delivered || s.Step == journey.Parked || s.Step == journey.Denied || s.Step == journey.Discarded {
				done[s.Destination] = true
			}
		}
		for _, d := range h.router.Plan(l, consent, h.now()) {
			if d.Verdict == route.Deliver && !done[d.Destination] {
				t.Pending = append(t.Pending, d.Destination)
			}
		}
	}
	return t, nil
}

// PlanLetter is `route --dry-run` on a running hub: the decisions for l.
func (h *Hub) PlanLetter(ctx context.Context, l *letter.Letter) ([]route.Decision, error) {
	consent, err := h.consents.effective(ctx, l)
	if err != nil {
		return nil, err
	}
	return h.router.Plan(l, consent, h.now()), nil
}

// Sink returns the sink behind a destination (for conformance tests and
// diagnostics), or nil.
func (h *Hub) Sink(dest string) adapters.Sink {
	if d, ok := h.dests[dest]; ok {
		return d.sink
	}
	return nil
}

// Query selects stored letters; empty fields match all.
type Query struct {
	ThreadID  string
	PatientID string    // CPR or replacement id; callers audit the search
	Since     time.Time // default: 90 days back
	Limit     int       // default 200
}

// scanCap bounds one search: a council receives hundreds of letters a
// month, so a scan of the recent letter stream answers at once; a hub with
// far more letters needs an index, and the cap keeps a search from stalling.
const scanCap = 100_000

// FindLetters scans the letter stream from q.Since for letters of a thread
// or a patient, newest last. It reads letters, so a search by patient is a
// read of personal data: the caller audits it.
func (h *Hub) FindLetters(ctx context.Context, q Query) ([]Summary, error) {
	if q.Since.IsZero() {
		q.Since = h.now().Add(-90 * 24 * time.Hour)
	}
	if q.Limit <= 0 {
		q.Limit = 200
	}
	norm := func(s string) string { return strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(s), "-", "")) }
	patient := norm(q.PatientID)
	var out []Summary
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{broker.SubjLetters + ".in.>"}, DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &q.Since}
	err := broker.Scan(ctx, h.js, broker.StreamLetters, cfg, scanCap, func(m jetstream.Msg) bool {
		l, err := letter.Unmarshal(m.Data())
		if err != nil || l.Kind == letter.KindNotification {
			return true
		}
		if q.ThreadID != "" && l.ThreadID != q.ThreadID && l.ID != q.ThreadID {
			return true
		}
		if patient != "" && (l.Patient == nil || norm(l.Patient.Identifier()) != patient) {
			return true
		}
		var seq uint64
		if md, err := m.Metadata(); err == nil {
			seq = md.Sequence.Stream
		}
		out = append(out, Summary{ID: l.ID, Kind: string(l.Kind), Format: l.Format, Source: l.Source, ThreadID: l.ThreadID, Received: l.Received, Category: l.Category, Seq: seq})
		return len(out) < q.Limit
	})
	return out, err
}
