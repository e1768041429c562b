package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/samhub/samhub/pipeline/audit"
	"github.com/samhub/samhub/pipeline/broker"
	"github.com/samhub/samhub/pipeline/retryq"
	"github.com/samhub/samhub/pipeline/route"
)

// A bulk replay sends every parked letter matching a filter back to its
// destination: after an outage, thousands of letters with one cause. It
// runs in the background on the replica that was asked, one letter after
// the other in the order they parked (so a thread's letters keep their
// order), and keeps its progress in the state bucket, where every replica
// reads it. The filter is frozen at the queue's last sequence when it
// starts, so letters that park again during the replay, or park anew,
// are not replayed a second time by it. Its id is the caller's request id:
// a second request with the same id (a double click, a retried POST) gets
// the first one's replay instead of a new one.
type BulkReplay struct {
	ID     string        `json:"id"`
	Filter retryq.Filter `json:"filter"`
	Reason string        `json:"reason"`
	Actor  string        `json:"actor"`
	// Planned is how many entries matched when it started.
	Planned int `json:"planned"`
	// Replayed counts the letters sent again; StillDenied those of them
	// the routing still denied (no consent yet: they park again), and
	// StillDeniedBy how many for each reason code (consent_missing, ...);
	// NotRouted those no rule sends to the destination any more (they
	// leave the queue undelivered); Gone the entries no longer parked when
	// reached (someone else replayed or discarded them); Failed those that
	// could not be replayed; StillHeld those left parked because they wait
	// for an earlier letter of their thread (ErrThreadHeld), which brings
	// them when it goes. Replayed minus StillDenied and NotRouted went on
	// to be delivered.
	Replayed      int            `json:"replayed"`
	StillDenied   int            `json:"stillDenied"`
	StillDeniedBy map[string]int `json:"stillDeniedBy,omitempty"`
	NotRouted     int            `json:"notRouted"`
	Gone          int            `json:"gone"`
	StillHeld     int            `json:"stillHeld,omitempty"`
	Failed        int            `json:"failed"`
	Failures      []BulkFailure  `json:"failures,omitempty"` // the first maxBulkFailures
	State         string         `json:"state"`              // running, done, stopped, interrupted
	Error         string         `json:"error,omitempty"`    // why it stopped
	Started       time.Time      `json:"started"`
	Updated       time.Time      `json:"updated"`
	Finished      time.Time      `json:"finished,omitzero"`
	Holder        string         `json:"holder"` // the replica running it
}

// BulkFailure is one entry a bulk replay could not replay.
type BulkFailure struct {
	Seq      uint64 `json:"seq"`
	LetterID string `json:"letterId"`
	Error    string `json:"error"`
}

// Bulk replay states.
const (
	BulkRunning = "running"
	BulkDone    = "done"
	// BulkStopped: it gave up after repeated failures to store replays.
	BulkStopped = "stopped"
	// BulkInterrupted: the replica running it stopped (or has not reported
	// for bulkStale); what was replayed stays replayed, the rest stays
	// parked: a new replay with the same filter takes the rest.
	BulkInterrupted = "interrupted"
)

const (
	bulkPrefix      = "hub.bulk."
	bulkStale       = 2 * time.Minute
	bulkSaveEvery   = time.Second
	bulkChunk       = 200
	maxBulkFailures = 50
	// bulkGiveUp consecutive failures stop a replay: the store is down,
	// and trying the other thousands would only fill the log.
	bulkGiveUp = 20
	// bulkKeep is how long finished replays stay listed.
	bulkKeep = 30 * 24 * time.Hour
)

// ErrNothingToReplay means no parked letter matches the filter.
var ErrNothingToReplay = errors.New("no parked letter matches the filter")

// ErrUnknownBulk means no bulk replay has that id.
var ErrUnknownBulk = errors.New("no bulk replay with that id")

// ErrBadRequestID means a request id is not usable as a bulk replay's id.
var ErrBadRequestID = errors.New("request id: must be 8 to 64 letters, digits, - or _")

var requestIDShape = regexp.MustCompile(`^[A-Za-z0-9_-]{8,64}$`)

// NewRequestID returns a fresh request id for StartBulkReplay.
func NewRequestID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// bulks keeps the bulk replays in the state bucket and waits for the ones
// this replica runs when it stops.
type bulks struct {
	kv      jetstream.KeyValue
	running sync.WaitGroup
}

