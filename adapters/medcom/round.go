package medcom

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"time"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/internal/failpoint"
	"github.com/samhub/samhub/pipeline/letter"
)

// A round is the files one poll claimed into processing/:
//
//  1. each file is read, parsed and validated, its acknowledgements built,
//     and the answers kept for them in the state store looked up, in
//     parallel (prepare);
//  2. a refused file gets its negative acknowledgements (kept in the
//     state store, since no letter is stored to carry them) and goes to
//     error/;
//  3. the letters of the valid files go to the hub at once, in arrival
//     order, each carrying its acknowledgement as the checkpoint stored
//     with it (adapters.PublishBatch): one synced write for the round;
//  4. each file's acknowledgements are written: the own one for a letter
//     stored now, the stored one for a copy of a letter the hub holds, so
//     a copy gets the very bytes the first got, from the stored letter;
//  5. out/ is made durable once, and the files move to processed/.
//
// A crash anywhere repeats the round from processing/: letters stored
// before it come back as duplicates with their checkpoints, and the same
// acknowledgements are written again.
func (a *Adapter) handleRound(ctx context.Context, pub adapters.Publisher, claimed []string) bool {
	return a.handlePrepared(ctx, pub, a.prepareAll(ctx, claimed))
}

// prepareAll prepares the claimed files in parallel.
func (a *Adapter) prepareAll(ctx context.Context, claimed []string) []*prepared {
	preps := make([]*prepared, len(claimed))
	a.parallel(len(claimed), func(i int) { preps[i] = a.prepare(ctx, claimed[i]) })
	return preps
}

// handlePrepared is handleRound for files read and examined already, in
// arrival order.
func (a *Adapter) handlePrepared(ctx context.Context, pub adapters.Publisher, preps []*prepared) bool {
	defer func() {
		for _, p := range preps {
			p.close()
		}
	}()
	a.joinBinaries(ctx, preps, time.Now()) // file times are the wall clock

	ok := true
	held := map[string]bool{} // threads with a file put back: their later files go back too
	putBack := func(p *prepared, err error) {
		ok = false
		held[p.thread] = true
		a.retryLater(p.name, err)
	}
	// Negative answers given in this round, by key: a valid copy of a
	// letter refused earlier in the round gets the same answer.
	answered := map[string]*inRecord{}
	offered := map[string]bool{}    // keys of letters given to the hub this round
	given := map[string]*inRecord{} // answers of letters the hub holds, by key
	var later []*prepared           // refused copies of letters offered this round
	var items []adapters.Item
	var valid []*fileRound
	// Threads with a file waiting for its XDIS91 or XBIN01 partner, and
	// until when: their later files wait as long, and are read again with
	// it (binaries.go).
	waits := map[string]time.Time{}
	for _, p := range preps {
		if !p.waiting {
			delete(a.partnerWait, p.name)
		}
		switch {
		case held[p.thread] && !waits[p.thread].IsZero():
			a.partnerWait[p.name] = waits[p.thread]
			a.waitForPartner(p.name)
		case held[p.thread]:
			a.retryLater(p.name, errHeld)
		case p.waiting:
			held[p.thread], waits[p.thread] = true, a.partnerWait[p.name]
			a.waitForPartner(p.name)
		case p.err != nil:
			putBack(p, p.err)
		case p.reject != "":
			if err := a.reject(pub, p.name, rejection{code: codeTooLarge, reason: p.reject}); err != nil {
				putBack(p, err)
			}
		case p.in.err != nil && p.answersAny(offered):
			// A valid copy earlier in the round is being stored: this one
			// gets its answer once that is known. Its other letters are
			// refused now, in arrival order: a valid copy of one later in
			// the round gets that refusal, not a letter stored.
			if err := a.keepRefusals(ctx, p, answered, offered); err != nil {
				putBack(p, err)
				continue
			}
			later = append(later, p)
		case p.in.err != nil:
			if err := a.refuse(ctx, pub, p, answered, nil); err != nil {
				putBack(p, err)
			}
		default:
			fr := a.collect(ctx, p, answered)
			fr.from = len(items)
			items = append(items, fr.items...)
			valid = append(valid, fr)
			for _, pa := range p.acks {
				offered[pa.key] = true
			}
		}
	}
	var results []adapters.Result
	if len(items) > 0 {
		failpoint.Kill(failpoint.MedComClaimed)
		results = adapters.PublishBatch(ctx, pub, items)
		failpoint.Kill(failpoint.MedComPublished)
	}
	// A file whose XBIN01 letter another letter took is answered after
	// that letter (its receipt is kept in the letter's record) and moved
	// before it: a crash between the moves leaves the letter, which is
	// answered again from the stored letter, never the XBIN01 letter
	// alone, which would be stored a second time, on its own.
	slices.SortStableFunc(valid, func(x, y *fileRound) int {
		return cmp.Compare(len(x.p.joinedInto), len(y.p.joinedInto))
	})
	var done, doneFirst []string // answered, to move to processed/ once out/ is durable
	back := map[string]bool{}    // keys of letters offered for storing whose file went back to in/
	wentBack := func(fr *fileRound) {
		for _, it := range fr.items {
			if pa := fr.p.ack(it.Letter.ID); pa != nil {
				back[pa.key] = true
			}
		}
	}
	for _, fr := range valid {
		if held[fr.p.thread] {
			a.retryLater(fr.p.name, errHeld)
			wentBack(fr)
			continue
		}
		moved, err := a.answer(ctx, pub, fr, results[fr.from:fr.from+len(fr.items)], given)
		if err != nil {
			putBack(fr.p, err)
			wentBack(fr)
			continue
		}
		switch {
		case moved:
		case len(fr.p.joinedInto) > 0:
			doneFirst = append(doneFirst, fr.p.name)
		default:
			done = append(done, fr.p.name)
		}
	}
	for _, p := range later {
		if p.answersAny(back) {
			// The valid copy it follows went back to in/ unanswered: this
			// one goes back with it, to be answered after it.
			a.retryLater(p.name, errCopyHeld)
			continue
		}
		if err := a.refuse(ctx, pub, p, answered, given); err != nil {
			putBack(p, err)
		}
	}
	done = append(doneFirst, done...)
	if len(done) == 0 {
		return ok
	}
	failpoint.Kill(failpoint.MedComAcksWritten)
	// The round's acknowledgements become durable together, before any of
	// its files leaves processing/: a crash before this point handles the
	// files again, and the stored letters repeat the same acknowledgements.
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
	return ok
}

var (
	errHeld     = adapters.Retryable("held_behind_thread", "an earlier file of its thread goes back to in/", nil)
	errCopyHeld = adapters.Retryable("held_behind_copy", "an earlier copy of its letter goes back to in/", nil)
)

// fileRound is a valid file's part of a round.
type fileRound struct {
	p     *prepared
	items []adapters.Item // its letters the hub is asked to store
	from  int             // where its items start in the round's
}

// collect makes the items of a valid file: every letter not answered from
// the state store, each with its acknowledgement as checkpoint.
func (a *Adapter) collect(ctx context.Context, p *prepared, answered map[string]*inRecord) *fileRound {
	fr := &fileRound{p: p}
	for _, l := range p.letters {
		pa := p.ack(l.ID)
		if pa != nil && p.known[pa.key] == nil && answered[pa.key] != nil {
			if p.known == nil {
				p.known = map[string]*inRecord{}
			}
			p.known[pa.key] = answered[pa.key]
		}
		if pa != nil && p.known[pa.key] != nil {
			continue // answered before: the same answer again, nothing stored
		}
		if l.Kind == letter.KindAcknowledgement {
			a.correlate(ctx, l)
		}
		it := adapters.Item{Letter: l}
		if pa != nil {
			it.Checkpoint = pa.checkpoint()
		}
		fr.items = append(fr.items, it)
	}
	return fr
}

