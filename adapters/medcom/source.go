package medcom

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/adapters/medcom/fhirmsg"
	"github.com/samhub/samhub/adapters/medcom/oioxml"
	"github.com/samhub/samhub/internal/failpoint"
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
	for _, name := range left {
		a.log.Info("medcom: resuming file left in processing", "file", name)
		if err := a.handle(ctx, pub, name); err != nil {
			a.retryLater(name, err)
		}
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
		// outbox check keeps to the poll interval.
		if time.Since(checked) >= a.cfg.PollInterval {
			checked = time.Now()
			if err := a.CheckAcks(ctx); err != nil {
				a.log.Warn("medcom: acknowledgement check failed", "err", err)
			}
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

// Poll claims the complete files now in in/ and handles them in two steps:
// every file is read, parsed and validated in parallel; then the files are
// grouped by thread and the groups run concurrently, each group in the
// order its files arrived, so that one file's chain of durable writes
// (store the letter, write the acknowledgement, remember it) overlaps with
// another thread's while letters of one thread are still stored in order.
// It reports false when a file had to be put back for a later try.
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
	files, next, err := a.scan(time.Now())
	if err != nil {
		a.log.Error("medcom: cannot list the in directory", "err", err)
		return round{}
	}
	res := round{next: next}
	// One round takes a bounded number of files and bytes, so a backlog of
	// thousands, or a few files of max_bytes, is read a slice at a time
	// rather than all into memory at once.
	if limit := 8 * a.cfg.Workers; len(files) > limit {
		files, res.more = files[:limit], true
	}
	var claimed []string
	var bytes int64
	for i, f := range files {
		if ctx.Err() != nil {
			break
		}
		if i > 0 && bytes+f.size > a.memBudget() {
			res.more = true
			break
		}
		// The rename claims the file: a writer's later rename onto the same
		// name in in/ starts a new file, never a half-read one.
		if err := os.Rename(filepath.Join(a.in, f.name), filepath.Join(a.processing, f.name)); err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				a.log.Error("medcom: cannot claim file", "file", f.name, "err", err)
			}
			continue
		}
		a.claimed(f.name)
		claimed = append(claimed, f.name)
		bytes += f.size
	}
	res.ok = a.handleRound(ctx, pub, claimed)
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

// handleRound handles the files one poll claimed into processing/.
func (a *Adapter) handleRound(ctx context.Context, pub adapters.Publisher, claimed []string) bool {
	preps := make([]*prepared, len(claimed))
	a.parallel(len(claimed), func(i int) { preps[i] = a.prepare(claimed[i]) })
	defer func() {
		for _, p := range preps {
			p.close()
		}
	}()

	groups := map[string][]*prepared{}
	var order []string
	for _, p := range preps {
		if _, ok := groups[p.thread]; !ok {
			order = append(order, p.thread)
		}
		groups[p.thread] = append(groups[p.thread], p)
	}
	var failed atomic.Bool
	var doneMu sync.Mutex
	var done []string // handled, to move to processed/ once the round is durable
	a.parallel(len(order), func(i int) {
		group := groups[order[i]]
		for k, p := range group {
			moved, err := a.finish(ctx, pub, p, roundSync)
			if err != nil {
				failed.Store(true)
				// This file and the later letters of its thread go back to
				// in/ for the next round, still in order.
				for _, rest := range group[k:] {
					a.retryLater(rest.name, err)
				}
				return
			}
			if !moved {
				doneMu.Lock()
				done = append(done, p.name)
				doneMu.Unlock()
			}
		}
	})
	if len(done) == 0 {
		return !failed.Load()
	}
	// The round's acknowledgements become durable together, before any of
	// its files leaves processing/: a crash before this point handles the
	// files again, and the duplicate memory repeats the same
	// acknowledgements.
	if err := syncFS(a.out); err != nil {
		for _, name := range done {
			a.retryLater(name, fmt.Errorf("make acknowledgements durable: %w", err))
		}
		return false
	}
	failpoint.Kill(failpoint.MedComStored)
	for _, name := range done {
		if _, err := moveUnique(filepath.Join(a.processing, name), a.processed); err != nil {
			a.log.Error("medcom: handled file stays in processing until restart", "file", name, "err", err)
		}
	}
	return !failed.Load()
}

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

// keyLocks serialises the handling of one letter (by its duplicate-memory
// key) across workers, so that two copies of a letter in one poll round
// still get one acknowledgement, repeated identically.
type keyLocks struct {
	mu   sync.Mutex
	held map[string]chan struct{}
}

func (k *keyLocks) lock(keys []string) (unlock func()) {
	keys = append([]string(nil), keys...)
	slices.Sort(keys)
	keys = slices.Compact(keys)
	for _, key := range keys {
		for {
			k.mu.Lock()
			if k.held == nil {
				k.held = map[string]chan struct{}{}
			}
			ch, busy := k.held[key]
			if !busy {
				k.held[key] = make(chan struct{})
				k.mu.Unlock()
				break
			}
			k.mu.Unlock()
			<-ch
		}
	}
	return func() {
		k.mu.Lock()
		defer k.mu.Unlock()
		for _, key := range keys {
			close(k.held[key])
			delete(k.held, key)
		}
	}
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
}

