// Package config loads and checks samhub's configuration: a YAML file,
// SAMHUB_* environment overrides and defaults (viper). Every mistake is
// reported with the key at fault and what was expected, before anything starts.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	// The zone database in the binary: console.time_zone must load on a
	// distroless image too, which has none.
	_ "time/tzdata"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/adapters/tlsclient"
	"github.com/samhub/samhub/internal/secret"
	"github.com/samhub/samhub/pipeline/council"
	"github.com/samhub/samhub/pipeline/route"
)

// Config is the whole hub configuration.
type Config struct {
	DataDir      string                    `mapstructure:"data_dir"`
	Log          Log                       `mapstructure:"log"`
	HTTP         HTTP                      `mapstructure:"http"`
	NATS         NATS                      `mapstructure:"nats"`
	Streams      Streams                   `mapstructure:"streams"`
	Pipeline     Pipeline                  `mapstructure:"pipeline"`
	Adapters     map[string]map[string]any `mapstructure:"adapters"`
	Destinations map[string]Destination    `mapstructure:"destinations"`
	Routes       []Route                   `mapstructure:"routes"`
	// Receivers is the receiver directory: the parties the hub sends to by
	// MedCom, with the formats each takes (GLN/SOR → name, formats).
	Receivers  []Receiver `mapstructure:"receivers"`
	Notify     Notify     `mapstructure:"notifications"`
	Simulators Simulators `mapstructure:"simulators"`
	Console    Console    `mapstructure:"console"`
	// Council is the council's register: meetings, the referral watch,
	// the receipt to the referring GP and the council's figures.
	Council Council `mapstructure:"council"`
	// GCPercent is the Go collector's target (GOGC) for the whole process,
	// hub and embedded NATS, unless GOGC is set in the environment. 50
	// rather than Go's 100: about 70 MB of the live heap are nats-server's
	// block buffers, cheap to scan, so a tighter target cut peak RSS by a
	// quarter for 2 % more CPU (docs/performance.md).
	GCPercent int `mapstructure:"gc_percent"`
}

type Log struct {
	Level  string `mapstructure:"level"`  // debug, info, warn, error
	Format string `mapstructure:"format"` // json, text
}

type HTTP struct {
	Listen string `mapstructure:"listen"`
	// TLS serves the API and console over HTTPS (TLS 1.2+). Without it the
	// hub must listen on loopback or behind a TLS-terminating proxy.
	TLSCertFile string `mapstructure:"tls_cert_file"`
	TLSKeyFile  string `mapstructure:"tls_key_file"`
	// TrustedProxies are the reverse proxies (addresses or CIDR prefixes)
	// whose X-Forwarded-For names the client: login throttling and the
	// audit log then see the client's address, not the proxy's.
	TrustedProxies []string `mapstructure:"trusted_proxies"`
}

// NATS: URL empty means the embedded server.
type NATS struct {
	URL       string   `mapstructure:"url"`
	CredsFile string   `mapstructure:"creds_file"`
	NKeyFile  string   `mapstructure:"nkey_file"`
	TLS       TLS      `mapstructure:"tls"`
	Embedded  Embedded `mapstructure:"embedded"`
	Replicas  int      `mapstructure:"replicas"` // stream replicas on a cluster
}

// TLS names PEM files: the one TLS file block the adapters use too.
type TLS = tlsclient.Files

// Embedded configures the in-process nats-server.
type Embedded struct {
	Listen   string `mapstructure:"listen"` // host:port for other processes (backups, the nats CLI); "" = no TCP listener at all
	StoreDir string `mapstructure:"store_dir"`
	MaxStore string `mapstructure:"max_store"` // e.g. "10GB"
	// Encryption at rest: the key comes from a file or an environment
	// variable, never from this file, so a leaked config leaks no key.
	KeyFile string `mapstructure:"key_file"`
	KeyEnv  string `mapstructure:"key_env"`
	// OldKeyFile is refused: nats-server's in-place rewrap loses durable
	// consumers and empty streams (v2.15.3); `samhub store rekey` changes
	// the key. Kept so an old configuration gets that answer.
	OldKeyFile string `mapstructure:"old_key_file"`
	Cipher     string `mapstructure:"cipher"` // chacha (default) or aes
	TLS        TLS    `mapstructure:"tls"`    // required to listen beyond loopback
	// ToolsPasswordFile receives, at every start, the password of the
	// samhub-tools user that other processes (backups, the nats CLI) use
	// on the listener. Written only when listen is set; default
	// <data_dir>/nats-tools.password.
	ToolsPasswordFile string `mapstructure:"tools_password_file"`
}

// Streams sizes the JetStream streams the hub owns.
type Streams struct {
	LettersMaxBytes string        `mapstructure:"letters_max_bytes"`
	LettersMaxAge   time.Duration `mapstructure:"letters_max_age"` // letter content retention
	DedupWindow     time.Duration `mapstructure:"dedup_window"`
	ParkedMaxBytes  string        `mapstructure:"parked_max_bytes"`
	JourneyMaxBytes string        `mapstructure:"journey_max_bytes"`
	JourneyMaxAge   time.Duration `mapstructure:"journey_max_age"`
	// JourneyPersist is "async" (default) or "sync". The journey is the
	// coordinator's view of where a letter went, not the letter: async lets
	// a single server buffer its writes instead of an fsync per step (three
	// per letter with three destinations). A power cut can then lose the
	// last moments' steps, never a letter or a delivery. Clustered streams
	// are always backed by the Raft log and ignore it.
	JourneyPersist string        `mapstructure:"journey_persist"`
	AuditMaxBytes  string        `mapstructure:"audit_max_bytes"`
	AuditMaxAge    time.Duration `mapstructure:"audit_max_age"`
	MaxMsgSize     string        `mapstructure:"max_msg_size"`
	// BlobsMaxBytes sizes the object store (bucket samhub_blobs) that holds
	// the original bytes and attachments of letters too large to store
	// inline (see pipeline.inline_max_bytes).
	BlobsMaxBytes string `mapstructure:"blobs_max_bytes"`
	// BlobsGrace is how long a blob outlives letters_max_age before the
	// hub's blob collector may delete it (when no parked letter names it).
	BlobsGrace time.Duration `mapstructure:"blobs_grace"`
}

