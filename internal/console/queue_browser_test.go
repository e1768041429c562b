package console_test

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/samhub/samhub/adapters/casesys"
	"github.com/samhub/samhub/internal/config"
	"github.com/samhub/samhub/internal/hubtest"
	"github.com/samhub/samhub/pipeline"
	"github.com/samhub/samhub/pipeline/retryq"
)

// screenshot saves the browser's view (the whole page with full) as name:
// under $SAMHUB_SCREENSHOTS when set (docs/screenshots for the operations
// guide), else in the test's temporary directory.
func screenshot(t *testing.T, ctx context.Context, name string, full bool) {
	t.Helper()
	dir := os.Getenv("SAMHUB_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	shoot := chromedp.CaptureScreenshot()
	if full {
		shoot = chromedp.FullScreenshot(100) // 100: PNG
	}
	shot, err := chromedp.Run(ctx, shoot)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), shot, 0o644); err != nil {
		t.Fatal(err)
	}
}

// heldPair parks two letters of one thread at the case file: the first
// refused, the second waiting behind it (thread_held). It returns the
// first's id.
func heldPair(t *testing.T, h *hubtest.Hub) string {
	t.Helper()
	h.CaseSys.FailNext(1000, http.StatusBadRequest, 0)
	for i, f := range []string{"letter-utf8.xml", "letter-iso-8859-1.xml"} {
		data, err := os.ReadFile(filepath.Join("../../testdata/medcom/samhub", f))
		if err != nil {
			t.Fatal(err)
		}
		h.Drop(f, data)
		h.Eventually(f+" parked", func() bool {
			c, _ := h.App.Hub.Queue().Count(context.Background(), retryq.Filter{})
			return c.Total == i+1
		})
	}
	h.CaseSys.ResetFaults()
	first, err := h.App.Hub.Queue().List(context.Background(), retryq.Filter{Limit: 1})
	if err != nil || len(first) != 1 {
		t.Fatalf("the first parked letter: %v", err)
	}
	return first[0].LetterID
}

