package council

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/samhub/samhub/pipeline/broker"
)

// Org is an organisation a letter came from (a GP practice, child
// psychiatry): never a person.
type Org struct {
	Name string `json:"name,omitempty"`
	GLN  string `json:"gln,omitempty"`
	SOR  string `json:"sor,omitempty"`
	Role string `json:"role,omitempty"`
}

// Ref is a letter of a referral's thread the register follows.
type Ref struct {
	LetterID string    `json:"letterId"`
	Kind     string    `json:"kind,omitempty"`
	Source   string    `json:"source,omitempty"`
	Received time.Time `json:"received"`
}

// ConsentFacts is the consent the referral itself stated: who gave it,
// how, for which sectors; no identity.
type ConsentFacts struct {
	GivenBy            string    `json:"givenBy,omitempty"`
	Form               string    `json:"form,omitempty"`
	GivenAt            time.Time `json:"givenAt,omitempty"`
	Scopes             []string  `json:"scopes,omitempty"`
	YoungPersonRefused bool      `json:"youngPersonRefused,omitempty"`
	WithdrawnAt        time.Time `json:"withdrawnAt,omitempty"`
}

// Referral is the register's record of one referral: ids, tokens, dates
// and organisations, never a CPR number, a child's name or letter text.
// A view that shows the child's name reads it from the stored letter.
type Referral struct {
	Key      string    `json:"key"` // token of the referral's letter id
	LetterID string    `json:"letterId"`
	Seq      uint64    `json:"seq"`              // where the letter is stored on the letter stream
	Thread   string    `json:"thread,omitempty"` // thread token
	Patient  string    `json:"patient,omitempty"`
	Received time.Time `json:"received"`
	Source   string    `json:"source"`
	Format   string    `json:"format,omitempty"`
	// GP is the referring practice (the letter's sender organisation).
	GP Org `json:"gp"`
	// Council is the address the referral was sent to.
	Council Org `json:"council,omitempty"`
	// Consent is the consent the newest letter about the child stated
	// (the referral, or the case system on the council's letters), and
	// ConsentFrom that letter's id.
	Consent     *ConsentFacts `json:"consent,omitempty"`
	ConsentFrom string        `json:"consentFrom,omitempty"`
	// Meeting is the meeting that takes it ("" while no meeting within
	// two years has room).
	Meeting  string    `json:"meeting,omitempty"`
	Assigned time.Time `json:"assigned,omitempty"`
	// Receipt is the id of the hub's receipt to the GP, when one was sent.
	Receipt         string `json:"receipt,omitempty"`
	Recommendations []Ref  `json:"recommendations,omitempty"`
	// Documents are the other letters about the child since the referral
	// (case system, EPJ, the GP's answers).
	Documents []Ref `json:"documents,omitempty"`
	// Rejections are letters from child psychiatry turning a referral of
	// this child down (council.rejections).
	Rejections []Ref `json:"rejections,omitempty"`
	// Flagged is when the referral watch found it without a recommendation
	// after council.watch_days.
	Flagged time.Time `json:"flagged,omitempty"`
}

// consentAt is when the letter that stated the consent shown arrived.
func (r *Referral) consentAt() time.Time {
	if r.ConsentFrom == "" || r.ConsentFrom == r.LetterID {
		return r.Received
	}
	for _, l := range [][]Ref{r.Recommendations, r.Documents} {
		for _, x := range l {
			if x.LetterID == r.ConsentFrom {
				return x.Received
			}
		}
	}
	return r.Received
}

// Answered reports whether the council's recommendation arrived.
func (r *Referral) Answered() bool { return len(r.Recommendations) > 0 }

// meetingRecord is a meeting as stored: a rule meeting once it was
// moved or took a referral, or a meeting the coordinator added.
type meetingRecord struct {
	ID     string    `json:"id"`
	At     time.Time `json:"at"`
	Origin string    `json:"origin"`        // rule, added
	Cap    int       `json:"cap,omitempty"` // 0: council.meetings.cap
	// MovedFrom is when the meeting was first planned, once moved.
	MovedFrom time.Time `json:"movedFrom,omitempty"`
	// Referrals are the keys of the referrals it takes, in the order they
	// were assigned.
	Referrals []string `json:"referrals,omitempty"`
}

// Rejection is a letter classified as child psychiatry turning a
// referral down.
type Rejection struct {
	LetterID string    `json:"letterId"`
	Received time.Time `json:"received"`
	Rule     string    `json:"rule"`
	Sender   Org       `json:"sender"`
	Patient  string    `json:"patient,omitempty"`
	Referral string    `json:"referral,omitempty"` // key of the child's referral, when the register has one
}

