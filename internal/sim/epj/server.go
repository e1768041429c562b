// Package epjsim is a small FHIR R4 server that stands in for a region's
// FHIR gateway in front of child and adolescent psychiatry's EPJ. It serves
// what Samhub's epj adapter uses (OAuth2 client credentials, Patient search
// by POST, conditional create of Communication, the Communication and
// DocumentReference feed, a CapabilityStatement), persists its resources in
// a data directory, and has fault switches and inspection helpers for tests,
// both as Go methods and under /_sim/. Every create is counted per
// idempotency key (its If-None-Exist condition or Idempotency-Key) and per
// identifier (Counts, GET /_sim/counts), so a test sees a letter delivered
// twice.
//
// It is a test double with the behaviour of a FHIR server, not a FHIR
// server: it validates only what the adapter's contract depends on.
package epjsim

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/samhub/samhub/internal/sim/simstore"
)

// Config configures a simulator.
type Config struct {
	DataDir      string        // Required. Where resources are persisted.
	ClientID     string        // Required. The one OAuth2 client accepted.
	ClientSecret string        // Required.
	TokenTTL     time.Duration // Optional, default 1h. Lifetime of an access token.
	// MaxBodyBytes caps a request body (default DefaultMaxBody); a larger
	// one is answered 413 and nothing is stored.
	MaxBodyBytes int64
}

// Server is the simulator. Its methods are safe for concurrent use.
type Server struct {
	cfg Config
	mux *http.ServeMux

	mu       sync.Mutex
	st       *state
	tokens   map[string]time.Time // access token -> expiry
	issued   int                  // tokens issued
	requests []Request
	counts   counts
	faults   faults
	linkBase string // SetLinkBase

	// gc runs the saves (commit); changes are numbered under mu.
	gc simstore.GroupCommit

	srv *http.Server
	ln  net.Listener
}

// Request is one request the simulator received, recorded for tests.
// URL is the request URI exactly as sent (path and query).
type Request struct {
	Method string `json:"method"`
	URL    string `json:"url"`
	Status int    `json:"status"`
	// IdempotencyKey and ExternalIDs are what a create carried (see
	// Counts), so a test can see a second delivery of the same letter.
	IdempotencyKey string   `json:"idempotencyKey,omitempty"`
	ExternalIDs    []string `json:"externalIds,omitempty"`
}

type faults struct {
	failCount      int
	failPath       string // "" = any FHIR endpoint
	failStatus     int
	failRetryAfter time.Duration
	delay          time.Duration
	dropCount      int
	rejectTokens   bool
	race           *createRace
}

// New opens (or creates) the data directory and loads what is stored there.
func New(cfg Config) (*Server, error) {
	switch {
	case cfg.DataDir == "":
		return nil, errors.New("epjsim: data_dir: must not be empty")
	case cfg.ClientID == "":
		return nil, errors.New("epjsim: client_id: must not be empty")
	case cfg.ClientSecret == "":
		return nil, errors.New("epjsim: client_secret: must not be empty")
	case cfg.TokenTTL < 0:
		return nil, errors.New("epjsim: token_ttl: must not be negative")
	}
	if cfg.TokenTTL == 0 {
		cfg.TokenTTL = time.Hour
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBody
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("epjsim: data_dir: %w", err)
	}
	st, err := loadState(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, st: st, tokens: map[string]time.Time{}}
	s.routes()
	return s, nil
}

func (s *Server) routes() {
	m := http.NewServeMux()
	m.HandleFunc("POST /oauth2/token", s.handleToken)
	m.Handle("GET /metadata", s.fhir(s.handleMetadata, false))
	m.Handle("POST /Patient/_search", s.fhir(s.handlePatientSearch, true))
	m.Handle("GET /Patient/{id}", s.fhir(s.handleRead("Patient"), true))
	m.Handle("POST /Communication", s.fhir(s.handleCreateCommunication, true))
	m.Handle("GET /Communication/{id}", s.fhir(s.handleRead("Communication"), true))
	m.Handle("GET /Communication", s.fhir(s.handleSearch("Communication"), true))
	m.Handle("GET /DocumentReference/{id}", s.fhir(s.handleRead("DocumentReference"), true))
	m.Handle("GET /DocumentReference", s.fhir(s.handleSearch("DocumentReference"), true))
	s.simRoutes(m)
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeOutcome(w, http.StatusNotFound, "not-supported", "", "no such endpoint in this simulator")
	})
	s.mux = m
}

