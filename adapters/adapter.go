// Package adapters defines how Samhub talks to the systems around it: a
// Source brings letters in, a Sink delivers one letter to one destination.
// Adapters know no JetStream detail; the pipeline knows no protocol detail.
//
// Each system lives in its own sub-package and registers its types in an
// init function with RegisterSource, RegisterSink or RegisterSourceSink:
// a name, a Spec (derived from the typed config struct's tags, see Spec)
// and a typed constructor. The hub decodes and checks every block through
// the spec before it starts anything (`samhub config check` does the same),
// and the conformance suite in adapters/adaptertest runs every registered
// type against the harness its package supplies.
package adapters

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/samhub/samhub/internal/state"
	"github.com/samhub/samhub/pipeline/letter"
)

// Publisher stores a letter durably. A nil error means JetStream confirmed
// the write; only then may a source acknowledge, move or mark its input.
// An error means the letter may or may not be stored: the source keeps its
// input and offers the same letter (the same ID) again later, and the
// broker drops the copy if the first write landed. Publish is safe for
// concurrent use.
type Publisher interface {
	Publish(ctx context.Context, l *letter.Letter) error
}

// InputReporter is implemented by the Publisher the hub hands a source: a
// source that refuses input before storing it, or recognises a copy of a
// letter it answered before and publishes nothing, says so here, so the
// hub's counters (samhub_letters_rejected_total{source,code} and
// samhub_letters_duplicate_total{source}) count what the source logs. code
// is a short token from a small fixed set (it becomes a metric label).
type InputReporter interface {
	Rejected(code string)
	Duplicate()
}

// RejectCodes is optional on a Source that reports rejections: the codes it
// may pass to InputReporter.Rejected, so that each series exists from 0.
type RejectCodes interface {
	RejectCodes() []string
}

// RejectedInputs is optional on a Source that sets refused input aside
// (the MedCom drop folder's error/): the hub lists it for the coordinator
// and can put one back to be read again as if it had just arrived.
type RejectedInputs interface {
	// ListRejected returns at most limit items, newest first.
	ListRejected(ctx context.Context, limit int) ([]RejectedInput, error)
	// PutBack returns ErrUnknownInput for an id it does not hold and
	// ErrAnswered when reading the input again could change nothing.
	PutBack(ctx context.Context, id string) error
}

// RejectedInput is one refused input as the coordinator sees it.
type RejectedInput struct {
	ID     string    `json:"id"` // the source's name for it: a file name in error/
	Size   int64     `json:"size"`
	At     time.Time `json:"at"`     // when it was refused
	Code   string    `json:"code"`   // the bounded code also counted in samhub_letters_rejected_total
	Reason string    `json:"reason"` // free of personal data
	// Answered: the sender got an acknowledgement (a negative one) for a
	// letter of this input.
	Answered bool `json:"answered"`
}

var (
	ErrUnknownInput = errors.New("no rejected input with that id")
	// ErrAnswered refuses a put-back: the sender was answered for a letter
	// of the input, and MedCom requires the same answer to every copy, so
	// reading it again would only repeat that answer.
	ErrAnswered = errors.New("the sender was already answered for a letter of this input; MedCom repeats the same answer to a copy, so reading it again changes nothing: ask the sender to send the letter again under a new letter id")
)

// Source reads one system and publishes what it finds.
//
// Run blocks until ctx is cancelled, then returns nil; it returns an error
// only when it cannot go on at all (the hub logs it and restarts the source
// with the next lease). The pipeline runs a source on one replica at a
// time, so a source need not guard against twins; Run is not called
// concurrently on one instance.
//
// Acknowledgement rule: a source acknowledges, moves, marks or advances a
// cursor past an input only after Publish returned nil for every letter
// made from it. Letter IDs are deterministic (the same input always gives
// the same ID), so an input offered again after a crash between the store
// and the acknowledgement, or after a refused Publish, is the same letter
// and the broker keeps one copy. A refused Publish is retried later (the
// next poll at the latest); an input is never dropped because a store
// failed. On shutdown (ctx cancelled mid-round) a source stops taking new
// input; what it had not acknowledged stays in its system for the next run.
//
// A Source may also implement StatusReporter (the hub tells it the fate of
// each recipient of its letters) and Readiness.
type Source interface {
	Run(ctx context.Context, pub Publisher) error
}

// Sink delivers one letter to one destination.
//
// Deliver is called concurrently (up to pipeline.max_in_flight calls per
// destination, letters of one thread one at a time), and the same letter
// may be delivered again: after a timeout, a lost reply, a crash or a
// replay, even concurrently from two replicas. The effect must be
// idempotent: delivering a letter again never creates a second object at
// the destination (an earlier delivery found is Delivery.Existing).
//
// Addressing: a sink sends to exactly the parties in l.To, which the
// pipeline resolved for this destination, and never picks one from
// l.Receivers. A sink that sends one message per addressee (Digital Post
// to each custody holder) and reaches only some returns *Partial, so the
// source hears who got the letter; the letter itself is retried or parked
// as the Partial's error says.
//
// Errors: classify with Retryable/RetryAfter (the pipeline tries again
// with backoff, or after the destination's Retry-After) or Permanent (the
// same call would fail again: the letter is parked for the coordinator at
// once). An unclassified error counts as retryable. Reasons are shown to
// the coordinator and must carry no personal data.
//
// Cancellation: when ctx ends (the sink timeout, or shutdown) Deliver
// returns promptly with ctx's error or a retryable error, never a
// permanent one: shutdown must never park a letter. A call cancelled after
// the destination saved the letter is harmless, since the next delivery
// finds it.
type Sink interface {
	Deliver(ctx context.Context, l *letter.Letter) (Delivery, error)
}

