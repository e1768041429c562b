// Package mailtest runs real SMTP and IMAP servers in process on 127.0.0.1
// for tests, with TLS from a throwaway CA. Servers stop when the test ends.
package mailtest

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"

	"github.com/samhub/samhub/internal/testpki"
)

// CA is a throwaway certificate authority with one server certificate for
// 127.0.0.1 and localhost.
type CA struct {
	// PEMFile holds the CA certificate, for an adapter's ca_file.
	PEMFile string
	// Pool trusts the CA.
	Pool *x509.CertPool
	// ServerCert is signed by the CA.
	ServerCert tls.Certificate
}

// NewCA makes a CA and a server certificate for 127.0.0.1 and localhost.
func NewCA(t testing.TB) *CA {
	t.Helper()
	ca, err := testpki.New("Samhub test CA")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.Issue("localhost", []string{"localhost", "127.0.0.1"}, x509.ExtKeyUsageServerAuth)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(file, ca.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return &CA{PEMFile: file, Pool: ca.Pool, ServerCert: srv.TLS}
}

// ServerTLS is a server configuration presenting the CA's certificate.
func (ca *CA) ServerTLS() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{ca.ServerCert}, MinVersion: tls.VersionTLS12}
}
