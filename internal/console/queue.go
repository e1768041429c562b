package console

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/samhub/samhub/pipeline"
	"github.com/samhub/samhub/pipeline/broker"
	"github.com/samhub/samhub/pipeline/retryq"
	"github.com/samhub/samhub/pipeline/route"
)

// The retry queue page, a page at a time however long the queue: the hub
// filters and counts (retryq.Find), the page shows what matches and how
// many; "replay all that match" goes through a preview with a reason to a
// bulk replay whose progress page follows it; a letter waiting for an
// earlier one of its thread says which, and its thread can be released.

const (
	defaultQueueSize = 50
	previewFirst     = 10
	maxQueuePage     = 1 << 20
)

var (
	queueSizes = []int{20, 50, 100, 200}
	// olderThan are the "parked more than … ago" choices, in hours.
	olderThan = []int{1, 4, 24, 72, 168}
)

// queueForm is the queue page's filter as its form and links carry it.
// After and Before are what the coordinator typed (datetime-local, in the
// console's zone) or, in links the console makes, RFC 3339.
type queueForm struct {
	Destination, Code, Thread, ThreadToken string
	After, Before                          string
	Older                                  int // hours
	UpTo                                   uint64
	Page, Size                             int
}

func (c *Console) readQueueForm(q url.Values) (queueForm, retryq.Filter, []string) {
	f := queueForm{Destination: q.Get("destination"), Code: q.Get("code"), Thread: strings.TrimSpace(q.Get("thread")), ThreadToken: q.Get("threadToken"),
		After: q.Get("after"), Before: q.Get("before"), Page: 1, Size: defaultQueueSize}
	rf := retryq.Filter{Destination: f.Destination, Code: f.Code, Thread: f.ThreadToken}
	var errs []string
	if f.Thread != "" {
		rf.Thread = broker.Token(f.Thread)
	}
	for _, t := range []struct {
		v, key string
		to     *time.Time
	}{{f.After, "q.after", &rf.ParkedAfter}, {f.Before, "q.before", &rf.ParkedBefore}} {
		if t.v == "" {
			continue
		}
		v, err := c.parseTime(t.v)
		if err != nil {
			errs = append(errs, tr(c.lang, "q.time.bad", tr(c.lang, t.key)))
			continue
		}
		*t.to = v
	}
	if h, err := strconv.Atoi(q.Get("older")); err == nil && h > 0 {
		f.Older = h
		if b := c.now().Add(-time.Duration(h) * time.Hour); rf.ParkedBefore.IsZero() || b.Before(rf.ParkedBefore) {
			rf.ParkedBefore = b
		}
	}
	if n, err := strconv.ParseUint(q.Get("upTo"), 10, 64); err == nil {
		f.UpTo, rf.UpTo = n, n
	}
	if n, err := strconv.Atoi(q.Get("page")); err == nil && n > 1 {
		// Bounded so the offset cannot overflow: a page past the end
		// says so, where page 9223372036854775807 showed "Showing -99–-99".
		f.Page = min(n, maxQueuePage)
	}
	if n, err := strconv.Atoi(q.Get("size")); err == nil && n >= 10 && n <= 500 {
		f.Size = n
	}
	return f, rf, errs
}

// parseTime reads a time typed into a datetime-local field (in the
// console's zone) or an RFC 3339 time from a link.
func (c *Console) parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, c.loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errors.New("not a time")
}

// values is the form as a query; page 0 leaves the page out.
func (f queueForm) values(page int) url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"destination": f.Destination, "code": f.Code, "thread": f.Thread, "threadToken": f.ThreadToken, "after": f.After, "before": f.Before} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if f.Older > 0 {
		q.Set("older", strconv.Itoa(f.Older))
	}
	if f.UpTo > 0 {
		q.Set("upTo", strconv.FormatUint(f.UpTo, 10))
	}
	if f.Size != defaultQueueSize {
		q.Set("size", strconv.Itoa(f.Size))
	}
	if page > 1 {
		q.Set("page", strconv.Itoa(page))
	}
	return q
}

func (f queueForm) url(path string, page int) string {
	if q := f.values(page).Encode(); q != "" {
		return path + "?" + q
	}
	return path
}

// frozen is a filter as absolute values: what a preview showed, carried to
// the replay and to the links that repeat it.
func frozen(rf retryq.Filter) url.Values {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("destination", rf.Destination)
	set("code", rf.Code)
	set("threadToken", rf.Thread)
	if !rf.ParkedAfter.IsZero() {
		q.Set("after", rf.ParkedAfter.UTC().Format(time.RFC3339Nano))
	}
	if !rf.ParkedBefore.IsZero() {
		q.Set("before", rf.ParkedBefore.UTC().Format(time.RFC3339Nano))
	}
	if rf.UpTo != 0 {
		q.Set("upTo", strconv.FormatUint(rf.UpTo, 10))
	}
	return q
}

type option struct {
	Value, Label string
	Selected     bool
}

