// Package console is the coordinator's web console, served by the hub under
// /console/: login with bcrypt passwords, server-side sessions, CSRF tokens
// on every form, role checks on every page, and pages for the overview, the
// retry queue, rejected files, a letter's journey (content only after an
// audited "show"), search, the audit log, and the council's meetings,
// agenda (print, PDF, CSV; audited) and figures. HTML is rendered on the
// server from embedded templates, charts too (SVG); the only scripts are a
// "select all" checkbox and a print button.
package console

import (
	"context"
	"crypto/subtle"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/samhub/samhub/internal/config"
	"github.com/samhub/samhub/internal/httpapi"
	"github.com/samhub/samhub/internal/logging"
	"github.com/samhub/samhub/internal/throttle"
	"github.com/samhub/samhub/pipeline"
	"github.com/samhub/samhub/pipeline/audit"
	"github.com/samhub/samhub/pipeline/broker"
	"github.com/samhub/samhub/pipeline/journey"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Options are settings the console takes beyond config.Console.
type Options struct {
	// SecureCookies marks cookies Secure even on plain-HTTP requests, for a
	// hub behind a TLS-terminating proxy. Requests that arrive over TLS
	// always get Secure cookies.
	SecureCookies bool
	// Logger receives the console's own errors (never letter content);
	// default slog.Default().
	Logger *slog.Logger
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// Mount returns the function cmd/samhub passes to app.Start: it registers
// the console under /console/ on the hub's HTTP server.
func Mount(cfg config.Console) func(*httpapi.Server) error {
	return MountWith(cfg, Options{})
}

// MountWith is Mount with options.
func MountWith(cfg config.Console, o Options) func(*httpapi.Server) error {
	return func(s *httpapi.Server) error {
		c, err := New(s, cfg, o)
		if err != nil {
			return err
		}
		s.Mux().Handle("/console/", c)
		return nil
	}
}

// Console serves the web console.
type Console struct {
	srv      *httpapi.Server
	hub      *pipeline.Hub
	lang     string
	loc      *time.Location // console.time_zone: times are shown and read in it
	users    map[string]config.User
	dummy    []byte // bcrypt hash compared for unknown users, so they take as long as known ones
	pages    map[string]*template.Template
	sessions *sessions
	guard    *throttle.Limiter
	devices  devices
	opts     Options
	log      *slog.Logger
	now      func() time.Time
	handler  http.Handler
	today    todayCounter
	patterns []string // the routes' method+path patterns
}

var pageNames = []string{"login", "overview", "queue", "replay", "bulk", "release", "journey", "search", "consents", "audit", "rejected", "error",
	"meetings", "meeting", "agenda", "kpi"}

// New builds the console for s. Configuration mistakes are reported with
// the key at fault.
func New(s *httpapi.Server, cfg config.Console, o Options) (*Console, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	lang := cfg.Language
	if lang == "" {
		lang = "en"
	}
	if lang != "en" && lang != "da" {
		return nil, fmt.Errorf("console.language: must be en or da, not %q", cfg.Language)
	}
	zone := cfg.TimeZone
	if zone == "" {
		zone = "Europe/Copenhagen"
	}
	loc, err := time.LoadLocation(zone)
	if err != nil || zone == "Local" {
		return nil, fmt.Errorf("console.time_zone: must be an IANA time zone such as Europe/Copenhagen, not %q", cfg.TimeZone)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	js := s.Hub().JetStream()
	skv, err := js.KeyValue(ctx, broker.BucketSessions)
	if err != nil {
		return nil, fmt.Errorf("console: session bucket: %w", err)
	}
	state, err := js.KeyValue(ctx, broker.BucketState)
	if err != nil {
		return nil, fmt.Errorf("console: state bucket: %w", err)
	}
	dev, err := loadDevices(ctx, state)
	if err != nil {
		return nil, err
	}
	c := &Console{srv: s, hub: s.Hub(), lang: lang, loc: loc, users: map[string]config.User{}, opts: o, log: o.Logger, now: o.Now,
		sessions: newSessions(skv, o.Now, o.Logger), devices: dev}
	guard := LoginThrottle
	guard.Now = o.Now
	guard.Known = func(name string) bool { _, ok := c.users[name]; return ok }
	c.guard = throttle.New(guard)
	cost := bcrypt.DefaultCost
	for i, u := range cfg.Users {
		key := fmt.Sprintf("console.users[%d]", i)
		switch u.Role {
		case httpapi.RoleCoordinator, httpapi.RoleOperations, httpapi.RoleAuditor:
		default:
			return nil, fmt.Errorf("%s.role: must be coordinator, operations or auditor", key)
		}
		if u.PasswordHash == "" {
			continue // API token only; cannot log in to the console
		}
		uc, err := bcrypt.Cost([]byte(u.PasswordHash))
		if err != nil {
			return nil, fmt.Errorf("%s.password_hash: must be a bcrypt hash ($2a$/$2b$…), e.g. from `samhub user hash-password`", key)
		}
		cost = uc
		c.users[u.Name] = u
	}
	dummy, err := bcrypt.GenerateFromPassword([]byte(randomToken()), cost)
	if err != nil {
		return nil, err
	}
	c.dummy = dummy
	if c.pages, err = parsePages(lang, loc, o.Now); err != nil {
		return nil, err
	}
	c.handler = c.routes()
	return c, nil
}

// formatNum writes a count as the language does: 10,000 or 10.000.
func formatNum(lang string, n int) string {
	tag := language.English
	if lang == "da" {
		tag = language.Danish
	}
	return message.NewPrinter(tag).Sprintf("%d", n)
}

func parsePages(lang string, loc *time.Location, now func() time.Time) (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"t":       func(key string, args ...any) string { return tr(lang, key, args...) },
		"step":    func(s string) string { return trOr(lang, "step."+s, s) },
		"kind":    func(s string) string { return trOr(lang, "kind."+s, s) },
		"scope":   func(s any) string { v := fmt.Sprint(s); return trOr(lang, "scope."+v, v) },
		"role":    func(s string) string { return trOr(lang, "role."+s, s) },
		"explain": func(code, detail string) Explanation { return explainCode(lang, code, detail) },
		"when":    func(t time.Time) string { return when(t, loc) },
		"age":     func(t time.Time) string { return age(lang, t, now()) },
		"path":    url.PathEscape,
		"num":     func(n int) string { return formatNum(lang, n) },
		// tn translates a text about n things, in the singular for one.
		"tn": func(key string, n int) string {
			if _, ok := messages[key+".one"]; ok && n == 1 {
				key += ".one"
			}
			return tr(lang, key, formatNum(lang, n))
		},
		"note":    func(ev journey.Event) string { return journeyNote(lang, ev) },
		"action":  func(s string) string { return trOr(lang, "a.action."+s, s) },
		"result":  func(s string) string { return auditResult(lang, s) },
		"reason":  func(s string) string { return auditReason(lang, s) },
		"givenBy": func(s string) string { return trOr(lang, "givenby."+s, s) },
		"zone":    func() string { return loc.String() },
		"rcode":   func(code string) string { return trOr(lang, "rcode."+code, "") },
		"origin":  func(s string) string { return trOr(lang, "origin."+s, s) },
		"join":    func(s []string) string { return strings.Join(s, ", ") },
		// dict passes several values to a shared template.
		"dict": func(kv ...any) map[string]any {
			m := map[string]any{}
			for i := 0; i+1 < len(kv); i += 2 {
				m[fmt.Sprint(kv[i])] = kv[i+1]
			}
			return m
		},
	}
	out := map[string]*template.Template{}
	for _, p := range pageNames {
		t, err := template.New(p).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/parts.html", "templates/"+p+".html")
		if err != nil {
			return nil, fmt.Errorf("console template %s: %w", p, err)
		}
		out[p] = t
	}
	return out, nil
}

// when shows a time in the console's zone, with the zone's abbreviation
// (CET or CEST for Europe/Copenhagen), so nobody has to guess.
func when(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return "–"
	}
	return t.In(loc).Format("2006-01-02 15:04:05 MST")
}

func age(lang string, t, now time.Time) string {
	if t.IsZero() {
		return "–"
	}
	d := now.Sub(t).Round(time.Minute)
	days, hours, mins := int(d.Hours())/24, int(d.Hours())%24, int(d.Minutes())%60
	unit := map[string][3]string{"en": {"d", "h", "min"}, "da": {"d", "t", "min"}}[lang]
	switch {
	case days > 0:
		return fmt.Sprintf("%d %s %d %s", days, unit[0], hours, unit[1])
	case hours > 0:
		return fmt.Sprintf("%d %s %d %s", hours, unit[1], mins, unit[2])
	default:
		return fmt.Sprintf("%d %s", mins, unit[2])
	}
}

func (c *Console) routes() http.Handler {
	mux := http.NewServeMux()
	// Every route goes through handle, so the list of patterns is the mux.
	handle := func(pattern string, h http.Handler) {
		c.patterns = append(c.patterns, pattern)
		mux.Handle(pattern, h)
	}
	static, _ := fs.Sub(staticFS, "static")
	handle("GET /console/static/", http.StripPrefix("/console/static/", http.FileServerFS(static)))
	handle("GET /console/login", http.HandlerFunc(c.loginForm))
	handle("POST /console/login", http.HandlerFunc(c.login))
	any := []string{httpapi.RoleCoordinator, httpapi.RoleOperations, httpapi.RoleAuditor}
	coord := []string{httpapi.RoleCoordinator}
	handle("POST /console/logout", c.page(c.logout, any...))
	handle("GET /console/{$}", c.page(c.home, any...))
	handle("GET /console/overview", c.page(c.overview, httpapi.RoleCoordinator, httpapi.RoleOperations))
	handle("GET /console/queue", c.page(c.queue, coord...))
	handle("POST /console/queue", c.page(c.queueAction, coord...))
	handle("GET /console/queue/replay", c.page(c.replayPreview, coord...))
	handle("POST /console/queue/replay", c.page(c.replayStart, coord...))
	handle("GET /console/queue/replays/{id}", c.page(c.replayProgress, coord...))
	handle("GET /console/queue/release", c.page(c.releaseForm, coord...))
	handle("POST /console/queue/release", c.page(c.releaseThread, coord...))
	handle("GET /console/letters/{id}", c.page(c.journey, coord...))
	handle("POST /console/letters/{id}/content", c.page(c.showContent, coord...))
	handle("GET /console/search", c.page(c.search, coord...))
	handle("POST /console/search/cpr", c.page(c.searchCPR, coord...))
	handle("GET /console/consents", c.page(c.consentForm, coord...))
	handle("POST /console/consents", c.page(c.consentRecord, coord...))
	handle("GET /console/audit", c.page(c.auditLog, httpapi.RoleAuditor))
	handle("GET /console/meetings", c.page(c.meetings, coord...))
	handle("POST /console/meetings", c.page(c.meetingAdd, coord...))
	handle("GET /console/meetings/{id}", c.page(c.meeting, coord...))
	handle("POST /console/meetings/{id}/move", c.page(c.meetingMove, coord...))
	handle("POST /console/meetings/{id}/seat", c.page(c.seatMove, coord...))
	handle("POST /console/meetings/{id}/cancel", c.page(c.meetingCancel, coord...))
	handle("POST /console/meetings/{id}/withdraw", c.page(c.referralWithdraw, coord...))
	handle("POST /console/meetings/{id}/reinstate", c.page(c.referralReinstate, coord...))
	handle("POST /console/meetings/{id}/agenda", c.page(c.agenda, coord...))
	handle("GET /console/kpi", c.page(c.kpi, httpapi.RoleCoordinator, httpapi.RoleOperations))
	// Operations answers the SamhubInputRejected alert: it sees the list,
	// as GET /api/v1/rejected lets it; putting a file back stays the
	// coordinator's.
	handle("GET /console/rejected", c.page(c.rejected, httpapi.RoleCoordinator, httpapi.RoleOperations))
	handle("POST /console/rejected", c.page(c.putBack, coord...))
	handle("/console/", c.page(func(w http.ResponseWriter, r *http.Request, _ *session) { c.fail(w, r, http.StatusNotFound) }, any...))
	// Browsers' Sec-Fetch-Site/Origin headers refuse cross-site form posts
	// before the CSRF token is even looked at: two independent guards.
	return http.NewCrossOriginProtection().Handler(mux)
}

func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	if c.secure(r) {
		// Served over TLS (or behind a TLS proxy, secure_cookies): the
		// browser keeps to HTTPS for a year, so no later visit can be
		// downgraded to plaintext on the way.
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
	c.handler.ServeHTTP(w, r)
}

type pageFunc func(http.ResponseWriter, *http.Request, *session)

// page authenticates the session, checks the role on the server and, for
// POSTs, the CSRF token; then runs h with the user in the request context.
func (c *Console) page(h pageFunc, roles ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ses := c.session(r)
		if ses == nil {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/console/login?next="+url.QueryEscape(r.URL.Path), http.StatusSeeOther)
				return
			}
			http.Redirect(w, r, "/console/login", http.StatusSeeOther)
			return
		}
		r = r.WithContext(httpapi.WithPrincipal(r.Context(), httpapi.Principal{Name: ses.user, Role: ses.role}))
		allowed := false
		for _, role := range roles {
			allowed = allowed || ses.role == role
		}
		if !allowed {
			c.render(w, r, ses, http.StatusForbidden, "error", errorPage{Message: tr(c.lang, "err.forbidden"), Hint: tr(c.lang, "err.forbidden.do")})
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
			err := r.ParseForm()
			if tooLarge := (*http.MaxBytesError)(nil); errors.As(err, &tooLarge) {
				// Not an expired form: say what is wrong with it.
				c.render(w, r, ses, http.StatusRequestEntityTooLarge, "error", errorPage{Message: tr(c.lang, "form.toolarge")})
				return
			}
			if err != nil || subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(ses.csrf)) != 1 {
				c.render(w, r, ses, http.StatusForbidden, "error", errorPage{Message: tr(c.lang, "form.expired")})
				return
			}
		}
		h(w, r, ses)
	})
}

