package epj

import (
	"crypto/tls"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/adapters/tlsclient"
)

// Config is the adapter block under adapters.<name> (type: epj).
type Config struct {
	// URL is the FHIR base, e.g. https://epj-gateway.example.rn.dk/fhir. Required.
	URL string `mapstructure:"url"`
	// TokenURL is the OAuth2 token endpoint; default url + /oauth2/token.
	TokenURL string `mapstructure:"token_url"`
	// ClientID is the OAuth2 client id. Required.
	ClientID string `mapstructure:"client_id"`
	// ClientSecret, or ClientSecretFile naming a file that holds it; exactly one.
	ClientSecret     string `mapstructure:"client_secret"`
	ClientSecretFile string `mapstructure:"client_secret_file"`
	// Scope is the space-separated scopes asked for. Optional, default
	// "system/Patient.read system/Communication.write system/Communication.read system/DocumentReference.read".
	Scope string `mapstructure:"scope"`
	// Timeout bounds each HTTP request. Optional, default 30s.
	Timeout time.Duration `mapstructure:"timeout"`
	// Self is the municipality: sender of letters, addressee in the feed.
	// Self.SOR is required.
	Self Party `mapstructure:"self"`
	// Recipient is the SOR id of the region's child-psychiatry department
	// letters are addressed to. Required.
	Recipient string `mapstructure:"recipient"`
	// PollInterval is how often the feed is read. Optional; 0 (default)
	// disables the source, and the instance is a sink only.
	PollInterval time.Duration `mapstructure:"poll_interval"`
	// TLS adds a CA to trust and a client certificate (mTLS). Optional.
	TLS TLSConfig `mapstructure:"tls"`
}

// Party names an organisation by SOR id, GLN and name.
type Party struct {
	SOR  string `mapstructure:"sor"`
	GLN  string `mapstructure:"gln"`
	Name string `mapstructure:"name"`
}

// TLSConfig holds PEM file paths. CertFile and KeyFile go together.
type TLSConfig struct {
	CAFile   string `mapstructure:"ca_file"`
	CertFile string `mapstructure:"cert_file"`
	KeyFile  string `mapstructure:"key_file"`
}

const (
	defaultScope   = "system/Patient.read system/Communication.write system/Communication.read system/DocumentReference.read"
	defaultTimeout = 30 * time.Second
)

func (c *Config) setDefaults() {
	if c.Scope == "" {
		c.Scope = defaultScope
	}
	if c.Timeout == 0 {
		c.Timeout = defaultTimeout
	}
	c.URL = strings.TrimRight(c.URL, "/")
	if c.TokenURL == "" && c.URL != "" {
		// The gateway's own token endpoint, as the simulator and most
		// SMART-style gateways place it.
		c.TokenURL = c.URL + "/oauth2/token"
	}
}

// Validate checks the block without I/O. Keys are relative to the block.
func (c *Config) Validate() error {
	if err := checkURL(c.URL); err != nil {
		return &adapters.ConfigError{Key: "url", Msg: err.Error()}
	}
	if err := checkURL(c.TokenURL); err != nil {
		return &adapters.ConfigError{Key: "token_url", Msg: err.Error()}
	}
	if c.ClientID == "" {
		return &adapters.ConfigError{Key: "client_id", Msg: "must not be empty"}
	}
	if (c.ClientSecret == "") == (c.ClientSecretFile == "") {
		return &adapters.ConfigError{Key: "client_secret", Msg: "set exactly one of client_secret and client_secret_file"}
	}
	if c.Timeout < 0 {
		return &adapters.ConfigError{Key: "timeout", Msg: "must not be negative"}
	}
	if c.PollInterval < 0 {
		return &adapters.ConfigError{Key: "poll_interval", Msg: "must not be negative (0 disables the source)"}
	}
	if !isSOR(c.Self.SOR) {
		return &adapters.ConfigError{Key: "self.sor", Msg: "must be an SOR id (digits)"}
	}
	if c.Self.GLN != "" && !isDigits(c.Self.GLN, 13) {
		return &adapters.ConfigError{Key: "self.gln", Msg: "must be a 13-digit GLN (EAN location number)"}
	}
	if !isSOR(c.Recipient) {
		return &adapters.ConfigError{Key: "recipient", Msg: "must be the SOR id (digits) of the region's department"}
	}
	if c.Recipient == c.Self.SOR {
		// The source reads what is addressed to self: the hub would read
		// back its own letters to the region as notes from the region.
		return &adapters.ConfigError{Key: "recipient", Msg: "must differ from self.sor (the region's department, not the municipality)"}
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		return &adapters.ConfigError{Key: "tls.cert_file", Msg: "cert_file and key_file must be set together"}
	}
	return nil
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("must be an absolute http(s) URL")
	}
	return nil
}

// isSOR accepts SOR ids as digits (SOR codes are up to 18 digits).
func isSOR(s string) bool { return len(s) >= 1 && len(s) <= 18 && isDigits(s, len(s)) }

func isDigits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// secret returns the client secret, reading the file when one is named.
func (c *Config) secret() (string, error) {
	if c.ClientSecretFile == "" {
		return c.ClientSecret, nil
	}
	b, err := os.ReadFile(c.ClientSecretFile)
	if err != nil {
		return "", &adapters.ConfigError{Key: "client_secret_file", Msg: "cannot be read: " + err.Error()}
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", &adapters.ConfigError{Key: "client_secret_file", Msg: "is empty"}
	}
	return s, nil
}

// tlsConfig builds the client TLS settings, nil when none are configured.
func (t TLSConfig) tlsConfig() (*tls.Config, error) {
	return tlsclient.Config(tlsclient.Files{CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile}, "tls.")
}
