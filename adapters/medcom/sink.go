package medcom

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/adapters/body"
	"github.com/samhub/samhub/adapters/medcom/fhirmsg"
	"github.com/samhub/samhub/adapters/medcom/oioxml"
	"github.com/samhub/samhub/adapters/medcom/partscan"
	"github.com/samhub/samhub/internal/failpoint"
	"github.com/samhub/samhub/pipeline/letter"
)

// Deliver writes l to out/ in the configured format. The same letter id
// always maps to the same MedCom letter id and file, and a second delivery
// finds the first (Delivery.Existing) instead of writing again.
func (a *Adapter) Deliver(ctx context.Context, l *letter.Letter) (adapters.Delivery, error) {
	if l.Kind == letter.KindAcknowledgement || l.Kind == letter.KindNotification {
		return adapters.Delivery{}, adapters.Permanent("medcom_unsupported_kind", "acknowledgements and hub notifications are not sent as MedCom letters", nil)
	}
	key := stateKey("out", l.ID)
	var rec outRecord
	rev, found, err := getJSON(ctx, a.state, key, &rec)
	if err != nil {
		return adapters.Delivery{}, adapters.StateUnavailable("the hub's state store did not answer", err)
	}
	if found && !rec.Refused {
		return adapters.Delivery{RemoteID: rec.Ref, Existing: true}, nil
	}
	version := 0
	if found {
		version = rec.Version + 1 // sent again after the receiver refused it
	}
	now := a.now()
	format, err := a.formatFor(l)
	if err != nil {
		return adapters.Delivery{}, err
	}
	b, err := a.build(ctx, l, format, version, 0, now)
	if err != nil {
		return adapters.Delivery{}, err
	}
	ref, file := b.ref, b.file
	for _, part := range []*body.Body{b.data, b.bin} {
		if part != nil && part.Len() > a.cfg.OutMaxBytes {
			return adapters.Delivery{}, &adapters.TooLarge{Size: part.Len(), Limit: a.cfg.OutMaxBytes, Setting: "adapters." + a.name + ".out_max_bytes"}
		}
	}
	// Keep the letter for resends before it leaves, so a crash cannot lose it.
	if err := a.keepCopy(ctx, l); err != nil {
		if perr := body.Unreadable(err); perr != nil {
			return adapters.Delivery{}, perr
		}
		return adapters.Delivery{}, adapters.Retryable("medcom_write_failed", "could not store the letter for resending", err)
	}
	// The letter is written under a hidden name first, and the outbox
	// names it (with that name) before it is renamed into place:
	//   - a receiver that answers at once (a file picked up within
	//     milliseconds) finds its acknowledgement's letter in the outbox,
	//     else the acknowledgement could not be matched and the letter
	//     would wait for ack_timeout;
	//   - a delivery tried again after a crash, a lost answer or a cut
	//     from the state store, here or on another replica, finds the
	//     outbox entry: it puts the hidden file in place when it is still
	//     there, and else knows the file went out. Either way the letter
	//     leaves once; it is never written a second time for the GP to
	//     recognise as a repeat.
	// A hidden file is removed only when no outbox entry can name it.
	// The hidden file's name is made durable too: after a power cut, an
	// outbox entry must not name a file that never existed.
	// An XBIN01 letter is staged beside its letter and put in place just
	// before it, so the receiver finds the files when the letter arrives.
	var binStaged string
	if b.bin != nil {
		binStaged, err = stageBody(ctx, a.out, b.binFile, b.bin)
	}
	var staged string
	if err == nil {
		staged, err = stageBody(ctx, a.out, file, b.data)
	}
	if err == nil {
		err = syncDir(a.out)
	}
	if err != nil {
		if perr := body.Unreadable(err); perr != nil {
			return adapters.Delivery{}, perr
		}
		return adapters.Delivery{}, adapters.Retryable("medcom_write_failed", "could not write to the MedCom out directory", err)
	}
	earlier, err := a.addPending(ctx, &pending{Ref: ref, HubID: l.ID, Format: format, File: file, FirstSent: now, LastSent: now, Version: version, Staged: staged,
		BinaryRef: b.binRef, BinaryFile: b.binFile, BinaryStaged: binStaged})
	if err != nil {
		// The write may have landed all the same: the hidden file stays
		// for the next try to find (or to remove, below, when it did not).
		return adapters.Delivery{}, adapters.StateUnavailable("the hub's state store did not answer", err)
	}
	existing := false
	if earlier != nil && earlier.HubID == l.ID && earlier.Version == version {
		// An earlier try of this delivery got the letter as far as the
		// outbox: finish that one, write nothing of our own.
		existing = true
		if earlier.BinaryStaged != "" {
			if err := putInPlace(a.out, earlier.BinaryStaged, earlier.BinaryFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return adapters.Delivery{}, adapters.Retryable("medcom_write_failed", "could not write to the MedCom out directory", err)
			}
		}
		if earlier.Staged != "" {
			if err := putInPlace(a.out, earlier.Staged, earlier.File); err == nil {
				existing = false // it leaves now
			} else if !errors.Is(err, fs.ErrNotExist) {
				return adapters.Delivery{}, adapters.Retryable("medcom_write_failed", "could not write to the MedCom out directory", err)
			}
		}
		file = earlier.File
	} else if err := a.placeBoth(binStaged, b.binFile, staged, file); err != nil && !(errors.Is(err, fs.ErrNotExist) && earlier == nil) {
		// (Gone while our outbox entry names it is no failure: another
		// replica's try found the entry and put it in place.)
		if earlier != nil || a.forget(ctx, ref, l.ID, version) == nil {
			_ = os.Remove(filepath.Join(a.out, staged))
			if binStaged != "" {
				_ = os.Remove(filepath.Join(a.out, binStaged))
			}
		}
		return adapters.Delivery{}, adapters.Retryable("medcom_write_failed", "could not write to the MedCom out directory", err)
	}
	a.removeStaged(file)
	if b.binFile != "" {
		a.removeStaged(b.binFile)
	}
	failpoint.Kill(failpoint.MedComOutWritten)
	rec = outRecord{Ref: ref, File: file, Format: format, At: now, Version: version}
	rb, _ := json.Marshal(rec)
	if found {
		_, err = a.state.Update(ctx, key, rb, rev)
	} else {
		_, err = a.state.Create(ctx, key, rb)
	}
	if err != nil && !errors.Is(err, adapters.ErrExists) && !errors.Is(err, adapters.ErrConflict) {
		return adapters.Delivery{}, adapters.StateUnavailable("the hub's state store did not answer", err)
	}
	return adapters.Delivery{RemoteID: ref, Existing: existing}, nil
}

