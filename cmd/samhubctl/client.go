package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Exit codes, also listed in `samhubctl --help`.
const (
	exitOK       = 0
	exitUsage    = 1 // wrong command, flag or argument; missing reason
	exitNotFound = 2 // no such parked letter or letter
	exitAuth     = 3 // no token, wrong token, or the role may not do this
	exitServer   = 4 // the hub failed or could not be reached
	// exitNothingDelivered: a replay went through, but every letter it
	// replayed parked again (no consent yet, say): nothing was delivered.
	exitNothingDelivered = 5
)

// exitError carries the exit code an error should end the command with.
type exitError struct {
	code   int
	msg    string
	status int // the hub's HTTP status, when it answered
}

func (e *exitError) Error() string { return e.msg }

func fail(code int, format string, args ...any) error {
	return &exitError{code: code, msg: fmt.Sprintf(format, args...)}
}

// client talks to the hub's /api/v1.
type client struct {
	base  *url.URL
	token string
	http  *http.Client
}

func newClient(server, token string) (*client, error) {
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fail(exitUsage, "--server: must be an absolute http(s) URL such as http://127.0.0.1:8080, not %q", server)
	}
	if token == "" {
		return nil, fail(exitAuth, "no API token: give --token, --token-file or set SAMHUB_TOKEN")
	}
	return &client{base: u, token: token, http: &http.Client{Timeout: 60 * time.Second}}, nil
}

// problem is the API's RFC 9457 error document.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
}

// do calls the API and decodes a 2xx answer into out (raw JSON when out is
// *json.RawMessage). Error answers become exitErrors with the hub's detail.
func (c *client) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	return c.doWith(ctx, method, path, query, body, out, nil)
}

// doWith is do with extra request headers.
func (c *client) doWith(ctx context.Context, method, path string, query url.Values, body, out any, headers map[string]string) error {
	u := c.base.JoinPath(path)
	u.RawQuery = query.Encode()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return fail(exitServer, "interrupted")
		}
		return fail(exitServer, "cannot reach the hub at %s: %v", c.base.Redacted(), rootCause(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fail(exitServer, "reading the hub's answer: %v", err)
	}
	if resp.StatusCode >= 300 {
		var p problem
		_ = json.Unmarshal(data, &p)
		detail := p.Detail
		if detail == "" {
			detail = strings.TrimSpace(http.StatusText(resp.StatusCode))
		}
		e := &exitError{status: resp.StatusCode}
		switch {
		case p.Type == "" && (resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed):
			// Not the hub's answer (its errors are problem documents): a
			// wrong --server, e.g. a simulator's port, or an older hub
			// without this route. "not found" would read as "no such id".
			e.code, e.msg = exitServer, fmt.Sprintf("%s answered %d %s to %s %s, which is not the Samhub API: check --server (the hub's http.listen, e.g. http://127.0.0.1:8080) and that the hub is as new as samhubctl",
				c.base.Redacted(), resp.StatusCode, http.StatusText(resp.StatusCode), method, u.Path)
		case resp.StatusCode == http.StatusUnauthorized:
			e.code, e.msg = exitAuth, fmt.Sprintf("not authenticated: %s (check the token)", detail)
		case resp.StatusCode == http.StatusForbidden:
			e.code, e.msg = exitAuth, "forbidden: "+detail
		case resp.StatusCode == http.StatusNotFound:
			e.code, e.msg = exitNotFound, "not found: "+detail
		case resp.StatusCode < 500:
			e.code, e.msg = exitUsage, "the hub refused the request: "+detail
		default:
			e.code, e.msg = exitServer, fmt.Sprintf("the hub failed (HTTP %d): %s", resp.StatusCode, detail)
		}
		return e
	}
	if out == nil {
		return nil
	}
	if raw, ok := out.(*json.RawMessage); ok {
		*raw = append((*raw)[:0], data...)
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fail(exitServer, "the hub's answer could not be read: %v", err)
	}
	return nil
}

// rootCause strips url.Error's repetition of method and URL.
func rootCause(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
