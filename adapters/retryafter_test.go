package adapters

import (
	"net/http"
	"testing"
	"time"
)

func TestRetryAfterHeader(t *testing.T) {
	at := func(v string) time.Duration { return RetryAfterHeader(http.Header{"Retry-After": {v}}) }
	if d := at("120"); d != 2*time.Minute {
		t.Errorf("seconds: %v", d)
	}
	if d := at(time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)); d < 80*time.Second || d > 90*time.Second {
		t.Errorf("HTTP date: %v", d)
	}
	for _, v := range []string{"", "-5", "soon", "Mon, 01 Jan 2001 00:00:00 GMT", "1.5", "+5"} {
		if d := at(v); d != 0 {
			t.Errorf("%q: %v, want 0", v, d)
		}
	}
	// Absurdly large pauses, which used to overflow a Duration (to a
	// negative pause, or centuries), are bounded.
	for _, v := range []string{"86400", "18446744073", "9999999999", "99999999999999999999999", time.Now().Add(400 * 24 * time.Hour).UTC().Format(http.TimeFormat)} {
		if d := at(v); d != MaxRetryAfter {
			t.Errorf("%q: %v, want %v", v, d, MaxRetryAfter)
		}
	}
}
