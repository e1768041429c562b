// Package httpapi serves the hub's HTTP surface: health, readiness, Prometheus
// metrics and the JSON API that the console and samhubctl use for the retry
// queue, rejected input, letter journeys, consents, the audit log and the
// council's meetings, referral register and figures. Every API route
// checks the caller's role on the server and every human action is
// audited.
package httpapi

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/internal/logging"
	"github.com/samhub/samhub/internal/throttle"
	"github.com/samhub/samhub/pipeline"
	"github.com/samhub/samhub/pipeline/audit"
	"github.com/samhub/samhub/pipeline/letter"
	"github.com/samhub/samhub/pipeline/retryq"
)

// Server is the HTTP surface of one hub.
type Server struct {
	hub      *pipeline.Hub
	users    *Users
	gatherer prometheus.Gatherer
	log      *slog.Logger
	mux      *http.ServeMux
	// Extra lets the console mount itself (it wraps requests with its own
	// session authentication before the API's bearer check).
	extra   []func(*http.ServeMux)
	proxies []netip.Prefix // http.trusted_proxies

	tokens    *throttle.Limiter      // wrong API tokens, per source address
	throttled *prometheus.CounterVec // refusals of the console's and the API's throttles
}

// New builds the server. hub may be nil while the hub is starting: then
// /readyz says not ready and the API answers 503.
func New(hub *pipeline.Hub, users *Users, g prometheus.Gatherer, log *slog.Logger) *Server {
	s := &Server{hub: hub, users: users, gatherer: g, log: log, mux: http.NewServeMux(), tokens: throttle.New(TokenThrottle),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "samhub_auth_throttled_total",
			Help: "Login and API-token attempts refused unchecked because of earlier failures (surface: console, api; scope: source, user, device, global)."},
			[]string{"surface", "scope"})}
	if reg, ok := g.(prometheus.Registerer); ok {
		if err := reg.Register(s.throttled); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				s.throttled = are.ExistingCollector.(*prometheus.CounterVec)
			}
		}
	}
	s.routes()
	return s
}

// Mux exposes the mux so other packages (the console) can add routes.
func (s *Server) Mux() *http.ServeMux { return s.mux }

// Hub returns the hub served.
func (s *Server) Hub() *pipeline.Hub { return s.hub }

// Users returns the configured users.
func (s *Server) Users() *Users { return s.users }

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	// Every line logged while serving the request carries its id as
	// correlation_id; the caller sees it in X-Request-Id.
	id := requestID(r)
	w.Header().Set("X-Request-Id", id)
	s.mux.ServeHTTP(w, r.WithContext(logging.WithCorrelation(r.Context(), id)))
}

// requestID is the caller's X-Request-Id when it is a short plain token
// (a proxy's id ties its log to ours), else a new random one.
func requestID(r *http.Request) string {
	if v := r.Header.Get("X-Request-Id"); len(v) > 0 && len(v) <= 64 && strings.Trim(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == "" && !logging.ContainsCPR(v) {
		return v
	}
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	// Base32's alphabet has no 0, 1, 8 or 9, so an id can never look like
	// a CPR number (and be masked in the log it is meant to find).
	return "req-" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

func (s *Server) routes() {
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, map[string]string{"status": "ok"}) })
	s.mux.HandleFunc("GET /readyz", s.ready)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{}))
	for _, rt := range apiRoutes() {
		h := rt.handler
		s.mux.Handle(rt.pattern, s.bearer(allow(func(w http.ResponseWriter, r *http.Request) { h(s, w, r) }, rt.roles...)))
	}
}

// route is one API route, who may call it and its handler.
type route struct {
	pattern string
	roles   []string
	handler func(*Server, http.ResponseWriter, *http.Request)
}