// placeBoth puts a staged XBIN01 letter (when there is one) and then its
// letter in place.
func (a *Adapter) placeBoth(binStaged, binFile, staged, file string) error {
	if binStaged != "" {
		if err := putInPlace(a.out, binStaged, binFile); err != nil {
			return err
		}
	}
	return putInPlace(a.out, staged, file)
}

// forget takes a letter whose file could not be written out of the
// outbox again, so the resend check does not send what the hub reports as
// not delivered (it is retried or parked). A failure to forget is logged:
// the delivery's own retry writes the file, or the coordinator's discard
// of a parked letter leaves at most one resend.
func (a *Adapter) forget(ctx context.Context, ref, hubID string, version int) error {
	p, _, err := a.pendingEntry(ctx, ref)
	if err == nil && p != nil && p.HubID == hubID && p.Version == version {
		err = a.removePending(ctx, ref)
	}
	if err != nil {
		a.log.Warn("medcom: a letter whose file was not written stays in the outbox", "letter_id", hubID, "err", err)
	}
	return err
}

// removeStaged removes what earlier tries left hidden in out/ for file
// once the letter is out: their outbox entry never landed (the one that
// did was put in place), so nothing will ever name them.
func (a *Adapter) removeStaged(file string) {
	removeNamed(a.out, func(n string) bool { return strings.HasPrefix(n, "."+file+".") && strings.HasSuffix(n, ".tmp") })
}

