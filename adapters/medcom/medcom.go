// Package medcom is the MedCom adapter: a directory-based mailbox (as used by
// VANS clients) that is both an adapters.Source and an adapters.Sink.
//
// Inbound files appear in <dir>/in/ and are claimed, once complete (see
// complete.go), by renaming them into processing/, parsed
// (OIOXML XDIS91 and XCTL receipts via oioxml, FHIR CareCommunication and
// Acknowledgement via fhirmsg), stored a poll round at a time (round.go:
// one batch publish, each letter carrying its acknowledgement as the
// checkpoint stored with it), acknowledged exactly once per distinct
// letter (a copy gets the stored acknowledgement again, byte for byte),
// and finally moved to processed/ — or, byte-identical, to error/ with a
// <name>.error.txt beside it. Outbound letters and acknowledgements are
// written atomically to out/.
//
// Configuration (adapters.<name> with type "medcom") is described by the
// tags of Config; docs/configuration.md lists every key.
package medcom

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/adapters/medcom/fhirmsg"
	"github.com/samhub/samhub/adapters/medcom/xmlsafe"
)

// TypeName is the adapter type in configuration.
const TypeName = "medcom"

func init() {
	adapters.RegisterSourceSink(TypeName, adapterSpec, func(deps adapters.Deps, cfg Config) (adapters.Source, adapters.Sink, error) {
		a, err := New(deps, cfg)
		if err != nil {
			return nil, nil, err
		}
		return a, a, nil
	})
}

var adapterSpec = adapters.Spec{
	Summary: "A MedCom mailbox directory as VANS clients keep it: a source of XDIS91 and FHIR CareCommunication letters (acknowledged to the sender), and a sink that writes letters to out/.",
	Description: "Inbound files in <dir>/in/ are claimed into processing/, parsed, stored, acknowledged once per distinct letter and moved to processed/ (or, byte-identical, to error/ with a reason beside them). " +
		"Outbound letters are written atomically to out/ under a file name fixed by the letter id, and resent when no acknowledgement arrives within ack_timeout.",
}

// Output formats for out_format.
const (
	OutXDIS91   = "xdis91"
	OutFHIRXML  = "fhir-xml"
	OutFHIRJSON = "fhir-json"
)

// Self is the hub's own MedCom identity: the sender of its letters, and of
// an acknowledgement only when the acknowledged letter's receiver cannot be
// read (acknowledgements come from the receiver a letter was addressed to).
type Self struct {
	GLN  string `mapstructure:"gln" doc:"13-digit GLN (EAN location number) the hub sends as." example:"5790001382445"`
	SOR  string `mapstructure:"sor" doc:"SOR id the hub sends as." example:"1144561000016002"`
	Name string `mapstructure:"name" doc:"Name the hub sends as." example:"Samrådet for Børn og Unge"`
}

// Config is the adapter block. Keys, defaults and help come from the tags
// (see adapters.Spec).
type Config struct {
	Dir string `mapstructure:"dir" required:"true" doc:"The mailbox directory, shared with the VANS client (docs/operations.md, Start); in/ processing/ processed/ error/ out/ are created under it. Relative to the working directory." example:"/srv/medcom"`
	// A file is normally picked up as it arrives (a directory watch); the
	// poll finds what the watch cannot see, such as files on network shares.
	PollInterval time.Duration `mapstructure:"poll_interval" default:"200ms" doc:"How often in/ is listed besides the directory watch."`
	MaxBytes     int64         `mapstructure:"max_bytes" default:"100000000" doc:"Largest inbound file in bytes; larger files go to error/ (MedCom's cap is 100 MB)."`
	Self         Self          `mapstructure:"self" doc:"The hub's own MedCom identity, the sender of its letters (gln and sor are required: GPs get FHIR letters, which name the sender by both)."`
	AckTimeout   time.Duration `mapstructure:"ack_timeout" default:"30m" doc:"A sent letter without an acknowledgement by then is flagged and resent."`
	MaxResends   *int          `mapstructure:"max_resends" default:"2" doc:"Resends of a letter without acknowledgement, 0 to 3 (MedCom allows at most 3)."`
	OutFormat    string        `mapstructure:"out_format" default:"xdis91" enum:"xdis91,fhir-xml,fhir-json" doc:"Format of letters written to out/ when the receiver directory says nothing else."`
	OutMaxBytes  int64         `mapstructure:"out_max_bytes" default:"100000000" doc:"Largest letter file written to out/ in bytes, attachments in base64 included; a larger letter parks as too large for the destination. MedCom's cap is 100 MB for a message with its VANSEnvelope (its clinical guideline says 50 MB for a CareCommunication)."`
	// The case system's outbox has no MedCom categories.
	DefaultCategory string        `mapstructure:"default_category" default:"psychiatry-social-disability" doc:"CareCommunication category of letters that carry none: a code of MedCom's category list other than other. The council's letters are about a child's mental health and social circumstances (shared/domain/medcom.md §5.2)."`
	Workers         int           `mapstructure:"workers" default:"16" doc:"How many inbox files are handled at once (1 to 256)."`
	ProcessedMaxAge time.Duration `mapstructure:"processed_max_age" default:"2160h" doc:"How long a handled inbound file stays in processed/ before it is removed: it holds a child's letter, which the hub keeps for streams.letters_max_age (90 days by default). 0 keeps them for an archive of your own to take."`
	BinaryWait      time.Duration `mapstructure:"binary_wait" default:"2m" doc:"How long an XDIS91 letter that names a file (a BIN reference) waits in in/ for the XBIN01 letter carrying it, and an XBIN01 letter for the letter naming its files, counted from when the file was written. Together, the letter is stored with its files; after the wait each goes on alone (the XBIN01 letter as a note of its own with its files), so nothing is lost. 0 joins only files taken in the same round."`
	SettleTime      time.Duration `mapstructure:"settle_time" default:"2s" doc:"How long a file written in place in in/ must keep its size and modification time, with no writer holding it open, before it is taken. A file renamed into in/ (a VANS client's temporary name, then a rename) is taken at once."`
}