var zoneAbbrev = regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (CET|CEST)`)

// TestBrowserQueueAtOutageScale drives the Danish console's retry queue
// with 10,000 parked letters in Chromium: the count, paging to the end,
// filters by destination, reason and age, a held thread shown and
// released, and "replay all that match" through its preview, double
// clicked, to its progress page.
func TestBrowserQueueAtOutageScale(t *testing.T) {
	ctx := browser(t)
	h := startHub(t, hubtest.WithConfig(func(c *config.Config) { c.Console.Language = "da" }))
	base := h.BaseURL
	blocker := heldPair(t, h)
	h.ParkCopies(blocker, "casefile", "unavailable", 9_700)
	cut := time.Now()
	time.Sleep(20 * time.Millisecond)
	closed := h.ParkCopies(blocker, "casefile", "case_closed", 250)
	h.ParkCopies(blocker, "region", "consent_missing", 48)
	docsBefore := len(h.CaseSys.Documents())

	browserLogin(t, ctx, base, "koordinator", hubtest.CoordinatorPassword)

	// The whole queue: counted, the first page of 50, 201 pages.
	do(t, ctx, "open the retry queue", chromedp.Navigate(base+"/console/queue"), chromedp.WaitVisible(chromedp.ID("queue")))
	mustContain(t, "queue count", text(t, ctx, "#queue-count"), "10.000 parkerede breve.", "Viser 1–50.")
	mustContain(t, "pager", text(t, ctx, "#pager"), "Side 1 af 200", "Næste", "Sidste")
	mustContain(t, "time zone", text(t, ctx, "#time-zone"), "Europe/Copenhagen")
	if rows := text(t, ctx, "#queue tbody"); !zoneAbbrev.MatchString(rows) {
		t.Errorf("the times carry no zone:\n%.300s", rows)
	}
	held := text(t, ctx, "#queue tbody tr:nth-child(2)")
	mustContain(t, "held row", held, "Venter på et tidligere brev i samme tråd.", "Det venter på brev", blocker, "Frigiv tråden")
	mustContain(t, "blocking row", text(t, ctx, "#queue tbody tr:nth-child(1)"), "Senere breve i tråden venter på dette.")
	screenshot(t, ctx, "queue-outage.png", false)

	// The last page: the end of the queue.
	do(t, ctx, "go to the last page", chromedp.Click(chromedp.ID("page-last")), chromedp.WaitVisible(chromedp.ID("page-of")))
	mustContain(t, "last page", text(t, ctx, "#page-of"), "Side 200 af 200")
	mustContain(t, "last page count", text(t, ctx, "#queue-count"), "Viser 9.951–10.000.")
	if n := countRows(t, ctx); n != 50 {
		t.Errorf("the last page has %d rows, want 50", n)
	}

	// Filter by destination and reason with the form.
	do(t, ctx, "filter",
		chromedp.Navigate(base+"/console/queue"), chromedp.WaitVisible(chromedp.ID("queue-filter")),
		chromedp.SetValue(chromedp.ID("f-destination"), "casefile"),
		chromedp.SetValue(chromedp.ID("f-code"), "case_closed"),
		chromedp.Click(chromedp.ID("filter")),
		chromedp.WaitVisible(chromedp.ID("filter-reset")), // only on a filtered page
	)
	mustContain(t, "filtered count", text(t, ctx, "#queue-count"), "250 parkerede breve passer på filteret.", "Viser 1–50.")
	mustContain(t, "filtered rows", text(t, ctx, "#queue tbody tr:nth-child(1)"), closed[0], "Barnets sag er lukket i sagssystemet.")
	mustContain(t, "code choices", text(t, ctx, "#f-code"), "case_closed (250)", "unavailable (9.700)", "thread_held (1)")
	screenshot(t, ctx, "queue-filtered.png", false)

	// By age: parked before a time typed into the zone's datetime field
	// (minutes only: two minutes after the last park) is everything; more
	// than an hour ago is nothing.
	local := time.Now().In(mustZone(t)).Add(2 * time.Minute)
	do(t, ctx, "filter by age",
		chromedp.Navigate(base+"/console/queue"), chromedp.WaitVisible(chromedp.ID("queue-filter")),
		chromedp.SetValue(chromedp.ID("f-before"), local.Format("2006-01-02T15:04")),
		chromedp.Click(chromedp.ID("filter")),
		chromedp.WaitVisible(chromedp.ID("filter-reset")),
	)
	mustContain(t, "parked before", text(t, ctx, "#queue-count"), "10.000 parkerede breve passer på filteret.")
	do(t, ctx, "older than an hour",
		chromedp.Navigate(base+"/console/queue"), chromedp.WaitVisible(chromedp.ID("queue-filter")),
		chromedp.SetValue(chromedp.ID("f-older"), "1"),
		chromedp.Click(chromedp.ID("filter")),
		chromedp.WaitVisible(chromedp.ID("queue-empty")),
	)
	mustContain(t, "older than an hour", text(t, ctx, "#queue-count"), "0 parkerede breve passer på filteret.")
	// The server's exact age filter, as the console's own links carry it.
	after := url.QueryEscape(cut.UTC().Format(time.RFC3339Nano))
	do(t, ctx, "parked after the cut", chromedp.Navigate(base+"/console/queue?after="+after), chromedp.WaitVisible(chromedp.ID("queue")))
	mustContain(t, "parked after", text(t, ctx, "#queue-count"), "298 parkerede breve passer på filteret.")

	// The held thread: its release page, a reason, released.
	do(t, ctx, "open the held letters",
		chromedp.Navigate(base+"/console/queue?code=thread_held"), chromedp.WaitVisible(chromedp.CSS("a.release")),
		chromedp.Click(chromedp.CSS("a.release")), chromedp.WaitVisible(chromedp.ID("release-form")),
	)
	mustContain(t, "release page", text(t, ctx, "main"), "1 senere brev(e) i tråden venter hos casefile på brev", blocker, "bliver i fejlkøen")
	screenshot(t, ctx, "queue-release.png", false)
	do(t, ctx, "release",
		chromedp.SendKeys(chromedp.ID("release-reason"), "det andet brev står for sig selv"),
		chromedp.Click(chromedp.ID("release-confirm")),
		chromedp.WaitVisible(chromedp.CSS(".flash")),
	)
	mustContain(t, "released", text(t, ctx, ".flash"), "Tråden er frigivet")
	h.Eventually("the held letter delivered", func() bool { return len(h.CaseSys.Documents()) == docsBefore+1 })

	// Replay all that match: the preview, a reason, and a double click.
	do(t, ctx, "preview",
		chromedp.Navigate(base+"/console/queue?destination=casefile&code=case_closed"), chromedp.WaitVisible(chromedp.ID("replay-all")),
		chromedp.Click(chromedp.ID("replay-all")), chromedp.WaitVisible(chromedp.ID("replay-form")),
	)
	mustContain(t, "preview", text(t, ctx, "main"), "250 parkerede breve bliver sendt igen", "modtager casefile", "årsag Barnets sag er lukket i sagssystemet – case_closed", "De første 10", closed[0], "Send 250 breve igen")
	mustContain(t, "preview per destination", text(t, ctx, "#preview-destinations"), "casefile", "250")
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#preview-first tbody tr').length`)); err != nil || n != 10 {
		t.Errorf("the preview lists %d letters (%v), want 10", n, err)
	}
	screenshot(t, ctx, "queue-replay-preview.png", true)
	// Without a reason nothing starts.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(function(){var f=document.getElementById('replay-form');f.querySelector('#replay-reason').removeAttribute('required');f.submit();return true;})()`)); err != nil {
		t.Fatal(err)
	}
	do(t, ctx, "the refusal", chromedp.WaitVisible(chromedp.CSS(".error")))
	mustContain(t, "no reason", text(t, ctx, ".error"), "Skriv en begrundelse.")
	if list, _ := h.App.Hub.BulkReplays(context.Background()); len(list) != 0 {
		t.Fatalf("a replay started without a reason: %+v", list)
	}
	do(t, ctx, "double click the confirmation",
		chromedp.SendKeys(chromedp.ID("replay-reason"), "sagsbehandleren har genåbnet sagerne"),
		chromedp.DoubleClick(chromedp.ID("replay-confirm")),
		chromedp.WaitVisible(chromedp.ID("bulk-progress")),
	)
	h.Eventually("the bulk replay done in the browser", func() bool {
		do(t, ctx, "reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("bulk-state")))
		return strings.Contains(text(t, ctx, "#bulk-state"), "Færdig")
	})
	mustContain(t, "progress page", text(t, ctx, "main"), "Færdig", "modtager casefile", "sagsbehandleren har genåbnet sagerne", "koordinator")
	mustContain(t, "replayed", text(t, ctx, "#bulk-replayed"), "250")
	screenshot(t, ctx, "queue-replay-done.png", false)
	list, err := h.App.Hub.BulkReplays(context.Background())
	if err != nil || len(list) != 1 || list[0].Planned != 250 || list[0].Replayed != 250 {
		t.Fatalf("bulk replays after a double click: %+v, %v", list, err)
	}
	started := 0
	for _, r := range auditRecords(t, h) {
		if r.Action == "replay-filter" && r.Result == "started" {
			started++
		}
	}
	if started != 1 {
		t.Errorf("%d replays by filter audited as started, want 1", started)
	}
	h.Eventually("each replayed letter in the case system once", func() bool { return len(h.CaseSys.Documents()) == docsBefore+1+250 })
	seen := map[string]int{}
	for _, d := range h.CaseSys.Documents() {
		seen[d.ExternalID]++
	}
	for _, id := range closed {
		if seen[casesys.DocumentExternalID(id)] != 1 {
			t.Fatalf("%s is in the case system %d times", id, seen[casesys.DocumentExternalID(id)])
		}
	}
	do(t, ctx, "back to the queue", chromedp.Click(chromedp.ID("bulk-back")), chromedp.WaitVisible(chromedp.ID("bulk-replays")))
	mustContain(t, "queue after", text(t, ctx, "#queue-count"), "9.749 parkerede breve.")
	mustContain(t, "recent replays", text(t, ctx, "#bulk-replays"), "Færdig", "250 af 250 sendt igen")
	if st, err := h.App.Hub.BulkReplay(context.Background(), list[0].ID); err != nil || st.State != pipeline.BulkDone {
		t.Fatalf("%+v %v", st, err)
	}
}

func countRows(t *testing.T, ctx context.Context) int {
	t.Helper()
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#queue tbody tr').length`))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func mustZone(t *testing.T) *time.Location {
	loc, err := time.LoadLocation("Europe/Copenhagen")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}
