package config

import (
	"slices"

	"github.com/samhub/samhub/pipeline"
	"github.com/samhub/samhub/pipeline/broker"
	"github.com/samhub/samhub/pipeline/council"
	"github.com/samhub/samhub/pipeline/letter"
	"github.com/samhub/samhub/pipeline/route"
)

// The parts take plain option structs of their own; these turn the blocks
// of a loaded configuration into them, so that only this package (and
// cmd/) knows how the file is read.

// Broker is the broker's settings from the nats block. A size that does
// not parse is a *Error naming it (Validate reports it first).
func (n NATS) Broker() (broker.Options, error) {
	e := n.Embedded
	o := broker.Options{URL: n.URL, CredsFile: n.CredsFile, NKeyFile: n.NKeyFile, TLS: n.TLS, Replicas: n.Replicas,
		Embedded: broker.EmbeddedOptions{Listen: e.Listen, StoreDir: e.StoreDir, KeyFile: e.KeyFile, KeyEnv: e.KeyEnv,
			Cipher: e.Cipher, TLS: e.TLS, ToolsPasswordFile: e.ToolsPasswordFile}}
	if n.URL == "" {
		maxStore, err := ParseBytes(e.MaxStore)
		if err != nil {
			return broker.Options{}, &Error{Key: "nats.embedded.max_store", Msg: "must be a size such as 10GB: " + err.Error()}
		}
		o.Embedded.MaxStore = maxStore
	}
	return o, nil
}

// Broker is the broker's stream sizes from the streams block. Sizes were
// checked by Validate; one that does not parse is 0 (the server's default).
func (s Streams) Broker() broker.Streams {
	size := func(v string) int64 {
		n, _ := ParseBytes(v)
		return n
	}
	return broker.Streams{
		LettersMaxBytes: size(s.LettersMaxBytes), LettersMaxAge: s.LettersMaxAge, DedupWindow: s.DedupWindow,
		ParkedMaxBytes:  size(s.ParkedMaxBytes),
		JourneyMaxBytes: size(s.JourneyMaxBytes), JourneyMaxAge: s.JourneyMaxAge, JourneyAsync: s.JourneyPersist == "async",
		AuditMaxBytes: size(s.AuditMaxBytes), AuditMaxAge: s.AuditMaxAge,
		MaxMsgSize:    size(s.MaxMsgSize),
		BlobsMaxBytes: size(s.BlobsMaxBytes),
	}
}

// RouteOptions is the router's rules from routes (the routes block, with
// any rules the hub adds in front), the destinations and the receiver
// directory.
func RouteOptions(routes []Route, dests map[string]Destination, receivers []Receiver) route.Options {
	o := route.Options{Rules: make([]route.Rule, len(routes)), Destinations: make(map[string]route.Destination, len(dests)),
		Receivers: make([]route.Receiver, len(receivers))}
	for i, r := range routes {
		o.Rules[i] = route.Rule{Name: r.Name, Match: r.Match.Route(), To: r.To, Anonymise: r.Anonymise, RequireConsent: r.RequireConsent}
	}
	for n, d := range dests {
		o.Destinations[n] = route.Destination{Sector: d.Sector, Receiver: d.Receiver}
	}
	for i, r := range receivers {
		o.Receivers[i] = route.Receiver{Name: r.Name, Role: r.Role, GLN: r.GLN, SOR: r.SOR, Formats: r.Formats}
	}
	return o
}

// Route is the match as the router takes it.
func (m Match) Route() route.Match {
	return route.Match{Kind: m.Kind, Source: m.Source, Category: m.Category, Sender: m.Sender, Receiver: m.Receiver, Format: m.Format}
}

// CouncilOptions is the register's settings from the council block, with
// the destinations' sectors and the streams' replicas.
func (c *Config) CouncilOptions() council.Options {
	k := c.Council
	o := council.Options{Enabled: k.Enabled, Meetings: council.Meetings{Rule: k.Meetings.Rule, Zone: k.Meetings.Zone, Cap: k.Meetings.Cap, CutoffDays: k.Meetings.CutoffDays, ClosedDays: k.Meetings.ClosedDays},
		WatchDays: k.WatchDays, RetentionDays: k.RetentionDays,
		Receipt: council.Receipt{Enabled: k.Receipt.Enabled, Destination: k.Receipt.Destination, Template: k.Receipt.Template, MovedTemplate: k.Receipt.MovedTemplate, RequireConsent: k.Receipt.RequireConsent},
		Sectors: make(map[string]string, len(c.Destinations)), Replicas: c.NATS.Replicas}
	for _, r := range k.Rejections {
		o.Rejections = append(o.Rejections, council.RejectionRule{Name: r.Name, Match: r.Match.Route(), Words: r.Words})
	}
	for n, d := range c.Destinations {
		o.Sectors[n] = d.Sector
	}
	o.ConsentSectors = c.consentSectors()
	return o
}

// consentSectors are the sectors whose consent a route (or the receipt)
// needs, for the council's views, by the router's own rule.
func (c *Config) consentSectors() []string {
	out := []string{}
	add := func(s string) {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	for _, r := range c.Routes {
		for _, to := range r.To {
			d, ok := c.Destinations[to]
			if !ok {
				continue
			}
			if route.ConsentRequired(r.RequireConsent, d.Sector) {
				add(d.Sector)
			}
		}
	}
	if c.Council.Receipt.Enabled && c.Council.Receipt.RequireConsent {
		add(string(letter.ScopeGP))
	}
	return out
}

// HubOptions is the pipeline's settings from the whole file: the pipeline,
// notifications, destinations, adapters, streams and council blocks and
// the routing. The caller adds the broker, logger, registry and holder.
// Sizes were checked by Validate; one that does not parse is 0 (the
// pipeline's default).
func (c *Config) HubOptions() pipeline.Options {
	size := func(v string) int64 {
		n, _ := ParseBytes(v)
		return n
	}
	p, n := c.Pipeline, c.Notify
	o := pipeline.Options{
		Settings: pipeline.Settings{MaxAttempts: p.MaxAttempts, BackoffInitial: p.BackoffInitial, BackoffMax: p.BackoffMax, SinkTimeout: p.SinkTimeout,
			MaxInFlight: p.MaxInFlight, AckWait: p.AckWait, ShutdownGrace: p.ShutdownGrace,
			InlineMaxBytes: size(p.InlineMaxBytes), BlobMemory: size(p.BlobMemory), BlobGCInterval: p.BlobGCInterval, BlobsGrace: c.Streams.BlobsGrace},
		Notify:       pipeline.Notify{Destination: n.Destination, Recipients: n.Recipients, On: n.On, Kinds: n.Kinds, ConsoleURL: n.ConsoleURL},
		Destinations: make(map[string]pipeline.Destination, len(c.Destinations)),
		Adapters:     c.Adapters, DataDir: c.DataDir,
		Streams: c.Streams.Broker(), Replicas: c.NATS.Replicas,
		Route:   RouteOptions(c.Routes, c.Destinations, c.Receivers),
		Council: c.CouncilOptions(),
	}
	for name, d := range c.Destinations {
		o.Destinations[name] = pipeline.Destination{Adapter: d.Adapter, Sector: d.Sector, MaxAttempts: d.MaxAttempts,
			BackoffInitial: d.BackoffInitial, BackoffMax: d.BackoffMax, SinkTimeout: d.SinkTimeout}
	}
	return o
}