// close releases the file a scanned message's parts are read from.
func (p *prepared) close() {
	if p.in != nil {
		p.in.close()
	}
}

// prepare reads and examines processing/name; it writes nothing.
func (a *Adapter) prepare(name string) *prepared {
	p := &prepared{name: name, thread: "file:" + name, now: a.now()}
	path := filepath.Join(a.processing, name)
	fi, err := os.Stat(path)
	if err != nil {
		p.err = err
		return p
	}
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
		return p
	}
	if ls := p.in.letters(a.name, name, p.data, p.now); len(ls) > 0 {
		p.thread = ls[0].Thread()
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

// handle processes processing/name. A non-nil error means "try again
// later" (publish or storage failure); bad input is moved to error/ and nil
// is returned.
func (a *Adapter) handle(ctx context.Context, pub adapters.Publisher, name string) error {
	p := a.prepare(name)
	defer p.close()
	_, err := a.finish(ctx, pub, p, false)
	return err
}

// finish acknowledges and publishes one prepared file, and moves it out of
// processing/ (moved) unless the round does that: with deferSync its
// acknowledgements are written without fsyncs, and the caller makes them
// durable (syncFS) before it moves the file to processed/. Rejected files
// are always finished here, durably.
func (a *Adapter) finish(ctx context.Context, pub adapters.Publisher, p0 *prepared, deferSync bool) (moved bool, err error) {
	if p0.err != nil {
		return false, p0.err
	}
	name := p0.name
	if p0.reject != "" {
		return true, a.reject(pub, name, rejection{code: codeTooLarge, reason: p0.reject})
	}
	data, now, in := p0.data, p0.now, p0.in
	acks, err := planAcks(in, a.cfg.Self, now)
	if err != nil {
		return false, err
	}
	keys := make([]string, 0, len(acks))
	for _, p := range acks {
		keys = append(keys, p.key)
	}
	defer a.keys.lock(keys)()
	// Duplicates: same sender+letter id (OIOXML) or MessageHeader.id (FHIR).
	fresh := acks[:0:0]
	repeated := 0
	for _, p := range acks {
		var rec inRecord
		_, seen, err := getJSON(ctx, a.state, p.key, &rec)
		if err != nil {
			return false, err
		}
		if !seen {
			fresh = append(fresh, p)
			continue
		}
		a.log.Info("medcom: duplicate letter; the first acknowledgement is repeated", "letter_id", rec.HubID, "file", name)
		a.dups.Inc()
		if rep, ok := pub.(adapters.InputReporter); ok {
			rep.Duplicate()
		}
		if rec.AckName != "" {
			if err := writeFile(a.out, rec.AckName, rec.Ack, !deferSync || in.err != nil); err != nil {
				return false, adapters.Retryable("medcom_write_failed", "could not write to the MedCom out directory", err)
			}
			repeated++
		}
	}

	if in.err != nil {
		sent, err := a.sendAcks(ctx, fresh, true)
		if err != nil {
			return false, err
		}
		return true, a.reject(pub, name, rejection{code: rejectCode(in.err), reason: describe(in), acked: sent+repeated > 0})
	}

	failpoint.Kill(failpoint.MedComClaimed)
	// Publish every letter that is not a duplicate before anything is
	// acknowledged or moved.
	dup := map[string]bool{}
	for _, p := range acks {
		dup[p.hubID] = true
	}
	for _, p := range fresh {
		delete(dup, p.hubID)
	}
	stored := map[string]bool{}
	for _, l := range in.letters(a.name, name, data, now) {
		if dup[l.ID] {
			continue
		}
		if l.Kind == letter.KindAcknowledgement {
			a.correlate(ctx, l)
		}
		if err := pub.Publish(ctx, l); err != nil {
			if class, reason, code := adapters.Classify(err); class == adapters.ClassPermanent {
				// The hub will never store this letter (too large): trying
				// again would loop forever. Refuse it like invalid input.
				return true, a.refuseUnstorable(ctx, pub, name, in, now, fresh, stored, code, reason)
			}
			return false, adapters.Retryable("publish_failed", "the letter could not be stored in the hub", err)
		}
		stored[l.ID] = true
		a.log.Info("medcom: letter received", slog.Any("letter", l))
	}
	if err := a.settleAcks(ctx, in); err != nil {
		return false, err
	}
	if _, err := a.sendAcks(ctx, fresh, !deferSync); err != nil {
		return false, err
	}
	if deferSync {
		return false, nil
	}
	if _, err := moveUnique(filepath.Join(a.processing, name), a.processed); err != nil {
		return false, err
	}
	return true, nil
}

// refuseUnstorable answers a file whose letter the hub refused for good:
// letters of the file stored before it keep their positive acknowledgement,
// the refused one and those after it get a negative one naming the reason,
// and the file goes to error/ with that reason.
func (a *Adapter) refuseUnstorable(ctx context.Context, pub adapters.Publisher, name string, in *inbound, now time.Time, fresh []plannedAck, stored map[string]bool, code, reason string) error {
	a.log.Warn("medcom: the hub refused a letter for good; the file is refused", "file", name, "code", code, "reason", reason)
	refused := *in
	refused.err = fmt.Errorf("%s", reason)
	negative, err := planAcks(&refused, a.cfg.Self, now)
	if err != nil {
		return err
	}
	byKey := map[string]plannedAck{}
	for _, p := range negative {
		byKey[p.key] = p
	}
	var acks []plannedAck
	for _, p := range fresh {
		if n, ok := byKey[p.key]; ok && !stored[p.hubID] {
			p = n
		}
		acks = append(acks, p)
	}
	sent, err := a.sendAcks(ctx, acks, true)
	if err != nil {
		return err
	}
	note := "refused by the hub (" + code + "): " + reason
	if len(stored) > 0 {
		note += fmt.Sprintf("; %d earlier letter(s) of the file were stored and acknowledged", len(stored))
	}
	// The hub counted the refused letter already.
	return a.reject(pub, name, rejection{code: code, reason: note, acked: sent > 0, counted: true})
}

// sendAcks writes each new acknowledgement and remembers it for duplicates;
// durable makes each file durable as it is written. It returns how many
// acknowledgement files it wrote.
func (a *Adapter) sendAcks(ctx context.Context, acks []plannedAck, durable bool) (sent int, err error) {
	for _, p := range acks {
		if p.data != nil {
			p.rec.AckName, p.rec.Ack = p.name, p.data
		}
		p.rec.Negative = p.negative
		b, err := json.Marshal(p.rec)
		if err != nil {
			return sent, err
		}
		// Remember the acknowledgement before writing it: a crash in between
		// then repeats these very bytes on the next try, instead of building
		// a second, different acknowledgement for the same letter. If a
		// record exists already (a crash after it, or another replica), its
		// bytes are the ones sent.
		if _, err := a.state.Create(ctx, p.key, b); err != nil {
			if !errors.Is(err, adapters.ErrExists) {
				return sent, err
			}
			var rec inRecord
			if _, _, err := getJSON(ctx, a.state, p.key, &rec); err != nil {
				return sent, err
			}
			p.name, p.data = rec.AckName, rec.Ack
		}
		if p.data != nil && p.name != "" {
			if err := writeFile(a.out, p.name, p.data, durable); err != nil {
				return sent, adapters.Retryable("medcom_write_failed", "could not write to the MedCom out directory", err)
			}
			sent++
		}
	}
	return sent, nil
}

func describe(in *inbound) string {
	msg := strings.Join(capLines(errLines(in.err)), "\n")
	if !in.addressable() {
		return "rejected (no acknowledgement could be addressed): " + msg
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
	ob := outbox{}
	if _, _, err := getJSON(ctx, a.state, outboxKey, &ob); err != nil {
		a.log.Warn("medcom: cannot read outbox", "err", err)
		return
	}
	if p := ob[l.InReplyTo]; p != nil {
		l.Meta[MetaRef] = l.InReplyTo
		l.InReplyTo = p.HubID
	}
}

// settleAcks updates the outbox for acknowledgements received in in.
func (a *Adapter) settleAcks(ctx context.Context, in *inbound) error {
	type result struct {
		ref      string
		positive bool
		retry    bool
		code     string // the receiver's answer, a MedCom code (no personal data)
	}
	var rs []result
	if in.oio != nil {
		for _, rc := range in.oio.Receipts {
			for _, o := range rc.OriginalLetters {
				rs = append(rs, result{ref: oioxml.LetterID(rc.OriginalSenderEAN, o.Identifier), positive: rc.Positive(), code: "negative receipt (XCTL)"})
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
	var refused []pending
	err := a.updateOutbox(ctx, func(ob outbox) bool {
		changed := false
		refused = refused[:0]
		for _, r := range rs {
			p := ob[r.ref]
			if p == nil {
				continue
			}
			switch {
			case r.retry:
				a.log.Warn("medcom: receiver reported a transient error; the letter will be resent", "letter_id", p.HubID)
				p.LastSent = time.Time{} // resend on the next check
			case r.positive:
				a.log.Info("medcom: letter acknowledged", "letter_id", p.HubID)
				delete(ob, r.ref)
				a.removeCopy(p.HubID)
			default:
				a.log.Warn("medcom: letter refused by the receiver", "letter_id", p.HubID, "code", r.code)
				refused = append(refused, *p)
				delete(ob, r.ref)
				a.removeCopy(p.HubID)
			}
			changed = true
		}
		return changed
	})
	if err != nil {
		return err
	}
	for _, p := range refused {
		if err := a.markRefused(ctx, p); err != nil {
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
