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
	// MovedFrom is the meeting the coordinator moved the seat from (the
	// first, when moved more than once; "" when it waited for one).
	MovedFrom string `json:"movedFrom,omitempty"`
	// WithdrawnAt is when the coordinator withdrew the referral (sent by
	// mistake, the parents' consent withdrawn): it keeps its record but
	// takes no place, waits for nothing and is not watched.
	WithdrawnAt time.Time `json:"withdrawnAt,omitzero"`
	// Known is the meeting time its GPs had been told when it was
	// withdrawn: its meeting may move meanwhile, telling them nothing, so
	// a reinstatement tells them the new date from this one.
	Known           time.Time `json:"known,omitzero"`
	Recommendations []Ref     `json:"recommendations,omitempty"`
	// Documents are the other letters about the child since the referral
	// (case system, EPJ, the GP's answers).
	Documents []Ref `json:"documents,omitempty"`
	// Rejections are letters from child psychiatry turning a referral of
	// this child down (council.rejections).
	Rejections []Ref `json:"rejections,omitempty"`
	// Flagged is when the referral watch found it without a recommendation
	// after council.watch_days.
	Flagged time.Time `json:"flagged,omitempty"`
	// Joined are later referrals of the same child that arrived while this
	// one was open and its meeting still ahead: they take no seat of their
	// own, and the recommendation answers them with this one, so the
	// child has one seat and one clock (from this, the first referral).
	Joined []Joined `json:"joined,omitempty"`
	// Retold are the new dates the seat's GPs are told of, oldest first:
	// its meeting moved, or the coordinator moved the seat. The newest
	// names the letters that tell them (NewDateID).
	Retold []Retold `json:"retold,omitempty"`
}

// Retold is a new meeting date for a seat: when it was decided (it names
// the letters that tell the GPs) and the time of the meeting the GPs knew
// of before (zero when they knew of none: the seat waited for a meeting).
type Retold struct {
	At     time.Time `json:"at"`
	Before time.Time `json:"before,omitzero"`
}

// Joined is a later referral joined to an open referral of the same child:
// its own letter, sender and date, for the meeting page and the receipt.
type Joined struct {
	Key      string    `json:"key"` // token of its letter id
	LetterID string    `json:"letterId"`
	Seq      uint64    `json:"seq,omitempty"`
	Thread   string    `json:"thread,omitempty"`
	Received time.Time `json:"received"`
	Source   string    `json:"source"`
	Format   string    `json:"format,omitempty"`
	GP       Org       `json:"gp"`
	Council  Org       `json:"council,omitempty"`
}

// joinedOf is referral j as a later referral joined to another.
func joinedOf(j Referral) Joined {
	return Joined{Key: j.Key, LetterID: j.LetterID, Seq: j.Seq, Thread: j.Thread, Received: j.Received, Source: j.Source, Format: j.Format, GP: j.GP, Council: j.Council}
}

// join adds the later referral j to r, with its statement of the consent
// when it is newer than the one shown. It reports whether r changed.
func (r *Referral) join(j Referral) bool {
	if j.Key == r.Key || slices.ContainsFunc(r.Joined, func(x Joined) bool { return x.Key == j.Key }) {
		return false
	}
	r.Joined = append(r.Joined, joinedOf(j))
	if j.Consent != nil && !j.Received.Before(r.consentAt()) {
		r.Consent, r.ConsentFrom = j.Consent, j.LetterID
	}
	return true
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
	for _, j := range r.Joined {
		if j.LetterID == r.ConsentFrom {
			return j.Received
		}
	}
	return r.Received
}

