package casesyssim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"time"
)

// Fault makes the next Count calls of a route fail with Status (e.g. 503 or
// 429, with Retry-After when RetryAfter > 0) before anything is saved.
type Fault struct {
	// Route is a mux pattern as in openapi.yaml, e.g.
	// "POST /cases/{caseId}/documents"; empty means every contract route
	// except /oauth2/token and /healthz.
	Route      string        `json:"route,omitempty"`
	Count      int           `json:"count"`
	Status     int           `json:"status"`
	RetryAfter time.Duration `json:"-"`
}

type dropRule struct {
	route string
	count int
}

type faults struct {
	fail         []Fault
	drop         []dropRule
	delay        map[string]time.Duration // by route; "" for every route
	rejectTokens bool
	before       []hook
	uploadRate   int64 // bytes a second a write's body is read at; 0 = no limit
}

type hook struct {
	route string
	fn    func()
}

// BeforeNext runs fn once, just before the next call of route (a mux
// pattern) is handled, after its Idempotency-Key is reserved. A test uses
// it to change the case system between a client's read and its write, as
// a caseworker working at the same moment would (EditCase).
func (s *Server) BeforeNext(route string, fn func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.before = append(s.faults.before, hook{route, fn})
}

func (s *Server) takeHook(route string) func() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, h := range s.faults.before {
		if h.route == route {
			s.faults.before = slices.Delete(s.faults.before, i, i+1)
			return h.fn
		}
	}
	return nil
}

// FailNext makes the next n contract calls answer status (with Retry-After
// when retryAfter > 0).
func (s *Server) FailNext(n, status int, retryAfter time.Duration) {
	s.InjectFailure(Fault{Count: n, Status: status, RetryAfter: retryAfter})
}

// InjectFailure queues f.
func (s *Server) InjectFailure(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.fail = append(s.faults.fail, f)
}

// DropResponses makes the next n calls of route (a mux pattern, "" for
// any) do their work and save it, then close the connection without an
// answer, as when a proxy or network fails after commit.
func (s *Server) DropResponses(route string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.drop = append(s.faults.drop, dropRule{route, n})
}

// SetDelay delays every contract call by d (0 turns it off). The delay runs
// after the Idempotency-Key is reserved, so a concurrent retry with the same
// key sees 409 request-in-progress.
func (s *Server) SetDelay(d time.Duration) { s.SetRouteDelay("", d) }

// SetRouteDelay delays the calls of one route (a mux pattern) by d.
func (s *Server) SetRouteDelay(route string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.faults.delay == nil {
		s.faults.delay = map[string]time.Duration{}
	}
	s.faults.delay[route] = d
}

// RejectTokens makes every bearer token fail with 401 while on is true;
// the token endpoint still issues tokens.
func (s *Server) RejectTokens(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.rejectTokens = on
}

// ResetFaults turns every fault switch off.
func (s *Server) ResetFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = faults{}
}

func (s *Server) takeFailure(route string) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.faults.fail {
		f := &s.faults.fail[i]
		if f.Count > 0 && (f.Route == "" || f.Route == route) {
			f.Count--
			return *f, true
		}
	}
	return Fault{}, false
}

func (s *Server) takeDrop(route string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.faults.drop {
		d := &s.faults.drop[i]
		if d.count > 0 && (d.route == "" || d.route == route) {
			d.count--
			return true
		}
	}
	return false
}

func (s *Server) delay(route string) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d, ok := s.faults.delay[route]; ok && d > 0 {
		return d
	}
	return s.faults.delay[""]
}

// SeedCase stores c as a case, for demos and tests. ID, Status, Version,
// CaseType and CreatedAt get defaults when empty.
func (s *Server) SeedCase(c Case) (Case, error) {
	if errs := append(validatePerson("primaryParty", c.PrimaryParty), validateConsent("consent", c.Consent)...); len(errs) > 0 {
		return Case{}, fmt.Errorf("seed case: %s %s", errs[0].Field, errs[0].Message)
	}
	fillName(&c.PrimaryParty)
	if c.Status == "" {
		c.Status = "open"
	}
	if c.Status != "open" && c.Status != "closed" {
		return Case{}, errors.New("seed case: status must be open or closed")
	}
	if c.CaseType == "" {
		c.CaseType = "SAMRAAD"
	}
	if c.Title == "" {
		c.Title = "Samråd"
	}
	if c.Version == 0 {
		c.Version = 1
	}
	s.gc.Lock() // save writes here, as commit does
	defer s.gc.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.ExternalID != "" && s.caseByExternalID(c.ExternalID) != nil {
		return Case{}, errors.New("seed case: externalId is already used")
	}
	if c.ID == "" {
		c.ID = s.nextID("case")
	} else if _, dup := s.st.Cases[c.ID]; dup {
		return Case{}, errors.New("seed case: id is already used")
	}
	if c.CreatedAt.IsZero() {
		c.CreatedAt = s.now().UTC()
	}
	cc := c
	s.st.Cases[c.ID] = &cc
	return c, s.save()
}

