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
	Mailbox          string        `mapstructure:"mailbox" default:"INBOX" doc:"Mailbox read."`
	ProcessedMailbox string        `mapstructure:"processed_mailbox" default:"Samhub/Processed" doc:"Mailbox a message moves to once the hub stored its letter."`
	ErrorMailbox     string        `mapstructure:"error_mailbox" default:"Samhub/Error" doc:"Mailbox a message that cannot become a letter moves to."`
	PollInterval     time.Duration `mapstructure:"poll_interval" default:"30s" doc:"How often the mailbox is read when the server offers no IDLE."`
	MaxBytes         int64         `mapstructure:"max_bytes" default:"26214400" doc:"Largest message in bytes; larger ones go to the error mailbox."`
	Timeout          time.Duration `mapstructure:"timeout" default:"1m" doc:"Bound on connecting and on each command."`
	Kind             string        `mapstructure:"kind" default:"note" doc:"Letter kind of mail no rule matches."`
	Rules            []kindRule    `mapstructure:"rules" doc:"Rules giving matching mail a letter kind; the first match wins."`
	MaxBackoff       time.Duration `mapstructure:"max_backoff" default:"5m" doc:"Longest wait between reconnect attempts."`
}

// kindRule gives mail matching every set condition a letter kind. First
// match wins.
type kindRule struct {
	From            string `mapstructure:"from" doc:"Sender address, or @domain for a whole domain." example:"@region.example.dk"`
	SubjectContains string `mapstructure:"subject_contains" doc:"Text the subject contains (any case)."`
	Kind            string `mapstructure:"kind" required:"true" doc:"Letter kind given." example:"reply"`
}

// Check checks the block (Checker); it reads ca_file.
func (c *imapConfig) Check() error {
	_, err := c.check()
	return err
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
	if c.ProcessedMailbox == c.Mailbox {
		return nil, &adapters.ConfigError{Key: "processed_mailbox", Msg: "must differ from mailbox"}
	}
	if c.ErrorMailbox == c.Mailbox {
		return nil, &adapters.ConfigError{Key: "error_mailbox", Msg: "must differ from mailbox"}
	}
	if c.PollInterval <= 0 {
		return nil, &adapters.ConfigError{Key: "poll_interval", Msg: "must be positive"}
	}
	if c.MaxBytes <= 0 {
		return nil, &adapters.ConfigError{Key: "max_bytes", Msg: "must be positive"}
	}
	if c.Timeout <= 0 {
		return nil, &adapters.ConfigError{Key: "timeout", Msg: "must be positive"}
	}
	if c.MaxBackoff <= 0 {
		return nil, &adapters.ConfigError{Key: "max_backoff", Msg: "must be positive"}
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

// oversize is the recorded reason of a message over max_bytes: its size
// and the setting to raise, nothing of its content.
func (s *IMAPSource) oversize(size int64) string {
	return fmt.Sprintf("the message is %d bytes, more than adapters.%s.max_bytes (%d)", size, s.name, s.cfg.MaxBytes)
}