// Adapter is one configured MedCom mailbox.
type Adapter struct {
	name  string
	log   *slog.Logger
	state adapters.StateStore
	now   func() time.Time
	cfg   Config
	lim   xmlsafe.Limits
	// sent holds the copies of sent letters that resends are built from,
	// in the MedCom directory, which every replica sharing the adapter
	// shares: the replica running the acknowledgement check resends, and
	// removes the copy on an acknowledgement, whichever replica delivered.
	// oldSent is where earlier versions kept them, in the hub's own data
	// directory: still read and cleared, never written.
	sent, oldSent string

	in, processing, processed, errDir, out string

	missing      prometheus.Gauge
	dups         prometheus.Counter     // duplicates answered without publishing
	ignoredFiles *prometheus.CounterVec // files in in/ not read, by code
	letters      adapters.StoredLetters // the hub's stored letters (checkpoints); nil without a hub
	arrivals     arrivals               // what is known of the files in in/ (complete.go)
	examining    weighted               // bytes of input being read and examined at once
	sweep        sweeper                // when unfinished deliveries' files were last removed
	// partnerWait holds, by file name in in/, until when a file waits
	// for its XDIS91 or XBIN01 partner (binaries.go). The source's loop
	// alone uses it.
	partnerWait map[string]time.Time
}

var (
	_ adapters.Source         = (*Adapter)(nil)
	_ adapters.Sink           = (*Adapter)(nil)
	_ adapters.RejectCodes    = (*Adapter)(nil)
	_ adapters.RejectedInputs = (*Adapter)(nil)
)

// New builds an adapter from a configuration decoded from a block (or
// adapters.Defaults[Config]() with fields set), creating its directories.
func New(deps adapters.Deps, cfg Config) (*Adapter, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	if deps.State == nil {
		return nil, errors.New("medcom: Deps.State is required (negative acknowledgements and outbox)")
	}
	a := &Adapter{name: deps.Name, log: deps.Logger, state: deps.State, now: deps.Now, cfg: cfg, letters: deps.Letters}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.now == nil {
		a.now = time.Now
	}
	a.lim = xmlsafe.DefaultLimits()
	a.lim.MaxBytes = cfg.MaxBytes
	// One value (an attachment's base64, a VANSEnvelope's Data) may be
	// nearly the whole input: with max_bytes raised, so is its limit.
	a.lim.MaxAttrLen = max(a.lim.MaxAttrLen, int(cfg.MaxBytes))
	a.examining.limit = a.memBudget()
	a.in, a.processing, a.processed = filepath.Join(cfg.Dir, "in"), filepath.Join(cfg.Dir, "processing"), filepath.Join(cfg.Dir, "processed")
	a.errDir, a.out = filepath.Join(cfg.Dir, "error"), filepath.Join(cfg.Dir, "out")
	a.sent = filepath.Join(cfg.Dir, ".samhub", "sent")
	if deps.DataDir != "" {
		a.oldSent = filepath.Join(deps.DataDir, "sent")
	}
	for _, d := range []string{a.in, a.processing, a.processed, a.errDir, a.out, a.sent} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return nil, &adapters.ConfigError{Key: "dir", Msg: fmt.Sprintf("cannot create %s: %v", d, err)}
		}
	}
	a.missing = prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "samhub_medcom_acks_missing",
		Help:        "Letters sent to MedCom without an acknowledgement after ack_timeout.",
		ConstLabels: prometheus.Labels{"adapter": deps.Name},
	})
	if deps.Metrics != nil {
		if err := deps.Metrics.Register(a.missing); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, fmt.Errorf("medcom: register metrics: %w", err)
			}
			a.missing = are.ExistingCollector.(prometheus.Gauge)
		}
	}
	a.dups = prometheus.NewCounter(prometheus.CounterOpts{
		Name:        "samhub_medcom_duplicates_total",
		Help:        "MedCom letters received again (same letter id or MessageHeader.id), answered with the first acknowledgement and not routed again.",
		ConstLabels: prometheus.Labels{"adapter": deps.Name},
	})
	if deps.Metrics != nil {
		if err := deps.Metrics.Register(a.dups); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, fmt.Errorf("medcom: register metrics: %w", err)
			}
			a.dups = are.ExistingCollector.(prometheus.Counter)
		}
	}
	a.ignoredFiles = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name:        "samhub_medcom_files_ignored_total",
		Help:        "Files in the MedCom in/ folder the hub does not read, counted once per file: symlink, not_regular, stale_temp (a dot-file or .tmp unchanged for a day), unreadable.",
		ConstLabels: prometheus.Labels{"adapter": deps.Name},
	}, []string{"code"})
	if deps.Metrics != nil {
		if err := deps.Metrics.Register(a.ignoredFiles); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, fmt.Errorf("medcom: register metrics: %w", err)
			}
			a.ignoredFiles = are.ExistingCollector.(*prometheus.CounterVec)
		}
	}
	for code := range ignoreReasons {
		a.ignoredFiles.WithLabelValues(code) // every series from 0, so increase() sees the first
	}
	return a, nil
}

