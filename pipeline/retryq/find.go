package retryq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/samhub/samhub/pipeline/broker"
)

// scanIdle is how long the server keeps a consumer this package made and
// stopped reading (ordered consumers default to five minutes; a console
// that pages keeps many of them otherwise).
const scanIdle = 30 * time.Second

// Filter selects entries; empty fields match all.
type Filter struct {
	Destination string `json:"destination,omitempty"`
	Code        string `json:"code,omitempty"`   // the last error's reason code
	Thread      string `json:"thread,omitempty"` // thread token
	// Patient is a PatientToken. Entries parked by earlier builds carry no
	// token; WithUnknownPatient includes them for the caller to check.
	Patient            string `json:"patient,omitempty"`
	WithUnknownPatient bool   `json:"-"`
	// ParkedAfter (inclusive) and ParkedBefore (exclusive) bound when the
	// entry was parked.
	ParkedAfter  time.Time `json:"parkedAfter,omitzero"`
	ParkedBefore time.Time `json:"parkedBefore,omitzero"`
	// UpTo leaves out entries parked after the one with this sequence, so
	// that a count and the action taken on it concern the same entries
	// while new letters park (Counts.UpTo).
	UpTo uint64 `json:"upTo,omitempty"`
	// Limit caps List (0: no cap).
	Limit int `json:"-"`
}

// String names the filter for the audit log and messages (no CPR: the
// patient is its token).
func (f Filter) String() string {
	var parts []string
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	add("destination", f.Destination)
	add("code", f.Code)
	add("thread", f.Thread)
	add("patient", f.Patient)
	if !f.ParkedAfter.IsZero() {
		add("parked-after", f.ParkedAfter.UTC().Format(time.RFC3339))
	}
	if !f.ParkedBefore.IsZero() {
		add("parked-before", f.ParkedBefore.UTC().Format(time.RFC3339))
	}
	if f.UpTo != 0 {
		add("up-to", fmt.Sprint(f.UpTo))
	}
	if len(parts) == 0 {
		return "all"
	}
	return strings.Join(parts, " ")
}

func (f Filter) match(e Entry) bool {
	switch {
	case f.Destination != "" && e.Destination != f.Destination:
		return false
	case f.Code != "" && e.LastError.Code != f.Code:
		return false
	case f.Thread != "" && e.Thread != f.Thread:
		return false
	case f.Patient != "" && e.Patient != f.Patient && !(f.WithUnknownPatient && e.Patient == ""):
		return false
	}
	return true
}

// Window is the part of the matches a caller wants: Size entries after
// skipping Offset matches, or, when After is set (a cursor: the last
// sequence of the previous page), the Size matches after that sequence.
type Window struct {
	Offset int
	After  uint64
	Size   int
}

// Page is one window of the matches and how many match in all.
type Page struct {
	Entries []Entry `json:"entries"`
	Total   int     `json:"total"`
	// Next is the cursor for the following page (0: this is the last).
	Next uint64 `json:"next,omitempty"`
}

// Counts is how many entries match, per destination and reason code.
type Counts struct {
	Total         int            `json:"total"`
	ByDestination map[string]int `json:"byDestination"`
	ByCode        map[string]int `json:"byCode"`
	// UpTo is the last sequence counted: give it as Filter.UpTo to act on
	// the entries counted and not on letters parked since.
	UpTo uint64 `json:"upTo"`
}

// plan is how the server answers a filter: the subjects that can hold
// matches, whether each candidate must still be matched here (thread and
// patient are only in the header, and so is the code of entries parked by
// earlier builds), and the stream sequences the time bounds fall on.
type plan struct {
	f        Filter
	subjects []string
	check    bool
	// concrete lists the stored subjects the plan covers with their
	// destination and code (code known only under the current layout).
	concrete []subjectCount
	lastSeq  uint64
	// from and to bound the candidates' sequences: [from, to), to 0 when
	// open; pendingFrom and pendingTo are the candidates at or after each.
	from, to               uint64
	pendingFrom, pendingTo uint64
	empty                  bool
}

