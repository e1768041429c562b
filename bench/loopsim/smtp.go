package loopsim

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/emersion/go-smtp"
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
	srv     *smtp.Server
}

// StartSMTP listens on 127.0.0.1 at a random port; dir receives the CA file.
func StartSMTP(dir string) (*SMTP, error) {
	cert, pemBytes, err := selfSigned()
	if err != nil {
		return nil, err
	}
	s := &SMTP{Letters: newArrivals(), CAFile: filepath.Join(dir, "smtp-ca.pem")}
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
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			break // end of the header
		}
		line := sc.Bytes()
		if len(line) > 11 && bytes.EqualFold(line[:11], []byte("message-id:")) {
			ss.s.Letters.Mark(string(bytes.Trim(bytes.TrimSpace(line[11:]), "<>")))
		}
	}
	_, err := io.Copy(io.Discard, r)
	if err == nil {
		err = sc.Err()
	}
	return err
}

type quiet struct{}

func (quiet) Printf(string, ...any) {}
func (quiet) Println(...any)        {}

func selfSigned() (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "samhub bench relay"},
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pemBytes, nil
}
