// Package httpclient is the configuration block and client shared by the
// adapters that reach another system's REST API: the case system, the
// region's EPJ gateway and Digital Post. One block (base URL, OAuth2 client
// credentials, TLS files with an optional client certificate, a timeout
// per request) is squashed into each adapter's config struct, so every
// such adapter is configured, documented and checked alike:
//
//	type Config struct {
//		httpclient.Config `mapstructure:",squash"`
//		Scope string `mapstructure:"scope" default:"…" doc:"…"`
//		…
//	}
//
// Scopes differ per system, so each adapter declares its own scope key.
package httpclient

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/adapters/oauthtoken"
	"github.com/samhub/samhub/adapters/tlsclient"
)

// Config is the shared block. Its keys sit at the top of the adapter's
// block (url, token_url, client_id, client_secret, timeout, tls.*).
type Config struct {
	URL          string          `mapstructure:"url" required:"true" doc:"Base URL of the system's API (absolute http or https)." example:"https://sager.kommune.example/api/v1"`
	TokenURL     string          `mapstructure:"token_url" doc:"OAuth2 token endpoint for the client-credentials grant. Empty: url + /oauth2/token." example:"https://login.kommune.example/oauth2/token"`
	ClientID     string          `mapstructure:"client_id" required:"true" doc:"OAuth2 client id the hub is registered with." example:"samhub"`
	ClientSecret string          `mapstructure:"client_secret" required:"true" secret:"true" doc:"OAuth2 client secret. Give it as client_secret_file (a file holding it, e.g. under $CREDENTIALS_DIRECTORY) rather than in the file."`
	Timeout      time.Duration   `mapstructure:"timeout" default:"30s" doc:"Bound on each HTTP request, token requests included."`
	TLS          tlsclient.Files `mapstructure:"tls" doc:"PEM files for TLS: a private CA to trust and a client certificate for mutual TLS (FOCES/VOCES)."`
	// Known before anything is sent, a letter too large parks at once with
	// a reason naming this key, instead of being sent in full to be
	// refused (a 413 parks it too, without the limit).
	MaxUpload int64 `mapstructure:"max_upload" default:"0" doc:"Largest request body in bytes the system takes (a document upload with its files, a FHIR resource or a Digital Post message with its attachments in base64); a letter whose request would be larger is parked as too large without being sent. 0: no limit of the hub's own, the system's 413 answer parks it."`
}

// Check checks the block and fills token_url when it is empty. It reads
// the TLS files (they must load) and makes no network call.
func (c *Config) Check() error {
	base, ok := httpURL(c.URL)
	if !ok {
		return &adapters.ConfigError{Key: "url", Msg: "must be an absolute http(s) URL"}
	}
	c.URL = strings.TrimRight(base.String(), "/")
	if c.TokenURL == "" {
		c.TokenURL = c.URL + "/oauth2/token"
	} else if _, ok := httpURL(c.TokenURL); !ok {
		return &adapters.ConfigError{Key: "token_url", Msg: "must be an absolute http(s) URL"}
	}
	if c.Timeout <= 0 {
		return &adapters.ConfigError{Key: "timeout", Msg: "must be a positive duration such as 30s"}
	}
	if c.MaxUpload < 0 {
		return &adapters.ConfigError{Key: "max_upload", Msg: "must be a number of bytes, or 0 for no limit of the hub's own"}
	}
	_, err := tlsclient.Config(c.TLS, "tls.")
	return err
}

func httpURL(s string) (*url.URL, bool) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, false
	}
	return u, true
}

// Client is what an adapter talks through: an HTTP client with the
// block's TLS settings and Timeout, and the cached access token.
type Client struct {
	Base    *url.URL
	HTTP    *http.Client
	Tokens  *oauthtoken.Cache
	Timeout time.Duration
}

// MaxConnsPerHost bounds the connections to the system a client talks to;
// a sink built on the client can usefully make that many deliveries at once
// (adapters.Capacity).
const MaxConnsPerHost = 64

