package medcom

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/adapters/medcom/fhirmsg"
	"github.com/samhub/samhub/adapters/medcom/oioxml"
	"github.com/samhub/samhub/adapters/medcom/xmlsafe"
	"github.com/samhub/samhub/pipeline/letter"
)

// Run polls in/ until ctx ends. Files a crash left in processing/ are
// handled first. A file is taken once it is complete (complete.go). A file
// whose letters cannot all be published goes back to in/ and is tried again
// after a pause; it never reaches processed/.
func (a *Adapter) Run(ctx context.Context, pub adapters.Publisher) error {
	left, err := candidates(a.processing)
	if err != nil {
		return fmt.Errorf("medcom: read %s: %w", a.processing, err)
	}
	// Only the replica running the source checks the outbox: one that
	// stops (its lease went to another) no longer knows, and a count it
	// kept would hold the max-by-adapter alert up after the letters were
	// acknowledged.
	defer a.missing.Set(0)
	// Before the first acknowledgement is read, so it finds the letter it
	// answers in the outbox whichever version sent it.
	if err := a.moveOldOutbox(ctx); err != nil {
		a.log.Warn("medcom: could not move the earlier version's outbox yet", "err", err)
	}
	if len(left) > 0 {
		// At most one round's files: a crash leaves no more.
		a.log.Info("medcom: resuming files left in processing", "files", len(left))
		a.handleRound(ctx, pub, left)
	}
	wake := a.watchIn(ctx, a.in)
	var checked time.Time
	failures := 0
	for {
		r := a.poll(ctx, pub)
		if r.ok {
			failures = 0
		} else {
			failures++
		}
		if failures == 0 && r.more && ctx.Err() == nil {
			continue // a backlog: take the next slice at once
		}
		// Arrivals wake the loop many times a second under load; the
		// outbox check keeps to its own interval.
		if time.Since(checked) >= a.checkEvery() {
			checked = time.Now()
			// Bounded: the check runs in the loop that takes letters in.
			cctx, cancel := context.WithTimeout(ctx, checkTimeout)
			if err := a.CheckAcks(cctx); err != nil {
				a.log.Warn("medcom: acknowledgement check failed", "err", err)
			}
			cancel()
		}
		wait := a.cfg.PollInterval
		for i := 1; i < failures && wait < 30*time.Second; i++ {
			wait *= 2 // a failing broker is not hammered
		}
		if failures == 0 && r.next > 0 && r.next < wait {
			wait = r.next // a file written in place settles before the next poll
		}
		arrived := wake
		if failures > 0 {
			arrived = nil // a failing broker is not hammered by arrivals either
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		case <-arrived:
			t.Stop()
		}
	}
}

// Poll claims the complete files now in in/ and handles them as one round
// (round.go): every file is read, parsed, validated and answered in
// parallel; the round's letters are stored together, in arrival order;
// the acknowledgements are written, made durable together, and the files
// moved to processed/. It reports false when a file had to be put back for
// a later try.
func (a *Adapter) Poll(ctx context.Context, pub adapters.Publisher) bool {
	return a.poll(ctx, pub).ok
}

// round is what one poll did: ok is false when a file had to be put back,
// more says a slice limit left complete files for the next round, next is
// how soon a file still settling may be complete.
type round struct {
	ok, more bool
	next     time.Duration
}

