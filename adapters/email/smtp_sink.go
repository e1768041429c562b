package email

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/adapters/body"
	"github.com/samhub/samhub/internal/failpoint"
	"github.com/samhub/samhub/pipeline/letter"
)

// SMTPSink delivers letters by SMTP submission over TLS. Build it with
// NewSMTPSink or through the adapter registry (type "smtp").
type SMTPSink struct {
	name   string
	log    *slog.Logger
	state  adapters.StateStore
	now    func() time.Time
	cfg    smtpConfig
	conn   *resolved
	allow  allowList
	dialer net.Dialer
	pool   *smtpPool
}

// NewSMTPSink builds the "smtp" sink from its configuration block. Errors
// name keys relative to the block.
func NewSMTPSink(deps adapters.Deps, cfg map[string]any) (*SMTPSink, error) {
	var c smtpConfig
	if err := decodeBlock("smtp", cfg, &c); err != nil {
		return nil, err
	}
	return newSMTPSink(deps, c)
}

func newSMTPSink(deps adapters.Deps, c smtpConfig) (*SMTPSink, error) {
	r, allow, err := c.check()
	if err != nil {
		return nil, err
	}
	maxConns, maxIdle, maxMsgs, idleFor, err := c.poolConfig.check()
	if err != nil {
		return nil, err
	}
	pool := &smtpPool{maxIdle: maxIdle, maxMsgs: maxMsgs, idleFor: idleFor}
	if maxConns > 0 {
		pool.slots = make(chan struct{}, maxConns)
	}
	s := &SMTPSink{name: deps.Name, log: deps.Logger, state: deps.State, now: deps.Now, cfg: c, conn: r, allow: allow, pool: pool}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if allow.empty() {
		s.log.Warn("email: the allow-list is empty, so this destination will refuse every letter", "key", "allow")
	}
	return s, nil
}

// addressee is one email address of a delivery and the parties (as in
// l.To) that have it.
type addressee struct {
	addr    string
	parties []letter.Party
}

// ownSide are the roles of receivers on the municipality's own side: the
// coordinator, the council, and the addresses the hub's notices name.
var ownSide = []string{letter.RoleCoordinator, letter.RoleMunicipality, "contact"}

// recipients are the delivery's addressees that have an email address,
// lower-cased and without duplicates, in letter order. The addressees are
// the ones the pipeline resolved (l.To). A delivery with none is one to
// the municipality's own side (a hub notice, a municipality or internal
// destination), which needs no consent: it goes to the letter's receivers
// of that side only, never to a school, GP or region the letter also names,
// which only a destination of their sector (and its consent) may reach.
func recipients(l *letter.Letter) []addressee {
	var out []addressee
	at := map[string]int{}
	parties := l.To
	if len(parties) == 0 {
		for _, p := range l.Receivers {
			if slices.Contains(ownSide, p.Role) {
				parties = append(parties, p)
			}
		}
	}
	for _, p := range parties {
		a := strings.ToLower(strings.TrimSpace(p.Email))
		if a == "" || p.Role == letter.RoleParents {
			continue // a custody holder named among the receivers is no email recipient
		}
		if i, seen := at[a]; seen {
			out[i].parties = append(out[i].parties, p)
			continue
		}
		at[a] = len(out)
		out = append(out, addressee{addr: a, parties: []letter.Party{p}})
	}
	return out
}

