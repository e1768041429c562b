package epj

import (
	"time"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/adapters/httpclient"
)

// Config is the adapter block under adapters.<name> (type: epj). Keys,
// defaults and help come from the tags (see adapters.Spec).
type Config struct {
	// The gateway's FHIR base (url), OAuth2 client credentials, timeout and TLS files.
	httpclient.Config `mapstructure:",squash"`
	Scope             string        `mapstructure:"scope" default:"system/Patient.read system/Communication.write system/Communication.read system/DocumentReference.read" doc:"Space-separated OAuth2 scopes asked for."`
	Self              Party         `mapstructure:"self" doc:"The municipality: sender of letters, addressee in the feed."`
	Recipient         string        `mapstructure:"recipient" required:"true" doc:"SOR id of the region's child-psychiatry department letters are addressed to." example:"6071000016008"`
	PollInterval      time.Duration `mapstructure:"poll_interval" default:"0s" doc:"How often the feed of notes addressed to self.sor is read; 0 turns the source off (a sink only)." example:"30s"`
	FeedOverlap       time.Duration `mapstructure:"feed_overlap" default:"2m" doc:"How far before its position the feed is read again, for notes the region's servers stamp earlier than notes already read (clock skew between them, a long transaction); notes read before are known by id and version and not published again. Read again only until a poll has run feed_overlap after the newest note. 0: no overlap."`
}

// Party names an organisation by SOR id, GLN and name.
type Party struct {
	SOR  string `mapstructure:"sor" required:"true" doc:"SOR id (digits)." example:"1144561000016002"`
	GLN  string `mapstructure:"gln" doc:"13-digit GLN (EAN location number)." example:"5790001382445"`
	Name string `mapstructure:"name" doc:"Name shown to the region." example:"Samrådet for Børn og Unge"`
}

var spec = adapters.Spec{
	Summary: "The region's child and adolescent psychiatry through a FHIR R4 gateway: a sink for letters, and a source of the notes the region sends back.",
	Description: "Letters go out as a FHIR Communication created conditionally (If-None-Exist on the letter id), only when their consent covers region_psychiatry. " +
		"With poll_interval set, Communication and DocumentReference resources addressed to self.sor are read by _lastUpdated; the cursor moves only after the hub stored the letter.",
}

// Check checks what the spec cannot say. It reads the TLS files and makes
// no network call.
func (c *Config) Check() error {
	if err := c.Config.Check(); err != nil {
		return err
	}
	if c.PollInterval < 0 {
		return &adapters.ConfigError{Key: "poll_interval", Msg: "must not be negative (0 turns the source off)"}
	}
	if c.FeedOverlap < 0 {
		return &adapters.ConfigError{Key: "feed_overlap", Msg: "must not be negative (0 reads no note before the feed position)"}
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