func (c *Console) session(r *http.Request) *session {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	ses, _ := c.sessions.get(ck.Value)
	return ses
}

func (c *Console) secure(r *http.Request) bool { return r.TLS != nil || c.opts.SecureCookies }

func (c *Console) setCookie(w http.ResponseWriter, r *http.Request, name, value, path string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: path, MaxAge: maxAge, HttpOnly: true, Secure: c.secure(r), SameSite: http.SameSiteStrictMode})
}

type navItem struct {
	Href, Label string
	Active      bool
}

// view is what every page template gets.
type view struct {
	Lang string
	// Refresh reloads the page after so many seconds (a bulk replay's
	// progress); 0: never.
	Refresh int
	Title   string
	User    string
	Role    string
	CSRF    string
	Nav     []navItem
	Flash   []string
	Errors  []string
	Data    any
}

type errorPage struct{ Message, Hint string }

func (c *Console) nav(ses *session, current string) []navItem {
	var items []navItem
	council := c.hub.Council() != nil
	add := func(href, key string) {
		items = append(items, navItem{Href: href, Label: tr(c.lang, key), Active: strings.HasPrefix(current, href)})
	}
	switch ses.role {
	case httpapi.RoleCoordinator:
		add("/console/overview", "nav.overview")
		if council {
			add("/console/meetings", "nav.meetings")
		}
		add("/console/queue", "nav.queue")
		add("/console/search", "nav.search")
		add("/console/consents", "nav.consents")
		add("/console/rejected", "nav.rejected")
		if council {
			add("/console/kpi", "nav.kpi")
		}
	case httpapi.RoleOperations:
		add("/console/overview", "nav.overview")
		add("/console/rejected", "nav.rejected")
		if council {
			add("/console/kpi", "nav.kpi")
		}
	case httpapi.RoleAuditor:
		add("/console/audit", "nav.audit")
	}
	return items
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, ses *session, status int, page string, data any, errs ...string) {
	c.renderView(w, r, ses, status, page, data, 0, errs...)
}

