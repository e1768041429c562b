package console

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"sync"
	"time"

	"github.com/samhub/samhub/internal/throttle"
)

const (
	idleTimeout   = 30 * time.Minute
	maxLifetime   = 12 * time.Hour // a working day; then log in again
	sessionCookie = "samhub_console"
	loginCookie   = "samhub_login"
	deviceCookie  = "samhub_device"
	deviceMaxAge  = 90 * 24 * time.Hour
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

// LoginThrottle slows password guessing at the console without locking
// anyone out (package throttle): per source address five free failures,
// then 1 s doubling to 15 minutes; per user name ten free failures, then
// 1 s doubling to 5 minutes, except from a browser that logged in as that
// user before (its device cookie), which has its own count like an
// address; and at most 5 checked attempts a second (bursts of 20) from
// browsers without such a cookie. A key without failures for an hour
// starts afresh.
var LoginThrottle = throttle.Config{
	Source: throttle.Policy{Free: 5, Base: time.Second, Max: 15 * time.Minute, Forget: time.Hour},
	User:   throttle.Policy{Free: 10, Base: time.Second, Max: 5 * time.Minute, Forget: time.Hour},
	Device: throttle.Policy{Free: 5, Base: time.Second, Max: 15 * time.Minute, Forget: time.Hour},
	Rate:   5,
	Burst:  20,
}

// devices issues and checks device cookies: proof that this browser logged
// in as a user before. The key lives in this process only; after a restart
// every browser is new again (and sessions are gone anyway).
type devices struct{ key []byte }

func newDevices() devices {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		panic("console: crypto/rand failed: " + err.Error())
	}
	return devices{key: k}
}

func (d devices) mac(user, id string) string {
	m := hmac.New(sha256.New, d.key)
	m.Write([]byte(user))
	m.Write([]byte{0})
	m.Write([]byte(id))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// issue returns a cookie value for user with a fresh device id.
func (d devices) issue(user string) string {
	id := randomToken()[:22] // 128 bits
	return base64.RawURLEncoding.EncodeToString([]byte(user)) + "." + id + "." + d.mac(user, id)
}

// check returns the device id of value when it was issued for user.
func (d devices) check(value, user string) (string, bool) {
	parts := strings.Split(value, ".")
	if len(parts) != 3 {
		return "", false
	}
	u, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil || string(u) != user {
		return "", false
	}
	if !hmac.Equal([]byte(parts[2]), []byte(d.mac(user, parts[1]))) {
		return "", false
	}
	return parts[1], true
}
