package hubtest

import (
	"github.com/samhub/samhub/adapters/email/mailtest"
	"github.com/samhub/samhub/internal/config"
)

// ParentsEmail is the allow-listed test address of the parents.
const (
	ParentsEmail     = "foraelder.test@example.org"
	CoordinatorEmail = "koordinator@samraad.example"
)

// WithMail starts an SMTP server with implicit TLS (a throwaway CA) and adds
// an smtp adapter "mail" with two destinations: "parents" (sector parents,
// for recommendations; needs the parents' consent) and "notices" (internal:
// the coordinator's notices on arrival, parking and answers).
func WithMail() Option {
	return func(h *Hub) {
		ca := mailtest.NewCA(h.T)
		h.SMTP = mailtest.StartSMTP(h.T, ca, mailtest.SMTPOptions{Mode: mailtest.SMTPImplicit})
		h.Config.Adapters["mail"] = map[string]any{"type": "smtp", "host": h.SMTP.Host, "port": h.SMTP.Port, "tls": "implicit",
			"ca_file": ca.PEMFile, "from": "samraad@kommune.example", "allow": []any{ParentsEmail, "@samraad.example"}}
		h.Config.Destinations["parents"] = config.Destination{Adapter: "mail", Sector: "parents"}
		h.Config.Destinations["notices"] = config.Destination{Adapter: "mail", Sector: "internal"}
		h.Config.Routes = append(h.Config.Routes, config.Route{Name: "recommendation-to-parents", Match: config.Match{Kind: []string{"recommendation"}}, To: []string{"parents"}})
		h.Config.Notify = config.Notify{Destination: "notices", Recipients: []string{CoordinatorEmail}, On: []string{"arrived", "parked", "answered"}}
	}
}
