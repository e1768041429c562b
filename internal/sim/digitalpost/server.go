package digitalpostsim

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// EntityID is the service entity id KOMBIT's STS issues tokens for to
// call KombiPostAfsend; the simulator's token endpoint takes it as the
// OAuth2 scope.
const EntityID = "http://entityid.kombit.dk/service/kombipostafsend/1"

// KombiPath is the service's path under Serviceplatformen's base URL.
const KombiPath = "/service/KombiPostAfsend_1/kombi"

// DefaultMaxBytes caps a request body (413 above it).
const DefaultMaxBytes = 64 << 20

// Config configures a simulator. Zero values take the documented defaults.
type Config struct {
	DataDir      string        // required; state survives a restart on the same dir
	ClientID     string        // required: the one client the token endpoint accepts
	ClientSecret string        // required
	TokenTTL     time.Duration // access-token lifetime, default 1h
	// Exempt are the CPR numbers of citizens exempt from Digital Post
	// (fritaget): a message to one with Digital Post only is refused.
	Exempt []string
	// AcceptRepeats answers a message whose UUID is stored already as
	// received (the stored one stays; the repeat is counted). Off: it is
	// refused with DuplicateMessage, the less kind answer.
	AcceptRepeats bool
	// TLS, when set, makes Start serve HTTPS with it; set ClientAuth to
	// tls.RequireAndVerifyClientCert and ClientCAs to require a client
	// certificate (the municipality's function certificate).
	TLS      *tls.Config
	MaxBytes int64        // request-body cap, default DefaultMaxBytes
	Logger   *slog.Logger // optional
}

// Server is the simulator. Its methods are safe for concurrent use.
type Server struct {
	cfg Config
	log *slog.Logger
	mux *http.ServeMux

	mu       sync.Mutex
	st       *state
	exempt   map[string]bool
	tokens   map[string]token
	issued   int
	requests []Request
	counts   map[string]*Count
	faults   faults

	srv *http.Server
	ln  net.Listener
}

type token struct {
	scope   string
	expires time.Time
}

// Request is one request the simulator answered, recorded for tests. Path
// has no query; bodies and the CPR numbers in them are not recorded.
type Request struct {
	Method        string    `json:"method"`
	Path          string    `json:"path"`
	Status        int       `json:"status"`
	TransactionID string    `json:"transactionId,omitempty"`
	MessageUUID   string    `json:"messageUUID,omitempty"`
	At            time.Time `json:"at"`
}

type faults struct {
	failCount   int
	failStatus  int
	retryAfter  time.Duration
	refuseCount int
	refuseCode  string
	refuseHTTP  int
	delay       time.Duration
	dropCount   int
	rejectTok   bool
}

// New opens (or creates) the data directory and loads what is stored there.
func New(cfg Config) (*Server, error) {
	switch {
	case cfg.DataDir == "":
		return nil, errors.New("digitalpostsim: data_dir: must not be empty")
	case cfg.ClientID == "":
		return nil, errors.New("digitalpostsim: client_id: must not be empty")
	case cfg.ClientSecret == "":
		return nil, errors.New("digitalpostsim: client_secret: must not be empty")
	case cfg.TokenTTL < 0:
		return nil, errors.New("digitalpostsim: token_ttl: must not be negative")
	}
	for _, c := range cfg.Exempt {
		if !cprPattern.MatchString(c) {
			return nil, fmt.Errorf("digitalpostsim: exempt: %q is not a CPR number of 10 digits", c)
		}
	}
	if cfg.TokenTTL == 0 {
		cfg.TokenTTL = time.Hour
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("digitalpostsim: data_dir: %w", err)
	}
	st, err := loadState(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, st: st, exempt: map[string]bool{}, tokens: map[string]token{}, counts: map[string]*Count{}}
	for _, c := range cfg.Exempt {
		s.exempt[c] = true
	}
	s.routes()
	return s, nil
}