// apiRoutes is the API: the mux is built from it and Routes lists it, so
// a route cannot be served without being listed.
func apiRoutes() []route {
	any := []string{RoleCoordinator, RoleOperations, RoleAuditor}
	rs := []route{
		{"GET /api/v1/whoami", any, (*Server).whoami},
		{"GET /api/v1/stats", []string{RoleCoordinator, RoleOperations}, (*Server).stats},
		{"GET /api/v1/queue", []string{RoleCoordinator}, (*Server).queueList},
		{"GET /api/v1/queue/{seq}", []string{RoleCoordinator}, (*Server).queueShow},
		{"POST /api/v1/queue/{seq}/replay", []string{RoleCoordinator}, (*Server).queueReplay},
		{"POST /api/v1/queue/{seq}/discard", []string{RoleCoordinator}, (*Server).queueDiscard},
		{"POST /api/v1/queue/replay", []string{RoleCoordinator}, (*Server).queueReplayMany},
		{"POST /api/v1/queue/search", []string{RoleCoordinator}, (*Server).queueSearch},
		{"POST /api/v1/queue/bulk-replays", []string{RoleCoordinator}, (*Server).bulkReplay},
		{"GET /api/v1/queue/bulk-replays", []string{RoleCoordinator}, (*Server).bulkReplays},
		{"GET /api/v1/queue/bulk-replays/{id}", []string{RoleCoordinator}, (*Server).bulkReplayShow},
		{"GET /api/v1/holds", []string{RoleCoordinator, RoleOperations}, (*Server).holds},
		{"POST /api/v1/holds/{destination}/{thread}/release", []string{RoleCoordinator}, (*Server).releaseThread},
		{"GET /api/v1/letters/{id}/trace", []string{RoleCoordinator}, (*Server).letterTrace},
		{"POST /api/v1/letters/{id}/content", []string{RoleCoordinator}, (*Server).letterContent},
		{"POST /api/v1/consents", []string{RoleCoordinator}, (*Server).consentRecord},
		{"POST /api/v1/consents/lookup", []string{RoleCoordinator}, (*Server).consentLookup},
		{"POST /api/v1/consents/revoke", []string{RoleCoordinator}, (*Server).consentRevoke},
		{"GET /api/v1/audit", []string{RoleAuditor}, (*Server).auditTail},
		{"GET /api/v1/rejected", []string{RoleCoordinator, RoleOperations}, (*Server).rejectedList},
		{"POST /api/v1/rejected/{source}/{id}/put-back", []string{RoleCoordinator}, (*Server).rejectedPutBack},
	}
	return append(rs, councilRoutes...)
}

// Routes lists the API's method+path patterns, as the mux serves them (for
// the authorisation matrix and the audit tests).
func Routes() []string {
	var out []string
	for _, rt := range apiRoutes() {
		out = append(out, rt.pattern)
	}
	return out
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	if s.hub == nil {
		writeJSON(w, 503, map[string]string{"status": "starting"})
		return
	}
	if err := s.hub.Ready(r.Context()); err != nil {
		writeJSON(w, 503, map[string]string{"status": "not ready", "reason": err.Error()})
		return
	}
	writeJSON(w, 200, map[string]string{"status": "ready"})
}

func (s *Server) actor(r *http.Request) pipeline.Actor {
	p, _ := PrincipalFrom(r.Context())
	return pipeline.Actor{Name: p.Name, Role: p.Role, Remote: s.ClientAddr(r).String()}
}

func (s *Server) whoami(w http.ResponseWriter, r *http.Request) {
	p, _ := PrincipalFrom(r.Context())
	writeJSON(w, 200, map[string]string{"name": p.Name, "role": p.Role})
}

// Stats is the overview: queue sizes, oldest parked, pending and held.
type Stats struct {
	Parked       []retryq.Stat          `json:"parked"`
	Held         map[string]int         `json:"held"`
	Destinations []string               `json:"destinations"`
	Extra        map[string]interface{} `json:"extra,omitempty"`
}

func (s *Server) stats(w http.ResponseWriter, r *http.Request) {
	st, err := s.hub.Queue().Stats(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	held := map[string]int{}
	for d, m := range s.hub.Held() {
		held[d] = len(m)
	}
	writeJSON(w, 200, Stats{Parked: st, Held: held, Destinations: s.hub.Destinations()})
}

func seqOf(r *http.Request) (uint64, error) { return retryq.ParseSeq(r.PathValue("seq")) }

func (s *Server) queueShow(w http.ResponseWriter, r *http.Request) {
	seq, err := seqOf(r)
	if err != nil {
		problem(w, r, 400, "bad-id", err.Error())
		return
	}
	e, _, err := s.hub.Queue().Get(r.Context(), seq)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, 200, e)
}

type actionBody struct {
	Reason      string   `json:"reason"`
	DryRun      bool     `json:"dryRun"`
	Destination string   `json:"destination"`
	Seqs        []uint64 `json:"seqs"`
	All         bool     `json:"all"`
}

