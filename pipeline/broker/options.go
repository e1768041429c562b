package broker

import (
	"time"

	"github.com/samhub/samhub/internal/tlsconf"
)

// The broker takes plain settings; internal/config turns the nats and
// streams blocks of the configuration file into them (config.NATS.Broker,
// config.Streams.Broker), so the broker knows no configuration loader.

// Options says where the hub's JetStream is. URL empty means the embedded
// server.
type Options struct {
	URL       string // external NATS: one URL or a comma-separated list
	CredsFile string
	NKeyFile  string
	TLS       tlsconf.Files // client TLS to an external NATS
	Embedded  EmbeddedOptions
	Replicas  int // stream replicas on a cluster
}

// EmbeddedOptions configures the in-process nats-server.
type EmbeddedOptions struct {
	Listen   string // host:port for other processes (backups, the nats CLI); "" = no TCP listener at all
	StoreDir string
	MaxStore int64 // bytes of JetStream file store; 0 lets the server choose from the disk
	// Encryption at rest: the key is read from a file or an environment
	// variable at start, never passed in.
	// A new key is put in place offline by Rekey, never by the server's
	// own rewrap (JetStreamOldKey): see rekey.go.
	KeyFile string
	KeyEnv  string
	Cipher  string // chacha (default) or aes
	TLS     tlsconf.Files
	// ToolsPasswordFile receives, at every start, the password of
	// ToolsUser; written only when Listen is set.
	ToolsPasswordFile string
}

// Streams sizes the JetStream streams the hub owns. A zero size or age is
// the server's default (no limit).
type Streams struct {
	LettersMaxBytes int64
	LettersMaxAge   time.Duration // letter content retention
	DedupWindow     time.Duration
	ParkedMaxBytes  int64
	JourneyMaxBytes int64
	JourneyMaxAge   time.Duration
	// JourneyAsync lets a single server buffer journey writes instead of
	// an fsync per step: the journey is the coordinator's view of where a
	// letter went, not the letter. Clustered streams ignore it.
	JourneyAsync  bool
	AuditMaxBytes int64
	AuditMaxAge   time.Duration
	MaxMsgSize    int64
	BlobsMaxBytes int64
}

// SettingError is a setting the broker refuses, keyed as the configuration
// file names it ("nats.url", "nats.replicas", "nats.tls…").
type SettingError struct {
	Key string
	Msg string
}

func (e *SettingError) Error() string { return e.Key + ": " + e.Msg }