// New builds the client for a checked block. scope is the space-separated
// scopes to ask for; now is the clock token lifetimes are measured on (nil:
// time.Now).
func New(c Config, scope string, now func() time.Time) (*Client, error) {
	if err := c.Check(); err != nil {
		return nil, err
	}
	base, _ := url.Parse(c.URL)
	tc, err := tlsclient.Config(c.TLS, "tls.")
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// A destination has up to pipeline.max_in_flight letters at once, all
	// to this one host: Go's default of 2 idle connections per host closed
	// the rest after every burst and dialled (and shook hands) anew, 8 % of
	// the hub's CPU at saturation in the benchmark. Connections are kept,
	// and bounded, so a burst waits for one rather than opening hundreds.
	tr.MaxIdleConnsPerHost = MaxConnsPerHost
	tr.MaxConnsPerHost = MaxConnsPerHost
	if tc != nil {
		tr.TLSClientConfig = tc
	}
	// A redirect is never followed: net/http would send the bearer token
	// on to the same host name on another port or to a subdomain, and a
	// 307/308 would send the request body (a search by CPR) again to
	// wherever the answer points. The 3xx reaches the adapter, which
	// reports it (RedirectReason).
	hc := &http.Client{Transport: tr, Timeout: c.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	cc := &clientcredentials.Config{
		ClientID: c.ClientID, ClientSecret: c.ClientSecret, TokenURL: c.TokenURL,
		Scopes: strings.Fields(scope), AuthStyle: oauth2.AuthStyleInHeader,
	}
	return &Client{Base: base, HTTP: hc, Tokens: oauthtoken.New(cc, hc, now), Timeout: c.Timeout}, nil
}

// IsRedirect reports a 3xx answer, which the client does not follow.
func IsRedirect(status int) bool { return status >= 300 && status < 400 }

// Redirected is the error of a 3xx answer from system (e.g. "the case
// system"). It is retryable: like refused credentials it hits every
// letter alike, so they wait until url is corrected instead of each
// parking for the coordinator.
func Redirected(system string, status int) *adapters.Error {
	return adapters.Retryable("redirected", fmt.Sprintf("%s redirected the hub to another address (HTTP %d); the hub does not follow redirects, so that no token or personal data reaches an address the configuration did not name: check the url setting", system, status),
		fmt.Errorf("HTTP %d redirect not followed", status))
}

// RetryAfter is the pause an answer asks for (Retry-After in seconds or
// as an HTTP date), zero when none; see adapters.RetryAfter for the error
// that carries it to the pipeline.
func RetryAfter(h http.Header) time.Duration { return adapters.RetryAfterHeader(h) }

// CodeAuthFailed and CodeAuthRejected are the codes every REST adapter
// gives a refused login: the token service refused the hub's client
// credentials, or the system refused a token the token service had just
// issued (HTTP 401 twice, the second time with a new token).
const (
	CodeAuthFailed   = "auth_failed"
	CodeAuthRejected = "auth_rejected"
)

// bearerError reads the error code of a Bearer challenge (RFC 6750 §3.1),
// admitting only the codes that RFC defines: a server's own words could
// carry anything.
var bearerError = regexp.MustCompile(`(?i)\bBearer\b.*\berror="(invalid_token|invalid_request|insufficient_scope)"`)

// Unauthorized is the error of a 401 to a token system (e.g. "the case
// system") refused although it was newly fetched. It is retryable, in all
// three REST adapters alike: mostly the hub's client registration or
// credentials at the system are wrong, which an operator fixes and which
// hits every letter alike, but a token service's signing-key rollover or a
// clock skew between it and the system passes by itself. Retried with
// backoff, the letters go out once it is fixed or has passed, and only
// after the destination's max_attempts is each parked; parked at once,
// every letter would need a replay by hand. h is the answer's header,
// whose WWW-Authenticate error code the reason names.
func Unauthorized(system string, h http.Header, cause error) *adapters.Error {
	detail := "HTTP 401"
	for _, v := range h.Values("WWW-Authenticate") {
		if m := bearerError.FindStringSubmatch(v); m != nil {
			detail += ", " + strings.ToLower(m[1])
			break
		}
	}
	return adapters.Retryable(CodeAuthRejected, fmt.Sprintf("%s refused the hub's access token although it was newly issued (%s): usually the hub's client registration or scope there, else a signing-key change or clock skew at its token service, which passes; fix the registration and the waiting letters go out", system, detail), cause)
}
