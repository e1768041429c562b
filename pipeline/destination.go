package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/cenkalti/backoff/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/internal/failpoint"
	"github.com/samhub/samhub/pipeline/blobs"
	"github.com/samhub/samhub/pipeline/broker"
	"github.com/samhub/samhub/pipeline/journey"
	"github.com/samhub/samhub/pipeline/jspubsub"
	"github.com/samhub/samhub/pipeline/letter"
	"github.com/samhub/samhub/pipeline/retryq"
	"github.com/samhub/samhub/pipeline/route"
)

// destination is one sink with its policy. Each reads the letter stream
// through its own durable consumer (ensureConsumer) and, for every letter,
// decides (route, consent, thread hold), addresses, delivers with retry
// and backoff, and parks what keeps failing: the handler below, then
// handle, deliver, call and park, in that order.
type destination struct {
	name        string
	sink        adapters.Sink
	cfg         Destination
	maxAttempts int
	backoffMin  time.Duration
	backoffMax  time.Duration
	timeout     time.Duration
	// inFlight: letters held at once, pipeline.max_in_flight or less when
	// the sink can usefully take fewer (adapters.Capacity).
	inFlight int
}

// newDestination applies the destination's own policy over the pipeline's.
func newDestination(name string, sink adapters.Sink, dc Destination, p Settings) *destination {
	d := &destination{name: name, sink: sink, cfg: dc, maxAttempts: p.MaxAttempts, backoffMin: p.BackoffInitial, backoffMax: p.BackoffMax, timeout: p.SinkTimeout}
	if dc.MaxAttempts > 0 {
		d.maxAttempts = dc.MaxAttempts
	}
	if dc.BackoffInitial > 0 {
		d.backoffMin = dc.BackoffInitial
	}
	if dc.BackoffMax > 0 {
		d.backoffMax = dc.BackoffMax
	}
	if dc.SinkTimeout > 0 {
		d.timeout = dc.SinkTimeout
	}
	d.inFlight = p.MaxInFlight
	if c, ok := sink.(adapters.Capacity); ok && c.Capacity() > 0 && c.Capacity() < d.inFlight {
		d.inFlight = c.Capacity()
	}
	return d
}

// ConsumerName is the durable consumer a destination reads through.
func ConsumerName(dest string) string { return "dest-" + dest }

// ensureConsumer creates the destination's durable consumer, or updates the
// settings that may change in place. A new destination starts with letters
// that arrive from now on; an existing one keeps its position, and one whose
// consumer was lost starts again just after its recorded place (positions).
// Replicas starting at once both make it: the one that finds it made in
// between, or whose request goes unanswered, tries again from reading it.
func (h *Hub) ensureConsumer(ctx context.Context, d *destination) error {
	return broker.RetryAPI(ctx, func(ctx context.Context) error { return h.ensureConsumerOnce(ctx, d) })
}

func (h *Hub) ensureConsumerOnce(ctx context.Context, d *destination) error {
	// Short: the subscriber sends InProgress while a letter is held, so a
	// slow sink call never times out, and after a crash letters come back
	// within this time.
	ackWait := h.opt.Settings.AckWait
	cfg := jetstream.ConsumerConfig{
		Durable:        ConsumerName(d.name),
		Description:    "Samhub destination " + d.name,
		FilterSubjects: []string{broker.SubjLetters + ".in.>", broker.SubjLetters + ".replay." + d.name + ".>"},
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        ackWait,
		MaxAckPending:  d.inFlight,
		MaxDeliver:     -1, // the hub parks by itself; JetStream's limit would drop silently
		DeliverPolicy:  jetstream.DeliverNewPolicy,
		Replicas:       h.opt.Replicas,
	}
	existing, err := h.js.Consumer(ctx, broker.StreamLetters, cfg.Durable)
	if err == nil {
		info := existing.CachedInfo()
		cur := info.Config
		if !(slices.Equal(cur.FilterSubjects, cfg.FilterSubjects) && cur.FilterSubject == "" && cur.AckWait == cfg.AckWait &&
			cur.MaxAckPending == cfg.MaxAckPending && cur.MaxDeliver == cfg.MaxDeliver && cur.Description == cfg.Description) {
			// Only a change is sent: on a cluster an update is a proposal of
			// its own, which a replica starting beside this one can delay.
			cur.FilterSubjects, cur.AckWait, cur.MaxAckPending, cur.MaxDeliver, cur.Description = cfg.FilterSubjects, cfg.AckWait, cfg.MaxAckPending, cfg.MaxDeliver, cfg.Description
			cur.FilterSubject = ""
			c, err := h.js.UpdateConsumer(ctx, broker.StreamLetters, cur)
			if err != nil {
				return err
			}
			info = c.CachedInfo()
		}
		h.notePosition(ctx, d.name, info, true)
		return nil
	}
	if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return err
	}
	pos, known, err := h.positions.get(ctx, d.name)
	if err != nil {
		return fmt.Errorf("consumer for destination %s: its recorded place in the letter stream could not be read: %w", d.name, err)
	}
	if known {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, pos.Seq+1
	}
	c, err := h.js.CreateConsumer(ctx, broker.StreamLetters, cfg)
	if err != nil {
		return fmt.Errorf("consumer for destination %s: %w", d.name, err)
	}
	if known {
		h.log.Warn("destination's consumer was missing; made again just after its recorded place, so letters it had not handled are delivered (those handled since the record come again and are found delivered)",
			"destination", d.name, "consumer", cfg.Durable, "from_seq", cfg.OptStartSeq, "recorded_at", pos.At)
	}
	h.notePosition(ctx, d.name, c.CachedInfo(), true)
	return nil
}

