package console_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/samhub/samhub/internal/console"
	"github.com/samhub/samhub/internal/hubtest"
	"github.com/samhub/samhub/pipeline/audit"
	"github.com/samhub/samhub/pipeline/retryq"
)

// The fixture letter is about MedCom's test person Bruno Test Elmer.
const (
	fixtureCPR  = "2509479989"
	fixtureText = "Drengen går i 3. klasse"
)

// startHub starts a whole hub with the console mounted, configured from the
// hub's own console section as cmd/samhub does.
func startHub(t *testing.T, opts ...hubtest.Option) *hubtest.Hub {
	t.Helper()
	mount := func(h *hubtest.Hub) { hubtest.WithMount(console.Mount(h.Config.Console))(h) }
	return hubtest.Start(t, append(opts, mount)...)
}

// parkLetter makes the case system refuse everything, drops the fixture
// letter and waits until it is parked; then the case system works again.
func parkLetter(t *testing.T, h *hubtest.Hub) retryq.Entry {
	t.Helper()
	data, err := os.ReadFile("../../testdata/medcom/samhub/letter-utf8.xml")
	if err != nil {
		t.Fatal(err)
	}
	h.CaseSys.FailNext(1000, http.StatusBadRequest, 0)
	h.Drop("letter-utf8.xml", data)
	var got []retryq.Entry
	h.Eventually("the letter parked", func() bool {
		got, _ = h.App.Hub.Queue().List(context.Background(), retryq.Filter{})
		return len(got) > 0
	})
	h.CaseSys.ResetFaults()
	return got[0]
}

// client is a cookie-keeping HTTP client that does not follow redirects,
// so tests see the 303s the console answers with.
func client(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

var (
	tokenRe = regexp.MustCompile(`name="token" value="([^"]+)"`)
	csrfRe  = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
)

func get(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func post(t *testing.T, c *http.Client, u string, form url.Values) (int, string, string) {
	t.Helper()
	resp, err := c.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header.Get("Location")
}

// tryLogin posts the login form and returns the status.
func tryLogin(t *testing.T, h *hubtest.Hub, c *http.Client, user, pw string) int {
	t.Helper()
	_, page := get(t, c, h.BaseURL+"/console/login")
	m := tokenRe.FindStringSubmatch(page)
	if m == nil {
		t.Fatal("login page has no token field")
	}
	st, _, _ := post(t, c, h.BaseURL+"/console/login", url.Values{"token": {m[1]}, "user": {user}, "password": {pw}})
	return st
}

// login returns a logged-in client and its CSRF token.
func login(t *testing.T, h *hubtest.Hub, user, pw string) (*http.Client, string) {
	t.Helper()
	c := client(t)
	if st := tryLogin(t, h, c, user, pw); st != http.StatusSeeOther {
		t.Fatalf("login as %s: status %d, want 303", user, st)
	}
	return c, csrfOf(t, c, h)
}

func csrfOf(t *testing.T, c *http.Client, h *hubtest.Hub) string {
	t.Helper()
	_, page := get(t, c, h.BaseURL+"/console/")
	// "/console/" redirects; the logout form on any page carries the token.
	if m := csrfRe.FindStringSubmatch(page); m != nil {
		return m[1]
	}
	for _, p := range []string{"/console/overview", "/console/audit"} {
		if _, page := get(t, c, h.BaseURL+p); csrfRe.MatchString(page) {
			return csrfRe.FindStringSubmatch(page)[1]
		}
	}
	t.Fatal("no CSRF token on the console's pages")
	return ""
}

// auditRecords returns the audit log.
func auditRecords(t *testing.T, h *hubtest.Hub) []audit.Record {
	t.Helper()
	recs, err := h.App.Hub.Audit().Tail(context.Background(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func findAudit(recs []audit.Record, action, actor string) (audit.Record, bool) {
	for i := len(recs) - 1; i >= 0; i-- {
		if recs[i].Action == action && (actor == "" || recs[i].Actor == actor) {
			return recs[i], true
		}
	}
	return audit.Record{}, false
}

func mustContain(t *testing.T, what, body string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(body, p) {
			t.Errorf("%s: missing %q", what, p)
		}
	}
}