// Pipeline holds the defaults every destination inherits.
type Pipeline struct {
	MaxAttempts    int           `mapstructure:"max_attempts"`
	BackoffInitial time.Duration `mapstructure:"backoff_initial"`
	BackoffMax     time.Duration `mapstructure:"backoff_max"`
	SinkTimeout    time.Duration `mapstructure:"sink_timeout"`
	MaxInFlight    int           `mapstructure:"max_in_flight"`
	// AckWait is how long JetStream waits before it hands an unacknowledged
	// letter to another consumer instance. A letter the hub holds (in a
	// sink call, in backoff, behind its thread) is kept alive with an
	// in-progress signal every AckWait/3, so AckWait need not cover a sink
	// call: it bounds how soon the letters a crashed hub held come back,
	// which is why the default (DefaultAckWait) is short.
	AckWait       time.Duration `mapstructure:"ack_wait"`
	ShutdownGrace time.Duration `mapstructure:"shutdown_grace"`
	// InlineMaxBytes is the largest letter stored as one message; above it
	// the original and large attachments move to the blob store and the
	// stored letter names them.
	InlineMaxBytes string `mapstructure:"inline_max_bytes"`
	// BlobGCInterval is how often the replica holding the lease deletes
	// blobs no letter can refer to any more (at most hourly by default).
	BlobGCInterval time.Duration `mapstructure:"blob_gc_interval"`
	// BlobMemory is what letter parts moving through the blob store may
	// add to the hub's memory: while any moves, Go's soft memory limit is
	// the footprint at the start plus this (pipeline/blobs/transfers.go);
	// 0 turns it off.
	BlobMemory string `mapstructure:"blob_memory"`
}

// Destination is a sink instance plus its sector and retry policy.
type Destination struct {
	Adapter        string        `mapstructure:"adapter" doc:"The adapter (a sink) under adapters that delivers; required."`
	Sector         string        `mapstructure:"sector" doc:"Whose system it is, which decides the consent a letter needs: municipality, gp, parents, region_psychiatry, school_ppr or internal. Every sector but municipality and internal needs a consent whose scope names it; parents only through an adapter that reaches citizens; required."` // municipality, gp, parents, region_psychiatry, school_ppr
	MaxAttempts    int           `mapstructure:"max_attempts" doc:"Attempts before a letter is parked in the retry queue (default pipeline.max_attempts)."`
	BackoffInitial time.Duration `mapstructure:"backoff_initial" doc:"First wait between attempts (default pipeline.backoff_initial)."`
	BackoffMax     time.Duration `mapstructure:"backoff_max" doc:"Longest wait between attempts (default pipeline.backoff_max)."`
	SinkTimeout    time.Duration `mapstructure:"sink_timeout" doc:"How long one delivery may take (default pipeline.sink_timeout)."`
	// Receiver (a GLN or SOR of the receiver directory, with a role of
	// the destination's sector) is who this destination delivers to when
	// a letter names a recipient of its sector without identifiers, or
	// names no recipients at all and is not an answer in a thread whose
	// party the hub knows.
	Receiver string `mapstructure:"receiver" doc:"A GLN or SOR of the receiver directory, of a role of this sector: who gets a letter that names no recipient of the sector with identifiers and answers no known thread party."`
}

// Receiver is one entry of the receiver directory.
type Receiver struct {
	Name string `mapstructure:"name" doc:"The receiver's name, as letters to it are addressed."`
	Role string `mapstructure:"role" doc:"gp, region, hospital, municipality or school; the destination sector a receiver may serve follows from it."` // gp, region, hospital, municipality, school
	GLN  string `mapstructure:"gln" doc:"Its EAN/GLN location number (13 digits); a GLN or a SOR is required."`
	SOR  string `mapstructure:"sor" doc:"Its SOR code (digits)."`
	// Formats the receiver takes, most preferred first: fhir-xml,
	// fhir-json (MedCom CareCommunication) or xdis91 (OIOXML). Empty: a GP
	// gets the CareCommunication (fhir-xml), others the MedCom adapter's
	// out_format.
	Formats []string `mapstructure:"formats" doc:"The MedCom formats it takes, most preferred first: fhir-xml, fhir-json (CareCommunication) or xdis91 (OIOXML). Empty: a GP gets fhir-xml, others the MedCom adapter's out_format."`
}

// ReceiverRoles are the roles a receiver directory entry may have.
var ReceiverRoles = []string{"gp", "region", "hospital", "municipality", "school"}

// MedComFormats are the formats a receiver may take.
var MedComFormats = []string{"fhir-xml", "fhir-json", "xdis91"}

