package email

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/samhub/samhub/adapters"
)

// Connection defaults (in poolConfig's tags): at most 8 connections to
// the mail server at once (servers limit connections per client: Microsoft
// 365's client submission allows 3, Postfix 50 by default), all of them
// kept between letters, so a burst of notices queues for a session instead
// of opening one connection per letter. 30 s is well below common server
// idle limits (Postfix: 300 s); 100 messages bounds how long one login lives.
const (
	maxIdleConnsLimit = 256 // the hub's largest delivery concurrency
	quitTimeout       = 5 * time.Second
)

// poolConfig holds the "smtp" block's connection reuse keys.
type poolConfig struct {
	MaxConns           int           `mapstructure:"max_conns" default:"8" doc:"Connections to the mail server open at once; deliveries beyond wait for a free session within their timeout. 0: no limit."`
	MaxIdleConns       int           `mapstructure:"max_idle_conns" default:"8" doc:"Logged-in sessions kept open between letters. 0 turns reuse off (a connection, handshake and login per letter)."`
	IdleTimeout        time.Duration `mapstructure:"idle_timeout" default:"30s" doc:"A kept session nobody used for this long is closed; keep it below the server's own idle timeout."`
	MaxMessagesPerConn int           `mapstructure:"max_messages_per_conn" default:"100" doc:"A session ends after this many messages, so no login lives for ever."`
}

// check validates the reuse keys.
func (c *poolConfig) check() (maxConns, maxIdle, maxMsgs int, idle time.Duration, err error) {
	maxConns, maxIdle, maxMsgs, idle = c.MaxConns, c.MaxIdleConns, c.MaxMessagesPerConn, c.IdleTimeout
	if maxConns < 0 || maxConns > maxIdleConnsLimit {
		return 0, 0, 0, 0, &adapters.ConfigError{Key: "max_conns", Msg: "must be between 0 (no limit) and 256"}
	}
	if maxIdle < 0 || maxIdle > maxIdleConnsLimit {
		return 0, 0, 0, 0, &adapters.ConfigError{Key: "max_idle_conns", Msg: "must be between 0 (no reuse) and 256"}
	}
	if maxMsgs < 1 {
		return 0, 0, 0, 0, &adapters.ConfigError{Key: "max_messages_per_conn", Msg: "must be 1 or more"}
	}
	if idle <= 0 {
		return 0, 0, 0, 0, &adapters.ConfigError{Key: "idle_timeout", Msg: "must be positive, like 30s"}
	}
	if maxConns > 0 && maxIdle > maxConns {
		maxIdle = maxConns // more could never be open
	}
	return maxConns, maxIdle, maxMsgs, idle, nil
}

// smtpPool keeps logged-in sessions between deliveries, like net/http's
// Transport keeps idle connections: a session is either in the pool or held
// by exactly one Deliver call, never both.
type smtpPool struct {
	maxIdle int
	maxMsgs int
	idleFor time.Duration
	// slots holds one token per open connection when max_conns limits
	// them (nil: no limit); a connection's Close gives its token back.
	slots chan struct{}

	mu       sync.Mutex
	idle     []*smtpSession // most recently used last
	closed   bool
	returned chan struct{} // closed (and replaced) when a session is put back
}

// get takes the most recently used idle session, or nil and a channel that
// is closed when a session is next put back.
func (p *smtpPool) get() (*smtpSession, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.idle)
	if n == 0 {
		if p.returned == nil {
			p.returned = make(chan struct{})
		}
		return nil, p.returned
	}
	ss := p.idle[n-1]
	p.idle[n-1] = nil
	p.idle = p.idle[:n-1]
	// If the timer already fired, its expire finds ss gone and does nothing.
	ss.idleTimer.Stop()
	return ss, nil
}

// acquire waits for a connection slot, a session put back (wake), or the
// end of ctx. It reports whether a slot was taken.
func (p *smtpPool) acquire(ctx context.Context, wake <-chan struct{}) (bool, error) {
	if p.slots == nil {
		return true, nil
	}
	select {
	case p.slots <- struct{}{}:
		return true, nil
	case <-wake:
		return false, nil
	case <-ctx.Done():
		return false, adapters.Retryable("busy", "every connection to the mail server stayed busy until the delivery timed out", ctx.Err())
	}
}

