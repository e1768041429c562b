package epj_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/adapters/epj"
	epjsim "github.com/samhub/samhub/internal/sim/epj"
)

// front is a proxy before the simulator whose answer to POST
// /Communication a test may replace while mode is set.
func front(t *testing.T, e *env, mode *atomic.Value) *httptest.Server {
	t.Helper()
	target, _ := url.Parse(e.base)
	rp := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m, _ := mode.Load().(string)
		if m == "" || r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/Communication") {
			rp.ServeHTTP(w, r)
			return
		}
		switch m {
		case "html":
			// A maintenance or login page served with 200.
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, "<html><body>Service window until 06:00</body></html>")
		case "truncated":
			// The gateway stores the letter; its answer arrives cut off
			// and without a Location (a 201 with one is the letter's).
			rec := httptest.NewRecorder()
			rp.ServeHTTP(rec, r)
			b := rec.Body.Bytes()
			for k, v := range rec.Header() {
				if k != "Content-Length" && k != "Location" {
					w.Header()[k] = v
				}
			}
			w.WriteHeader(rec.Code)
			w.Write(b[:len(b)/2])
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// A 200 or 201 whose body is no FHIR resource does not make the letter
// delivered: a page served with 200 means the region may not have it, and
// a cut-off answer is retried; the retry finds the stored copy and never
// makes a second one.
func TestDeliverTwoHundredWithoutFHIRIsNotDelivered(t *testing.T) {
	for _, m := range []string{"html", "truncated"} {
		t.Run(m, func(t *testing.T) {
			e := newEnv(t, 0)
			e.seedPatient(epjsim.Patient{CPR: cprBruno, FamilyName: "Elmer"})
			var mode atomic.Value
			mode.Store(m)
			srv := front(t, e, &mode)
			a := e.adapter(func(c *epj.Config) { c.URL, c.TokenURL = srv.URL, srv.URL+"/oauth2/token" })
			l := recommendation("rec-" + m)
			d, err := a.Deliver(context.Background(), l)
			if err == nil {
				t.Fatalf("delivered %+v on an answer that is no FHIR resource", d)
			}
			classified(t, err, adapters.ClassRetryable, "bad_answer")

			mode.Store("")
			d, err = a.Deliver(context.Background(), l)
			if err != nil {
				t.Fatal(err)
			}
			stored := e.sim.CommunicationsFor(l.ID)
			if len(stored) != 1 || d.RemoteID == "" {
				t.Fatalf("after the retry: %d Communications, delivery %+v; want one", len(stored), d)
			}
			if want := m == "truncated"; d.Existing != want {
				t.Errorf("Existing = %v, want %v", d.Existing, want)
			}
		})
	}
}
