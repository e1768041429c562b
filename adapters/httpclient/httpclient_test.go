package httpclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/adapters/tlsclient"
	"github.com/samhub/samhub/internal/testpki"
)

func TestCheckNamesTheKey(t *testing.T) {
	for _, c := range []struct {
		cfg Config
		key string
	}{
		{Config{URL: "/api", Timeout: time.Second}, "url"},
		{Config{URL: "https://x", TokenURL: "ftp://t", Timeout: time.Second}, "token_url"},
		{Config{URL: "https://x"}, "timeout"},
		{Config{URL: "https://x", Timeout: time.Second, TLS: tlsclient.Files{CertFile: "/c.pem"}}, "tls.cert_file"},
	} {
		var ce *adapters.ConfigError
		if err := c.cfg.Check(); !errors.As(err, &ce) || ce.Key != c.key {
			t.Errorf("%+v: %v, want a ConfigError for %s", c.cfg, err, c.key)
		}
	}
	c := Config{URL: "https://case.example/api/v1/", Timeout: time.Second}
	if err := c.Check(); err != nil || c.URL != "https://case.example/api/v1" || c.TokenURL != "https://case.example/api/v1/oauth2/token" {
		t.Errorf("derived %+v %v", c, err)
	}
}

// The client trusts the configured CA, shows its client certificate and
// fetches a token with the client credentials.
func TestClientSpeaksMutualTLSAndClientCredentials(t *testing.T) {
	ca, err := testpki.New("test CA")
	if err != nil {
		t.Fatal(err)
	}
	srvLeaf, _ := ca.Issue("127.0.0.1", []string{"127.0.0.1"}, x509.ExtKeyUsageServerAuth)
	cli, _ := ca.Issue("samhub", nil, x509.ExtKeyUsageClientAuth)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, secret, _ := r.BasicAuth()
		if r.URL.Path != "/oauth2/token" || id != "hub" || secret != "s3cret" || r.FormValue("scope") != "a b" {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"access_token":"tok","token_type":"Bearer","expires_in":60}`)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{srvLeaf.TLS}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	defer srv.Close()
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, b, 0o600)
		return p
	}
	cfg := adapters.Defaults[Config]()
	cfg.URL, cfg.ClientID, cfg.ClientSecret = srv.URL, "hub", "s3cret"
	cfg.TLS = tlsclient.Files{CAFile: write("ca.pem", ca.PEM), CertFile: write("c.pem", cli.CertPEM), KeyFile: write("c.key", cli.KeyPEM)}
	c, err := New(cfg, "a b", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Timeout != 30*time.Second {
		t.Errorf("default timeout %v", c.Timeout)
	}
	tok, err := c.Tokens.Token(context.Background())
	if err != nil || tok.AccessToken != "tok" {
		t.Fatalf("token %v %v", tok, err)
	}
	cfg.TLS.CertFile, cfg.TLS.KeyFile = "", ""
	c, _ = New(cfg, "a b", nil)
	if _, err := c.Tokens.Token(context.Background()); err == nil {
		t.Error("a token without the client certificate")
	}
}

// A burst of concurrent requests to the one system keeps its connections:
// the next burst opens none (Go's default kept 2 idle per host and dialled
// the rest anew every time), and never more than the bound are open.
func TestBurstsReuseTheirConnections(t *testing.T) {
	var opened, open, peak atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(5 * time.Millisecond)
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			opened.Add(1)
			if n := open.Add(1); n > peak.Load() {
				peak.Store(n)
			}
		case http.StateClosed, http.StateHijacked:
			open.Add(-1)
		}
	}
	srv.Start()
	defer srv.Close()
	c, err := New(Config{URL: srv.URL, ClientID: "samhub", ClientSecret: "s", Timeout: 10 * time.Second}, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	burst := func(n int) {
		var wg sync.WaitGroup
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := c.HTTP.Get(srv.URL)
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}()
		}
		wg.Wait()
	}
	burst(32)
	first := opened.Load()
	burst(32)
	// A connection goes back to the pool only after its response is read
	// to the end, so a burst that starts at once may find a few still on
	// their way back (3 of 29 seen on a loaded machine). Go's default of 2
	// idle per host dials about 30 anew.
	if again := opened.Load() - first; again > first/4 {
		t.Errorf("the second burst of 32 opened %d new connections, want the first burst's %d kept", again, first)
	}
	burst(200)
	if p := peak.Load(); p > 64 {
		t.Errorf("%d connections open at once, want at most 64", p)
	}
}

// A 401 to a new token is retryable under one code for every REST
// adapter; its reason names RFC 6750's error code and nothing else a
// server wrote.
func TestUnauthorizedNamesOnlyTheBearerErrorCode(t *testing.T) {
	for _, c := range []struct {
		challenge []string
		want      string
	}{
		{nil, "(HTTP 401)"},
		{[]string{`Bearer realm="fhir", error="invalid_token", error_description="token expired for 2509479989"`}, "(HTTP 401, invalid_token)"},
		{[]string{`Basic realm="x"`, `Bearer error="INSUFFICIENT_SCOPE"`}, "(HTTP 401, insufficient_scope)"},
		{[]string{`Bearer error="2509479989"`}, "(HTTP 401)"},
	} {
		h := http.Header{"Www-Authenticate": c.challenge}
		e := Unauthorized("the case system", h, errors.New("cause"))
		if e.Class != adapters.ClassRetryable || e.Code != CodeAuthRejected {
			t.Errorf("%q: %s/%s, want retryable/%s", c.challenge, e.Class, e.Code, CodeAuthRejected)
		}
		if !strings.Contains(e.Reason, "the case system refused the hub's access token although it was newly issued "+c.want) {
			t.Errorf("%q: reason %q, want it to say %s", c.challenge, e.Reason, c.want)
		}
		if strings.Contains(e.Reason, "2509479989") || strings.Contains(e.Reason, "expired for") {
			t.Errorf("%q: reason %q repeats the server's words", c.challenge, e.Reason)
		}
	}
}
