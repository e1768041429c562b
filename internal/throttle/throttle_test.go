package throttle

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time              { return c.t }
func (c *clock) add(d time.Duration)         { c.t = c.t.Add(d) }
func addr(s string) netip.Addr               { return netip.MustParseAddr(s) }
func (c *clock) limiter(cfg Config) *Limiter { cfg.Now = c.now; return New(cfg) }

var policy = Config{
	Source: Policy{Free: 5, Base: time.Second, Max: 15 * time.Minute, Forget: time.Hour},
	User:   Policy{Free: 10, Base: time.Second, Max: 5 * time.Minute, Forget: time.Hour},
	Device: Policy{Free: 5, Base: time.Second, Max: 15 * time.Minute, Forget: time.Hour},
}

// hammer makes an attempt every step for d and returns how many were
// checked (all fail).
func hammer(l *Limiter, c *clock, d, step time.Duration, next func(i int) Attempt) (checked, refused int) {
	for i := 0; time.Duration(i)*step < d; i++ {
		a := next(i)
		if v := l.Check(a); v.Allowed {
			checked++
			l.Failed(a)
		} else {
			refused++
		}
		c.add(step)
	}
	return checked, refused
}

func TestOneAddressIsSlowedAndTheUserLogsInFromAnother(t *testing.T) {
	c := &clock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	l := c.limiter(policy)
	attacker := Attempt{Source: addr("198.51.100.7"), User: "koordinator"}
	// Ten attempts a second for ten minutes: 6000 tries.
	checked, refused := hammer(l, c, 10*time.Minute, 100*time.Millisecond, func(int) Attempt { return attacker })
	// 5 free, then waits of 1, 2, 4 … 256 s fit into the ten minutes.
	if checked > 5+10 || checked < 5 {
		t.Fatalf("one address had %d of %d attempts checked in 10 minutes, want 5 free plus one per doubling wait (≤ 15)", checked, checked+refused)
	}
	// The real user, from another address and without a device cookie,
	// is heard at once: the attacker's failures stayed under the name's
	// own threshold.
	if v := l.Check(Attempt{Source: addr("192.0.2.10"), User: "koordinator"}); !v.Allowed {
		t.Fatalf("the real user from another address was refused: %+v", v)
	}
	// The attacker's address waits, and says so once.
	v := l.Check(attacker)
	if v.Allowed || v.Scope != ScopeSource || v.Wait <= 0 || v.Wait > 15*time.Minute {
		t.Fatalf("attacker: %+v, want a source wait of at most 15m", v)
	}
	if again := l.Check(attacker); again.First {
		t.Fatal("a second refusal was reported as the first")
	}
}

func TestManyAddressesSlowTheNameButNotTheUsersBrowser(t *testing.T) {
	c := &clock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	l := c.limiter(policy)
	// A different address for every try: the per-address waits never start.
	checked, refused := hammer(l, c, 10*time.Minute, 100*time.Millisecond, func(i int) Attempt {
		return Attempt{Source: addr(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)), User: "koordinator"}
	})
	// 10 free, then waits of 1, 2 … 256 s, then 300 s (the ceiling).
	if checked > 10+11 || checked < 10 {
		t.Fatalf("many addresses had %d of %d attempts on one name checked in 10 minutes, want ≤ 21", checked, checked+refused)
	}
	// The user's own browser (a device from an earlier login) is heard at once.
	if v := l.Check(Attempt{Source: addr("192.0.2.10"), User: "koordinator", Device: "dev-1"}); !v.Allowed {
		t.Fatalf("the user's browser was refused: %+v", v)
	}
	// A new browser waits for the name, at most the ceiling: slowed, not locked out.
	v := l.Check(Attempt{Source: addr("192.0.2.11"), User: "koordinator"})
	if v.Allowed || v.Scope != ScopeUser || v.Wait > 5*time.Minute {
		t.Fatalf("a new browser: %+v, want a user wait of at most 5m", v)
	}
	// Other names are not affected.
	if v := l.Check(Attempt{Source: addr("192.0.2.11"), User: "drift"}); !v.Allowed {
		t.Fatalf("another name was refused: %+v", v)
	}
}

