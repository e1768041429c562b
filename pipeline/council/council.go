// Package council keeps the council's register: the meetings (from a rule
// in configuration, plus meetings the coordinator moves or adds), each
// referral's facts and the meeting that takes it, the letters that follow
// it (recommendations, documents, child psychiatry's rejections), the
// referral watch, the receipt to the referring GP and the council's
// figures.
//
// The register is a projection of the letter stream: one replica at a time
// (lease "hub.council") reads the stream through the durable consumer
// "council" and writes the facts to the KV bucket samhub_council, with
// compare-and-set and idempotent updates, so a letter read twice changes
// nothing and two replicas never assign a referral twice or fill a meeting
// past its cap. Nothing is written on a letter's own path: a source's
// publish and a destination's delivery do not wait for the register.
// Every replica keeps a copy of the bucket in memory (a watch), so views,
// figures and the gauge samhub_referrals_unanswered agree across replicas
// and survive restarts.
//
// The register keeps no personal data but tokens: letter ids, the thread
// and patient tokens (retryq.PatientToken), dates, organisations' names,
// GLN and SOR numbers, meetings and states. A view that shows a child's
// name reads it from the stored letter at that moment, audited.
package council

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/samhub/samhub/internal/clock"
	"github.com/samhub/samhub/pipeline/audit"
	"github.com/samhub/samhub/pipeline/broker"
	"github.com/samhub/samhub/pipeline/council/schedule"
	"github.com/samhub/samhub/pipeline/journey"
	"github.com/samhub/samhub/pipeline/letter"
)

// HubSource is the source name of letters the hub makes itself (notices,
// receipts); the register does not follow them as documents.
const HubSource = "samhub"

// ConsumerName is the durable consumer the register reads the letter
// stream through.
const ConsumerName = "council"

// LeaseName is the lease of the replica that projects and watches. The dot
// keeps it apart from every adapter's lease (adapter names have none).
const LeaseName = "hub.council"

// horizon is how far ahead a referral looks for a meeting with room.
const horizon = 2 * 365 * 24 * time.Hour

// Deps are what the register needs of the hub.
type Deps struct {
	JS       jetstream.JetStream
	Options  Options // the council block
	Log      *slog.Logger
	Registry prometheus.Registerer
	Now      func() time.Time
	Holder   string // this replica's lease holder name
	Audit    *audit.Log
	// StoredLetter reads a stored letter without its blobs; nil, nil when
	// no letter has that id (any more).
	StoredLetter func(ctx context.Context, id string) (*letter.Letter, error)
	// Trace is a letter's journey.
	Trace func(ctx context.Context, id string) ([]journey.Event, error)
	// Consent is the consent the coordinator recorded for a patient token.
	Consent func(ctx context.Context, patientToken string) (*letter.Consent, error)
	// Publish stores a letter the hub makes (a receipt, an answer copy) as
	// source HubSource.
	Publish func(ctx context.Context, l *letter.Letter) error
	// Bind returns a copy of a stored letter whose parts kept in the blob
	// store open from there (an answer copy carries them); nil leaves
	// them named by Ref.
	Bind func(l *letter.Letter) *letter.Letter
	// Notice stores a notice to the coordinator about a letter (no
	// personal data); event is a notifications.on event.
	Notice func(ctx context.Context, event, letterID, da, en string) error
	// NoticeOn reports whether notifications.on names event.
	NoticeOn func(event string) bool
}

// Council is the register on one replica.
type Council struct {
	d      Deps
	cfg    Options
	rule   schedule.Rule
	closed schedule.ClosingDays // council.meetings.closed_days
	watch  time.Duration        // council.watch_days
	keep   time.Duration        // council.retention_days
	reg    *register
	log    *slog.Logger
	now    func() time.Time

	background sync.WaitGroup

	mu      sync.Mutex
	warned  time.Time // the last "no meeting with room" warning
	waiting int       // referrals without a meeting since
	// told are the new-date letters this replica knows are stored, by id,
	// with the change's time: the watch reads none of them again.
	told map[string]time.Time
}

// ErrOff means the register is switched off (council.enabled: false).
var ErrOff = errors.New("the council register is off (council.enabled: false)")

// New opens the register and loads it into memory; nothing is projected
// until Run. With council.enabled false it returns nil, nil.
func New(ctx context.Context, d Deps) (*Council, error) {
	cfg := d.Options
	if !cfg.Enabled {
		return nil, nil
	}
	rule, err := schedule.Parse(cfg.Meetings.Rule, cfg.Meetings.Zone)
	if err != nil {
		return nil, fmt.Errorf("council.meetings.rule: %w", err)
	}
	closed, err := schedule.ParseClosingDays(cfg.Meetings.ClosedDays)
	if err != nil {
		return nil, fmt.Errorf("council.meetings.closed_days: %w", err)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	c := &Council{d: d, cfg: cfg, rule: rule, closed: closed, log: d.Log.With("component", "council"), now: d.Now,
		watch: time.Duration(cfg.WatchDays * float64(24*time.Hour)), keep: time.Duration(cfg.RetentionDays) * 24 * time.Hour}
	if c.reg, err = openRegister(ctx, d.JS, c.log); err != nil {
		return nil, err
	}
	if d.Registry != nil {
		d.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "samhub_referrals_unanswered",
			Help: "Referrals with no recommendation council.watch_days after they arrived.",
		}, func() float64 { return float64(c.unanswered(c.now())) }))
	}
	return c, nil
}

// Run follows the register on this replica until ctx ends, and, while this
// replica holds the lease, projects the letter stream into it and runs the
// referral watch.
func (c *Council) Run(ctx context.Context) error {
	for {
		err := c.reg.watch(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		// NATS away at start: the pages stay empty until it is back.
		c.log.Warn("council register: cannot follow the bucket yet; trying again", "err", err)
		clock.Sleep(ctx, 2*time.Second)
	}
	return broker.RunLeased(ctx, c.d.JS, LeaseName, c.d.Holder, c.log, func(ctx context.Context) error {
		wctx, stop := context.WithCancel(ctx)
		c.background.Add(1)
		go func() {
			defer c.background.Done()
			c.watchLoop(wctx)
		}()
		err := c.project(ctx)
		stop()
		c.background.Wait()
		if ctx.Err() != nil {
			return nil
		}
		return err
	})
}

// Rule is the meeting rule in force.
func (c *Council) Rule() schedule.Rule { return c.rule }

// Cap is the configured number of referrals per meeting.
func (c *Council) Cap() int { return c.cfg.Meetings.Cap }

// WatchDays is council.watch_days.
func (c *Council) WatchDays() float64 { return c.cfg.WatchDays }

// unanswered counts the referrals past the watch without a recommendation.
func (c *Council) unanswered(now time.Time) int {
	n := 0
	for _, r := range c.reg.allReferrals() {
		if r.awaits() && !now.Before(r.Received.Add(c.watch)) {
			n++
		}
	}
	return n
}