func (s *Server) routes() {
	m := http.NewServeMux()
	m.HandleFunc("POST /oauth2/token", s.handleToken)
	m.HandleFunc("POST "+KombiPath, s.handleKombi)
	m.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	s.simRoutes(m)
	m.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		refuse(w, http.StatusNotFound, "UKENDT_SERVICE", "no such service in this simulator")
	})
	s.mux = m
}

// ServeHTTP serves the service, the token endpoint and /_sim/.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/_sim/") {
		s.mux.ServeHTTP(w, r)
		return
	}
	rw := &bufferedWriter{header: http.Header{}}
	s.mux.ServeHTTP(rw, r)
	kombi := r.Method == http.MethodPost && r.URL.Path == KombiPath
	s.mu.Lock()
	s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, Status: rw.status(),
		TransactionID: r.Header.Get("X-TransaktionsId"), MessageUUID: rw.header.Get(hdrMessageUUID), At: time.Now().UTC()})
	drop := false
	if kombi && s.faults.dropCount > 0 && rw.status() == http.StatusOK {
		s.faults.dropCount--
		drop = true
	}
	s.mu.Unlock()
	rw.header.Del(hdrMessageUUID)
	if drop {
		// The message is stored; the client never learns so.
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

// hdrMessageUUID carries the UUID a handler dealt with to the request log;
// it is removed before the answer leaves.
const hdrMessageUUID = "X-Sim-Message-Uuid"

// Start listens on addr (e.g. "127.0.0.1:0") and serves in the background,
// over HTTPS when Config.TLS is set. It returns the base URL
// (Serviceplatformen's, under which KombiPath and /oauth2/token are).
func (s *Server) Start(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("digitalpostsim: listen: %w", err)
	}
	scheme := "http"
	if s.cfg.TLS != nil {
		tc := s.cfg.TLS.Clone()
		if tc.MinVersion < tls.VersionTLS12 {
			tc.MinVersion = tls.VersionTLS12
		}
		ln = tls.NewListener(ln, tc)
		scheme = "https"
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
	go s.srv.Serve(ln)
	return scheme + "://" + ln.Addr().String(), nil
}

// Close stops a server started with Start. Stored messages stay on disk.
func (s *Server) Close() error {
	if s.srv == nil {
		return nil
	}
	return s.srv.Close()
}

// handleToken implements the client-credentials grant (RFC 6749 §4.4),
// the client authenticated by HTTP Basic or form fields. The scope names
// the one service the token is for, as KOMBIT's STS issues a token per
// service entity id.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	id, secret, basic := r.BasicAuth()
	if !basic {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != s.cfg.ClientID || secret != s.cfg.ClientSecret {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	}
	if r.PostForm.Get("grant_type") != "client_credentials" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type"})
		return
	}
	scope := r.PostForm.Get("scope")
	if scope != EntityID {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_scope", "error_description": "this STS issues tokens for " + EntityID + " only"})
		return
	}
	b := make([]byte, 16)
	rand.Read(b)
	tok := hex.EncodeToString(b)
	s.mu.Lock()
	s.tokens[tok] = token{scope: scope, expires: time.Now().Add(s.cfg.TokenTTL)}
	s.issued++
	s.mu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": int(s.cfg.TokenTTL / time.Second), "scope": scope})
}

// authorised reports whether r carries a live token issued for the service.
func (s *Server) authorised(r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.faults.rejectTok {
		return false
	}
	t, ok := s.tokens[tok]
	return ok && t.scope == EntityID && time.Now().Before(t.expires)
}

// SetExempt marks a citizen exempt from Digital Post, or no longer.
func (s *Server) SetExempt(cpr string, exempt bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if exempt {
		s.exempt[cpr] = true
	} else {
		delete(s.exempt, cpr)
	}
}

// Exempt lists the CPR numbers exempt from Digital Post, sorted.
func (s *Server) Exempt() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for c := range s.exempt {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}

// TokensIssued counts the tokens the token endpoint issued.
func (s *Server) TokensIssued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issued
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// bufferedWriter holds an answer until the drop fault has had its say.
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
