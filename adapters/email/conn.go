package email

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"time"
)

// guardConn caps every deadline a protocol library sets at an overall limit
// (go-smtp resets deadlines per command, which would otherwise outlive our
// timeout) and records the first bytes read in clear text, so we can tell
// afterwards whether the server advertised STARTTLS: go-smtp reports a
// missing STARTTLS only as an untyped error.
type guardConn struct {
	net.Conn
	limit     time.Time
	recording bool
	plain     bytes.Buffer
}

const maxRecorded = 16 << 10

func (g *guardConn) Read(p []byte) (int, error) {
	n, err := g.Conn.Read(p)
	if g.recording && g.plain.Len() < maxRecorded {
		g.plain.Write(p[:n])
	}
	return n, err
}

func (g *guardConn) cap(t time.Time) time.Time {
	if g.limit.IsZero() {
		return t
	}
	if t.IsZero() || t.After(g.limit) {
		return g.limit
	}
	return t
}

func (g *guardConn) SetDeadline(t time.Time) error     { return g.Conn.SetDeadline(g.cap(t)) }
func (g *guardConn) SetReadDeadline(t time.Time) error { return g.Conn.SetReadDeadline(g.cap(t)) }
func (g *guardConn) SetWriteDeadline(t time.Time) error {
	return g.Conn.SetWriteDeadline(g.cap(t))
}

// ehloOffers reports whether the recorded clear-text EHLO reply was complete
// and whether it listed ext (e.g. "STARTTLS").
func (g *guardConn) ehloOffers(ext string) (complete, offered bool) {
	lines := strings.Split(strings.ReplaceAll(g.plain.String(), "\r\n", "\n"), "\n")
	inEHLO := false
	for _, ln := range lines {
		if len(ln) < 4 || !strings.HasPrefix(ln, "250") {
			continue
		}
		if !inEHLO {
			// The first 250 line is the greeting reply to EHLO; the
			// keywords follow on the next lines.
			inEHLO = true
			if ln[3] == ' ' {
				return true, false
			}
			continue
		}
		kw := strings.ToUpper(strings.Fields(ln[4:] + " x")[0])
		if kw == ext {
			offered = true
		}
		if ln[3] == ' ' {
			return true, offered
		}
	}
	return false, offered
}

// isTransportError says whether err is the network failing rather than the
// peer answering: those are worth retrying.
func isTransportError(err error) bool {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}