// merge adds to r what another copy of the same referral knows and r does
// not: the letters that followed it, the watch's flag, and a newer
// statement of the consent. It reports whether r changed.
func (r *Referral) merge(o Referral) bool {
	changed := false
	for _, l := range []struct{ dst, src *[]Ref }{{&r.Recommendations, &o.Recommendations}, {&r.Documents, &o.Documents}, {&r.Rejections, &o.Rejections}} {
		for _, x := range *l.src {
			if !slices.ContainsFunc(*l.dst, func(y Ref) bool { return y.LetterID == x.LetterID }) {
				*l.dst = append(*l.dst, x)
				changed = true
			}
		}
	}
	for _, j := range o.Joined {
		if !slices.ContainsFunc(r.Joined, func(x Joined) bool { return x.Key == j.Key }) {
			r.Joined = append(r.Joined, j)
			changed = true
		}
	}
	for _, x := range o.Retold {
		if !slices.ContainsFunc(r.Retold, func(y Retold) bool { return y.At.Equal(x.At) }) {
			r.Retold = append(r.Retold, x)
			changed = true
		}
	}
	slices.SortStableFunc(r.Retold, func(a, b Retold) int { return a.At.Compare(b.At) })
	if r.Flagged.IsZero() && !o.Flagged.IsZero() {
		r.Flagged, changed = o.Flagged, true
	}
	if o.ConsentFrom != "" && o.ConsentFrom != r.ConsentFrom && o.consentAt().After(r.consentAt()) {
		r.Consent, r.ConsentFrom, changed = o.Consent, o.ConsentFrom, true
	}
	return changed
}

// Answered reports whether the council's recommendation arrived.
func (r *Referral) Answered() bool { return len(r.Recommendations) > 0 }

// awaits reports whether the referral still waits for a recommendation:
// not answered, and not withdrawn.
func (r *Referral) awaits() bool { return !r.Answered() && r.WithdrawnAt.IsZero() }

// meetingRecord is a meeting as stored, with the referrals it takes: a
// rule meeting once it was moved or took a referral, or a meeting the
// coordinator added. A referral's facts live in its meeting's record, so
// seating a fetch's worth of referrals is one write per meeting, and the
// meeting's record is the unit of compare-and-set that keeps it within
// its cap. Referrals no meeting has room for wait in chunks of the same
// shape (key w.<month>.<n>, Origin waiting, no time).
type meetingRecord struct {
	ID     string    `json:"id,omitempty"`
	At     time.Time `json:"at,omitempty"`
	Origin string    `json:"origin"`        // rule, added, waiting
	Cap    int       `json:"cap,omitempty"` // 0: council.meetings.cap
	// MovedFrom is when the meeting was first planned, once moved.
	MovedFrom time.Time `json:"movedFrom,omitempty"`
	// Cancelled is when the coordinator cancelled it: it seats no one.
	Cancelled time.Time `json:"cancelled,omitzero"`
	// Referrals it takes, in the order they were assigned.
	Referrals []Referral `json:"referrals,omitempty"`
}

func (m *meetingRecord) index(key string) int {
	for i := range m.Referrals {
		if m.Referrals[i].Key == key {
			return i
		}
	}
	return -1
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
	prefixMeeting   = "m." // a meeting with its referrals
	prefixWaiting   = "w." // referrals waiting for a meeting with room
	prefixRejection = "x."
)

// waitingChunk bounds a waiting record: each write rewrites it, so a
// flood of referrals must not make it large (about 600 bytes a referral).
const waitingChunk = 50

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
	records    map[string]cached[meetingRecord] // by key: m.<id>, w.<month>.<n>
	rejections map[string]cached[Rejection]
	referrals  map[string]placed          // by referral key, from the records
	byThread   map[string]map[string]bool // thread token → referral keys (a joined referral's thread too)
	byPatient  map[string]map[string]bool // patient token → referral keys
	joined     map[string]string          // a joined referral's key → the key of the referral it joined
}

// placed is a referral and the record that holds it.
type placed struct {
	r  Referral
	in string
}

