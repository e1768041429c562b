package casesys

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/samhub/samhub/adapters"
	casesyssim "github.com/samhub/samhub/internal/sim/casesys"
	"github.com/samhub/samhub/pipeline/letter"
)

func countRoute(reqs []casesyssim.Request, route string) (n int) {
	for _, r := range reqs {
		if r.Route == route {
			n++
		}
	}
	return n
}

const tokenRoute = "POST /oauth2/token"

func TestTokenExpiryRefreshesOnce(t *testing.T) {
	// A lifetime long enough that the second delivery, on a busy machine,
	// does not outlive its own token.
	e := startSim(t, func(c *casesyssim.Config) { c.TokenTTL = 4 * time.Second })
	a := e.adapter(nil, nil)
	if _, err := a.Deliver(context.Background(), referral(t, "medcom:T1")); err != nil {
		t.Fatal(err)
	}
	before := countRoute(e.sim.Requests(), tokenRoute)
	time.Sleep(4200 * time.Millisecond) // past the token's lifetime
	if _, err := a.Deliver(context.Background(), referral(t, "medcom:T2")); err != nil {
		t.Fatal(err)
	}
	reqs := e.sim.Requests()
	if got := countRoute(reqs, tokenRoute) - before; got != 1 {
		t.Errorf("token requests for the second delivery = %d, want 1", got)
	}
	for _, r := range reqs {
		if r.Status == http.StatusUnauthorized {
			t.Errorf("an expired token was sent: %s %s", r.Method, r.URI)
		}
	}
	if len(e.sim.Documents()) != 2 {
		t.Errorf("documents = %d, want 2", len(e.sim.Documents()))
	}
}

func TestUnauthorizedRefreshesTokenAndRetriesOnce(t *testing.T) {
	e := startSim(t, nil)
	a := e.adapter(nil, nil)
	if _, err := a.Deliver(context.Background(), referral(t, "medcom:U1")); err != nil {
		t.Fatal(err)
	}
	e.restart() // the new simulator knows no tokens: the cached one gets 401
	if _, err := a.Deliver(context.Background(), referral(t, "medcom:U2")); err != nil {
		t.Fatal(err)
	}
	reqs := e.sim.Requests()
	if reqs[0].Status != http.StatusUnauthorized || reqs[1].Route != tokenRoute || countRoute(reqs, tokenRoute) != 1 {
		t.Errorf("want one 401, one token fetch, then success; got %+v", reqs[:3])
	}
}

// A token refused although new is retryable, as for the EPJ and Digital
// Post: the letter waits (up to max_attempts) for the registration to be
// fixed or a token service's key rollover to pass, instead of parking at
// once. The adapter itself refreshes only once: no loop.
func TestRejectedTokenIsRetryableAfterOneRefresh(t *testing.T) {
	e := startSim(t, nil)
	e.sim.RejectTokens(true)
	a := e.adapter(nil, nil)
	_, err := a.Deliver(context.Background(), referral(t, "medcom:R1"))
	if class, code := classOf(t, err); class != adapters.ClassRetryable || code != "auth_rejected" {
		t.Fatalf("got %v/%s", class, code)
	}
	if _, reason, _ := adapters.Classify(err); !strings.Contains(reason, "newly issued (HTTP 401, invalid_token)") {
		t.Errorf("reason %q does not name the cause", reason)
	}
	reqs := e.sim.Requests()
	if n := countRoute(reqs, tokenRoute); n != 2 {
		t.Errorf("token requests = %d, want 2 (initial + one refresh)", n)
	}
	if n := len(reqs) - countRoute(reqs, tokenRoute); n != 2 {
		t.Errorf("API requests = %d, want 2 (one try, one retry)", n)
	}
	// Once the case system takes the hub's tokens again, the next attempt
	// delivers the letter.
	e.sim.RejectTokens(false)
	if _, err := a.Deliver(context.Background(), referral(t, "medcom:R1")); err != nil {
		t.Fatalf("after the case system took tokens again: %v", err)
	}
	if n := len(e.sim.Documents()); n != 1 {
		t.Errorf("documents = %d, want 1", n)
	}
}

func TestDroppedResponseAfterSaveMakesOneDocument(t *testing.T) {
	e := startSim(t, nil)
	a := e.adapter(nil, nil)
	l := referral(t, "medcom:D1")
	// Every answer to the document upload is lost, including a transparent
	// retry by net/http, so Deliver sees a network error.
	e.sim.DropResponses("POST /cases/{caseId}/documents", 2)
	_, err := a.Deliver(context.Background(), l)
	if class, code := classOf(t, err); class != adapters.ClassRetryable || code != "network" {
		t.Fatalf("got %v/%s: %v", class, code, err)
	}
	if n := len(e.sim.Documents()); n != 1 {
		t.Fatalf("the simulator saved %d documents before dropping the answer, want 1", n)
	}
	d, err := a.Deliver(context.Background(), l)
	if err != nil {
		t.Fatal(err)
	}
	docs := e.sim.Documents()
	if len(docs) != 1 || d.RemoteID != docs[0].ID || !d.Existing {
		t.Fatalf("documents after retry = %+v (delivery %+v)", docs, d)
	}
	if len(e.sim.JournalNotes()) != 1 {
		t.Errorf("journal notes = %d, want 1", len(e.sim.JournalNotes()))
	}
}