// removeNamed removes the files in dir whose names match, found in one
// directory read rather than by a glob: dir is configured and may hold
// glob metacharacters.
func removeNamed(dir string, match func(name string) bool) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if match(e.Name()) {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// formatFor picks the format of the letter's receiver: the first format
// of its receiver directory entry this adapter writes; a GP without an
// entry takes the FHIR CareCommunication, which GPs and municipalities
// exchange since 2025 (in out_format's encoding when that is a FHIR one,
// else XML); anyone else the adapter's out_format. The receiver
// is the one the pipeline resolved (l.To), never a party picked from the
// letter's own recipient list.
func (a *Adapter) formatFor(l *letter.Letter) (string, error) {
	if len(l.To) != 1 {
		return "", adapters.Permanent("receiver_unresolved", fmt.Sprintf("a MedCom letter goes to exactly one receiver; this delivery names %d (resolve the receiver in the document or the receiver directory)", len(l.To)), nil)
	}
	to := l.To[0]
	if to.GLN == "" && to.SOR == "" {
		return "", adapters.Permanent("receiver_unresolved", "the receiver has neither a GLN nor a SOR code, so no MedCom letter can be addressed to it", nil)
	}
	for _, f := range to.Accepts {
		switch f {
		case OutXDIS91, OutFHIRXML, OutFHIRJSON:
			return f, nil
		}
	}
	if len(to.Accepts) > 0 {
		return "", adapters.Permanent("receiver_format", "the receiver directory lists no MedCom format this adapter writes for the receiver", nil)
	}
	if to.Role == letter.RoleGP && a.cfg.OutFormat == OutXDIS91 {
		return OutFHIRXML, nil
	}
	return a.cfg.OutFormat, nil
}

// built is a letter as written: its file, and for an XDIS91 letter with
// files the XBIN01 letter carrying them, in a file of its own.
type built struct {
	data      *body.Body
	ref, file string
	bin       *body.Body // nil when there are no files
	binFile   string
	binRef    string // the XBIN01 letter's MedCom reference
}

// build writes transmission number n (0 = first) of version v of l in
// format, to the receiver l.To[0]. The MedCom letter id (XDIS91
// Letter/Identifier, FHIR MessageHeader.id) derives from l.ID and the
// version, and never changes for resends; the envelope id
// (Envelope/Identifier, Bundle.id) is new for every transmission.
func (a *Adapter) build(ctx context.Context, l *letter.Letter, format string, v, n int, now time.Time) (built, error) {
	base := l.ID
	if v > 0 {
		base = fmt.Sprintf("%s|v%d", l.ID, v)
	}
	if len(l.To) != 1 {
		return built{}, adapters.Permanent("receiver_unresolved", "the delivery has no single resolved receiver", nil)
	}
	to := l.To[0]
	reply, err := a.repliedTo(ctx, l)
	if err != nil {
		return built{}, err
	}
	// The party the letter answers, when it is the receiver: its own
	// identifiers (e.g. an XDIS91 ydernummer) address it best.
	answersReceiver := reply != nil && ((to.GLN != "" && to.GLN == reply.SenderEAN) || (to.SOR != "" && to.SOR == reply.SenderSOR))
	if answersReceiver {
		if to.SOR == "" {
			to.SOR = reply.SenderSOR
		}
		if to.Name == "" {
			to.Name = reply.SenderName
		}
	}
	switch format {
	case OutXDIS91:
		opt := oioxml.LetterOptions{Now: now, EnvelopeID: oioxml.StableID(fmt.Sprintf("%s|envelope|%d", base, n)), LetterID: oioxml.StableID(base)}
		rcv := oioxml.PartyFromLetter(to)
		if answersReceiver && reply.Format == oioxml.Format {
			rcv = oioxml.Party{EAN: reply.SenderEAN, Identifier: reply.SenderIdentifier, IdentifierCode: reply.SenderIdentifierCode, OrganisationName: reply.SenderName}
		}
		// A reply carries the answered letter's episode-of-care id over
		// (a FHIR one without its hyphens, when it fits XDIS91's 35).
		if answersReceiver && len(strings.ReplaceAll(reply.Episode, "-", "")) <= 35 {
			opt.EpisodeOfCareID = reply.Episode
		}
		opt.Receiver = &rcv
		if a.cfg.Self.GLN != "" {
			self := oioxml.PartyFromLetter(letter.Party{GLN: a.cfg.Self.GLN, SOR: a.cfg.Self.SOR, Name: a.cfg.Self.Name})
			opt.Sender = &self
		}
		// XDIS91 carries no file itself: the letter names its files in BIN
		// references, and an XBIN01 letter of its own carries them.
		opt.Files = oioxml.HasFiles(l)
		x, err := oioxml.BuildLetter(l, opt)
		if err != nil {
			return built{}, adapters.Permanent("medcom_cannot_build", "the letter cannot be written as XDIS91: "+oneLine(err), err)
		}
		b := built{data: &body.Body{}}
		b.data.Write(x)
		snd := a.cfg.Self.GLN
		if snd == "" {
			snd = l.Sender.GLN
		}
		id := oioxml.StableID(base)
		suffix := ""
		if n > 0 {
			suffix = fmt.Sprintf("-r%d", n)
		}
		b.ref, b.file = oioxml.LetterID(snd, id), "xdis91-"+id+suffix+".xml"
		if opt.Files {
			opt.EnvelopeID = oioxml.StableID(fmt.Sprintf("%s|xbin01-envelope|%d", base, n))
			if b.bin, err = oioxml.WriteBinaryLetter(l, opt); err != nil {
				return built{}, adapters.Permanent("medcom_cannot_build", "the letter's files cannot be written as XBIN01: "+oneLine(err), err)
			}
			bid := oioxml.BinaryLetterID(id)
			b.binRef, b.binFile = oioxml.LetterID(snd, bid), "xbin01-"+bid+suffix+".xml"
		}
		return b, nil
	default:
		enc, ext := fhirmsg.EncodingXML, "xml"
		if format == OutFHIRJSON {
			enc, ext = fhirmsg.EncodingJSON, "json"
		}
		opt := fhirmsg.BuildOptions{
			Encoding: enc, Mode: fhirmsg.ModeNew, Now: now,
			Self:     fhirmsg.Organization{Name: a.cfg.Self.Name, SOR: a.cfg.Self.SOR, GLN: a.cfg.Self.GLN},
			HeaderID: uuid.NewSHA1(uuid.NameSpaceOID, []byte("samhub|header|"+base)).String(),
			BundleID: uuid.NewSHA1(uuid.NameSpaceOID, []byte(fmt.Sprintf("samhub|bundle|%s|%d", base, n))).String(),
		}
		opt.To = fhirmsg.Organization{Name: to.Name, SOR: to.SOR, GLN: to.GLN}
		if reply != nil && answersReceiver {
			opt.Mode = fhirmsg.ModeReply
			if reply.Episode != "" {
				// In FHIR's hyphenated form; an XDIS91 letter's issuer is its
				// sender, the receiver here (EpisodeOfCare.System empty).
				opt.Episode = &fhirmsg.EpisodeOfCare{System: reply.EpisodeSystem, Value: hyphenated(reply.Episode)}
			}
			if reply.Format == oioxml.Format {
				// As the IG's reply to an OIOXML message (Examples page;
				// Bundle k7bfbc0c, Communication f54efd18): its own segment
				// only, the XDIS91 letter not made into segments, and the
				// Provenance's revision entity naming the letter.
				opt.PreviousHeaderID = reply.HubID // "GLN#letterid", MedCom's OIOXML reference form
				opt.ThreadID = l.ThreadID
				if opt.ThreadID == "" || !strings.HasPrefix(opt.ThreadID, "urn:uuid:") {
					opt.ThreadID = "urn:uuid:" + uuid.NewSHA1(uuid.NameSpaceOID, []byte("samhub|thread|"+reply.HubID)).String()
				}
			} else {
				opt.PreviousHeaderID, opt.ThreadID = reply.HeaderID, reply.ThreadID
				if opt.Previous, err = a.answered(ctx, l, reply); err != nil {
					return built{}, err
				}
			}
		}
		data, hid, err := fhirmsg.WriteCareCommunication(a.forFHIR(l), opt)
		if err != nil {
			return built{}, adapters.Permanent("medcom_cannot_build", "the letter cannot be written as a FHIR CareCommunication: "+oneLine(err), err)
		}
		return built{data: data, ref: hid, file: "fhir-" + opt.BundleID + "." + ext}, nil
	}
}

// forFHIR fits a letter to the CareCommunication's code rules: exactly one
// category from MedCom's list (letters from the case system carry none, so
// the adapter's default_category), and a priority only with the category
// regarding-referral, as MedCom's XDIS91-to-FHIR mapping does. MedCom
// takes routine or asap: FHIR's urgent and stat (an EPJ letter's) are
// asap, as they are høj_prioritet in XDIS91.
func (a *Adapter) forFHIR(l *letter.Letter) *letter.Letter {
	c := *l
	if !slices.Contains(fhirmsg.Categories, c.Category) {
		c.Category = a.cfg.DefaultCategory
	}
	switch {
	case c.Category != "regarding-referral":
		c.Priority = ""
	case c.Priority == "urgent" || c.Priority == "stat":
		c.Priority = "asap"
	}
	return &c
}

// repliedTo finds the inbound letter l answers, if this adapter received
// it: from the checkpoint stored with that letter, else (a letter stored
// before checkpoints, or one answered under another key) from the state
// store.
func (a *Adapter) repliedTo(ctx context.Context, l *letter.Letter) (*inRecord, error) {
	if l.InReplyTo == "" {
		return nil, nil
	}
	if a.letters != nil {
		cp, err := a.letters.Checkpoint(ctx, a.name, l.InReplyTo)
		if err != nil && !errors.Is(err, adapters.ErrNotFound) {
			// Addressed without it the reply would be another letter.
			return nil, adapters.Retryable("hub_unavailable", "the letter this one answers could not be read from the hub", err)
		}
		if rec, ok := readCheckpoint(cp); ok && !rec.Negative {
			return &rec, nil
		}
	}
	for _, id := range []string{l.InReplyTo, "fhir#" + l.InReplyTo} {
		var rec inRecord
		if _, found, err := getJSON(ctx, a.state, stateKey("in", id), &rec); err == nil && found && !rec.Negative {
			return &rec, nil
		}
	}
	return nil, nil
}

// answered reads the FHIR CareCommunication a reply answers from the
// original the hub stored, for the reply to carry the thread.
//
// MedCom's CareCommunication IG (build.fhir.org/ig/medcomdk/
// dk-medcom-carecommunication): the Communication profile page, "Content
// of the message segments", says a reply must include all previous
// message segments with message text, and earlier attachments by their
// identifier without their data or url; the Provenance profile page says
// its previousMessage slice refers to the previous message; the Examples
// page's flow (2nd and 3rd message) and the test scripts' Provenance
// count carry one Provenance per message of the thread. The answered
// message already carries the thread before it, so its segments and
// Provenances are the thread's: the builder repeats them (attachments
// without data) and adds ours, whose revision entity names it.
//
// nil when the original cannot be had or read (past retention, its blob
// gone or damaged, not a CareCommunication, another message): the reply
// then goes out with its own segment and the revision reference, as
// before, and a log line says so. Only a store that does not answer is
// an error, retryable as repliedTo's.
func (a *Adapter) answered(ctx context.Context, l *letter.Letter, rec *inRecord) (*fhirmsg.Message, error) {
	if a.letters == nil {
		return nil, nil
	}
	id := rec.HubID
	if id == "" {
		id = l.InReplyTo
	}
	without := func(reason string) (*fhirmsg.Message, error) {
		a.log.Info("medcom: the reply carries only its own segment; the letter it answers could not be read for the thread's earlier segments",
			"letter_id", l.ID, "answers", id, "reason", reason)
		return nil, nil
	}
	unavailable := func(err error) (*fhirmsg.Message, error) {
		return nil, adapters.Retryable("hub_unavailable", "the letter this one answers could not be read from the hub", err)
	}
	o, err := a.letters.Original(ctx, a.name, id)
	switch {
	case errors.Is(err, adapters.ErrNotFound):
		return without("not_stored")
	case err != nil:
		return unavailable(err)
	}
	src := &originalSource{ctx: ctx, o: o}
	m, err := fhirmsg.ParsePrevious(src, a.lim)
	switch {
	case src.err != nil && errors.Is(src.err, adapters.ErrNotFound):
		return without("not_stored")
	case src.err != nil:
		return unavailable(src.err)
	case err != nil:
		return without("unreadable")
	case m.Event != fhirmsg.EventCareCommunication || (rec.HeaderID != "" && m.HeaderID != rec.HeaderID):
		return without("another_message")
	}
	return m, nil
}

// originalSource is a stored original as a partscan.Source: its bytes
// when inline, else opened again for each read (a blob is read from its
// start; what lies before off is skipped). err keeps the first failure
// of the store, which the scan would report as any other.
type originalSource struct {
	ctx context.Context
	o   letter.Original
	err error
}

func (s *originalSource) Open(off int64) (io.ReadCloser, error) {
	if s.o.Inline() {
		return partscan.File(bytes.NewReader(s.o.Data), int64(len(s.o.Data))).Open(off)
	}
	r, err := s.o.Open(s.ctx)
	if err != nil {
		return nil, s.failed(err)
	}
	rr := &sourceReader{ReadCloser: r, s: s}
	if _, err := io.CopyN(io.Discard, rr, off); err != nil {
		r.Close()
		return nil, err
	}
	return rr, nil
}

func (s *originalSource) failed(err error) error {
	if s.err == nil {
		s.err = err
	}
	return err
}

type sourceReader struct {
	io.ReadCloser
	s *originalSource
}

func (r *sourceReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		r.s.failed(err)
	}
	return n, err
}

