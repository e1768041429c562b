// Package throttle slows password and token guessing without locking
// anyone out. Failed attempts are counted per source address and per user
// name; past a few free failures each further one doubles the wait before
// that address or name is heard again (up to a ceiling), and a global rate
// limit bounds how many attempts are checked at all. A waiting key is
// refused without its password being checked, so waiting cannot be
// bypassed by guessing right.
//
// A lockout (five failures lock a name for fifteen minutes) let anyone
// lock any user out. Here an attacker's failures slow the attacker's own
// address; failures against a name from many addresses slow that name only
// for attempts that do not come from a browser the user logged in with
// before (the caller vouches for such a "device", see Attempt.Device), and
// a device has its own failure count, so a stolen device cookie is slowed
// too.
package throttle

import (
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Policy is how one kind of key is slowed.
type Policy struct {
	Free   int           // failures before any wait
	Base   time.Duration // wait after the first failure past Free
	Max    time.Duration // longest wait
	Forget time.Duration // a key without failures for this long starts afresh
}

// Wait is the wait after fails failures.
func (p Policy) Wait(fails int) time.Duration {
	if fails < p.Free || p.Base <= 0 {
		return 0
	}
	shift := min(fails-p.Free, 30)
	d := p.Base << shift
	if d > p.Max || d <= 0 {
		d = p.Max
	}
	return d
}

// Config sets the policies. Zero policies never wait.
type Config struct {
	Source, User, Device Policy
	// Rate and Burst limit the attempts checked per second, except those
	// from a trusted device; rate.Inf (or zero) means no global limit.
	Rate  rate.Limit
	Burst int
	// MaxKeys bounds the tables of sources, devices and unknown names;
	// past it the key that failed longest ago is forgotten. Default 10000.
	MaxKeys int
	// Known tells real account names from others. Known names are never
	// forgotten to make room; unknown ones are tracked alike (so a refusal
	// does not tell whether a name exists) in a bounded table, by hash.
	// Nil: every name is known.
	Known func(name string) bool
	Now   func() time.Time
}

// Scopes of a refusal.
const (
	ScopeSource = "source"
	ScopeUser   = "user"
	ScopeDevice = "device"
	ScopeGlobal = "global"

	scopeUnknown = "unknown" // table of unknown names; refused as ScopeUser
)

// Attempt is one login or token check.
type Attempt struct {
	Source netip.Addr // the client's address (IPv6 counted per /64)
	// User is the name tried (empty: none, as for API tokens).
	User string
	// Device is an id the caller proved this browser received at an
	// earlier successful login as User (e.g. a signed cookie); empty when
	// there is none. A device's attempts skip the source, user and global
	// limits and are slowed by their own failures only.
	Device string
}

// Verdict answers Check.
type Verdict struct {
	Allowed bool
	Scope   string        // why not
	Wait    time.Duration // until the next attempt is heard
	Fails   int           // failures of the refusing key
	// First is true for the first refusal since that key's last failure,
	// so a caller can audit each throttling once rather than every
	// refused attempt.
	First bool
}

type record struct {
	fails int
	last  time.Time // last failure
	until time.Time // nothing is heard before this
	told  bool      // a refusal since the last failure was reported
}

// Limiter keeps the counts. It is safe for concurrent use.
type Limiter struct {
	cfg    Config
	global *rate.Limiter

	mu         sync.Mutex
	tables     map[string]map[string]*record // scope → key → record
	globalTold time.Time
}

// New returns a Limiter.
func New(cfg Config) *Limiter {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = 10000
	}
	if cfg.Known == nil {
		cfg.Known = func(string) bool { return true }
	}
	l := &Limiter{cfg: cfg, tables: map[string]map[string]*record{ScopeSource: {}, ScopeUser: {}, ScopeDevice: {}, scopeUnknown: {}}}
	if cfg.Rate > 0 && cfg.Rate != rate.Inf {
		l.global = rate.NewLimiter(cfg.Rate, max(cfg.Burst, 1))
	}
	return l
}