func readBody(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, context.Canceled) && err.Error() != "EOF" {
		return fmt.Errorf("request body: %w", err)
	}
	return nil
}

// seqAndBody reads the parked id from the path and the action body; on a
// mistake it answers 400 and reports false.
func seqAndBody(w http.ResponseWriter, r *http.Request) (uint64, actionBody, bool) {
	var b actionBody
	seq, err := seqOf(r)
	if err != nil {
		problem(w, r, 400, "bad-id", err.Error())
		return 0, b, false
	}
	if err := readBody(r, &b); err != nil {
		problem(w, r, 400, "bad-request", err.Error())
		return 0, b, false
	}
	return seq, b, true
}

func (s *Server) queueReplay(w http.ResponseWriter, r *http.Request) {
	seq, b, ok := seqAndBody(w, r)
	if !ok {
		return
	}
	dec, err := s.hub.Replay(r.Context(), s.actor(r), seq, b.Reason, b.DryRun)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, 200, map[string]any{"seq": seq, "dryRun": b.DryRun, "decision": dec})
}

func (s *Server) queueReplayMany(w http.ResponseWriter, r *http.Request) {
	var b actionBody
	if err := readBody(r, &b); err != nil {
		problem(w, r, 400, "bad-request", err.Error())
		return
	}
	seqs := b.Seqs
	if b.All {
		if b.Destination == "" {
			problem(w, r, 400, "bad-request", "all requires destination")
			return
		}
		list, err := s.hub.Queue().List(r.Context(), retryq.Filter{Destination: b.Destination})
		if err != nil {
			s.fail(w, r, err)
			return
		}
		for _, e := range list {
			seqs = append(seqs, e.Seq)
		}
	}
	type result struct {
		Seq      uint64 `json:"seq"`
		Decision any    `json:"decision,omitempty"`
		Code     string `json:"code,omitempty"` // not-found, failed
		Error    string `json:"error,omitempty"`
	}
	out := []result{}
	for _, seq := range seqs {
		dec, err := s.hub.Replay(r.Context(), s.actor(r), seq, b.Reason, b.DryRun)
		res := result{Seq: seq, Decision: dec}
		switch {
		case errors.Is(err, retryq.ErrNotParked):
			res.Code, res.Error = "not-found", "no parked letter with that id"
		case errors.Is(err, pipeline.ErrThreadHeld):
			res.Code, res.Error = "thread-held", "it waits for an earlier letter of its thread and stays parked; it follows once that letter is delivered or discarded, or the thread is released"
		case err != nil:
			s.log.ErrorContext(r.Context(), "replay failed", "seq", seq, "err", err)
			res.Code, res.Error = "failed", "the replay could not be stored; see the hub log"
		}
		out = append(out, res)
	}
	writeJSON(w, 200, map[string]any{"dryRun": b.DryRun, "results": out})
}

func (s *Server) queueDiscard(w http.ResponseWriter, r *http.Request) {
	seq, b, ok := seqAndBody(w, r)
	if !ok {
		return
	}
	if err := s.hub.Discard(r.Context(), s.actor(r), seq, b.Reason); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, 200, map[string]any{"seq": seq, "discarded": true})
}

// rejectedList lists the input the sources refused and set aside (MedCom
// files in error/) with the reason, newest first. Reasons and codes carry no
// personal data; the files themselves are not served.
func (s *Server) rejectedList(w http.ResponseWriter, r *http.Request) {
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	if limit <= 0 || limit > 5000 {
		limit = 500
	}
	list, err := s.hub.ListRejected(r.Context(), limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if list == nil {
		list = []pipeline.Rejected{}
	}
	writeJSON(w, 200, map[string]any{"entries": list})
}

// rejectedPutBack gives a rejected file back to its source (MedCom: back
// into in/), with a required reason; audited before it happens.
func (s *Server) rejectedPutBack(w http.ResponseWriter, r *http.Request) {
	var b actionBody
	if err := readBody(r, &b); err != nil {
		problem(w, r, 400, "bad-request", err.Error())
		return
	}
	source, id := r.PathValue("source"), r.PathValue("id")
	if err := s.hub.PutBack(r.Context(), s.actor(r), source, id, b.Reason); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, 200, map[string]any{"source": source, "id": id, "putBack": true})
}