// An unknown name is slowed like a known one, so a refusal does not tell
// whether the name exists; unknown names cannot push known ones out.
func TestUnknownNamesLookLikeKnownOnes(t *testing.T) {
	c := &clock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	cfg := policy
	cfg.MaxKeys = 50
	cfg.Known = func(n string) bool { return n == "koordinator" }
	l := c.limiter(cfg)
	for i, name := range []string{"koordinator", "2509479989"} {
		for j := range 11 {
			l.Failed(Attempt{Source: addr(fmt.Sprintf("10.1.%d.%d", i, j)), User: name})
		}
		v := l.Check(Attempt{Source: addr("192.0.2.10"), User: name})
		if v.Allowed || v.Scope != ScopeUser {
			t.Fatalf("name %d after 11 failures: %+v, want a user wait", i, v)
		}
	}
	for _, k := range []string{"2509479989"} {
		if _, ok := l.tables[scopeUnknown][k]; ok {
			t.Fatal("an unknown name is kept as typed")
		}
	}
	for i := range 200 {
		l.Failed(Attempt{Source: addr("10.2.0.1"), User: fmt.Sprintf("guess-%d", i)})
	}
	if n := len(l.tables[scopeUnknown]); n > 50 {
		t.Fatalf("%d unknown names kept, want at most 50", n)
	}
	if v := l.Check(Attempt{Source: addr("192.0.2.10"), User: "koordinator"}); v.Allowed {
		t.Fatal("unknown names pushed the known name's failures out")
	}
}

func TestADeviceHasItsOwnCount(t *testing.T) {
	c := &clock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	l := c.limiter(policy)
	stolen := Attempt{Source: addr("198.51.100.7"), User: "koordinator", Device: "dev-1"}
	checked, _ := hammer(l, c, 10*time.Minute, 100*time.Millisecond, func(int) Attempt { return stolen })
	if checked > 5+10 {
		t.Fatalf("a device had %d attempts checked in 10 minutes, want ≤ 15", checked)
	}
	if v := l.Check(Attempt{Source: addr("198.51.100.7"), User: "koordinator", Device: "dev-2"}); !v.Allowed {
		t.Fatalf("another device was refused: %+v", v)
	}
}

func TestGlobalRateLimit(t *testing.T) {
	c := &clock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	cfg := policy
	cfg.Rate, cfg.Burst = 5, 20
	l := c.limiter(cfg)
	// 1000 unknown names from 1000 addresses within one second.
	checked, _ := hammer(l, c, time.Second, time.Millisecond, func(i int) Attempt {
		return Attempt{Source: addr(fmt.Sprintf("10.0.%d.%d", i>>8&255, i&255))}
	})
	if checked > 20+5 || checked < 20 {
		t.Fatalf("%d attempts checked in one second, want the burst of 20 plus at most 5", checked)
	}
	// A known browser is not held up by the global limit.
	if v := l.Check(Attempt{Source: addr("192.0.2.10"), User: "koordinator", Device: "dev-1"}); !v.Allowed {
		t.Fatalf("a device was refused by the global limit: %+v", v)
	}
	l.Check(Attempt{Source: addr("192.0.2.10")}) // a token may have come back since
	v := l.Check(Attempt{Source: addr("192.0.2.10")})
	if v.Allowed || v.Scope != ScopeGlobal || v.Wait <= 0 {
		t.Fatalf("%+v, want a global refusal", v)
	}
}

func TestFailuresAreForgottenAndSuccessClearsTheAddress(t *testing.T) {
	c := &clock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	l := c.limiter(policy)
	a := Attempt{Source: addr("2001:db8:1:2::7"), User: "koordinator"}
	for range 6 {
		l.Failed(a)
	}
	// The same /64 counts as the same source.
	if v := l.Check(Attempt{Source: addr("2001:db8:1:2::99")}); v.Allowed || v.Scope != ScopeSource {
		t.Fatalf("another address in the /64: %+v", v)
	}
	if v := l.Check(Attempt{Source: addr("2001:db8:1:3::7")}); !v.Allowed {
		t.Fatalf("another /64: %+v", v)
	}
	c.add(time.Hour + time.Minute)
	if v := l.Check(a); !v.Allowed {
		t.Fatalf("after an hour without failures: %+v", v)
	}
	l.Failed(a) // counted from one again
	if v := l.Check(a); !v.Allowed {
		t.Fatalf("first failure after forgetting: %+v", v)
	}
	for range 6 {
		l.Failed(a)
	}
	l.Succeeded(a)
	if v := l.Check(Attempt{Source: a.Source}); !v.Allowed {
		t.Fatalf("after a success from the address: %+v", v)
	}
}

func TestTablesStayBounded(t *testing.T) {
	c := &clock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	cfg := policy
	cfg.MaxKeys = 100
	l := c.limiter(cfg)
	for i := range 1000 {
		l.Failed(Attempt{Source: addr(fmt.Sprintf("10.0.%d.%d", i>>8&255, i&255))})
		c.add(time.Millisecond)
	}
	if n := len(l.tables[ScopeSource]); n > 100 {
		t.Fatalf("%d sources kept, want at most 100", n)
	}
}

func TestPolicyWait(t *testing.T) {
	p := Policy{Free: 2, Base: time.Second, Max: time.Minute}
	for fails, want := range map[int]time.Duration{0: 0, 1: 0, 2: time.Second, 3: 2 * time.Second, 7: 32 * time.Second, 8: time.Minute, 200: time.Minute} {
		if got := p.Wait(fails); got != want {
			t.Errorf("Wait(%d) = %s, want %s", fails, got, want)
		}
	}
}
