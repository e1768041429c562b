package console_test

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/samhub/samhub/internal/hubtest"
)

const chromiumPath = "/usr/bin/chromium"

// browser starts headless Debian chromium for one test. Without chromium
// the test fails, never skips: make test installs it (make test-tools).
func browser(t *testing.T) context.Context {
	t.Helper()
	return browserWithin(t, 90*time.Second)
}

// browserWithin is browser for a test whose steps may take up to limit.
func browserWithin(t *testing.T, limit time.Duration) context.Context {
	t.Helper()
	if _, err := exec.LookPath(chromiumPath); err != nil {
		t.Fatalf("chromium is not installed at %s: apt-get install chromium (make test-tools does, as root)", chromiumPath)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelCtx := chromedp.NewContext(actx)
	// The first call starts the browser and ties it to bctx, which has no
	// deadline; the test's own steps run under a deadline derived from it.
	if err := chromedp.Do(bctx); err != nil {
		cancelCtx()
		cancelAlloc()
		t.Fatalf("start chromium: %v", err)
	}
	ctx, cancelTimeout := context.WithTimeout(bctx, limit)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	return ctx
}

func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("read %s: %v", sel, err)
	}
	return s
}

func browserLogin(t *testing.T, ctx context.Context, base, user, pw string) {
	t.Helper()
	do(t, ctx, "log in as "+user,
		chromedp.Navigate(base+"/console/login"),
		chromedp.WaitVisible(chromedp.ID("user")),
		chromedp.SendKeys(chromedp.ID("user"), user),
		chromedp.SendKeys(chromedp.ID("password"), pw),
		chromedp.Click(chromedp.ID("login-submit")),
		chromedp.WaitVisible(chromedp.ID("who")),
	)
}

// pageHTML opens u and returns the whole DOM as HTML.
func pageHTML(t *testing.T, ctx context.Context, u string) string {
	t.Helper()
	do(t, ctx, "open "+u, chromedp.Navigate(u), chromedp.WaitReady(chromedp.CSS("body")))
	html, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	if err != nil {
		t.Fatalf("read %s: %v", u, err)
	}
	return html
}