// Route sends letters that match to destinations.
type Route struct {
	Name      string   `mapstructure:"name" doc:"A name of its own, shown in journeys and samhub route --dry-run; required, unique."`
	Match     Match    `mapstructure:"match" doc:"Which letters the route takes: every list given must contain the letter's value; an empty or missing list matches any. Routes are read in order: for each destination, the first route that matches the letter and names the destination decides."`
	To        []string `mapstructure:"to" doc:"The destinations the letter goes to; at least one."`
	Anonymise bool     `mapstructure:"anonymise" doc:"Send an anonymised copy: the patient replaced by a keyed pseudonym, CPR numbers, replacement CPRs, names and address masked in subject, topic and text, the original bytes and attachments left out. Free text can still describe a child: meant for forums inside the municipality."`
	// RequireConsent false lets a route skip the consent check; only allowed
	// for destinations in the municipality's own sector.
	RequireConsent *bool `mapstructure:"require_consent" doc:"Default true. false lets the route skip the consent check: only for municipality or internal destinations, or for discharge notes to the GP (match.kind: [discharge-note]); a recorded withdrawal or refusal still stops it."`
}

// Match selects letters; empty lists match anything.
type Match struct {
	Kind     []string `mapstructure:"kind" doc:"Letter kinds: referral, reply, recommendation, acknowledgement, discharge-note, note, notification (a hub notice goes only where a route names notification)."`
	Source   []string `mapstructure:"source" doc:"Names of the adapters (under adapters) the letter came from."`
	Category []string `mapstructure:"category" doc:"MedCom category codes of the letter."`
	Sender   []string `mapstructure:"sender" doc:"The sender's GLN, SOR, email address or municipality code, or role:<role> (role:gp)."` // GLN, SOR or email
	Receiver []string `mapstructure:"receiver" doc:"As sender, for any of the letter's receivers."`                                      // GLN, SOR or email
	Format   []string `mapstructure:"format" doc:"The format the letter arrived in: xdis91, fhir-carecommunication, email, casesys, fhir-r4."`
}

// Notify sends the coordinator and the case's contact person short
// notices (never personal data) through an internal email destination.
type Notify struct {
	Destination string   `mapstructure:"destination"` // an internal-sector destination, e.g. an smtp adapter
	Recipients  []string `mapstructure:"recipients"`  // always notified, e.g. the coordinator's mailbox
	On          []string `mapstructure:"on"`          // arrived, parked, answered
	Kinds       []string `mapstructure:"kinds"`       // letter kinds that trigger "arrived" (default referral)
	ConsoleURL  string   `mapstructure:"console_url"` // link base for the notice, e.g. https://samhub.kommune.dk/console
}

// NotifyEvents lists the events a notice can be sent on. unanswered is
// the referral watch's reminder (council.watch_days).
var NotifyEvents = []string{"arrived", "parked", "answered", "unanswered"}

// Council configures the council's register (pipeline/council): the
// meetings referrals are assigned to, the referral watch, the receipt to
// the referring GP and which letters count as child psychiatry turning a
// referral down, for the council's figures.
type Council struct {
	// Enabled keeps the register (default true); off, the hub carries
	// letters only and the council's API answers that it is off.
	Enabled  bool            `mapstructure:"enabled"`
	Meetings CouncilMeetings `mapstructure:"meetings"`
	// WatchDays: a referral with no recommendation this many days after it
	// arrived is flagged (and, with notifications.on: [unanswered], the
	// coordinator reminded). Fractions of a day are allowed.
	WatchDays float64 `mapstructure:"watch_days"`
	// RetentionDays is how long the register keeps a referral's facts
	// (ids, tokens, dates, organisations); at least 400, so the figures
	// cover twelve whole months.
	RetentionDays int            `mapstructure:"retention_days"`
	Receipt       CouncilReceipt `mapstructure:"receipt"`
	// Rejections classify letters as child psychiatry turning a referral
	// down; none configured, the figure is reported as not configured.
	Rejections []RejectionRule `mapstructure:"rejections"`
}

// CouncilMeetings is the meeting rule, e.g. "second tuesday 13:00".
type CouncilMeetings struct {
	Rule string `mapstructure:"rule"`
	Zone string `mapstructure:"zone"`
	Cap  int    `mapstructure:"cap"` // referrals per meeting
	// CutoffDays: a referral takes a meeting at least this many days
	// after it arrived, so the members can read it first (0: any meeting
	// after it arrived).
	CutoffDays int `mapstructure:"cutoff_days"`
	// ClosedDays are the municipality's own closing days ("2026-05-15
	// Fredag efter Kristi himmelfart"); a meeting on one is marked as on a
	// public holiday.
	ClosedDays []string `mapstructure:"closed_days"`
}

// CouncilReceipt is the opt-in receipt to the referring GP: a reply in the
// referral's thread naming the meeting that takes it.
type CouncilReceipt struct {
	Enabled bool `mapstructure:"enabled"`
	// Destination is the gp-sector destination the receipt goes through.
	Destination string `mapstructure:"destination"`
	// Template is the letter's text (Go text/template): .Date ("10. marts
	// 2026"), .Time ("13.00"), .Weekday ("tirsdag"), .Council, .Practice.
	Template string `mapstructure:"template"`
	// MovedTemplate is the text of the letter telling the GP the meeting
	// that takes the referral has a new date (the meeting moved, or the
	// coordinator moved the child): the same fields and .Before, the date
	// the GP was told before ("tirsdag den 10. marts 2026 kl. 13.00").
	MovedTemplate string `mapstructure:"moved_template"`
	// RequireConsent checks the gp scope of the consent like any route.
	// Off by default: the receipt tells only the practice that sent the
	// referral what it sent and the meeting date (docs/council.md).
	RequireConsent bool `mapstructure:"require_consent"`
}

