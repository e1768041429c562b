package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/internal/failpoint"
	"github.com/samhub/samhub/pipeline/blobs"
	"github.com/samhub/samhub/pipeline/broker"
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
	// HdrOrigSeq is where a replayed letter was first stored: held letters
	// of a thread are released in that order.
	HdrOrigSeq = "Samhub-Orig-Seq"
	// HdrRelease marks a message that releases a destination's held thread
	// (HdrThread) instead of carrying a letter.
	HdrRelease = "Samhub-Release"
)

// ingest is the adapters.Publisher a source gets. Publish returns nil only
// once JetStream has stored the letter (fsynced on a SyncAlways server).
type ingest struct {
	h      *Hub
	source string
}

var (
	_ adapters.Publisher     = (*ingest)(nil)
	_ adapters.InputReporter = (*ingest)(nil)
)

// Rejected counts input the source refused before storage (a MedCom file
// moved to error/).
func (p *ingest) Rejected(code string) { p.h.m.rejected.WithLabelValues(p.source, code).Inc() }

// Duplicate counts a copy the source recognised and did not publish (MedCom
// answers a resent letter from its own duplicate memory).
func (p *ingest) Duplicate() { p.h.m.duplicates.WithLabelValues(p.source).Inc() }

func (p *ingest) Publish(ctx context.Context, l *letter.Letter) error {
	h := p.h
	l.Source = p.source
	if l.Received.IsZero() {
		l.Received = h.now().UTC()
	}
	if l.Original.SHA256 == "" && l.Original.Inline() {
		l.Original.SHA256 = letter.Digest(l.Original.Data)
	}
	if err := l.Validate(); err != nil {
		h.m.rejected.WithLabelValues(p.source, "invalid_letter").Inc()
		return fmt.Errorf("source %s built an invalid letter: %w", p.source, err)
	}
	subj := broker.InSubject(p.source, l.ID)
	// A letter stored before is not routed again, however long ago: the
	// publish below expects its per-letter subject to be empty, so the
	// stream refuses a second copy for its whole retention, beyond the
	// broker's de-duplication window, in the same round trip. Only a letter
	// whose parts would be written to the blob store is looked up first, so
	// a resent large letter is not written again to learn it is a copy.
	if upper := partsUpperBound(l); upper > h.inlineMax || streamed(l) {
		if seq, dup, err := h.storedAt(ctx, subj); err != nil {
			h.m.publishFailures.WithLabelValues(p.source).Inc()
			return fmt.Errorf("check for duplicate: %w", err)
		} else if dup {
			p.duplicate(ctx, l, seq)
			return nil
		}
	}
	// A letter too large for one message keeps its large parts in the blob
	// store; the stored letter names them. The size is estimated without
	// encoding, so a large letter is encoded once, without its parts.
	// Parts a source gave as readers (a file it has not read whole) go to
	// the blob store straight from them, or, in a letter small enough to
	// store inline, are read in.
	stored := l
	var size int
	var err error
	if upper := partsUpperBound(l); upper > h.inlineMax {
		if size, err = blobs.InlineSize(l); err != nil {
			return err
		}
	}
	switch {
	case size > h.inlineMax:
		if stored, err = h.blobs.Externalise(ctx, l); err != nil {
			h.m.publishFailures.WithLabelValues(p.source).Inc()
			return fmt.Errorf("store letter parts: %w", err)
		}
	case streamed(l):
		if stored, err = blobs.Load(ctx, l); err != nil {
			h.m.publishFailures.WithLabelValues(p.source).Inc()
			return fmt.Errorf("read letter parts: %w", err)
		}
	}
	data, err := letter.Marshal(stored)
	if err != nil {
		return err
	}
	if len(data) > h.msgMax {
		h.m.rejected.WithLabelValues(p.source, "letter_too_large").Inc()
		return tooLarge(len(data), h.msgMax, errors.New("letter exceeds streams.max_msg_size"))
	}
	msg := nats.NewMsg(subj)
	msg.Data = data
	msg.Header.Set(jetstream.MsgIDHeader, p.source+":"+broker.Token(l.ID))
	msg.Header.Set(HdrThread, broker.Token(l.Thread()))
	msg.Header.Set(HdrKind, string(l.Kind))
	msg.Header.Set(HdrSource, p.source)
	ack, err := h.js.PublishMsg(ctx, msg, jetstream.WithExpectStream(broker.StreamLetters), jetstream.WithExpectLastSequencePerSubject(0))
	if refusedAsStored(err) {
		seq, _, err := h.storedAt(ctx, subj)
		if err != nil {
			h.m.publishFailures.WithLabelValues(p.source).Inc()
			return fmt.Errorf("find the stored copy: %w", err)
		}
		p.duplicate(ctx, l, seq)
		return nil
	}
	h.writes.observe(err)
	if err != nil {
		if refusedAsTooLarge(err) {
			h.m.rejected.WithLabelValues(p.source, "letter_too_large").Inc()
			return tooLarge(len(data), h.msgMax, err)
		}
		h.m.publishFailures.WithLabelValues(p.source).Inc()
		return fmt.Errorf("store letter: %w", err)
	}
	failpoint.Kill(failpoint.LetterStored)
	if ack.Duplicate {
		p.duplicate(ctx, l, ack.Sequence)
		return nil
	}
	h.m.received.WithLabelValues(p.source).Inc()
	if l.Kind == letter.KindReferral {
		h.m.referrals.Inc()
	}
	h.afterStore(ctx, l)
	if l.Kind == letter.KindAcknowledgement && l.InReplyTo != "" {
		h.acknowledged(ctx, l, ack.Sequence)
	}
	h.log.Debug("letter stored", slog.Any("letter", l), "seq", ack.Sequence)
	return nil
}

