// Package tlsclient builds the client TLS settings adapters use to reach
// other systems: TLS 1.2 or newer, an optional private CA and an optional
// client certificate (mutual TLS, standing in for FOCES/VOCES). It is
// internal/tlsconf, which the broker uses too, with the adapters' error
// type.
package tlsclient

import (
	"crypto/tls"
	"errors"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/internal/tlsconf"
)

// Files names the PEM files of one client TLS setting.
type Files = tlsconf.Files

// Config returns the settings, or nil when no file is named (the system
// roots apply). Mistakes are *adapters.ConfigError keyed prefix+"ca_file"
// or prefix+"cert_file", e.g. prefix "tls.".
func Config(f Files, prefix string) (*tls.Config, error) {
	tc, err := tlsconf.Config(f, prefix)
	var te *tlsconf.Error
	if errors.As(err, &te) {
		return nil, &adapters.ConfigError{Key: te.Key, Msg: te.Msg}
	}
	return tc, err
}
