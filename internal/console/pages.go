package console

import (
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/internal/httpapi"
	"github.com/samhub/samhub/pipeline"
	"github.com/samhub/samhub/pipeline/audit"
	"github.com/samhub/samhub/pipeline/broker"
	"github.com/samhub/samhub/pipeline/council"
	"github.com/samhub/samhub/pipeline/letter"
	"github.com/samhub/samhub/pipeline/retryq"
)

// --- overview ----------------------------------------------------------------

type destRow struct {
	Name   string
	Parked int
	Oldest time.Time
	Held   int
}

type overviewPage struct {
	Rows        []destRow
	AnyParked   bool
	Today       int
	TodaySince  time.Time
	Acks        int
	AcksMeasure bool
	Operations  bool
	Coordinator bool
	// The council's register, when it is on: the referral watch (the
	// list for the coordinator, the count for operations) and the next
	// meeting.
	Council    bool
	WatchDays  string
	Unanswered []watchRow
	Count      int
	Next       *meetingRow
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request, ses *session) {
	stats, err := c.hub.Queue().Stats(r.Context())
	if err != nil {
		c.internal(w, r, "queue stats", err)
		return
	}
	rows := map[string]*destRow{}
	for _, d := range c.hub.Destinations() {
		rows[d] = &destRow{Name: d}
	}
	p := overviewPage{Operations: ses.role == httpapi.RoleOperations, Coordinator: ses.role == httpapi.RoleCoordinator}
	for _, s := range stats {
		if rows[s.Destination] == nil {
			rows[s.Destination] = &destRow{Name: s.Destination}
		}
		rows[s.Destination].Parked, rows[s.Destination].Oldest = s.Count, s.Oldest
		p.AnyParked = p.AnyParked || s.Count > 0
	}
	for d, held := range c.hub.Held() {
		if rows[d] != nil {
			rows[d].Held = len(held)
		}
	}
	for _, row := range rows {
		p.Rows = append(p.Rows, *row)
	}
	sort.Slice(p.Rows, func(i, j int) bool { return p.Rows[i].Name < p.Rows[j].Name })
	sums, seen := c.metricSums(r, "samhub_letters_received_total", "samhub_medcom_acks_missing", "process_start_time_seconds")
	today, since := c.today.count(c.now().In(c.loc), sums["samhub_letters_received_total"], sums["process_start_time_seconds"])
	p.Today, p.TodaySince = int(today), since
	p.Acks, p.AcksMeasure = int(sums["samhub_medcom_acks_missing"]), seen["samhub_medcom_acks_missing"]
	if k := c.hub.Council(); k != nil {
		p.Council, p.WatchDays = true, period(c.lang, k.WatchDays())
		p.Count = len(k.Referrals(council.ReferralFilter{State: "unanswered"}))
		if p.Coordinator {
			p.Unanswered = c.watchRows(k)
			now := c.now()
			for _, m := range k.Meetings(now.AddDate(0, 0, -1), now.AddDate(0, 6, 0)) {
				if !m.Past {
					row := c.meetingRow(m, k.Rule().Loc)
					p.Next = &row
					break
				}
			}
		}
	}
	c.render(w, r, ses, http.StatusOK, "overview", p)
}

// --- rejected files ------------------------------------------------------------

type rejectedPage struct {
	Entries []pipeline.Rejected
	// CanPutBack: the coordinator's page has the checkboxes and the form;
	// operations' lists the files only.
	CanPutBack bool
}

func (c *Console) rejected(w http.ResponseWriter, r *http.Request, ses *session) {
	list, err := c.hub.ListRejected(r.Context(), 500)
	if err != nil {
		c.internal(w, r, "rejected list", err)
		return
	}
	c.render(w, r, ses, http.StatusOK, "rejected", rejectedPage{Entries: list, CanPutBack: ses.role == httpapi.RoleCoordinator})
}

