package casesyssim

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/samhub/samhub/internal/sim/simstore"
)

// Config configures a simulator. Zero values take the documented defaults.
type Config struct {
	DataDir      string // required; state survives a restart on the same dir
	ClientID     string // default "samhub"
	ClientSecret string // default "samhub-secret"
	// TokenTTL is the access-token lifetime (default 300 s). Short values
	// make clients exercise refresh.
	TokenTTL time.Duration
	// MaxUploadBytes caps a request body (default DefaultMaxUpload);
	// larger → 413.
	MaxUploadBytes int64
	// BlockedTypes are file media types refused with 415, as real ESDHs
	// refuse executables (default none).
	BlockedTypes []string
	// IdempotencyRetention is how long Idempotency-Key answers are kept
	// (default and minimum 7 days, the hub's longest retry horizon).
	IdempotencyRetention time.Duration
	// IgnoreIdempotencyKeys makes the simulator behave like the real case
	// systems (interfaces.md §1.4: SBSYS, WorkZone, Nexus have no
	// idempotency): the header is accepted and ignored, so a repeated
	// create makes a second object. Tests use it to prove that the
	// adapter's own search before create keeps deliveries single.
	IgnoreIdempotencyKeys bool
	// UniqueExternalIDs turns on the natural-key guard: a create with an
	// externalId already stored answers 409 duplicate-external-id. Off by
	// default, as in the real systems, so a second delivery is stored
	// and visible rather than hidden.
	UniqueExternalIDs bool
	Logger            *slog.Logger     // optional
	Now               func() time.Time // optional, for tests
}

const (
	scopeRead  = "cases.read"
	scopeWrite = "cases.write"
)

// DefaultMaxUpload is the default request-size cap, 50 MiB: the default
// maximum upload size of the SharePoint web applications GetOrganized runs
// on (SPWebApplication.MaximumFileSize, 50 MB unless an administrator
// raises it; learn.microsoft.com). SBSYS, WorkZone and Nexus publish no
// limit we could find. A municipality that raises its limit raises
// simulators.casesys.max_upload with it.
const DefaultMaxUpload = 50 << 20

// Server is an in-process case system implementing schemas/casesys/openapi.yaml
// plus the /_sim/ admin API.
type Server struct {
	cfg Config
	log *slog.Logger
	mux *http.ServeMux

	mu       sync.Mutex
	st       *state
	saved    persisted
	dirty    map[string]bool // documents changed since their file was written
	tokens   map[string]token
	inflight map[string]bool
	faults   faults
	mode     Mode
	requests []Request
	counts   counts

	// gc runs the saves (commit); changes are numbered under mu.
	gc simstore.GroupCommit

	srvMu sync.Mutex
	srv   *http.Server

	receiving atomic.Int64 // bytes read of the write bodies coming in now
}

type token struct {
	clientID string
	scopes   map[string]bool
	expires  time.Time
}

// New builds a simulator on cfg.DataDir, loading earlier state if present.
func New(cfg Config) (*Server, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("casesyssim: Config.DataDir must be set")
	}
	if cfg.ClientID == "" {
		cfg.ClientID = "samhub"
	}
	if cfg.ClientSecret == "" {
		cfg.ClientSecret = "samhub-secret"
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = 300 * time.Second
	}
	if cfg.MaxUploadBytes <= 0 {
		cfg.MaxUploadBytes = DefaultMaxUpload
	}
	if cfg.IdempotencyRetention < 7*24*time.Hour {
		cfg.IdempotencyRetention = 7 * 24 * time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("casesyssim: data dir: %w", err)
	}
	s := &Server{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux(), tokens: map[string]token{}, inflight: map[string]bool{},
		mode: Mode{IgnoreIdempotencyKeys: cfg.IgnoreIdempotencyKeys, UniqueExternalIDs: cfg.UniqueExternalIDs}, counts: newCounts()}
	if err := s.load(); err != nil {
		return nil, err
	}
	s.routes()
	return s, nil
}

