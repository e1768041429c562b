package casesys

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

// Config is the adapter's configuration block (adapters.<name> with
// type: casesys). Keys are snake_case.
type Config struct {
	URL              string        `mapstructure:"url"`                // API base URL, required, absolute http(s)
	TokenURL         string        `mapstructure:"token_url"`          // default url + /oauth2/token
	ClientID         string        `mapstructure:"client_id"`          // required
	ClientSecret     string        `mapstructure:"client_secret"`      // this or client_secret_file
	ClientSecretFile string        `mapstructure:"client_secret_file"` // file holding the secret (trailing newline ignored)
	Scope            string        `mapstructure:"scope"`              // default "cases.read cases.write"
	Timeout          time.Duration `mapstructure:"timeout"`            // per HTTP request, default 30s
	CaseType         string        `mapstructure:"case_type"`          // default SAMRAAD
	CaseTitle        string        `mapstructure:"case_title"`         // title of created cases, default "Samråd for børn og unge"
	KLE              string        `mapstructure:"kle"`                // KLE number of created cases, optional
	ResponsibleUnit  string        `mapstructure:"responsible_unit"`   // unit of created cases, optional
	OnMissingCase    string        `mapstructure:"on_missing_case"`    // create (default) or park
	// IdempotencyKeys says whether the case system honours the contract's
	// Idempotency-Key: honoured (default) or ignored, as the real systems
	// do (interfaces.md §1.4). With ignored, the adapter sends no key (so
	// the HTTP layer never resends a write on its own) and takes a lease
	// in its state store before each create, so deliveries of one letter
	// on several replicas at once cannot both create (guard.go).
	IdempotencyKeys string    `mapstructure:"idempotency_keys"`
	TLS             TLSConfig `mapstructure:"tls"`
	// PollInterval is how often the outbox is read (default 10s); 0
	// disables the source side.
	PollInterval time.Duration `mapstructure:"poll_interval"`
	Outbox       OutboxConfig  `mapstructure:"outbox"`
}

// TLSConfig adds a private CA and/or a client certificate (mutual TLS).
type TLSConfig struct {
	CAFile   string `mapstructure:"ca_file"`
	CertFile string `mapstructure:"cert_file"`
	KeyFile  string `mapstructure:"key_file"`
}

// OutboxConfig holds the routing defaults for letters read from the outbox.
type OutboxConfig struct {
	// Sender is the council's own identity, used as the sender of every
	// outbox letter (Role defaults to "municipality").
	Sender PartyConfig `mapstructure:"sender"`
}

// PartyConfig is a letter.Party in configuration.
type PartyConfig struct {
	Role         string `mapstructure:"role"`
	Name         string `mapstructure:"name"`
	GLN          string `mapstructure:"gln"`
	SOR          string `mapstructure:"sor"`
	Municipality string `mapstructure:"municipality"`
	Unit         string `mapstructure:"unit"`
	Email        string `mapstructure:"email"`
}

// Values of idempotency_keys.
const (
	IdempotencyHonoured = "honoured"
	IdempotencyIgnored  = "ignored"
)

// DefaultPollInterval applies when poll_interval is absent.
const DefaultPollInterval = 10 * time.Second

// ParseConfig decodes and checks an adapter block. Errors are
// *adapters.ConfigError with the key relative to the block.
func ParseConfig(raw map[string]any) (Config, error) {
	var c Config
	if err := adapters.Decode(raw, &c); err != nil {
		return c, err
	}
	if _, set := raw["poll_interval"]; !set {
		c.PollInterval = DefaultPollInterval
	}
	return c, c.normalise()
}

func (c *Config) normalise() error {
	base, err := httpURL(c.URL)
	if err != nil {
		return &adapters.ConfigError{Key: "url", Msg: "must be an absolute http(s) URL"}
	}
	c.URL = strings.TrimRight(base.String(), "/")
	if c.TokenURL == "" {
		c.TokenURL = c.URL + "/oauth2/token"
	} else if _, err := httpURL(c.TokenURL); err != nil {
		return &adapters.ConfigError{Key: "token_url", Msg: "must be an absolute http(s) URL"}
	}
	if c.ClientID == "" {
		return &adapters.ConfigError{Key: "client_id", Msg: "is required"}
	}
	switch {
	case c.ClientSecret != "" && c.ClientSecretFile != "":
		return &adapters.ConfigError{Key: "client_secret_file", Msg: "set client_secret or client_secret_file, not both"}
	case c.ClientSecretFile != "":
		b, err := os.ReadFile(c.ClientSecretFile)
		if err != nil {
			return &adapters.ConfigError{Key: "client_secret_file", Msg: "cannot be read: " + err.Error()}
		}
		c.ClientSecret = strings.TrimRight(string(b), "\r\n")
		if c.ClientSecret == "" {
			return &adapters.ConfigError{Key: "client_secret_file", Msg: "is empty"}
		}
	case c.ClientSecret == "":
		return &adapters.ConfigError{Key: "client_secret", Msg: "is required (or client_secret_file)"}
	}
	if c.Scope == "" {
		c.Scope = "cases.read cases.write"
	}
	if c.Timeout < 0 {
		return &adapters.ConfigError{Key: "timeout", Msg: "must not be negative"}
	}
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
	if c.CaseType == "" {
		c.CaseType = "SAMRAAD"
	}
	if c.CaseTitle == "" {
		c.CaseTitle = "Samråd for børn og unge"
	}
	switch c.OnMissingCase {
	case "":
		c.OnMissingCase = "create"
	case "create", "park":
	default:
		return &adapters.ConfigError{Key: "on_missing_case", Msg: "must be create or park"}
	}
	switch c.IdempotencyKeys {
	case "":
		c.IdempotencyKeys = IdempotencyHonoured
	case IdempotencyHonoured, IdempotencyIgnored:
	default:
		return &adapters.ConfigError{Key: "idempotency_keys", Msg: "must be honoured or ignored"}
	}
	if c.PollInterval < 0 {
		return &adapters.ConfigError{Key: "poll_interval", Msg: "must not be negative (0 disables the outbox source)"}
	}
	if c.Outbox.Sender.Role == "" {
		c.Outbox.Sender.Role = "municipality"
	}
	_, err = c.TLS.build()
	return err
}

func httpURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("not an absolute http(s) URL")
	}
	return u, nil
}

// build returns the client TLS settings, or nil when none are configured.
func (t TLSConfig) build() (*tls.Config, error) {
	return tlsclient.Config(tlsclient.Files{CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile}, "tls.")
}