// Delivery is what a destination answered.
type Delivery struct {
	RemoteID string // the destination's own id for what was created or found
	Existing bool   // an earlier delivery was found and nothing new created
}

// StatusReporter is optional on a Source whose system keeps a status for
// what it handed over (the case system's outbox keeps one per recipient of
// a document). The hub calls ReportStatus whenever the fate of one
// recipient of a letter from this source changes: delivered, waiting (for a
// retry, a consent, an earlier letter of the thread), failed, or not sent
// at all because no destination serves that recipient.
//
// ReportStatus must make the report durable before it returns (its
// StateStore) and may write it to its system later, retrying until the
// system takes it, so a report is never lost while that system is down.
// Calls may repeat and may arrive out of order from different destinations
// and replicas: a report whose At is older than the one kept for the same
// letter and recipient is ignored. Reasons are free of personal data.
type StatusReporter interface {
	ReportStatus(ctx context.Context, s RecipientStatus) error
}

// RecipientStatus is the fate of one recipient of one letter.
type RecipientStatus struct {
	LetterID    string
	Destination string       // the destination serving the recipient; "" when none does
	Recipient   letter.Party // as the letter named it (role and identifiers)
	State       RecipientState
	Code        string // short machine code, e.g. "consent_missing", "delivered"
	Reason      string // plain language, free of personal data
	At          time.Time
}

// RecipientState is what a source's system is told about one recipient.
type RecipientState string

const (
	StateSent    RecipientState = "sent"     // the destination confirmed delivery
	StateWaiting RecipientState = "waiting"  // being retried, held behind an earlier letter, or parked for something the coordinator can clear (consent)
	StateFailed  RecipientState = "failed"   // parked after its attempts or for a permanent error, or discarded
	StateNotSent RecipientState = "not_sent" // no destination delivers to this recipient
)

// Readiness is optional on a Source or Sink: Ready reports an error while the
// remote side is not usable (it feeds /readyz and metrics, not the flow).
type Readiness interface {
	Ready(ctx context.Context) error
}

// Deps is what the hub hands an adapter when it builds it.
type Deps struct {
	Name    string // instance name from configuration, e.g. "casesys"
	Logger  *slog.Logger
	DataDir string // a directory of the adapter's own under the hub's data dir
	State   StateStore
	Metrics prometheus.Registerer
	Now     func() time.Time
	// Letters reads the letters the hub stored; nil where no hub runs
	// (tools, some tests).
	Letters StoredLetters
}

// StoredLetters is a read-only view of the letters the hub stored.
type StoredLetters interface {
	// Checkpoint returns the checkpoint a source stored with its letter
	// (BatchPublisher), nil when it stored none, and ErrNotFound when the
	// hub holds no letter letterID from source.
	Checkpoint(ctx context.Context, source, letterID string) ([]byte, error)
	// Original returns the original bytes of letter letterID from source
	// as the hub stored them: inline when small, else opened from the
	// hub's blob store on each Open, so a large original is read as a
	// stream and never held whole. ErrNotFound (wrapped) when the hub no
	// longer holds the letter or its original, from this call or from
	// Open; any other error may pass (the store did not answer).
	Original(ctx context.Context, source, letterID string) (letter.Original, error)
}

// StateStore is durable key/value state an adapter keeps across restarts and
// replicas (cursors, duplicate memory, sent acknowledgements). Keys are short
// and free of personal data: [A-Za-z0-9_=.-]+.
type StateStore interface {
	// Get returns ErrNotFound when the key has no value.
	Get(ctx context.Context, key string) (value []byte, revision uint64, err error)
	Put(ctx context.Context, key string, value []byte) (revision uint64, err error)
	// Create fails with ErrExists when the key has a value already.
	Create(ctx context.Context, key string, value []byte) (revision uint64, err error)
	// Update fails with ErrConflict when the key's revision is not revision.
	Update(ctx context.Context, key string, value []byte, revision uint64) (uint64, error)
	Delete(ctx context.Context, key string) error
	// Scan returns every key under prefix, which is empty or ends in a
	// dot ("pending."), with its value and revision, in no given order.
	// It reads the whole prefix, so it is for a set an adapter must go
	// through now and then (letters awaiting an answer), one key each,
	// rather than one value holding the set: such a value is rewritten
	// whole on every change and outgrows the broker's message limit.
	Scan(ctx context.Context, prefix string) ([]StateEntry, error)
}

// StateEntry is one key of an adapter's state (StateStore.Scan).
type StateEntry = state.Entry

// The StateStore outcomes (package internal/state, which the broker's
// implementation returns).
var (
	ErrNotFound = state.ErrNotFound
	ErrExists   = state.ErrExists
	ErrConflict = state.ErrConflict
)

// Capacity is implemented by a sink that can usefully make only so many
// deliveries at once (its connection pool). The hub keeps no more of its
// letters in flight than that: the rest wait in the stream, not in memory
// and not in a queue for a connection that ends in the sink's timeout.
type Capacity interface {
	Capacity() int // 0: no limit of its own
}
