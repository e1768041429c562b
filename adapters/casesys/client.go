package casesys

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"golang.org/x/oauth2"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/adapters/body"
	"github.com/samhub/samhub/adapters/httpclient"
	"github.com/samhub/samhub/adapters/oauthtoken"
)

// client speaks the case-system contract: it holds the access token,
// refreshes it once on 401, and turns answers into classified errors.
type client struct {
	base   *url.URL
	http   *http.Client
	tokens *oauthtoken.Cache
	// sendKeys is false for a case system that ignores Idempotency-Key.
	// The header is then left out: net/http resends a write that carries
	// it when a reused connection fails after the server read it, which
	// to such a system is a second create.
	sendKeys bool
}

// maxBody caps what is read from an answer; documents come back through
// the file endpoint, which the caller reads with its own limit.
const maxBody = 64 << 20

func newClient(c Config) (*client, error) {
	hc, err := httpclient.New(c.Config, c.Scope, nil)
	if err != nil {
		return nil, err
	}
	return &client{base: hc.Base, http: hc.HTTP, tokens: hc.Tokens, sendKeys: c.IdempotencyKeys != IdempotencyIgnored}, nil
}

// token returns the access token, classifying a failure to get one.
func (c *client) token(ctx context.Context) (*oauth2.Token, error) {
	tok, err := c.tokens.Token(ctx)
	if err != nil {
		return nil, tokenError(err)
	}
	return tok, nil
}

func tokenError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		switch st := re.Response.StatusCode; {
		case st == http.StatusBadRequest || st == http.StatusUnauthorized || st == http.StatusForbidden:
			// A credentials problem hits every letter alike (as in the EPJ
			// adapter): retrying keeps them queued until the configuration
			// is fixed instead of parking each at once for the coordinator;
			// the failures metric and its alert tell operations.
			return adapters.Retryable(httpclient.CodeAuthFailed, "the case system's token service refused the hub's client credentials or scope; check client_id, client_secret and scope", err)
		case st == http.StatusTooManyRequests || st == http.StatusServiceUnavailable:
			return adapters.RetryAfter("token_unavailable", "the case system's token service is busy or in maintenance", adapters.RetryAfterHeader(re.Response.Header), err)
		default:
			return adapters.Retryable("token_unavailable", fmt.Sprintf("the case system's token service failed (HTTP %d)", st), err)
		}
	}
	return networkError(err)
}

func networkError(err error) error {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return adapters.Retryable("timeout", "the case system did not answer in time", err)
	}
	if errors.Is(err, context.Canceled) {
		return adapters.Retryable("cancelled", "the delivery was interrupted (the hub is stopping)", err)
	}
	return adapters.Retryable("network", "the case system could not be reached or dropped the connection", err)
}

