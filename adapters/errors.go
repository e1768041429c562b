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

// Permanent classifies err as not worth retrying: the letter is parked.
func Permanent(code, reason string, err error) *Error {
	return &Error{Class: ClassPermanent, Code: code, Reason: reason, Err: err}
}

// Classify returns the class, a personal-data-free reason and code for any
// error. Unclassified errors are retryable with a generic reason, since their
// text may carry anything.
func Classify(err error) (Class, string, string) {
	var e *Error
	if errors.As(err, &e) {
		return e.Class, e.Reason, e.Code
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