func newBulks(ctx context.Context, js jetstream.JetStream) (*bulks, error) {
	kv, err := js.KeyValue(ctx, broker.BucketState)
	if err != nil {
		return nil, err
	}
	return &bulks{kv: kv}, nil
}

func (b *bulks) get(ctx context.Context, id string) (BulkReplay, uint64, error) {
	e, err := b.kv.Get(ctx, bulkPrefix+id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return BulkReplay{}, 0, ErrUnknownBulk
	}
	if err != nil {
		return BulkReplay{}, 0, err
	}
	var r BulkReplay
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return BulkReplay{}, 0, fmt.Errorf("bulk replay %s unreadable: %w", id, err)
	}
	if r.State == BulkRunning && time.Since(r.Updated) > bulkStale {
		r.State, r.Error = BulkInterrupted, "the replica running it stopped reporting"
	}
	return r, e.Revision(), nil
}

func (b *bulks) put(ctx context.Context, r BulkReplay) error {
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = b.kv.Put(ctx, bulkPrefix+r.ID, v)
	return err
}

// StartBulkReplay starts replaying every parked letter matching f that is
// parked now (f.UpTo, when set, bounds it to an earlier count: what a
// preview showed). requestID identifies the request: a second call with it
// returns the first call's replay and started false. The replay is audited
// once, before it starts, with the filter and the count, and again when it
// ends with what it did; each letter's journey names the replay.
func (h *Hub) StartBulkReplay(ctx context.Context, who Actor, requestID string, f retryq.Filter, reason string) (r BulkReplay, started bool, err error) {
	if strings.TrimSpace(reason) == "" {
		return r, false, ErrReasonRequired
	}
	if !requestIDShape.MatchString(requestID) {
		return r, false, ErrBadRequestID
	}
	if r, _, err := h.bulks.get(ctx, requestID); err == nil {
		return r, false, nil
	} else if !errors.Is(err, ErrUnknownBulk) {
		return r, false, err
	}
	c, err := h.queue.Count(ctx, f)
	if err != nil {
		return r, false, err
	}
	if c.Total == 0 {
		return r, false, ErrNothingToReplay
	}
	f.UpTo, f.Limit = c.UpTo, 0
	now := time.Now().UTC()
	r = BulkReplay{ID: requestID, Filter: f, Reason: scrubText(reason), Actor: who.Name, Planned: c.Total, State: BulkRunning, Started: now, Updated: now, Holder: h.holder}
	v, _ := json.Marshal(r)
	// Create, not Put: of two requests with one id, one starts it.
	if _, err := h.bulks.kv.Create(ctx, bulkPrefix+r.ID, v); errors.Is(err, jetstream.ErrKeyExists) {
		r, _, err := h.bulks.get(ctx, requestID)
		return r, false, err
	} else if err != nil {
		return r, false, err
	}
	if err := h.audit.Append(ctx, audit.Record{Actor: who.Name, Role: who.Role, Remote: who.Remote, Action: "replay-filter",
		Target: fmt.Sprintf("filter:%s count:%d bulk:%s", f, c.Total, r.ID), Reason: r.Reason, Result: "started"}); err != nil {
		r.State, r.Error, r.Finished = BulkStopped, "not started: the audit record could not be stored", time.Now().UTC()
		_ = h.bulks.put(context.WithoutCancel(ctx), r)
		return r, false, err
	}
	h.bulks.running.Add(1)
	go func() {
		defer h.bulks.running.Done()
		h.runBulk(h.stopping, who, r)
	}()
	return r, true, nil
}

