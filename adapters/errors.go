package adapters

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/samhub/samhub/pipeline/letter"
)

// Class says whether trying again can help.
type Class int

const (
	ClassRetryable Class = iota // network, 5xx, throttling: try again later
	ClassPermanent              // the same request will fail again: park it
)

func (c Class) String() string {
	if c == ClassPermanent {
		return "permanent"
	}
	return "retryable"
}

// Error is a classified delivery error. Reason is shown to the coordinator
// and stored in the retry queue, so it must be plain language and never
// contain personal data (no CPR, names or letter text).
type Error struct {
	Class      Class
	Reason     string
	Code       string        // short machine code, e.g. "http_503", "case_closed"
	RetryAfter time.Duration // from the destination, zero if none
	Err        error         // the underlying error; may be logged, never parked
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Class, e.Reason, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Class, e.Reason)
}

func (e *Error) Unwrap() error { return e.Err }

// Retryable classifies err as worth retrying.
func Retryable(code, reason string, err error) *Error {
	return &Error{Class: ClassRetryable, Code: code, Reason: reason, Err: err}
}

// RetryAfter is Retryable with the destination's requested pause.
func RetryAfter(code, reason string, after time.Duration, err error) *Error {
	return &Error{Class: ClassRetryable, Code: code, Reason: reason, RetryAfter: after, Err: err}
}

// CodeStateUnavailable is the code of StateUnavailable.
const CodeStateUnavailable = "state_unavailable"

// StateUnavailable is Retryable for a sink whose call to the hub's own
// state store (Deps.State) failed; err is the store's error. When the
// store did not answer at all, the hub failed, not the destination, and
// the pipeline tries again without counting it toward max_attempts: a
// letter is parked for what its destination does, never because the
// hub's store was moving its leader for a few seconds.
func StateUnavailable(reason string, err error) *Error {
	return &Error{Class: ClassRetryable, Code: CodeStateUnavailable, Reason: reason, Err: err}
}

// Permanent classifies err as not worth retrying: the letter is parked.
func Permanent(code, reason string, err error) *Error {
	return &Error{Class: ClassPermanent, Code: code, Reason: reason, Err: err}
}

// Classify returns the class, a personal-data-free reason and code for any
// error. Unclassified errors are retryable with a generic reason, since their
// text may carry anything.
func Classify(err error) (Class, string, string) {
	var tl *TooLarge
	var e *Error
	if errors.As(err, &e) {
		return e.Class, e.Reason, e.Code
	}
	if errors.As(err, &tl) {
		return ClassPermanent, tl.Reason(""), "too_large"
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return ClassRetryable, "the destination did not answer in time", "timeout"
	}
	return ClassRetryable, "unexpected error (see the hub log)", "unclassified"
}

// RetryAfterOf returns the pause a destination asked for, if any.
func RetryAfterOf(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

// Partial is the error of a delivery that reached some of its addressees
// and not the others: a sink that sends one copy per addressee (Digital
// Post, a message to each custody holder) returns it, so the letter's
// source is told who got the letter and who did not (StatusReporter).
// Err is the classified failure of the rest; it decides what happens to
// the letter, which is retried or parked as a whole. A later delivery
// sends to every addressee again, so it must be idempotent per addressee
// (the ones delivered come back as existing).
type Partial struct {
	Delivered []letter.Party // addressees the destination confirmed, as in l.To
	Failed    []letter.Party // addressees it did not take, as in l.To
	Err       error          // classified (Retryable, Permanent …)
}

func (p *Partial) Error() string {
	return fmt.Sprintf("delivered to %d of %d addressees: %v", len(p.Delivered), len(p.Delivered)+len(p.Failed), p.Err)
}

func (p *Partial) Unwrap() error { return p.Err }

// PartUnreadable is the error of a delivery that stopped because a part
// of the letter (its original or an attachment) could not be read while
// it was being sent. The sink sent nothing half (its request was cut off
// before the end, its mail not ended, its file not put in place), so it
// is retryable: the next attempt opens the parts again. The pipeline,
// which knows where the part is kept, may classify it more precisely (a
// part gone from the blob store parks the letter).
func PartUnreadable(err error) *Error {
	return Retryable("part_unreadable", "a part of the letter could not be read while it was being sent; nothing was delivered, and it is tried again", err)
}

// TooLarge is the permanent error of a letter larger than a destination
// takes, known before sending (a configured limit) or from the
// destination's answer (HTTP 413). The pipeline parks it with a reason
// naming the destination and the limit; nothing about the letter but its
// size is said.
type TooLarge struct {
	Size    int64  // the letter as the destination would get it, 0 if unknown
	Limit   int64  // the destination's limit, 0 if it did not say
	Setting string // the configuration key holding Limit, "" if none
	Err     error
}

func (e *TooLarge) Error() string { return e.Reason("") }

func (e *TooLarge) Unwrap() error { return e.Err }

// Reason is the parked reason for destination dest ("" for the sink's own
// words: "the destination").
func (e *TooLarge) Reason(dest string) string {
	s := "too large for the destination"
	if dest != "" {
		s = "too large for destination " + dest
	}
	switch {
	case e.Limit > 0 && e.Setting != "":
		s += fmt.Sprintf(" (limit %s, %s)", MB(e.Limit), e.Setting)
	case e.Limit > 0:
		s += fmt.Sprintf(" (limit %s)", MB(e.Limit))
	default:
		s += " (it refused the upload as too large)"
	}
	if e.Size > 0 {
		s += fmt.Sprintf(": the letter is %s there", MB(e.Size))
	}
	return s
}

// MB writes a byte count in megabytes (10^6) with one decimal.
func MB(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }
