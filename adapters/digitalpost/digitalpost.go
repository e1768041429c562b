package digitalpost

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"time"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/adapters/httpclient"
)

// TypeName is the adapter type in configuration.
const TypeName = "digitalpost"

// KombiPath is SF1601 KombiPostAfsend's path under Serviceplatformen's base.
const KombiPath = "/service/KombiPostAfsend_1/kombi"

func init() {
	adapters.RegisterSink(TypeName, spec, func(deps adapters.Deps, cfg Config) (adapters.Sink, error) {
		return New(deps, cfg)
	})
}

// Adapter is one configured Digital Post sender: a Sink and a Readiness.
type Adapter struct {
	cfg  Config
	name string
	log  *slog.Logger
	st   adapters.StateStore
	now  func() time.Time
	c    *client

	keyMu sync.Mutex
	key   []byte // the message-UUID key, once read
}

var (
	_ adapters.Sink      = (*Adapter)(nil)
	_ adapters.Readiness = (*Adapter)(nil)
)

// New builds an adapter from a config (decoded from a block, or
// adapters.Defaults[Config]() with fields set). It checks it and reads the
// TLS files; it makes no network call. It needs a state store: the key
// its message UUIDs are derived with lives there.
func New(deps adapters.Deps, cfg Config) (*Adapter, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	if deps.State == nil {
		return nil, errors.New("digitalpost: needs a state store for the key its message UUIDs are derived with")
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := deps.Now
	if now == nil {
		now = time.Now
	}
	hc, err := httpclient.New(cfg.Config, cfg.Scope, now)
	if err != nil {
		return nil, err
	}
	return &Adapter{cfg: cfg, name: deps.Name, log: log, st: deps.State, now: now,
		c: &client{url: cfg.URL + KombiPath, http: hc.HTTP, tokens: hc.Tokens, timeout: cfg.Timeout, now: now}}, nil
}

// Ready fetches a token (if none is cached): the certificate, the client
// and the service agreement are in order. Serviceplatformen has no cheap
// read on the service itself.
func (a *Adapter) Ready(ctx context.Context) error {
	_, err := a.c.accessToken(ctx)
	return err
}

var unsafeKey = regexp.MustCompile(`[^A-Za-z0-9_=.-]`)

// uuidKey returns the key message UUIDs are derived with, making it on
// first use. Replicas race to create it; the loser reads the winner's.
func (a *Adapter) uuidKey(ctx context.Context) ([]byte, error) {
	a.keyMu.Lock()
	defer a.keyMu.Unlock()
	if a.key != nil {
		return a.key, nil
	}
	name := unsafeKey.ReplaceAllString("digitalpost."+a.name+".uuid-key", "_")
	for attempt := 0; attempt < 3; attempt++ {
		b, _, err := a.st.Get(ctx, name)
		if err == nil && len(b) >= 32 {
			a.key = b
			return b, nil
		}
		if err != nil && !errors.Is(err, adapters.ErrNotFound) {
			return nil, adapters.Retryable("state", "the hub's state store could not be read", err)
		}
		k := make([]byte, 32)
		if _, err := rand.Read(k); err != nil {
			return nil, adapters.Retryable("random", "the hub could not make a key", err)
		}
		_, err = a.st.Create(ctx, name, k)
		switch {
		case err == nil:
			a.key = k
			return k, nil
		case errors.Is(err, adapters.ErrExists):
			continue // another replica made it: read that one
		default:
			return nil, adapters.Retryable("state", "the hub's state store could not be written", err)
		}
	}
	return nil, adapters.Retryable("state", "the hub's state store did not settle on a key", nil)
}

// messageUUID is the MeMo messageUUID of letterID to the citizen with cpr:
// the same for every delivery of the letter to them, different for each
// custody holder, and no function of the CPR anyone without the key can
// invert. It has the form of a version-4 UUID (RFC 9562), which the
// service's schema requires.
func messageUUID(key []byte, letterID, cpr string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("memo-message\x00" + letterID + "\x00" + cpr))
	b := m.Sum(nil)[:16]
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// newUUID is a random version-4 UUID (a transaction id).
func newUUID() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
