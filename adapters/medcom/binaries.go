package medcom

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/adapters/medcom/oioxml"
)

// An XDIS91 letter names its files in BIN references; the files travel in
// an XBIN01 letter, in a file of its own with its own receipt. A round
// joins the two: a letter takes the bytes of each object it names whose
// XBIN01 letter is in the round, from the same sender to the same receiver
// about the same patient. An XBIN01 letter whose every object was taken is
// stored in no letter of its own: its receipt rides in the checkpoint of
// the letter that took its first object, so a repeated round answers it
// with the same bytes.
//
// A file whose letter names an object not in the round, or whose XBIN01
// letter was not taken, waits in in/ for its partner, for binary_wait from
// when it was written. Then it goes on alone: the letter with a note in the
// file's place naming it, the XBIN01 letter as a note of its own carrying
// its files. So a partner that comes late, or never, loses
// nothing.

// objectKey says which object a BIN reference can take.
type objectKey struct{ sender, receiver, patient, object string }

func patientKey(p oioxml.Patient) string {
	switch {
	case p.CPR != "":
		return "cpr:" + p.CPR
	case p.AlternativeID != "":
		return "alt:" + p.AlternativeID
	}
	return ""
}

func refKey(ce *oioxml.ClinicalEmail, ref *oioxml.BinObject) objectKey {
	return objectKey{ce.Sender.EAN, ce.Receiver.EAN, patientKey(ce.Patient), ref.Identifier}
}

// heldObject is an object of an XBIN01 letter in the round.
type heldObject struct {
	p   *prepared
	b   *oioxml.BinaryLetter
	obj *oioxml.BinaryObject
}

// joinable reports whether p is a valid OIOXML file that may take part.
func (p *prepared) joinable() bool {
	return p.err == nil && p.reject == "" && p.in != nil && p.in.err == nil && p.in.oio != nil
}

// binRef is a BIN reference of a letter.
type binRef struct {
	ce  *oioxml.ClinicalEmail
	bin *oioxml.BinObject
}

// bins lists the BIN references of p's letters.
func (p *prepared) bins() (refs []binRef) {
	for _, ce := range p.in.oio.Letters {
		for i := range ce.References {
			if b := ce.References[i].BIN; b != nil {
				refs = append(refs, binRef{ce, b})
			}
		}
	}
	return refs
}

// wantsPartners reports whether a file of preps may be the partner of a
// waiting file: it names a file, or carries files.
func wantsPartners(preps []*prepared) bool {
	for _, p := range preps {
		if p.joinable() && (len(p.in.oio.Binaries) > 0 || len(p.bins()) > 0) {
			return true
		}
	}
	return false
}

