package httpapi_test

import (
	"strings"
	"testing"
	"time"

	"github.com/samhub/samhub/internal/hubtest"
)

// A consent dated in the future is refused, naming the field; a few
// minutes ahead (another machine's clock) are taken.
func TestConsentGivenInTheFutureIsRefused(t *testing.T) {
	h := hubtest.Start(t)
	body := func(at time.Time) map[string]any {
		return map[string]any{"patient": "2509479989", "reason": "test",
			"consent": map[string]any{"givenBy": "custody-holder", "form": "written", "scopes": []string{"gp"}, "givenAt": at.Format(time.RFC3339)}}
	}
	if st, b := call(t, h, hubtest.CoordinatorToken, "POST", "/api/v1/consents", body(time.Now().Add(48*time.Hour))); st != 400 || !strings.Contains(string(b), "consent.givenAt: must not be in the future") {
		t.Errorf("two days ahead: %d %s", st, b)
	}
	if st, b := call(t, h, hubtest.CoordinatorToken, "POST", "/api/v1/consents", body(time.Now().Add(time.Minute))); st != 200 {
		t.Errorf("a minute ahead: %d %s", st, b)
	}
}