func (c *Console) renderView(w http.ResponseWriter, r *http.Request, ses *session, status int, page string, data any, refresh int, errs ...string) {
	v := view{Lang: c.lang, Title: tr(c.lang, "app.title"), Data: data, Errors: errs, Refresh: refresh}
	if ses != nil {
		v.User, v.Role, v.CSRF = ses.user, ses.role, ses.csrf
		v.Nav = c.nav(ses, r.URL.Path)
		v.Flash = c.sessions.takeFlash(ses)
	}
	var b strings.Builder
	if err := c.pages[page].ExecuteTemplate(&b, "layout", v); err != nil {
		c.log.ErrorContext(r.Context(), "console: render failed", "page", page, "err", err)
		http.Error(w, tr(c.lang, "err.internal"), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

// fail renders a plain-language error page for status.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, status int) {
	msg := map[int]string{http.StatusNotFound: "err.notfound", http.StatusForbidden: "err.forbidden"}[status]
	if msg == "" {
		msg = "err.internal"
	}
	c.render(w, r, c.session(r), status, "error", errorPage{Message: tr(c.lang, msg)})
}

func (c *Console) internal(w http.ResponseWriter, r *http.Request, what string, err error) {
	c.log.ErrorContext(r.Context(), "console: "+what, "path", r.URL.Path, "err", err)
	c.fail(w, r, http.StatusInternalServerError)
}

func (c *Console) actor(r *http.Request, ses *session) pipeline.Actor {
	return pipeline.Actor{Name: ses.user, Role: ses.role, Remote: c.srv.ClientAddr(r).String()}
}

// audit stores rec with any CPR number typed into its reason masked, as
// the hub masks them (ten digits, with a dash or a space, or a
// replacement CPR).
func (c *Console) audit(ctx context.Context, r *http.Request, rec audit.Record) error {
	rec.Reason = logging.Redact(rec.Reason)
	if rec.Remote == "" {
		rec.Remote = c.srv.ClientAddr(r).String()
	}
	return c.hub.Audit().Append(ctx, rec)
}

// --- login -----------------------------------------------------------------

type loginPage struct {
	Token string
	Next  string
	User  string
}

func (c *Console) loginForm(w http.ResponseWriter, r *http.Request) {
	if ses := c.session(r); ses != nil {
		http.Redirect(w, r, "/console/", http.StatusSeeOther)
		return
	}
	c.showLogin(w, r, http.StatusOK, "")
}

// showLogin renders the form with a fresh login token, kept in a cookie and
// the form (double submit), so nobody can log a victim in as themselves.
func (c *Console) showLogin(w http.ResponseWriter, r *http.Request, status int, user string, errs ...string) {
	tok := randomToken()
	c.setCookie(w, r, loginCookie, tok, "/console/login", int(idleTimeout.Seconds()))
	c.render(w, r, nil, status, "login", loginPage{Token: tok, Next: safeNext(r.FormValue("next")), User: user}, errs...)
}

// safeNext keeps redirects inside the console.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/console/") || strings.HasPrefix(next, "//") || strings.Contains(next, "\\") || strings.Contains(next, "..") {
		return ""
	}
	return next
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		c.showLogin(w, r, http.StatusBadRequest, "", tr(c.lang, "login.expired"))
		return
	}
	ck, err := r.Cookie(loginCookie)
	if err != nil || subtle.ConstantTimeCompare([]byte(ck.Value), []byte(r.PostForm.Get("token"))) != 1 {
		c.showLogin(w, r, http.StatusForbidden, "", tr(c.lang, "login.expired"))
		return
	}
	name, pw := strings.TrimSpace(r.PostForm.Get("user")), r.PostForm.Get("password")
	u, known := c.users[name]
	// The typed name is recorded only when it names a user: it may be a
	// password or a CPR typed into the wrong field.
	actorName, role := "unknown-user", ""
	if known {
		actorName, role = name, u.Role
	}
	attempt := throttle.Attempt{Source: c.srv.ClientAddr(r), User: name}
	if ck, err := r.Cookie(deviceCookie); err == nil && known {
		attempt.Device, _ = c.devices.check(ck.Value, name)
	}
	ctx := r.Context()
	// A throttled attempt is refused before its password is looked at, so
	// waiting cannot be skipped by guessing right.
	if v := c.guard.Check(attempt); !v.Allowed {
		wait := httpapi.RetryAfter(v.Wait)
		reason := fmt.Sprintf("%s: %d failed logins; next attempt in %s", throttleReason[v.Scope], v.Fails, wait)
		if v.Scope == throttle.ScopeGlobal {
			reason = fmt.Sprintf("%s: more than %v login attempts a second; next attempt in %s", throttleReason[v.Scope], LoginThrottle.Rate, wait)
		}
		c.srv.Throttled(r, "console", v, audit.Record{Actor: actorName, Role: role, Action: "login-throttled", Target: "console", Result: "denied", Reason: reason})
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())))
		c.showLogin(w, r, http.StatusTooManyRequests, "", tr(c.lang, "login.throttled", waitWords(c.lang, wait)))
		return
	}
	hash := c.dummy
	if known {
		hash = []byte(u.PasswordHash)
	}
	// Always one bcrypt comparison, whether the user exists or not.
	ok := bcrypt.CompareHashAndPassword(hash, []byte(pw)) == nil && known
	if !ok {
		c.guard.Failed(attempt)
		rec := audit.Record{Actor: actorName, Role: role, Action: "login-failed", Target: "console", Result: "denied", Reason: "wrong password"}
		if !known {
			rec.Reason = "unknown user name"
		}
		if err := c.audit(ctx, r, rec); err != nil {
			c.log.ErrorContext(r.Context(), "console: audit failed login", "err", err)
		}
		c.showLogin(w, r, http.StatusUnauthorized, "", tr(c.lang, "login.failed"))
		return
	}
	// An action whose audit record cannot be stored does not happen.
	if err := c.audit(ctx, r, audit.Record{Actor: name, Role: u.Role, Action: "login", Target: "console", Reason: "console login", Result: "ok"}); err != nil {
		c.internal(w, r, "audit login", err)
		return
	}
	c.guard.Succeeded(attempt)
	// This browser is now known for this user: a later login from it is
	// not held up by guesses against the name from elsewhere.
	c.setCookie(w, r, deviceCookie, c.devices.issue(name), "/console/login", int(deviceMaxAge.Seconds()))
	if old := c.session(r); old != nil {
		c.sessions.remove(old.id)
	}
	ses, err := c.sessions.create(name, u.Role)
	if err != nil {
		c.internal(w, r, "create session", err)
		return
	}
	c.setCookie(w, r, sessionCookie, ses.id, "/console/", 0)
	c.setCookie(w, r, loginCookie, "", "/console/login", -1)
	next := safeNext(r.PostForm.Get("next"))
	if next == "" {
		next = "/console/"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// throttleReason names a throttle's scope in the audit record.
var throttleReason = map[string]string{
	throttle.ScopeSource: "this address",
	throttle.ScopeUser:   "this user name",
	throttle.ScopeDevice: "this browser",
	throttle.ScopeGlobal: "all addresses together",
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, ses *session) {
	c.sessions.remove(ses.id)
	if err := c.audit(r.Context(), r, audit.Record{Actor: ses.user, Role: ses.role, Action: "logout", Target: "console", Result: "ok"}); err != nil {
		c.log.ErrorContext(r.Context(), "console: audit logout", "err", err)
	}
	c.setCookie(w, r, sessionCookie, "", "/console/", -1)
	http.Redirect(w, r, "/console/login", http.StatusSeeOther)
}

func (c *Console) home(w http.ResponseWriter, r *http.Request, ses *session) {
	to := "/console/overview"
	if ses.role == httpapi.RoleAuditor {
		to = "/console/audit"
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}