// errStopping makes the router nack a letter the hub is shutting down on:
// it is released to JetStream, never parked.
var errStopping = errors.New("hub stopping; letter released for redelivery")

// handler delivers letters from the letter stream to one destination.
//
// Retrying happens here rather than in Watermill's Retry middleware because
// that middleware cannot wait for a destination's Retry-After, and returns the
// context error on shutdown, which a poison-queue middleware would then park.
// The backoff schedule itself comes from cenkalti/backoff (Watermill's own).
//
// Letters of one thread are handed to it one at a time in stream order
// (the subscriber's order key), so what it does for a thread — hold it
// behind a parked letter, release it — never races another letter of it.
func (h *Hub) handler(d *destination) message.NoPublishHandlerFunc {
	return func(msg *message.Message) error {
		ctx := msg.Context()
		info, _ := jspubsub.Delivery(msg)
		replayFor := msg.Metadata.Get(HdrReplay)
		if replayFor != "" && replayFor != d.name {
			return nil
		}
		if msg.Metadata.Get(HdrRelease) != "" {
			return h.releaseThread(ctx, d, msg.Metadata.Get(HdrThread), "")
		}
		l, err := h.decoded.get(info.StreamSeq, msg.Payload) // shared: read-only
		if err != nil {
			// Cannot happen for letters the hub stored; park the bytes so
			// nothing is lost and the coordinator sees it.
			f := retryq.Failure{Class: "permanent", Code: "unreadable", Reason: "the stored letter could not be decoded"}
			return h.park(ctx, d, &letter.Letter{ID: "unreadable-" + strconv.FormatUint(info.StreamSeq, 10), Kind: letter.KindNote}, msg.Payload, position{seq: info.StreamSeq}, 0, f, f)
		}
		at := position{seq: info.StreamSeq, orig: info.StreamSeq}
		if o, err := strconv.ParseUint(msg.Metadata.Get(HdrOrigSeq), 10, 64); err == nil && o > 0 {
			at.orig = o
		}
		res, err := h.handle(ctx, d, l, msg.Payload, at, replayFor != "", true)
		if err != nil {
			return err
		}
		if err := h.afterHandled(ctx, d, l, res); err != nil {
			return err
		}
		if d.name != h.opt.Notify.Destination || replayFor != "" {
			return nil
		}
		notice := h.noticeFor(l)
		if notice == nil {
			return nil
		}
		// The notice is derived here rather than stored as a letter of its
		// own: it parks (and is replayed) as itself, under its own entry.
		raw, err := letter.Marshal(notice)
		if err != nil {
			return err
		}
		at.cause = noticeCause | at.seq
		if res, err = h.handle(ctx, d, notice, raw, at, false, true); err != nil {
			return err
		}
		return h.afterHandled(ctx, d, notice, res)
	}
}

// noticeCause marks the retry-queue entry of a notice derived from the
// letter at a sequence, so it never shares an entry with that letter
// parked at the same destination (causes are otherwise parked-stream
// sequences, far below this bit).
const noticeCause = 1 << 63