// RejectionRule classifies a letter as a rejection by child psychiatry:
// every non-empty list of Match must match (as in routes), and when Words
// is set, one of the words must appear in the subject or text (case-
// insensitive).
type RejectionRule struct {
	Name  string   `mapstructure:"name" doc:"A name of its own for the rule."`
	Match Match    `mapstructure:"match" doc:"Which letters it reads, as a route's match (every list given must contain the letter's value)."`
	Words []string `mapstructure:"words" doc:"When given, one of these words must appear in the letter's subject or text (case-insensitive)."`
}

// DefaultReceiptTemplate is the receipt's text unless configured.
const DefaultReceiptTemplate = council.DefaultReceiptTemplate

// DefaultMovedTemplate is the text of a new date's letter unless
// configured.
const DefaultMovedTemplate = council.DefaultMovedTemplate

// Simulators are started in process for demos and tests.
type Simulators struct {
	CaseSys     *SimConfig `mapstructure:"casesys"`
	EPJ         *SimConfig `mapstructure:"epj"`
	DigitalPost *SimConfig `mapstructure:"digitalpost"` // SF1601 KombiPostAfsend
}

type SimConfig struct {
	Listen       string `mapstructure:"listen"`
	DataDir      string `mapstructure:"data_dir"`
	ClientID     string `mapstructure:"client_id"`
	ClientSecret string `mapstructure:"client_secret"`
	// MaxUpload is the request-size cap of the case-system simulator
	// (default 50MB, casesyssim.DefaultMaxUpload) and the EPJ simulator
	// (default 64MB, epjsim.DefaultMaxBody); larger requests get 413.
	// Not for Digital Post.
	MaxUpload string `mapstructure:"max_upload"`
	// Exempt lists the CPR numbers of citizens exempt from Digital Post
	// (fictitious test persons). Digital Post only.
	Exempt []string `mapstructure:"exempt"`
}

// Console configures the API's users (console and samhubctl).
type Console struct {
	Language string `mapstructure:"language"`
	// TimeZone is the IANA zone the console shows times in, and reads
	// the times a coordinator types in (default Europe/Copenhagen).
	TimeZone string `mapstructure:"time_zone"`
	// SecureCookies marks session cookies Secure even when the hub itself
	// serves plain HTTP behind a TLS-terminating proxy.
	SecureCookies bool   `mapstructure:"secure_cookies"`
	Users         []User `mapstructure:"users"`
}

type User struct {
	Name         string `mapstructure:"name" doc:"The login name, as the audit log names the user."`
	Role         string `mapstructure:"role" doc:"coordinator (the council and the retry queue), operations (health, figures, rejected input) or auditor (the audit log)."` // coordinator, operations, auditor
	PasswordHash string `mapstructure:"password_hash" doc:"bcrypt hash of the console password (samhub user hash-password)."`
	TokenHash    string `mapstructure:"token_hash" doc:"SHA-256 hex of an API token for samhubctl (samhub user new-token)."` // sha256 hex of an API token for samhubctl
}

// DefaultAckWait is pipeline.ack_wait's default: letters a killed hub held
// are delivered again within about this long after it restarts. It is also
// the least allowed.
const DefaultAckWait = 3 * time.Second

// Sectors lists the valid destination sectors.
var Sectors = []string{"municipality", "gp", "parents", "region_psychiatry", "school_ppr", "internal"}

func setDefaults(v *viper.Viper) {
	v.SetDefault("data_dir", "./data")
	v.SetDefault("log.level", "info")
	v.SetDefault("log.format", "json")
	v.SetDefault("http.listen", "127.0.0.1:8080")
	v.SetDefault("nats.replicas", 1)
	v.SetDefault("nats.embedded.max_store", "10GB")
	v.SetDefault("nats.embedded.cipher", "chacha")
	v.SetDefault("streams.letters_max_bytes", "4GB")
	v.SetDefault("streams.journey_max_bytes", "1GB")
	v.SetDefault("streams.audit_max_bytes", "1GB")
	v.SetDefault("streams.letters_max_age", 90*24*time.Hour)
	v.SetDefault("streams.dedup_window", 24*time.Hour)
	v.SetDefault("streams.parked_max_bytes", "2GB")
	v.SetDefault("streams.journey_max_age", 180*24*time.Hour)
	v.SetDefault("streams.journey_persist", "async")
	v.SetDefault("gc_percent", 50)
	v.SetDefault("streams.audit_max_age", 183*24*time.Hour)
	v.SetDefault("streams.max_msg_size", "32MB")
	// 512MB fits the defaults (and the smallest stores in use) under the
	// 90% max_store check; a council expecting many large letters raises
	// it together with nats.embedded.max_store.
	v.SetDefault("streams.blobs_max_bytes", "512MB")
	v.SetDefault("streams.blobs_grace", 24*time.Hour)
	v.SetDefault("pipeline.max_attempts", 8)
	v.SetDefault("pipeline.backoff_initial", time.Second)
	v.SetDefault("pipeline.backoff_max", 5*time.Minute)
	v.SetDefault("pipeline.sink_timeout", 30*time.Second)
	v.SetDefault("pipeline.max_in_flight", 256)
	v.SetDefault("pipeline.ack_wait", DefaultAckWait)
	v.SetDefault("pipeline.shutdown_grace", 20*time.Second)
	v.SetDefault("pipeline.inline_max_bytes", "1MB")
	v.SetDefault("pipeline.blob_memory", "8MB")
	v.SetDefault("pipeline.blob_gc_interval", time.Hour)
	v.SetDefault("console.language", "en")
	v.SetDefault("console.time_zone", "Europe/Copenhagen")
	v.SetDefault("council.enabled", true)
	v.SetDefault("council.meetings.rule", "second tuesday 13:00")
	v.SetDefault("council.meetings.zone", "Europe/Copenhagen")
	v.SetDefault("council.meetings.cap", 6)
	v.SetDefault("council.meetings.cutoff_days", 0)
	v.SetDefault("council.watch_days", 35)
	v.SetDefault("council.retention_days", 760)
	v.SetDefault("council.receipt.template", DefaultReceiptTemplate)
	v.SetDefault("council.receipt.moved_template", DefaultMovedTemplate)
}

