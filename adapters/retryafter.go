package adapters

import (
	"errors"
	"net/http"
	"strconv"
	"time"
)

// MaxRetryAfter bounds the pause read from Retry-After. A destination
// asking for more than a day is mistaken (and a count of seconds past
// 292 years does not fit a Duration at all); the pipeline bounds the
// pause again by its backoff.
const MaxRetryAfter = 24 * time.Hour

// RetryAfterHeader reads an HTTP Retry-After header (RFC 9110 §10.2.3):
// delay seconds or an HTTP date, at most MaxRetryAfter. Absent, malformed
// or past: zero.
func RetryAfterHeader(h http.Header) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseUint(v, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		// ErrRange: more seconds than a uint64 holds (n is its maximum).
		if n >= uint64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(time.Until(t), 0), MaxRetryAfter)
	}
	return 0
}