// afterHandled releases the letters held behind l at d once l is through.
func (h *Hub) afterHandled(ctx context.Context, d *destination, l *letter.Letter, res outcome) error {
	if res != outDelivered {
		return nil
	}
	if hd, held := h.holds.get(d.name, threadToken(l)); held && hd.LetterID == l.ID {
		// The letter the thread waited for is through: the letters held
		// behind it follow, in order, before any later one.
		return h.releaseThread(ctx, d, threadToken(l), l.ID)
	}
	return nil
}

// position locates a letter on the letter stream: the message being handled
// (seq) and where the letter was first stored (orig; a replay is stored
// anew). cause is what makes a second park of it distinct (retryq.Entry.Cause).
type position struct {
	seq, orig, cause uint64
}

// CodeNotRouted parks a replayed letter that its destination no longer
// takes (the routes, the letter's receivers or the directory changed).
const CodeNotRouted = "not_routed"

// outcome is what handling a letter at a destination came to.
type outcome int

const (
	outSkipped outcome = iota
	outDelivered
	outParked
)

// handle decides, addresses and delivers one letter at one destination.
// A letter that goes there waits, parked as thread_held, while an earlier
// letter of its thread is parked there (unless checkHold is false: the
// letters being released). A nil error with outParked means the letter is
// safely in the retry queue; an error means it was not handled and comes
// back (NATS trouble, shutdown).
func (h *Hub) handle(ctx context.Context, d *destination, l *letter.Letter, raw []byte, at position, replay, checkHold bool) (outcome, error) {
	// The consent register is read only where the decision depends on it
	// (and for a replay, which is decided again whatever the rules say).
	consent := l.Consent
	if replay || h.router.NeedsConsent(l, d.name) {
		var err error
		if consent, err = h.consents.effective(ctx, l); err != nil {
			return 0, err // NATS trouble: nack and try again
		}
	}
	now := h.now()
	var dec route.Decision
	if replay {
		dec = h.router.DecideReplay(l, d.name, consent, now)
	} else {
		dec = h.router.Decide(l, d.name, consent, now)
	}
	if dec.Verdict == route.Skip {
		if replay {
			// A letter leaves the retry queue delivered or discarded by
			// the coordinator, never by a rule change: it parks again,
			// saying why, for the coordinator to discard or route.
			f := retryq.Failure{At: now.UTC(), Class: "permanent", Code: CodeNotRouted,
				Reason: fmt.Sprintf("replayed, but %s no longer takes it (%s); discard it with a reason if that is right, or change the routes and replay", d.name, dec.Reason)}
			return outParked, h.park(ctx, d, l, raw, at, 0, f, f)
		}
		return outSkipped, nil
	}
	if checkHold {
		if hd, held := h.holds.get(d.name, threadToken(l)); held && hd.LetterID != l.ID {
			f := retryq.Failure{At: now.UTC(), Class: "permanent", Code: CodeThreadHeld,
				Reason: fmt.Sprintf("waits for an earlier letter of its thread (%s), parked at %s; it follows once that letter is delivered or discarded, or the thread is released", hd.LetterID, d.name)}
			return outParked, h.park(ctx, d, l, raw, at, 0, f, f)
		}
	}
	if dec.Verdict == route.Deny {
		f := retryq.Failure{At: now.UTC(), Class: "permanent", Code: dec.Code, Reason: dec.Reason}
		if l.Kind == letter.KindReferral {
			h.m.referralsParked.Inc()
		}
		return outParked, h.park(ctx, d, l, raw, at, 0, f, f)
	}
	to, err := h.address(ctx, d, l)
	if err != nil {
		return 0, err
	}
	if to == nil && route.SectorRoles(d.cfg.Sector) != nil {
		u := route.Unresolved(d.name, d.cfg.Sector)
		f := retryq.Failure{At: now.UTC(), Class: "permanent", Code: u.Code, Reason: u.Reason}
		return outParked, h.park(ctx, d, l, raw, at, 0, f, f)
	}
	// The sink gets its own copy of the (shared) letter, addressed, with
	// the consent the decision was made on: sinks that check consent
	// themselves (the EPJ) would otherwise refuse a letter whose consent
	// the coordinator recorded afterwards.
	c := *l
	c.Consent = consent
	c.To = to
	out := &c
	if dec.Anonymise {
		out = route.Anonymise(out, h.secret)
	}
	return h.deliver(ctx, d, l, out, raw, at, dec)
}