// holds lists the threads held back behind a parked letter, per destination.
func (s *Server) holds(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, 200, map[string]any{"holds": s.hub.Holds()})
}

// releaseThread lets the letters held behind a parked letter go on without
// it; the parked letter stays in the queue. Reason required; audited.
func (s *Server) releaseThread(w http.ResponseWriter, r *http.Request) {
	var b actionBody
	if err := readBody(r, &b); err != nil {
		problem(w, r, 400, "bad-request", err.Error())
		return
	}
	dest, thread := r.PathValue("destination"), r.PathValue("thread")
	if err := s.hub.ReleaseThread(r.Context(), s.actor(r), dest, thread, b.Reason); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, 200, map[string]any{"destination": dest, "thread": thread, "released": true})
}

func (s *Server) letterTrace(w http.ResponseWriter, r *http.Request) {
	t, err := s.hub.TraceLetter(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, 200, t)
}

// letterContent shows personal content: only on an explicit POST with a
// reason, and audited before anything is returned.
func (s *Server) letterContent(w http.ResponseWriter, r *http.Request) {
	var b actionBody
	if err := readBody(r, &b); err != nil {
		problem(w, r, 400, "bad-request", err.Error())
		return
	}
	if strings.TrimSpace(b.Reason) == "" {
		problem(w, r, 400, "reason-required", "say why you need to see the letter's content (field: reason)")
		return
	}
	id := r.PathValue("id")
	l, _, err := s.hub.Letter(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	a := s.actor(r)
	if err := s.hub.Audit().Append(r.Context(), audit.Record{Actor: a.Name, Role: a.Role, Remote: a.Remote, Action: "show-content", Target: "letter:" + id, Reason: logging.Redact(b.Reason), Result: "shown"}); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, 200, l)
}

// consentBody reads a consent request: a patient, and a reason, which
// every consent action and read is audited with.
func (s *Server) consentBody(w http.ResponseWriter, r *http.Request) (consentBody, bool) {
	var b consentBody
	if err := readBody(r, &b); err != nil {
		problem(w, r, 400, "bad-request", err.Error())
		return b, false
	}
	id, ok := letter.NormalisePatientID(b.Patient)
	if !ok {
		problem(w, r, 400, "bad-request", patientWant)
		return b, false
	}
	b.Patient = id
	if strings.TrimSpace(b.Reason) == "" {
		s.fail(w, r, pipeline.ErrReasonRequired)
		return b, false
	}
	return b, true
}

// patientWant says what a patient field takes; it never echoes the value,
// which may be a CPR number.
const patientWant = "patient: must be a CPR number (10 digits, e.g. 250947-9989) or a 10-character replacement CPR (six digits, then four letters or digits)"

type consentBody struct {
	Patient string         `json:"patient"` // CPR or replacement id; body only, never in a URL
	Consent letter.Consent `json:"consent"`
	Reason  string         `json:"reason"`
}

func (s *Server) consentRecord(w http.ResponseWriter, r *http.Request) {
	b, ok := s.consentBody(w, r)
	if !ok {
		return
	}
	for _, sc := range b.Consent.Scopes {
		if !slices.Contains(letter.Scopes, sc) {
			problem(w, r, 400, "bad-request", fmt.Sprintf("consent.scopes: %q is not one of %v", sc, letter.Scopes))
			return
		}
	}
	if b.Consent.GivenAt.IsZero() {
		b.Consent.GivenAt = time.Now().UTC()
	}
	// A consent dated ahead would outrank the objections letters report
	// until then; a few minutes are another machine's clock.
	if b.Consent.GivenAt.After(time.Now().Add(consentClockSkew)) {
		problem(w, r, 400, "bad-request", fmt.Sprintf("consent.givenAt: must not be in the future (more than %v ahead of the hub's clock)", consentClockSkew))
		return
	}
	action := "consent-record"
	if !b.Consent.WithdrawnAt.IsZero() {
		action = "consent-withdraw"
	}
	s.recordConsent(w, r, action, b)
}

// consentClockSkew is how far ahead of the hub's clock a consent's
// givenAt may be.
const consentClockSkew = 5 * time.Minute