func (a *Adapter) poll(ctx context.Context, pub adapters.Publisher) round {
	// One round takes a bounded number of files and bytes, so a backlog of
	// thousands, or a few files of max_bytes, is read a slice at a time
	// rather than all into memory at once.
	limit := 8 * a.cfg.Workers
	files, next, err := a.scan(time.Now(), limit)
	if err != nil {
		a.log.Error("medcom: cannot list the in directory", "err", err)
		return round{}
	}
	res := round{next: next}
	// A file waiting for its XDIS91 or XBIN01 partner is read again only
	// when a new file may be its partner, or when its wait is over; it
	// takes no room from new files.
	now := time.Now() // file times are the wall clock
	var fresh, waiting []readyFile
	for _, f := range files {
		if _, ok := a.waitingUntil(f.name, now); ok {
			waiting = append(waiting, f)
		} else {
			fresh = append(fresh, f)
		}
	}
	if len(fresh) > limit {
		fresh, res.more = fresh[:limit], true
	}
	var claimed []string
	var bytes int64
	claim := func(f readyFile) {
		// The rename claims the file: a writer's later rename onto the same
		// name in in/ starts a new file, never a half-read one.
		if err := os.Rename(filepath.Join(a.in, f.name), filepath.Join(a.processing, f.name)); err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				a.log.Error("medcom: cannot claim file", "file", f.name, "err", err)
			}
			return
		}
		a.claimed(f.name)
		claimed = append(claimed, f.name)
		bytes += f.size
	}
	for i, f := range fresh {
		if ctx.Err() != nil {
			break
		}
		if i > 0 && bytes+f.size > a.memBudget() {
			res.more = true
			break
		}
		claim(f)
	}
	preps := a.prepareAll(ctx, claimed)
	if len(waiting) > 0 && wantsPartners(preps) {
		// A new file names a file, or carries files: the waiting ones are
		// read again beside it, in arrival order (by name, as scan sorts).
		n := len(claimed)
		for _, f := range waiting {
			claim(f)
		}
		preps = append(preps, a.prepareAll(ctx, claimed[n:])...)
		slices.SortFunc(preps, func(x, y *prepared) int { return strings.Compare(x.name, y.name) })
	}
	res.ok = a.handlePrepared(ctx, pub, preps)
	if d := a.nextPartnerDeadline(time.Now()); d > 0 && (res.next == 0 || d < res.next) {
		res.next = d
	}
	if bytes >= freeAfter {
		// The round's parse trees and copies are garbage now. The runtime
		// would hand their memory back to the system over minutes; after a
		// large input (issue 19: a hub at 995 MB after four bombs, and it
		// stayed there) it is handed back at once, and again when the
		// store's caches of the round have expired.
		adapters.HandBackMemory()
	}
	return res
}

// freeAfter is the input size of a round after which memory is handed back
// to the system at once.
const freeAfter = 16 << 20

// memBudget is how many bytes of input one round holds and examines at
// once: max_bytes (one file of any allowed size), at least 64 MB.
func (a *Adapter) memBudget() int64 { return max(a.cfg.MaxBytes, 64<<20) }

// parallel runs fn(0..n-1) on at most cfg.Workers goroutines.
func (a *Adapter) parallel(n int, fn func(int)) {
	var wg sync.WaitGroup
	slots := make(chan struct{}, a.cfg.Workers)
	for i := range n {
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			fn(i)
		}()
	}
	wg.Wait()
}

func (a *Adapter) retryLater(name string, err error) {
	_, reason, code := adapters.Classify(err)
	a.log.Warn("medcom: file will be retried", "file", name, "code", code, "reason", reason, "err", err)
	if rerr := os.Rename(filepath.Join(a.processing, name), filepath.Join(a.in, name)); rerr != nil {
		a.log.Error("medcom: file stays in processing until restart", "file", name, "err", rerr)
	}
}

// prepared is a claimed file read and examined, waiting for its turn.
type prepared struct {
	name   string
	data   []byte // the file, or the scanned message (see inbound.scanned)
	now    time.Time
	in     *inbound
	thread string // ordering key: the thread of its first letter, else the file
	err    error  // reading failed: put back for a later try
	reject string // too large: moved to error/ with this reason

	letters []*letter.Letter // of a valid file
	acks    []plannedAck     // one per letter owed an answer (planAcks)
	written time.Time        // the file's modification time
	// waiting: the file waits in in/ for its XDIS91 or XBIN01 partner;
	// joinedInto names, by the hub id of each XBIN01 letter of the file
	// whose files another letter took, that letter's hub id (binaries.go).
	waiting    bool
	joinedInto map[string]string

	// known holds the answers kept in the state store by key: a letter
	// rejected before, one answered under another key, or one stored
	// before the upgrade that put the answer into the stored letter.
	known map[string]*inRecord
	// kept holds the keys whose refusal keepRefusals kept for this file
	// before its answers were written (round.go).
	kept map[string]bool
}

