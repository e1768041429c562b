// Package oauthtoken keeps one OAuth2 client-credentials access token for an
// adapter (the case system, the EPJ gateway). It differs from x/oauth2's
// ReuseTokenSource in two ways the adapters need: a token a server refused
// with 401 can be dropped so the next call fetches a new one, and a token is
// renewed a tenth of its lifetime (at most 10 s) before it expires, where
// x/oauth2's fixed 10 s would make short-lived tokens useless.
package oauthtoken

import (
	"context"
	"net/http"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// Cache holds the current token. It is safe for concurrent use.
type Cache struct {
	cc   *clientcredentials.Config
	http *http.Client
	now  func() time.Time

	mu        sync.Mutex
	tok       *oauth2.Token
	refreshAt time.Time
}

// New returns a cache fetching tokens with cc over hc. now is the clock the
// renewal margin is measured on (nil: time.Now).
func New(cc *clientcredentials.Config, hc *http.Client, now func() time.Time) *Cache {
	if now == nil {
		now = time.Now
	}
	return &Cache{cc: cc, http: hc, now: now}
}

// Token returns the cached token or fetches a new one when there is none or
// it is due. Errors are x/oauth2's (e.g. *oauth2.RetrieveError), for the
// adapter to classify.
func (c *Cache) Token(ctx context.Context) (*oauth2.Token, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tok != nil && c.now().Before(c.refreshAt) {
		return c.tok, nil
	}
	tok, err := c.cc.Token(context.WithValue(ctx, oauth2.HTTPClient, c.http))
	if err != nil {
		return nil, err
	}
	// The lifetime is measured on c.now, which tests and the hub may set;
	// Expiry is on the wall clock, so expires_in is preferred.
	var life time.Duration
	switch {
	case tok.ExpiresIn > 0:
		life = time.Duration(tok.ExpiresIn) * time.Second
	case !tok.Expiry.IsZero():
		life = time.Until(tok.Expiry)
	default:
		life = 100 * 365 * 24 * time.Hour // no expiry given: until a 401
	}
	c.tok, c.refreshAt = tok, c.now().Add(life-min(10*time.Second, life/10))
	return tok, nil
}

// Forget drops tok (refused by the server) so the next Token call fetches a
// new one, unless another goroutine replaced it already.
func (c *Cache) Forget(tok *oauth2.Token) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tok == tok {
		c.tok = nil
	}
}