// TestBrowserCoordinatorReplaysAndOperationsSeesNoContent is the console's
// end-to-end test in a real browser.
func TestBrowserCoordinatorReplaysAndOperationsSeesNoContent(t *testing.T) {
	ctx := browser(t)
	h := startHub(t)
	e := parkLetter(t, h)
	base := h.BaseURL
	row := "#entry-" + strconv.FormatUint(e.Seq, 10)
	journeyURL := base + "/console/letters/" + url.PathEscape(e.LetterID)

	// The coordinator logs in and sees the parked letter with advice.
	browserLogin(t, ctx, base, "koordinator", hubtest.CoordinatorPassword)
	do(t, ctx, "open the retry queue", chromedp.Navigate(base+"/console/queue"), chromedp.WaitVisible(chromedp.CSS(row)))
	rowText := text(t, ctx, row)
	shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, "queue row", rowText, e.LetterID, "casefile", "rejected the letter as invalid", "Give operations the letter id")
	png := filepath.Join(os.TempDir(), "samhub-console-queue.png")
	if err := os.WriteFile(png, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the retry queue: %s", png)

	// "Select all" (the only script) ticks the row; replay with a reason.
	do(t, ctx, "replay",
		chromedp.Click(chromedp.ID("select-all")),
		chromedp.SendKeys(chromedp.ID("reason"), "case system fixed"),
		chromedp.Click(chromedp.ID("replay")),
		chromedp.WaitVisible(chromedp.CSS(".flash")),
	)
	flash := text(t, ctx, ".flash")
	if !strings.Contains(flash, "Replayed 1 letter") {
		t.Fatalf("after replay the page says %q", flash)
	}

	// The journey shows the delivery, with time and destination.
	var steps string
	h.Eventually("the journey shows the delivery", func() bool {
		do(t, ctx, "open the journey", chromedp.Navigate(journeyURL), chromedp.WaitVisible(chromedp.ID("steps")))
		steps = text(t, ctx, "#steps")
		return strings.Contains(steps, "delivered")
	})
	mustContain(t, "journey", steps, "received", "parked in the retry queue", "replayed", "delivered", "casefile", "koordinator", hubtest.Today())
	html := pageHTML(t, ctx, journeyURL)
	if strings.Contains(html, fixtureText) || strings.Contains(html, fixtureCPR) {
		t.Fatal("the journey shows letter content before an explicit show")
	}

	// "Show content" with a reason shows the letter, and is audited.
	do(t, ctx, "show content",
		chromedp.SendKeys(chromedp.ID("show-reason"), "checking the referral"),
		chromedp.Click(chromedp.ID("show")),
		chromedp.WaitVisible(chromedp.ID("content")),
	)
	content := text(t, ctx, "#content")
	mustContain(t, "content", content, fixtureText, fixtureCPR, "Bruno Test", "audit log")
	if r, ok := findAudit(auditRecords(t, h), "show-content", "koordinator"); !ok || r.Reason != "checking the referral" {
		t.Errorf("show-content audit record %+v, found %v", r, ok)
	}

	// The coordinator cannot reach the auditor's page.
	do(t, ctx, "open the audit page as coordinator", chromedp.Navigate(base+"/console/audit"), chromedp.WaitVisible(chromedp.ID("error-message")))
	msg := text(t, ctx, "#error-message")
	if !strings.Contains(msg, "may not see this page") {
		t.Fatalf("coordinator on /console/audit sees %q", msg)
	}
	if html := pageHTML(t, ctx, base+"/console/audit"); strings.Contains(html, `id="audit"`) {
		t.Fatal("the audit table was rendered for a coordinator")
	}

	// Log out; operations logs in and sees no letter content anywhere.
	do(t, ctx, "log out", chromedp.Click(chromedp.CSS("header form button")), chromedp.WaitVisible(chromedp.ID("login")))
	browserLogin(t, ctx, base, "drift", hubtest.OperationsPassword)
	secrets := []string{fixtureText, fixtureCPR, "Bruno Test", "Elmer", "Henvisning til samråd", "Kære samråd"}
	for _, p := range []string{"/console/", "/console/overview", "/console/queue", "/console/letters/" + url.PathEscape(e.LetterID), "/console/search", "/console/consents", "/console/audit"} {
		html := pageHTML(t, ctx, base+p)
		for _, s := range secrets {
			if strings.Contains(html, s) {
				t.Errorf("operations sees %q on %s", s, p)
			}
		}
	}
	html = pageHTML(t, ctx, base+"/console/overview")
	mustContain(t, "operations overview", html, `id="destinations"`, "casefile", `href="/metrics"`, `href="/readyz"`)
	// The show-content form posted by hand is refused for operations.
	do(t, ctx, "open the overview", chromedp.Navigate(base+"/console/overview"), chromedp.WaitVisible(chromedp.ID("destinations")))
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(function(){var f=document.createElement('form');f.method='post';f.action='/console/letters/`+url.PathEscape(e.LetterID)+`/content';
			var c=document.querySelector('input[name=csrf]').cloneNode();f.appendChild(c);var r=document.createElement('input');r.name='reason';r.value='curious';f.appendChild(r);document.body.appendChild(f);f.submit();return true;})()`)); err != nil {
		t.Fatal(err)
	}
	do(t, ctx, "wait for the answer", chromedp.WaitVisible(chromedp.ID("error-message")))
	after := text(t, ctx, "html")
	if !strings.Contains(after, "may not see this page") {
		t.Errorf("operations' show-content post was not refused: %s", after)
	}
	for _, s := range secrets {
		if strings.Contains(after, s) {
			t.Errorf("operations' show-content post revealed %q", s)
		}
	}
}
