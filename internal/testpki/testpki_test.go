package testpki

import (
	"crypto/tls"
	"crypto/x509"
	"testing"
)

func TestIssuedCertificatesVerifyAgainstTheCA(t *testing.T) {
	ca, err := New("test CA")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.Issue("localhost", []string{"localhost", "127.0.0.1"}, x509.ExtKeyUsageServerAuth)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(srv.TLS.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"localhost", "127.0.0.1"} {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool, DNSName: host}); err != nil {
			t.Errorf("%s: %v", host, err)
		}
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool, DNSName: "example.org"}); err == nil {
		t.Error("a name the certificate does not carry verified")
	}
	if _, err := tls.X509KeyPair(srv.CertPEM, srv.KeyPEM); err != nil {
		t.Errorf("PEM pair: %v", err)
	}
	cli, _ := ca.Issue("samhub", nil, x509.ExtKeyUsageClientAuth)
	if c, _ := x509.ParseCertificate(cli.TLS.Certificate[0]); c.SerialNumber.Cmp(cert.SerialNumber) == 0 {
		t.Error("two certificates share a serial number")
	}
}
