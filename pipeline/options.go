package pipeline

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/samhub/samhub/pipeline/broker"
	"github.com/samhub/samhub/pipeline/council"
	"github.com/samhub/samhub/pipeline/route"
)

// Options wire a Hub. The settings are plain values of the pipeline's own;
// internal/config turns a loaded configuration into them
// (config.Config.HubOptions), so the pipeline knows no configuration
// loader. Errors about a setting still name its configuration key.
type Options struct {
	Settings Settings
	Notify   Notify
	// Destinations are the sinks by name (destinations.<name>).
	Destinations map[string]Destination
	// Adapters are the adapter blocks by instance name as read from the
	// file, each with its "type", handed to adapters.Build.
	Adapters map[string]map[string]any
	// DataDir is where adapters keep files: DataDir/adapters/<name>.
	DataDir  string
	Streams  broker.Streams
	Replicas int // stream and consumer replicas (nats.replicas)
	// Route is the routing of the file (routes, destinations, receivers);
	// the hub puts its own rules (notices, receipts) in front.
	Route   route.Options
	Council council.Options

	Broker   *broker.Broker
	Logger   *slog.Logger
	Registry prometheus.Registerer
	Holder   string // this replica's name, for leases; default host name + pid
	Now      func() time.Time
}

// Settings are the pipeline block: the delivery policy every destination
// inherits and the hub's own limits. Sizes are byte counts.
type Settings struct {
	MaxAttempts    int
	BackoffInitial time.Duration
	BackoffMax     time.Duration
	SinkTimeout    time.Duration
	MaxInFlight    int
	// AckWait bounds how soon the letters a crashed hub held come back; a
	// held letter is kept alive every AckWait/3.
	AckWait       time.Duration
	ShutdownGrace time.Duration
	// InlineMaxBytes is the largest letter stored as one message; 0 is
	// 1 MiB.
	InlineMaxBytes int64
	// BlobMemory is what parts moving through the blob store may add to
	// the hub's memory; 0 turns the limit off.
	BlobMemory     int64
	BlobGCInterval time.Duration
	// BlobsGrace is how long an unnamed blob is kept (streams.blobs_grace).
	BlobsGrace time.Duration
}

// Notify is the notices to the coordinator (the notifications block).
type Notify struct {
	Destination string   // an internal-sector destination; "" sends none
	Recipients  []string // always notified
	On          []string // arrived, parked, answered, unanswered
	Kinds       []string // letter kinds that trigger "arrived" (default referral)
	ConsoleURL  string   // link base for the notice
}

// Destination is one sink instance, its sector and its own delivery
// policy; a zero value takes the Settings' one.
type Destination struct {
	Adapter        string
	Sector         string
	MaxAttempts    int
	BackoffInitial time.Duration
	BackoffMax     time.Duration
	SinkTimeout    time.Duration
}