// Load reads path (may be empty for defaults only) and the environment.
func Load(path string) (*Config, error) {
	v := viper.New()
	setDefaults(v)
	v.SetEnvPrefix("SAMHUB")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	if path != "" {
		v.SetConfigFile(path)
		if err := v.ReadInConfig(); err != nil {
			return nil, fmt.Errorf("config file %s: %w", path, err)
		}
	}
	// AutomaticEnv only applies to keys viper already knows; bind every
	// key that holds a value so each has its SAMHUB_* variable without a
	// file (adapter keys are set by adapters.ApplyEnv below).
	for _, k := range EnvKeys() {
		_ = v.BindEnv(k)
	}
	var c Config
	dec := func(dc *mapstructure.DecoderConfig) {
		dc.ErrorUnused = true
		dc.WeaklyTypedInput = true
		dc.DecodeHook = mapstructure.ComposeDecodeHookFunc(
			durationHook,
			mapstructure.StringToSliceHookFunc(","),
		)
	}
	if err := v.Unmarshal(&c, dec); err != nil {
		return nil, decodeErrors(err)
	}
	if err := adapters.ApplyEnv(c.Adapters, os.Environ()); err != nil {
		return nil, err
	}
	if path != "" && !filepath.IsAbs(c.DataDir) {
		// Relative data dirs are relative to the working directory, as a
		// user typing `make run` expects.
		c.DataDir = filepath.Clean(c.DataDir)
	}
	if c.NATS.Embedded.StoreDir == "" {
		c.NATS.Embedded.StoreDir = filepath.Join(c.DataDir, "jetstream")
	}
	if c.NATS.Embedded.ToolsPasswordFile == "" {
		c.NATS.Embedded.ToolsPasswordFile = filepath.Join(c.DataDir, "nats-tools.password")
	}
	return &c, c.Validate()
}

// LoadChecked is Load followed by CheckAdapters: everything `samhub serve`
// decodes, checked before anything starts. `samhub config check`, `serve`
// and `route --dry-run` read configuration through it; the adapter types
// must be linked in (internal/plugins).
func LoadChecked(path string) (*Config, error) {
	c, err := Load(path)
	if err != nil {
		return nil, err
	}
	if err := errors.Join(c.CheckAdapters(), c.checkKeys()); err != nil {
		return nil, err
	}
	return c, nil
}

// checkKeys reads the embedded store's at-rest keys as serve would, so
// `config check` refuses a key file that is missing or empty (an empty key
// would leave the store unencrypted without a word).
func (c *Config) checkKeys() error {
	e := c.NATS.Embedded
	if c.NATS.URL != "" || (e.KeyFile == "" && e.KeyEnv == "") {
		return nil
	}
	key := "nats.embedded.key_file"
	if e.KeyFile == "" {
		key = "nats.embedded.key_env"
	}
	var errs []error
	k, err := secret.Read(e.KeyFile, e.KeyEnv)
	switch {
	case err != nil:
		errs = append(errs, &Error{Key: key, Msg: fmt.Sprintf("cannot be read: %v", err)})
	case k == "" && (e.KeyFile != "" || e.KeyEnv != ""):
		errs = append(errs, &Error{Key: key, Msg: "is empty: the store would not be encrypted"})
	}
	return errors.Join(errs...)
}