// SourceKey is the address as counted: IPv4 (and IPv4-mapped) addresses
// as they are, IPv6 per /64, which one subscriber typically holds whole.
func SourceKey(a netip.Addr) string {
	a = a.Unmap()
	if !a.IsValid() {
		return "unknown"
	}
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

func (l *Limiter) policy(scope string) Policy {
	switch scope {
	case ScopeSource:
		return l.cfg.Source
	case ScopeUser, scopeUnknown:
		return l.cfg.User
	default:
		return l.cfg.Device
	}
}

// get returns the live record of key, or nil; forgotten records are dropped.
func (l *Limiter) get(scope, key string, now time.Time) *record {
	r := l.tables[scope][key]
	if r != nil && now.Sub(r.last) > l.policy(scope).Forget && !now.Before(r.until) {
		delete(l.tables[scope], key)
		return nil
	}
	return r
}

// Check says whether the attempt may be checked now.
func (l *Limiter) Check(a Attempt) Verdict {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.cfg.Now()
	refuse := func(scope string, r *record) Verdict {
		v := Verdict{Scope: scope, Wait: r.until.Sub(now), Fails: r.fails, First: !r.told}
		r.told = true
		return v
	}
	if a.Device != "" {
		if r := l.get(ScopeDevice, a.Device, now); r != nil && now.Before(r.until) {
			return refuse(ScopeDevice, r)
		}
		return Verdict{Allowed: true}
	}
	if r := l.get(ScopeSource, SourceKey(a.Source), now); r != nil && now.Before(r.until) {
		return refuse(ScopeSource, r)
	}
	if a.User != "" {
		table, key := l.userKey(a.User)
		if r := l.get(table, key, now); r != nil && now.Before(r.until) {
			return refuse(ScopeUser, r)
		}
	}
	if l.global != nil && !l.global.AllowN(now, 1) {
		res := l.global.ReserveN(now, 1)
		wait := res.DelayFrom(now)
		res.CancelAt(now)
		first := now.Sub(l.globalTold) >= time.Minute
		if first {
			l.globalTold = now
		}
		return Verdict{Scope: ScopeGlobal, Wait: max(wait, time.Second), First: first}
	}
	return Verdict{Allowed: true}
}

// Failed counts a failed attempt that Check allowed.
func (l *Limiter) Failed(a Attempt) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.cfg.Now()
	if a.Device != "" {
		l.fail(ScopeDevice, a.Device, now)
		return
	}
	l.fail(ScopeSource, SourceKey(a.Source), now)
	if a.User != "" {
		table, key := l.userKey(a.User)
		l.fail(table, key, now)
	}
}

// userKey is where a name is counted: known names as they are, others by
// hash (a name typed into the wrong field may be a password or a CPR).
func (l *Limiter) userKey(name string) (string, string) {
	if l.cfg.Known(name) {
		return ScopeUser, name
	}
	sum := sha256.Sum256([]byte(name))
	return scopeUnknown, hex.EncodeToString(sum[:16])
}

func (l *Limiter) fail(scope, key string, now time.Time) {
	r := l.get(scope, key, now)
	if r == nil {
		l.makeRoom(scope, now)
		r = &record{}
		l.tables[scope][key] = r
	}
	r.fails++
	r.last = now
	r.until = now.Add(l.policy(scope).Wait(r.fails))
	r.told = false
}

// makeRoom keeps a table under MaxKeys: forgotten keys go first, then the
// one that failed longest ago.
func (l *Limiter) makeRoom(scope string, now time.Time) {
	t := l.tables[scope]
	if scope == ScopeUser || len(t) < l.cfg.MaxKeys {
		return // known names are as many as the configured users
	}
	forget := l.policy(scope).Forget
	var oldest string
	var oldestAt time.Time
	for k, r := range t {
		if now.Sub(r.last) > forget && !now.Before(r.until) {
			delete(t, k)
			continue
		}
		if oldest == "" || r.last.Before(oldestAt) {
			oldest, oldestAt = k, r.last
		}
	}
	if len(t) >= l.cfg.MaxKeys && oldest != "" {
		delete(t, oldest)
	}
}

// Succeeded clears the source (or device) of a successful attempt: that
// address or browser belongs to a real user. A user name's failures stay
// until they are forgotten, since they may be another's guesses.
func (l *Limiter) Succeeded(a Attempt) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if a.Device != "" {
		delete(l.tables[ScopeDevice], a.Device)
		return
	}
	delete(l.tables[ScopeSource], SourceKey(a.Source))
}