// address resolves who the letter goes to at d (nil for the municipality's
// own and internal destinations, and when nothing resolves). The letter it
// answers is read only when the letter names nobody of the sector.
func (h *Hub) address(ctx context.Context, d *destination, l *letter.Letter) ([]letter.Party, error) {
	var thread *letter.Party
	if h.router.NeedsThread(l, d.name) {
		ref, _, err := h.StoredLetter(ctx, l.InReplyTo) // the sender only: no blobs read
		switch {
		case err == nil && otherPatient(ref.Patient, l.Patient):
			// A letter about another child (a wrong referral linked in the
			// case system) is no thread of this one: its GP must not get
			// this child's letter. Addressed as if it answered nothing.
		case err == nil:
			thread = &ref.Sender
		case !errors.Is(err, ErrUnknownLetter):
			return nil, err
		}
	}
	to, _, ok := h.router.Address(l, d.name, thread)
	if !ok {
		return nil, nil
	}
	return to, nil
}

// otherPatient reports whether a and b are known to be different children:
// both have a CPR number (or, lacking one, both a replacement id) and they
// differ. A CPR against a replacement id cannot be told apart.
func otherPatient(a, b *letter.Patient) bool {
	if a == nil || b == nil {
		return false
	}
	norm := func(s string) string { return strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(s), "-", "")) }
	if a.CPR != "" && b.CPR != "" {
		return norm(a.CPR) != norm(b.CPR)
	}
	if a.CPR == "" && b.CPR == "" && a.ReplacementID != "" && b.ReplacementID != "" {
		return norm(a.ReplacementID) != norm(b.ReplacementID)
	}
	return false
}

func (h *Hub) deliver(ctx context.Context, d *destination, l, out *letter.Letter, raw []byte, at position, dec route.Decision) (outcome, error) {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval, bo.MaxInterval, bo.Multiplier, bo.RandomizationFactor = d.backoffMin, d.backoffMax, 2, 0.3
	var first retryq.Failure
	var reached []letter.Party // addressees a partial delivery reached
	// hubFailed counts the attempts that failed because the hub's own
	// state store did not answer (adapters.StateUnavailable over an
	// unanswered call): they do not count toward max_attempts, as the
	// destination did nothing wrong. A store that stays away keeps the
	// letter retrying at backoff_max, unparked, while /readyz and the
	// alerts say what is wrong. A store that answers with an error (a
	// value too large) counts as any failure: trying again changes nothing.
	hubFailed := 0
	for attempt := 1; ; attempt++ {
		res, err := h.call(ctx, d, out)
		if err == nil && failpoint.Active(failpoint.DeliverTwice) {
			twin := *out // a new identity: nothing idempotent can recognise it
			twin.ID += "~twin"
			_, _ = h.call(ctx, d, &twin)
		}
		if err == nil {
			failpoint.Kill(failpoint.SinkDone)
			result := "delivered"
			if res.Existing {
				result = "existing"
			}
			h.m.deliveries.WithLabelValues(d.name, result).Inc()
			h.m.latency.WithLabelValues(d.name).Observe(h.now().Sub(l.Received).Seconds())
			h.recordStep(ctx, journey.Event{LetterID: l.ID, Step: journey.Delivered, Destination: d.name, RemoteID: res.RemoteID, Route: dec.Route, Attempt: attempt, Code: result, To: addressees(out.To)})
			h.log.Info("letter delivered", slog.Any("letter", l), "destination", d.name, "remote_id", res.RemoteID, "attempt", attempt, "existing", res.Existing)
			h.report(ctx, l, d, out.To, adapters.StateSent, result, "delivered to "+d.name)
			return outDelivered, nil
		}
		var part *adapters.Partial
		if errors.As(err, &part) {
			// Some addressees have it: tell the source now, whatever
			// becomes of the others.
			var newly []letter.Party
			for _, p := range part.Delivered {
				if !slices.ContainsFunc(reached, p.SamePerson) {
					newly = append(newly, p)
				}
			}
			if len(newly) > 0 {
				reached = append(reached, newly...)
				h.recordStep(ctx, journey.Event{LetterID: l.ID, Step: journey.PartlyDelivered, Destination: d.name, Route: dec.Route, Attempt: attempt, Code: "delivered", To: someOf(newly, out.To)})
				h.reportSome(ctx, l, d, out.To, h.among(newly, true), adapters.StateSent, "delivered", "delivered to "+d.name)
			}
		}
		if h.stopping.Err() != nil || ctx.Err() != nil {
			return 0, errStopping
		}
		class, reason, code := adapters.Classify(err)
		var tl *adapters.TooLarge
		if errors.As(err, &tl) {
			// The sink's words name no destination; the coordinator's list
			// should say which one refused and its limit.
			class, reason, code = adapters.ClassPermanent, tl.Reason(d.name), "too_large"
		}
		h.m.failures.WithLabelValues(d.name, class.String()).Inc()
		f := retryq.Failure{At: h.now().UTC(), Class: class.String(), Code: code, Reason: reason}
		if attempt == 1 {
			first = f
		}
		h.log.Warn("delivery failed", slog.Any("letter", l), "destination", d.name, "attempt", attempt, "class", class.String(), "code", code, "err", redactErr(err))
		if class == adapters.ClassRetryable && code == adapters.CodeStateUnavailable && broker.IsUnavailable(err) {
			hubFailed++
		}
		if class == adapters.ClassPermanent || attempt-hubFailed >= d.maxAttempts {
			return outParked, h.park(ctx, d, l, raw, at, attempt, first, f, reached...)
		}
		wait := bo.NextBackOff()
		if ra := adapters.RetryAfterOf(err); ra > wait {
			wait = min(ra, d.backoffMax*4)
		}
		h.m.retries.WithLabelValues(d.name).Inc()
		// Every failed attempt is a step of the journey: the coordinator
		// sees each one (failing letters only; a delivered letter costs none).
		h.recordStep(ctx, journey.Event{LetterID: l.ID, Step: journey.Retried, Destination: d.name, Attempt: attempt, Code: code, Reason: reason})
		if attempt == 1 {
			h.reportSome(ctx, l, d, out.To, h.among(reached, false), adapters.StateWaiting, code, "delivery to "+d.name+" failed and is being retried: "+reason)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-h.stopping.Done():
			t.Stop()
			return 0, errStopping
		case <-ctx.Done():
			t.Stop()
			return 0, errStopping
		}
	}
}

