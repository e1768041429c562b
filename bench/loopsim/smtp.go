package loopsim

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/emersion/go-message"
	"github.com/emersion/go-smtp"

	"github.com/samhub/samhub/internal/testpki"
)

// SMTP is an implicit-TLS mail relay that counts messages and forgets
// their bodies (so the benchmark's memory figure is the hub's, not a mail
// archive's). Letters records arrivals by Message-ID (without brackets),
// which the smtp sink derives from the letter id (email.MessageID).
type SMTP struct {
	Host    string
	Port    int
	CAFile  string // PEM of the self-signed certificate, for the smtp adapter's ca_file
	Letters *Arrivals
	Files   *Digests // attachments, decoded, by Message-ID
	srv     *smtp.Server
}

// StartSMTP listens on 127.0.0.1 at a random port; dir receives the CA file.
func StartSMTP(dir string) (*SMTP, error) {
	cert, pemBytes, err := selfSigned()
	if err != nil {
		return nil, err
	}
	s := &SMTP{Letters: newArrivals(), Files: newDigests(), CAFile: filepath.Join(dir, "smtp-ca.pem")}
	if err := os.WriteFile(s.CAFile, pemBytes, 0o600); err != nil {
		return nil, err
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &session{s: s}, nil }))
	srv.Domain = "localhost"
	srv.ErrorLog = quiet{}
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	srv.TLSConfig = tlsCfg
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	s.Host = host
	s.Port, _ = strconv.Atoi(port)
	s.srv = srv
	go func() { _ = srv.Serve(tls.NewListener(ln, tlsCfg)) }()
	return s, nil
}

// Close stops the server.
func (s *SMTP) Close() error { return s.srv.Close() }

type session struct{ s *SMTP }

func (*session) Mail(string, *smtp.MailOptions) error { return nil }
func (*session) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (*session) Reset()                               {}
func (*session) Logout() error                        { return nil }

func (ss *session) Data(r io.Reader) error {
	// Read as it streams in: the header's Message-ID, then each part's
	// body decoded and hashed (attachments), never held.
	e, err := message.Read(r)
	if err != nil && e == nil {
		return err
	}
	id := strings.Trim(strings.TrimSpace(e.Header.Get("Message-Id")), "<>")
	var sums []string
	if mr := e.MultipartReader(); mr != nil {
		for {
			p, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return err
			}
			h := newHashing()
			if _, err := io.Copy(h, p.Body); err != nil {
				return err
			}
			sums = append(sums, h.sum())
		}
	}
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	ss.s.Files.Set(id, sums)
	ss.s.Letters.Mark(id)
	return nil
}

type quiet struct{}

func (quiet) Printf(string, ...any) {}
func (quiet) Println(...any)        {}

func selfSigned() (tls.Certificate, []byte, error) {
	ca, err := testpki.New("samhub bench relay CA")
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := ca.Issue("samhub bench relay", []string{"localhost", "127.0.0.1"}, x509.ExtKeyUsageServerAuth)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	return leaf.TLS, ca.PEM, nil
}
