package pipeline

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/cenkalti/backoff/v5"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/internal/config"
	"github.com/samhub/samhub/pipeline/blobs"
	"github.com/samhub/samhub/pipeline/journey"
	"github.com/samhub/samhub/pipeline/jspubsub"
	"github.com/samhub/samhub/pipeline/letter"
	"github.com/samhub/samhub/pipeline/retryq"
	"github.com/samhub/samhub/pipeline/route"
)

// destination is one sink with its policy.
type destination struct {
	name        string
	sink        adapters.Sink
	cfg         config.Destination
	maxAttempts int
	backoffMin  time.Duration
	backoffMax  time.Duration
	timeout     time.Duration
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
func (h *Hub) handler(d *destination) message.NoPublishHandlerFunc {
	return func(msg *message.Message) error {
		ctx := msg.Context()
		info, _ := jspubsub.Delivery(msg)
		l, err := h.decoded.get(info.StreamSeq, msg.Payload) // shared: read-only
		if err != nil {
			// Cannot happen for letters the hub stored; park the bytes so
			// nothing is lost and the coordinator sees it.
			return h.park(ctx, d, &letter.Letter{ID: "unreadable-" + strconv.FormatUint(info.StreamSeq, 10), Kind: letter.KindNote}, msg.Payload, info.StreamSeq, 0,
				retryq.Failure{Class: "permanent", Code: "unreadable", Reason: "the stored letter could not be decoded"}, retryq.Failure{})
		}
		replayFor := msg.Metadata.Get(HdrReplay)
		if replayFor != "" && replayFor != d.name {
			return nil
		}
		consent, err := h.effectiveConsent(ctx, l)
		if err != nil {
			return err // NATS trouble: nack and try again
		}
		now := h.now()
		var dec route.Decision
		if replayFor != "" {
			dec = h.router.DecideReplay(l, d.name, consent, now)
		} else {
			dec = h.router.Decide(l, d.name, consent, now)
		}
		switch dec.Verdict {
		case route.Skip:
			return nil
		case route.Deny:
			f := retryq.Failure{At: now.UTC(), Class: "permanent", Code: dec.Code, Reason: dec.Reason}
			if l.Kind == letter.KindReferral {
				h.m.referralsParked.Inc()
			}
			return h.park(ctx, d, l, msg.Payload, info.StreamSeq, 0, f, f)
		}
		// The sink gets its own copy of the (shared) letter, with the
		// consent the decision was made on: sinks that check consent
		// themselves (the EPJ) would otherwise refuse a letter whose consent
		// the coordinator recorded afterwards.
		c := *l
		c.Consent = consent
		out := &c
		if dec.Anonymise {
			out = route.Anonymise(out, h.secret)
		}
		return h.deliver(ctx, d, l, out, msg.Payload, info.StreamSeq, dec)
	}
}

func (h *Hub) deliver(ctx context.Context, d *destination, l, out *letter.Letter, raw []byte, seq uint64, dec route.Decision) error {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval, bo.MaxInterval, bo.Multiplier, bo.RandomizationFactor = d.backoffMin, d.backoffMax, 2, 0.3
	var first retryq.Failure
	for attempt := 1; ; attempt++ {
		res, err := h.call(ctx, d, out)
		if err == nil {
			result := "delivered"
			if res.Existing {
				result = "existing"
			}
			h.m.deliveries.WithLabelValues(d.name, result).Inc()
			h.m.latency.WithLabelValues(d.name).Observe(h.now().Sub(l.Received).Seconds())
			h.recordStep(ctx, journey.Event{LetterID: l.ID, Step: journey.Delivered, Destination: d.name, RemoteID: res.RemoteID, Route: dec.Route, Attempt: attempt, Code: result})
			h.log.Info("letter delivered", slog.Any("letter", l), "destination", d.name, "remote_id", res.RemoteID, "attempt", attempt, "existing", res.Existing)
			return nil
		}
		if h.stopping.Err() != nil || ctx.Err() != nil {
			return errStopping
		}
		class, reason, code := adapters.Classify(err)
		h.m.failures.WithLabelValues(d.name, class.String()).Inc()
		f := retryq.Failure{At: h.now().UTC(), Class: class.String(), Code: code, Reason: reason}
		if attempt == 1 {
			first = f
		}
		h.log.Warn("delivery failed", slog.Any("letter", l), "destination", d.name, "attempt", attempt, "class", class.String(), "code", code, "err", redactErr(err))
		if class == adapters.ClassPermanent || attempt >= d.maxAttempts {
			return h.park(ctx, d, l, raw, seq, attempt, first, f)
		}
		wait := bo.NextBackOff()
		if ra := adapters.RetryAfterOf(err); ra > wait {
			wait = min(ra, d.backoffMax*4)
		}
		h.m.retries.WithLabelValues(d.name).Inc()
		if attempt == 1 {
			h.recordStep(ctx, journey.Event{LetterID: l.ID, Step: journey.Retried, Destination: d.name, Attempt: attempt, Code: code, Reason: reason})
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-h.stopping.Done():
			t.Stop()
			return errStopping
		case <-ctx.Done():
			t.Stop()
			return errStopping
		}
	}
}

// call makes one sink call. Parts kept in the blob store are read into a
// copy for this call only: the shared letter stays small, and a letter
// waiting in backoff holds no large bytes. A blob that is gone fails
// permanently (blob_missing, the letter parks); one that cannot be read
// now is retried like a sink error.
func (h *Hub) call(ctx context.Context, d *destination, out *letter.Letter) (adapters.Delivery, error) {
	rctx, rcancel := context.WithTimeout(ctx, d.timeout)
	send, err := h.blobs.Resolve(rctx, out)
	rcancel()
	if err != nil {
		return adapters.Delivery{}, err
	}
	callCtx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	start := time.Now()
	res, err := d.sink.Deliver(callCtx, send)
	h.m.duration.WithLabelValues(d.name).Observe(time.Since(start).Seconds())
	return res, err
}

func (h *Hub) park(ctx context.Context, d *destination, l *letter.Letter, raw []byte, seq uint64, attempts int, first, last retryq.Failure) error {
	if h.stopping.Err() != nil {
		return errStopping
	}
	if first.Code == "" {
		first = last
	}
	e := retryq.Entry{LetterID: l.ID, Destination: d.name, Kind: string(l.Kind), Source: l.Source, Thread: threadToken(l), Attempts: attempts, FirstError: first, LastError: last, LetterSeq: seq}
	if id := l.Patient.Identifier(); id != "" {
		e.Patient = retryq.PatientToken(id)
	}
	// raw is the letter as stored, so its refs are l's: the blob collector
	// keeps what parked entries name.
	e.Blobs = blobs.Refs(l)
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := h.queue.Park(pctx, e, raw); err != nil {
		h.log.Error("could not park letter; it stays unacknowledged", slog.Any("letter", l), "destination", d.name, "err", err)
		return err
	}
	h.m.parked.WithLabelValues(d.name).Inc()
	step := journey.Parked
	if last.Code == "consent_missing" || last.Code == "consent_scope" || last.Code == "consent_withdrawn" || last.Code == "young_person_refused" {
		step = journey.Denied
	}
	h.recordStep(ctx, journey.Event{LetterID: l.ID, Step: step, Destination: d.name, Attempt: attempts, Code: last.Code, Reason: last.Reason})
	h.log.Warn("letter parked", slog.Any("letter", l), "destination", d.name, "code", last.Code)
	h.notifyParked(ctx, d, l, last)
	return nil
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