// putBack gives the selected rejected files back to their source; each is
// audited by the hub (pipeline.Hub.PutBack) before it happens.
func (c *Console) putBack(w http.ResponseWriter, r *http.Request, ses *session) {
	f := r.PostForm
	reason := strings.TrimSpace(f.Get("reason"))
	var errs []string
	if len(f["file"]) == 0 {
		errs = append(errs, tr(c.lang, "r.none.selected"))
	}
	if reason == "" {
		errs = append(errs, tr(c.lang, "q.reason.required"))
	}
	if len(errs) > 0 {
		for _, e := range errs {
			c.sessions.addFlash(ses, e)
		}
		http.Redirect(w, r, "/console/rejected", http.StatusSeeOther)
		return
	}
	a := c.actor(r, ses)
	done := 0
	for _, v := range f["file"] {
		source, id, _ := strings.Cut(v, "/")
		err := c.hub.PutBack(r.Context(), a, source, id, reason)
		switch {
		case errors.Is(err, adapters.ErrUnknownInput):
			c.sessions.addFlash(ses, tr(c.lang, "r.failed", id, tr(c.lang, "r.gone")))
		case errors.Is(err, adapters.ErrAnswered):
			c.sessions.addFlash(ses, tr(c.lang, "r.failed", id, tr(c.lang, "r.isanswered")))
		case err != nil:
			c.log.Error("console: put back", "source", source, "err", err)
			c.sessions.addFlash(ses, tr(c.lang, "r.failed", id, tr(c.lang, "err.internal")))
		default:
			done++
		}
	}
	c.sessions.addFlash(ses, tr(c.lang, "r.done", done))
	http.Redirect(w, r, "/console/rejected", http.StatusSeeOther)
}

// --- journey -----------------------------------------------------------------

type journeyPage struct {
	ID      string
	Trace   *pipeline.Trace
	Content *letter.Letter
	Reason  string
}

func (c *Console) loadTrace(w http.ResponseWriter, r *http.Request, id string) (*pipeline.Trace, bool) {
	t, err := c.hub.TraceLetter(r.Context(), id)
	if errors.Is(err, pipeline.ErrUnknownLetter) {
		c.fail(w, r, http.StatusNotFound)
		return nil, false
	}
	if err != nil {
		c.internal(w, r, "trace", err)
		return nil, false
	}
	return t, true
}

func (c *Console) journey(w http.ResponseWriter, r *http.Request, ses *session) {
	id := r.PathValue("id")
	t, ok := c.loadTrace(w, r, id)
	if !ok {
		return
	}
	c.render(w, r, ses, http.StatusOK, "journey", journeyPage{ID: id, Trace: t})
}

// showContent shows the letter's personal content: only on a POST with a
// reason, and only after the view is in the audit log.
func (c *Console) showContent(w http.ResponseWriter, r *http.Request, ses *session) {
	id := r.PathValue("id")
	t, ok := c.loadTrace(w, r, id)
	if !ok {
		return
	}
	reason := strings.TrimSpace(r.PostForm.Get("reason"))
	if reason == "" {
		c.render(w, r, ses, http.StatusBadRequest, "journey", journeyPage{ID: id, Trace: t}, tr(c.lang, "j.show.reason.req"))
		return
	}
	// The page shows text and attachment names: a large letter's blobs are
	// not read for it.
	l, _, err := c.hub.StoredLetter(r.Context(), id)
	if errors.Is(err, pipeline.ErrUnknownLetter) {
		c.fail(w, r, http.StatusNotFound)
		return
	}
	if err != nil {
		c.internal(w, r, "letter", err)
		return
	}
	if err := c.audit(r.Context(), r, audit.Record{Actor: ses.user, Role: ses.role, Action: "show-content", Target: "letter:" + id, Reason: reason, Result: "shown"}); err != nil {
		c.internal(w, r, "audit show-content", err)
		return
	}
	c.render(w, r, ses, http.StatusOK, "journey", journeyPage{ID: id, Trace: t, Content: l, Reason: reason})
}

// --- search ------------------------------------------------------------------

type searchPage struct {
	Query      string
	By         string
	Searched   bool
	CPR        bool
	Parked     []retryq.Entry
	FirstFound bool
	Letters    []pipeline.Summary
	Consent    *letter.Consent
}

