package casesys

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/samhub/samhub/adapters"
)

// The real case systems have no idempotency (interfaces.md §1.4), so the
// adapter's own promise rests on searching by externalId before every
// create. A search and a create are two calls, though: two attempts at the
// same object (two letters about one new child, a redelivery of a letter
// while a slow call of the first delivery still runs) could both search,
// find nothing and both create. guardCreate closes that gap: attempts at
// one externalId run one at a time in this process, and, when the case
// system ignores Idempotency-Key (idempotency_keys: ignored), across
// replicas too, through a short lease in the state store.

// guardCreate waits for the right to search for and create the object
// ext; release gives it back.
func (a *Adapter) guardCreate(ctx context.Context, ext string) (release func(), err error) {
	unlock, err := a.locks.lock(ctx, ext)
	if err != nil {
		return nil, networkError(err)
	}
	if a.cfg.IdempotencyKeys != IdempotencyIgnored || a.st == nil {
		return unlock, nil
	}
	free, err := a.lease(ctx, ext)
	if err != nil {
		unlock()
		return nil, err
	}
	return func() { free(); unlock() }, nil
}

// keyedLock is a mutex per key, waited for under a context.
type keyedLock struct {
	mu sync.Mutex
	m  map[string]*lockEntry
}

type lockEntry struct {
	ch    chan struct{}
	users int
}

func (k *keyedLock) lock(ctx context.Context, key string) (func(), error) {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*lockEntry{}
	}
	e := k.m[key]
	if e == nil {
		e = &lockEntry{ch: make(chan struct{}, 1)}
		k.m[key] = e
	}
	e.users++
	k.mu.Unlock()
	select {
	case e.ch <- struct{}{}:
		return func() { <-e.ch; k.done(key, e) }, nil
	case <-ctx.Done():
		k.done(key, e)
		return nil, ctx.Err()
	}
}

func (k *keyedLock) done(key string, e *lockEntry) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if e.users--; e.users == 0 {
		delete(k.m, key)
	}
}

type leaseValue struct {
	Holder string    `json:"holder"`
	Until  time.Time `json:"until"`
}

// leaseTime outlasts a call the case system may still finish after the
// adapter gave up on it (the HTTP timeout) by a margin, so a replica that
// takes over a stale lease searches after that call's create is visible.
func (a *Adapter) leaseTime() time.Duration { return 2*a.cfg.Timeout + 10*time.Second }

// lease takes the state-store lease on creating ext. While another
// replica holds a live lease the letter is retried later; a lease whose
// holder died is taken over when it expires. A state store that is down
// leaves only the in-process guard, as with a single replica.
func (a *Adapter) lease(ctx context.Context, ext string) (func(), error) {
	key := "casesys." + safeKey(a.name) + ".create." + opaque("create", ext)
	b := make([]byte, 12)
	rand.Read(b)
	me := hex.EncodeToString(b)
	val, _ := json.Marshal(leaseValue{Holder: me, Until: a.now().Add(a.leaseTime())})
	release := func() {
		// Delete only our own lease; one taken over after expiry is the new holder's.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if cur, _, err := a.st.Get(ctx, key); err == nil {
			var lv leaseValue
			if json.Unmarshal(cur, &lv) == nil && lv.Holder == me {
				a.st.Delete(ctx, key)
			}
		}
	}
	for range 3 {
		_, err := a.st.Create(ctx, key, val)
		if err == nil {
			return release, nil
		}
		if !errors.Is(err, adapters.ErrExists) {
			a.log.Warn("state store unavailable; creating without the cross-replica guard", "code", "state_unavailable")
			return func() {}, nil
		}
		cur, rev, err := a.st.Get(ctx, key)
		if errors.Is(err, adapters.ErrNotFound) {
			continue // released meanwhile
		}
		if err != nil {
			a.log.Warn("state store unavailable; creating without the cross-replica guard", "code", "state_unavailable")
			return func() {}, nil
		}
		var lv leaseValue
		_ = json.Unmarshal(cur, &lv)
		if wait := lv.Until.Sub(a.now()); wait > 0 {
			return nil, adapters.RetryAfter("request_in_progress", "another delivery is creating the same object in the case system right now", wait, nil)
		}
		if _, err := a.st.Update(ctx, key, val, rev); err == nil {
			return release, nil
		}
	}
	return nil, adapters.RetryAfter("request_in_progress", "another delivery is creating the same object in the case system right now", time.Second, nil)
}
