package hubtest

import (
	"path/filepath"

	"github.com/samhub/samhub/internal/config"
	digitalpostsim "github.com/samhub/samhub/internal/sim/digitalpost"
)

// The municipality as the sender of Digital Post in the test hub.
const (
	DigitalPostCVR    = "29189846"
	DigitalPostSender = "Samrådet for Børn og Unge"
)

// WithDigitalPost starts the Digital Post simulator (SF1601 KombiPostAfsend)
// with the CPR numbers in exempt exempt from Digital Post, and adds a
// digitalpost adapter "post" with the destination "parents" (sector
// parents: needs the parents' consent) and a route sending
// recommendations there.
func WithDigitalPost(exempt ...string) Option {
	return func(h *Hub) {
		sim, err := digitalpostsim.New(digitalpostsim.Config{DataDir: filepath.Join(h.Dir, "..", "digitalpost"), ClientID: "samhub", ClientSecret: "post-secret", Exempt: exempt})
		if err != nil {
			h.T.Fatal(err)
		}
		base, err := sim.Start("127.0.0.1:0")
		if err != nil {
			h.T.Fatal(err)
		}
		h.T.Cleanup(func() { _ = sim.Close() })
		h.DigitalPost = sim
		h.Config.Adapters["post"] = map[string]any{"type": "digitalpost", "url": base, "client_id": "samhub", "client_secret": "post-secret", "timeout": "10s",
			"sender": map[string]any{"cvr": DigitalPostCVR, "name": DigitalPostSender}}
		h.Config.Destinations["parents"] = config.Destination{Adapter: "post", Sector: "parents"}
		h.Config.Routes = append(h.Config.Routes, config.Route{Name: "recommendation-to-parents", Match: config.Match{Kind: []string{"recommendation"}}, To: []string{"parents"}})
	}
}