type queueRow struct {
	retryq.Entry
	Explain Explanation
	// Held: the letter waits for an earlier letter of its thread (WaitsFor,
	// parked since HeldSince); Release opens the thread's release page.
	Held      bool
	WaitsFor  string
	HeldSince time.Time
	Release   string
	// Blocks: later letters of its thread wait for this one.
	Blocks bool
}

type queuePage struct {
	F            queueForm
	Rows         []queueRow
	Total        int
	First, Last  int
	Page, Pages  int
	FirstURL     string
	PrevURL      string
	NextURL      string
	LastURL      string
	ReplayURL    string
	Back         string
	Filtered     bool
	Destinations []option
	Codes        []option
	Sizes        []option
	Olders       []option
	Bulk         []pipeline.BulkReplay
}

func (c *Console) queue(w http.ResponseWriter, r *http.Request, ses *session) {
	ctx := r.Context()
	f, rf, errs := c.readQueueForm(r.URL.Query())
	pg, err := c.hub.Queue().Find(ctx, rf, retryq.Window{Offset: (f.Page - 1) * f.Size, Size: f.Size})
	if err != nil {
		c.internal(w, r, "queue page", err)
		return
	}
	p := queuePage{F: f, Total: pg.Total, Page: f.Page, Pages: max(1, (pg.Total+f.Size-1)/f.Size), Back: f.url("/console/queue", f.Page),
		Filtered: rf.Destination != "" || rf.Code != "" || rf.Thread != "" || !rf.ParkedAfter.IsZero() || !rf.ParkedBefore.IsZero() || rf.UpTo != 0}
	if len(pg.Entries) > 0 {
		p.First = (f.Page-1)*f.Size + 1
		p.Last = p.First + len(pg.Entries) - 1
		p.ReplayURL = f.url("/console/queue/replay", 0)
	}
	if f.Page > 1 {
		p.FirstURL, p.PrevURL = f.url("/console/queue", 1), f.url("/console/queue", min(f.Page-1, p.Pages))
	}
	if f.Page < p.Pages {
		p.NextURL, p.LastURL = f.url("/console/queue", f.Page+1), f.url("/console/queue", p.Pages)
	}
	holds := map[string]pipeline.Hold{}
	blocking := map[string]bool{}
	for _, h := range c.hub.Holds() {
		holds[h.Destination+"/"+h.Thread] = h
		blocking[h.Destination+"/"+h.WaitsFor] = true
	}
	for _, e := range pg.Entries {
		row := queueRow{Entry: e, Explain: explainCode(c.lang, e.LastError.Code, e.LastError.Reason), Blocks: blocking[e.Destination+"/"+e.LetterID]}
		if e.LastError.Code == pipeline.CodeThreadHeld {
			row.Held = true
			if h, ok := holds[e.Destination+"/"+e.Thread]; ok {
				row.WaitsFor, row.HeldSince = h.WaitsFor, h.Since
				row.Release = "/console/queue/release?" + url.Values{"destination": {e.Destination}, "thread": {e.Thread}}.Encode()
			}
		}
		p.Rows = append(p.Rows, row)
	}
	// The choices, with how many each holds (the server counts them from
	// its subject index).
	all, err := c.hub.Queue().Count(ctx, retryq.Filter{})
	if err != nil {
		c.internal(w, r, "queue counts", err)
		return
	}
	dests := c.hub.Destinations()
	for d := range all.ByDestination {
		if !slices.Contains(dests, d) {
			dests = append(dests, d)
		}
	}
	sort.Strings(dests)
	p.Destinations = append(p.Destinations, option{Value: "", Label: tr(c.lang, "q.all"), Selected: f.Destination == ""})
	for _, d := range dests {
		p.Destinations = append(p.Destinations, option{Value: d, Label: d + " (" + c.num(all.ByDestination[d]) + ")", Selected: d == f.Destination})
	}
	codes := all
	if f.Destination != "" {
		if codes, err = c.hub.Queue().Count(ctx, retryq.Filter{Destination: f.Destination}); err != nil {
			c.internal(w, r, "queue counts", err)
			return
		}
	}
	if f.Code != "" && codes.ByCode[f.Code] == 0 {
		codes.ByCode[f.Code] = 0
	}
	p.Codes = append(p.Codes, option{Value: "", Label: tr(c.lang, "q.all"), Selected: f.Code == ""})
	for _, code := range sortedKeys(codes.ByCode) {
		p.Codes = append(p.Codes, option{Value: code, Label: codeLabel(c.lang, code) + " (" + c.num(codes.ByCode[code]) + ")", Selected: code == f.Code})
	}
	for _, n := range queueSizes {
		p.Sizes = append(p.Sizes, option{Value: strconv.Itoa(n), Label: strconv.Itoa(n), Selected: n == f.Size})
	}
	p.Olders = append(p.Olders, option{Value: "", Label: "–", Selected: f.Older == 0})
	for _, h := range olderThan {
		p.Olders = append(p.Olders, option{Value: strconv.Itoa(h), Label: hoursLabel(c.lang, h), Selected: h == f.Older})
	}
	if bulk, err := c.hub.BulkReplays(ctx); err == nil {
		for i, b := range bulk {
			if b.State == pipeline.BulkRunning || i < 3 {
				p.Bulk = append(p.Bulk, b)
			}
		}
	}
	status := http.StatusOK
	if len(errs) > 0 {
		status = http.StatusBadRequest
	}
	c.render(w, r, ses, status, "queue", p, errs...)
}