// call makes one sink call. Parts kept in the blob store open from it as
// the sink sends (blobs.Store.Bind): nothing is read before the sink asks,
// a letter waiting in backoff holds no large bytes, and each attempt opens
// the parts again. A part whose read fails turns the sink's error into
// the read's: a blob that is gone or damaged is permanent (blob_missing,
// the letter parks), one that cannot be read now is retried like a sink
// error. The sink sent nothing half (adapters.Sink's contract).
func (h *Hub) call(ctx context.Context, d *destination, out *letter.Letter) (adapters.Delivery, error) {
	var reads partReads
	send := h.blobs.Bind(out, reads.watch)
	callCtx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	start := time.Now()
	res, err := d.sink.Deliver(callCtx, send)
	h.m.duration.WithLabelValues(d.name).Observe(time.Since(start).Seconds())
	if rerr := reads.failed(); rerr != nil && !errors.Is(rerr, context.Canceled) && !errors.Is(rerr, context.DeadlineExceeded) {
		if err == nil {
			// The sink reports success although a read of a part failed:
			// it must have opened the part again and sent it whole.
			h.log.Warn("a letter part failed to read during a delivery that succeeded", "destination", d.name, "err", redactErr(rerr))
		} else if ctx.Err() == nil {
			return res, partFailure(rerr)
		}
	}
	return res, err
}

// partFailure is a failed read of a stored part as a sink error of the
// class the blob store gives it.
func partFailure(err error) error {
	e := blobs.Classify(err)
	if e.Permanent {
		return adapters.Permanent(e.Code, e.Reason, e.Err)
	}
	return adapters.Retryable(e.Code, e.Reason, e.Err)
}

// partReads remembers the first failed read of a letter's stored parts
// during one sink call.
type partReads struct {
	mu  sync.Mutex
	err error
}

func (p *partReads) watch(what string, open letter.Opener) letter.Opener {
	return func(ctx context.Context) (io.ReadCloser, error) {
		r, err := open(ctx)
		if err != nil {
			p.fail(fmt.Errorf("%s: %w", what, err))
			return nil, err
		}
		return &watchedReader{ReadCloser: r, p: p, what: what}, nil
	}
}

func (p *partReads) fail(err error) {
	p.mu.Lock()
	if p.err == nil {
		p.err = err
	}
	p.mu.Unlock()
}

func (p *partReads) failed() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

type watchedReader struct {
	io.ReadCloser
	p    *partReads
	what string
}

func (w *watchedReader) Read(b []byte) (int, error) {
	n, err := w.ReadCloser.Read(b)
	if err != nil && !errors.Is(err, io.EOF) {
		w.p.fail(fmt.Errorf("%s: %w", w.what, err))
	}
	return n, err
}

