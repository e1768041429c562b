package email

import (
	"fmt"
	"strings"
	"time"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/pipeline/letter"
)

// imapConfig is the "imap" adapter block.
type imapConfig struct {
	connConfig       `mapstructure:",squash"`
	Mailbox          string        `mapstructure:"mailbox"`
	ProcessedMailbox string        `mapstructure:"processed_mailbox"`
	ErrorMailbox     string        `mapstructure:"error_mailbox"`
	PollInterval     time.Duration `mapstructure:"poll_interval"`
	MaxBytes         int64         `mapstructure:"max_bytes"`
	Timeout          time.Duration `mapstructure:"timeout"`
	// Kind is the letter kind given to mail no rule matches (default note).
	Kind  string     `mapstructure:"kind"`
	Rules []kindRule `mapstructure:"rules"`
	// MaxBackoff caps the wait between reconnect attempts.
	MaxBackoff time.Duration `mapstructure:"max_backoff"`
}

// kindRule gives mail matching every set condition a letter kind. First
// match wins.
type kindRule struct {
	From            string `mapstructure:"from"`             // address or "@domain"
	SubjectContains string `mapstructure:"subject_contains"` // case-insensitive
	Kind            string `mapstructure:"kind"`
}

func (r kindRule) matches(from, subject string) bool {
	if r.From != "" {
		f := strings.ToLower(from)
		want := strings.ToLower(r.From)
		if strings.HasPrefix(want, "@") {
			if !strings.HasSuffix(f, want) {
				return false
			}
		} else if f != want {
			return false
		}
	}
	if r.SubjectContains != "" && !strings.Contains(strings.ToLower(subject), strings.ToLower(r.SubjectContains)) {
		return false
	}
	return true
}

func checkKind(key, k string) error {
	for _, v := range letter.Kinds {
		if string(v) == k {
			return nil
		}
	}
	return &adapters.ConfigError{Key: key, Msg: fmt.Sprintf("must be one of %v", letter.Kinds)}
}

func (c *imapConfig) check() (*resolved, error) {
	r, err := c.resolve(993, 143)
	if err != nil {
		return nil, err
	}
	if r.username == "" {
		return nil, &adapters.ConfigError{Key: "username", Msg: "must be set: the mailbox is read with a login"}
	}
	if c.Mailbox == "" {
		c.Mailbox = "INBOX"
	}
	if c.ProcessedMailbox == "" {
		c.ProcessedMailbox = "Samhub/Processed"
	}
	if c.ErrorMailbox == "" {
		c.ErrorMailbox = "Samhub/Error"
	}
	if c.ProcessedMailbox == c.Mailbox {
		return nil, &adapters.ConfigError{Key: "processed_mailbox", Msg: "must differ from mailbox"}
	}
	if c.ErrorMailbox == c.Mailbox {
		return nil, &adapters.ConfigError{Key: "error_mailbox", Msg: "must differ from mailbox"}
	}
	if c.PollInterval == 0 {
		c.PollInterval = 30 * time.Second
	}
	if c.PollInterval < 0 {
		return nil, &adapters.ConfigError{Key: "poll_interval", Msg: "must be positive"}
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = 25 << 20
	}
	if c.MaxBytes < 0 {
		return nil, &adapters.ConfigError{Key: "max_bytes", Msg: "must be positive"}
	}
	if c.Timeout == 0 {
		c.Timeout = time.Minute
	}
	if c.Timeout < 0 {
		return nil, &adapters.ConfigError{Key: "timeout", Msg: "must be positive"}
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 5 * time.Minute
	}
	if c.Kind == "" {
		c.Kind = string(letter.KindNote)
	}
	if err := checkKind("kind", c.Kind); err != nil {
		return nil, err
	}
	for i, rule := range c.Rules {
		if err := checkKind(fmt.Sprintf("rules[%d].kind", i), rule.Kind); err != nil {
			return nil, err
		}
		if rule.From == "" && rule.SubjectContains == "" {
			return nil, &adapters.ConfigError{Key: fmt.Sprintf("rules[%d]", i), Msg: "must set from or subject_contains"}
		}
	}
	return r, nil
}

// kindFor picks the letter kind for a message.
func (c *imapConfig) kindFor(from, subject string) letter.Kind {
	for _, r := range c.Rules {
		if r.matches(from, subject) {
			return letter.Kind(r.Kind)
		}
	}
	return letter.Kind(c.Kind)
}