func (c *Console) search(w http.ResponseWriter, r *http.Request, ses *session) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	by := r.URL.Query().Get("by")
	p := searchPage{Query: q, By: by}
	if by == "" {
		c.render(w, r, ses, http.StatusOK, "search", p)
		return
	}
	if q == "" {
		c.render(w, r, ses, http.StatusBadRequest, "search", p, tr(c.lang, "s.id.required"))
		return
	}
	if by == "letter" {
		if _, err := c.hub.TraceLetter(r.Context(), q); err == nil {
			http.Redirect(w, r, "/console/letters/"+urlPath(q), http.StatusSeeOther)
			return
		} else if !errors.Is(err, pipeline.ErrUnknownLetter) {
			c.internal(w, r, "search letter", err)
			return
		}
		p.Searched = true
		c.render(w, r, ses, http.StatusOK, "search", p)
		return
	}
	// By thread: the parked queue keeps each letter's thread token; the first
	// letter of a thread usually carries the thread id as its own id.
	p.Searched = true
	token := broker.Token(q)
	list, err := c.hub.Queue().List(r.Context(), retryq.Filter{Thread: token, Limit: searchLimit})
	if err != nil {
		c.internal(w, r, "search thread", err)
		return
	}
	p.Parked = list
	if _, err := c.hub.TraceLetter(r.Context(), q); err == nil {
		p.FirstFound = true
	}
	if p.Letters, err = c.hub.FindLetters(r.Context(), pipeline.Query{ThreadID: q}); err != nil {
		c.internal(w, r, "search thread", err)
		return
	}
	c.render(w, r, ses, http.StatusOK, "search", p)
}

// searchLimit bounds what one search shows of the retry queue.
const searchLimit = 500

// normaliseCPR is the API's reading of a typed CPR or replacement CPR.
func normaliseCPR(s string) (string, bool) { return letter.NormalisePatientID(s) }

// searchCPR finds what the hub holds about a child by CPR: parked letters
// (the retry queue keeps full copies, so they can be matched) and the
// recorded consent. It is a POST so the number never lands in a URL or a
// proxy log, and it is audited with a one-way token of the number.
func (c *Console) searchCPR(w http.ResponseWriter, r *http.Request, ses *session) {
	p := searchPage{CPR: true}
	cpr, ok := normaliseCPR(r.PostForm.Get("cpr"))
	reason := strings.TrimSpace(r.PostForm.Get("reason"))
	var errs []string
	if !ok {
		errs = append(errs, tr(c.lang, "s.cpr.bad"))
	}
	if reason == "" {
		errs = append(errs, tr(c.lang, "s.reason.required"))
	}
	if len(errs) > 0 {
		c.render(w, r, ses, http.StatusBadRequest, "search", p, errs...)
		return
	}
	ctx := r.Context()
	if err := c.audit(ctx, r, audit.Record{Actor: ses.user, Role: ses.role, Action: "search-cpr", Target: "patient:" + broker.Token("patient:"+cpr), Reason: reason, Result: "searched"}); err != nil {
		c.internal(w, r, "audit search-cpr", err)
		return
	}
	list, err := c.hub.Queue().List(ctx, retryq.Filter{Patient: retryq.PatientToken(cpr), WithUnknownPatient: true, Limit: searchLimit})
	if err != nil {
		c.internal(w, r, "search cpr", err)
		return
	}
	for _, e := range list {
		if e.Patient != "" { // matched by its token
			p.Parked = append(p.Parked, e)
			continue
		}
		// Parked by an earlier build, without a token: read the letter.
		_, raw, err := c.hub.Queue().Get(ctx, e.Seq)
		if err != nil {
			continue // replayed or discarded meanwhile
		}
		l, err := letter.Unmarshal(raw)
		if err != nil || l.Patient == nil {
			continue
		}
		if strings.EqualFold(strings.ReplaceAll(l.Patient.Identifier(), "-", ""), cpr) {
			p.Parked = append(p.Parked, e)
		}
	}
	if p.Letters, err = c.hub.FindLetters(ctx, pipeline.Query{PatientID: cpr}); err != nil {
		c.internal(w, r, "search cpr", err)
		return
	}
	if p.Consent, err = c.hub.RecordedConsent(ctx, cpr); err != nil {
		c.internal(w, r, "consent lookup", err)
		return
	}
	p.Searched = true
	c.render(w, r, ses, http.StatusOK, "search", p)
}

