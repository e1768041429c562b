package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/pipeline/broker"
	"github.com/samhub/samhub/pipeline/journey"
	"github.com/samhub/samhub/pipeline/letter"
)

// Message headers on the letter stream. Values are tokens and names, never
// personal data.
const (
	HdrThread = "Samhub-Thread" // hash of the thread id: the ordering key
	HdrKind   = "Samhub-Kind"
	HdrSource = "Samhub-Source"
	HdrReplay = "Samhub-Replay" // destination a replayed letter is meant for
	HdrParked = "Samhub-Parked-Seq"
)

// ingest is the adapters.Publisher a source gets. Publish returns nil only
// once JetStream has stored the letter (fsynced on a SyncAlways server).
type ingest struct {
	h      *Hub
	source string
}

var _ adapters.Publisher = (*ingest)(nil)

func (p *ingest) Publish(ctx context.Context, l *letter.Letter) error {
	h := p.h
	l.Source = p.source
	if l.Received.IsZero() {
		l.Received = h.now().UTC()
	}
	if l.Original.SHA256 == "" && l.Original.Data != nil {
		l.Original.SHA256 = letter.Digest(l.Original.Data)
	}
	if err := l.Validate(); err != nil {
		h.m.rejected.WithLabelValues(p.source, "invalid_letter").Inc()
		return fmt.Errorf("source %s built an invalid letter: %w", p.source, err)
	}
	subj := broker.InSubject(p.source, l.ID)
	// A letter stored before is not routed again, however long ago: the
	// per-letter subject is looked up for the stream's whole retention,
	// beyond the broker's publish de-duplication window.
	if _, err := h.letters.GetLastMsgForSubject(ctx, subj); err == nil {
		h.m.duplicates.WithLabelValues(p.source).Inc()
		h.log.Info("duplicate letter not routed again", slog.Any("letter", l))
		return nil
	} else if !errors.Is(err, jetstream.ErrMsgNotFound) {
		h.m.publishFailures.WithLabelValues(p.source).Inc()
		return fmt.Errorf("check for duplicate: %w", err)
	}
	data, err := letter.Marshal(l)
	if err != nil {
		return err
	}
	msg := nats.NewMsg(subj)
	msg.Data = data
	msg.Header.Set(jetstream.MsgIDHeader, p.source+":"+broker.Token(l.ID))
	msg.Header.Set(HdrThread, broker.Token(l.Thread()))
	msg.Header.Set(HdrKind, string(l.Kind))
	msg.Header.Set(HdrSource, p.source)
	ack, err := h.js.PublishMsg(ctx, msg, jetstream.WithExpectStream(broker.StreamLetters))
	h.writes.observe(err)
	if err != nil {
		h.m.publishFailures.WithLabelValues(p.source).Inc()
		return fmt.Errorf("store letter: %w", err)
	}
	if ack.Duplicate {
		h.m.duplicates.WithLabelValues(p.source).Inc()
		return nil
	}
	h.m.received.WithLabelValues(p.source).Inc()
	if l.Kind == letter.KindReferral {
		h.m.referrals.Inc()
	}
	h.afterStore(ctx, l)
	if l.Kind == letter.KindAcknowledgement && l.InReplyTo != "" {
		// The peer's acknowledgement completes the journey of the letter it answers.
		h.recordStep(ctx, journey.Event{LetterID: l.InReplyTo, Step: journey.Acknowledged, Source: p.source, Code: l.Meta["ackCode"]})
	}
	h.log.Debug("letter stored", slog.Any("letter", l), "seq", ack.Sequence)
	return nil
}

func (h *Hub) recordStep(ctx context.Context, ev journey.Event) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := h.journey.Record(ctx, ev); err != nil {
		h.log.Warn("journey step not recorded", "step", ev.Step, "letter_id", ev.LetterID, "err", err)
	}
}
