package console

import (
	"crypto/rand"
	"encoding/base64"
	"sync"
	"time"
)

const (
	idleTimeout   = 30 * time.Minute
	maxLifetime   = 12 * time.Hour // a working day; then log in again
	lockFailures  = 5
	lockWindow    = 15 * time.Minute
	sessionCookie = "samhub_console"
	loginCookie   = "samhub_login"
)

// session is one logged-in browser. Sessions live in this process's memory:
// enough for the single-replica hub; with several replicas behind a load
// balancer a user would have to log in on each (or use sticky sessions).
type session struct {
	id      string
	user    string
	role    string
	csrf    string
	created time.Time
	seen    time.Time
	flash   []string
}

// randomToken returns 256 random bits, URL-safe.
func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		// crypto/rand does not fail on supported platforms; a session id
		// made of zeros must never be issued, so stop here.
		panic("console: crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

type sessions struct {
	mu  sync.Mutex
	m   map[string]*session
	now func() time.Time
}

func newSessions(now func() time.Time) *sessions {
	return &sessions{m: map[string]*session{}, now: now}
}

// create starts a new session with fresh id and CSRF token (a new id at
// every login, so a planted cookie is worthless).
func (s *sessions) create(user, role string) *session {
	now := s.now()
	ses := &session{id: randomToken(), user: user, role: role, csrf: randomToken(), created: now, seen: now}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, o := range s.m {
		if s.expired(o, now) {
			delete(s.m, id)
		}
	}
	s.m[ses.id] = ses
	return ses
}

func (s *sessions) expired(ses *session, now time.Time) bool {
	return now.Sub(ses.seen) > idleTimeout || now.Sub(ses.created) > maxLifetime
}

// get returns the live session for id and marks it used.
func (s *sessions) get(id string) (*session, bool) {
	if id == "" {
		return nil, false
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	ses, ok := s.m[id]
	if !ok {
		return nil, false
	}
	if s.expired(ses, now) {
		delete(s.m, id)
		return nil, false
	}
	ses.seen = now
	return ses, true
}

func (s *sessions) remove(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
}

func (s *sessions) addFlash(ses *session, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ses.flash = append(ses.flash, msg)
}

func (s *sessions) takeFlash(ses *session) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := ses.flash
	ses.flash = nil
	return f
}

// lockout counts failed logins per configured user name: five failures in
// fifteen minutes lock the name until the oldest of them ages out. Unknown
// names are not tracked (they can never log in), which keeps the map bounded
// by the number of configured users.
type lockout struct {
	mu    sync.Mutex
	fails map[string][]time.Time
	now   func() time.Time
}

func (l *lockout) recent(name string, now time.Time) []time.Time {
	var keep []time.Time
	for _, t := range l.fails[name] {
		if now.Sub(t) < lockWindow {
			keep = append(keep, t)
		}
	}
	l.fails[name] = keep
	return keep
}

func (l *lockout) locked(name string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.recent(name, l.now())) >= lockFailures
}

func (l *lockout) fail(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.fails[name] = append(l.recent(name, now), now)
}

func (l *lockout) reset(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.fails, name)
}
