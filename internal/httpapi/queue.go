package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/samhub/samhub/internal/logging"
	"github.com/samhub/samhub/pipeline"
	"github.com/samhub/samhub/pipeline/audit"
	"github.com/samhub/samhub/pipeline/broker"
	"github.com/samhub/samhub/pipeline/letter"
	"github.com/samhub/samhub/pipeline/retryq"
)

// The retry queue's list, search and bulk replay. A filter narrows by
// destination, reason code, age, thread and (in a POST body only, never a
// URL) the child's CPR; pages are numbered (page, pageSize) or follow a
// cursor, and every answer says how many match.

// The page bounds are those of the list before it had pages (limit), so a
// client that does not page sees what it saw.
const (
	defaultPageSize = 500
	maxPageSize     = 5000
	// maxPage bounds a page number so its offset cannot overflow (page
	// 9223372036854775807 answered page 1's entries as page -…).
	maxPage = 1 << 20
	// previewSize is how many entries a bulk replay's preview shows.
	previewSize = 10
)

// badParam is a request parameter that is not what the API expects.
type badParam struct{ name, want string }

func (e *badParam) Error() string { return e.name + ": " + e.want }

// FilterSpec is a queue filter as the API takes it (JSON body or query).
type FilterSpec struct {
	Destination string `json:"destination,omitempty"`
	Code        string `json:"code,omitempty"`
	// Thread is a thread id as a letter's trace shows it; ThreadToken the
	// token a parked entry and the held threads show.
	Thread      string `json:"thread,omitempty"`
	ThreadToken string `json:"threadToken,omitempty"`
	// Patient is a CPR or replacement id: in a POST body only.
	Patient      string `json:"patient,omitempty"`
	ParkedAfter  string `json:"parkedAfter,omitempty"`  // RFC 3339
	ParkedBefore string `json:"parkedBefore,omitempty"` // RFC 3339
	UpTo         uint64 `json:"upTo,omitempty"`
}

func (s FilterSpec) filter() (retryq.Filter, error) {
	f := retryq.Filter{Destination: s.Destination, Code: s.Code, Thread: s.ThreadToken, UpTo: s.UpTo}
	if s.Thread != "" {
		if s.ThreadToken != "" && broker.Token(s.Thread) != s.ThreadToken {
			return f, &badParam{"thread", "give thread or threadToken, not two different threads"}
		}
		f.Thread = broker.Token(s.Thread)
	}
	if s.Patient != "" {
		id, ok := letter.NormalisePatientID(s.Patient)
		if !ok {
			return f, &badParam{"filter.patient", strings.TrimPrefix(patientWant, "patient: ")}
		}
		f.Patient = retryq.PatientToken(id)
	}
	for _, t := range []struct {
		name, v string
		to      *time.Time
	}{{"parkedAfter", s.ParkedAfter, &f.ParkedAfter}, {"parkedBefore", s.ParkedBefore, &f.ParkedBefore}} {
		if t.v == "" {
			continue
		}
		v, err := time.Parse(time.RFC3339, t.v)
		if err != nil {
			return f, &badParam{t.name, "must be a time such as 2026-03-04T09:00:00+01:00 (RFC 3339)"}
		}
		*t.to = v
	}
	return f, nil
}

func specFromQuery(q url.Values) (FilterSpec, error) {
	s := FilterSpec{Destination: q.Get("destination"), Code: q.Get("code"), Thread: q.Get("thread"), ThreadToken: q.Get("threadToken"),
		ParkedAfter: q.Get("parkedAfter"), ParkedBefore: q.Get("parkedBefore")}
	if q.Has("patient") {
		return s, &badParam{"patient", "never in a URL: use POST /api/v1/queue/search with the CPR in the body"}
	}
	if v := q.Get("upTo"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n == 0 {
			return s, &badParam{"upTo", "must be a positive sequence number"}
		}
		s.UpTo = n
	}
	return s, nil
}

// PageSpec is which page of the matches to return.
type PageSpec struct {
	Page     int    `json:"page,omitempty"`     // from 1
	PageSize int    `json:"pageSize,omitempty"` // 1–5000, default 500
	Cursor   string `json:"cursor,omitempty"`   // "next" of the page before
}

