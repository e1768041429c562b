package epj

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/adapters/body"
	"github.com/samhub/samhub/adapters/epj/internal/fhir"
	"github.com/samhub/samhub/adapters/httpclient"
	"github.com/samhub/samhub/adapters/oauthtoken"
)

// client speaks FHIR R4 REST with an OAuth2 bearer token.
type client struct {
	base    string // FHIR base URL without trailing slash
	http    *http.Client
	tokens  *oauthtoken.Cache
	timeout time.Duration
}

// response is a FHIR answer read in full.
type response struct {
	status int
	header http.Header
	body   []byte
}

// accessToken returns the access token, classifying a failure to get one.
func (c *client) accessToken(ctx context.Context) (*oauth2.Token, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	tok, err := c.tokens.Token(ctx)
	if err != nil {
		return nil, classifyTokenError(ctx, err)
	}
	return tok, nil
}

func classifyTokenError(ctx context.Context, err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		switch re.Response.StatusCode {
		case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden:
			// A credentials problem hits every letter alike; retrying keeps
			// them queued until the configuration is fixed, instead of
			// parking each one for the coordinator.
			return adapters.Retryable(httpclient.CodeAuthFailed, "the region's token service refused the hub's client credentials or scope; check client_id, client_secret and scope", err)
		}
		return adapters.Retryable("token_"+strconv.Itoa(re.Response.StatusCode), "the region's token service failed", err)
	}
	if ctx.Err() != nil {
		return adapters.Retryable("timeout", "the region's token service did not answer in time", err)
	}
	return adapters.Retryable("token_unreachable", "the region's token service could not be reached", err)
}

// do sends one request to target (a path under base, or an absolute URL
// under base) with a bearer token. On 401 it fetches a new token and tries
// once more. Any answer with a status is returned as a response; only
// transport failures are errors (classified retryable: every write this
// adapter makes is idempotent).
func (c *client) do(ctx context.Context, method, target, contentType string, data []byte, hdr http.Header) (*response, error) {
	return c.doBody(ctx, method, target, contentType, data, nil, hdr)
}

func (c *client) doBody(ctx context.Context, method, target, contentType string, data []byte, stream *body.Body, hdr http.Header) (*response, error) {
	u := target
	if !absolute(target) {
		u = c.base + "/" + strings.TrimPrefix(target, "/")
	} else if _, out := c.outside(target); out {
		// Never send the token to a host the configuration did not name.
		return nil, adapters.Permanent("foreign_link", "the region's gateway sent a link outside its own address", nil)
	}
	var resp *response
	for attempt := 0; attempt < 2; attempt++ {
		tok, err := c.accessToken(ctx)
		if err != nil {
			return nil, err
		}
		resp, err = c.send(ctx, method, u, contentType, data, stream, hdr, tok.AccessToken)
		if err != nil {
			return nil, err
		}
		if resp.status != http.StatusUnauthorized {
			return resp, nil
		}
		c.tokens.Forget(tok)
	}
	return resp, nil
}

func absolute(target string) bool {
	return strings.HasPrefix(target, "http://") || strings.HasPrefix(target, "https://")
}

// outside reports an absolute link that is not under the configured base
// URL, where the access token must not go, and the host it names (only
// the host: the rest of a link may carry anything). A link relative to
// base is inside.
func (c *client) outside(link string) (host string, out bool) {
	if !absolute(link) || strings.HasPrefix(link, c.base+"/") {
		return "", false
	}
	if u, err := url.Parse(link); err == nil {
		host = u.Host
	}
	if host == "" {
		host = "(unreadable)"
	}
	return host, true
}

// host is the configured base URL's host, for messages.
func (c *client) host() string {
	u, err := url.Parse(c.base)
	if err != nil {
		return ""
	}
	return u.Host
}

// doStream is do with a body sent from readers (a Communication with its
// attachments), opened anew for each send.
func (c *client) doStream(ctx context.Context, method, target, contentType string, b *body.Body, hdr http.Header) (*response, error) {
	return c.doBody(ctx, method, target, contentType, nil, b, hdr)
}