// MaxUploadBytes is the request-size cap in force.
func (s *Server) MaxUploadBytes() int64 { return s.cfg.MaxUploadBytes }

func (s *Server) now() time.Time {
	if s.cfg.Now != nil {
		return s.cfg.Now()
	}
	return time.Now()
}

// ServeHTTP serves the contract and the /_sim/ admin API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Start listens on addr ("127.0.0.1:0" picks a free port) and serves in the
// background. It returns the base URL, e.g. "http://127.0.0.1:41234".
func (s *Server) Start(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("casesyssim: listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	s.srvMu.Lock()
	s.srv = srv
	s.gc.Open()
	s.srvMu.Unlock()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("case system simulator stopped", "err", err)
		}
	}()
	return "http://" + ln.Addr().String(), nil
}

// Close stops the listener started by Start and drops open connections.
// The data directory is kept.
func (s *Server) Close() error {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	if s.srv == nil {
		return nil
	}
	err := s.srv.Close()
	s.srv = nil
	// Handlers still running may be saving: wait for that save, and let
	// none start after this returns (a test's data directory goes next).
	s.gc.Close()
	return err
}

// maxRequests is how many answered requests Requests() remembers.
const maxRequests = 10000

type idemMode int

const (
	idemNone idemMode = iota
	idemOptional
	idemRequired
)

// call is one API request after the common checks.
type call struct {
	r    *http.Request
	body []byte
	tok  token
}

// reply is an API answer, built under s.mu and written afterwards so that it
// can be stored for Idempotency-Key replays.
type reply struct {
	status      int
	contentType string
	location    string
	header      http.Header
	body        []byte
	changed     bool // state was modified and must be saved
}

type handlerFunc func(c *call) reply

func (s *Server) routes() {
	s.mux.HandleFunc("POST /oauth2/token", s.recorded(s.token))
	s.mux.HandleFunc("GET /healthz", s.recorded(func(w http.ResponseWriter, r *http.Request) int {
		return writeReply(w, jsonReply(http.StatusOK, map[string]string{"status": "ok"}))
	}))
	s.api("POST /cases/search", scopeRead, idemOptional, s.searchCases)
	s.api("POST /cases", scopeWrite, idemRequired, s.createCase)
	s.api("GET /cases/{caseId}", scopeRead, idemNone, s.getCase)
	s.api("PATCH /cases/{caseId}", scopeWrite, idemRequired, s.updateCase)
	s.api("POST /cases/{caseId}/close", scopeWrite, idemRequired, s.closeCase)
	s.api("POST /cases/{caseId}/documents", scopeWrite, idemRequired, s.addDocument)
	s.api("GET /cases/{caseId}/documents", scopeRead, idemNone, s.listDocuments)
	s.api("GET /cases/{caseId}/documents/{docId}", scopeRead, idemNone, s.getDocument)
	s.api("GET /cases/{caseId}/documents/{docId}/files/{index}", scopeRead, idemNone, s.getFile)
	s.api("POST /cases/{caseId}/journal-notes", scopeWrite, idemRequired, s.addNote)
	s.api("GET /cases/{caseId}/journal-notes", scopeRead, idemNone, s.listNotes)
	s.api("GET /outbox", scopeRead, idemNone, s.listOutbox)
	s.api("GET /outbox/{docId}", scopeRead, idemNone, s.getOutbox)
	s.api("POST /outbox/{docId}/accept", scopeWrite, idemRequired, s.acceptOutbox)
	s.api("POST /outbox/{docId}/recipients", scopeWrite, idemRequired, s.reportRecipient)
	s.adminRoutes()
}

// recorded wraps a handler that returns the status it wrote.
func (s *Server) recorded(h func(http.ResponseWriter, *http.Request) int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		status := h(w, r)
		s.record(r, status, false, "", "", false)
	}
}