// Deliver sends the letter to each receiver with an email address, one
// message per recipient. Recipients already served (sent marker in the state
// store) are skipped, so a retried delivery sends nothing twice. A
// recipient the server refuses does not keep the letter from the others:
// when some got it and some did not, the error is *adapters.Partial, so
// the source hears who has it.
func (s *SMTPSink) Deliver(ctx context.Context, l *letter.Letter) (adapters.Delivery, error) {
	// Email carries letters to professionals only: a custody holder is a
	// citizen, reached by Digital Post (configuration refuses an smtp
	// destination in the parents sector; this holds behind it).
	for _, p := range l.To {
		if p.Role == letter.RoleParents {
			return adapters.Delivery{}, adapters.Permanent("citizen_by_email", "email carries letters to professionals only; the parents are reached by Digital Post", nil)
		}
	}
	if err := ctx.Err(); err != nil {
		// Ended before it began: nothing was sent (the contract's cancelled
		// call, retryable), whatever a kept session could still do.
		return adapters.Delivery{}, adapters.Retryable("cancelled", "the delivery was cancelled before it started", err)
	}
	rcpts := recipients(l)
	if len(rcpts) == 0 {
		return adapters.Delivery{}, adapters.Permanent("no_email_recipient", "the letter has no receiver with an email address that this destination may mail (without resolved addressees, only the municipality's own: coordinator, council, notice recipients)", nil)
	}
	if s.allow.empty() {
		return adapters.Delivery{}, adapters.Permanent("allow_list_empty", "the email allow-list (allow) of this destination is empty, so nothing can be sent", nil)
	}
	for _, r := range rcpts {
		if !s.allow.allows(r.addr) {
			return adapters.Delivery{}, adapters.Permanent("recipient_not_allowed", "recipient not on the allow-list", nil)
		}
	}

	ids := make([]string, len(rcpts))
	var (
		pending   []int
		delivered []letter.Party // served now or by an earlier delivery
	)
	for i, r := range rcpts {
		ids[i] = "<" + MessageID(l.ID, r.addr, s.cfg.From) + ">"
		sent, err := s.wasSent(ctx, l.ID, r.addr)
		if err != nil {
			return adapters.Delivery{}, adapters.StateUnavailable("the hub's state store could not be read", err)
		}
		if sent {
			delivered = append(delivered, r.parties...)
		} else {
			pending = append(pending, i)
		}
	}
	delivery := adapters.Delivery{RemoteID: strings.Join(ids, ",")}
	if len(pending) == 0 {
		delivery.Existing = true
		return delivery, nil
	}

	// sess is held by this call alone; it goes back to the pool only after
	// every transaction on it succeeded.
	var sess *smtpSession
	defer func() {
		if sess != nil {
			s.release(sess)
		}
	}()
	var (
		failed []letter.Party
		errs   []error // one per recipient not served, in order
	)
	for n, i := range pending {
		o := outgoing{
			from: s.cfg.From, to: rcpts[i].addr,
			subject:   strings.ReplaceAll(s.cfg.Subject, "{ref}", Ref(l.ID)),
			messageID: strings.Trim(ids[i], "<>"),
			date:      s.now(),
			letter:    l,
		}
		var (
			err     error
			refused bool
		)
		if sess == nil {
			sess, err = s.session(ctx)
		}
		if err == nil {
			write := func(w io.Writer) error { return writeMessage(ctx, w, o) }
			if refused, err = sess.send(ctx, s.cfg.From, rcpts[i].addr, write, s.cfg.RequireTLS); err != nil {
				sess.discard(err)
				sess = nil
			}
		}
		if err != nil {
			failed, errs = append(failed, rcpts[i].parties...), append(errs, err)
			if !refused || ctx.Err() != nil {
				// No connection, no TLS, a refused login or sender, or
				// the letter's own parts: the recipients left would fare
				// the same (and a login tried once per recipient could
				// lock the account).
				for _, j := range pending[n+1:] {
					failed, errs = append(failed, rcpts[j].parties...), append(errs, err)
				}
				break
			}
			continue // the server refused this recipient or its message: try the next
		}
		failpoint.Kill(failpoint.SMTPSent)
		if sess.msgs++; sess.msgs >= s.pool.maxMsgs {
			sess.stop()
			sess.quit()
			sess = nil
		}
		if err := s.markSent(ctx, l.ID, rcpts[i].addr, ids[i]); err != nil {
			// The mail is out; a retry would send it again with the same
			// Message-ID, which is the best we can do without the store.
			s.log.Warn("email: could not record a sent message", slog.Any("letter", l), "err", err)
		}
		delivered = append(delivered, rcpts[i].parties...)
		s.log.Info("email: letter sent", slog.Any("letter", l), "message_id", ids[i])
	}
	if len(errs) == 0 {
		return delivery, nil
	}
	err := combine(errs, len(rcpts))
	if len(delivered) > 0 {
		return adapters.Delivery{}, &adapters.Partial{Delivered: delivered, Failed: failed, Err: err}
	}
	return adapters.Delivery{}, err
}

// combine makes one error of the recipients' failures: retryable if any is
// (the letter comes again and only the recipients not served get it),
// else permanent. The reason counts recipients and never names them.
func combine(errs []error, total int) error {
	first := errs[0]
	if len(errs) == 1 && total == 1 {
		return first
	}
	for _, err := range errs {
		if class, _, _ := adapters.Classify(err); class == adapters.ClassRetryable {
			first = err
			break
		}
	}
	class, reason, code := adapters.Classify(first)
	return &adapters.Error{Class: class, Code: code, RetryAfter: adapters.RetryAfterOf(first), Err: first,
		Reason: fmt.Sprintf("%d of %d recipients not reached: %s", len(errs), total, reason)}
}

