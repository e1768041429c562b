package console_test

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/samhub/samhub/internal/config"
	"github.com/samhub/samhub/internal/console"
	"github.com/samhub/samhub/internal/hubtest"
	"github.com/samhub/samhub/pipeline"
	"github.com/samhub/samhub/pipeline/council"
	"github.com/samhub/samhub/pipeline/letter"
	"github.com/samhub/samhub/pipeline/retryq"
)

var (
	hiddenRe  = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
	detailRe  = regexp.MustCompile(`(?s)<details\b.*?</details>|<code\b.*?</code>|<script\b.*?</script>`)
	tagRe     = regexp.MustCompile(`<[^>]+>`)
	spaceRe   = regexp.MustCompile(`\s+`)
	formatArg = regexp.MustCompile(`%[sdqv]`)
)

// visible is the text a reader sees on a page, without the technical
// details (adapter reasons, codes) that are shown to operations as they are.
func visible(page string) string {
	page = detailRe.ReplaceAllString(page, " ")
	return spaceRe.ReplaceAllString(html.UnescapeString(tagRe.ReplaceAllString(page, " ")), " ")
}

// previewForm opens a bulk replay's preview and returns its form fields.
func previewForm(t *testing.T, c *http.Client, h *hubtest.Hub, query string) url.Values {
	t.Helper()
	st, page := get(t, c, h.BaseURL+"/console/queue/replay?"+query)
	if st != http.StatusOK {
		t.Fatalf("preview %s: %d", query, st)
	}
	form := url.Values{}
	for _, m := range hiddenRe.FindAllStringSubmatch(page, -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	if form.Get("request") == "" || form.Get("upTo") == "" {
		t.Fatalf("the preview has no replay form:\n%s", visible(page))
	}
	return form
}

// The replay by filter from the console: the form sent twice starts one
// replay and both answers lead to it; without a reason nothing starts.
func TestBulkReplayFromTheConsole(t *testing.T) {
	h := startHub(t)
	blocker := heldPair(t, h)
	h.ParkCopies(blocker, "casefile", "case_closed", 120)
	c, csrf := login(t, h, "koordinator", hubtest.CoordinatorPassword)
	// A page number far past the end says so, whatever its size.
	_, page := get(t, c, h.BaseURL+"/console/queue?page=9223372036854775807")
	if !strings.Contains(page, "This page is past the end of the list.") || strings.Contains(page, "Showing -") {
		t.Error("a huge page number is not past the end")
	}

	form := previewForm(t, c, h, "destination=casefile&code=case_closed")
	if form.Get("csrf") != csrf || form.Get("destination") != "casefile" || form.Get("code") != "case_closed" {
		t.Fatalf("the preview's form %v", form)
	}
	// New letters parked after the preview are not replayed with it.
	h.ParkCopies(blocker, "casefile", "case_closed", 5)
	if st, body, _ := post(t, c, h.BaseURL+"/console/queue/replay", form); st != http.StatusBadRequest || !strings.Contains(body, "Write a reason.") {
		t.Fatalf("without a reason: %d", st)
	}
	form.Set("reason", "the cases were reopened")
	st1, _, loc1 := post(t, c, h.BaseURL+"/console/queue/replay", form)
	st2, _, loc2 := post(t, c, h.BaseURL+"/console/queue/replay", form)
	if st1 != http.StatusSeeOther || st2 != http.StatusSeeOther || loc1 != loc2 || !strings.HasPrefix(loc1, "/console/queue/replays/") {
		t.Fatalf("the form sent twice: %d %q, %d %q", st1, loc1, st2, loc2)
	}
	h.Eventually("the replay done", func() bool {
		_, page = get(t, c, h.BaseURL+loc1)
		return strings.Contains(page, `class="state-done"`)
	})
	mustContain(t, "progress page", visible(page), "Done", "Letters to send again 120", "Sent again 120", "the cases were reopened", "destination casefile")
	if strings.Contains(page, `http-equiv="refresh"`) {
		t.Error("a finished replay's page still reloads itself")
	}
	list, err := h.App.Hub.BulkReplays(context.Background())
	if err != nil || len(list) != 1 || list[0].Replayed != 120 {
		t.Fatalf("replays %+v, %v", list, err)
	}
	if c, _ := h.App.Hub.Queue().Count(context.Background(), retryq.Filter{Code: "case_closed"}); c.Total != 5 {
		t.Errorf("%d case_closed letters left parked, want the 5 parked after the preview", c.Total)
	}
	// A form whose request id was tampered with starts nothing.
	form.Set("request", "x")
	if st, _, loc := post(t, c, h.BaseURL+"/console/queue/replay", form); st != http.StatusSeeOther || !strings.HasPrefix(loc, "/console/queue/replay?") {
		t.Errorf("a bad request id: %d %q", st, loc)
	}
	if list, _ := h.App.Hub.BulkReplays(context.Background()); len(list) != 1 {
		t.Errorf("%d replays after a bad request id", len(list))
	}
}

// A running replay's page reloads itself; the queue page lists it.
func TestRunningReplayIsShown(t *testing.T) {
	h := startHub(t)
	blocker := heldPair(t, h)
	h.ParkCopies(blocker, "casefile", "unavailable", 1000)
	c, _ := login(t, h, "koordinator", hubtest.CoordinatorPassword)
	form := previewForm(t, c, h, "code=unavailable")
	form.Set("reason", "the case system is back")
	_, _, loc := post(t, c, h.BaseURL+"/console/queue/replay", form)
	_, page := get(t, c, h.BaseURL+loc)
	if strings.Contains(page, `class="state-running"`) {
		mustContain(t, "running page", page, `http-equiv="refresh" content="2"`, "<progress")
		_, q := get(t, c, h.BaseURL+"/console/queue")
		mustContain(t, "queue page", visible(q), "Replays of all that match", "Running")
	} else {
		t.Log("the replay ended before its page was read")
	}
	// The hub's stop at the test's end interrupts the replay between two
	// letters, if it still runs.
}

// Times show their zone: the configured one, Europe/Copenhagen by default.
func TestTimesShowTheirZone(t *testing.T) {
	for zone, want := range map[string]*regexp.Regexp{
		"":                 regexp.MustCompile(`\d\d:\d\d:\d\d (CET|CEST)`),
		"UTC":              regexp.MustCompile(`\d\d:\d\d:\d\d UTC`),
		"America/New_York": regexp.MustCompile(`\d\d:\d\d:\d\d (EST|EDT)`),
	} {
		t.Run(zone, func(t *testing.T) {
			h := startHub(t, hubtest.WithConfig(func(c *config.Config) {
				if zone != "" {
					c.Console.TimeZone = zone
				}
			}))
			e := parkLetter(t, h)
			c, _ := login(t, h, "koordinator", hubtest.CoordinatorPassword)
			_, page := get(t, c, h.BaseURL+"/console/queue")
			if !want.MatchString(page) {
				t.Errorf("the queue's times do not show %v", want)
			}
			name := zone
			if name == "" {
				name = "Europe/Copenhagen"
			}
			mustContain(t, "zone note", page, "Times are shown in the time zone "+name)
			loc, _ := time.LoadLocation(name)
			if !strings.Contains(page, e.ParkedAt.In(loc).Format("2006-01-02 15:04:05 MST")) {
				t.Errorf("the entry's time is not shown in %s", name)
			}
			_, page = get(t, c, h.BaseURL+"/console/letters/"+url.PathEscape(e.LetterID))
			if !want.MatchString(page) {
				t.Errorf("the journey's times do not show %v", want)
			}
		})
	}
}

// Every page of the Danish console reads in Danish: no English text of the
// catalogue appears on any of them (technical details and codes aside).
func TestDanishPagesAreDanish(t *testing.T) {
	h := startHub(t, hubtest.WithConfig(func(c *config.Config) { c.Console.Language = "da" }))
	ctx := context.Background()
	blocker := heldPair(t, h)
	copies := h.ParkCopies(blocker, "casefile", "unavailable", 30)
	h.ParkCopies(blocker, "region", "consent_missing", 3)
	h.ParkCopies(blocker, "casefile", "some_new_code", 2)
	c, csrf := login(t, h, "koordinator", hubtest.CoordinatorPassword)
	if err := h.App.Hub.RecordConsent(ctx, fixtureCPR, letter.Consent{GivenBy: "custody-holder", Form: "written", GivenAt: time.Now(), Scopes: []letter.Scope{letter.ScopeGP}}); err != nil {
		t.Fatal(err)
	}
	// A replay by filter, so the journey and the queue name one.
	form := previewForm(t, c, h, "code=unavailable")
	form.Set("reason", "systemet kører igen")
	_, _, bulk := post(t, c, h.BaseURL+"/console/queue/replay", form)
	h.Eventually("the replay done", func() bool {
		r, _ := h.App.Hub.BulkReplay(ctx, strings.TrimPrefix(bulk, "/console/queue/replays/"))
		return r.State == pipeline.BulkDone
	})
	h.Eventually("a copy delivered", func() bool {
		tr, _ := h.App.Hub.TraceLetter(ctx, copies[0])
		return tr != nil && len(tr.Steps) > 0 && tr.Steps[len(tr.Steps)-1].Step == "delivered"
	})
	held, _ := h.App.Hub.Queue().List(ctx, retryq.Filter{Code: pipeline.CodeThreadHeld})
	if len(held) != 1 {
		t.Fatalf("%d held letters", len(held))
	}
	release := "/console/queue/release?" + url.Values{"destination": {"casefile"}, "thread": {held[0].Thread}}.Encode()

	english := englishTexts()
	check := func(who, path, page string) {
		t.Helper()
		text := visible(page)
		for _, en := range english {
			if strings.Contains(text, en) {
				t.Errorf("%s %s shows English: %q", who, path, en)
			}
		}
		if !strings.Contains(page, `lang="da"`) {
			t.Errorf("%s %s is not marked Danish", who, path)
		}
	}
	for _, path := range []string{"/console/overview", "/console/queue", "/console/queue?code=thread_held", "/console/queue?page=9", "/console/queue?before=tomorrow",
		"/console/queue/replay?destination=casefile", bulk, release, "/console/letters/" + url.PathEscape(copies[0]), "/console/letters/" + url.PathEscape(held[0].LetterID),
		"/console/search", "/console/search?by=thread&q=" + url.QueryEscape(copies[1]), "/console/consents", "/console/rejected", "/console/no-such-page"} {
		_, page := get(t, c, h.BaseURL+path)
		check("coordinator", path, page)
	}
	// The council's pages, with the fixture letters' referrals seated.
	var refs []council.Child
	h.Eventually("the fixture referrals in the council's register", func() bool {
		refs = h.App.Hub.Council().Referrals(council.ReferralFilter{})
		return len(refs) > 0 && refs[0].Meeting != ""
	})
	meeting := "/console/meetings/" + refs[0].Meeting
	for _, path := range []string{"/console/meetings", meeting, "/console/meetings/2001-01-01", "/console/kpi", "/console/kpi?months=6", "/console/kpi?months=99"} {
		_, page := get(t, c, h.BaseURL+path)
		check("coordinator", path, page)
	}
	for _, p := range []struct {
		path string
		form url.Values
	}{
		{meeting + "/agenda", url.Values{"format": {"print"}, "reason": {"dagsorden"}}},
		{meeting + "/agenda", url.Values{"format": {"pdf"}}},
		{meeting + "/agenda", url.Values{"format": {"doc"}, "reason": {"x"}}},
		{meeting + "/move", url.Values{"at": {"i morgen"}}},
		{"/console/meetings", url.Values{"at": {"2001-01-01 10:00"}, "cap": {"0"}}},
	} {
		p.form.Set("csrf", csrf)
		_, page, _ := post(t, c, h.BaseURL+p.path, p.form)
		check("coordinator", p.path+" "+p.form.Encode(), page)
	}
	_, page, _ := post(t, c, h.BaseURL+"/console/search/cpr", url.Values{"csrf": {csrf}, "cpr": {fixtureCPR}, "reason": {"forældrene ringede"}})
	check("coordinator", "/console/search/cpr", page)
	_, page, _ = post(t, c, h.BaseURL+"/console/letters/"+url.PathEscape(copies[0])+"/content", url.Values{"csrf": {csrf}, "reason": {"tjek af henvisningen"}})
	check("coordinator", "content", page)
	_, page, _ = post(t, c, h.BaseURL+"/console/queue/release", url.Values{"csrf": {csrf}, "destination": {"casefile"}, "thread": {held[0].Thread}})
	check("coordinator", "release without a reason", page)
	for _, u := range []struct{ name, pw, path string }{{"drift", hubtest.OperationsPassword, "/console/overview"}, {"drift", hubtest.OperationsPassword, "/console/kpi"}, {"revisor", hubtest.AuditorPassword, "/console/audit"}} {
		oc, _ := login(t, h, u.name, u.pw)
		_, page := get(t, oc, h.BaseURL+u.path)
		check(u.name, u.path, page)
	}
	_, page = get(t, client(t), h.BaseURL+"/console/login")
	check("anonymous", "/console/login", page)
}

// englishTexts are the English texts of the catalogue that differ from
// their Danish, cut at their arguments, long enough not to be a name.
func englishTexts() []string {
	var out []string
	add := func(en, da string) {
		if en == da {
			return
		}
		for _, part := range formatArg.Split(en, -1) {
			if part = strings.TrimSpace(strings.Trim(part, "().:,")); len(part) >= 9 {
				out = append(out, part)
			}
		}
	}
	for _, m := range console.Catalogue() {
		add(m[0], m[1])
	}
	return out
}
