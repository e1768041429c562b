// Package retryq is the retry queue: letters a destination gave up on, kept
// as full copies on their own stream (so they outlive the letter stream's
// retention) with why they were parked. The coordinator lists, replays and
// discards them through the hub's API.
//
// An entry is stored under samhub.parked.<destination>.code.<reason code>
// with its description in a header, so the server itself narrows a search
// by destination and reason, counts what matches without reading it, and
// starts a page at a stream sequence or time: a page of a queue of 100,000
// is read as a page (find.go).
package retryq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/samhub/samhub/internal/logging"
	"github.com/samhub/samhub/pipeline/broker"
)

// Failure is a classified error, free of personal data.
type Failure struct {
	At     time.Time `json:"at"`
	Class  string    `json:"class"` // retryable, permanent
	Code   string    `json:"code"`
	Reason string    `json:"reason"`
}

// Entry describes one parked letter (the letter itself is the message body).
type Entry struct {
	Seq         uint64  `json:"seq"`
	LetterID    string  `json:"letterId"`
	Destination string  `json:"destination"`
	Kind        string  `json:"kind"`
	Source      string  `json:"source"`
	Thread      string  `json:"thread,omitempty"`  // thread token, not the thread id
	Patient     string  `json:"patient,omitempty"` // PatientToken of the letter's patient, not the CPR
	Attempts    int     `json:"attempts"`
	FirstError  Failure `json:"firstError"`
	LastError   Failure `json:"lastError"`
	// ParkedAt is when the queue stored the entry: lists and Get give the
	// stream's own timestamp, the one age filters use, so what a page
	// shows and what a filter selects agree.
	ParkedAt  time.Time `json:"parkedAt"`
	LetterSeq uint64    `json:"letterSeq"` // sequence on the letter stream that was parked
	// OrigSeq is the sequence the letter was first stored at (a replay is
	// stored anew): held letters of a thread are released in this order.
	OrigSeq uint64 `json:"origSeq,omitempty"`
	// Cause tells a second park of the same stored letter at the same
	// destination from a repeat of the first: the sequence of what caused
	// it (the held entry a released letter comes from; the receiver's
	// refusal on the letter stream).
	Cause uint64 `json:"cause,omitempty"`
	// Blobs names the blob-store objects the parked letter refers to
	// (pipeline/blobs), so the blob collector keeps them without reading
	// parked letters.
	Blobs []string `json:"blobs,omitempty"`
	// DeliveredTo are the recipients at this destination that a partial
	// delivery reached before the letter parked (Digital Post to one of two
	// custody holders), as indexes into the letter's recipients of the
	// destination's sector: no personal data. A discard reports only the
	// others failed.
	DeliveredTo []int `json:"deliveredTo,omitempty"`
}

const hdrEntry = "Samhub-Parked"

// Queue reads and writes the retry queue stream.
type Queue struct {
	js jetstream.JetStream
}

func New(js jetstream.JetStream) *Queue { return &Queue{js: js} }

// scrub is the last guard on reasons: a CPR-shaped number never reaches the
// queue's metadata even if an adapter's reason carried one.
func scrub(s string) string { return logging.Redact(s) }

// Park stores a letter for dest. The message id makes a repeated park of the
// same letter-stream message (after a crash between park and ack) a no-op.
func (q *Queue) Park(ctx context.Context, e Entry, letterJSON []byte) error {
	e.FirstError.Reason, e.LastError.Reason = scrub(e.FirstError.Reason), scrub(e.LastError.Reason)
	if e.ParkedAt.IsZero() {
		e.ParkedAt = time.Now().UTC()
	}
	meta, err := json.Marshal(e)
	if err != nil {
		return err
	}
	msg := nats.NewMsg(broker.ParkedSubject(e.Destination, e.LastError.Code))
	msg.Header.Set(hdrEntry, string(meta))
	id := fmt.Sprintf("park:%s:%d", e.Destination, e.LetterSeq)
	if e.Cause != 0 {
		id += fmt.Sprintf(":%d", e.Cause)
	}
	msg.Header.Set(jetstream.MsgIDHeader, id)
	msg.Data = letterJSON
	if _, err := q.js.PublishMsg(ctx, msg, jetstream.WithExpectStream(broker.StreamParked)); err != nil {
		return fmt.Errorf("park letter: %w", err)
	}
	return nil
}