func sentKey(letterID, rcpt string) string { return "smtp.sent." + recipientHash(letterID, rcpt) }

func (s *SMTPSink) wasSent(ctx context.Context, letterID, rcpt string) (bool, error) {
	if s.state == nil {
		return false, nil
	}
	_, _, err := s.state.Get(ctx, sentKey(letterID, rcpt))
	if errors.Is(err, adapters.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

func (s *SMTPSink) markSent(ctx context.Context, letterID, rcpt, messageID string) error {
	if s.state == nil {
		return nil
	}
	_, err := s.state.Put(ctx, sentKey(letterID, rcpt), []byte(messageID))
	return err
}

// smtpSession is one authenticated TLS connection.
type smtpSession struct {
	c         *smtp.Client
	guard     *guardConn
	handshook *atomic.Bool
	stop      func() bool // unties the connection from the holder's context
	msgs      int         // messages sent on this connection
	idleTimer *time.Timer // while pooled: ends the session when unused
}

// open connects, secures and authenticates on a new connection, waiting
// for a connection slot if max_conns limits them. Every error is
// classified.
func (s *SMTPSink) open(ctx context.Context) (*smtpSession, error) {
	if _, err := s.pool.acquire(ctx, nil); err != nil {
		return nil, err
	}
	return s.openHeld(ctx)
}

// openHeld is open for a caller that holds a connection slot; the slot is
// given back when the connection closes, or at once if it fails to open.
func (s *SMTPSink) openHeld(ctx context.Context) (*smtpSession, error) {
	raw, err := s.dialer.DialContext(ctx, "tcp", s.conn.addr)
	if err != nil {
		if s.pool.slots != nil {
			<-s.pool.slots
		}
		return nil, adapters.Retryable("network", "could not connect to the mail server", err)
	}
	if s.pool.slots != nil {
		raw = &slotConn{Conn: raw, free: func() { <-s.pool.slots }}
	}
	g := &guardConn{Conn: raw, limit: time.Now().Add(s.cfg.Timeout)}
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	fail := func(e error) (*smtpSession, error) {
		stop()
		raw.Close()
		if ctx.Err() != nil {
			return nil, adapters.Retryable("timeout", "the mail server did not answer in time", ctx.Err())
		}
		return nil, e
	}

	var handshook atomic.Bool
	tlsCfg := s.conn.tls.Clone()
	// Called only when the handshake and certificate checks succeeded; an
	// error before that point is a TLS failure, not a mail failure.
	tlsCfg.VerifyConnection = func(tls.ConnectionState) error { handshook.Store(true); return nil }

	var c *smtp.Client
	switch s.conn.mode {
	case modeImplicit:
		tc := tls.Client(g, tlsCfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fail(classifyTLS(err))
		}
		c = smtp.NewClient(tc)
	default:
		g.recording = true
		c, err = smtp.NewClientStartTLS(g, tlsCfg)
		g.recording = false
		if err != nil {
			if complete, offered := g.ehloOffers("STARTTLS"); complete && !offered {
				return fail(adapters.Permanent("starttls_missing", "the mail server did not offer STARTTLS, so nothing was sent", err))
			}
			return fail(classifySMTP(err, "connect", false))
		}
	}
	c.CommandTimeout = s.cfg.Timeout
	c.SubmissionTimeout = s.cfg.Timeout
	sess := &smtpSession{c: c, guard: g, handshook: &handshook, stop: stop}

	if s.conn.username != "" {
		// Hello runs EHLO over TLS now, which completes the handshake for
		// STARTTLS and refreshes the extension list.
		if !c.SupportsAuth("PLAIN") {
			err := c.Noop() // surface a TLS failure before blaming AUTH
			if err != nil {
				c.Close()
				return fail(classifySMTP(err, "connect", handshook.Load()))
			}
			c.Close()
			return fail(adapters.Permanent("auth_unsupported", "the mail server does not offer password login (AUTH PLAIN) over TLS", nil))
		}
		if err := c.Auth(sasl.NewPlainClient("", s.conn.username, s.conn.password)); err != nil {
			c.Close()
			return fail(classifySMTP(err, "auth", handshook.Load()))
		}
	} else if err := c.Noop(); err != nil {
		c.Close()
		return fail(classifySMTP(err, "connect", handshook.Load()))
	}
	if !handshook.Load() {
		c.Close()
		return fail(adapters.Permanent("tls_failed", "the connection to the mail server is not encrypted", nil))
	}
	return sess, nil
}

// send runs one mail transaction; write writes the message into DATA as
// it goes out. When write fails the message is not ended (no final "."):
// the caller closes the connection, and the server drops what it got.
// refused reports the server's refusal of this recipient or of its
// message (an SMTP reply to RCPT or DATA), which need not hold for the
// next recipient.
func (ss *smtpSession) send(ctx context.Context, from, to string, write func(io.Writer) error, requireTLS bool) (refused bool, err error) {
	opts := &smtp.MailOptions{}
	if requireTLS {
		if ok, _ := ss.c.Extension("REQUIRETLS"); !ok {
			return false, adapters.Permanent("requiretls_missing", "the mail server does not support REQUIRETLS, which this destination requires", nil)
		}
		opts.RequireTLS = true
	}
	var se *smtp.SMTPError
	wrap := func(err error, stage string) error {
		if ctx.Err() != nil {
			return adapters.Retryable("timeout", "the mail server did not answer in time", ctx.Err())
		}
		return classifySMTP(err, stage, true)
	}
	if err := ss.c.Mail(from, opts); err != nil {
		return false, wrap(err, "mail")
	}
	if err := ss.c.Rcpt(to, nil); err != nil {
		return errors.As(err, &se), wrap(err, "rcpt")
	}
	w, err := ss.c.Data()
	if err != nil {
		return errors.As(err, &se), wrap(err, "data")
	}
	failpoint.Kill(failpoint.SMTPInData)
	if err := write(w); err != nil {
		if perr := body.Unreadable(err); perr != nil {
			return false, perr
		}
		return false, wrap(err, "data")
	}
	if err := w.Close(); err != nil {
		return errors.As(err, &se), wrap(err, "data")
	}
	return false, nil
}

// classifySMTP maps an SMTP client error to the hub's classes. Reasons name
// the step and the reply code, never addresses or the server's text (which
// may echo an address).
func classifySMTP(err error, stage string, handshook bool) error {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		what := map[string]string{
			"connect": "the mail server refused the connection",
			"auth":    "the mail server refused the login",
			"mail":    "the mail server refused the sender",
			"rcpt":    "the mail server refused the recipient",
			"data":    "the mail server refused the message",
		}[stage]
		code := fmt.Sprintf("smtp_%d", se.Code)
		if se.Code/100 == 4 {
			return adapters.Retryable(code, fmt.Sprintf("%s for now (SMTP %d); it will be tried again", what, se.Code), err)
		}
		return adapters.Permanent(code, fmt.Sprintf("%s (SMTP %d)", what, se.Code), err)
	}
	if !handshook && stage != "auth" {
		if e := classifyTLS(err); e != nil {
			return e
		}
	}
	return adapters.Retryable("network", "the connection to the mail server failed", err)
}

// classifyTLS sorts a handshake error: a dropped connection may be retried,
// anything else (untrusted certificate, version refused, not TLS at all)
// will fail the same way next time.
func classifyTLS(err error) error {
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	switch {
	case errors.As(err, &cv), errors.As(err, &ua), errors.As(err, &he):
		return adapters.Permanent("tls_untrusted", "the mail server's certificate could not be verified (wrong CA or name)", err)
	case isTransportError(err):
		return adapters.Retryable("network", "the connection to the mail server failed during the TLS handshake", err)
	default:
		return adapters.Permanent("tls_failed", "no TLS connection could be agreed with the mail server (TLS 1.2 or newer is required)", err)
	}
}

// Ready connects, secures and logs in on a new connection: the mail server
// is usable for letters exactly when this succeeds. The session is then
// kept for the next letter like any other.
func (s *SMTPSink) Ready(ctx context.Context) error {
	sess, err := s.open(ctx)
	if err != nil {
		return err
	}
	s.release(sess)
	return nil
}

var (
	_ adapters.Sink      = (*SMTPSink)(nil)
	_ adapters.Readiness = (*SMTPSink)(nil)
)

// Capacity is two deliveries per connection of the pool (max_conns): one
// sending, one ready to take the session next.
func (s *SMTPSink) Capacity() int { return 2 * cap(s.pool.slots) }
