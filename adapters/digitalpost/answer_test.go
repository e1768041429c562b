package digitalpost_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/samhub/samhub/adapters"
	digitalpostsim "github.com/samhub/samhub/internal/sim/digitalpost"
)

// A 200 that is no kombi_response (a page a proxy serves, an answer cut
// off after the service stored the message) is retried, not parked as a
// refusal: the message UUID makes the next attempt find what was stored,
// and no custody holder gets the letter twice.
func TestTwoHundredWithoutAnswerIsRetried(t *testing.T) {
	for _, m := range []string{"html", "truncated"} {
		t.Run(m, func(t *testing.T) {
			e := newEnv(t, digitalpostsim.Config{})
			target, _ := url.Parse(e.base)
			rp := httputil.NewSingleHostReverseProxy(target)
			var mode atomic.Value
			mode.Store(m)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch cur, _ := mode.Load().(string); {
				case r.URL.Path != "/service/KombiPostAfsend_1/kombi" || cur == "":
					rp.ServeHTTP(w, r)
				case cur == "html":
					io.Copy(io.Discard, r.Body)
					w.Header().Set("Content-Type", "text/html")
					io.WriteString(w, "<html><body>Planned maintenance</body></html>")
				default:
					rec := httptest.NewRecorder()
					rp.ServeHTTP(rec, r)
					b := rec.Body.Bytes()
					w.WriteHeader(rec.Code)
					w.Write(b[:len(b)/2])
				}
			}))
			defer srv.Close()
			sink := func() adapters.Sink {
				return e.sink(map[string]any{"url": srv.URL, "token_url": srv.URL + "/oauth2/token"})
			}
			l := recommendation("L-"+m, brita)
			_, err := sink().Deliver(context.Background(), l)
			if class, _, code := adapters.Classify(err); err == nil || class != adapters.ClassRetryable || code != "bad_answer" {
				t.Fatalf("got %v, want a retryable bad_answer", err)
			}
			mode.Store("")
			d, err := sink().Deliver(context.Background(), l)
			if err != nil {
				t.Fatal(err)
			}
			if n := len(e.sim.Messages()); n != 1 {
				t.Fatalf("%d messages stored, want 1", n)
			}
			if want := m == "truncated"; d.Existing != want {
				t.Errorf("Existing = %v, want %v", d.Existing, want)
			}
		})
	}
}