// Check checks what the spec cannot say and makes dir absolute. It
// creates nothing (New creates the directories).
func (c *Config) Check() error {
	if !filepath.IsAbs(c.Dir) {
		// Relative to the working directory, like data_dir, so the demo
		// configuration works from the repository root.
		abs, err := filepath.Abs(c.Dir)
		if err != nil {
			return &adapters.ConfigError{Key: "dir", Msg: "must be a usable path: " + err.Error()}
		}
		c.Dir = abs
	}
	if c.Workers < 1 || c.Workers > 256 {
		return &adapters.ConfigError{Key: "workers", Msg: "must be between 1 and 256"}
	}
	if c.PollInterval <= 0 {
		return &adapters.ConfigError{Key: "poll_interval", Msg: "must be a positive duration such as 200ms"}
	}
	if c.SettleTime <= 0 || c.SettleTime > time.Hour {
		return &adapters.ConfigError{Key: "settle_time", Msg: "must be a duration between 1ms and 1h such as 2s"}
	}
	if c.BinaryWait < 0 || c.BinaryWait > 24*time.Hour {
		return &adapters.ConfigError{Key: "binary_wait", Msg: "must be a duration between 0 and 24h such as 2m"}
	}
	if c.MaxBytes <= 0 {
		return &adapters.ConfigError{Key: "max_bytes", Msg: "must be a positive number of bytes"}
	}
	if c.OutMaxBytes <= 0 {
		return &adapters.ConfigError{Key: "out_max_bytes", Msg: "must be a positive number of bytes"}
	}
	if c.ProcessedMaxAge < 0 {
		return &adapters.ConfigError{Key: "processed_max_age", Msg: "must be 0 (keep) or a duration such as 2160h"}
	}
	if c.AckTimeout <= 0 {
		return &adapters.ConfigError{Key: "ack_timeout", Msg: "must be a positive duration such as 30m"}
	}
	if c.MaxResends == nil || *c.MaxResends < 0 || *c.MaxResends > 3 {
		return &adapters.ConfigError{Key: "max_resends", Msg: "must be 0 to 3 (MedCom allows at most 3 resends)"}
	}
	if !slices.Contains(fhirmsg.Categories, c.DefaultCategory) || c.DefaultCategory == "other" {
		return &adapters.ConfigError{Key: "default_category", Msg: "must be a code of MedCom's CareCommunication category list other than \"other\" (which needs a topic), e.g. psychiatry-social-disability"}
	}
	if c.Self.GLN != "" && (len(c.Self.GLN) != 13 || strings.Trim(c.Self.GLN, "0123456789") != "") {
		return &adapters.ConfigError{Key: "self.gln", Msg: "must be a 13-digit GLN (EAN location number)"}
	}
	if c.Self.GLN == "" || c.Self.SOR == "" {
		return &adapters.ConfigError{Key: "self", Msg: "gln and sor must be set: MedCom FHIR messages name the sender by both, and GPs get FHIR letters whatever out_format says"}
	}
	return nil
}

// Ready reports whether the mailbox directories are usable.
func (a *Adapter) Ready(context.Context) error {
	for _, d := range []string{a.in, a.out} {
		if _, err := os.Stat(d); err != nil {
			return fmt.Errorf("medcom mailbox directory unusable: %w", err)
		}
	}
	return nil
}
