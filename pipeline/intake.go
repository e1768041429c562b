package pipeline

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/internal/failpoint"
	"github.com/samhub/samhub/pipeline/blobs"
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
	// HdrOrigSeq is where a replayed letter was first stored: held letters
	// of a thread are released in that order.
	HdrOrigSeq = "Samhub-Orig-Seq"
	// HdrRelease marks a message that releases a destination's held thread
	// (HdrThread) instead of carrying a letter.
	HdrRelease = "Samhub-Release"
)

// HdrCheckpoint carries a source's checkpoint (adapters.Item), base64:
// what the source did for the letter (MedCom: the acknowledgement sent),
// repeated from the stored letter when the letter comes again.
const HdrCheckpoint = "Samhub-Checkpoint"

// ingest is the adapters.Publisher a source gets: the intake. A letter is
// stored on its own subject with the expectation that the subject is
// empty, so the stream itself refuses a second copy for its whole
// retention; a round of letters (PublishBatch) is committed as atomic
// batches, one fsync for many letters. Publish and PublishBatch return a
// letter as stored only once JetStream has (fsynced on a SyncAlways
// server).
type ingest struct {
	h      *Hub
	source string
}

var (
	_ adapters.Publisher      = (*ingest)(nil)
	_ adapters.BatchPublisher = (*ingest)(nil)
	_ adapters.InputReporter  = (*ingest)(nil)
)

// Rejected counts input the source refused before storage (a MedCom file
// moved to error/).
func (p *ingest) Rejected(code string) { p.h.m.rejected.WithLabelValues(p.source, code).Inc() }

// Duplicate counts a copy the source recognised and did not publish (MedCom
// answers a resent letter from its own duplicate memory).
func (p *ingest) Duplicate() { p.h.m.duplicates.WithLabelValues(p.source).Inc() }

func (p *ingest) Publish(ctx context.Context, l *letter.Letter) error {
	return p.PublishBatch(ctx, []adapters.Item{{Letter: l}})[0].Err
}

// Limits of one atomic batch: well inside the server's (1,000 messages)
// and small enough that a refused batch is quickly tried letter by letter.
// Fewer than batchMinMsgs letters are published one by one: nats-server
// stages each atomic batch of a file stream in a file store of its own
// (jetstream_batching.go newBatchStore: a directory and an 8 MB block per
// batch), which costs more than the fsyncs a small batch saves (with the
// bench's rounds of 2–5 letters at 200 letters/s as batches, half the runs
// went to seconds of latency; docs/performance.md); the journey recorder
// found the same threshold.
const (
	batchMinMsgs  = 32
	batchMaxMsgs  = 128
	batchMaxBytes = 4 << 20
)

// staged is one letter made ready for the letter stream.
type staged struct {
	i    int // its item
	l    *letter.Letter
	subj string
	msg  *nats.Msg
}

// PublishBatch stores a round of letters in order: consecutive letters
// stored inline go in atomic batches, a letter with parts in the blob
// store alone. A batch the stream refuses (a copy of a stored letter in
// it, a letter the stream will not take) is tried again letter by letter,
// which finds out which letter it was; the others are stored.
func (p *ingest) PublishBatch(ctx context.Context, items []adapters.Item) []adapters.Result {
	res := make([]adapters.Result, len(items))
	first := map[string]int{}     // letter id → its first item in this call
	blocked := map[string]error{} // thread → the retryable failure holding it back
	var run []staged
	var runBytes int
	flush := func() {
		p.commit(ctx, run, res, blocked)
		run, runBytes = run[:0], 0
	}
	for i, it := range items {
		l := it.Letter
		if j, ok := first[l.ID]; ok && l.ID != "" {
			flush() // item j's fate must be known
			res[i] = p.sameAs(ctx, l, items[j], res[j])
			continue
		}
		first[l.ID] = i
		if err := blocked[l.Thread()]; err != nil {
			res[i] = adapters.Result{Err: err}
			continue
		}
		st, r, alone, decided := p.stage(ctx, i, it)
		if decided {
			res[i] = r
			holdThread(blocked, l, r)
			continue
		}
		if alone || len(run) == batchMaxMsgs || runBytes+len(st.msg.Data) > batchMaxBytes {
			flush()
		}
		run = append(run, st)
		runBytes += len(st.msg.Data)
		if alone {
			flush()
		}
	}
	flush()
	return res
}