// record remembers an answered request and counts what a write carried;
// created says it made an object (its answer may have been dropped).
func (s *Server) record(r *http.Request, status int, replayed bool, key, ext string, created bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.requests) >= maxRequests { // bound memory in long demo runs
		s.requests = slices.Delete(s.requests, 0, len(s.requests)-maxRequests+1)
	}
	s.requests = append(s.requests, Request{Method: r.Method, URI: r.RequestURI, Route: r.Pattern, Status: status, Replayed: replayed, IdempotencyKey: key, ExternalID: ext, At: s.now()})
	s.counts.add(key, ext, created)
}

// api registers a contract route behind the common pipeline: injected
// failures, bearer token and scope, body limit, Idempotency-Key, injected
// delay, the handler, persistence, and an optional dropped response.
func (s *Server) api(pattern, scope string, idem idemMode, h handlerFunc) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		// A write's body is read first, so that every answer, even an
		// injected failure, is counted against the externalId it carried.
		var body []byte
		var bodyErr error
		write := r.Method == http.MethodPost || r.Method == http.MethodPatch
		if write {
			s.mu.Lock()
			rate := s.faults.uploadRate
			s.mu.Unlock()
			in := &slowBody{r: http.MaxBytesReader(w, r.Body, s.cfg.MaxUploadBytes), s: s, rate: rate, start: time.Now()}
			body, bodyErr = io.ReadAll(in)
			in.done()
		}
		key := r.Header.Get("Idempotency-Key")
		ext := ""
		if write && bodyErr == nil {
			ext = externalIDOf(r.Header.Get("Content-Type"), body)
		}
		answer := func(rep reply) { s.record(r, writeReply(w, rep), false, key, ext, false) }
		if f, ok := s.takeFailure(pattern); ok {
			rep := problem(f.Status, failureCode(f.Status), "Injected failure", "The simulator was told to fail this call.")
			if f.RetryAfter > 0 {
				rep.header = http.Header{"Retry-After": {strconv.Itoa(int((f.RetryAfter + time.Second - 1) / time.Second))}}
			}
			answer(rep)
			return
		}
		tok, ok := s.authenticate(r)
		if !ok {
			rep := problem(http.StatusUnauthorized, "invalid-token", "Access token missing, expired or rejected", "Obtain a new token from /oauth2/token.")
			rep.header = http.Header{"Www-Authenticate": {`Bearer error="invalid_token"`}}
			answer(rep)
			return
		}
		if !tok.scopes[scope] {
			answer(problem(http.StatusForbidden, "insufficient-scope", "Scope not granted", "This operation needs scope "+scope+"."))
			return
		}
		if bodyErr != nil {
			var mbe *http.MaxBytesError
			if errors.As(bodyErr, &mbe) {
				answer(problem(http.StatusRequestEntityTooLarge, "payload-too-large", "Request too large", fmt.Sprintf("Requests may be at most %d bytes.", s.cfg.MaxUploadBytes)))
				return
			}
			answer(problem(http.StatusBadRequest, "unreadable-body", "Request body could not be read", ""))
			return
		}
		s.mu.Lock()
		idem := idem
		if s.mode.IgnoreIdempotencyKeys {
			idem = idemNone // a real system: no key is required, none is honoured
		}
		s.mu.Unlock()
		if idem == idemRequired && key == "" {
			answer(problem(http.StatusBadRequest, "idempotency-key-missing", "Idempotency-Key header required", "Every state-changing request needs an Idempotency-Key header.", fieldErr{"Idempotency-Key", "header is required"}))
			return
		}
		if len(key) > 512 {
			answer(problem(http.StatusBadRequest, "invalid-idempotency-key", "Idempotency-Key too long", "", fieldErr{"Idempotency-Key", "must be at most 512 characters"}))
			return
		}
		var slot, fp string
		if idem != idemNone && key != "" {
			slot = tok.clientID + "\x00" + key
			fp = fingerprint(r, body)
			rep, replayed := s.reserve(slot, fp)
			if rep != nil {
				if s.takeDrop(pattern) {
					s.record(r, 0, replayed, key, ext, false)
					s.dropConnection(w)
					return
				}
				s.record(r, writeReply(w, *rep), replayed, key, ext, false)
				return
			}
			defer s.release(slot)
		}
		if d := s.delay(pattern); d > 0 {
			// Deliberately not cut short when the client gives up: a slow
			// real system usually finishes and saves anyway.
			time.Sleep(d)
		}
		if fn := s.takeHook(pattern); fn != nil {
			fn()
		}
		s.mu.Lock()
		rep := h(&call{r: r, body: body, tok: tok})
		if slot != "" && storable(rep.status) {
			s.st.Idempotency[slot] = &idemRecord{Fingerprint: fp, Route: pattern, Status: rep.status, ContentType: rep.contentType, Location: rep.location, Body: rep.body, CreatedAt: s.now()}
			s.pruneIdempotency()
			rep.changed = true
		}
		var gen uint64
		if rep.changed {
			gen = s.gc.Changed()
		}
		s.mu.Unlock()
		if gen != 0 {
			if err := s.commit(gen); err != nil {
				s.log.Error("case system simulator could not save state", "err", err)
				rep = problem(http.StatusInternalServerError, "storage-failed", "State could not be saved", "")
			}
		}
		created := rep.status == http.StatusCreated
		if s.takeDrop(pattern) {
			s.record(r, 0, false, key, ext, created) // before the client can see the drop
			s.dropConnection(w)
			return
		}
		s.record(r, writeReply(w, rep), false, key, ext, created)
	})
}