// ServeHTTP serves the FHIR API, the token endpoint and /_sim/.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/_sim/") {
		s.mux.ServeHTTP(w, r)
		return
	}
	var key string
	var ext []string
	create := r.Method == http.MethodPost && r.URL.Path == "/Communication"
	if create {
		// The body is read as it arrives, up to the cap; large attachments
		// go to files beside the state. A body over the cap, or cut short,
		// stores nothing.
		var lifted bytes.Buffer
		err := s.liftData(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes), &lifted)
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			writeOutcome(w, http.StatusRequestEntityTooLarge, "too-long", "", fmt.Sprintf("the request is larger than this server takes (%d bytes)", s.cfg.MaxBodyBytes))
			s.mu.Lock()
			s.requests = append(s.requests, Request{Method: r.Method, URL: r.RequestURI, Status: http.StatusRequestEntityTooLarge})
			s.mu.Unlock()
			return
		case err != nil:
			writeOutcome(w, http.StatusBadRequest, "structure", "", "body could not be read")
			s.mu.Lock()
			s.requests = append(s.requests, Request{Method: r.Method, URL: r.RequestURI, Status: http.StatusBadRequest})
			s.mu.Unlock()
			return
		}
		r.Body = io.NopCloser(&lifted)
		key, ext = peekCreate(r)
	}
	rw := &bufferedWriter{header: http.Header{}}
	s.mux.ServeHTTP(rw, r)
	s.mu.Lock()
	s.requests = append(s.requests, Request{Method: r.Method, URL: r.RequestURI, Status: rw.status(), IdempotencyKey: key, ExternalIDs: ext})
	if create {
		s.count(key, ext, rw.status())
	}
	drop := false
	if s.faults.dropCount > 0 && r.Method == http.MethodPost && r.URL.Path == "/Communication" {
		s.faults.dropCount--
		drop = true
	}
	s.mu.Unlock()
	if drop {
		// The work is done and saved; the client never learns so.
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	}
	for k, v := range rw.header {
		w.Header()[k] = v
	}
	w.WriteHeader(rw.status())
	w.Write(rw.body.Bytes())
}

// Start listens on addr (e.g. "127.0.0.1:0") and serves in the background.
// It returns the base URL of the FHIR API.
func (s *Server) Start(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("epjsim: listen: %w", err)
	}
	s.ln = ln
	s.gc.Open()
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln)
	return "http://" + ln.Addr().String(), nil
}

// Close stops a server started with Start. Stored resources stay on disk.
// Handlers still running may be saving: Close waits for that save and
// lets none start after it (a test's data directory goes next).
func (s *Server) Close() error {
	if s.srv == nil {
		return nil
	}
	err := s.srv.Close()
	s.gc.Close()
	return err
}

// commit returns once change gen is on disk (simstore.GroupCommit): the
// resources added since the last save are written together.
func (s *Server) commit(gen uint64) error {
	return s.gc.Commit(&s.mu, gen, func() (simstore.Save, error) {
		sv, err := s.st.prepare(s.cfg.DataDir)
		if err != nil {
			return nil, err
		}
		return sv, nil
	})
}

// store runs add under s.mu and returns once what it added is on disk.
func (s *Server) store(add func() (*record, error)) (*record, error) {
	s.mu.Lock()
	rec, err := add()
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	gen := s.gc.Changed()
	s.mu.Unlock()
	return rec, s.commit(gen)
}

// fhir wraps a FHIR endpoint with the delay and failure faults and, when
// auth is set, bearer token checking.
func (s *Server) fhir(h http.HandlerFunc, auth bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		delay := s.faults.delay
		s.mu.Unlock()
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		if auth && !s.authorised(r) {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			writeOutcome(w, http.StatusUnauthorized, "login", "", "missing, unknown or expired access token")
			return
		}
		s.mu.Lock()
		fail := s.faults.failCount > 0 && (s.faults.failPath == "" || s.faults.failPath == r.URL.Path)
		status, after := s.faults.failStatus, s.faults.failRetryAfter
		if fail {
			s.faults.failCount--
		}
		s.mu.Unlock()
		if fail {
			if after > 0 {
				w.Header().Set("Retry-After", strconv.Itoa(int((after+time.Second-1)/time.Second)))
			}
			code := "transient"
			switch {
			case status == http.StatusTooManyRequests:
				code = "throttled"
			case status < 500:
				code = "processing"
			}
			writeOutcome(w, status, code, "", "simulated failure")
			return
		}
		h(w, r)
	})
}

func (s *Server) authorised(r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.faults.rejectTokens {
		return false
	}
	exp, ok := s.tokens[tok]
	return ok && time.Now().Before(exp)
}

// handleToken implements the client credentials grant (RFC 6749 §4.4) with
// the client authenticated by HTTP Basic or by form fields.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, "application/json", map[string]string{"error": "invalid_request"})
		return
	}
	id, secret, basic := r.BasicAuth()
	if !basic {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != s.cfg.ClientID || secret != s.cfg.ClientSecret {
		writeJSON(w, http.StatusUnauthorized, "application/json", map[string]string{"error": "invalid_client"})
		return
	}
	if r.PostForm.Get("grant_type") != "client_credentials" {
		writeJSON(w, http.StatusBadRequest, "application/json", map[string]string{"error": "unsupported_grant_type"})
		return
	}
	b := make([]byte, 16)
	rand.Read(b)
	tok := hex.EncodeToString(b)
	s.mu.Lock()
	s.tokens[tok] = time.Now().Add(s.cfg.TokenTTL)
	s.issued++
	s.mu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, "application/json", map[string]any{
		"access_token": tok,
		"token_type":   "Bearer",
		"expires_in":   int(s.cfg.TokenTTL / time.Second),
		"scope":        r.PostForm.Get("scope"),
	})
}

// bufferedWriter holds a response until the drop fault has had its say.
type bufferedWriter struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (b *bufferedWriter) Header() http.Header { return b.header }
func (b *bufferedWriter) Write(p []byte) (int, error) {
	if b.code == 0 {
		b.code = http.StatusOK
	}
	return b.body.Write(p)
}
func (b *bufferedWriter) WriteHeader(code int) {
	if b.code == 0 {
		b.code = code
	}
}
func (b *bufferedWriter) status() int {
	if b.code == 0 {
		return http.StatusOK
	}
	return b.code
}
