package console

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/samhub/samhub/pipeline"
	"github.com/samhub/samhub/pipeline/retryq"
)

// Replay all that match a filter: a preview (how many, where, why, the
// first few), a reason, then the hub's bulk replay and a page that follows
// it. The preview's form carries a request id made when it was shown: a
// double click, or the form sent twice, starts one replay, and both land
// on its progress page.

type countRow struct {
	Key, Label string
	N          int
}

type replayPage struct {
	Describe    string
	Counts      retryq.Counts
	ByDest      []countRow
	ByCode      []countRow
	First       []queueRow
	Hidden      url.Values // the frozen filter
	Request     string
	Held        int // letters waiting for an earlier letter of their thread
	Consent     int // letters parked for consent
	QueueURL    string
	ReasonValue string
}

func (c *Console) replayPreview(w http.ResponseWriter, r *http.Request, ses *session) {
	c.showPreview(w, r, ses, r.URL.Query(), http.StatusOK, "")
}

// showPreview counts what the filter in q matches now, freezes it at the
// queue's last sequence and renders the preview.
func (c *Console) showPreview(w http.ResponseWriter, r *http.Request, ses *session, q url.Values, status int, reason string, errs ...string) {
	ctx := r.Context()
	f, rf, ferrs := c.readQueueForm(q)
	if len(ferrs) > 0 {
		c.render(w, r, ses, http.StatusBadRequest, "replay", replayPage{QueueURL: f.url("/console/queue", 0)}, ferrs...)
		return
	}
	cnt, err := c.hub.Queue().Count(ctx, rf)
	if err != nil {
		c.internal(w, r, "bulk replay preview", err)
		return
	}
	rf.UpTo = cnt.UpTo
	p := replayPage{Describe: c.describe(rf), Counts: cnt, Hidden: frozen(rf), Request: pipeline.NewRequestID(), QueueURL: f.url("/console/queue", 0), ReasonValue: reason}
	if cnt.Total > 0 {
		pg, err := c.hub.Queue().Find(ctx, rf, retryq.Window{Size: previewFirst})
		if err != nil {
			c.internal(w, r, "bulk replay preview", err)
			return
		}
		for _, e := range pg.Entries {
			p.First = append(p.First, queueRow{Entry: e, Explain: explainCode(c.lang, e.LastError.Code, e.LastError.Reason), Held: e.LastError.Code == pipeline.CodeThreadHeld})
		}
	}
	for _, d := range sortedKeys(cnt.ByDestination) {
		p.ByDest = append(p.ByDest, countRow{Key: d, Label: d, N: cnt.ByDestination[d]})
	}
	for _, code := range sortedKeys(cnt.ByCode) {
		n := cnt.ByCode[code]
		p.ByCode = append(p.ByCode, countRow{Key: code, Label: codeLabel(c.lang, code), N: n})
		switch {
		case code == pipeline.CodeThreadHeld:
			p.Held += n
		case explanations[code].consent:
			p.Consent += n
		}
	}
	c.render(w, r, ses, status, "replay", p, errs...)
}

// replayStart starts the bulk replay the preview showed.
func (c *Console) replayStart(w http.ResponseWriter, r *http.Request, ses *session) {
	form := r.PostForm
	q := url.Values{}
	for _, k := range []string{"destination", "code", "threadToken", "after", "before", "upTo"} {
		if v := form.Get(k); v != "" {
			q.Set(k, v)
		}
	}
	f, rf, errs := c.readQueueForm(q)
	if len(errs) > 0 || rf.UpTo == 0 {
		c.sessions.addFlash(ses, tr(c.lang, "form.expired"))
		http.Redirect(w, r, f.url("/console/queue", 0), http.StatusSeeOther)
		return
	}
	reason := strings.TrimSpace(form.Get("reason"))
	if reason == "" {
		c.showPreview(w, r, ses, q, http.StatusBadRequest, "", tr(c.lang, "q.reason.required"))
		return
	}
	job, _, err := c.hub.StartBulkReplay(r.Context(), c.actor(r, ses), form.Get("request"), rf, reason)
	switch {
	case errors.Is(err, pipeline.ErrNothingToReplay):
		c.sessions.addFlash(ses, tr(c.lang, "rp.nothing"))
		http.Redirect(w, r, f.url("/console/queue", 0), http.StatusSeeOther)
		return
	case errors.Is(err, pipeline.ErrBadRequestID):
		c.sessions.addFlash(ses, tr(c.lang, "form.expired"))
		http.Redirect(w, r, "/console/queue/replay?"+q.Encode(), http.StatusSeeOther)
		return
	case err != nil:
		c.internal(w, r, "bulk replay", err)
		return
	}
	http.Redirect(w, r, "/console/queue/replays/"+url.PathEscape(job.ID), http.StatusSeeOther)
}