// park puts l in the retry queue for d and tells its source. reached are
// the addressees a partial delivery reached: they are not reported failed
// or waiting, now or when the entry is discarded.
func (h *Hub) park(ctx context.Context, d *destination, l *letter.Letter, raw []byte, at position, attempts int, first, last retryq.Failure, reached ...letter.Party) error {
	if h.stopping.Err() != nil {
		return errStopping
	}
	if first.Code == "" {
		first = last
	}
	e := retryq.Entry{LetterID: l.ID, Destination: d.name, Kind: string(l.Kind), Source: l.Source, Thread: threadToken(l), Attempts: attempts,
		FirstError: first, LastError: last, LetterSeq: at.seq, OrigSeq: at.orig, Cause: at.cause}
	if id := l.Patient.Identifier(); id != "" {
		e.Patient = retryq.PatientToken(id)
	}
	// raw is the letter as stored, so its refs are l's: the blob collector
	// keeps what parked entries name.
	e.Blobs = blobs.Refs(l)
	e.DeliveredTo = h.deliveredIndexes(l, d, reached)
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := h.queue.Park(pctx, e, raw); err != nil {
		h.log.Error("could not park letter; it stays unacknowledged", slog.Any("letter", l), "destination", d.name, "err", err)
		return err
	}
	held := last.Code == CodeThreadHeld
	if !held && at.seq != 0 {
		// The first parked letter of a thread holds back the later ones
		// at this destination, so they cannot overtake it.
		if err := h.holds.set(pctx, d.name, e.Thread, l.ID, false, h.now()); err != nil {
			h.log.Error("could not hold the thread behind a parked letter; later letters of the thread may overtake it", slog.Any("letter", l), "destination", d.name, "err", err)
			return err
		}
	}
	h.m.parked.WithLabelValues(d.name).Inc()
	step := journey.Parked
	switch {
	case held:
		step = journey.Held
	case isConsentCode(last.Code):
		step = journey.Denied
	}
	h.recordStep(ctx, journey.Event{LetterID: l.ID, Step: step, Destination: d.name, Attempt: attempts, Code: last.Code, Reason: last.Reason})
	h.log.Warn("letter parked", slog.Any("letter", l), "destination", d.name, "code", last.Code)
	state := adapters.StateFailed
	if held || isConsentCode(last.Code) {
		state = adapters.StateWaiting
	}
	h.reportSome(ctx, l, d, nil, h.among(reached, false), state, last.Code, last.Reason)
	if !held { // the letter it waits for told the coordinator already
		h.notifyParked(ctx, d, l, last)
	}
	return nil
}

func isConsentCode(code string) bool {
	switch code {
	case "consent_missing", "consent_scope", "consent_withdrawn", "young_person_refused":
		return true
	}
	return false
}

// addressees names a delivery's addressees for the journey: organisations
// by GLN or SOR, parents only as a count (their names are personal data).
// someOf names the addressees of a partial delivery by their place among
// all of the delivery's (parents 1 of 2): which custody holder has the
// letter, without a name or CPR number.
func someOf(some, all []letter.Party) string {
	var out []string
	for _, p := range some {
		if i := slices.IndexFunc(all, p.SamePerson); i >= 0 {
			role := p.Role
			if role == "" {
				role = "addressee"
			}
			out = append(out, fmt.Sprintf("%s %d of %d", role, i+1, len(all)))
		}
	}
	return strings.Join(out, ", ")
}

func addressees(to []letter.Party) string {
	var ids []string
	parents := 0
	for _, p := range to {
		switch {
		case p.Role == letter.RoleParents:
			parents++
		case p.GLN != "":
			ids = append(ids, "GLN "+p.GLN)
		case p.SOR != "":
			ids = append(ids, "SOR "+p.SOR)
		case p.Email != "":
			ids = append(ids, "email")
		}
	}
	if parents > 0 {
		ids = append(ids, fmt.Sprintf("parents (%d)", parents))
	}
	return strings.Join(ids, ", ")
}

// redactErr keeps error text out of logs when it might echo letter content:
// classified errors log their reason and code; others their type only.
func redactErr(err error) string {
	var e *adapters.Error
	if errors.As(err, &e) {
		if e.Err != nil {
			return e.Reason + ": " + scrubText(e.Err.Error())
		}
		return e.Reason
	}
	return scrubText(err.Error())
}