// recordConsent audits, then stores: a consent whose audit record cannot
// be stored is not recorded.
func (s *Server) recordConsent(w http.ResponseWriter, r *http.Request, action string, b consentBody) {
	a := s.actor(r)
	if err := s.hub.Audit().Append(r.Context(), audit.Record{Actor: a.Name, Role: a.Role, Remote: a.Remote, Action: action, Target: "patient:" + retryq.PatientToken(b.Patient), Reason: logging.Redact(b.Reason), Result: "recorded"}); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.hub.RecordConsent(r.Context(), b.Patient, b.Consent); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, 200, map[string]any{"recorded": true, "consent": b.Consent})
}

// consentRevoke withdraws the consent in force from now on: letters not yet
// delivered to another sector stop; what was delivered is not recalled.
func (s *Server) consentRevoke(w http.ResponseWriter, r *http.Request) {
	b, ok := s.consentBody(w, r)
	if !ok {
		return
	}
	cur, err := s.hub.RecordedConsent(r.Context(), b.Patient)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	c := letter.Consent{}
	if cur != nil {
		c = *cur
	}
	c.WithdrawnAt = time.Now().UTC()
	b.Consent = c
	s.recordConsent(w, r, "consent-withdraw", b)
}

// consentLookup shows a patient's recorded consents. The patient is in the
// body, never a URL; the read is audited, as any read of personal data.
func (s *Server) consentLookup(w http.ResponseWriter, r *http.Request) {
	b, ok := s.consentBody(w, r)
	if !ok {
		return
	}
	a := s.actor(r)
	if err := s.hub.Audit().Append(r.Context(), audit.Record{Actor: a.Name, Role: a.Role, Remote: a.Remote, Action: "consent-read", Target: "patient:" + retryq.PatientToken(b.Patient), Reason: logging.Redact(b.Reason), Result: "shown"}); err != nil {
		s.fail(w, r, err)
		return
	}
	hist, err := s.hub.ConsentHistory(r.Context(), b.Patient)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if hist == nil {
		hist = []pipeline.ConsentRecord{}
	}
	writeJSON(w, 200, map[string]any{"history": hist})
}

func (s *Server) auditTail(w http.ResponseWriter, r *http.Request) {
	n, _ := strconv.Atoi(r.URL.Query().Get("n"))
	if n <= 0 || n > 10000 {
		n = 100
	}
	recs, err := s.hub.Audit().Tail(r.Context(), n)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if recs == nil {
		recs = []audit.Record{}
	}
	writeJSON(w, 200, map[string]any{"records": recs})
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	if queueErrors(w, r, err) {
		return
	}
	switch {
	case errors.Is(err, retryq.ErrNotParked):
		problem(w, r, 404, "not-found", "no parked letter with that id")
	case errors.Is(err, pipeline.ErrUnknownLetter):
		problem(w, r, 404, "not-found", "no letter with that id")
	case errors.Is(err, pipeline.ErrNotHeld):
		problem(w, r, 404, "not-found", "no thread held at that destination with that token (see GET /api/v1/holds)")
	case errors.Is(err, pipeline.ErrReasonRequired):
		problem(w, r, 400, "reason-required", "a reason is required (field: reason)")
	case errors.Is(err, adapters.ErrUnknownInput):
		problem(w, r, 404, "not-found", "no rejected file with that source and id")
	case errors.Is(err, adapters.ErrAnswered):
		problem(w, r, 409, "answered", adapters.ErrAnswered.Error())
	default:
		s.log.ErrorContext(r.Context(), "api error", "path", r.URL.Path, "err", err)
		problem(w, r, 500, "internal", "the hub could not do this now; see the hub log")
	}
}

// problem writes an RFC 9457 problem document.
func problem(w http.ResponseWriter, r *http.Request, status int, typ, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"type": "urn:samhub:problem:" + typ, "title": http.StatusText(status), "status": status, "detail": detail, "instance": r.URL.Path})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// Listen serves s on addr until ctx ends, over TLS (1.2 or newer) when
// certFile and keyFile are set.
func Listen(ctx context.Context, addr, certFile, keyFile string, h http.Handler, log *slog.Logger) (net.Addr, <-chan error, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("http.listen %s: %w", addr, err)
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			ln.Close()
			return nil, nil, fmt.Errorf("http.tls_cert_file/tls_key_file: %w", err)
		}
		ln = tls.NewListener(ln, &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}})
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 60 * time.Second, WriteTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute}
	done := make(chan error, 1)
	go func() {
		err := srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		done <- err
	}()
	go func() {
		<-ctx.Done()
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(c)
	}()
	return ln.Addr(), done, nil
}
