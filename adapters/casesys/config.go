package casesys

import (
	"time"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/adapters/httpclient"
	"github.com/samhub/samhub/adapters/tlsclient"
)

// Config is the adapter's configuration block (adapters.<name> with
// type: casesys). Keys, defaults and help come from the tags (see
// adapters.Spec).
type Config struct {
	// The API's base URL, OAuth2 client credentials, timeout and TLS files.
	httpclient.Config `mapstructure:",squash"`
	Scope             string `mapstructure:"scope" default:"cases.read cases.write" doc:"Space-separated OAuth2 scopes asked for."`
	CaseType          string `mapstructure:"case_type" default:"SAMRAAD" doc:"Case type the hub searches for and creates the child's case with."`
	CaseTitle         string `mapstructure:"case_title" default:"Samråd for børn og unge" doc:"Title of cases the hub creates."`
	KLE               string `mapstructure:"kle" doc:"KLE number of cases the hub creates." example:"27.24.00"`
	ResponsibleUnit   string `mapstructure:"responsible_unit" doc:"Unit responsible for cases the hub creates." example:"PPR"`
	OnMissingCase     string `mapstructure:"on_missing_case" default:"create" enum:"create,park" doc:"What a letter for a child without a case does: create the case, or park the letter for the coordinator."`
	// With ignored, the adapter sends no key (so the HTTP layer never
	// resends a write on its own) and takes a lease in its state store
	// before each create, so deliveries of one letter on several replicas
	// at once cannot both create (guard.go).
	IdempotencyKeys string        `mapstructure:"idempotency_keys" default:"honoured" enum:"honoured,ignored" doc:"Whether the case system honours the contract's Idempotency-Key: honoured, or ignored as the real systems do (interfaces.md §1.4); with ignored the hub sends none and guards each create with a lease in its state store."`
	PollInterval    time.Duration `mapstructure:"poll_interval" default:"10s" doc:"How often the outbox is read; 0 turns the source side off."`
	Outbox          OutboxConfig  `mapstructure:"outbox" doc:"Routing defaults for letters read from the outbox."`
}

// TLSConfig adds a private CA and/or a client certificate (mutual TLS).
type TLSConfig = tlsclient.Files

// OutboxConfig holds the routing defaults for letters read from the outbox.
type OutboxConfig struct {
	Sender PartyConfig `mapstructure:"sender" doc:"The council's own identity, the sender of every outbox letter."`
}

// PartyConfig is a letter.Party in configuration.
type PartyConfig struct {
	Role         string `mapstructure:"role" default:"municipality" doc:"Role of the sender."`
	Name         string `mapstructure:"name" doc:"Name of the sender." example:"Samrådet for Børn og Unge"`
	GLN          string `mapstructure:"gln" doc:"GLN (EAN location number) of the sender." example:"5790001382445"`
	SOR          string `mapstructure:"sor" doc:"SOR id of the sender." example:"1144561000016002"`
	Municipality string `mapstructure:"municipality" doc:"Municipality number (kommunenummer)." example:"0851"`
	Unit         string `mapstructure:"unit" doc:"Organisational unit." example:"PPR"`
	Email        string `mapstructure:"email" doc:"Address replies reach when the case names no contact person."`
}

// Values of idempotency_keys.
const (
	IdempotencyHonoured = "honoured"
	IdempotencyIgnored  = "ignored"
)

// DefaultPollInterval applies when poll_interval is absent.
const DefaultPollInterval = 10 * time.Second

var adapterSpec = adapters.Spec{
	Summary: "The municipal case system (REST, schemas/casesys/openapi.yaml): a sink that journalises letters on the child's case, and a source of the council's outbox.",
	Description: "Every POST carries an Idempotency-Key and every object a permanent externalId that is looked up before any create, so a lost answer never makes a second document. " +
		"CPR numbers travel only in request bodies. With poll_interval above 0, ready outbox documents become letters and are accepted in the outbox only after the hub stored them; the case system is then told each recipient's fate.",
}

// ParseConfig decodes and checks an adapter block. Errors are
// *adapters.ConfigError with the key relative to the block.
func ParseConfig(raw map[string]any) (Config, error) {
	var c Config
	err := adapters.Decode(raw, &c)
	return c, err
}

// Check checks what the spec cannot say; it reads the TLS files.
func (c *Config) Check() error {
	if err := c.Config.Check(); err != nil {
		return err
	}
	if c.PollInterval < 0 {
		return &adapters.ConfigError{Key: "poll_interval", Msg: "must not be negative (0 disables the outbox source)"}
	}
	return nil
}