// close releases the file a scanned message's parts are read from.
func (p *prepared) close() {
	if p.in != nil {
		p.in.close()
	}
}

// prepare reads and examines processing/name, plans its answers and looks
// up the answers kept for them; it writes nothing.
func (a *Adapter) prepare(ctx context.Context, name string) *prepared {
	p := &prepared{name: name, thread: "file:" + name, now: a.now()}
	path := filepath.Join(a.processing, name)
	fi, err := os.Stat(path)
	if err != nil {
		p.err = err
		return p
	}
	p.written = fi.ModTime()
	if fi.Size() > a.cfg.MaxBytes {
		p.reject = fmt.Sprintf("file is %d bytes, more than adapters.%s.max_bytes (%d)", fi.Size(), a.name, a.cfg.MaxBytes)
		return p
	}
	// Workers read and examine files in parallel, but never more than the
	// memory budget of input at once: parsing costs up to about twice its
	// input (a FHIR message's attachments are not read in: examineFile).
	release := a.examining.acquire(min(fi.Size(), a.memBudget()))
	defer release()
	if p.in, p.data, err = examineFile(path, a.lim); err != nil {
		p.err = err
		return p
	}
	if p.in.err != nil {
		p.data = nil // refused: only the examination's result is needed
	} else if p.letters = p.in.letters(a.name, name, p.data, p.now); len(p.letters) > 0 {
		p.thread = p.letters[0].Thread()
	}
	if p.acks, err = planAcks(p.in, a.cfg.Self, p.now); err != nil {
		p.err = err
		return p
	}
	for _, pa := range p.acks {
		var rec inRecord
		if _, found, err := getJSON(ctx, a.state, pa.key, &rec); err != nil {
			p.err = err
			return p
		} else if found {
			if p.known == nil {
				p.known = map[string]*inRecord{}
			}
			p.known[pa.key] = &rec
		}
	}
	return p
}

// weighted is a counting semaphore of bytes. One acquirer may exceed the
// limit when nothing else holds any, so a file larger than the budget is
// still read, alone.
type weighted struct {
	mu    sync.Mutex
	cond  *sync.Cond
	used  int64
	limit int64
}

func (w *weighted) acquire(n int64) (release func()) {
	w.mu.Lock()
	if w.cond == nil {
		w.cond = sync.NewCond(&w.mu)
	}
	for w.used > 0 && w.used+n > w.limit {
		w.cond.Wait()
	}
	w.used += n
	w.mu.Unlock()
	return func() {
		w.mu.Lock()
		w.used -= n
		w.cond.Broadcast()
		w.mu.Unlock()
	}
}

func describe(in *inbound) string {
	msg := strings.Join(capLines(errLines(in.err)), "\n")
	var xe *xmlsafe.Error
	switch {
	case !in.addressable() && errors.As(in.err, &xe) && xe.Reason == xmlsafe.ReasonSyntax:
		return "rejected (no acknowledgement could be addressed: the ids and parties an answer needs were not all read before the error): " + msg
	case !in.addressable():
		return "rejected (no acknowledgement could be addressed): " + msg
	case in.salvaged != "":
		return "rejected (not well-formed; the negative acknowledgement is addressed from the part before the error): " + msg
	}
	return "rejected: " + msg
}

// maxErrLines bounds the findings an error note or `samhub validate` lists:
// a file of a million wrong elements would otherwise get a note of
// hundreds of megabytes.
const maxErrLines = 100

func capLines(lines []string) []string {
	if len(lines) <= maxErrLines {
		return lines
	}
	return append(lines[:maxErrLines:maxErrLines], fmt.Sprintf("(and %d more)", len(lines)-maxErrLines))
}

// correlate points an inbound acknowledgement at the hub's own letter id
// when it acknowledges something this adapter sent.
func (a *Adapter) correlate(ctx context.Context, l *letter.Letter) {
	if l.InReplyTo == "" {
		return
	}
	p, _, err := a.pendingOf(ctx, l.InReplyTo, l.Meta[oioxml.MetaOriginalVersion] == oioxml.VersionXBIN01)
	if err != nil {
		a.log.Warn("medcom: cannot read outbox", "err", err)
		return
	}
	if p != nil {
		l.Meta[MetaRef] = l.InReplyTo
		l.InReplyTo = p.HubID
	}
}

