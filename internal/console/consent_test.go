package console_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/samhub/samhub/internal/hubtest"
)

// A consent dated in the future is refused, naming the field: a consent
// "given" next month would outrank the objections letters report until
// then. Today, and days before, are taken.
func TestConsentFormRefusesAFutureDate(t *testing.T) {
	h := startHub(t)
	c, csrf := login(t, h, "koordinator", hubtest.CoordinatorPassword)
	form := func(day time.Time) url.Values {
		return url.Values{"csrf": {csrf}, "patient": {fixtureCPR}, "givenBy": {"custody-holder"}, "form": {"written"},
			"givenAt": {day.Format("2006-01-02")}, "scope": {"gp"}, "reason": {"signed form received"}}
	}
	st, page, _ := post(t, c, h.BaseURL+"/console/consents", form(time.Now().AddDate(0, 0, 3)))
	if st != http.StatusBadRequest {
		t.Fatalf("a date three days ahead: %d", st)
	}
	mustContain(t, "the refusal", page, "Date given: must not be in the future")
	if rec, _ := h.App.Hub.RecordedConsent(context.Background(), fixtureCPR); rec != nil {
		t.Fatalf("a consent dated in the future was recorded: %+v", rec)
	}
	if st, _, _ := post(t, c, h.BaseURL+"/console/consents", form(time.Now().AddDate(0, 0, -2))); st != http.StatusSeeOther {
		t.Fatalf("a date two days ago: %d", st)
	}
}