// joinBinaries joins the round's XBIN01 letters to the letters naming their
// objects, and marks the files that wait for a partner (p.waiting). It
// rebuilds the letters of the files it joins; it writes nothing.
func (a *Adapter) joinBinaries(ctx context.Context, preps []*prepared, now time.Time) {
	var parts []*prepared
	for _, p := range preps {
		if p.joinable() && (len(p.in.oio.Binaries) > 0 || len(p.bins()) > 0) {
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		return // nearly every round
	}
	objects := map[objectKey]heldObject{}
	for _, p := range parts {
		for _, b := range p.in.oio.Binaries {
			if b.SystemInformation || p.answered(b) {
				continue // about no patient, or a copy answered before
			}
			for i := range b.Objects {
				k := objectKey{b.Sender.EAN, b.Receiver.EAN, patientKey(b.Patient), b.Objects[i].Identifier}
				if _, dup := objects[k]; !dup {
					objects[k] = heldObject{p, b, &b.Objects[i]}
				}
			}
		}
	}
	// A file waits while it is young and misses a partner; a partner that
	// waits is missed too, so this runs until nothing changes.
	var taken map[*oioxml.BinaryLetter]map[string]bool
	for changed := true; changed; {
		changed = false
		taken = map[*oioxml.BinaryLetter]map[string]bool{}
		missing := map[*prepared]bool{}
		for _, p := range parts {
			if p.waiting {
				continue
			}
			for _, r := range p.bins() {
				h, ok := objects[refKey(r.ce, r.bin)]
				if !ok || h.p.waiting {
					if !a.holds(ctx, r.ce) {
						missing[p] = true
					}
					continue
				}
				if taken[h.b] == nil {
					taken[h.b] = map[string]bool{}
				}
				taken[h.b][h.obj.Identifier] = true
			}
		}
		for _, p := range parts {
			if p.waiting {
				continue
			}
			for _, b := range p.in.oio.Binaries {
				if len(taken[b]) < distinctObjects(b) && !p.answered(b) {
					missing[p] = true
				}
			}
			if missing[p] && now.Before(a.partnerDeadline(p, now)) {
				p.waiting, changed = true, true
			}
		}
	}
	// Who takes each fully taken XBIN01 letter: the first letter naming
	// one of its objects.
	takers := map[*oioxml.BinaryLetter]*prepared{}
	takerID := map[*oioxml.BinaryLetter]string{}
	for _, p := range parts {
		if p.waiting {
			continue
		}
		for _, r := range p.bins() {
			h, ok := objects[refKey(r.ce, r.bin)]
			if !ok || h.p.waiting || len(taken[h.b]) < distinctObjects(h.b) || takers[h.b] != nil {
				continue
			}
			takers[h.b], takerID[h.b] = p, oioxml.LetterID(r.ce.Sender.EAN, r.ce.Identifier)
		}
	}
	for _, p := range parts {
		if p.waiting {
			continue
		}
		joined := false
		in := oioxml.Input{Source: a.name, Data: p.data, Filename: p.name, Received: p.now,
			Object: func(ce *oioxml.ClinicalEmail, ref *oioxml.BinObject) []byte {
				h, ok := objects[refKey(ce, ref)]
				if !ok || h.p.waiting {
					return nil
				}
				joined = true
				return h.obj.Data
			},
			SkipBinary: func(b *oioxml.BinaryLetter) bool {
				if takers[b] == nil {
					return false
				}
				joined = true
				return true
			},
		}
		letters := p.in.oio.ToLetters(in)
		if !joined {
			continue
		}
		p.letters = letters
		for _, b := range p.in.oio.Binaries {
			if t := takers[b]; t != nil {
				id := oioxml.LetterID(b.Sender.EAN, b.Identifier)
				if p.joinedInto == nil {
					p.joinedInto = map[string]string{}
				}
				p.joinedInto[id] = takerID[b]
				if pa, tpa := p.ack(id), t.ack(takerID[b]); pa != nil && tpa != nil {
					tpa.with = append(tpa.with, pa.record())
				}
			}
		}
	}
	for _, p := range parts {
		if len(p.joinedInto) > 0 {
			a.log.Info("medcom: XBIN01 letter joined to the letter naming its files", "file", p.name, slog.Int("letters", len(p.joinedInto)))
		}
	}
}

// answered reports whether XBIN01 letter b of p was answered before: a
// copy of one joined to its letter, whose record the state store keeps
// (answer). It waits for no one and is answered the same again.
func (p *prepared) answered(b *oioxml.BinaryLetter) bool {
	pa := p.ack(oioxml.LetterID(b.Sender.EAN, b.Identifier))
	return pa != nil && p.known[pa.key] != nil
}

// holds reports whether the hub holds letter ce already: a copy naming a
// file waits for no XBIN01 letter, as the stored letter answers it.
func (a *Adapter) holds(ctx context.Context, ce *oioxml.ClinicalEmail) bool {
	if a.letters == nil {
		return false
	}
	_, err := a.letters.Checkpoint(ctx, a.name, oioxml.LetterID(ce.Sender.EAN, ce.Identifier))
	return err == nil
}

func distinctObjects(b *oioxml.BinaryLetter) int {
	seen := map[string]bool{}
	for _, o := range b.Objects {
		seen[o.Identifier] = true
	}
	return len(seen)
}

// partnerDeadline is when p stops waiting for a partner: binary_wait after
// it was written, or after this process first saw it waiting when its
// modification time is in the future. The deadline is kept, so a wait is
// never extended.
func (a *Adapter) partnerDeadline(p *prepared, now time.Time) time.Time {
	if d, ok := a.partnerWait[p.name]; ok {
		return d
	}
	from := p.written
	if from.After(now) {
		from = now
	}
	d := from.Add(a.cfg.BinaryWait)
	if a.partnerWait == nil {
		a.partnerWait = map[string]time.Time{}
	}
	a.partnerWait[p.name] = d
	return d
}

// waitForPartner puts a file that waits for its partner back into in/.
func (a *Adapter) waitForPartner(name string) {
	a.log.Info("medcom: file waits for the XDIS91 or XBIN01 letter it belongs with", "file", name, "until", a.partnerWait[name].Format(time.RFC3339))
	if err := os.Rename(filepath.Join(a.processing, name), filepath.Join(a.in, name)); err != nil {
		a.log.Error("medcom: file stays in processing until restart", "file", name, "err", err)
	}
}

// waitingUntil reports whether a file in in/ waits for its partner now, and
// until when.
func (a *Adapter) waitingUntil(name string, now time.Time) (time.Time, bool) {
	d, ok := a.partnerWait[name]
	return d, ok && now.Before(d)
}

// nextPartnerDeadline is how soon a waiting file's wait ends, 0 when none
// waits. Deadlines long past (a file removed while it waited) are dropped.
func (a *Adapter) nextPartnerDeadline(now time.Time) time.Duration {
	var next time.Duration
	for name, d := range a.partnerWait {
		switch left := d.Sub(now); {
		case left < -time.Hour:
			delete(a.partnerWait, name)
		case left > 0 && (next == 0 || left < next):
			next = left
		}
	}
	return next
}

// answerJoined is the receipt of XBIN01 letter pa of a file whose files the
// letter into took: kept in that letter's record, which given holds once
// the hub holds the letter. nil when it does not (the letter was put back
// or refused): the file is then tried again, and goes alone if it must.
func answerJoined(pa *plannedAck, into string, given map[string]*inRecord) *inRecord {
	tr := given[stateKey("in", into)]
	if tr == nil {
		return nil
	}
	for i := range tr.With {
		if tr.With[i].Key == pa.key {
			return &tr.With[i]
		}
	}
	return nil
}

var errPartnerNotStored = adapters.Retryable("partner_not_stored", "the letter naming the XBIN01 letter's files was not stored with them", nil)