// slotConn gives its connection slot back when the connection closes,
// whichever path closes it.
type slotConn struct {
	net.Conn
	once sync.Once
	free func()
}

func (c *slotConn) Close() error {
	c.once.Do(c.free)
	return c.Conn.Close()
}

// put keeps ss for the next delivery, or says the caller must end it.
func (p *smtpPool) put(ss *smtpSession) bool {
	if ss.msgs >= p.maxMsgs {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || len(p.idle) >= p.maxIdle {
		return false
	}
	p.idle = append(p.idle, ss)
	ss.idleTimer = time.AfterFunc(p.idleFor, func() { p.expire(ss) })
	if p.returned != nil {
		close(p.returned) // wakes deliveries waiting for a session
		p.returned = nil
	}
	return true
}

// expire ends ss if it is still idle.
func (p *smtpPool) expire(ss *smtpSession) {
	p.mu.Lock()
	found := false
	for i, x := range p.idle {
		if x == ss {
			p.idle = append(p.idle[:i], p.idle[i+1:]...)
			found = true
			break
		}
	}
	p.mu.Unlock()
	if found {
		ss.quit()
	}
}

// close ends every idle session and keeps later ones from being pooled.
func (p *smtpPool) close() {
	p.mu.Lock()
	p.closed = true
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, ss := range idle {
		ss.idleTimer.Stop()
		wg.Go(ss.quit)
	}
	wg.Wait()
}

// bind ties a session taken from the pool to one delivery: ctx ending
// closes the connection, and the overall timeout starts again.
func (ss *smtpSession) bind(ctx context.Context, timeout time.Duration) {
	ss.guard.limit = time.Now().Add(timeout)
	raw := ss.guard.Conn
	ss.stop = context.AfterFunc(ctx, func() { raw.Close() })
}

// unbind releases the delivery's context. It reports false when the
// context already closed the connection.
func (ss *smtpSession) unbind() bool { return ss.stop() }

// quit says goodbye and hangs up, waiting at most quitTimeout for a server
// that no longer answers.
func (ss *smtpSession) quit() {
	ss.guard.limit = time.Now().Add(quitTimeout)
	_ = ss.c.Quit()
	_ = ss.c.Close()
}

// discard ends a session whose state is unknown after a failed command: a
// server that answered still gets a QUIT, a broken connection is just closed.
func (ss *smtpSession) discard(err error) {
	ss.stop()
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		ss.quit()
		return
	}
	_ = ss.c.Close()
}

// session returns a ready session for one delivery: a reset idle one, or a
// new one. An idle session the server has meanwhile dropped is not an
// error; it is closed and the next is tried.
func (s *SMTPSink) session(ctx context.Context) (*smtpSession, error) {
	for {
		ss, wake := s.pool.get()
		if ss == nil {
			got, err := s.pool.acquire(ctx, wake)
			if err != nil {
				return nil, err
			}
			if !got {
				continue // a session was put back: take it
			}
			return s.openHeld(ctx)
		}
		ss.bind(ctx, s.cfg.Timeout)
		// NOOP proves the server still listens. A kept session has no
		// transaction open (only sessions whose every transaction
		// succeeded are kept), so RSET would clear nothing, and after
		// it go-smtp greets the server again (EHLO) before MAIL: a
		// round trip more per letter.
		if err := ss.c.Noop(); err != nil {
			ss.stop()
			_ = ss.c.Close()
			if ctx.Err() != nil {
				return nil, adapters.Retryable("timeout", "the mail server did not answer in time", ctx.Err())
			}
			s.log.Debug("email: a kept mail connection was gone; using another")
			continue
		}
		return ss, nil
	}
}

// release returns a session after a successful delivery, or ends it when it
// may not be kept.
func (s *SMTPSink) release(ss *smtpSession) {
	if !ss.unbind() {
		// The delivery's context closed the connection meanwhile.
		_ = ss.c.Close()
		return
	}
	if !s.pool.put(ss) {
		ss.quit()
	}
}

// Close ends the kept sessions with QUIT. The hub calls it at shutdown; a
// sink that is never closed loses its sessions to the idle timeout.
func (s *SMTPSink) Close() error {
	s.pool.close()
	return nil
}