// Key prefixes in the bucket.
const (
	prefixReferral  = "r."
	prefixMeeting   = "m."
	prefixRejection = "x."
)

type cached[T any] struct {
	v   T
	rev uint64
}

// register is the council's bucket with a copy in memory kept current by a
// watch, on every replica: views, figures and the gauge read memory, and
// agree across replicas. Writes go to the bucket with compare-and-set and
// land in the copy at once.
type register struct {
	kv  jetstream.KeyValue
	log *slog.Logger

	mu         sync.RWMutex
	referrals  map[string]cached[Referral]
	meetings   map[string]cached[meetingRecord]
	rejections map[string]cached[Rejection]
	byThread   map[string][]string // thread token → referral keys
	byPatient  map[string][]string // patient token → referral keys
}

func openRegister(ctx context.Context, js jetstream.JetStream, log *slog.Logger) (*register, error) {
	kv, err := js.KeyValue(ctx, broker.BucketCouncil)
	if err != nil {
		return nil, fmt.Errorf("council register: %w", err)
	}
	return &register{kv: kv, log: log, referrals: map[string]cached[Referral]{}, meetings: map[string]cached[meetingRecord]{},
		rejections: map[string]cached[Rejection]{}, byThread: map[string][]string{}, byPatient: map[string][]string{}}, nil
}

// watch loads the register and follows it until ctx ends; it returns once
// the initial values are in.
func (r *register) watch(ctx context.Context) error {
	w, err := r.kv.WatchAll(ctx)
	if err != nil {
		return err
	}
	for e := range w.Updates() {
		if e == nil {
			break
		}
		r.apply(e)
	}
	go func() {
		defer w.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e != nil {
					r.apply(e)
				}
			}
		}
	}()
	return nil
}

func (r *register) apply(e jetstream.KeyValueEntry) {
	key, rev, del := e.Key(), e.Revision(), e.Operation() != jetstream.KeyValuePut
	var err error
	switch {
	case strings.HasPrefix(key, prefixReferral):
		var v Referral
		if !del {
			err = json.Unmarshal(e.Value(), &v)
		}
		if err == nil {
			r.putReferral(strings.TrimPrefix(key, prefixReferral), v, rev, del)
		}
	case strings.HasPrefix(key, prefixMeeting):
		var v meetingRecord
		if !del {
			err = json.Unmarshal(e.Value(), &v)
		}
		if err == nil {
			putCached(&r.mu, r.meetings, strings.TrimPrefix(key, prefixMeeting), v, rev, del)
		}
	case strings.HasPrefix(key, prefixRejection):
		var v Rejection
		if !del {
			err = json.Unmarshal(e.Value(), &v)
		}
		if err == nil {
			putCached(&r.mu, r.rejections, strings.TrimPrefix(key, prefixRejection), v, rev, del)
		}
	}
	if err != nil {
		r.log.Warn("unreadable council register entry ignored", "key", key, "err", err)
	}
}

// putCached stores v under k unless the copy already holds a newer revision.
func putCached[T any](mu *sync.RWMutex, m map[string]cached[T], k string, v T, rev uint64, del bool) {
	mu.Lock()
	defer mu.Unlock()
	if cur, ok := m[k]; ok && cur.rev > rev {
		return
	}
	if del {
		delete(m, k)
		return
	}
	m[k] = cached[T]{v, rev}
}

func (r *register) putReferral(k string, v Referral, rev uint64, del bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old, had := r.referrals[k]
	if had && old.rev > rev {
		return
	}
	if had {
		r.byThread[old.v.Thread] = without(r.byThread[old.v.Thread], k)
		r.byPatient[old.v.Patient] = without(r.byPatient[old.v.Patient], k)
	}
	if del {
		delete(r.referrals, k)
		return
	}
	r.referrals[k] = cached[Referral]{v, rev}
	if v.Thread != "" {
		r.byThread[v.Thread] = append(r.byThread[v.Thread], k)
	}
	if v.Patient != "" {
		r.byPatient[v.Patient] = append(r.byPatient[v.Patient], k)
	}
}

func without(list []string, k string) []string {
	return slices.DeleteFunc(list, func(s string) bool { return s == k })
}

func (r *register) referral(key string) (Referral, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	c, ok := r.referrals[key]
	return c.v, ok
}

// latest returns the newest referral among keys received at or before t.
func (r *register) latestLocked(keys []string, t time.Time) (Referral, bool) {
	var best Referral
	found := false
	for _, k := range keys {
		c, ok := r.referrals[k]
		if !ok || c.v.Received.After(t) {
			continue
		}
		if !found || c.v.Received.After(best.Received) {
			best, found = c.v, true
		}
	}
	return best, found
}