// commit returns once the change numbered gen is saved, as a database's
// group commit does: one save at a time, and the writes made while it ran
// are saved together by the next, so concurrent writers share the fsyncs
// (the answer still waits for the disk).
func (s *Server) commit(gen uint64) error {
	return s.gc.Commit(&s.mu, gen, func() (simstore.Save, error) {
		w, err := s.prepareSave()
		if err != nil {
			return nil, err
		}
		return committing{s, w}, nil // reads are answered while it writes
	})
}

// committing is one group commit's save: write needs no lock, savedWrite
// runs under s.mu.
type committing struct {
	s *Server
	w *pendingWrite
}

func (c committing) Write() error   { return c.w.write() }
func (c committing) Done(err error) { c.s.savedWrite(c.w, err) }

// storable says which answers a key replays: successes and errors that
// depend only on the request itself. Answers that depend on state or time
// (401, 403, 404, 409, 429, 5xx) are not stored, so a retry after a
// caseworker reopens a case, or after an outage, gets a fresh answer.
func storable(status int) bool {
	switch status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity:
		return true
	}
	return status >= 200 && status < 300
}

// reserve looks up an Idempotency-Key. It returns a reply to send at once
// (a replay, a reuse error or "in progress"), or nil after marking the key
// in flight.
func (s *Server) reserve(slot, fp string) (rep *reply, replayed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rec, ok := s.st.Idempotency[slot]; ok {
		if rec.Fingerprint != fp {
			p := problem(http.StatusUnprocessableEntity, "idempotency-key-reused", "Idempotency-Key reused with a different request", "The key was first used with another request body or path; use a new key for a new request.", fieldErr{"Idempotency-Key", "was used before for a different request"})
			return &p, false
		}
		r := reply{status: rec.Status, contentType: rec.ContentType, location: rec.Location, body: rec.Body, header: http.Header{"Idempotent-Replayed": {"true"}}}
		return &r, true
	}
	if s.inflight[slot] {
		p := problem(http.StatusConflict, "request-in-progress", "A request with this Idempotency-Key is still running", "Retry after the indicated time.")
		p.header = http.Header{"Retry-After": {"1"}}
		return &p, false
	}
	s.inflight[slot] = true
	return nil, false
}