func TestSimulatorRestartBetweenSaveAndRetry(t *testing.T) {
	e := startSim(t, nil)
	a := e.adapter(nil, nil)
	l := referral(t, "medcom:S1")
	e.sim.DropResponses("POST /cases/{caseId}/journal-notes", 2)
	if _, err := a.Deliver(context.Background(), l); err == nil {
		t.Fatal("want an error while answers are dropped")
	}
	e.restart()
	d, err := a.Deliver(context.Background(), l)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Existing {
		t.Error("retry after restart should find the saved document and note")
	}
	if len(e.sim.Cases()) != 1 || len(e.sim.Documents()) != 1 || len(e.sim.JournalNotes()) != 1 {
		t.Fatalf("after restart: %d cases, %d documents, %d notes; want 1 each", len(e.sim.Cases()), len(e.sim.Documents()), len(e.sim.JournalNotes()))
	}
}

// TestIdempotencyKeyReuseIsPermanent: a letter whose upload was refused is
// changed under the same id; the case system refuses the reused key.
func TestIdempotencyKeyReuseIsPermanent(t *testing.T) {
	e := startSim(t, func(c *casesyssim.Config) { c.BlockedTypes = []string{"application/x-msdownload"} })
	a := e.adapter(nil, nil)
	l := referral(t, "medcom:K1")
	l.Attachments = []letter.Attachment{letter.NewAttachment("tool.exe", "application/x-msdownload", []byte("MZ"))}
	if _, code := classOf(t, func() error { _, err := a.Deliver(context.Background(), l); return err }()); code != "file_type_refused" {
		t.Fatalf("first attempt code = %s", code)
	}
	l.Attachments = nil
	_, err := a.Deliver(context.Background(), l)
	class, code := classOf(t, err)
	if class != adapters.ClassPermanent || code != "idempotency_key_reused" {
		t.Fatalf("got %v/%s: %v", class, code, err)
	}
	if len(e.sim.Documents()) != 0 {
		t.Error("a document was created")
	}
}

func TestConcurrentRetryWhileInProgressIsRetryable(t *testing.T) {
	e := startSim(t, nil)
	a := e.adapter(nil, nil)
	l := referral(t, "medcom:P1")
	// Create the case first so both deliveries race on the document upload.
	if _, err := a.resolveCase(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	e.sim.SetDelay(300 * time.Millisecond)
	errs := make(chan error, 2)
	for range 2 {
		go func() { _, err := a.Deliver(context.Background(), l); errs <- err }()
	}
	var failures []error
	for range 2 {
		if err := <-errs; err != nil {
			failures = append(failures, err)
		}
	}
	e.sim.SetDelay(0)
	for _, err := range failures {
		if class, code := classOf(t, err); class != adapters.ClassRetryable || (code != "request_in_progress") {
			t.Errorf("got %v/%s: %v", class, code, err)
		}
	}
	if len(e.sim.Documents()) != 1 {
		t.Errorf("documents = %d, want 1", len(e.sim.Documents()))
	}
	if _, err := a.Deliver(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	if len(e.sim.Documents()) != 1 || len(e.sim.JournalNotes()) != 1 {
		t.Errorf("after settling: %d documents, %d notes", len(e.sim.Documents()), len(e.sim.JournalNotes()))
	}
}

// TestTimeoutThenRetryMakesOneDocument: the case system is slower than the
// adapter's timeout but saves anyway; retries (meeting request-in-progress
// while the slow save runs) end with exactly one document.
func TestTimeoutThenRetryMakesOneDocument(t *testing.T) {
	e := startSim(t, nil)
	a := e.adapter(nil, map[string]any{"timeout": "250ms"})
	l := referral(t, "medcom:TO1")
	if _, err := a.resolveCase(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	e.sim.SetRouteDelay("POST /cases/{caseId}/documents", time.Second)
	_, err := a.Deliver(context.Background(), l)
	if class, code := classOf(t, err); class != adapters.ClassRetryable || code != "timeout" {
		t.Fatalf("got %v/%s: %v", class, code, err)
	}
	e.sim.ResetFaults()
	var d adapters.Delivery
	inProgress := 0
	for attempt := 0; ; attempt++ {
		d, err = a.Deliver(context.Background(), l)
		if err == nil {
			break
		}
		class, code := classOf(t, err)
		if class != adapters.ClassRetryable || attempt == 100 {
			t.Fatalf("attempt %d: %v/%s: %v", attempt, class, code, err)
		}
		if code == "request_in_progress" {
			inProgress++
		}
		time.Sleep(50 * time.Millisecond)
	}
	if docs := e.sim.Documents(); len(docs) != 1 || docs[0].ID != d.RemoteID {
		t.Fatalf("documents = %+v", docs)
	}
	if n := len(e.sim.JournalNotes()); n != 1 {
		t.Errorf("journal notes = %d", n)
	}
	if inProgress == 0 {
		t.Error("no retry met the slow save in progress")
	}
}
