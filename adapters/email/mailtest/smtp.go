package mailtest

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// SMTPMode says how an SMTP test server offers TLS.
type SMTPMode int

const (
	SMTPImplicit    SMTPMode = iota // TLS from the first byte (port 465 style)
	SMTPStartTLS                    // clear text, STARTTLS offered (port 587 style)
	SMTPNoStartTLS                  // clear text only: STARTTLS is not offered
	SMTPStartTLSBad                 // STARTTLS advertised but refused with 454
)

// SMTPOptions configures StartSMTP.
type SMTPOptions struct {
	Mode SMTPMode
	// TLS overrides the CA's server configuration (e.g. to cap MaxVersion).
	TLS *tls.Config
	// Username and Password, when set, make AUTH PLAIN mandatory.
	Username, Password string
	// RcptError, when set, answers RCPT TO with its result.
	RcptError func(to string) error
	// RequireTLS advertises REQUIRETLS (RFC 8689).
	RequireTLS bool
	// DataError, when set, answers the end of DATA with its result for
	// the transaction's recipients; a message it refuses is not stored.
	DataError func(to []string) error
}

// Received is one message the server accepted.
type Received struct {
	From       string
	To         []string
	Data       []byte
	TLS        bool // the transaction ran over TLS
	RequireTLS bool // MAIL FROM carried REQUIRETLS
}

// SMTPServer is a running SMTP server that stores what it receives.
type SMTPServer struct {
	Host string
	Port int
	Addr string

	mu         sync.Mutex
	msgs       []Received
	srv        *smtp.Server
	opts       SMTPOptions
	conns      []net.Conn // every accepted connection, for DropConnections
	failRcpt   []error    // answers for the next RCPT TO commands
	rcptFault  error      // while set, the answer to every RCPT TO
	loseReply  int        // messages stored without an answer to DATA
	dropData   int        // messages dropped with the connection, not stored
	accepted   int
	closed     int
	handshakes int
	commands   map[string]int // client commands by verb (commandCounter)
}

// StartSMTP starts a server on 127.0.0.1 with a random port.
func StartSMTP(t testing.TB, ca *CA, opts SMTPOptions) *SMTPServer {
	t.Helper()
	s := &SMTPServer{opts: opts}
	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.Domain = "localhost"
	srv.EnableREQUIRETLS = opts.RequireTLS
	srv.ErrorLog = quietLogger{}
	srv.Debug = &commandCounter{srv: s}
	tlsCfg := opts.TLS
	if tlsCfg == nil {
		tlsCfg = ca.ServerTLS()
	}
	tlsCfg = tlsCfg.Clone()
	// Runs on the server side once a handshake (implicit or STARTTLS)
	// succeeded, so tests can count what connection reuse saves.
	tlsCfg.VerifyConnection = func(tls.ConnectionState) error {
		s.mu.Lock()
		s.handshakes++
		s.mu.Unlock()
		return nil
	}

	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var ln net.Listener = &countingListener{Listener: tcp, srv: s}
	switch opts.Mode {
	case SMTPImplicit:
		srv.TLSConfig = tlsCfg
		ln = tls.NewListener(ln, tlsCfg)
	case SMTPStartTLS:
		srv.TLSConfig = tlsCfg
	case SMTPStartTLSBad:
		srv.TLSConfig = &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return nil, errors.New("refused")
		}}
	case SMTPNoStartTLS:
		srv.AllowInsecureAuth = true // so a client that wrongly carried on could be caught sending
	}
	s.srv = srv
	s.Addr = ln.Addr().String()
	host, port, _ := net.SplitHostPort(s.Addr)
	s.Host = host
	s.Port, _ = strconv.Atoi(port)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		_ = ln.Close() // Close misses a listener Serve has not registered yet
		<-done
	})
	return s
}

// Connections is how many TCP connections the server has accepted.
func (s *SMTPServer) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}

// OpenConnections is how many accepted connections are still open.
func (s *SMTPServer) OpenConnections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted - s.closed
}

// Handshakes is how many TLS handshakes completed on the server side.
func (s *SMTPServer) Handshakes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.handshakes
}

// DropConnections closes every open client connection and keeps listening,
// as a server does when its idle timeout ends a connection a client keeps.
func (s *SMTPServer) DropConnections() {
	s.mu.Lock()
	conns := s.conns
	s.conns = nil
	s.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

// FailNextRcpt answers the next n RCPT TO commands with err (an
// *smtp.SMTPError: 451 for a temporary refusal, 550 for a permanent one).
func (s *SMTPServer) FailNextRcpt(n int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failRcpt = append(s.failRcpt, err)
	}
}

// FailRcpt answers every RCPT TO with err from now on (an *smtp.SMTPError,
// e.g. 451 while the server is in trouble); nil answers normally again.
func (s *SMTPServer) FailRcpt(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rcptFault = err
}

// LoseNextReply makes the server store the next message and close the
// connection before it answers DATA, as when the connection fails after
// the server committed the message.
func (s *SMTPServer) LoseNextReply() {
	s.mu.Lock()
	s.loseReply++
	s.mu.Unlock()
}