type subjectCount struct {
	subject, dest, code string
	legacy              bool
	n                   uint64
}

// plan reads the stream's subjects (a handful: destinations × codes) and,
// when the filter has bounds, asks the server where they fall.
// With freeze, a filter without UpTo gets the stream's last sequence.
func (q *Queue) plan(ctx context.Context, f Filter, freeze bool) (*plan, error) {
	st, err := q.js.Stream(ctx, broker.StreamParked)
	if err != nil {
		return nil, err
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(broker.SubjParked+".>"))
	if err != nil {
		return nil, err
	}
	if freeze && (f.UpTo == 0 || f.UpTo > info.State.LastSeq) {
		f.UpTo = info.State.LastSeq
	}
	p := &plan{f: f, lastSeq: info.State.LastSeq}
	legacy := false
	for subj, n := range info.State.Subjects {
		parts := strings.Split(subj, ".")
		if len(parts) < 3 || (f.Destination != "" && parts[2] != f.Destination) {
			continue
		}
		sc := subjectCount{subject: subj, dest: parts[2], n: n}
		if len(parts) == 5 && parts[3] == "code" {
			code, ok := broker.ParkedCode(parts[4])
			if !ok || (f.Code != "" && code != f.Code) {
				continue
			}
			sc.code = code
		} else {
			sc.legacy, legacy = true, true
		}
		p.concrete = append(p.concrete, sc)
	}
	if f.Code == "" {
		p.subjects = broker.ParkedFilter(f.Destination)
	} else {
		p.subjects = []string{broker.ParkedCodeFilter(f.Destination, f.Code)}
		if legacy {
			p.subjects = append(p.subjects, broker.ParkedLegacyFilter(f.Destination)...)
		}
	}
	p.check = f.Thread != "" || f.Patient != "" || (f.Code != "" && legacy)
	if len(p.concrete) == 0 || (!f.ParkedAfter.IsZero() && !f.ParkedBefore.IsZero() && !f.ParkedAfter.Before(f.ParkedBefore)) {
		p.empty = true
		return p, nil
	}
	// The lower bound.
	p.from = 1
	if f.ParkedAfter.IsZero() {
		for _, sc := range p.concrete {
			p.pendingFrom += sc.n
		}
	} else if p.from, p.pendingFrom, err = q.probe(ctx, p.subjects, 0, f.ParkedAfter); err != nil {
		return nil, err
	}
	// The upper bound: the first entry parked at or after ParkedBefore,
	// or after UpTo, whichever comes first.
	if !f.ParkedBefore.IsZero() {
		if p.to, p.pendingTo, err = q.probe(ctx, p.subjects, 0, f.ParkedBefore); err != nil {
			return nil, err
		}
	}
	if f.UpTo != 0 && (p.to == 0 || f.UpTo+1 < p.to) {
		p.to = f.UpTo + 1
		if p.pendingTo, err = q.pendingAt(ctx, p.subjects, p.lastSeq, p.to); err != nil {
			return nil, err
		}
	}
	if p.to != 0 && p.to <= p.from {
		p.empty = true
	}
	return p, nil
}

// total is the number of candidates within the bounds: the matches, when
// no candidate needs matching here.
func (p *plan) total() int {
	if p.empty || p.pendingTo > p.pendingFrom {
		return 0
	}
	return int(p.pendingFrom - p.pendingTo)
}

// probe makes a consumer over subjects starting at seq (or at the first
// entry stored at or after t) and returns where it starts and how many
// entries it has pending: the server counts from its subject index,
// without reading entries.
func (q *Queue) probe(ctx context.Context, subjects []string, seq uint64, t time.Time) (start, pending uint64, err error) {
	cfg := jetstream.ConsumerConfig{FilterSubjects: subjects, AckPolicy: jetstream.AckNonePolicy, HeadersOnly: true,
		MemoryStorage: true, Replicas: 1, InactiveThreshold: scanIdle, DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: seq}
	if !t.IsZero() {
		cfg.DeliverPolicy, cfg.OptStartSeq, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, 0, &t
	}
	c, err := q.js.CreateConsumer(ctx, broker.StreamParked, cfg)
	if err != nil {
		return 0, 0, fmt.Errorf("count parked letters: %w", err)
	}
	info := c.CachedInfo()
	// Deleting it is only tidiness (it expires on its own after scanIdle):
	// the caller need not wait for it.
	go func() {
		dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = q.js.DeleteConsumer(dctx, broker.StreamParked, info.Name)
	}()
	start = seq
	if !t.IsZero() {
		start = info.Delivered.Stream + 1
	}
	return start, info.NumPending, nil
}