func openRegister(ctx context.Context, js jetstream.JetStream, log *slog.Logger) (*register, error) {
	kv, err := js.KeyValue(ctx, broker.BucketCouncil)
	if err != nil {
		return nil, fmt.Errorf("council register: %w", err)
	}
	return &register{kv: kv, log: log, records: map[string]cached[meetingRecord]{}, referrals: map[string]placed{},
		rejections: map[string]cached[Rejection]{}, byThread: map[string]map[string]bool{}, byPatient: map[string]map[string]bool{}, joined: map[string]string{}}, nil
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
	if r.has(key, rev) {
		return // this replica's own write, come back through the watch
	}
	var err error
	switch {
	case strings.HasPrefix(key, prefixMeeting), strings.HasPrefix(key, prefixWaiting):
		var v meetingRecord
		if !del {
			err = json.Unmarshal(e.Value(), &v)
		}
		if err == nil {
			r.putRecord(key, v, rev, del)
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

// has reports whether the copy holds key's revision rev or a newer one.
func (r *register) has(key string, rev uint64) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if c, ok := r.records[key]; ok {
		return c.rev >= rev
	}
	return false
}

// putRecord stores a record and the referrals it holds, unless the copy
// holds a newer revision. A referral is where its newest record puts it;
// should a split lease have left it both seated and waiting, the seat wins.
func (r *register) putRecord(k string, v meetingRecord, rev uint64, del bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old, had := r.records[k]
	if had && old.rev > rev {
		return
	}
	if had {
		for _, x := range old.v.Referrals {
			if p, ok := r.referrals[x.Key]; ok && p.in == k {
				r.unplaceLocked(x.Key)
			}
		}
	}
	if del {
		delete(r.records, k)
		return
	}
	r.records[k] = cached[meetingRecord]{v, rev}
	for _, x := range v.Referrals {
		if p, ok := r.referrals[x.Key]; ok && p.in != k {
			if strings.HasPrefix(k, prefixWaiting) && strings.HasPrefix(p.in, prefixMeeting) {
				continue
			}
			if strings.HasPrefix(p.in, prefixMeeting) && p.r.Assigned.After(x.Assigned) {
				// A seat the coordinator moved: its old record still lists
				// it until the move's second write (MoveReferral).
				continue
			}
			r.unplaceLocked(x.Key)
		}
		r.referrals[x.Key] = placed{x, k}
		addTo(r.byThread, x.Thread, x.Key)
		addTo(r.byPatient, x.Patient, x.Key)
		for _, j := range x.Joined {
			r.joined[j.Key] = x.Key
			addTo(r.byThread, j.Thread, x.Key)
		}
	}
}

func (r *register) unplaceLocked(key string) {
	p := r.referrals[key]
	threads := []string{p.r.Thread}
	for _, j := range p.r.Joined {
		threads = append(threads, j.Thread)
		if r.joined[j.Key] == key {
			delete(r.joined, j.Key)
		}
	}
	for _, t := range threads {
		delete(r.byThread[t], key)
		if len(r.byThread[t]) == 0 {
			delete(r.byThread, t)
		}
	}
	delete(r.byPatient[p.r.Patient], key)
	if len(r.byPatient[p.r.Patient]) == 0 {
		delete(r.byPatient, p.r.Patient)
	}
	delete(r.referrals, key)
}

func addTo(index map[string]map[string]bool, token, key string) {
	if token == "" {
		return
	}
	if index[token] == nil {
		index[token] = map[string]bool{}
	}
	index[token][key] = true
}

func (r *register) referral(key string) (Referral, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	p, ok := r.referrals[key]
	return p.r, ok
}

// joinedTo returns the referral a later referral (its key) joined.
func (r *register) joinedTo(key string) (Referral, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	p, ok := r.referrals[r.joined[key]]
	return p.r, ok
}

// letterID is the letter id of a referral, joined or not.
func (r *register) letterID(key string) (string, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if p, ok := r.referrals[key]; ok {
		return p.r.LetterID, true
	}
	for _, j := range r.referrals[r.joined[key]].r.Joined {
		if j.Key == key {
			return j.LetterID, true
		}
	}
	return "", false
}

// ofChild returns the referrals about a child (patient token), or, with
// no patient token, of a thread.
func (r *register) ofChild(patient, thread string) []Referral {
	r.mu.RLock()
	defer r.mu.RUnlock()
	keys := r.byPatient[patient]
	if patient == "" {
		keys = r.byThread[thread]
	}
	if patient == "" && thread == "" {
		return nil
	}
	out := make([]Referral, 0, len(keys))
	for k := range keys {
		if p, ok := r.referrals[k]; ok {
			out = append(out, p.r)
		}
	}
	slices.SortFunc(out, func(a, b Referral) int { return cmp.Or(a.Received.Compare(b.Received), strings.Compare(a.Key, b.Key)) })
	return out
}

// holder is the key of the record that holds a referral.
func (r *register) holder(key string) (string, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	p, ok := r.referrals[key]
	return p.in, ok
}

// latest returns the newest referral among keys received at or before t.
func (r *register) latestLocked(keys map[string]bool, t time.Time) (Referral, bool) {
	var best Referral
	found := false
	for k := range keys {
		p, ok := r.referrals[k]
		if !ok || p.r.Received.After(t) {
			continue
		}
		if !found || p.r.Received.After(best.Received) || p.r.Received.Equal(best.Received) && k > best.Key {
			best, found = p.r, true
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
		if p, ok := r.referrals[inReplyTo]; ok {
			return p.r, true
		}
		if p, ok := r.referrals[r.joined[inReplyTo]]; ok {
			return p.r, true // a later referral joined to this one
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
	for _, p := range r.referrals {
		out = append(out, p.r)
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
	c, ok := r.records[prefixMeeting+id]
	return c.v, ok
}

// countHeld counts the referrals of record k (refs) that the register
// places there (or nowhere, or only among the waiting: a seat moved away
// is held by the meeting it went to) and that keep selects (nil: all).
func (r *register) countHeld(k string, refs []Referral, keep func(*Referral) bool) int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	n := 0
	for i := range refs {
		if r.holdsLocked(k, refs[i].Key) && (keep == nil || keep(&refs[i])) {
			n++
		}
	}
	return n
}

// holds reports whether record k holds the referral key: the register
// places it there, nowhere, or among the waiting only.
func (r *register) holds(k, key string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.holdsLocked(k, key)
}

func (r *register) holdsLocked(k, key string) bool {
	p, ok := r.referrals[key]
	return !ok || !strings.HasPrefix(p.in, prefixMeeting) || p.in == k
}

// recordsWith are the keys of the records (meetings and waiting chunks)
// that list the referral key.
func (r *register) recordsWith(key string) []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []string
	for k, c := range r.records {
		if c.v.index(key) >= 0 {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// storedMeetings are the stored meetings (not the waiting chunks).
func (r *register) storedMeetings() []meetingRecord {
	return r.storedRecords(prefixMeeting)
}

func (r *register) storedRecords(prefix string) []meetingRecord {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []meetingRecord
	for k, c := range r.records {
		if strings.HasPrefix(k, prefix) {
			out = append(out, c.v)
		}
	}
	return out
}

// waitingKeys are the keys of the waiting chunks.
func (r *register) waitingKeys() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []string
	for k := range r.records {
		if strings.HasPrefix(k, prefixWaiting) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// chunkFor is the waiting chunk a referral of month (2026-03) goes to,
// with planned more being added in this round.
func (r *register) chunkFor(month string, planned map[string]int) string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for n := 0; ; n++ {
		k := fmt.Sprintf("%s%s.%d", prefixWaiting, month, n)
		if len(r.records[k].v.Referrals)+planned[k] < waitingChunk {
			return k
		}
	}
}

// updateReferral changes a referral's facts in the record that holds it,
// with compare-and-set. It reports false when the register has no such
// referral.
func (r *register) updateReferral(ctx context.Context, key string, fn func(*Referral) bool) (bool, error) {
	for range 20 {
		in, ok := r.holder(key)
		if !ok {
			return false, nil
		}
		moved := false
		_, err := update(ctx, r, in, func(cur *meetingRecord, exists bool) (bool, error) {
			i := cur.index(key)
			if !exists || i < 0 {
				moved = true // taken to a meeting meanwhile; the copy catches up
				return false, nil
			}
			return fn(&cur.Referrals[i]), nil
		})
		if err != nil || !moved {
			return true, err
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false, errGiveUp
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
		if !broker.IsConflict(err) {
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
