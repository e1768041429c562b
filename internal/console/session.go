package console

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

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

// session is one logged-in browser. Sessions live in the broker (KV bucket
// samhub_sessions), so any replica behind a load balancer serves any
// request, and a restart logs nobody out.
type session struct {
	id      string
	user    string
	role    string
	csrf    string
	created time.Time
	seen    time.Time
	flash   []string
	rev     uint64 // the stored record's revision
}

// record is a session as stored. The key is a hash of the session id, so
// the bucket holds no cookie that would let its reader log in.
type record struct {
	User    string    `json:"user"`
	Role    string    `json:"role"`
	CSRF    string    `json:"csrf"`
	Created time.Time `json:"created"`
	Seen    time.Time `json:"seen"`
	Flash   []string  `json:"flash,omitempty"`
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

// touchEvery bounds the writes a busy user costs: the last-seen time is
// stored again only when it is this old (the idle timeout is 30 minutes).
const touchEvery = time.Minute

type sessions struct {
	kv  jetstream.KeyValue
	now func() time.Time
	log *slog.Logger
}

func newSessions(kv jetstream.KeyValue, now func() time.Time, log *slog.Logger) *sessions {
	return &sessions{kv: kv, now: now, log: log}
}

func sessionKey(id string) string {
	h := sha256.Sum256([]byte("console-session:" + id))
	return "s." + hex.EncodeToString(h[:16])
}

func opCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 5*time.Second)
}

func (s *sessions) put(ses *session, create bool) error {
	b, _ := json.Marshal(record{User: ses.user, Role: ses.role, CSRF: ses.csrf, Created: ses.created, Seen: ses.seen, Flash: ses.flash})
	ctx, cancel := opCtx()
	defer cancel()
	var rev uint64
	var err error
	if create {
		rev, err = s.kv.Create(ctx, sessionKey(ses.id), b)
	} else {
		rev, err = s.kv.Update(ctx, sessionKey(ses.id), b, ses.rev)
	}
	if err == nil {
		ses.rev = rev
	}
	return err
}

// create starts a new session with fresh id and CSRF token (a new id at
// every login, so a planted cookie is worthless).
func (s *sessions) create(user, role string) (*session, error) {
	now := s.now()
	ses := &session{id: randomToken(), user: user, role: role, csrf: randomToken(), created: now, seen: now}
	if err := s.put(ses, true); err != nil {
		return nil, fmt.Errorf("console: store the session: %w", err)
	}
	return ses, nil
}

func (s *sessions) expired(ses *session, now time.Time) bool {
	return now.Sub(ses.seen) > idleTimeout || now.Sub(ses.created) > maxLifetime
}

// read loads the session for id, whatever its age.
func (s *sessions) read(id string) (*session, bool) {
	ctx, cancel := opCtx()
	defer cancel()
	e, err := s.kv.Get(ctx, sessionKey(id))
	if err != nil {
		if !errors.Is(err, jetstream.ErrKeyNotFound) && !errors.Is(err, jetstream.ErrKeyDeleted) {
			s.log.Warn("console: session store unreadable; the request is treated as logged out", "err", err)
		}
		return nil, false
	}
	var r record
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return nil, false
	}
	return &session{id: id, user: r.User, role: r.Role, csrf: r.CSRF, created: r.Created, seen: r.Seen, flash: r.Flash, rev: e.Revision()}, true
}

// get returns the live session for id and marks it used.
func (s *sessions) get(id string) (*session, bool) {
	if id == "" {
		return nil, false
	}
	ses, ok := s.read(id)
	if !ok {
		return nil, false
	}
	now := s.now()
	if s.expired(ses, now) {
		s.remove(id)
		return nil, false
	}
	if now.Sub(ses.seen) >= touchEvery {
		ses.seen = now
		// A conflict means another request of the same browser stored it
		// meanwhile, which is as good.
		_ = s.put(ses, false)
	}
	return ses, true
}

func (s *sessions) remove(id string) {
	ctx, cancel := opCtx()
	defer cancel()
	if err := s.kv.Delete(ctx, sessionKey(id)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		s.log.Warn("console: session not removed from the store; it expires by itself", "err", err)
	}
}

// update applies fn to the stored session until the write wins against
// other requests of the same browser, on this replica or another.
func (s *sessions) update(ses *session, fn func(*session)) {
	for range 5 {
		cur, ok := s.read(ses.id)
		if !ok {
			return
		}
		fn(cur)
		if err := s.put(cur, false); err == nil {
			*ses = *cur
			return
		} else if !errors.Is(err, jetstream.ErrKeyExists) && !strings.Contains(err.Error(), "wrong last sequence") {
			s.log.Warn("console: session not updated", "err", err)
			return
		}
	}
}

func (s *sessions) addFlash(ses *session, msg string) {
	s.update(ses, func(c *session) { c.flash = append(c.flash, msg) })
}

func (s *sessions) takeFlash(ses *session) []string {
	if len(ses.flash) == 0 {
		return nil
	}
	var f []string
	s.update(ses, func(c *session) { f, c.flash = c.flash, nil })
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
// in as a user before. The key is kept in the broker's state bucket, so
// every replica and restart knows the browsers that logged in.
type devices struct{ key []byte }

const deviceKeyName = "console.device-key"

func loadDevices(ctx context.Context, kv jetstream.KeyValue) (devices, error) {
	if e, err := kv.Get(ctx, deviceKeyName); err == nil {
		return devices{key: e.Value()}, nil
	}
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		panic("console: crypto/rand failed: " + err.Error())
	}
	if _, err := kv.Create(ctx, deviceKeyName, k); err != nil {
		// Another replica made it first.
		e, gerr := kv.Get(ctx, deviceKeyName)
		if gerr != nil {
			return devices{}, fmt.Errorf("console: device key: %w", err)
		}
		return devices{key: e.Value()}, nil
	}
	return devices{key: k}, nil
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