// pendingAt is how many entries under subjects are stored at or after seq.
func (q *Queue) pendingAt(ctx context.Context, subjects []string, lastSeq, seq uint64) (uint64, error) {
	if seq > lastSeq {
		return 0, nil
	}
	_, n, err := q.probe(ctx, subjects, seq, time.Time{})
	return n, err
}

// seekOffset finds the sequence of the match after skipping offset matches,
// by halving the sequence range and letting the server count what lies
// after each midpoint: about log2(queue length) counts, however deep the
// page.
func (q *Queue) seekOffset(ctx context.Context, p *plan, offset int) (uint64, error) {
	target := uint64(p.total() - offset) // matches from the wanted one to the end
	after := func(seq uint64) (uint64, error) {
		n, err := q.pendingAt(ctx, p.subjects, p.lastSeq, seq)
		if err != nil || n < p.pendingTo {
			return 0, err
		}
		return n - p.pendingTo, nil
	}
	lo, hi := p.from, p.lastSeq+1 // after(lo) ≥ target > after(hi)
	if p.to != 0 {
		hi = p.to
	}
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		n, err := after(mid)
		if err != nil {
			return 0, err
		}
		if n >= target {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo, nil
}

// Find returns one window of the entries matching f, in the order they were
// parked, and how many match. Filters by destination, reason and age are
// answered by the server: the page costs a few counts and reading the page
// itself, wherever it lies. A thread or patient filter is matched here and
// reads every candidate's header.
func (q *Queue) Find(ctx context.Context, f Filter, w Window) (Page, error) {
	if w.Size <= 0 {
		w.Size = 50
	}
	p, err := q.plan(ctx, f, false)
	if err != nil {
		return Page{}, err
	}
	pg := Page{Entries: []Entry{}}
	if p.empty {
		return pg, nil
	}
	if p.check {
		return q.findChecked(ctx, p, w)
	}
	pg.Total = p.total()
	start := p.from
	switch {
	case w.After != 0:
		start = max(start, w.After+1)
	case w.Offset >= pg.Total:
		return pg, nil
	case w.Offset > 0:
		if start, err = q.seekOffset(ctx, p, w.Offset); err != nil {
			return Page{}, err
		}
	}
	err = q.scan(ctx, p, start, func(e Entry) bool {
		if len(pg.Entries) == w.Size {
			pg.Next = pg.Entries[len(pg.Entries)-1].Seq
			return false
		}
		pg.Entries = append(pg.Entries, e)
		return true
	})
	return pg, err
}

// findChecked reads every candidate to count the matches, keeping only the
// window.
func (q *Queue) findChecked(ctx context.Context, p *plan, w Window) (Page, error) {
	pg := Page{Entries: []Entry{}}
	err := q.scan(ctx, p, p.from, func(e Entry) bool {
		if !p.f.match(e) {
			return true
		}
		pg.Total++
		inWindow := (w.After != 0 && e.Seq > w.After) || (w.After == 0 && pg.Total > w.Offset)
		switch {
		case !inWindow:
		case len(pg.Entries) < w.Size:
			pg.Entries = append(pg.Entries, e)
		case pg.Next == 0:
			pg.Next = pg.Entries[len(pg.Entries)-1].Seq
		}
		return true
	})
	return pg, err
}

// Count says how many entries match f, per destination and reason code,
// and up to which sequence it counted.
func (q *Queue) Count(ctx context.Context, f Filter) (Counts, error) {
	c := Counts{ByDestination: map[string]int{}, ByCode: map[string]int{}}
	// Count what is stored now, and not what parks while counting.
	p, err := q.plan(ctx, f, true)
	if err != nil {
		return c, err
	}
	c.UpTo = p.f.UpTo
	if p.empty {
		return c, nil
	}
	add := func(dest, code string, n int) {
		c.Total += n
		c.ByDestination[dest] += n
		c.ByCode[code] += n
	}
	legacy := false
	for _, sc := range p.concrete {
		legacy = legacy || sc.legacy
	}
	if p.check || legacy {
		err := q.scan(ctx, p, p.from, func(e Entry) bool {
			if p.f.match(e) {
				add(e.Destination, e.LastError.Code, 1)
			}
			return true
		})
		return c, err
	}
	// Per stored subject: its count, or, within bounds, what the server
	// counts between them.
	for _, sc := range p.concrete {
		n := sc.n
		if p.from > 1 || p.to <= p.lastSeq {
			subj := []string{sc.subject}
			from, err := q.pendingAt(ctx, subj, p.lastSeq, p.from)
			if err != nil {
				return c, err
			}
			to, err := q.pendingAt(ctx, subj, p.lastSeq, p.to)
			if err != nil {
				return c, err
			}
			n = from - min(to, from)
		}
		if n > 0 {
			add(sc.dest, sc.code, int(n))
		}
	}
	return c, nil
}

// List returns the entries matching f in the order they were parked, at
// most f.Limit (0: all), reading headers only and keeping only the
// matches, so a search of a long queue holds no more than its answer.
func (q *Queue) List(ctx context.Context, f Filter) ([]Entry, error) {
	var out []Entry
	err := q.Each(ctx, f, 0, func(e Entry) bool {
		out = append(out, e)
		return f.Limit <= 0 || len(out) < f.Limit
	})
	return out, err
}

// Each calls fn with every entry matching f parked after sequence after,
// in order, until fn returns false.
func (q *Queue) Each(ctx context.Context, f Filter, after uint64, fn func(Entry) bool) error {
	p, err := q.plan(ctx, f, false)
	if err != nil || p.empty {
		return err
	}
	return q.scan(ctx, p, max(p.from, after+1), func(e Entry) bool {
		if p.check && !p.f.match(e) {
			return true
		}
		return fn(e)
	})
}

// scan reads the headers of the plan's candidates from sequence start to
// the plan's end.
func (q *Queue) scan(ctx context.Context, p *plan, start uint64, fn func(Entry) bool) error {
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: p.subjects, HeadersOnly: true, InactiveThreshold: scanIdle,
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: max(start, 1)}
	// A thread or patient search skips the header's JSON when the token is
	// not in it at all: most candidates, and most of the time of a search.
	var needles []string
	if p.check {
		for _, tok := range []string{p.f.Thread, p.f.Patient} {
			if tok != "" && plainToken(tok) && !(tok == p.f.Patient && p.f.WithUnknownPatient) {
				needles = append(needles, `"`+tok+`"`)
			}
		}
	}
	return broker.Scan(ctx, q.js, broker.StreamParked, cfg, 0, func(m jetstream.Msg) bool {
		md, err := m.Metadata()
		if err != nil {
			return true
		}
		if p.to != 0 && md.Sequence.Stream >= p.to {
			return false
		}
		raw := m.Headers().Get(hdrEntry)
		for _, n := range needles {
			if !strings.Contains(raw, n) {
				return true
			}
		}
		e, err := entryOf(m.Headers())
		if err != nil {
			return true
		}
		e.Seq, e.ParkedAt = md.Sequence.Stream, md.Timestamp.UTC()
		return fn(e)
	})
}

// plainToken reports whether s appears in JSON as it is.
func plainToken(s string) bool {
	for _, c := range s {
		if !(c == '_' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

func entryOf(h nats.Header) (Entry, error) {
	var e Entry
	v := h.Get(hdrEntry)
	if v == "" {
		return e, errors.New("no parked header")
	}
	return e, json.Unmarshal([]byte(v), &e)
}