// find returns the referral a letter belongs to: the one it answers, else
// the newest one of its thread, else the newest one about its patient,
// received no later than the letter.
func (r *register) find(inReplyTo, thread, patient string, at time.Time) (Referral, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if inReplyTo != "" {
		if c, ok := r.referrals[inReplyTo]; ok {
			return c.v, true
		}
	}
	if thread != "" {
		if ref, ok := r.latestLocked(r.byThread[thread], at); ok {
			return ref, true
		}
	}
	if patient != "" {
		return r.latestLocked(r.byPatient[patient], at)
	}
	return Referral{}, false
}

func (r *register) allReferrals() []Referral {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Referral, 0, len(r.referrals))
	for _, c := range r.referrals {
		out = append(out, c.v)
	}
	slices.SortFunc(out, func(a, b Referral) int { return cmp.Or(a.Received.Compare(b.Received), strings.Compare(a.Key, b.Key)) })
	return out
}

func (r *register) allRejections() []Rejection {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Rejection, 0, len(r.rejections))
	for _, c := range r.rejections {
		out = append(out, c.v)
	}
	return out
}

func (r *register) meeting(id string) (meetingRecord, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	c, ok := r.meetings[id]
	return c.v, ok
}

func (r *register) storedMeetings() []meetingRecord {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]meetingRecord, 0, len(r.meetings))
	for _, c := range r.meetings {
		out = append(out, c.v)
	}
	return out
}

// seatOf returns the stored meeting that holds the referral key.
func (r *register) seatOf(key string) (meetingRecord, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, c := range r.meetings {
		if slices.Contains(c.v.Referrals, key) {
			return c.v, true
		}
	}
	return meetingRecord{}, false
}

// errGiveUp: a key kept changing under compare-and-set.
var errGiveUp = errors.New("the council register kept changing; try again")

// update changes the value under key with compare-and-set, reading it
// fresh from the bucket: fn gets the current value (zero when absent) and
// reports whether it changed it. A conflict reads and tries again. The
// value written lands in the copy in memory at once.
func update[T any](ctx context.Context, r *register, key string, fn func(cur *T, exists bool) (bool, error)) (T, error) {
	for range 50 {
		var cur T
		var rev uint64
		exists := false
		e, err := r.kv.Get(ctx, key)
		switch {
		case err == nil:
			if err := json.Unmarshal(e.Value(), &cur); err != nil {
				return cur, fmt.Errorf("council register %s unreadable: %w", key, err)
			}
			rev, exists = e.Revision(), true
		case errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted):
		default:
			return cur, err
		}
		changed, err := fn(&cur, exists)
		if err != nil || !changed {
			return cur, err
		}
		b, err := json.Marshal(cur)
		if err != nil {
			return cur, err
		}
		if exists {
			rev, err = r.kv.Update(ctx, key, b, rev)
		} else {
			rev, err = r.kv.Create(ctx, key, b)
		}
		if err == nil {
			r.applyLocal(key, b, rev)
			return cur, nil
		}
		if !conflict(err) {
			return cur, err
		}
		if err := ctx.Err(); err != nil {
			return cur, err
		}
	}
	return *new(T), errGiveUp
}

// applyLocal puts a value just written into the copy in memory.
func (r *register) applyLocal(key string, b []byte, rev uint64) {
	r.apply(localEntry{key: key, value: b, rev: rev})
}

func (r *register) delete(ctx context.Context, key string) error {
	if err := r.kv.Delete(ctx, key); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return err
	}
	r.apply(localEntry{key: key, rev: ^uint64(0), del: true})
	return nil
}

func conflict(err error) bool {
	if errors.Is(err, jetstream.ErrKeyExists) {
		return true
	}
	var api *jetstream.APIError
	return errors.As(err, &api) && api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}

// localEntry is a jetstream.KeyValueEntry for a value this replica wrote.
type localEntry struct {
	key   string
	value []byte
	rev   uint64
	del   bool
}

func (e localEntry) Bucket() string     { return broker.BucketCouncil }
func (e localEntry) Key() string        { return e.key }
func (e localEntry) Value() []byte      { return e.value }
func (e localEntry) Revision() uint64   { return e.rev }
func (e localEntry) Created() time.Time { return time.Time{} }
func (e localEntry) Delta() uint64      { return 0 }
func (e localEntry) Operation() jetstream.KeyValueOp {
	if e.del {
		return jetstream.KeyValueDelete
	}
	return jetstream.KeyValuePut
}

func tokenOf(id string) string { return broker.Token(id) }