// ack is the planned acknowledgement of letter id, nil when none is owed.
func (p *prepared) ack(id string) *plannedAck {
	for i := range p.acks {
		if p.acks[i].hubID == id {
			return &p.acks[i]
		}
	}
	return nil
}

// record is what is kept of an acknowledgement: in the checkpoint stored
// with its letter, or in the state store.
func (pa *plannedAck) record() inRecord {
	rec := pa.rec
	if pa.data != nil {
		rec.AckName, rec.Ack = pa.name, pa.data
	}
	rec.Negative, rec.Key = pa.negative, pa.key
	rec.With = pa.with
	return rec
}

func (pa *plannedAck) checkpoint() []byte {
	b, _ := json.Marshal(pa.record()) // strings, bytes and a time: cannot fail
	return b
}

// readCheckpoint decodes a stored letter's checkpoint; false when there is
// none or it is not one of this adapter's.
func readCheckpoint(b []byte) (inRecord, bool) {
	var rec inRecord
	if len(b) == 0 || json.Unmarshal(b, &rec) != nil || rec.Key == "" {
		return inRecord{}, false
	}
	return rec, true
}

// reply is the acknowledgement a letter gets this round.
type reply struct {
	name   string
	data   []byte
	repeat bool // the first answer given again (a copy)
}

// answer writes a valid file's acknowledgements once its letters' fates
// are known. moved: the file went to error/ (the hub refused a letter of
// it for good). An error puts the file back for a later round.
func (a *Adapter) answer(ctx context.Context, pub adapters.Publisher, fr *fileRound, res []adapters.Result, given map[string]*inRecord) (moved bool, err error) {
	p := fr.p
	byID := map[string]adapters.Result{}
	stored := map[string]bool{} // letters the hub holds
	var refusedCode, refusedReason string
	for k, r := range res {
		l := fr.items[k].Letter
		byID[l.ID] = r
		switch r.Outcome {
		case adapters.Stored:
			stored[l.ID] = true
			a.log.Info("medcom: letter received", slog.Any("letter", l))
		case adapters.Duplicate:
			stored[l.ID] = true
		default:
			class, reason, code := adapters.Classify(r.Err)
			if class != adapters.ClassPermanent {
				return false, adapters.Retryable("publish_failed", "the letter could not be stored in the hub", r.Err)
			}
			if refusedCode == "" {
				refusedCode, refusedReason = code, reason
			}
		}
	}
	replies := make([]reply, len(p.acks))
	for i := range p.acks {
		pa := &p.acks[i]
		if rec := p.known[pa.key]; rec != nil {
			replies[i] = a.repeat(pub, p.name, rec, true)
			continue
		}
		if into, ok := p.joinedInto[pa.hubID]; ok {
			rec := answerJoined(pa, into, given)
			if rec == nil {
				return false, errPartnerNotStored
			}
			// Kept under its own key too: a copy of it arriving alone
			// later is known (prepare) and answered the same, rather than
			// stored as a letter of its own with its files a second time.
			kept, err := a.keep(ctx, *rec)
			if err != nil {
				return false, err
			}
			replies[i] = reply{name: kept.AckName, data: kept.Ack}
			continue
		}
		r, published := byID[pa.hubID]
		switch {
		case !published || r.Outcome == adapters.Stored:
			replies[i] = reply{name: pa.name, data: pa.data}
			if published {
				rec := pa.record()
				given[pa.key] = &rec
			}
		case r.Outcome == adapters.Duplicate:
			if rec, ok := readCheckpoint(r.Checkpoint); ok && rec.Key == pa.key {
				replies[i] = a.repeat(pub, p.name, &rec, false)
				given[pa.key] = &rec
				break
			}
			// Stored without this key's answer: under another key, or by
			// something that stored no checkpoint. This key's answer is
			// kept in the state store, so its copies get it again.
			rec, err := a.remember(ctx, *pa)
			if err != nil {
				return false, err
			}
			replies[i] = a.repeat(pub, p.name, &rec, false)
			given[pa.key] = &rec
		}
	}
	if refusedCode != "" {
		return true, a.refuseUnstorable(ctx, pub, p, replies, stored, refusedCode, refusedReason)
	}
	if err := a.settleAcks(ctx, p.in); err != nil {
		return false, err
	}
	for _, r := range replies {
		if _, err := a.writeOut(r.name, r.data, !roundSync); err != nil {
			return false, err
		}
	}
	return false, nil
}