func (p PageSpec) window() (retryq.Window, error) {
	w := retryq.Window{Size: p.PageSize}
	if w.Size == 0 {
		w.Size = defaultPageSize
	}
	if w.Size < 1 || w.Size > maxPageSize {
		return w, &badParam{"pageSize", fmt.Sprintf("must be between 1 and %d", maxPageSize)}
	}
	if p.Cursor != "" {
		if p.Page > 1 {
			return w, &badParam{"cursor", "give page or cursor, not both"}
		}
		n, err := strconv.ParseUint(p.Cursor, 10, 64)
		if err != nil || n == 0 {
			return w, &badParam{"cursor", "must be the next cursor of a previous page"}
		}
		w.After = n
		return w, nil
	}
	if p.Page < 0 || p.Page > maxPage {
		return w, &badParam{"page", fmt.Sprintf("must be between 1 and %d", maxPage)}
	}
	w.Offset = max(p.Page-1, 0) * w.Size
	return w, nil
}

func pageFromQuery(q url.Values) (PageSpec, error) {
	var p PageSpec
	for _, v := range []struct {
		name string
		to   *int
	}{{"page", &p.Page}, {"pageSize", &p.PageSize}} {
		if s := q.Get(v.name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil {
				return p, &badParam{v.name, "must be a whole number"}
			}
			if v.name == "pageSize" && (n < 1 || n > maxPageSize) {
				return p, &badParam{"pageSize", fmt.Sprintf("must be between 1 and %d", maxPageSize)}
			}
			*v.to = n
		}
	}
	// limit is the list's size before it had pages.
	if s := q.Get("limit"); s != "" && p.PageSize == 0 {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return p, &badParam{"limit", "must be a positive number (prefer pageSize)"}
		}
		p.PageSize = min(n, maxPageSize) // as the list before pages did
	}
	p.Cursor = q.Get("cursor")
	return p, nil
}

// QueuePage is the answer of GET /api/v1/queue and POST /api/v1/queue/search.
type QueuePage struct {
	Entries  []retryq.Entry `json:"entries"`
	Total    int            `json:"total"`
	Page     int            `json:"page,omitempty"` // 0 when the page was asked for by cursor
	PageSize int            `json:"pageSize"`
	Pages    int            `json:"pages"`
	Next     string         `json:"next,omitempty"` // cursor of the following page
}

func (s *Server) findPage(w http.ResponseWriter, r *http.Request, spec FilterSpec, ps PageSpec) {
	f, err := spec.filter()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	win, err := ps.window()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	pg, err := s.hub.Queue().Find(r.Context(), f, win)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := QueuePage{Entries: pg.Entries, Total: pg.Total, PageSize: win.Size, Pages: (pg.Total + win.Size - 1) / win.Size}
	if win.After == 0 {
		out.Page = win.Offset/win.Size + 1
	}
	if pg.Next != 0 {
		out.Next = strconv.FormatUint(pg.Next, 10)
	}
	writeJSON(w, 200, out)
}

func (s *Server) queueList(w http.ResponseWriter, r *http.Request) {
	spec, err := specFromQuery(r.URL.Query())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ps, err := pageFromQuery(r.URL.Query())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.findPage(w, r, spec, ps)
}

type searchBody struct {
	Filter FilterSpec `json:"filter"`
	PageSpec
	Reason string `json:"reason"`
}

// queueSearch is the list with the filter in the body, the only way to
// filter by CPR; such a search is audited, with a reason.
func (s *Server) queueSearch(w http.ResponseWriter, r *http.Request) {
	var b searchBody
	if err := readBody(r, &b); err != nil {
		problem(w, r, 400, "bad-request", err.Error())
		return
	}
	if !s.auditPatientRead(w, r, b.Filter, b.Reason) {
		return
	}
	s.findPage(w, r, b.Filter, b.PageSpec)
}