// duplicate answers a letter stored before, at seq: it is not routed
// again, and what its first storing may not have finished is done again.
func (p *ingest) duplicate(ctx context.Context, l *letter.Letter, seq uint64) {
	p.h.m.duplicates.WithLabelValues(p.source).Inc()
	p.h.log.Info("duplicate letter not routed again", slog.Any("letter", l))
	p.h.afterDuplicate(ctx, l, seq)
}

// storedAt finds the letter stored on subj: its sequence, or false.
func (h *Hub) storedAt(ctx context.Context, subj string) (uint64, bool, error) {
	raw, err := h.letters.GetLastMsgForSubject(ctx, subj)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	return raw.Sequence, true, nil
}

// refusedAsStored recognises the stream refusing a letter because its
// subject holds one already (the expected last subject sequence, 0, did not
// hold: JSStreamWrongLastSequenceErrF; a replicated stream may answer
// with its constant form).
func refusedAsStored(err error) bool {
	var api *jetstream.APIError
	return errors.As(err, &api) && (api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// partsUpperBound bounds what a letter's original, attachments and text
// take in its JSON (base64 is 4/3; an escaped text byte at most 6), plus
// 64 KiB for the rest, so the common small letter is not encoded twice to
// learn that it fits. What it leaves out (metadata, parties) could not be
// stored apart anyway; an oversize letter is still caught after encoding.
func partsUpperBound(l *letter.Letter) int {
	n := l.Original.Len()
	for _, a := range l.Attachments {
		n += a.Len()
	}
	return int(n/3*4) + 4 + 6*(len(l.Text)+len(l.Subject)) + 64<<10
}

// streamed reports a part that a source gave as a reader.
func streamed(l *letter.Letter) bool {
	if l.Original.Streamed() {
		return true
	}
	for _, a := range l.Attachments {
		if a.Streamed() {
			return true
		}
	}
	return false
}

// Publisher returns the adapters.Publisher a source named source gets (for
// tools and tests that bring letters in without an adapter).
func (h *Hub) Publisher(source string) adapters.Publisher { return &ingest{h: h, source: source} }

// tooLarge is the permanent error for a letter that cannot be stored even
// with its large parts apart (its text or many small attachments are too
// big): trying again cannot help, so the source sets the input aside
// (MedCom: error/ and a negative acknowledgement) instead of retrying it
// for ever. The reason holds sizes only.
func tooLarge(size, limit int, err error) error {
	return adapters.Permanent("letter_too_large", fmt.Sprintf(
		"the letter is %.1f MB even with its original and large attachments stored apart; the hub stores at most %.1f MB per letter (streams.max_msg_size, and 32 MB in any case)",
		float64(size)/(1<<20), float64(min(limit, storeRecordMax))/(1<<20)), err)
}

// storeRecordMax is the largest record nats-server's file store accepts
// (rlBadThresh in server/filestore.go), whatever a stream's max_msg_size.
const storeRecordMax = 32 << 20

// refusedAsTooLarge recognises the broker's answers that no retry changes:
// the client's max_payload check, the stream's max_msg_size (10054) and the
// file store's record limit (10077 "message too large").
func refusedAsTooLarge(err error) bool {
	if errors.Is(err, nats.ErrMaxPayload) {
		return true
	}
	var api *jetstream.APIError
	if !errors.As(err, &api) {
		return false
	}
	switch api.ErrorCode {
	case jetstream.JSErrCodeStreamMessageExceedsMaximum:
		return true
	case 10077: // JSStreamStoreFailedF: any store failure; only its "too large" is final
		return strings.Contains(strings.ToLower(api.Description), "too large")
	}
	return false
}