func (c *client) send(ctx context.Context, method, u, contentType string, data []byte, stream *body.Body, hdr http.Header, tok string) (*response, error) {
	rctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var rd io.Reader
	if data != nil {
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(rctx, method, u, rd)
	if err != nil {
		return nil, adapters.Permanent("bad_request", "the hub could not build the request", err)
	}
	if stream != nil {
		// Its exact length, so the gateway can refuse a body too large
		// before taking it, and one cut short is no request.
		req.Body = stream.Reader(rctx)
		req.ContentLength = stream.Len()
		req.GetBody = func() (io.ReadCloser, error) { return stream.Reader(rctx), nil }
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("Accept", fhir.ContentType)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := c.http.Do(req)
	if err != nil {
		if perr := body.Unreadable(err); perr != nil {
			return nil, perr
		}
		return nil, transportError(ctx, rctx, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 256<<20))
	if err != nil {
		return nil, transportError(ctx, rctx, err)
	}
	return &response{status: res.StatusCode, header: res.Header, body: b}, nil
}

func transportError(parent, rctx context.Context, err error) error {
	switch {
	case parent.Err() != nil:
		return adapters.Retryable("cancelled", "the delivery was interrupted", err)
	case rctx.Err() != nil:
		return adapters.Retryable("timeout", "the region's gateway did not answer in time", err)
	}
	return adapters.Retryable("network", "the region's gateway could not be reached or closed the connection", err)
}

// classify turns a non-success answer into a classified error. what names
// the operation for the coordinator ("patient search", "letter delivery").
// Only the OperationOutcome's issue codes and plain element paths are used;
// diagnostics may echo values and are never read.
func classify(resp *response, what string) error {
	st := resp.status
	code := "http_" + strconv.Itoa(st)
	detail := outcomeSummary(resp.body)
	cause := fmt.Errorf("HTTP %d from the FHIR gateway%s", st, detail)
	switch {
	case httpclient.IsRedirect(st):
		return httpclient.Redirected("the region's gateway", st)
	case st == http.StatusTooManyRequests || st == http.StatusServiceUnavailable:
		return adapters.RetryAfter(code, fmt.Sprintf("the region's gateway is busy (HTTP %d)", st), adapters.RetryAfterHeader(resp.header), cause)
	case st == http.StatusUnauthorized:
		return httpclient.Unauthorized("the region's gateway", resp.header, cause)
	case st >= 500, st == http.StatusRequestTimeout, st == http.StatusTooEarly:
		return adapters.Retryable(code, fmt.Sprintf("the region's gateway failed during the %s (HTTP %d)", what, st), cause)
	default:
		// 400, 403, 404, 409, 412, 422 and the other 4xx: the same request
		// would fail again.
		return adapters.Permanent(code, fmt.Sprintf("the region's gateway rejected the %s (HTTP %d%s)", what, st, detail), cause)
	}
}

// elementPath admits FHIR element paths like Communication.payload[1].contentAttachment
// and nothing that could carry a value (no quotes, spaces, or functions).
var (
	elementPath = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*(\[[0-9]{1,3}\])?)*$`)
	issueCode   = regexp.MustCompile(`^[a-z][a-z-]{0,40}$`)
)

func outcomeSummary(body []byte) string {
	var oo fhir.OperationOutcome
	if json.Unmarshal(body, &oo) != nil || oo.ResourceType != "OperationOutcome" {
		return ""
	}
	var parts []string
	for _, is := range oo.Issue {
		if !issueCode.MatchString(is.Code) {
			continue
		}
		p := is.Code
		for _, e := range is.Expression {
			if elementPath.MatchString(e) && len(e) < 100 {
				p += " at " + e
			}
		}
		parts = append(parts, p)
		if len(parts) == 3 {
			break
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return ": " + strings.Join(parts, "; ")
}
