package config

import (
	"github.com/samhub/samhub/pipeline/broker"
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
			OldKeyFile: e.OldKeyFile, Cipher: e.Cipher, TLS: e.TLS, ToolsPasswordFile: e.ToolsPasswordFile}}
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
