package adapters

import (
	"context"
	"errors"
	"fmt"
	"time"
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
