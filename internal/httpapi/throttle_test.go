package httpapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/samhub/samhub/internal/config"
	"github.com/samhub/samhub/internal/httpapi"
	"github.com/samhub/samhub/internal/hubtest"
)

func TestClientAddrBelievesOnlyTrustedProxies(t *testing.T) {
	s := httpapi.New(nil, httpapi.NewUsers(nil), prometheus.NewRegistry(), nil)
	proxies, err := httpapi.ParseProxies([]string{"10.0.0.0/8", "::1"})
	if err != nil {
		t.Fatal(err)
	}
	s.TrustProxies(proxies)
	cases := []struct{ peer, xff, want string }{
		{"192.0.2.1:5000", "203.0.113.9", "192.0.2.1"},                // not a proxy: the header is the client's own claim
		{"10.1.2.3:5000", "203.0.113.9", "203.0.113.9"},               // through the proxy
		{"10.1.2.3:5000", "198.51.100.1, 203.0.113.9", "203.0.113.9"}, // the left part is the client's claim
		{"10.1.2.3:5000", "203.0.113.9, 10.4.4.4", "203.0.113.9"},     // two proxies
		{"[::1]:5000", "2001:db8::7", "2001:db8::7"},
		{"10.1.2.3:5000", "", "10.1.2.3"},
		{"10.1.2.3:5000", "nonsense", "10.1.2.3"},
	}
	for _, c := range cases {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = c.peer
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		if got := s.ClientAddr(r); got != netip.MustParseAddr(c.want) {
			t.Errorf("peer %s, X-Forwarded-For %q: %s, want %s", c.peer, c.xff, got, c.want)
		}
	}
	if _, err := httpapi.ParseProxies([]string{"proxy.example"}); err == nil {
		t.Error("a host name was taken as a proxy address")
	}
}

// Wrong API tokens from one address are slowed; a right token from
// another address is not; the throttling is audited once.
func TestWrongTokensAreThrottledPerAddress(t *testing.T) {
	h := hubtest.Start(t, hubtest.WithConfig(func(c *config.Config) { c.HTTP.TrustedProxies = []string{"127.0.0.1"} }))
	call := func(from, token string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, h.BaseURL+"/api/v1/whoami", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("X-Forwarded-For", from)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	free := httpapi.TokenThrottle.Source.Free
	for i := range free {
		if st := call("198.51.100.7", "guess-"+strconv.Itoa(i)).StatusCode; st != http.StatusUnauthorized {
			t.Fatalf("wrong token %d: %d, want 401", i, st)
		}
	}
	// Now even the right token from that address waits: it is not compared.
	resp := call("198.51.100.7", hubtest.OperationsToken)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("after %d wrong tokens: %d (Retry-After %q), want 429", free, resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if st := call("192.0.2.10", hubtest.OperationsToken).StatusCode; st != http.StatusOK {
		t.Fatalf("the right token from another address: %d, want 200", st)
	}
	call("198.51.100.7", "guess-again")
	n := 0
	recs, err := h.App.Hub.Audit().Tail(context.Background(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Action == "api-token-throttled" {
			n++
			if r.Remote != "198.51.100.7" || !strings.Contains(r.Reason, "wrong API tokens") {
				t.Errorf("record %+v", r)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d api-token-throttled records for one throttling, want 1", n)
	}
}