// auditPatientRead records a look at a child's parked letters before it
// happens; without a patient in the filter there is nothing to record.
func (s *Server) auditPatientRead(w http.ResponseWriter, r *http.Request, spec FilterSpec, reason string) bool {
	if spec.Patient == "" {
		return true
	}
	if _, ok := letter.NormalisePatientID(spec.Patient); !ok {
		problem(w, r, 400, "bad-request", "filter."+patientWant)
		return false
	}
	if strings.TrimSpace(reason) == "" {
		problem(w, r, 400, "reason-required", "a search by CPR needs a reason (field: reason)")
		return false
	}
	a := s.actor(r)
	if err := s.hub.Audit().Append(r.Context(), audit.Record{Actor: a.Name, Role: a.Role, Remote: a.Remote, Action: "search-cpr",
		Target: "patient:" + retryq.PatientToken(strings.TrimSpace(spec.Patient)), Reason: logging.Redact(reason), Result: "retry queue"}); err != nil {
		s.fail(w, r, err)
		return false
	}
	return true
}

type bulkBody struct {
	Filter FilterSpec `json:"filter"`
	Reason string     `json:"reason"`
	DryRun bool       `json:"dryRun"`
}

// BulkPreview is what replaying all that match a filter would replay.
type BulkPreview struct {
	DryRun bool `json:"dryRun"`
	retryq.Counts
	First []retryq.Entry `json:"first"`
}

// bulkReplay previews (dryRun) or starts the replay of every parked letter
// matching the filter. The Idempotency-Key header names the request: the
// same key again answers with the replay it started, so a retried or
// doubled request does not replay twice.
func (s *Server) bulkReplay(w http.ResponseWriter, r *http.Request) {
	var b bulkBody
	if err := readBody(r, &b); err != nil {
		problem(w, r, 400, "bad-request", err.Error())
		return
	}
	f, err := b.Filter.filter()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if b.DryRun {
		if !s.auditPatientRead(w, r, b.Filter, b.Reason) {
			return
		}
		c, err := s.hub.Queue().Count(r.Context(), f)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		f.UpTo = c.UpTo
		pg, err := s.hub.Queue().Find(r.Context(), f, retryq.Window{Size: previewSize})
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, 200, BulkPreview{DryRun: true, Counts: c, First: pg.Entries})
		return
	}
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		problem(w, r, 400, "bad-request", "Idempotency-Key header: required (8 to 64 letters, digits, - or _, new for each replay you mean) so that a repeated request does not replay twice")
		return
	}
	job, started, err := s.hub.StartBulkReplay(r.Context(), s.actor(r), key, f, b.Reason)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/queue/bulk-replays/"+job.ID)
	status := http.StatusOK
	if started {
		status = http.StatusAccepted
	}
	writeJSON(w, status, job)
}

func (s *Server) bulkReplays(w http.ResponseWriter, r *http.Request) {
	list, err := s.hub.BulkReplays(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, 200, map[string]any{"bulkReplays": list})
}

func (s *Server) bulkReplayShow(w http.ResponseWriter, r *http.Request) {
	job, err := s.hub.BulkReplay(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, 200, job)
}

// queueErrors maps the queue's errors to problem documents; false when err
// is not one of them.
func queueErrors(w http.ResponseWriter, r *http.Request, err error) bool {
	var bp *badParam
	switch {
	case errors.As(err, &bp):
		problem(w, r, 400, "bad-request", bp.Error())
	case errors.Is(err, pipeline.ErrThreadHeld):
		problem(w, r, 409, "thread-held", "the letter waits for an earlier letter of its thread and stays parked; it follows once that letter is delivered or discarded, or the thread is released")
	case errors.Is(err, pipeline.ErrNothingToReplay):
		problem(w, r, 409, "nothing-to-replay", "no parked letter matches the filter (any more)")
	case errors.Is(err, pipeline.ErrUnknownBulk):
		problem(w, r, 404, "not-found", "no bulk replay with that id")
	case errors.Is(err, pipeline.ErrBadRequestID):
		problem(w, r, 400, "bad-request", "Idempotency-Key header: must be 8 to 64 letters, digits, - or _")
	default:
		return false
	}
	return true
}
