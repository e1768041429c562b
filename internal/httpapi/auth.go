package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/samhub/samhub/internal/config"
	"github.com/samhub/samhub/internal/throttle"
	"github.com/samhub/samhub/pipeline/audit"
)

// Roles.
const (
	RoleCoordinator = "coordinator"
	RoleOperations  = "operations"
	RoleAuditor     = "auditor"
)

// Principal is an authenticated user.
type Principal struct {
	Name string
	Role string
}

type principalKey struct{}

// WithPrincipal stores p in ctx (used by the console's session middleware too).
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the authenticated user, if any.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// Users authenticates API tokens against configuration.
type Users struct{ users []config.User }

func NewUsers(u []config.User) *Users { return &Users{users: u} }

// ByToken finds the user whose token_hash is the SHA-256 of token.
func (u *Users) ByToken(token string) (Principal, bool) {
	if token == "" {
		return Principal{}, false
	}
	sum := sha256.Sum256([]byte(token))
	got := hex.EncodeToString(sum[:])
	var found Principal
	ok := false
	for _, usr := range u.users {
		// Compare every entry in constant time so timing says nothing.
		if usr.TokenHash != "" && subtle.ConstantTimeCompare([]byte(strings.ToLower(usr.TokenHash)), []byte(got)) == 1 {
			found, ok = Principal{Name: usr.Name, Role: usr.Role}, true
		}
	}
	return found, ok
}

// All lists the configured users.
func (u *Users) All() []config.User { return u.users }

// HashToken is what an operator puts in token_hash for a token.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// bearer authenticates a request by its Authorization header; it leaves
// requests already authenticated (e.g. by a console session) alone.
func (s *Server) bearer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := PrincipalFrom(r.Context()); ok {
			next.ServeHTTP(w, r)
			return
		}
		h := r.Header.Get("Authorization")
		if tok, ok := strings.CutPrefix(h, "Bearer "); ok {
			// An address that sent wrong tokens waits before its next token
			// is even compared, so a weak token cannot be guessed quickly.
			a := throttle.Attempt{Source: s.ClientAddr(r)}
			if v := s.tokens.Check(a); !v.Allowed {
				s.Throttled(r, "api", v, audit.Record{Actor: "unknown-token", Action: "api-token-throttled", Target: "api",
					Reason: fmt.Sprintf("%d wrong API tokens from this address; next attempt in %s", v.Fails, RetryAfter(v.Wait)), Result: "denied"})
				w.Header().Set("Retry-After", strconv.Itoa(int(RetryAfter(v.Wait).Seconds())))
				problem(w, r, http.StatusTooManyRequests, "too_many_attempts", "too many wrong API tokens from this address; try again in "+RetryAfter(v.Wait).String())
				return
			}
			if p, ok := s.users.ByToken(strings.TrimSpace(tok)); ok {
				s.tokens.Succeeded(a)
				next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
				return
			}
			s.tokens.Failed(a)
		}
		problem(w, r, http.StatusUnauthorized, "unauthenticated", "a valid API token is required")
	})
}

// TokenThrottle slows wrong API tokens per source address: twenty free, then
// 1 s, doubling to 15 minutes; an address quiet for an hour starts afresh.
// Tokens name no user and are cheap to compare, so there is no per-user or
// global limit.
var TokenThrottle = throttle.Config{Source: throttle.Policy{Free: 20, Base: time.Second, Max: 15 * time.Minute, Forget: time.Hour}}

// RetryAfter rounds a wait up to whole seconds, as Retry-After carries it.
func RetryAfter(d time.Duration) time.Duration {
	return max(time.Second, (d + time.Second - 1).Truncate(time.Second))
}

// Throttled counts a refusal of surface's throttle and, the first time
// for that key since its last failure, audits rec (with the client's
// address), so a throttling is on record without one record per refused
// attempt.
func (s *Server) Throttled(r *http.Request, surface string, v throttle.Verdict, rec audit.Record) {
	s.throttled.WithLabelValues(surface, v.Scope).Inc()
	if !v.First || s.hub == nil {
		return
	}
	if rec.Remote == "" {
		rec.Remote = s.ClientAddr(r).String()
	}
	if err := s.hub.Audit().Append(r.Context(), rec); err != nil {
		s.log.Error("audit a throttled login", "surface", surface, "err", err)
	}
}

// allow wraps h so only the given roles reach it; checked on the server for
// every route.
func allow(h http.HandlerFunc, roles ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := PrincipalFrom(r.Context())
		if !ok {
			problem(w, r, http.StatusUnauthorized, "unauthenticated", "log in first")
			return
		}
		for _, role := range roles {
			if p.Role == role {
				h(w, r)
				return
			}
		}
		problem(w, r, http.StatusForbidden, "forbidden", "your role may not do this")
	}
}
