package digitalpost

import (
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/adapters/httpclient"
)

// Config is the adapter block under adapters.<name> (type: digitalpost).
// Keys, defaults and help come from the tags (see adapters.Spec).
type Config struct {
	// Serviceplatformen's base (url), the token service, timeout and the
	// TLS files with the function certificate.
	httpclient.Config `mapstructure:",squash"`
	Scope             string `mapstructure:"scope" default:"http://entityid.kombit.dk/service/kombipostafsend/1" doc:"The service entity id the token is asked for: KOMBIT's STS issues a token per service."`
	Choice            string `mapstructure:"choice" default:"digital_post" enum:"digital_post,automatic" doc:"KombiValgKode. digital_post: Digital Post only; a custody holder exempt from it parks for the coordinator, who sends a paper letter. automatic: the service prints the letter for an exempt citizen when the letter carries a PDF (needs print.forsendelse_type); without a PDF an exempt custody holder still parks."`
	Sender            Sender `mapstructure:"sender" doc:"The municipality as the sender the citizen sees."`
	Label             string `mapstructure:"label" default:"Brev fra kommunen" doc:"The title (MeMo label) every custody holder sees in the inbox and in notifications. Never the letter's subject: no child's name, CPR number or diagnosis. At most 256 characters."`
	Language          string `mapstructure:"language" default:"da" doc:"Language of the documents (two letters)."`
	Mandatory         bool   `mapstructure:"mandatory" default:"false" doc:"MeMo mandatory: the message is mandatory post the citizen cannot refuse."`
	LegalNotification bool   `mapstructure:"legal_notification" default:"false" doc:"MeMo legalNotification: the message is a legal notice (e.g. a decision with a deadline)."`
	Print             Print  `mapstructure:"print" doc:"Printing through Serviceplatformen (choice automatic)."`
}

// Sender is the municipality.
type Sender struct {
	CVR  string `mapstructure:"cvr" required:"true" doc:"The municipality's CVR number (8 digits)." example:"29189846"`
	Name string `mapstructure:"name" required:"true" doc:"The sender name the citizen sees." example:"Odense Kommune"`
}

// Print configures the printed letter of choice automatic.
type Print struct {
	ForsendelseType string `mapstructure:"forsendelse_type" doc:"ForsendelseTypeIdentifikator agreed with KOMBIT for printed letters (digits); required with choice automatic." example:"1234"`
}

var spec = adapters.Spec{
	Citizens: true,
	Summary:  "Digital Post to the parents through KOMBIT's Serviceplatformen (SF1601 KombiPostAfsend): one MeMo message to each custody holder, by CPR.",
	Description: "A sink only. Each custody holder the letter is addressed to (role parents, with a CPR number) gets a MeMo 1.1 message under a message UUID derived from the letter id and the CPR, so a letter delivered again is not a second letter. " +
		"The label is the configured neutral title, never the letter's subject. The main document is the letter's first PDF, else its text. " +
		"A custody holder exempt from Digital Post parks the letter (recipient_exempt) for the coordinator to send a paper letter, unless choice automatic lets the service print it. " +
		"Needs the parents' consent (scope parents). Serviceplatformen wants the municipality's function certificate (FOCES/OCES3) as tls.cert_file and tls.key_file, and a service agreement for KombiPostAfsend.",
}

var (
	cvrPattern    = regexp.MustCompile(`^[0-9]{8}$`)
	digitsPattern = regexp.MustCompile(`^[0-9]{1,20}$`)
	langPattern   = regexp.MustCompile(`^[a-z]{2}$`)
	// A run of six or more digits could be a CPR number or a birth date.
	longDigits = regexp.MustCompile(`[0-9]{6}`)
)

// Check checks what the spec cannot say. It reads the TLS files and makes
// no network call.
func (c *Config) Check() error {
	if err := c.Config.Check(); err != nil {
		return err
	}
	if strings.HasPrefix(c.URL, "https://") && c.TLS.CertFile == "" {
		return &adapters.ConfigError{Key: "tls.cert_file", Msg: "is required with an https url: Serviceplatformen takes calls only with the municipality's function certificate (FOCES/OCES3)"}
	}
	if strings.TrimSpace(c.Scope) == "" {
		return &adapters.ConfigError{Key: "scope", Msg: "must name the service entity id, e.g. http://entityid.kombit.dk/service/kombipostafsend/1"}
	}
	if !cvrPattern.MatchString(c.Sender.CVR) {
		return &adapters.ConfigError{Key: "sender.cvr", Msg: "must be a CVR number of 8 digits"}
	}
	if strings.TrimSpace(c.Sender.Name) == "" {
		return &adapters.ConfigError{Key: "sender.name", Msg: "must not be empty"}
	}
	switch l := strings.TrimSpace(c.Label); {
	case l == "" || utf8.RuneCountInString(l) > 256:
		return &adapters.ConfigError{Key: "label", Msg: "must be 1 to 256 characters"}
	case longDigits.MatchString(l):
		return &adapters.ConfigError{Key: "label", Msg: "must not hold a run of six or more digits: every custody holder sees it, so it names no CPR number or date of birth"}
	}
	if !langPattern.MatchString(c.Language) {
		return &adapters.ConfigError{Key: "language", Msg: "must be a two-letter language code such as da"}
	}
	if c.Choice == choiceAutomatic && !digitsPattern.MatchString(c.Print.ForsendelseType) {
		return &adapters.ConfigError{Key: "print.forsendelse_type", Msg: "is required with choice automatic: the ForsendelseTypeIdentifikator (digits) agreed with KOMBIT"}
	}
	if c.Print.ForsendelseType != "" && !digitsPattern.MatchString(c.Print.ForsendelseType) {
		return &adapters.ConfigError{Key: "print.forsendelse_type", Msg: "must be digits"}
	}
	return nil
}

const (
	choiceDigitalPost = "digital_post"
	choiceAutomatic   = "automatic"
)

// kombiValgKode is the service's name for a choice.
func kombiValgKode(choice string) string {
	if choice == choiceAutomatic {
		return "Automatisk Valg"
	}
	return "Digital Post"
}