type bulkPage struct {
	B        pipeline.BulkReplay
	Describe string
	Done     int
	Percent  int
	Running  bool
	Again    string // a preview of what is left, after an interruption
}

func (c *Console) replayProgress(w http.ResponseWriter, r *http.Request, ses *session) {
	b, err := c.hub.BulkReplay(r.Context(), r.PathValue("id"))
	if errors.Is(err, pipeline.ErrUnknownBulk) {
		c.fail(w, r, http.StatusNotFound)
		return
	}
	if err != nil {
		c.internal(w, r, "bulk replay progress", err)
		return
	}
	p := bulkPage{B: b, Describe: c.describe(b.Filter), Done: b.Replayed + b.Gone + b.StillHeld + b.Failed, Running: b.State == pipeline.BulkRunning}
	if b.Planned > 0 {
		p.Percent = min(100, p.Done*100/b.Planned)
	}
	if b.State == pipeline.BulkInterrupted || b.State == pipeline.BulkStopped {
		p.Again = "/console/queue/replay?" + frozen(b.Filter).Encode()
	}
	refresh := 0
	if p.Running {
		refresh = 2 // seconds
	}
	c.renderView(w, r, ses, http.StatusOK, "bulk", p, refresh)
}

type releasePage struct {
	Destination, Thread string
	Hold                *pipeline.Hold
	Waiting             int
	QueueURL            string
}

// releaseForm shows what releasing a held thread means, and asks why.
func (c *Console) releaseForm(w http.ResponseWriter, r *http.Request, ses *session) {
	c.showRelease(w, r, ses, r.URL.Query().Get("destination"), r.URL.Query().Get("thread"), http.StatusOK)
}

func (c *Console) showRelease(w http.ResponseWriter, r *http.Request, ses *session, dest, thread string, status int, errs ...string) {
	p := releasePage{Destination: dest, Thread: thread,
		QueueURL: "/console/queue?" + url.Values{"destination": {dest}, "threadToken": {thread}}.Encode()}
	for _, h := range c.hub.Holds() {
		if h.Destination == dest && h.Thread == thread {
			p.Hold = &h
		}
	}
	if p.Hold != nil {
		cnt, err := c.hub.Queue().Count(r.Context(), retryq.Filter{Destination: dest, Code: pipeline.CodeThreadHeld, Thread: thread})
		if err != nil {
			c.internal(w, r, "held letters", err)
			return
		}
		p.Waiting = cnt.Total
	}
	c.render(w, r, ses, status, "release", p, errs...)
}

// releaseThread lets the letters held behind a parked letter go on without
// it (pipeline.Hub.ReleaseThread, audited with the reason).
func (c *Console) releaseThread(w http.ResponseWriter, r *http.Request, ses *session) {
	dest, thread := r.PostForm.Get("destination"), r.PostForm.Get("thread")
	reason := strings.TrimSpace(r.PostForm.Get("reason"))
	if reason == "" {
		c.showRelease(w, r, ses, dest, thread, http.StatusBadRequest, tr(c.lang, "q.reason.required"))
		return
	}
	err := c.hub.ReleaseThread(r.Context(), c.actor(r, ses), dest, thread, reason)
	switch {
	case errors.Is(err, pipeline.ErrNotHeld):
		c.sessions.addFlash(ses, tr(c.lang, "rel.notheld"))
	case err != nil:
		c.internal(w, r, "release thread", err)
		return
	default:
		c.sessions.addFlash(ses, tr(c.lang, "rel.done", dest))
	}
	http.Redirect(w, r, "/console/queue?"+url.Values{"destination": {dest}, "threadToken": {thread}}.Encode(), http.StatusSeeOther)
}