// SeedDocument is a document the council marked ready to send.
type SeedDocument struct {
	ExternalID string           `json:"externalId,omitempty"`
	Title      string           `json:"title"`
	Kind       string           `json:"kind,omitempty"` // default recommendation
	Text       string           `json:"text"`
	Recipients OutboxRecipients `json:"recipients"`
	// Files are the document's files; without any, Text is stored as a
	// text/plain file, since a case-system document always has a file.
	Files []SeedFile `json:"files,omitempty"`
}

// SeedFile is one file of a seeded document; Data is base64 in JSON.
type SeedFile struct {
	Name        string `json:"name"`
	ContentType string `json:"contentType"`
	Data        []byte `json:"data"`
}

// SeedOutboxDocument adds an outgoing document on caseID and puts it in
// the outbox with status ready.
func (s *Server) SeedOutboxDocument(caseID string, d SeedDocument) (Document, error) {
	if d.Title == "" {
		return Document{}, errors.New("seed document: title is required")
	}
	if d.Kind == "" {
		d.Kind = "recommendation"
	}
	if len(d.Files) == 0 {
		d.Files = []SeedFile{{Name: "document.txt", ContentType: "text/plain; charset=utf-8", Data: []byte(d.Text)}}
	}
	d.Recipients = cloneRecipients(d.Recipients)
	if err := assignKeys(&d.Recipients); err != nil {
		return Document{}, fmt.Errorf("seed document: %w", err)
	}
	s.gc.Lock() // save writes here, as commit does
	defer s.gc.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.st.Cases[caseID]; !ok {
		return Document{}, errors.New("seed document: no case with this id")
	}
	now := s.now().UTC()
	doc := &Document{CaseID: caseID, ExternalID: d.ExternalID, Title: d.Title, Direction: "outgoing", DocumentDate: now, Journalised: true, CreatedAt: now,
		Outbox: &OutboxState{Status: OutboxReady, Kind: d.Kind, Text: d.Text, Recipients: d.Recipients, ReadyAt: now, RecipientStatus: recipientEntries(d.Recipients)}}
	for _, f := range d.Files {
		sum, err := s.putFile(f.Data)
		if err != nil {
			return Document{}, err
		}
		doc.Files = append(doc.Files, FileInfo{Name: f.Name, ContentType: f.ContentType, SHA256: sum, Size: int64(len(f.Data))})
	}
	doc.ID = s.nextID("document")
	s.st.Documents[doc.ID] = doc
	return *doc, s.save()
}

// cloneRecipients copies r so that keys assigned to it do not change the
// caller's value.
func cloneRecipients(r OutboxRecipients) OutboxRecipients {
	out := OutboxRecipients{Parents: slices.Clone(r.Parents)}
	if r.GP != nil {
		gp := *r.GP
		out.GP = &gp
	}
	if r.Region != nil {
		rg := *r.Region
		out.Region = &rg
	}
	return out
}

// Outbox lists every outbox document, whatever its status, oldest first,
// with its recipients' statuses: what the council sees.
func (s *Server) Outbox() []OutboxItem {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.outboxItems("")
}

// OutboxItem returns one outbox document as GET /outbox/{docId} shows it.
func (s *Server) OutboxItem(docID string) (OutboxItem, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.st.Documents[docID]
	if !ok || d.Outbox == nil {
		return OutboxItem{}, false
	}
	return s.outboxItem(d), true
}

// EditCase changes a case as a caseworker would: edit may change anything
// but the id; the version goes up.
func (s *Server) EditCase(id string, edit func(*Case)) (Case, error) {
	s.gc.Lock() // save writes here, as commit does
	defer s.gc.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	cs, ok := s.st.Cases[id]
	if !ok {
		return Case{}, errors.New("edit case: no case with this id")
	}
	c := *cs
	edit(&c)
	c.ID = id
	if errs := append(validatePerson("primaryParty", c.PrimaryParty), validateConsent("consent", c.Consent)...); len(errs) > 0 {
		return Case{}, fmt.Errorf("edit case: %s %s", errs[0].Field, errs[0].Message)
	}
	now := s.now().UTC()
	c.Version, c.UpdatedAt = cs.Version+1, &now
	*cs = c
	return c, s.save()
}

