package adapters

import (
	"net/http"
	"strconv"
	"time"
)

// RetryAfterHeader reads an HTTP Retry-After header (RFC 9110 §10.2.3):
// delay seconds or an HTTP date. Absent, malformed or past: zero.
func RetryAfterHeader(h http.Header) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}