// writeOut writes an answer to out/ (nothing when there is none) and says
// whether it wrote one; durable as writeFile's.
func (a *Adapter) writeOut(name string, data []byte, durable bool) (bool, error) {
	if name == "" || data == nil {
		return false, nil
	}
	if err := writeFile(a.out, name, data, durable); err != nil {
		return false, adapters.Retryable("medcom_write_failed", "could not write to the MedCom out directory", err)
	}
	return true, nil
}

// repeat is the first answer to a letter, given again to a copy; byAdapter:
// the adapter recognised the copy itself (the hub counted the others).
func (a *Adapter) repeat(pub adapters.Publisher, file string, rec *inRecord, byAdapter bool) reply {
	a.dups.Inc()
	if byAdapter {
		// One line per copy: the hub logs and counts the copies it found.
		a.log.Info("medcom: duplicate letter; the first acknowledgement is repeated", "letter_id", rec.HubID, "file", file)
		if rep, ok := pub.(adapters.InputReporter); ok {
			rep.Duplicate()
		}
	} else {
		a.log.Debug("medcom: the hub holds the letter; its first acknowledgement is repeated", "letter_id", rec.HubID, "file", file)
	}
	return reply{name: rec.AckName, data: rec.Ack, repeat: true}
}

// remember keeps pa's answer in the state store, or returns the one kept
// there already (a crash after it, or another replica).
func (a *Adapter) remember(ctx context.Context, pa plannedAck) (inRecord, error) {
	return a.keep(ctx, pa.record())
}

// keep keeps rec in the state store under rec.Key, or returns the record
// kept there already.
func (a *Adapter) keep(ctx context.Context, rec inRecord) (inRecord, error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return inRecord{}, err
	}
	if _, err := a.state.Create(ctx, rec.Key, b); err != nil {
		if !errors.Is(err, adapters.ErrExists) {
			return inRecord{}, err
		}
		var kept inRecord
		if _, _, err := getJSON(ctx, a.state, rec.Key, &kept); err != nil {
			return inRecord{}, err
		}
		return kept, nil
	}
	return rec, nil
}

// refuse answers a file that is not valid: its negative acknowledgements
// (the same again for a letter answered before) are kept in the state
// store and written durably, and the file goes to error/.
func (a *Adapter) refuse(ctx context.Context, pub adapters.Publisher, p *prepared, answered, given map[string]*inRecord) error {
	var fresh []plannedAck
	repeated := 0
	for _, pa := range p.acks {
		if p.kept[pa.key] {
			fresh = append(fresh, pa) // kept by keepRefusals: this file's own answer
			continue
		}
		rec := p.known[pa.key]
		if rec == nil {
			rec = answered[pa.key]
		}
		if rec == nil {
			rec = given[pa.key]
		}
		if rec == nil {
			var err error
			if rec, err = a.storedAnswer(ctx, pa); err != nil {
				return err
			}
		}
		if rec == nil {
			fresh = append(fresh, pa)
			continue
		}
		r := a.repeat(pub, p.name, rec, true)
		wrote, err := a.writeOut(r.name, r.data, true)
		if err != nil {
			return err
		}
		if wrote {
			repeated++
		}
	}
	sent, err := a.sendAcks(ctx, fresh, answered)
	if err != nil {
		return err
	}
	return a.reject(pub, p.name, rejection{code: rejectCode(p.in.err), reason: describe(p.in), acked: sent+repeated > 0})
}