// request is one API call. Path is relative to the base URL and already
// escaped; it never carries personal data.
type request struct {
	method string
	path   string
	query  url.Values
	body   []byte
	// stream is a body sent from readers (a document's files), instead of
	// body; opened anew for each send.
	stream      *body.Body
	contentType string
	idemKey     string
	header      http.Header // further request headers, e.g. If-Match
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends r with a bearer token. On 401 it fetches a new token and sends
// r once more; a second 401 is httpclient.Unauthorized (retryable, as for
// the EPJ and Digital Post). Any other answer with a status is returned
// without error; only transport failures are errors.
func (c *client) do(ctx context.Context, r request) (*response, error) {
	for attempt := 0; ; attempt++ {
		tok, err := c.token(ctx)
		if err != nil {
			return nil, err
		}
		resp, err := c.send(ctx, r, tok)
		if err != nil {
			return nil, err
		}
		if resp.status != http.StatusUnauthorized {
			return resp, nil
		}
		c.tokens.Forget(tok)
		if attempt == 1 {
			return nil, httpclient.Unauthorized("the case system", resp.header,
				fmt.Errorf("case system answered HTTP 401 (%s) to a new token", parseProblem(resp.body).Code))
		}
	}
}

func (c *client) send(ctx context.Context, r request, tok *oauth2.Token) (*response, error) {
	u := *c.base
	u.RawPath = strings.TrimRight(c.base.EscapedPath(), "/") + r.path
	u.Path, _ = url.PathUnescape(u.RawPath)
	if r.query != nil {
		u.RawQuery = r.query.Encode()
	}
	var rd io.Reader
	if r.body != nil {
		rd = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u.String(), rd)
	if err != nil {
		return nil, adapters.Permanent("bad_request", "the hub built an invalid request (see the hub log)", err)
	}
	if r.stream != nil {
		// Sent from the files' readers with its exact length, so the case
		// system can refuse an upload too large before taking it, and a
		// body cut short (a file that could not be read) is no request.
		req.Body = r.stream.Reader(ctx)
		req.ContentLength = r.stream.Len()
		req.GetBody = func() (io.ReadCloser, error) { return r.stream.Reader(ctx), nil }
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("Accept", "application/json, application/problem+json")
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	if r.idemKey != "" && c.sendKeys {
		req.Header.Set("Idempotency-Key", r.idemKey)
	} else if r.method == http.MethodPost && r.path == "/cases/search" {
		// A search is safe to resend: an empty Idempotency-Key slice lets
		// net/http retry it on a stale pooled connection without sending
		// the header (which would make the server replay old results).
		req.Header["Idempotency-Key"] = nil
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if perr := body.Unreadable(err); perr != nil {
			return nil, perr
		}
		return nil, networkError(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, networkError(err)
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// problemDoc is the part of an RFC 9457 answer the adapter reads.
type problemDoc struct {
	Code       string `json:"code"`
	Type       string `json:"type"`
	ExistingID string `json:"existingId"`
	Errors     []struct {
		Field string `json:"field"`
	} `json:"errors"`
}

func parseProblem(b []byte) problemDoc {
	var p problemDoc
	json.Unmarshal(b, &p)
	if p.Code == "" && p.Type != "" {
		p.Code = p.Type[strings.LastIndexAny(p.Type, ":/")+1:]
	}
	return p
}

// fieldName accepts only what looks like a field path, so a server that
// puts a value in "field" cannot leak it into a parked letter's reason.
var fieldName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.\[\]-]{0,63}$`)

func (p problemDoc) fields() string {
	var out []string
	for _, e := range p.Errors {
		if fieldName.MatchString(e.Field) && !hasDigitRun(e.Field) {
			out = append(out, e.Field)
		}
		if len(out) == 5 {
			break
		}
	}
	if len(out) == 0 {
		return ""
	}
	return " (fields: " + strings.Join(out, ", ") + ")"
}

// hasDigitRun reports four or more digits in a row, which a field path
// never needs and a CPR or date always has.
func hasDigitRun(s string) bool {
	n := 0
	for _, r := range s {
		if r >= '0' && r <= '9' {
			n++
			if n >= 4 {
				return true
			}
		} else {
			n = 0
		}
	}
	return false
}

// classify turns a non-success answer into a classified error. what says
// what the hub was doing, in plain words ("adding the document").
// The server's detail text is never copied: only status, code and field
// names, which carry no personal data.
func classify(what string, resp *response) error {
	p := parseProblem(resp.body)
	st := resp.status
	cause := fmt.Errorf("case system answered HTTP %d (%s) while %s", st, p.Code, what)
	switch {
	case httpclient.IsRedirect(st):
		return httpclient.Redirected("the case system", st)
	case st == http.StatusConflict && p.Code == "case-closed":
		return adapters.Permanent("case_closed", "the child's case is closed in the case system, so nothing can be added while "+what+"; a coordinator must reopen the case or decide where the letter goes", cause)
	case st == http.StatusConflict && p.Code == "request-in-progress":
		return adapters.RetryAfter("request_in_progress", "the case system is still processing an earlier attempt of "+what, adapters.RetryAfterHeader(resp.header), cause)
	case st == http.StatusTooManyRequests:
		return adapters.RetryAfter("throttled", "the case system asked the hub to slow down (HTTP 429) while "+what, adapters.RetryAfterHeader(resp.header), cause)
	case st == http.StatusServiceUnavailable:
		return adapters.RetryAfter("unavailable", "the case system is unavailable or in maintenance (HTTP 503) while "+what, adapters.RetryAfterHeader(resp.header), cause)
	case st >= 500:
		return adapters.Retryable("server_error", fmt.Sprintf("the case system failed (HTTP %d) while %s", st, what), cause)
	case st == http.StatusBadRequest:
		return adapters.Permanent("bad_request", "the case system rejected the request as malformed (HTTP 400) while "+what+p.fields(), cause)
	case st == http.StatusForbidden:
		return adapters.Permanent("forbidden", "the case system does not allow the hub to do this (HTTP 403) while "+what+"; check the client's scope and unit rights", cause)
	case st == http.StatusNotFound:
		return adapters.Permanent("not_found", "the case system does not know the case or document (HTTP 404) while "+what, cause)
	case st == http.StatusRequestEntityTooLarge:
		return adapters.Permanent("too_large", "the letter's files are larger than the case system accepts (HTTP 413)", cause)
	case st == http.StatusUnsupportedMediaType:
		return adapters.Permanent("file_type_refused", "the case system refuses one of the letter's file types (HTTP 415)"+p.fields(), cause)
	case st == http.StatusUnprocessableEntity && p.Code == "idempotency-key-reused":
		return adapters.Permanent("idempotency_key_reused", "the case system has seen this letter before with different content (HTTP 422 idempotency-key-reused) while "+what+"; a coordinator must check whether the letter changed", cause)
	case st == http.StatusUnprocessableEntity:
		return adapters.Permanent("validation_failed", "the case system found invalid fields (HTTP 422) while "+what+p.fields(), cause)
	case st == http.StatusConflict:
		return adapters.Permanent("conflict", "the case system reported a conflict (HTTP 409) while "+what, cause)
	default:
		return adapters.Permanent(fmt.Sprintf("http_%d", st), fmt.Sprintf("the case system answered HTTP %d while %s", st, what), cause)
	}
}