// sameAs answers a second item of one call for a letter: as the first
// item fared, a stored first copy making this one its duplicate.
func (p *ingest) sameAs(ctx context.Context, l *letter.Letter, first adapters.Item, r adapters.Result) adapters.Result {
	if r.Outcome == adapters.Failed {
		return r
	}
	p.h.m.duplicates.WithLabelValues(p.source).Inc()
	p.h.log.Info("duplicate letter not routed again", slog.Any("letter", l))
	if r.Outcome == adapters.Stored {
		return adapters.Result{Outcome: adapters.Duplicate, Checkpoint: first.Checkpoint}
	}
	return r
}

// stage validates a letter and builds its message. decided: the letter's
// result is known without publishing (invalid, too large, or a large
// letter found stored). alone: its parts went to the blob store, or were
// read from the source's readers; it is published by itself, as before.
func (p *ingest) stage(ctx context.Context, i int, it adapters.Item) (st staged, r adapters.Result, alone, decided bool) {
	h, l := p.h, it.Letter
	fail := func(err error) (staged, adapters.Result, bool, bool) {
		return staged{}, adapters.Result{Err: err}, false, true
	}
	l.Source = p.source
	if l.Received.IsZero() {
		l.Received = h.now().UTC()
	}
	if l.Original.SHA256 == "" && l.Original.Inline() {
		l.Original.SHA256 = letter.Digest(l.Original.Data)
	}
	if err := l.Validate(); err != nil {
		h.m.rejected.WithLabelValues(p.source, "invalid_letter").Inc()
		return fail(fmt.Errorf("source %s built an invalid letter: %w", p.source, err))
	}
	if len(it.Checkpoint) > adapters.MaxCheckpoint {
		return fail(adapters.Permanent("checkpoint_too_large", fmt.Sprintf("source %s gave a checkpoint of %d bytes; at most %d are stored with a letter", p.source, len(it.Checkpoint), adapters.MaxCheckpoint), nil))
	}
	subj := broker.InSubject(p.source, l.ID)
	// A letter stored before is not routed again, however long ago: the
	// publish expects its per-letter subject to be empty, so the stream
	// refuses a second copy for its whole retention, beyond the broker's
	// de-duplication window, in the same round trip. Only a letter whose
	// parts would be written to the blob store is looked up first, so a
	// resent large letter is not written again to learn it is a copy.
	upper := partsUpperBound(l)
	if upper > h.inlineMax || streamed(l) {
		alone = true
		if seq, cp, dup, err := h.storedAt(ctx, subj); err != nil {
			h.m.publishFailures.WithLabelValues(p.source).Inc()
			return fail(fmt.Errorf("check for duplicate: %w", err))
		} else if dup {
			p.duplicate(ctx, l, seq)
			return staged{}, adapters.Result{Outcome: adapters.Duplicate, Checkpoint: cp}, false, true
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
	if upper > h.inlineMax {
		if size, err = blobs.InlineSize(l); err != nil {
			return fail(err)
		}
	}
	switch {
	case size > h.inlineMax:
		if stored, err = h.blobs.Externalise(ctx, l); err != nil {
			h.m.publishFailures.WithLabelValues(p.source).Inc()
			return fail(fmt.Errorf("store letter parts: %w", err))
		}
	case streamed(l):
		if stored, err = blobs.Load(ctx, l); err != nil {
			h.m.publishFailures.WithLabelValues(p.source).Inc()
			return fail(fmt.Errorf("read letter parts: %w", err))
		}
	}
	data, err := letter.Marshal(stored)
	if err != nil {
		return fail(err)
	}
	if len(data) > h.msgMax {
		h.m.rejected.WithLabelValues(p.source, "letter_too_large").Inc()
		return fail(tooLarge(len(data), h.msgMax, errors.New("letter exceeds streams.max_msg_size")))
	}
	msg := nats.NewMsg(subj)
	msg.Data = data
	msg.Header.Set(jetstream.MsgIDHeader, p.source+":"+broker.Token(l.ID))
	msg.Header.Set(jetstream.ExpectedStreamHeader, broker.StreamLetters)
	msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, "0")
	msg.Header.Set(HdrThread, broker.Token(l.Thread()))
	msg.Header.Set(HdrKind, string(l.Kind))
	msg.Header.Set(HdrSource, p.source)
	if len(it.Checkpoint) > 0 {
		msg.Header.Set(HdrCheckpoint, base64.StdEncoding.EncodeToString(it.Checkpoint))
	}
	return staged{i: i, l: l, subj: subj, msg: msg}, adapters.Result{}, alone, false
}

// commit stores run: one atomic batch (one fsync), or, for a single
// letter or a batch the stream refused, one publish per letter.
//
// What nats-server (v2.15.2 and .3: stream.go processJetStreamAtomicBatchMsg,
// jetstream_batching.go checkMsgHeadersPreClusteredProposal) allows in an
// atomic batch, and so what a batch message carries: Nats-Msg-Id (a copy
// in the de-duplication window, or an id twice in the batch, refuses the
// whole batch, 10201), Nats-Expected-Stream, and
// Nats-Expected-Last-Subject-Sequence on every message (checked per
// subject: a stored letter refuses the batch with 10071, a subject twice
// in one batch with 10164). Nats-Expected-Last-Sequence is allowed on the
// first message only and Nats-Expected-Last-Msg-Id not at all; neither is
// used. A message over the stream's max_msg_size is refused while the
// batch is staged, and the batch's commit then fails as incomplete.
func (p *ingest) commit(ctx context.Context, run []staged, res []adapters.Result, blocked map[string]error) {
	if len(run) == 0 {
		return
	}
	if len(run) >= batchMinMsgs {
		msgs := make([]*nats.Msg, len(run))
		for k, st := range run {
			msgs[k] = st.msg
		}
		ack, err := journey.PublishAtomic(ctx, p.h.js.Conn(), p.h.js, msgs)
		if err == nil {
			p.h.writes.observe(nil)
			statLetters.Add(uint64(len(run)))
			statCommits.Add(1)
			for k, st := range run {
				res[st.i] = p.stored(ctx, st.l, ack.Sequence-uint64(len(run)-1-k))
			}
			return
		}
		// The stream refuses a whole batch for one letter in it: a copy of
		// a letter it holds (the expected subject sequence, or a message id
		// in the de-duplication window), one it will not take, a limit
		// reached. Letter by letter finds out which; a batch that failed
		// in transport and landed after all is found stored letter by letter.
		p.h.log.Debug("atomic batch refused; storing its letters one by one", "letters", len(run), "err", err)
		for _, m := range msgs {
			for _, hdr := range batchHeaders {
				m.Header.Del(hdr)
			}
		}
	}
	for _, st := range run {
		if err := blocked[st.l.Thread()]; err != nil {
			res[st.i] = adapters.Result{Err: err}
			continue
		}
		res[st.i] = p.single(ctx, st)
		holdThread(blocked, st.l, res[st.i])
	}
}

// holdThread holds back the later letters of l's thread when l failed
// for a reason that may pass: they must not be stored before it.
func holdThread(blocked map[string]error, l *letter.Letter, r adapters.Result) {
	if r.Outcome != adapters.Failed {
		return
	}
	if class, _, _ := adapters.Classify(r.Err); class != adapters.ClassPermanent {
		blocked[l.Thread()] = adapters.Retryable("held_behind_thread", "an earlier letter of its thread was not stored", r.Err)
	}
}

// batchHeaders are what journey.PublishAtomic adds to a batch's messages.
var batchHeaders = []string{"Nats-Batch-Id", "Nats-Batch-Sequence", "Nats-Batch-Commit"}

// single stores one staged letter with one synced publish.
func (p *ingest) single(ctx context.Context, st staged) adapters.Result {
	h := p.h
	ack, err := h.js.PublishMsg(ctx, st.msg)
	if refusedAsStored(err) {
		seq, cp, _, err := h.storedAt(ctx, st.subj)
		if err != nil {
			h.m.publishFailures.WithLabelValues(p.source).Inc()
			return adapters.Result{Err: fmt.Errorf("find the stored copy: %w", err)}
		}
		p.duplicate(ctx, st.l, seq)
		return adapters.Result{Outcome: adapters.Duplicate, Checkpoint: cp}
	}
	h.writes.observe(err)
	if err != nil {
		if refusedAsTooLarge(err) {
			h.m.rejected.WithLabelValues(p.source, "letter_too_large").Inc()
			return adapters.Result{Err: tooLarge(len(st.msg.Data), h.msgMax, err)}
		}
		h.m.publishFailures.WithLabelValues(p.source).Inc()
		return adapters.Result{Err: fmt.Errorf("store letter: %w", err)}
	}
	if ack.Duplicate {
		// The message id was in the de-duplication window: the copy stored
		// then holds the checkpoint.
		_, cp, _, err := h.storedAt(ctx, st.subj)
		if err != nil {
			return adapters.Result{Err: fmt.Errorf("find the stored copy: %w", err)}
		}
		p.duplicate(ctx, st.l, ack.Sequence)
		return adapters.Result{Outcome: adapters.Duplicate, Checkpoint: cp}
	}
	statLetters.Add(1)
	statCommits.Add(1)
	return p.stored(ctx, st.l, ack.Sequence)
}

var statLetters, statCommits atomic.Uint64

// IntakeWriteStats reports, for this process, how many letters the intake
// stored and in how many JetStream writes (an atomic batch counts once,
// one fsync on a SyncAlways server); the benchmark uses it.
func IntakeWriteStats() (letters, commits uint64) { return statLetters.Load(), statCommits.Load() }

// stored does what follows a letter's storing, at seq.
func (p *ingest) stored(ctx context.Context, l *letter.Letter, seq uint64) adapters.Result {
	h := p.h
	failpoint.Kill(failpoint.LetterStored)
	h.m.received.WithLabelValues(p.source).Inc()
	if l.Kind == letter.KindReferral {
		h.m.referrals.Inc()
	}
	h.afterStore(ctx, l)
	if l.Kind == letter.KindAcknowledgement && l.InReplyTo != "" {
		h.acknowledged(ctx, l, seq)
	}
	h.log.Debug("letter stored", slog.Any("letter", l), "seq", seq)
	return adapters.Result{Outcome: adapters.Stored}
}

// duplicate answers a letter stored before, at seq: it is not routed
// again, and what its first storing may not have finished is done again.
func (p *ingest) duplicate(ctx context.Context, l *letter.Letter, seq uint64) {
	p.h.m.duplicates.WithLabelValues(p.source).Inc()
	p.h.log.Info("duplicate letter not routed again", slog.Any("letter", l))
	p.h.afterDuplicate(ctx, l, seq)
}

// storedAt finds the letter stored on subj: its sequence and checkpoint,
// or false.
func (h *Hub) storedAt(ctx context.Context, subj string) (seq uint64, checkpoint []byte, found bool, err error) {
	raw, err := h.letters.GetLastMsgForSubject(ctx, subj)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil, false, nil
	}
	if err != nil {
		return 0, nil, false, err
	}
	if v := raw.Header.Get(HdrCheckpoint); v != "" {
		if checkpoint, err = base64.StdEncoding.DecodeString(v); err != nil {
			return 0, nil, false, fmt.Errorf("stored letter at %d: header %s: %w", raw.Sequence, HdrCheckpoint, err)
		}
	}
	return raw.Sequence, checkpoint, true, nil
}

