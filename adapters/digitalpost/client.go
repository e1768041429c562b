package digitalpost

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"golang.org/x/oauth2"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/adapters/body"
	"github.com/samhub/samhub/adapters/httpclient"
	"github.com/samhub/samhub/adapters/oauthtoken"
)

// client posts kombi_requests with a token and the transaction headers.
type client struct {
	url     string // the service endpoint
	http    *http.Client
	tokens  *oauthtoken.Cache
	timeout time.Duration
	now     func() time.Time
}

// response is an answer read in full.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (c *client) accessToken(ctx context.Context) (*oauth2.Token, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	tok, err := c.tokens.Token(ctx)
	if err == nil {
		return tok, nil
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		switch re.Response.StatusCode {
		case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden:
			// Credentials, certificate or service agreement: every letter
			// alike, so the letters wait until the configuration is fixed.
			return nil, adapters.Retryable(httpclient.CodeAuthFailed, "KOMBIT's token service refused the hub (client, certificate or service agreement)", err)
		}
		return nil, adapters.Retryable("token_"+strconv.Itoa(re.Response.StatusCode), "KOMBIT's token service failed", err)
	}
	if ctx.Err() != nil {
		return nil, adapters.Retryable("timeout", "KOMBIT's token service did not answer in time", err)
	}
	return nil, adapters.Retryable("token_unreachable", "KOMBIT's token service could not be reached", err)
}

// post sends one kombi_request. On 401 it fetches a new token and tries
// once more. Any answer with a status is returned; only transport
// failures are errors (retryable: the message UUID makes a resend safe).
func (c *client) post(ctx context.Context, msg *body.Body) (*response, error) {
	var resp *response
	for attempt := 0; attempt < 2; attempt++ {
		tok, err := c.accessToken(ctx)
		if err != nil {
			return nil, err
		}
		if resp, err = c.send(ctx, msg, tok.AccessToken); err != nil {
			return nil, err
		}
		if resp.status != http.StatusUnauthorized {
			return resp, nil
		}
		c.tokens.Forget(tok)
	}
	return resp, nil
}

func (c *client) send(ctx context.Context, msg *body.Body, tok string) (*response, error) {
	rctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	// Sent from the documents' readers, with its exact length.
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, c.url, msg.Reader(rctx))
	if err != nil {
		return nil, adapters.Permanent("bad_request", "the hub could not build the request", err)
	}
	req.ContentLength = msg.Len()
	req.GetBody = func() (io.ReadCloser, error) { return msg.Reader(rctx), nil }
	req.Header.Set("Content-Type", "application/xml")
	req.Header.Set("Accept", "application/xml")
	req.Header.Set("Authorization", "Bearer "+tok)
	// A transaction per call, as Serviceplatformen logs them; the message
	// UUID, not the transaction, is what makes a resend harmless.
	req.Header.Set("X-TransaktionsId", newUUID())
	req.Header.Set("X-TransaktionsTid", c.now().UTC().Format(time.RFC3339))
	res, err := c.http.Do(req)
	if err != nil {
		if perr := body.Unreadable(err); perr != nil {
			return nil, perr
		}
		return nil, transportError(ctx, rctx, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
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
		return adapters.Retryable("timeout", "Serviceplatformen did not answer in time", err)
	}
	return adapters.Retryable("network", "Serviceplatformen could not be reached or closed the connection", err)
}

// kombiResponse is what the service answers: Result, and on a refusal
// HovedoplysningerSvarREST/SvarReaktion/Fejl.
type kombiResponse struct {
	XMLName        xml.Name `xml:"kombi_response"`
	Result         string   `xml:"Result"`
	TransmissionID string   `xml:"TransmissionID"`
	FejlKode       string   `xml:"HovedoplysningerSvarREST>SvarReaktion>Fejl>FejlKode"`
	FejlID         string   `xml:"HovedoplysningerSvarREST>SvarReaktion>Fejl>FejlId"`
}

// Refusal codes the service answers with (the simulator's; see doc.go).
const (
	codeExempt    = "MODTAGER_FRITAGET"
	codeDuplicate = "MEDDELELSE_ALLEREDE_MODTAGET"
	codeConflict  = "MEDDELELSE_UUID_KONFLIKT"
)

// safeCode admits a service's error code into a reason and a code; its
// error text is never read (it may echo what was sent).
var safeCode = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// outcome reads an answer: ok (stored now), existing (stored before), or
// a classified error.
func outcome(resp *response) (ok, existing bool, err error) {
	var kr kombiResponse
	parsed := xml.Unmarshal(resp.body, &kr) == nil
	code := kr.FejlKode
	if code == "" {
		code = kr.FejlID
	}
	if !safeCode.MatchString(code) {
		code = ""
	}
	if resp.status == http.StatusOK && parsed && kr.Result == "true" {
		return true, false, nil
	}
	switch code {
	case codeDuplicate:
		return false, true, nil
	case codeExempt:
		return false, false, adapters.Permanent("recipient_exempt", "the custody holder is exempt from Digital Post", nil)
	case codeConflict:
		return false, false, adapters.Permanent("uuid_conflict",
			"Digital Post holds another message under this letter's message id for the custody holder; ask KOMBIT's support before sending again", nil)
	}
	st := resp.status
	what := fmt.Sprintf("HTTP %d", st)
	if code != "" {
		what += ", code " + code
	}
	cause := fmt.Errorf("kombi_request answered %s", what)
	switch {
	case httpclient.IsRedirect(st):
		return false, false, httpclient.Redirected("Serviceplatformen", st)
	case st == http.StatusOK && !parsed:
		// A page served with 200 (a proxy, a service window) or an answer
		// cut off: whether the message was taken is unknown, and sending
		// again is harmless (the message UUID).
		return false, false, adapters.Retryable("bad_answer", "Serviceplatformen answered HTTP 200 with something other than a kombi_response, so it is not known whether it took the message; it is sent again", cause)
	case st == http.StatusOK:
		// Result false without a code we know, or an answer we cannot
		// read: the service did not take the message.
		return false, false, adapters.Permanent("refused", "Digital Post did not take the message ("+what+")", cause)
	case st == http.StatusTooManyRequests || st == http.StatusServiceUnavailable:
		return false, false, adapters.RetryAfter("http_"+strconv.Itoa(st), "Serviceplatformen is busy ("+what+")", adapters.RetryAfterHeader(resp.header), cause)
	case st == http.StatusUnauthorized:
		return false, false, httpclient.Unauthorized("Serviceplatformen", resp.header, cause)
	case st >= 500, st == http.StatusRequestTimeout, st == http.StatusTooEarly:
		return false, false, adapters.Retryable("http_"+strconv.Itoa(st), "Serviceplatformen failed ("+what+")", cause)
	case st == http.StatusForbidden:
		return false, false, adapters.Permanent("http_403", "Serviceplatformen refused the call ("+what+"): check the service agreement for KombiPostAfsend and the function certificate, then replay", cause)
	}
	c := "http_" + strconv.Itoa(st)
	if code != "" {
		c = "refused_" + code
	}
	return false, false, adapters.Permanent(c, "Digital Post refused the message ("+what+")", cause)
}
