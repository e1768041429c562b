package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/samhub/samhub/internal/config"
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
			if p, ok := s.users.ByToken(strings.TrimSpace(tok)); ok {
				next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
				return
			}
		}
		problem(w, r, http.StatusUnauthorized, "unauthenticated", "a valid API token is required")
	})
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