// checkpoints is the adapters.StoredLetters the hub hands adapters.
type checkpoints struct{ h *Hub }

func (s checkpoints) Checkpoint(ctx context.Context, source, letterID string) ([]byte, error) {
	_, cp, found, err := s.h.storedAt(ctx, broker.InSubject(source, letterID))
	if err == nil && !found {
		err = adapters.ErrNotFound
	}
	return cp, err
}

// Original reads the stored letter for its original. The letter's record
// is bounded by the stream's message size; a large original is in the
// blob store and opens from there on each Open, read as it is consumed.
// What cannot come back is ErrNotFound: a letter past retention, an
// original gone from the blob store (collected) or damaged there, a
// record that no longer decodes. Trouble reaching the stores is not.
func (s checkpoints) Original(ctx context.Context, source, letterID string) (letter.Original, error) {
	raw, err := s.h.letters.GetLastMsgForSubject(ctx, broker.InSubject(source, letterID))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return letter.Original{}, adapters.ErrNotFound
	}
	if err != nil {
		return letter.Original{}, err
	}
	l, err := letter.Unmarshal(raw.Data)
	if err != nil {
		return letter.Original{}, fmt.Errorf("%w: the stored letter at %d does not decode: %w", adapters.ErrNotFound, raw.Sequence, err)
	}
	o := l.Original
	switch {
	case o.Inline():
		return o, nil
	case o.Ref == "":
		return letter.Original{}, fmt.Errorf("%w: the stored letter keeps no original", adapters.ErrNotFound)
	}
	open := s.h.blobs.Opener(o.Ref)
	return o.WithOpener(func(ctx context.Context) (io.ReadCloser, error) {
		r, err := open(ctx)
		if err != nil {
			return nil, goneAsNotFound(err)
		}
		return goneReader{r}, nil
	}), nil
}

// goneReader reads a blob, its missing or damaged bytes ErrNotFound.
type goneReader struct{ io.ReadCloser }

func (r goneReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		err = goneAsNotFound(err)
	}
	return n, err
}

// goneAsNotFound marks a blob read that will never succeed (the blob is
// missing or its bytes do not match its name) as ErrNotFound.
func goneAsNotFound(err error) error {
	if errors.Is(err, blobs.ErrMissing) || errors.Is(err, blobs.ErrCorrupt) {
		return fmt.Errorf("%w: %w", adapters.ErrNotFound, err)
	}
	return err
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