// pendingOf is the outbox entry an acknowledgement of ref answers: the
// letter's own, or, for the receipt of an XBIN01 letter (binary), the
// entry of the letter whose files it carried, found by a look through the
// outbox (such receipts are few). ref is then the letter's reference.
func (a *Adapter) pendingOf(ctx context.Context, ref string, binary bool) (*pending, string, error) {
	p, _, err := a.pendingEntry(ctx, ref)
	if err != nil || p != nil || !binary {
		return p, ref, err
	}
	ob, err := a.outboxEntries(ctx)
	if err != nil {
		return nil, ref, err
	}
	for r, q := range ob {
		if q.BinaryRef == ref {
			return q, r, nil
		}
	}
	return nil, ref, nil
}

// settleAcks updates the outbox for acknowledgements received in in.
func (a *Adapter) settleAcks(ctx context.Context, in *inbound) error {
	type result struct {
		ref      string
		positive bool
		retry    bool
		binary   bool   // the receipt of an XBIN01 letter
		code     string // the receiver's answer, a MedCom code (no personal data)
	}
	var rs []result
	if in.oio != nil {
		for _, rc := range in.oio.Receipts {
			for _, o := range rc.OriginalLetters {
				rs = append(rs, result{ref: oioxml.LetterID(rc.OriginalSenderEAN, o.Identifier), positive: rc.Positive(),
					binary: o.VersionCode == oioxml.VersionXBIN01, code: "negative receipt (XCTL)"})
			}
		}
	}
	if in.fhir != nil && in.fhir.Event == fhirmsg.EventAcknowledgement && in.fhir.Response != nil {
		r := in.fhir.Response
		rs = append(rs, result{ref: r.Identifier, positive: r.Code == fhirmsg.AckOK, retry: r.Code == fhirmsg.AckTransientError, code: fmt.Sprint(r.Code)})
	}
	if len(rs) == 0 {
		return nil
	}
	for _, r := range rs {
		p, ref, err := a.pendingOf(ctx, r.ref, r.binary)
		if err != nil {
			return err
		}
		if p == nil {
			continue // not ours, or settled before
		}
		r.ref = ref
		switch {
		case r.binary && r.positive:
			// The files arrived; the letter's own receipt settles it.
			a.log.Info("medcom: files of a letter acknowledged", "letter_id", p.HubID)
			continue
		case r.retry:
			a.log.Warn("medcom: receiver reported a transient error; the letter will be resent", "letter_id", p.HubID)
			err = a.changePending(ctx, r.ref, func(q *pending) bool {
				// Resent by the first check after ack_timeout from its first
				// sending (MedCom: resend later), not at once.
				q.LastSent = time.Time{}
				return true
			})
		case r.positive:
			a.log.Info("medcom: letter acknowledged", "letter_id", p.HubID)
			if err = a.removePending(ctx, r.ref); err == nil {
				a.removeCopy(p.HubID)
			}
		default:
			a.log.Warn("medcom: letter refused by the receiver", "letter_id", p.HubID, "code", r.code)
			// Marked first: a failure leaves the entry for the refusal's
			// next reading, which marks it then. The other way round, a
			// replay would find the letter delivered and send nothing.
			if err = a.markRefused(ctx, *p); err == nil {
				if err = a.removePending(ctx, r.ref); err == nil {
					a.removeCopy(p.HubID)
				}
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// markRefused lets the next delivery of a refused letter (the coordinator's
// replay of it) write a new version with new MedCom ids instead of finding
// the refused one.
func (a *Adapter) markRefused(ctx context.Context, p pending) error {
	key := stateKey("out", p.HubID)
	for range 5 {
		var rec outRecord
		rev, found, err := getJSON(ctx, a.state, key, &rec)
		if err != nil || !found || rec.Version != p.Version || rec.Refused {
			return err
		}
		rec.Refused = true
		b, _ := json.Marshal(rec)
		if _, err = a.state.Update(ctx, key, b, rev); !errors.Is(err, adapters.ErrConflict) {
			return err
		}
	}
	return errors.New("medcom: the refused letter's record kept changing")
}
