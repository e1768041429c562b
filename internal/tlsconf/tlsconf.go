// Package tlsconf builds client TLS settings from PEM files: TLS 1.2 or
// newer, an optional private CA and an optional client certificate (mutual
// TLS, standing in for FOCES/VOCES). The adapters (through
// adapters/tlsclient) and the broker's connection to an external NATS use
// it; it imports neither.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"os"
)

// Files names the PEM files of one client TLS setting.
type Files struct {
	CAFile   string `mapstructure:"ca_file" doc:"PEM file of the CA (or CAs) to trust instead of the system roots." example:"/etc/samhub/ca.pem"`
	CertFile string `mapstructure:"cert_file" doc:"PEM client certificate for mutual TLS; set together with key_file."`
	KeyFile  string `mapstructure:"key_file" doc:"PEM private key of cert_file."`
}

// Error is a mistake in the files, keyed as the caller named the block
// plus "ca_file" or "cert_file".
type Error struct {
	Key string
	Msg string
}

func (e *Error) Error() string { return e.Key + ": " + e.Msg }

// Config returns the settings, or nil when no file is named (the system
// roots apply). Mistakes are *Error keyed prefix+"ca_file" or
// prefix+"cert_file", e.g. prefix "tls.".
func Config(f Files, prefix string) (*tls.Config, error) {
	if f == (Files{}) {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if f.CAFile != "" {
		pem, err := os.ReadFile(f.CAFile)
		if err != nil {
			return nil, &Error{Key: prefix + "ca_file", Msg: "cannot be read: " + err.Error()}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, &Error{Key: prefix + "ca_file", Msg: "must contain at least one PEM certificate"}
		}
		tc.RootCAs = pool
	}
	if (f.CertFile == "") != (f.KeyFile == "") {
		return nil, &Error{Key: prefix + "cert_file", Msg: "cert_file and key_file must be set together"}
	}
	if f.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, &Error{Key: prefix + "cert_file", Msg: "cannot load the key pair: " + err.Error()}
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