// CheckAdapters decodes and checks every adapter block through its type's
// spec, building nothing. Errors name the full key
// (adapters.<name>.<key>); all are joined.
func (c *Config) CheckAdapters() error {
	var errs []error
	for _, name := range sortedKeys(c.Adapters) {
		typ, _ := c.Adapters[name]["type"].(string)
		if typ == "" {
			continue // Validate reported it
		}
		if err := adapters.Check(typ, name, c.Adapters[name]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// EnvKeys lists the dotted keys of every top-level setting that holds a
// value, each settable as SAMHUB_<KEY> with '.' as '_'.
func EnvKeys() []string {
	var out []string
	var walk func(prefix string, fs []adapters.Field)
	walk = func(prefix string, fs []adapters.Field) {
		for _, f := range fs {
			switch f.Type {
			case adapters.TypeObject:
				walk(prefix+f.Key+".", f.Fields)
			case adapters.TypeMap, adapters.TypeObjects:
			default:
				out = append(out, prefix+f.Key)
			}
		}
	}
	walk("", adapters.FieldsOf(reflect.TypeFor[Config]()))
	return out
}

// Validate checks the whole configuration and joins every mistake found.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, msg string, args ...any) {
		errs = append(errs, &Error{Key: key, Msg: fmt.Sprintf(msg, args...)})
	}

	if c.DataDir == "" {
		bad("data_dir", "must not be empty")
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be one of debug, info, warn, error")
	}
	if c.Log.Format != "json" && c.Log.Format != "text" {
		bad("log.format", "must be json or text")
	}
	if err := checkHostPort(c.HTTP.Listen); err != nil {
		bad("http.listen", "must be host:port (%v)", err)
	} else if host, _, _ := net.SplitHostPort(c.HTTP.Listen); !isLoopback(host) && c.HTTP.TLSCertFile == "" && !c.Console.SecureCookies {
		bad("http.listen", "listens beyond loopback only with http.tls_cert_file/tls_key_file, or behind a TLS proxy with console.secure_cookies: true")
	}
	if (c.HTTP.TLSCertFile == "") != (c.HTTP.TLSKeyFile == "") {
		bad("http.tls_cert_file", "set both http.tls_cert_file and http.tls_key_file")
	}
	for i, p := range c.HTTP.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err != nil {
			if _, err := netip.ParseAddr(p); err != nil {
				bad(fmt.Sprintf("http.trusted_proxies[%d]", i), "must be an IP address or a CIDR prefix such as 10.0.0.0/8 (got %q)", p)
			}
		}
	}
	if c.NATS.URL != "" {
		for _, u := range strings.Split(c.NATS.URL, ",") {
			pu, err := url.Parse(strings.TrimSpace(u))
			if err != nil || (pu.Scheme != "nats" && pu.Scheme != "tls") || pu.Host == "" {
				bad("nats.url", "must be a nats:// or tls:// URL list, e.g. tls://nats-1:4222")
				break
			}
			// nats.tls set makes nats.go insist on TLS whatever the scheme.
			if pu.Scheme == "nats" && !isLoopback(pu.Hostname()) && c.NATS.TLS == (TLS{}) {
				bad("nats.url", "%s is plaintext to an address beyond loopback, where anyone on the path reads every letter; use tls://%s with nats.tls.ca_file", pu.Host, pu.Host)
				break
			}
		}
		if c.NATS.Replicas < 1 || c.NATS.Replicas > 5 {
			bad("nats.replicas", "must be between 1 and 5")
		}
	} else {
		if c.NATS.Replicas != 1 {
			bad("nats.replicas", "must be 1 with the embedded server")
		}
		e := c.NATS.Embedded
		if e.OldKeyFile != "" {
			bad("nats.embedded.old_key_file", "is no longer read: rotating the key in place loses each destination's place in the letter stream with this nats-server; stop the hub, run `samhub store rekey --config FILE --new-key-file NEW`, then point key_file at NEW and remove old_key_file (docs/operations.md, \"Rotate the encryption key\")")
		}
		if e.Listen != "" {
			host, _, _ := net.SplitHostPort(e.Listen)
			if err := checkHostPort(e.Listen); err != nil {
				bad("nats.embedded.listen", "must be host:port (%v)", err)
			} else if !isLoopback(host) && (e.TLS.CertFile == "" || e.TLS.KeyFile == "") {
				bad("nats.embedded.listen", "listens beyond loopback only with nats.embedded.tls.cert_file and key_file set")
			}
		}
		if _, err := ParseBytes(e.MaxStore); err != nil {
			bad("nats.embedded.max_store", "must be a size such as 10GB")
		}
		if e.KeyFile != "" && e.KeyEnv != "" {
			bad("nats.embedded.key_file", "set either key_file or key_env, not both")
		}
		if e.Cipher != "chacha" && e.Cipher != "aes" {
			bad("nats.embedded.cipher", "must be chacha or aes")
		}
	}
	var streamSum int64
	for _, kv := range []struct{ key, val string }{{"streams.letters_max_bytes", c.Streams.LettersMaxBytes}, {"streams.parked_max_bytes", c.Streams.ParkedMaxBytes},
		{"streams.journey_max_bytes", c.Streams.JourneyMaxBytes}, {"streams.audit_max_bytes", c.Streams.AuditMaxBytes}, {"streams.blobs_max_bytes", c.Streams.BlobsMaxBytes},
		{"streams.max_msg_size", c.Streams.MaxMsgSize}} {
		n, err := ParseBytes(kv.val)
		if err != nil || n <= 0 {
			bad(kv.key, "must be a positive size such as 4GB (unlimited streams are refused)")
		}
		if kv.key != "streams.max_msg_size" {
			streamSum += n
		}
	}
	if maxStore, err := ParseBytes(c.NATS.Embedded.MaxStore); c.NATS.URL == "" && err == nil && streamSum > maxStore*9/10 {
		bad("nats.embedded.max_store", "must leave room for the streams: letters+parked+journey+audit+blobs max bytes add up to more than 90%% of it")
	}
	msgMax, _ := ParseBytes(c.Streams.MaxMsgSize)
	if n, err := ParseBytes(c.Pipeline.InlineMaxBytes); err != nil || n <= 0 {
		bad("pipeline.inline_max_bytes", "must be a positive size such as 1MB")
	} else if msgMax > 0 && n > msgMax {
		bad("pipeline.inline_max_bytes", "must not exceed streams.max_msg_size (%s)", c.Streams.MaxMsgSize)
	}
	if c.Streams.BlobsGrace < time.Minute {
		bad("streams.blobs_grace", "must be at least 1m (a blob a new letter reuses must outlive that letter)")
	}
	if n, err := ParseBytes(c.Pipeline.BlobMemory); err != nil || n < 0 {
		bad("pipeline.blob_memory", "must be a size such as 8MB, or 0 to leave Go's memory limit alone")
	}
	if c.Pipeline.BlobGCInterval < time.Second {
		bad("pipeline.blob_gc_interval", "must be at least 1s")
	}
	if c.GCPercent < 10 || c.GCPercent > 1000 {
		bad("gc_percent", "must be between 10 and 1000 (Go's default is 100)")
	}
	if c.Streams.JourneyPersist != "async" && c.Streams.JourneyPersist != "sync" {
		bad("streams.journey_persist", "must be async or sync")
	}
	if c.Streams.DedupWindow < 2*time.Minute {
		bad("streams.dedup_window", "must be at least 2m")
	}
	if c.Streams.LettersMaxAge < c.Streams.DedupWindow {
		bad("streams.letters_max_age", "must be at least streams.dedup_window")
	}
	if c.Pipeline.MaxAttempts < 1 {
		bad("pipeline.max_attempts", "must be at least 1")
	}
	if c.Pipeline.BackoffInitial <= 0 || c.Pipeline.BackoffMax < c.Pipeline.BackoffInitial {
		bad("pipeline.backoff_initial", "must be positive and not above pipeline.backoff_max")
	}
	if c.Pipeline.SinkTimeout <= 0 {
		bad("pipeline.sink_timeout", "must be positive")
	}
	if c.Pipeline.AckWait < DefaultAckWait {
		bad("pipeline.ack_wait", "must be at least %s (letters held by the hub are kept alive every ack_wait/3)", DefaultAckWait)
	}
	if c.Pipeline.MaxInFlight < 1 {
		bad("pipeline.max_in_flight", "must be at least 1")
	}

	names := sortedKeys(c.Adapters)
	for _, name := range names {
		block := c.Adapters[name]
		if !validName(name) {
			bad("adapters."+name, "name must be lower-case letters, digits and '-'")
		}
		if t, _ := block["type"].(string); t == "" {
			bad("adapters."+name+".type", "must name an adapter type")
		}
	}
	for _, name := range sortedKeys(c.Destinations) {
		d := c.Destinations[name]
		key := "destinations." + name
		if !validName(name) {
			bad(key, "name must be lower-case letters, digits and '-'")
		}
		if _, ok := c.Adapters[d.Adapter]; !ok {
			bad(key+".adapter", "must name an instance under adapters (got %q)", d.Adapter)
		}
		if !contains(Sectors, d.Sector) {
			bad(key+".sector", "must be one of %s", strings.Join(Sectors, ", "))
		}
		if d.MaxAttempts < 0 {
			bad(key+".max_attempts", "must not be negative")
		}
		if d.Sector == "parents" {
			// Letters to the parents carry a child's health information to
			// citizens: only a channel a public authority may write to
			// citizens by (Digital Post), never email to a private address.
			// A type not linked in is left to CheckAdapters.
			typ, _ := c.Adapters[d.Adapter]["type"].(string)
			if t, ok := adapters.TypeNamed(typ); ok && !t.Spec.Citizens {
				bad(key+".adapter", "adapter %q is of type %s, which does not reach citizens: the parents sector takes letters by Digital Post (an adapter of type digitalpost); email carries letters to professionals only", d.Adapter, typ)
			}
		}
	}
	dir := map[string]string{} // GLN or SOR → role
	for i, r := range c.Receivers {
		key := fmt.Sprintf("receivers[%d]", i)
		if r.GLN == "" && r.SOR == "" {
			bad(key+".gln", "set gln or sor (or both)")
		}
		if r.GLN != "" && (len(r.GLN) != 13 || strings.Trim(r.GLN, "0123456789") != "") {
			bad(key+".gln", "must be a 13-digit GLN (EAN location number)")
		}
		if r.SOR != "" && strings.Trim(r.SOR, "0123456789") != "" {
			bad(key+".sor", "must be a SOR code (digits only)")
		}
		for _, id := range []string{r.GLN, r.SOR} {
			if _, twice := dir[id]; id != "" && twice {
				bad(key, "%s is listed twice in the receiver directory", id)
			}
			if id != "" {
				dir[id] = r.Role
			}
		}
		if !contains(ReceiverRoles, r.Role) {
			bad(key+".role", "must be one of %s", strings.Join(ReceiverRoles, ", "))
		}
		for _, f := range r.Formats {
			if !contains(MedComFormats, f) {
				bad(key+".formats", "%q is not one of %s", f, strings.Join(MedComFormats, ", "))
			}
		}
	}
	for _, name := range sortedKeys(c.Destinations) {
		d := c.Destinations[name]
		if d.Receiver == "" {
			continue
		}
		role, listed := dir[d.Receiver]
		switch roles := route.SectorRoles(d.Sector); {
		case !listed:
			bad("destinations."+name+".receiver", "must be a GLN or SOR listed under receivers (got %q)", d.Receiver)
		case roles != nil && !slices.Contains(roles, role):
			// The receiver's role decides whose consent is needed: a
			// hospital behind the GP destination would get letters under
			// the GP's consent.
			bad("destinations."+name+".receiver", "%s is a %s in the receiver directory; a destination of sector %s delivers only to a receiver of role %s", d.Receiver, role, d.Sector, strings.Join(roles, " or "))
		}
	}
	seen := map[string]bool{}
	for i, r := range c.Routes {
		key := fmt.Sprintf("routes[%d]", i)
		if r.Name == "" {
			bad(key+".name", "must not be empty")
		} else if seen[r.Name] {
			bad(key+".name", "duplicate route name %q", r.Name)
		}
		seen[r.Name] = true
		if len(r.To) == 0 {
			bad(key+".to", "must name at least one destination")
		}
		for _, to := range r.To {
			if _, ok := c.Destinations[to]; !ok {
				bad(key+".to", "names unknown destination %q", to)
			}
		}
		for _, k := range r.Match.Kind {
			if !contains(kinds, k) {
				bad(key+".match.kind", "%q is not one of %s", k, strings.Join(kinds, ", "))
			}
		}
		for _, s := range r.Match.Source {
			if _, ok := c.Adapters[s]; !ok {
				bad(key+".match.source", "names unknown adapter %q", s)
			}
		}
		if r.RequireConsent != nil && !*r.RequireConsent {
			dischargeOnly := len(r.Match.Kind) > 0 && !slices.ContainsFunc(r.Match.Kind, func(k string) bool { return k != "discharge-note" })
			for _, to := range r.To {
				d, ok := c.Destinations[to]
				switch {
				case !ok, d.Sector == "municipality", d.Sector == "internal":
				case d.Sector == "gp" && dischargeOnly:
					// Sundhedsloven § 41: discharge letters may go to the
					// patient's GP without consent (a recorded withdrawal or
					// refusal still stops them; pipeline/route).
				default:
					bad(key+".require_consent", "may be false only for municipality or internal destinations, or for discharge notes to the GP (match.kind: [discharge-note]); %q is %s", to, d.Sector)
				}
			}
		}
	}
	if n := c.Notify; n.Destination != "" {
		if d, ok := c.Destinations[n.Destination]; !ok {
			bad("notifications.destination", "names unknown destination %q", n.Destination)
		} else if d.Sector != "internal" {
			bad("notifications.destination", "must be a destination with sector internal (notices go to the municipality's own staff)")
		}
		for _, e := range n.On {
			if !contains(NotifyEvents, e) {
				bad("notifications.on", "%q is not one of %s", e, strings.Join(NotifyEvents, ", "))
			}
		}
		for _, k := range n.Kinds {
			if !contains(kinds, k) {
				bad("notifications.kinds", "%q is not one of %s", k, strings.Join(kinds, ", "))
			}
		}
		if len(n.Recipients) == 0 {
			bad("notifications.recipients", "must list at least one address (the coordinator)")
		}
	}
	if c.Simulators.CaseSys != nil {
		checkSim(bad, "simulators.casesys", c.Simulators.CaseSys)
	}
	if c.Simulators.EPJ != nil {
		checkSim(bad, "simulators.epj", c.Simulators.EPJ)

	}
	if c.Simulators.DigitalPost != nil {
		checkSim(bad, "simulators.digitalpost", c.Simulators.DigitalPost)
		if c.Simulators.DigitalPost.MaxUpload != "" {
			bad("simulators.digitalpost.max_upload", "is a setting of the case-system and EPJ simulators only")
		}
	}
	for name, s := range map[string]*SimConfig{"casesys": c.Simulators.CaseSys, "epj": c.Simulators.EPJ} {
		if s != nil && len(s.Exempt) > 0 {
			bad("simulators."+name+".exempt", "is a setting of the Digital Post simulator only")
		}
	}
	if d := c.Simulators.DigitalPost; d != nil {
		for i, cpr := range d.Exempt {
			if len(cpr) != 10 || strings.Trim(cpr, "0123456789") != "" {
				bad(fmt.Sprintf("simulators.digitalpost.exempt[%d]", i), "must be a CPR number of 10 digits (a fictitious test person)")
			}
		}
	}
	roles := []string{"coordinator", "operations", "auditor"}
	for i, u := range c.Console.Users {
		key := fmt.Sprintf("console.users[%d]", i)
		if u.Name == "" {
			bad(key+".name", "must not be empty")
		}
		if !contains(roles, u.Role) {
			bad(key+".role", "must be one of %s", strings.Join(roles, ", "))
		}
		if u.PasswordHash == "" && u.TokenHash == "" {
			bad(key+".password_hash", "set password_hash (bcrypt) or token_hash (sha256 hex)")
		}
		if u.PasswordHash != "" && !strings.HasPrefix(u.PasswordHash, "$2") {
			bad(key+".password_hash", "must be a bcrypt hash ($2a$…), never a plain password")
		}
	}
	if c.Console.Language != "en" && c.Console.Language != "da" {
		bad("console.language", "must be en or da")
	}
	if _, err := time.LoadLocation(c.Console.TimeZone); err != nil || c.Console.TimeZone == "" || c.Console.TimeZone == "Local" {
		bad("console.time_zone", "must be an IANA time zone such as Europe/Copenhagen or UTC")
	}
	c.validateCouncil(bad)
	return errors.Join(errs...)
}

