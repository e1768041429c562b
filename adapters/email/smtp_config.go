package email

import (
	"fmt"
	"net/mail"
	"regexp"
	"strings"
	"time"

	"github.com/samhub/samhub/adapters"
)

// DefaultSubject is the subject template used when none is configured. Its
// only variable, {ref}, is a short non-personal reference (see Ref).
const DefaultSubject = "Nyt brev fra Samrådet (ref {ref})"

// smtpConfig is the "smtp" adapter block.
type smtpConfig struct {
	connConfig `mapstructure:",squash"`
	From       string        `mapstructure:"from" required:"true" doc:"Bare sender address." example:"samraad@kommune.example.dk"`
	Allow      []string      `mapstructure:"allow" doc:"Addresses (name@example.dk) and whole domains (@example.dk) mail may go to; a recipient not on it is refused and nothing is sent. Empty: every letter is refused." example:"@kommune.example.dk"`
	Timeout    time.Duration `mapstructure:"timeout" default:"1m" doc:"Bound on each connection step and each message."`
	Subject    string        `mapstructure:"subject" default:"Nyt brev fra Samrådet (ref {ref})" doc:"Subject template; its only variable is {ref}, a short reference free of personal data."`
	// RequireTLS asks relays not to forward the message without TLS
	// (RFC 8689); the server must advertise REQUIRETLS then.
	RequireTLS bool `mapstructure:"require_tls" doc:"Ask relays not to forward the message without TLS (RFC 8689 REQUIRETLS); the server must offer it."`
	poolConfig `mapstructure:",squash"`
}

// Check checks the block (Checker); it reads ca_file.
func (c *smtpConfig) Check() error {
	if _, _, err := c.check(); err != nil {
		return err
	}
	_, _, _, _, err := c.poolConfig.check()
	return err
}

// allowList holds lower-cased full addresses and "@domain" entries.
type allowList struct {
	addrs   map[string]bool
	domains map[string]bool
}

func (a allowList) empty() bool { return len(a.addrs) == 0 && len(a.domains) == 0 }

// allows matches an address exactly or by its whole domain (no subdomains).
func (a allowList) allows(addr string) bool {
	addr = strings.ToLower(addr)
	if a.addrs[addr] {
		return true
	}
	at := strings.LastIndexByte(addr, '@')
	return at >= 0 && a.domains[addr[at+1:]]
}

func parseAllowList(entries []string) (allowList, error) {
	a := allowList{addrs: map[string]bool{}, domains: map[string]bool{}}
	for i, e := range entries {
		e = strings.ToLower(strings.TrimSpace(e))
		key := fmt.Sprintf("allow[%d]", i)
		if strings.HasPrefix(e, "@") {
			d := e[1:]
			if d == "" || strings.ContainsAny(d, "@*? ") || !strings.Contains(d, ".") {
				return a, &adapters.ConfigError{Key: key, Msg: `must be an address or "@domain" with a full domain name (no wildcards)`}
			}
			a.domains[d] = true
			continue
		}
		p, err := mail.ParseAddress(e)
		if err != nil || p.Name != "" || p.Address != e {
			return a, &adapters.ConfigError{Key: key, Msg: `must be a bare address like "name@example.dk" or "@domain"`}
		}
		a.addrs[e] = true
	}
	return a, nil
}

var (
	placeholderRe = regexp.MustCompile(`\{[^}]*\}`)
	longDigitsRe  = regexp.MustCompile(`[0-9]{6,}`)
)

// checkSubject makes sure a subject template can only ever produce a neutral
// subject: the one variable is {ref}, and the fixed text holds no number that
// could be a CPR number.
func checkSubject(tmpl string) error {
	if strings.TrimSpace(tmpl) == "" {
		return &adapters.ConfigError{Key: "subject", Msg: "must not be empty"}
	}
	if strings.ContainsAny(tmpl, "\r\n") {
		return &adapters.ConfigError{Key: "subject", Msg: "must be a single line"}
	}
	for _, p := range placeholderRe.FindAllString(tmpl, -1) {
		if p != "{ref}" {
			return &adapters.ConfigError{Key: "subject", Msg: fmt.Sprintf("may only use the variable {ref}, not %s: subjects are read in notifications and logs and must carry no personal data", p)}
		}
	}
	if longDigitsRe.MatchString(tmpl) {
		return &adapters.ConfigError{Key: "subject", Msg: "must not contain long digit runs (they look like CPR numbers)"}
	}
	return nil
}

func (c *smtpConfig) check() (*resolved, allowList, error) {
	r, err := c.resolve(465, 587)
	if err != nil {
		return nil, allowList{}, err
	}
	from, err := mail.ParseAddress(c.From)
	if err != nil || from.Name != "" {
		return nil, allowList{}, &adapters.ConfigError{Key: "from", Msg: `must be a bare sender address like "samraad@kommune.dk"`}
	}
	c.From = from.Address
	allow, err := parseAllowList(c.Allow)
	if err != nil {
		return nil, allowList{}, err
	}
	if err := checkSubject(c.Subject); err != nil {
		return nil, allowList{}, err
	}
	if c.Timeout <= 0 {
		return nil, allowList{}, &adapters.ConfigError{Key: "timeout", Msg: "must be positive"}
	}
	return r, allow, nil
}

// insecureKeys are keys people copy from other tools that would weaken
// TLS, refused with the reason instead of "unknown key".
var insecureKeys = map[string]string{
	"insecure_skip_verify": "is not an option: server certificates are always verified (use ca_file for a private CA)",
	"skip_verify":          "is not an option: server certificates are always verified (use ca_file for a private CA)",
	"insecure":             "is not an option: server certificates are always verified (use ca_file for a private CA)",
}

// decodeBlock decodes a block of the registered type typ into out with
// keys relative to the block, for the constructors that take a map.
func decodeBlock(typ string, cfg map[string]any, out any) error {
	t, ok := adapters.TypeNamed(typ)
	if !ok {
		return fmt.Errorf("email: type %s is not registered", typ)
	}
	norm, err := adapters.Normalise(t.Spec.Fields, t.Spec.Forbidden, cfg, "")
	if err != nil {
		return err
	}
	return adapters.DecodeInto(norm, out, "")
}