// DropNextData makes the server close the connection while the next
// message it would accept comes in, before it is stored, as when the
// connection fails in the middle of DATA.
func (s *SMTPServer) DropNextData() {
	s.mu.Lock()
	s.dropData++
	s.mu.Unlock()
}

// countingListener counts and remembers accepted connections, and counts
// them again when they close.
type countingListener struct {
	net.Listener
	srv *SMTPServer
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, srv: l.srv}
	l.srv.mu.Lock()
	l.srv.accepted++
	l.srv.conns = append(l.srv.conns, tc)
	l.srv.mu.Unlock()
	return tc, nil
}

type trackedConn struct {
	net.Conn
	srv  *SMTPServer
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.srv.mu.Lock()
		c.srv.closed++
		c.srv.mu.Unlock()
	})
	return c.Conn.Close()
}

// Commands is how many times clients sent the command verb (EHLO, RSET,
// NOOP, MAIL…), so tests can count the round trips a letter costs.
func (s *SMTPServer) Commands(verb string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.commands[verb]
}

// commandCounter reads the server's protocol trace (both directions, after
// TLS, every connection's) line by line and counts the client's commands:
// replies start with a digit, and message lines between DATA and "." are
// skipped. The counts are exact when connections take turns, as in the
// tests that read them; concurrent connections may interleave lines.
type commandCounter struct {
	srv    *SMTPServer
	mu     sync.Mutex
	line   []byte
	inData bool
}

func (c *commandCounter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range p {
		if b != '\n' {
			c.line = append(c.line, b)
			continue
		}
		l := strings.TrimRight(string(c.line), "\r")
		c.line = c.line[:0]
		switch {
		case c.inData:
			c.inData = l != "."
		case l == "" || (l[0] >= '0' && l[0] <= '9'):
			if strings.HasPrefix(l, "354") {
				c.inData = true
			}
		default:
			verb, _, _ := strings.Cut(l, " ")
			c.srv.mu.Lock()
			if c.srv.commands == nil {
				c.srv.commands = map[string]int{}
			}
			c.srv.commands[strings.ToUpper(verb)]++
			c.srv.mu.Unlock()
		}
	}
	return len(p), nil
}

// Messages returns a copy of everything received so far.
func (s *SMTPServer) Messages() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.msgs...)
}

func (s *SMTPServer) newSession(c *smtp.Conn) (smtp.Session, error) {
	_, isTLS := c.TLSConnectionState()
	return &smtpSession{srv: s, conn: c, tlsAtStart: isTLS}, nil
}

type smtpSession struct {
	srv        *SMTPServer
	conn       *smtp.Conn
	tlsAtStart bool
	authed     bool
	cur        Received
}

func (ss *smtpSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (ss *smtpSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != ss.srv.opts.Username || password != ss.srv.opts.Password {
			return smtp.ErrAuthFailed
		}
		ss.authed = true
		return nil
	}), nil
}

func (ss *smtpSession) Mail(from string, opts *smtp.MailOptions) error {
	if ss.srv.opts.Username != "" && !ss.authed {
		return smtp.ErrAuthRequired
	}
	_, isTLS := ss.conn.TLSConnectionState()
	ss.cur = Received{From: from, TLS: isTLS, RequireTLS: opts != nil && opts.RequireTLS}
	return nil
}

func (ss *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.srv.mu.Lock()
	var injected error
	if len(ss.srv.failRcpt) > 0 {
		injected, ss.srv.failRcpt = ss.srv.failRcpt[0], ss.srv.failRcpt[1:]
	} else if ss.srv.rcptFault != nil {
		injected = ss.srv.rcptFault
	}
	ss.srv.mu.Unlock()
	if injected != nil {
		return injected
	}
	if f := ss.srv.opts.RcptError; f != nil {
		if err := f(to); err != nil {
			return err
		}
	}
	ss.cur.To = append(ss.cur.To, to)
	return nil
}

func (ss *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if f := ss.srv.opts.DataError; f != nil {
		if err := f(ss.cur.To); err != nil {
			ss.cur = Received{}
			return err
		}
	}
	ss.cur.Data = b
	ss.srv.mu.Lock()
	if ss.srv.dropData > 0 {
		ss.srv.dropData--
		ss.srv.mu.Unlock()
		ss.cur = Received{}
		_ = ss.conn.Conn().Close()
		return errors.New("connection dropped by test")
	}
	ss.srv.msgs = append(ss.srv.msgs, ss.cur)
	lose := ss.srv.loseReply > 0
	if lose {
		ss.srv.loseReply--
	}
	ss.srv.mu.Unlock()
	ss.cur = Received{}
	if lose {
		_ = ss.conn.Conn().Close() // committed, and the answer never leaves
	}
	return nil
}

func (ss *smtpSession) Reset()        { ss.cur = Received{} }
func (ss *smtpSession) Logout() error { return nil }

type quietLogger struct{}

func (quietLogger) Printf(string, ...any) {}
func (quietLogger) Println(...any)        {}