// CloseCase closes a case, as a caseworker would.
func (s *Server) CloseCase(id string) error {
	s.gc.Lock() // save writes here, as commit does
	defer s.gc.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	cs, ok := s.st.Cases[id]
	if !ok {
		return errors.New("close case: no case with this id")
	}
	if cs.Status != "closed" {
		now := s.now().UTC()
		cs.Status, cs.ClosedAt = "closed", &now
		cs.Version++
	}
	return s.save()
}

// Cases lists all cases, by id.
func (s *Server) Cases() []Case {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Case, 0, len(s.st.Cases))
	for _, c := range s.st.Cases {
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Documents lists all documents, by id.
func (s *Server) Documents() []Document {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Document, 0, len(s.st.Documents))
	for _, d := range s.st.Documents {
		out = append(out, *d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// JournalNotes lists all journal notes, by id.
func (s *Server) JournalNotes() []JournalNote {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]JournalNote, 0, len(s.st.Notes))
	for _, n := range s.st.Notes {
		out = append(out, *n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// FileData returns the bytes of file i of document docID.
func (s *Server) FileData(docID string, i int) ([]byte, error) {
	s.mu.Lock()
	d, ok := s.st.Documents[docID]
	s.mu.Unlock()
	if !ok || i < 0 || i >= len(d.Files) {
		return nil, errors.New("no such document file")
	}
	return s.readFile(d.Files[i].SHA256)
}

// Requests lists the contract requests answered so far (not /_sim/ ones).
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// adminRoutes serves /_sim/, the simulator's own control API (documented
// in doc.go). It has no authentication: it exists for tests and demos.
func (s *Server) adminRoutes() {
	list := func(get func() any) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			writeReply(w, jsonReply(http.StatusOK, map[string]any{"results": get()}))
		}
	}
	s.mux.HandleFunc("GET /_sim/cases", list(func() any { return s.Cases() }))
	s.mux.HandleFunc("GET /_sim/documents", list(func() any { return s.Documents() }))
	s.mux.HandleFunc("GET /_sim/journal-notes", list(func() any { return s.JournalNotes() }))
	s.mux.HandleFunc("GET /_sim/requests", list(func() any { return s.Requests() }))
	s.mux.HandleFunc("GET /_sim/outbox", list(func() any { return s.Outbox() }))
	s.mux.HandleFunc("GET /_sim/outbox/{docId}", func(w http.ResponseWriter, r *http.Request) {
		it, ok := s.OutboxItem(r.PathValue("docId"))
		if !ok {
			writeReply(w, problem(http.StatusNotFound, "outbox-item-not-found", "No outbox item with this document id", ""))
			return
		}
		writeReply(w, jsonReply(http.StatusOK, it))
	})
	s.mux.HandleFunc("GET /_sim/counts", func(w http.ResponseWriter, r *http.Request) {
		writeReply(w, jsonReply(http.StatusOK, s.Counts()))
	})
	s.mux.HandleFunc("GET /_sim/mode", func(w http.ResponseWriter, r *http.Request) {
		writeReply(w, jsonReply(http.StatusOK, s.CurrentMode()))
	})
	s.mux.HandleFunc("PUT /_sim/mode", func(w http.ResponseWriter, r *http.Request) {
		var m Mode
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			writeReply(w, problem(http.StatusBadRequest, "malformed-json", "Body is not a mode", jsonErrDetail(err)))
			return
		}
		s.SetMode(m)
		w.WriteHeader(http.StatusNoContent)
	})
	s.mux.HandleFunc("GET /_sim/documents/{docId}/files/{index}", func(w http.ResponseWriter, r *http.Request) {
		i, _ := strconv.Atoi(r.PathValue("index"))
		data, err := s.FileData(r.PathValue("docId"), i)
		if err != nil {
			writeReply(w, problem(http.StatusNotFound, "file-not-found", "No such file", ""))
			return
		}
		w.Write(data)
	})
	s.mux.HandleFunc("POST /_sim/cases", func(w http.ResponseWriter, r *http.Request) {
		var c Case
		if err := json.NewDecoder(r.Body).Decode(&c); err != nil {
			writeReply(w, problem(http.StatusBadRequest, "malformed-json", "Body is not a case", jsonErrDetail(err)))
			return
		}
		c, err := s.SeedCase(c)
		if err != nil {
			writeReply(w, problem(http.StatusUnprocessableEntity, "validation-failed", "Case not seeded", err.Error()))
			return
		}
		writeReply(w, jsonReply(http.StatusCreated, c))
	})
	s.mux.HandleFunc("POST /_sim/cases/{caseId}/outbox", func(w http.ResponseWriter, r *http.Request) {
		var d SeedDocument
		if err := json.NewDecoder(r.Body).Decode(&d); err != nil {
			writeReply(w, problem(http.StatusBadRequest, "malformed-json", "Body is not a seed document", jsonErrDetail(err)))
			return
		}
		doc, err := s.SeedOutboxDocument(r.PathValue("caseId"), d)
		if err != nil {
			writeReply(w, problem(http.StatusUnprocessableEntity, "validation-failed", "Document not seeded", err.Error()))
			return
		}
		writeReply(w, jsonReply(http.StatusCreated, doc))
	})
	s.mux.HandleFunc("POST /_sim/cases/{caseId}/close", func(w http.ResponseWriter, r *http.Request) {
		if err := s.CloseCase(r.PathValue("caseId")); err != nil {
			writeReply(w, problem(http.StatusNotFound, "case-not-found", "No case with this id", ""))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	s.mux.HandleFunc("POST /_sim/faults", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Fail *struct {
				Route             string `json:"route"`
				Count             int    `json:"count"`
				Status            int    `json:"status"`
				RetryAfterSeconds int    `json:"retryAfterSeconds"`
			} `json:"fail"`
			Drop *struct {
				Route string `json:"route"`
				Count int    `json:"count"`
			} `json:"drop"`
			DelayMS      *int   `json:"delayMs"`
			DelayRoute   string `json:"delayRoute"`
			RejectTokens *bool  `json:"rejectTokens"`
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			writeReply(w, problem(http.StatusBadRequest, "malformed-json", "Body is not a fault description", jsonErrDetail(err)))
			return
		}
		if in.Fail != nil {
			if in.Fail.Status < 400 || in.Fail.Status > 599 {
				writeReply(w, problem(http.StatusUnprocessableEntity, "validation-failed", "Invalid fault", "", fieldErr{"fail.status", "must be an HTTP error status 400-599"}))
				return
			}
			s.InjectFailure(Fault{Route: in.Fail.Route, Count: in.Fail.Count, Status: in.Fail.Status, RetryAfter: time.Duration(in.Fail.RetryAfterSeconds) * time.Second})
		}
		if in.Drop != nil {
			s.DropResponses(in.Drop.Route, in.Drop.Count)
		}
		if in.DelayMS != nil {
			s.SetRouteDelay(in.DelayRoute, time.Duration(*in.DelayMS)*time.Millisecond)
		}
		if in.RejectTokens != nil {
			s.RejectTokens(*in.RejectTokens)
		}
		w.WriteHeader(http.StatusNoContent)
	})
	s.mux.HandleFunc("DELETE /_sim/faults", func(w http.ResponseWriter, r *http.Request) {
		s.ResetFaults()
		w.WriteHeader(http.StatusNoContent)
	})
}

// SlowUploads makes the case system read the body of every write at most
// perSecond bytes a second (0: as fast as it comes), as over a slow link:
// a test sees a large upload in progress (Receiving) and can break it off
// half way.
func (s *Server) SlowUploads(perSecond int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.uploadRate = perSecond
}

// Receiving is how many bytes of request bodies the case system has read
// of the writes it is reading now (0 when none is coming in).
func (s *Server) Receiving() int64 { return s.receiving.Load() }

// slowBody reads a write's body, at the rate SlowUploads set, counting what
// it has read in Receiving until it ends.
type slowBody struct {
	r     io.Reader
	s     *Server
	rate  int64
	read  int64
	start time.Time
}

func (b *slowBody) Read(p []byte) (int, error) {
	if b.rate > 0 {
		p = p[:min(len(p), 32<<10)]
		if ahead := time.Duration(float64(b.read)/float64(b.rate)*float64(time.Second)) - time.Since(b.start); ahead > 0 {
			time.Sleep(ahead)
		}
	}
	n, err := b.r.Read(p)
	b.read += int64(n)
	b.s.receiving.Add(int64(n))
	return n, err
}

func (b *slowBody) done() { b.s.receiving.Add(-b.read) }
