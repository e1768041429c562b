package console_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/samhub/samhub/internal/config"
	"github.com/samhub/samhub/internal/console"
	"github.com/samhub/samhub/internal/hubtest"
	"github.com/samhub/samhub/pipeline/broker"
)

func TestLoginIsAudited(t *testing.T) {
	h := startHub(t)
	c := client(t)
	if st := tryLogin(t, h, c, "2509479989", "whatever"); st != http.StatusUnauthorized {
		t.Fatalf("unknown user: %d, want 401", st)
	}
	for i := range 3 {
		if st := tryLogin(t, h, c, "koordinator", "wrong-"+strconv.Itoa(i)); st != http.StatusUnauthorized {
			t.Fatalf("wrong password %d: %d, want 401", i, st)
		}
	}
	if st := tryLogin(t, h, client(t), "drift", hubtest.OperationsPassword); st != http.StatusSeeOther {
		t.Fatalf("right password: %d, want 303", st)
	}
	recs := auditRecords(t, h)
	wrong, unknown := 0, 0
	for _, r := range recs {
		if strings.Contains(r.Actor+r.Target+r.Reason, "2509479989") {
			t.Errorf("the typed user name (a CPR) reached the audit log: %+v", r)
		}
		if r.Action != "login-failed" {
			continue
		}
		if r.Result != "denied" || r.Remote == "" || r.At.IsZero() {
			t.Errorf("incomplete record %+v", r)
		}
		switch {
		case r.Actor == "unknown-user":
			unknown++
		case r.Actor == "koordinator" && r.Reason == "wrong password":
			wrong++
		}
	}
	if wrong != 3 || unknown != 1 {
		t.Errorf("failed-login records: %d wrong password, %d unknown user; want 3 and 1", wrong, unknown)
	}
	if r, ok := findAudit(recs, "login", "drift"); !ok || r.Role != "operations" || r.Reason == "" {
		t.Errorf("successful login record %+v (found %v)", r, ok)
	}
}

// behindProxy starts a hub with the console whose clock the test sets, and
// whose HTTP listener trusts the loopback proxy's X-Forwarded-For, so each
// test client can come from an address of its own.
func behindProxy(t *testing.T) (*hubtest.Hub, *clock) {
	t.Helper()
	clk := &clock{t: time.Now()}
	h := hubtest.Start(t, hubtest.WithConfig(func(c *config.Config) { c.HTTP.TrustedProxies = []string{"127.0.0.1/32", "::1"} }),
		func(h *hubtest.Hub) {
			hubtest.WithMount(console.MountWith(h.Config.Console, console.Options{Now: clk.Now}))(h)
		})
	return h, clk
}

// from is a cookie-keeping client whose requests arrive through the proxy
// on behalf of addr.
func from(t *testing.T, addr string) *http.Client {
	c := client(t)
	c.Transport = forwardedFor{addr}
	return c
}

type forwardedFor struct{ addr string }

func (f forwardedFor) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", f.addr)
	return http.DefaultTransport.RoundTrip(r)
}