// runBulk replays the entries of r in order, saving its progress about
// once a second; a stopping hub interrupts it between two letters.
func (h *Hub) runBulk(ctx context.Context, who Actor, r BulkReplay) {
	save := func() {
		r.Updated = time.Now().UTC()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.bulks.put(sctx, r); err != nil {
			h.log.Error("bulk replay: progress not saved", "bulk", r.ID, "err", err)
		}
	}
	saved := time.Now()
	var after uint64
	consecutive := 0
	note := "bulk replay " + r.ID
run:
	for {
		var chunk []retryq.Entry
		err := h.queue.Each(ctx, r.Filter, after, func(e retryq.Entry) bool {
			chunk = append(chunk, e)
			return len(chunk) < bulkChunk
		})
		switch {
		case ctx.Err() != nil:
			r.State, r.Error = BulkInterrupted, "the hub stopped"
			break run
		case err != nil:
			h.log.Error("bulk replay: reading the queue failed", "bulk", r.ID, "err", err)
			r.State, r.Error = BulkStopped, "the retry queue could not be read; see the hub log"
			break run
		case len(chunk) == 0:
			r.State = BulkDone
			break run
		}
		for _, e := range chunk {
			if ctx.Err() != nil {
				r.State, r.Error = BulkInterrupted, "the hub stopped"
				break run
			}
			after = e.Seq
			// A letter once begun is finished: stopping between its
			// publish and its removal from the queue would leave it
			// parked and replayed.
			lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			dec, err := h.replay(lctx, who, e.Seq, r.Reason, false, note)
			cancel()
			switch {
			case errors.Is(err, retryq.ErrNotParked):
				r.Gone++
				consecutive = 0
			case errors.Is(err, ErrThreadHeld):
				r.StillHeld++
				consecutive = 0
			case err != nil:
				h.log.Error("bulk replay: a letter could not be replayed", "bulk", r.ID, "seq", e.Seq, "err", err)
				r.Failed++
				if len(r.Failures) < maxBulkFailures {
					r.Failures = append(r.Failures, BulkFailure{Seq: e.Seq, LetterID: e.LetterID, Error: "the replay could not be stored; see the hub log"})
				}
				if consecutive++; consecutive >= bulkGiveUp {
					r.State, r.Error = BulkStopped, fmt.Sprintf("%d replays in a row could not be stored; see the hub log", consecutive)
					break run
				}
			default:
				r.Replayed++
				consecutive = 0
				switch dec.Verdict {
				case route.Deny:
					r.StillDenied++
					if r.StillDeniedBy == nil {
						r.StillDeniedBy = map[string]int{}
					}
					r.StillDeniedBy[dec.Code]++
				case route.Skip:
					r.NotRouted++
				}
			}
			if time.Since(saved) >= bulkSaveEvery {
				save()
				saved = time.Now()
			}
		}
	}
	r.Finished = time.Now().UTC()
	save()
	actx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The console translates this line (i18n.go, bulkResult): keep its shape.
	result := fmt.Sprintf("%s: replayed %d (still denied %d), gone %d, failed %d of %d", r.State, r.Replayed, r.StillDenied, r.Gone, r.Failed, r.Planned)
	if err := h.audit.Append(actx, audit.Record{Actor: who.Name, Role: who.Role, Remote: who.Remote, Action: "replay-filter",
		Target: fmt.Sprintf("filter:%s count:%d bulk:%s", r.Filter, r.Planned, r.ID), Reason: r.Reason, Result: result}); err != nil {
		h.log.Error("bulk replay: the closing audit record was not stored", "bulk", r.ID, "err", err)
	}
	h.log.Info("bulk replay ended", "bulk", r.ID, "state", r.State, "replayed", r.Replayed, "gone", r.Gone, "failed", r.Failed)
}

// BulkReplay returns one bulk replay and its progress, from any replica.
func (h *Hub) BulkReplay(ctx context.Context, id string) (BulkReplay, error) {
	if !requestIDShape.MatchString(id) {
		return BulkReplay{}, ErrUnknownBulk
	}
	r, _, err := h.bulks.get(ctx, id)
	return r, err
}

// BulkReplays lists the bulk replays of the last 30 days, newest first,
// and forgets older ones.
func (h *Hub) BulkReplays(ctx context.Context) ([]BulkReplay, error) {
	keys, err := h.bulks.kv.ListKeysFiltered(ctx, bulkPrefix+">")
	if err != nil {
		return nil, err
	}
	defer func() { _ = keys.Stop() }()
	out := []BulkReplay{}
	for k := range keys.Keys() {
		r, rev, err := h.bulks.get(ctx, strings.TrimPrefix(k, bulkPrefix))
		if err != nil {
			continue // deleted meanwhile, or unreadable: not for this list
		}
		if r.State != BulkRunning && time.Since(r.Updated) > bulkKeep {
			_ = h.bulks.kv.Delete(ctx, k, jetstream.LastRevision(rev))
			continue
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b BulkReplay) int { return b.Started.Compare(a.Started) })
	return out, nil
}
