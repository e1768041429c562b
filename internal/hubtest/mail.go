package hubtest

import (
	"github.com/samhub/samhub/adapters/email/mailtest"
	"github.com/samhub/samhub/internal/config"
)

// CoordinatorEmail is the coordinator's mailbox, where notices go.
const CoordinatorEmail = "koordinator@samraad.example"

// WithMail starts an SMTP server with implicit TLS (a throwaway CA) and adds
// an smtp adapter "mail" with the destination "notices" (internal: the
// coordinator's notices on arrival, parking and answers). Email reaches
// the council's own staff and professionals only; the parents are reached
// by Digital Post (WithDigitalPost).
func WithMail() Option {
	return func(h *Hub) {
		ca := mailtest.NewCA(h.T)
		h.SMTP = mailtest.StartSMTP(h.T, ca, mailtest.SMTPOptions{Mode: mailtest.SMTPImplicit})
		h.Config.Adapters["mail"] = map[string]any{"type": "smtp", "host": h.SMTP.Host, "port": h.SMTP.Port, "tls": "implicit",
			"ca_file": ca.PEMFile, "from": "samraad@kommune.example", "allow": []any{"@samraad.example"}}
		h.Config.Destinations["notices"] = config.Destination{Adapter: "mail", Sector: "internal"}
		h.Config.Notify = config.Notify{Destination: "notices", Recipients: []string{CoordinatorEmail}, On: []string{"arrived", "parked", "answered"}}
	}
}