// keepRefusals keeps, in the state store and answered, the negative
// answers of p's letters that no earlier file of the round offers and that
// were not answered before; refuse sends them.
func (a *Adapter) keepRefusals(ctx context.Context, p *prepared, answered map[string]*inRecord, offered map[string]bool) error {
	for _, pa := range p.acks {
		if offered[pa.key] || p.known[pa.key] != nil || answered[pa.key] != nil {
			continue
		}
		rec, err := a.storedAnswer(ctx, pa)
		if err != nil {
			return err
		}
		if rec != nil {
			continue // the hub holds it: refuse repeats its answer
		}
		kept, err := a.remember(ctx, pa)
		if err != nil {
			return err
		}
		answered[pa.key] = &kept
		if p.kept == nil {
			p.kept = map[string]bool{}
		}
		p.kept[pa.key] = true
	}
	return nil
}

// storedAnswer is the answer stored with the hub's copy of pa's letter,
// nil when the hub holds none for this key. Only a refused file asks: a
// valid one learns it from its publish.
func (a *Adapter) storedAnswer(ctx context.Context, pa plannedAck) (*inRecord, error) {
	if a.letters == nil {
		return nil, nil
	}
	cp, err := a.letters.Checkpoint(ctx, a.name, pa.hubID)
	if errors.Is(err, adapters.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, adapters.Retryable("hub_unavailable", "the hub could not be asked for an earlier copy of the letter", err)
	}
	if rec, ok := readCheckpoint(cp); ok && rec.Key == pa.key {
		return &rec, nil
	}
	return nil, nil
}

// answersAny reports whether p owes an answer for one of keys.
func (p *prepared) answersAny(keys map[string]bool) bool {
	for _, pa := range p.acks {
		if keys[pa.key] {
			return true
		}
	}
	return false
}

// sendAcks keeps each acknowledgement in the state store, then writes it
// durably: a crash in between repeats these very bytes on the next try.
// When a record exists already (a crash after it, or another replica), its
// bytes are the ones sent. answered, when not nil, learns each answer. It
// returns how many acknowledgement files it wrote.
func (a *Adapter) sendAcks(ctx context.Context, acks []plannedAck, answered map[string]*inRecord) (sent int, err error) {
	for _, pa := range acks {
		rec, err := a.remember(ctx, pa)
		if err != nil {
			return sent, err
		}
		if answered != nil {
			answered[pa.key] = &rec
		}
		wrote, err := a.writeOut(rec.AckName, rec.Ack, true)
		if err != nil {
			return sent, err
		}
		if wrote {
			sent++
		}
	}
	return sent, nil
}

// refuseUnstorable answers a file whose letter the hub refused for good:
// letters of the file the hub holds keep their positive acknowledgement,
// the refused one and any other not stored get a negative one naming the
// reason, and the file goes to error/ with that reason.
func (a *Adapter) refuseUnstorable(ctx context.Context, pub adapters.Publisher, p *prepared, replies []reply, stored map[string]bool, code, reason string) error {
	a.log.Warn("medcom: the hub refused a letter for good; the file is refused", "file", p.name, "code", code, "reason", reason)
	refused := *p.in
	refused.err = fmt.Errorf("%s", reason)
	negative, err := planAcks(&refused, a.cfg.Self, p.now)
	if err != nil {
		return err
	}
	byKey := map[string]plannedAck{}
	for _, n := range negative {
		byKey[n.key] = n
	}
	sent := 0
	var fresh []plannedAck
	for i, pa := range p.acks {
		n, isNegative := byKey[pa.key]
		if !stored[pa.hubID] && isNegative && !replies[i].repeat {
			fresh = append(fresh, n)
			continue
		}
		wrote, err := a.writeOut(replies[i].name, replies[i].data, true)
		if err != nil {
			return err
		}
		if wrote {
			sent++
		}
	}
	n, err := a.sendAcks(ctx, fresh, nil)
	if err != nil {
		return err
	}
	note := "refused by the hub (" + code + "): " + reason
	if len(stored) > 0 {
		note += fmt.Sprintf("; %d earlier letter(s) of the file were stored and acknowledged", len(stored))
	}
	// The hub counted the refused letter already.
	return a.reject(pub, p.name, rejection{code: code, reason: note, acked: sent+n > 0, counted: true})
}
