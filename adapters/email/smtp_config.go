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
	From       string        `mapstructure:"from"`
	Allow      []string      `mapstructure:"allow"`
	Timeout    time.Duration `mapstructure:"timeout"`
	Subject    string        `mapstructure:"subject"`
	// RequireTLS asks relays not to forward the message without TLS
	// (RFC 8689); the server must advertise REQUIRETLS then.
	RequireTLS bool `mapstructure:"require_tls"`
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
	if c.Subject == "" {
		c.Subject = DefaultSubject
	}
	if err := checkSubject(c.Subject); err != nil {
		return nil, allowList{}, err
	}
	if c.Timeout == 0 {
		c.Timeout = time.Minute
	}
	if c.Timeout < 0 {
		return nil, allowList{}, &adapters.ConfigError{Key: "timeout", Msg: "must be positive"}
	}
	return r, allow, nil
}

// refuseInsecureKeys names keys people copy from other tools that would
// weaken TLS, so the error says why instead of "unknown key".
func refuseInsecureKeys(cfg map[string]any) error {
	for _, k := range []string{"insecure_skip_verify", "skip_verify", "insecure"} {
		if _, ok := cfg[k]; ok {
			return &adapters.ConfigError{Key: k, Msg: "is not an option: server certificates are always verified (use ca_file for a private CA)"}
		}
	}
	return nil
}