func (s *Server) release(slot string) {
	s.mu.Lock()
	delete(s.inflight, slot)
	s.mu.Unlock()
}

// fingerprint identifies a request for Idempotency-Key comparison: method,
// path and body. Multipart bodies are compared part by part (name, file
// name, media type, bytes), so a client's random boundary does not matter.
func fingerprint(r *http.Request, body []byte) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s %s\n", r.Method, r.URL.Path)
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err == nil && mt == "multipart/form-data" {
		mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if err != nil {
				break
			}
			data, _ := io.ReadAll(p)
			fmt.Fprintf(h, "%q %q %q %d\n", p.FormName(), p.FileName(), p.Header.Get("Content-Type"), len(data))
			h.Write(data)
		}
	} else {
		fmt.Fprintf(h, "%s\n", mt)
		h.Write(body)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (s *Server) authenticate(r *http.Request) (token, bool) {
	auth := r.Header.Get("Authorization")
	raw, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok {
		return token{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.faults.rejectTokens {
		return token{}, false
	}
	t, ok := s.tokens[raw]
	if !ok || !s.now().Before(t.expires) {
		return token{}, false
	}
	return t, true
}

// token implements the OAuth2 client-credentials grant (RFC 6749 §4.4).
// Client authentication is accepted as HTTP Basic or form fields, as
// golang.org/x/oauth2 may use either.
func (s *Server) token(w http.ResponseWriter, r *http.Request) int {
	if err := r.ParseForm(); err != nil {
		return writeOAuthError(w, http.StatusBadRequest, "invalid_request")
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if r.PostForm.Get("grant_type") != "client_credentials" {
		return writeOAuthError(w, http.StatusBadRequest, "unsupported_grant_type")
	}
	if id != s.cfg.ClientID || secret != s.cfg.ClientSecret {
		return writeOAuthError(w, http.StatusUnauthorized, "invalid_client")
	}
	granted := map[string]bool{}
	req := strings.Fields(r.PostForm.Get("scope"))
	if len(req) == 0 {
		req = []string{scopeRead, scopeWrite}
	}
	for _, sc := range req {
		if sc != scopeRead && sc != scopeWrite {
			return writeOAuthError(w, http.StatusBadRequest, "invalid_scope")
		}
		granted[sc] = true
	}
	buf := make([]byte, 32)
	rand.Read(buf)
	tok := base64.RawURLEncoding.EncodeToString(buf)
	s.mu.Lock()
	now := s.now()
	for k, t := range s.tokens { // keep the map small
		if !now.Before(t.expires) {
			delete(s.tokens, k)
		}
	}
	s.tokens[tok] = token{clientID: id, scopes: granted, expires: now.Add(s.cfg.TokenTTL)}
	s.mu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	return writeReply(w, jsonReply(http.StatusOK, map[string]any{
		"access_token": tok,
		"token_type":   "Bearer",
		"expires_in":   int(s.cfg.TokenTTL.Round(time.Second) / time.Second),
		"scope":        strings.Join(req, " "),
	}))
}

func writeOAuthError(w http.ResponseWriter, status int, code string) int {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="casesys"`)
	}
	return writeReply(w, jsonReply(status, map[string]string{"error": code}))
}

// dropConnection closes the client connection without an answer, as a
// proxy or crash after commit would.
func (s *Server) dropConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// HTTP/2 cannot hijack; aborting the handler resets the stream instead.
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0) // send RST, like a crashed peer
	}
	conn.Close()
}

func writeReply(w http.ResponseWriter, rep reply) int {
	for k, v := range rep.header {
		w.Header()[k] = v
	}
	if rep.contentType != "" {
		w.Header().Set("Content-Type", rep.contentType)
	}
	if rep.location != "" {
		w.Header().Set("Location", rep.location)
	}
	w.WriteHeader(rep.status)
	w.Write(rep.body)
	return rep.status
}