// attempts makes a login attempt every step of the test's clock for span
// and counts the answers: checked (401, the password was compared) and
// throttled (429, refused unchecked).
func attempts(t *testing.T, h *hubtest.Hub, clk *clock, span, step time.Duration, who func(i int) *http.Client) (checked, throttled int) {
	t.Helper()
	for i := 0; time.Duration(i)*step < span; i++ {
		c := who(i)
		_, page := get(t, c, h.BaseURL+"/console/login")
		tok := tokenRe.FindStringSubmatch(page)[1]
		resp, err := c.PostForm(h.BaseURL+"/console/login", url.Values{"token": {tok}, "user": {"koordinator"}, "password": {"guess-" + strconv.Itoa(i)}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusUnauthorized:
			checked++
		case http.StatusTooManyRequests:
			throttled++
			if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 {
				t.Fatalf("429 with Retry-After %q", resp.Header.Get("Retry-After"))
			}
		default:
			t.Fatalf("attempt %d: status %d", i, resp.StatusCode)
		}
		clk.Add(step)
	}
	return checked, throttled
}

// One address guessing a user's password is slowed (a doubling wait after
// five failures), while the user logs in at once from another address; the
// throttling is audited once per wait, not once per refused attempt.
func TestLoginThrottleSlowsTheAttackerNotTheUser(t *testing.T) {
	h, clk := behindProxy(t)
	attacker := from(t, "198.51.100.7")
	// An attempt every 2 s for 10 minutes: 300 tries.
	checked, throttled := attempts(t, h, clk, 10*time.Minute, 2*time.Second, func(int) *http.Client { return attacker })
	t.Logf("one address, 10 minutes: %d attempts checked, %d throttled", checked, throttled)
	if checked < 5 || checked > 15 {
		t.Errorf("%d of %d attempts from one address were checked in 10 minutes; want 5 free plus one per doubling wait (at most 15)", checked, checked+throttled)
	}
	if st := tryLogin(t, h, from(t, "192.0.2.10"), "koordinator", hubtest.CoordinatorPassword); st != http.StatusSeeOther {
		t.Fatalf("the real user from another address: %d, want 303 at once", st)
	}
	recs := auditRecords(t, h)
	failed, throttledRecs := 0, 0
	for _, r := range recs {
		switch r.Action {
		case "login-failed":
			failed++
		case "login-throttled":
			throttledRecs++
			if r.Remote != "198.51.100.7" || r.Actor != "koordinator" || !strings.Contains(r.Reason, "this address") {
				t.Errorf("throttle record %+v: want the attacker's address, the user and the scope", r)
			}
		}
	}
	if failed != checked || throttledRecs < 1 || throttledRecs > checked {
		t.Errorf("audit: %d login-failed and %d login-throttled records for %d checked and %d throttled attempts; want %d and between 1 and %d",
			failed, throttledRecs, checked, throttled, checked, checked)
	}
	if r, ok := findAudit(recs, "login", "koordinator"); !ok || r.Remote != "192.0.2.10" {
		t.Errorf("login record %+v: want the client's address from X-Forwarded-For", r)
	}
	_, metrics := get(t, client(t), h.BaseURL+"/metrics")
	if want := `samhub_auth_throttled_total{scope="source",surface="console"} ` + strconv.Itoa(throttled); !strings.Contains(metrics, want) {
		t.Errorf("metrics lack %q", want)
	}
}

// Guesses against one name from ever new addresses slow that name, but not
// for the browser the user logged in with before; a new browser waits at
// most five minutes, which is a delay, not a lockout.
func TestLoginThrottleKeepsTheUsersBrowser(t *testing.T) {
	h, clk := behindProxy(t)
	browser := from(t, "192.0.2.10")
	if st := tryLogin(t, h, browser, "koordinator", hubtest.CoordinatorPassword); st != http.StatusSeeOther {
		t.Fatalf("first login: %d", st)
	}
	if st, _, _ := post(t, browser, h.BaseURL+"/console/logout", url.Values{"csrf": {csrfOf(t, browser, h)}}); st != http.StatusSeeOther {
		t.Fatalf("logout: %d", st)
	}
	checked, throttled := attempts(t, h, clk, 10*time.Minute, 2*time.Second, func(i int) *http.Client {
		return from(t, fmt.Sprintf("10.7.%d.%d", i/250, i%250+1))
	})
	t.Logf("many addresses, 10 minutes: %d attempts checked, %d throttled", checked, throttled)
	if checked < 10 || checked > 21 {
		t.Errorf("%d of %d attempts on one name from many addresses were checked in 10 minutes; want 10 free plus one per doubling wait (at most 21)", checked, checked+throttled)
	}
	// The user's own browser, now on another network, logs in at once.
	browser.Transport = forwardedFor{"203.0.113.5"}
	if st := tryLogin(t, h, browser, "koordinator", hubtest.CoordinatorPassword); st != http.StatusSeeOther {
		t.Fatalf("the user's browser: %d, want 303 at once", st)
	}
	// A browser that never logged in waits for the name, at most 5 minutes.
	fresh := from(t, "203.0.113.6")
	_, page := get(t, fresh, h.BaseURL+"/console/login")
	resp, err := fresh.PostForm(h.BaseURL+"/console/login", url.Values{"token": {tokenRe.FindStringSubmatch(page)[1]}, "user": {"koordinator"}, "password": {hubtest.CoordinatorPassword}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ra, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	if resp.StatusCode != http.StatusTooManyRequests || ra < 1 || ra > 300 {
		t.Fatalf("a new browser: %d with Retry-After %q, want 429 and at most 300 s", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	clk.Add(time.Duration(ra) * time.Second)
	if st := tryLogin(t, h, fresh, "koordinator", hubtest.CoordinatorPassword); st != http.StatusSeeOther {
		t.Fatalf("the new browser after waiting %d s: %d, want 303", ra, st)
	}
}

// Unknown names from many addresses at once are held to the global rate.
func TestLoginGlobalRateLimit(t *testing.T) {
	h, _ := behindProxy(t)
	checked, throttled := 0, 0
	for i := range 40 {
		c := from(t, fmt.Sprintf("10.9.0.%d", i+1))
		switch st := tryLogin(t, h, c, "name-"+strconv.Itoa(i), "x"); st {
		case http.StatusUnauthorized:
			checked++
		case http.StatusTooManyRequests:
			throttled++
		default:
			t.Fatalf("status %d", st)
		}
	}
	// The clock stands still: the burst (20) and nothing more.
	if checked != console.LoginThrottle.Burst || throttled != 40-console.LoginThrottle.Burst {
		t.Errorf("%d checked, %d throttled of 40 at one instant; want %d and %d", checked, throttled, console.LoginThrottle.Burst, 40-console.LoginThrottle.Burst)
	}
	n := 0
	for _, r := range auditRecords(t, h) {
		if r.Action == "login-throttled" {
			n++
			if r.Actor != "unknown-user" || !strings.Contains(r.Reason, "all addresses together") {
				t.Errorf("record %+v: want unknown-user and the global scope", r)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d login-throttled records for one global throttling, want 1", n)
	}
}

// clock is a settable time for login throttling and session expiry.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestIdleSessionsExpire(t *testing.T) {
	clk := &clock{t: time.Now()}
	h := hubtest.Start(t, func(h *hubtest.Hub) {
		hubtest.WithMount(console.MountWith(h.Config.Console, console.Options{Now: clk.Now}))(h)
	})
	c := client(t)
	if st := tryLogin(t, h, c, "koordinator", hubtest.CoordinatorPassword); st != http.StatusSeeOther {
		t.Fatalf("login: %d, want 303", st)
	}
	if st, _ := get(t, c, h.BaseURL+"/console/queue"); st != http.StatusOK {
		t.Fatalf("queue after login: %d", st)
	}
	clk.Add(29 * time.Minute) // used within the idle timeout: still logged in
	if st, _ := get(t, c, h.BaseURL+"/console/queue"); st != http.StatusOK {
		t.Fatalf("after 29 idle minutes: %d", st)
	}
	clk.Add(31 * time.Minute)
	resp, err := c.Get(h.BaseURL + "/console/queue")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/console/login") {
		t.Fatalf("after 31 idle minutes: %d to %q, want 303 to the login page", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestSessionCookieFlags(t *testing.T) {
	for _, secure := range []bool{false, true} {
		t.Run("secure="+strconv.FormatBool(secure), func(t *testing.T) {
			h := hubtest.Start(t, func(h *hubtest.Hub) {
				hubtest.WithMount(console.MountWith(h.Config.Console, console.Options{SecureCookies: secure}))(h)
			})
			c := client(t)
			_, page := get(t, c, h.BaseURL+"/console/login")
			tok := tokenRe.FindStringSubmatch(page)[1]
			resp, err := c.PostForm(h.BaseURL+"/console/login", url.Values{"token": {tok}, "user": {"koordinator"}, "password": {hubtest.CoordinatorPassword}})
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			var ses *http.Cookie
			for _, ck := range resp.Cookies() {
				if ck.Name == "samhub_console" {
					ses = ck
				}
			}
			if ses == nil {
				t.Fatal("no session cookie")
			}
			if !ses.HttpOnly || ses.SameSite != http.SameSiteStrictMode || ses.Path != "/console/" || ses.Secure != secure {
				t.Errorf("cookie %+v: want HttpOnly, SameSite=Strict, Path=/console/, Secure=%v", ses, secure)
			}
			if len(ses.Value) < 43 { // 256 bits in base64
				t.Errorf("session id %d characters, want at least 43", len(ses.Value))
			}
			if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
				t.Errorf("CSP %q", csp)
			}
			if hsts := resp.Header.Get("Strict-Transport-Security"); (hsts != "") != secure {
				t.Errorf("Strict-Transport-Security %q with secure cookies %v: want it exactly when secure", hsts, secure)
			}
		})
	}
}

func TestPagesCheckTheRoleOnTheServer(t *testing.T) {
	h := startHub(t)
	type user struct{ name, pw string }
	users := map[string]user{
		"coordinator": {"koordinator", hubtest.CoordinatorPassword},
		"operations":  {"drift", hubtest.OperationsPassword},
		"auditor":     {"revisor", hubtest.AuditorPassword},
	}
	clients, tokens := map[string]*http.Client{}, map[string]string{}
	for role, u := range users {
		clients[role], tokens[role] = login(t, h, u.name, u.pw)
	}
	ok := http.StatusOK
	pages := []struct {
		method, path string
		want         map[string]int // role → status; missing roles get 403
	}{
		{"GET", "/console/overview", map[string]int{"coordinator": ok, "operations": ok}},
		{"GET", "/console/queue", map[string]int{"coordinator": ok}},
		{"GET", "/console/letters/no-such-letter", map[string]int{"coordinator": http.StatusNotFound}},
		{"GET", "/console/search", map[string]int{"coordinator": ok}},
		{"GET", "/console/consents", map[string]int{"coordinator": ok}},
		{"GET", "/console/audit", map[string]int{"auditor": ok}},
		{"GET", "/console/rejected", map[string]int{"coordinator": ok, "operations": ok}},
		{"POST", "/console/rejected", map[string]int{"coordinator": http.StatusSeeOther}},
		{"POST", "/console/queue", map[string]int{"coordinator": http.StatusSeeOther}},
		{"POST", "/console/letters/no-such-letter/content", map[string]int{"coordinator": http.StatusNotFound}},
		{"POST", "/console/search/cpr", map[string]int{"coordinator": http.StatusBadRequest}},
		{"POST", "/console/consents", map[string]int{"coordinator": http.StatusBadRequest}},
		{"GET", "/console/queue/replay", map[string]int{"coordinator": ok}},
		{"POST", "/console/queue/replay", map[string]int{"coordinator": http.StatusSeeOther}},
		{"GET", "/console/queue/replays/no-such-replay", map[string]int{"coordinator": http.StatusNotFound}},
		{"GET", "/console/queue/release", map[string]int{"coordinator": ok}},
		{"POST", "/console/queue/release", map[string]int{"coordinator": http.StatusBadRequest}},
	}
	for _, p := range pages {
		for _, role := range []string{"coordinator", "operations", "auditor", "anonymous"} {
			want, listed := p.want[role]
			if !listed {
				want = http.StatusForbidden
			}
			c := clients[role]
			if role == "anonymous" {
				c, want = client(t), http.StatusSeeOther
			}
			var st int
			var body, loc string
			if p.method == "GET" {
				resp, err := c.Get(h.BaseURL + p.path)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				st, loc = resp.StatusCode, resp.Header.Get("Location")
			} else {
				st, body, loc = post(t, c, h.BaseURL+p.path, url.Values{"csrf": {tokens[role]}})
			}
			if st != want {
				t.Errorf("%s %s as %s: %d, want %d", p.method, p.path, role, st, want)
			}
			if role == "anonymous" && !strings.HasPrefix(loc, "/console/login") {
				t.Errorf("%s %s anonymous: redirected to %q, want the login page", p.method, p.path, loc)
			}
			if st == http.StatusForbidden && p.method == "POST" && !strings.Contains(body, "may not see this page") {
				t.Errorf("%s %s as %s: 403 page does not explain", p.method, p.path, role)
			}
		}
	}
}

func TestFormsNeedTheSessionsCSRFToken(t *testing.T) {
	h := startHub(t)
	e := parkLetter(t, h)
	c, csrf := login(t, h, "koordinator", hubtest.CoordinatorPassword)
	seq := strconv.FormatUint(e.Seq, 10)
	form := func(tok string) url.Values {
		return url.Values{"csrf": {tok}, "seq": {seq}, "action": {"discard"}, "reason": {"duplicate of an earlier letter"}}
	}
	for name, tok := range map[string]string{"missing": "", "wrong": csrf[:len(csrf)-2] + "xx"} {
		st, body, _ := post(t, c, h.BaseURL+"/console/queue", form(tok))
		if st != http.StatusForbidden || !strings.Contains(body, "The form expired") {
			t.Errorf("%s CSRF token: %d", name, st)
		}
	}
	// A form too large for the hub says so, not that it expired.
	huge := form(csrf)
	huge.Set("reason", strings.Repeat("x", 1<<20))
	if st, body, _ := post(t, c, h.BaseURL+"/console/queue", huge); st != http.StatusRequestEntityTooLarge || !strings.Contains(body, "a reason takes at most 500 characters") {
		t.Errorf("a form of more than 1 MiB: %d", st)
	}
	// A token from another user's session is no good either.
	_, other := login(t, h, "koordinator", hubtest.CoordinatorPassword)
	if st, _, _ := post(t, c, h.BaseURL+"/console/queue", form(other)); st != http.StatusForbidden {
		t.Errorf("another session's token: %d", st)
	}
	// A cross-site post is refused before the token is looked at.
	req, _ := http.NewRequest("POST", h.BaseURL+"/console/queue", strings.NewReader(form(csrf).Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site post: %d", resp.StatusCode)
	}
	if _, _, err := h.App.Hub.Queue().Get(context.Background(), e.Seq); err != nil {
		t.Fatal("a refused form changed the queue")
	}
	// Login without the login form's cookie is refused (login CSRF).
	if st, _, _ := post(t, client(t), h.BaseURL+"/console/login", url.Values{"token": {"guess"}, "user": {"koordinator"}, "password": {hubtest.CoordinatorPassword}}); st != http.StatusForbidden {
		t.Errorf("login without the form's cookie: %d", st)
	}
	// With the right token the discard happens and is audited.
	st, _, loc := post(t, c, h.BaseURL+"/console/queue", form(csrf))
	if st != http.StatusSeeOther || loc != "/console/queue" {
		t.Fatalf("discard: %d %q", st, loc)
	}
	if _, page := get(t, c, h.BaseURL+"/console/queue"); !strings.Contains(page, "Discarded 1 letter") {
		t.Error("no confirmation after the discard")
	}
	if r, ok := findAudit(auditRecords(t, h), "discard", "koordinator"); !ok || r.Reason != "duplicate of an earlier letter" || !strings.Contains(r.Target, "parked:"+seq) {
		t.Errorf("discard record %+v (found %v)", r, ok)
	}
	// A second action on the same entry explains that it is gone.
	post(t, c, h.BaseURL+"/console/queue", form(csrf))
	if _, page := get(t, c, h.BaseURL+"/console/queue"); !strings.Contains(page, "no longer in the queue") {
		t.Error("no explanation for an entry that is gone")
	}
}

func TestReplayFromTheConsoleIsAudited(t *testing.T) {
	h := startHub(t)
	e := parkLetter(t, h)
	c, csrf := login(t, h, "koordinator", hubtest.CoordinatorPassword)
	seq := strconv.FormatUint(e.Seq, 10)
	// Without a reason nothing happens.
	post(t, c, h.BaseURL+"/console/queue", url.Values{"csrf": {csrf}, "seq": {seq}, "action": {"replay"}})
	if _, page := get(t, c, h.BaseURL+"/console/queue"); !strings.Contains(page, "Write a reason.") {
		t.Error("no message for a missing reason")
	}
	post(t, c, h.BaseURL+"/console/queue", url.Values{"csrf": {csrf}, "seq": {seq}, "action": {"replay"}, "reason": {"case reopened"}})
	r, ok := findAudit(auditRecords(t, h), "replay", "koordinator")
	if !ok || r.Reason != "case reopened" || r.Role != "coordinator" || r.Remote == "" {
		t.Fatalf("replay record %+v (found %v)", r, ok)
	}
	n := 0
	for _, r := range auditRecords(t, h) {
		if r.Action == "replay" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d replay records, want 1", n)
	}
}

func TestSearchConsentAndShowContentAreAudited(t *testing.T) {
	h := startHub(t)
	e := parkLetter(t, h)
	c, csrf := login(t, h, "koordinator", hubtest.CoordinatorPassword)
	ctx := context.Background()
	token := "patient:" + broker.Token("patient:"+fixtureCPR)

	// CPR search: refused without a reason or with a malformed number.
	st, body, _ := post(t, c, h.BaseURL+"/console/search/cpr", url.Values{"csrf": {csrf}, "cpr": {"25094799"}, "reason": {""}})
	if st != http.StatusBadRequest {
		t.Fatalf("bad CPR search: %d", st)
	}
	mustContain(t, "bad CPR search", body, "CPR number: must be 10 characters", "Write why you are searching.")
	// A proper search finds the parked letter and is audited by token.
	st, body, _ = post(t, c, h.BaseURL+"/console/search/cpr", url.Values{"csrf": {csrf}, "cpr": {"250947-9989"}, "reason": {"mother called about her son"}})
	if st != http.StatusOK {
		t.Fatalf("CPR search: %d", st)
	}
	mustContain(t, "CPR search", body, e.LetterID, "No consent is recorded", `id="letters"`, "Letters (last 90 days)")
	if strings.Contains(body, fixtureCPR) || strings.Contains(body, "250947-9989") {
		t.Error("the result page repeats the CPR number")
	}
	r, ok := findAudit(auditRecords(t, h), "search-cpr", "koordinator")
	if !ok || r.Target != token || r.Reason != "mother called about her son" {
		t.Errorf("search-cpr record %+v (found %v), want target %s", r, ok, token)
	}

	// Recording consent through the console.
	st, _, loc := post(t, c, h.BaseURL+"/console/consents", url.Values{"csrf": {csrf}, "patient": {fixtureCPR}, "givenBy": {"custody-holder"}, "form": {"written"},
		"givenAt": {"2026-03-04"}, "scope": {"municipality", "gp"}, "reason": {"signed form received"}})
	if st != http.StatusSeeOther || loc != "/console/consents" {
		t.Fatalf("record consent: %d %q", st, loc)
	}
	rec, err := h.App.Hub.RecordedConsent(ctx, fixtureCPR)
	if err != nil || rec == nil || len(rec.Scopes) != 2 || rec.GivenAt.Format("2006-01-02") != "2026-03-04" {
		t.Fatalf("recorded consent %+v, %v", rec, err)
	}
	if r, ok := findAudit(auditRecords(t, h), "consent-record", "koordinator"); !ok || r.Target != token || r.Reason != "signed form received" {
		t.Errorf("consent-record record %+v (found %v)", r, ok)
	}
	// The CPR search now shows the consent.
	_, body, _ = post(t, c, h.BaseURL+"/console/search/cpr", url.Values{"csrf": {csrf}, "cpr": {fixtureCPR}, "reason": {"check consent"}})
	mustContain(t, "CPR search after consent", body, "Recorded consent", "the municipality", "the GP")
	if st, _, _ := post(t, c, h.BaseURL+"/console/consents", url.Values{"csrf": {csrf}, "patient": {fixtureCPR}, "scope": {"everyone"}, "reason": {"x"}}); st != http.StatusBadRequest {
		t.Errorf("unknown scope: %d", st)
	}

	// Search by letter id goes to the journey; by thread lists the parked letter.
	resp, err := c.Get(h.BaseURL + "/console/search?by=letter&q=" + url.QueryEscape(e.LetterID))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/letters/"+url.PathEscape(e.LetterID) {
		t.Errorf("search by letter id: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	tr, err := h.App.Hub.TraceLetter(ctx, e.LetterID)
	if err != nil {
		t.Fatal(err)
	}
	thread := tr.Letter.ThreadID
	if thread == "" {
		thread = tr.Letter.ID
	}
	_, body = get(t, c, h.BaseURL+"/console/search?by=thread&q="+url.QueryEscape(thread))
	mustContain(t, "search by thread", body, "Parked letters in this thread", e.LetterID)
	_, body = get(t, c, h.BaseURL+"/console/search?by=letter&q=nothing-like-this")
	mustContain(t, "search for an unknown letter", body, "Nothing found.")

	// Show content: refused without a reason (and not audited), then shown and audited.
	journey := h.BaseURL + "/console/letters/" + url.PathEscape(e.LetterID)
	_, body = get(t, c, journey)
	if strings.Contains(body, fixtureText) || strings.Contains(body, fixtureCPR) {
		t.Fatal("the journey shows content before an explicit show")
	}
	st, body, _ = post(t, c, journey+"/content", url.Values{"csrf": {csrf}, "reason": {"  "}})
	if st != http.StatusBadRequest || strings.Contains(body, fixtureText) {
		t.Fatalf("show without a reason: %d", st)
	}
	if _, ok := findAudit(auditRecords(t, h), "show-content", ""); ok {
		t.Fatal("a refused show was audited as a view")
	}
	st, body, _ = post(t, c, journey+"/content", url.Values{"csrf": {csrf}, "reason": {"preparing the council meeting"}})
	if st != http.StatusOK {
		t.Fatalf("show content: %d", st)
	}
	mustContain(t, "content", body, fixtureText, fixtureCPR, "Henvisning til samråd – æøå ÆØÅ", "recorded in the audit log")
	if r, ok := findAudit(auditRecords(t, h), "show-content", "koordinator"); !ok || r.Target != "letter:"+e.LetterID || r.Reason != "preparing the council meeting" {
		t.Errorf("show-content record %+v (found %v)", r, ok)
	}
	// A CPR typed into a reason does not reach the audit log.
	post(t, c, journey+"/content", url.Values{"csrf": {csrf}, "reason": {"about 2509479989"}})
	for _, r := range auditRecords(t, h) {
		if strings.Contains(r.Reason+r.Target, fixtureCPR) {
			t.Errorf("audit record holds a CPR: %+v", r)
		}
	}
}

func TestDanishConsole(t *testing.T) {
	h := startHub(t, hubtest.WithConfig(func(c *config.Config) { c.Console.Language = "da" }))
	e := parkLetter(t, h)
	_, page := get(t, client(t), h.BaseURL+"/console/login")
	mustContain(t, "login", page, `lang="da"`, "Log ind", "Adgangskode")
	c, _ := login(t, h, "koordinator", hubtest.CoordinatorPassword)
	_, page = get(t, c, h.BaseURL+"/console/queue")
	mustContain(t, "queue", page, "Fejlkø", "Det modtagende system afviste brevet som ugyldigt.", "Send valgte igen", "Kassér valgte", "henvisning", e.LetterID)
	_, page = get(t, c, h.BaseURL+"/console/audit")
	mustContain(t, "403", page, "Din rolle må ikke se denne side.")
}

func TestConsoleRefusesBadConfiguration(t *testing.T) {
	h := hubtest.Start(t)
	for _, tc := range []struct {
		cfg  config.Console
		want string
	}{
		{config.Console{Language: "sv"}, "console.language"},
		{config.Console{TimeZone: "Europe/Kobenhavn"}, "console.time_zone"},
		{config.Console{Users: []config.User{{Name: "x", Role: "admin"}}}, "console.users[0].role"},
		{config.Console{Users: []config.User{{Name: "x", Role: "coordinator", PasswordHash: "plain-text"}}}, "console.users[0].password_hash"},
	} {
		_, err := console.New(h.App.HTTP, tc.cfg, console.Options{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("config %+v: error %v, want one naming %s", tc.cfg, err, tc.want)
		}
	}
}