// codeLabel names a reason code for a choice: the plain explanation when
// the console has one, and the code.
func codeLabel(lang, code string) string {
	if _, known := explanations[code]; known {
		return strings.TrimSuffix(explainCode(lang, code, "").What, ".") + " – " + code
	}
	if code == "" {
		return "–"
	}
	return code
}

func hoursLabel(lang string, h int) string {
	unit, n := "hour", h
	switch {
	case h%168 == 0:
		unit, n = "week", h/168
	case h%24 == 0:
		unit, n = "day", h/24
	}
	if n == 1 {
		return tr(lang, "q.older."+unit)
	}
	return tr(lang, "q.older."+unit+"s", n)
}

func (c *Console) num(n int) string { return formatNum(c.lang, n) }

func sortedKeys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return m[out[i]] > m[out[j]] || (m[out[i]] == m[out[j]] && out[i] < out[j]) })
	return out
}

// safeBack keeps a form's way back on the queue page.
func safeBack(back string) string {
	u, err := url.Parse(back)
	if err != nil || u.Path != "/console/queue" || u.Host != "" || u.Scheme != "" {
		return "/console/queue"
	}
	return "/console/queue?" + u.Query().Encode()
}

// queueAction replays or discards the selected entries. Each is audited by
// the hub (pipeline.Hub.Replay/Discard) before it happens.
func (c *Console) queueAction(w http.ResponseWriter, r *http.Request, ses *session) {
	f := r.PostForm
	reason := strings.TrimSpace(f.Get("reason"))
	back := safeBack(f.Get("back"))
	var errs []string
	if len(f["seq"]) == 0 {
		errs = append(errs, tr(c.lang, "q.none.selected"))
	}
	if reason == "" {
		errs = append(errs, tr(c.lang, "q.reason.required"))
	}
	action := f.Get("action")
	if action != "replay" && action != "discard" {
		errs = append(errs, tr(c.lang, "form.expired"))
	}
	if len(errs) > 0 {
		for _, e := range errs {
			c.sessions.addFlash(ses, e)
		}
		http.Redirect(w, r, back, http.StatusSeeOther)
		return
	}
	a := c.actor(r, ses)
	done := 0
	for _, s := range f["seq"] {
		seq, err := retryq.ParseSeq(s)
		if err != nil {
			c.sessions.addFlash(ses, tr(c.lang, "q.badid", s))
			continue
		}
		var dec route.Decision
		if action == "replay" {
			dec, err = c.hub.Replay(r.Context(), a, seq, reason, false)
		} else {
			err = c.hub.Discard(r.Context(), a, seq, reason)
		}
		switch {
		case errors.Is(err, retryq.ErrNotParked):
			c.sessions.addFlash(ses, tr(c.lang, "q.failed", seq, tr(c.lang, "q.notparked")))
		case errors.Is(err, pipeline.ErrThreadHeld):
			c.sessions.addFlash(ses, tr(c.lang, "q.failed", seq, tr(c.lang, "q.held")))
		case err != nil:
			c.log.ErrorContext(r.Context(), "console: "+action, "seq", seq, "err", err)
			c.sessions.addFlash(ses, tr(c.lang, "q.failed", seq, tr(c.lang, "err.internal")))
		default:
			done++
			if action == "replay" && dec.Verdict == route.Deny {
				e := explainCode(c.lang, dec.Code, dec.Reason)
				c.sessions.addFlash(ses, tr(c.lang, "q.stilldenied", seq, lowerFirst(e.What)))
			}
		}
	}
	key := "q.replayed"
	if action == "discard" {
		key = "q.discarded"
	}
	c.sessions.addFlash(ses, tr(c.lang, key, done))
	http.Redirect(w, r, back, http.StatusSeeOther)
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

// describe says in words what a filter selects.
func (c *Console) describe(rf retryq.Filter) string {
	var parts []string
	if rf.Destination != "" {
		parts = append(parts, tr(c.lang, "d.destination", rf.Destination))
	}
	if rf.Code != "" {
		parts = append(parts, tr(c.lang, "d.code", codeLabel(c.lang, rf.Code)))
	}
	if rf.Thread != "" {
		parts = append(parts, tr(c.lang, "d.thread", rf.Thread))
	}
	if !rf.ParkedAfter.IsZero() {
		parts = append(parts, tr(c.lang, "d.after", when(rf.ParkedAfter, c.loc)))
	}
	if !rf.ParkedBefore.IsZero() {
		parts = append(parts, tr(c.lang, "d.before", when(rf.ParkedBefore, c.loc)))
	}
	if rf.UpTo != 0 {
		parts = append(parts, tr(c.lang, "d.upto", rf.UpTo))
	}
	if len(parts) == 0 {
		return tr(c.lang, "d.all")
	}
	return strings.Join(parts, " · ")
}
