package casesys

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/samhub/samhub/adapters"
	casesyssim "github.com/samhub/samhub/internal/sim/casesys"
)

// A case system that redirects the hub elsewhere (a moved API, a proxy
// misconfigured, a compromised front) must not get the child's CPR number
// or the hub's token sent on to the other address: the search carries the
// CPR in its body, which a 307 or 308 redirect would send again.
func TestRedirectIsNotFollowed(t *testing.T) {
	for _, status := range []int{http.StatusTemporaryRedirect, http.StatusPermanentRedirect, http.StatusFound} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			var elsewhere atomic.Int32
			other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				elsewhere.Add(1)
				io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprint(w, `{"results":[]}`)
			}))
			defer other.Close()
			front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/oauth2/token" {
					w.Header().Set("Content-Type", "application/json")
					fmt.Fprint(w, `{"access_token":"tok","token_type":"Bearer","expires_in":300}`)
					return
				}
				// Same host name, another port: net/http would even keep
				// the Authorization header for it.
				http.Redirect(w, r, other.URL+r.URL.Path, status)
			}))
			defer front.Close()
			inst, err := adapters.Build("casesys", adapters.Deps{Name: "casesys", Logger: slog.New(slog.DiscardHandler), State: newMapState(), Now: time.Now},
				map[string]any{"url": front.URL, "client_id": "hub", "client_secret": "s3cret", "timeout": "5s", "poll_interval": "0"})
			if err != nil {
				t.Fatal(err)
			}
			_, err = inst.(*Adapter).Deliver(context.Background(), referral(t, "medcom:REDIR1"))
			if n := elsewhere.Load(); n != 0 {
				t.Fatalf("the hub followed the redirect: %d requests reached the other address", n)
			}
			class, code := classOf(t, err)
			_, reason, _ := adapters.Classify(err)
			if class != adapters.ClassRetryable || code != "redirected" || !strings.Contains(reason, "url") {
				t.Errorf("got %v/%s %q, want a retryable redirected error naming the url setting", class, code, reason)
			}
		})
	}
}

// A case that is gone when the document is added (deleted or merged
// after the search found it: 404) is looked for again instead of parking
// the letter with "the case system does not know the case".
func TestCaseGoneBeforeTheUploadIsFoundAgain(t *testing.T) {
	e := startSim(t, nil)
	a := e.adapter(nil, nil)
	e.sim.InjectFailure(casesyssim.Fault{Route: "POST /cases/{caseId}/documents", Count: 1, Status: http.StatusNotFound})
	l := referral(t, "medcom:GONE1")
	d, err := a.Deliver(context.Background(), l)
	if err != nil {
		t.Fatal(err)
	}
	if docs := e.sim.Documents(); len(docs) != 1 || docs[0].ID != d.RemoteID {
		t.Fatalf("documents %+v, delivery %+v; want the one document", docs, d)
	}
	if n := countRoute(e.sim.Requests(), "POST /cases/search"); n < 2 {
		t.Errorf("the case was searched %d times, want it searched again after the 404", n)
	}
}