// hyphenated writes a 32-hex episode-of-care id (OIOXML's form) as the
// UUID FHIR writes for the same value (medcom.md §1.4); others unchanged.
func hyphenated(e string) string {
	if len(e) == 32 && strings.Trim(strings.ToLower(e), "0123456789abcdef") == "" {
		e = strings.ToLower(e)
		return e[0:8] + "-" + e[8:12] + "-" + e[12:16] + "-" + e[16:20] + "-" + e[20:]
	}
	return e
}

func oneLine(err error) string {
	s := strings.Join(errLines(err), "; ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// copyStem names the files of letter hubID's copy: stem.json and, for
// attachments kept in files of their own, stem.att-1, stem.att-2, ….
func copyStem(hubID string) string { return stateKey("out", hubID) }

// copyPath is where the copy of letter hubID is kept in dir (a.sent, or
// a.oldSent for a copy an earlier version kept).
func copyPath(dir, hubID string) string { return filepath.Join(dir, copyStem(hubID)+".json") }

// partPath is where the copy of a letter's attachment i is kept.
func partPath(dir, hubID string, i int) string {
	return filepath.Join(dir, copyStem(hubID)+fmt.Sprintf(".att-%d", i+1))
}

// keepCopy keeps what a resend rebuilds the letter from: the letter
// without its original (the MedCom letter is written from the fields and
// attachments, never the original), and each attachment that is not
// inline in a file of its own, copied from its reader. The files come
// first, so a copy never lacks its attachments.
func (a *Adapter) keepCopy(ctx context.Context, l *letter.Letter) error {
	c := *l
	c.Original = letter.Original{ContentType: l.Original.ContentType, Filename: l.Original.Filename, SHA256: l.Original.SHA256}
	c.Attachments = append([]letter.Attachment(nil), l.Attachments...)
	for i, at := range c.Attachments {
		if at.Inline() {
			continue
		}
		var b body.Body
		b.Part(fmt.Sprintf("attachment %d", i+1), at.Open, at.Len(), body.Raw)
		path := partPath(a.sent, l.ID, i)
		if err := writeBody(ctx, filepath.Dir(path), filepath.Base(path), &b); err != nil {
			return err
		}
		c.Attachments[i] = at.WithOpener(nil)
	}
	b, err := letter.Marshal(&c)
	if err != nil {
		return err
	}
	return writeAtomic(a.sent, filepath.Base(copyPath(a.sent, l.ID)), b)
}

// loadCopy reads the copy keepCopy kept, its attachments opening from
// their files; a copy an earlier version kept in the hub's data
// directory is read from there.
func (a *Adapter) loadCopy(hubID string) (*letter.Letter, error) {
	dir := a.sent
	b, err := os.ReadFile(copyPath(dir, hubID))
	if errors.Is(err, fs.ErrNotExist) && a.oldSent != "" {
		dir = a.oldSent
		b, err = os.ReadFile(copyPath(dir, hubID))
	}
	if err != nil {
		return nil, err
	}
	l, err := letter.Unmarshal(b)
	if err != nil {
		return nil, err
	}
	for i, at := range l.Attachments {
		if at.Inline() || at.Len() == 0 {
			continue
		}
		path := partPath(dir, hubID, i)
		l.Attachments[i] = at.WithOpener(func(context.Context) (io.ReadCloser, error) { return os.Open(path) })
	}
	return l, nil
}

// removeCopy drops the copy of an acknowledged or refused letter.
func (a *Adapter) removeCopy(hubID string) {
	for _, dir := range []string{a.sent, a.oldSent} {
		if dir == "" {
			continue
		}
		_ = os.Remove(copyPath(dir, hubID))
		parts := copyStem(hubID) + ".att-"
		removeNamed(dir, func(n string) bool { return strings.HasPrefix(n, parts) })
	}
}

// CheckAcks flags letters without an acknowledgement after ack_timeout (log
// line and the samhub_medcom_acks_missing gauge) and resends them, each
// ack_timeout, at most max_resends times; every few minutes it also
// removes what unfinished deliveries left and handled files past
// processed_max_age (orphans.go). Run calls it on every poll.
func (a *Adapter) CheckAcks(ctx context.Context) error {
	now := a.now()
	type resend struct {
		ref string
		p   pending
	}
	var todo []resend
	missing := 0
	ob, err := a.outboxEntries(ctx)
	if err != nil {
		return err
	}
	staged, held := map[string]bool{}, map[string]bool{} // what the outbox names (sweepOrphans)
	for ref, p := range ob {
		held[copyStem(p.HubID)] = true
		if p.Staged != "" {
			staged[p.Staged] = true
		}
		if p.BinaryStaged != "" {
			staged[p.BinaryStaged] = true
		}
		if now.Sub(p.FirstSent) < a.cfg.AckTimeout {
			continue
		}
		missing++
		if !p.Flagged {
			flagged := false
			if err := a.changePending(ctx, ref, func(q *pending) bool {
				flagged = !q.Flagged
				q.Flagged = true
				return flagged
			}); err != nil {
				return err
			}
			if flagged {
				a.log.Warn("medcom: no acknowledgement within ack_timeout", "letter_id", p.HubID, "ack_timeout", a.cfg.AckTimeout)
			}
		}
		if p.Resends < *a.cfg.MaxResends && now.Sub(p.LastSent) >= a.cfg.AckTimeout {
			todo = append(todo, resend{ref, *p})
		}
	}
	a.missing.Set(float64(missing))
	if a.sweep.due(time.Now()) {
		a.sweepOrphans(staged, held)
		a.expireProcessed()
	}
	for _, r := range todo {
		if err := a.resend(ctx, r.ref, r.p, now); err != nil {
			a.log.Warn("medcom: resend failed", "letter_id", r.p.HubID, "err", err)
		}
	}
	return nil
}

func (a *Adapter) resend(ctx context.Context, ref string, p pending, now time.Time) error {
	l, err := a.loadCopy(p.HubID)
	if err != nil {
		return err
	}
	n := p.Resends + 1
	format := p.Format
	if format == "" { // outboxes written before formats were per receiver
		format = a.cfg.OutFormat
	}
	b, err := a.build(ctx, l, format, p.Version, n, now)
	if err != nil {
		return err
	}
	if b.bin != nil {
		if err := writeBody(ctx, a.out, b.binFile, b.bin); err != nil {
			return err
		}
	}
	if err := writeBody(ctx, a.out, b.file, b.data); err != nil {
		return err
	}
	a.log.Info("medcom: letter resent without acknowledgement", "letter_id", p.HubID, "resend", n)
	return a.changePending(ctx, ref, func(q *pending) bool {
		q.Resends, q.LastSent, q.File, q.BinaryFile = n, now, b.file, b.binFile
		return true
	})
}