var kinds = []string{"referral", "reply", "recommendation", "acknowledgement", "discharge-note", "note", "notification"}

func checkSim(bad func(string, string, ...any), key string, s *SimConfig) {
	if err := checkHostPort(s.Listen); err != nil {
		bad(key+".listen", "must be host:port (%v)", err)
	}
	if s.DataDir == "" {
		bad(key+".data_dir", "must not be empty")
	}
	if s.MaxUpload != "" {
		if n, err := ParseBytes(s.MaxUpload); err != nil || n <= 0 {
			bad(key+".max_upload", "must be a positive size such as 50MB")
		}
	}
}

// Error names a configuration key and what was expected of it.
type Error struct {
	Key string
	Msg string
}

func (e *Error) Error() string { return e.Key + ": " + e.Msg }

func checkHostPort(s string) error {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return err
	}
	if port == "" {
		return errors.New("missing port")
	}
	// 0 picks a free port (tests); anything else must fit in 16 bits.
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ParseBytes reads sizes such as 512MB, 10GB, 1024 (bytes).
func ParseBytes(s string) (int64, error) {
	s = strings.TrimSpace(strings.ToUpper(s))
	if s == "" {
		return 0, errors.New("empty size")
	}
	mult := int64(1)
	for _, u := range []struct {
		suf string
		m   int64
	}{{"TB", 1 << 40}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(s, u.suf) {
			mult = u.m
			s = strings.TrimSpace(strings.TrimSuffix(s, u.suf))
			break
		}
	}
	var n int64
	if _, err := fmt.Sscanf(s, "%d", &n); err != nil {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}