// PatientToken is the one-way token a parked entry carries for its patient
// (CPR or replacement CPR, without a dash), the same hash the consent
// bucket and the audit log use, so the queue can be searched by patient
// without reading letters and without holding CPR numbers in its metadata.
func PatientToken(id string) string {
	return broker.Token("patient:" + strings.ToUpper(strings.ReplaceAll(id, "-", "")))
}

// ErrNotParked means no parked entry has that sequence.
var ErrNotParked = errors.New("no parked letter with that id")

// Get returns one entry and the letter it holds.
func (q *Queue) Get(ctx context.Context, seq uint64) (Entry, []byte, error) {
	st, err := q.js.Stream(ctx, broker.StreamParked)
	if err != nil {
		return Entry{}, nil, err
	}
	raw, err := st.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return Entry{}, nil, ErrNotParked
	}
	if err != nil {
		return Entry{}, nil, err
	}
	e, err := entryOf(raw.Header)
	if err != nil {
		return Entry{}, nil, ErrNotParked
	}
	e.Seq, e.ParkedAt = raw.Sequence, raw.Time.UTC()
	return e, raw.Data, nil
}

// Remove deletes a parked entry (after a replay was stored, or a discard
// was audited).
func (q *Queue) Remove(ctx context.Context, seq uint64) error {
	st, err := q.js.Stream(ctx, broker.StreamParked)
	if err != nil {
		return err
	}
	err = st.DeleteMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return ErrNotParked
	}
	if err != nil {
		// The server refuses to delete an entry that is already gone
		// (a thread's release took it while a replay was storing it) with
		// a generic "deletion unsuccessful", not as a missing message.
		if _, gerr := st.GetMsg(ctx, seq); errors.Is(gerr, jetstream.ErrMsgNotFound) {
			return ErrNotParked
		}
	}
	return err
}

// Stat is the queue's size for one destination.
type Stat struct {
	Destination string    `json:"destination"`
	Count       int       `json:"count"`
	Oldest      time.Time `json:"oldest,omitempty"`
}

// Stats counts parked letters per destination, reading only the first
// message of each destination for its age.
func (q *Queue) Stats(ctx context.Context) ([]Stat, error) {
	st, err := q.js.Stream(ctx, broker.StreamParked)
	if err != nil {
		return nil, err
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(broker.SubjParked+".>"))
	if err != nil {
		return nil, err
	}
	per := map[string]*Stat{}
	for subj, n := range info.State.Subjects {
		parts := strings.Split(subj, ".") // samhub.parked.<dest>, or .<letter token> after it as stored by earlier builds
		if len(parts) < 3 {
			continue
		}
		d := parts[2]
		if per[d] == nil {
			per[d] = &Stat{Destination: d}
		}
		per[d].Count += int(n)
	}
	out := make([]Stat, 0, len(per))
	for d, s := range per {
		if m, err := q.firstOf(ctx, d); err == nil {
			s.Oldest = m
		}
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Destination < out[j].Destination })
	return out, nil
}

func (q *Queue) firstOf(ctx context.Context, dest string) (time.Time, error) {
	var first time.Time
	err := broker.Scan(ctx, q.js, broker.StreamParked, jetstream.OrderedConsumerConfig{FilterSubjects: broker.ParkedFilter(dest), HeadersOnly: true, InactiveThreshold: scanIdle}, 1, func(m jetstream.Msg) bool {
		if md, err := m.Metadata(); err == nil {
			first = md.Timestamp.UTC()
		}
		return false
	})
	return first, err
}

// ParseSeq reads a parked id as given on the command line or in a URL.
func ParseSeq(s string) (uint64, error) {
	n, err := strconv.ParseUint(strings.TrimPrefix(s, "P"), 10, 64)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("parked id %q: must be a positive number", s)
	}
	return n, nil
}