// --- consents ----------------------------------------------------------------

// consentClockSkew is how far ahead of the hub's clock a consent's date
// may be (a browser's clock near midnight).
const consentClockSkew = 5 * time.Minute

type consentPage struct {
	Scopes []letter.Scope
}

func (c *Console) consentForm(w http.ResponseWriter, r *http.Request, ses *session) {
	c.render(w, r, ses, http.StatusOK, "consents", consentPage{Scopes: letter.Scopes})
}

func (c *Console) consentRecord(w http.ResponseWriter, r *http.Request, ses *session) {
	f := r.PostForm
	var errs []string
	cpr, ok := normaliseCPR(f.Get("patient"))
	if !ok {
		errs = append(errs, tr(c.lang, "s.cpr.bad"))
	}
	reason := strings.TrimSpace(f.Get("reason"))
	if reason == "" {
		errs = append(errs, tr(c.lang, "q.reason.required"))
	}
	cons := letter.Consent{GivenBy: f.Get("givenBy"), Form: f.Get("form"), YoungPersonRefused: f.Get("refused") == "on"}
	if cons.GivenBy != "custody-holder" && cons.GivenBy != "young-person" {
		cons.GivenBy = "custody-holder"
	}
	if cons.Form != "oral" {
		cons.Form = "written"
	}
	if d := strings.TrimSpace(f.Get("givenAt")); d != "" {
		t, err := time.ParseInLocation("2006-01-02", d, c.loc)
		if err != nil {
			errs = append(errs, tr(c.lang, "c.date.bad"))
		}
		// A consent dated ahead would outrank the objections letters
		// report until that day (pipeline's effectiveConsent). The
		// allowance is for a browser's clock a little ahead near midnight.
		now := c.now().Add(consentClockSkew).In(c.loc)
		if err == nil && t.After(time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, c.loc)) {
			errs = append(errs, tr(c.lang, "c.date.future"))
		}
		cons.GivenAt = t
	} else {
		cons.GivenAt = c.now()
	}
	for _, s := range f["scope"] {
		known := false
		for _, v := range letter.Scopes {
			if string(v) == s {
				known = true
				cons.Scopes = append(cons.Scopes, v)
			}
		}
		if !known {
			errs = append(errs, tr(c.lang, "c.scope.bad"))
			break
		}
	}
	action := "consent-record"
	if f.Get("withdraw") == "on" {
		action, cons.WithdrawnAt = "consent-withdraw", c.now()
	}
	if len(errs) > 0 {
		c.render(w, r, ses, http.StatusBadRequest, "consents", consentPage{Scopes: letter.Scopes}, errs...)
		return
	}
	ctx := r.Context()
	if err := c.audit(ctx, r, audit.Record{Actor: ses.user, Role: ses.role, Action: action, Target: "patient:" + broker.Token("patient:"+cpr), Reason: reason, Result: "recorded"}); err != nil {
		c.internal(w, r, "audit consent", err)
		return
	}
	if err := c.hub.RecordConsent(ctx, cpr, cons); err != nil {
		c.internal(w, r, "record consent", err)
		return
	}
	c.sessions.addFlash(ses, tr(c.lang, "c.done"))
	http.Redirect(w, r, "/console/consents", http.StatusSeeOther)
}

// --- audit -------------------------------------------------------------------

func (c *Console) auditLog(w http.ResponseWriter, r *http.Request, ses *session) {
	recs, err := c.hub.Audit().Tail(r.Context(), 500)
	if err != nil {
		c.internal(w, r, "audit tail", err)
		return
	}
	// Newest first: what an auditor looks for is usually recent.
	for i, j := 0, len(recs)-1; i < j; i, j = i+1, j-1 {
		recs[i], recs[j] = recs[j], recs[i]
	}
	c.render(w, r, ses, http.StatusOK, "audit", recs)
}

func urlQuery(s string) string { return url.QueryEscape(s) }

func urlPath(s string) string { return url.PathEscape(s) }
