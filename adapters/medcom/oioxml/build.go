package oioxml

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/beevik/etree"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/unicode/norm"

	"github.com/samhub/samhub/adapters/body"
	"github.com/samhub/samhub/adapters/medcom/xmlsafe"
	"github.com/samhub/samhub/pipeline/letter"
)

// Written OIOXML is ISO-8859-1: it survives conversion to EDIFACT (UNOC) on
// the way through VANS (medcom.md §1.5).
const outCharset = "ISO-8859-1"

// LetterOptions controls BuildLetter. Zero values take the defaults named.
type LetterOptions struct {
	EnvelopeID          string    // new for every transmission, resends included; random when empty
	LetterID            string    // stable across resends; StableID(l.ID) when empty
	Now                 time.Time // envelope and authorisation time; time.Now when zero
	Sender, Receiver    *Party    // default: derived from l.Sender and l.Receivers[0]
	AcknowledgementCode string    // default pluspositivkvitt (we want to know it arrived)
	StatusCode          string    // default nytbrev
	EpisodeOfCareID     string    // default: l.Meta[MetaEpisodeOfCareID]
	// Files names each file of l (an attachment that is not a link) in a
	// BIN reference, for an XBIN01 letter that BuildBinaryLetter writes
	// with the same options. Without it a letter with files is refused:
	// XDIS91 itself carries none, and a file must not be left out.
	Files bool
}

// ReplyOptions answers an inbound XDIS91 letter: the receiver is its sender
// with the identifiers it used, the sender is the party it was addressed to,
// and the episode-of-care id is carried over (MedCom requires that of replies).
func ReplyOptions(to *ClinicalEmail) LetterOptions {
	snd, rcv := to.Receiver, to.Sender
	rcv.MedicalSpecialityCode, rcv.Telephone = "", ""
	if snd.OrganisationName == "" {
		snd.OrganisationName = "Samhub"
	}
	return LetterOptions{Sender: &snd, Receiver: &rcv, EpisodeOfCareID: to.EpisodeOfCareIdentifier}
}

// StableID derives a 14-character OIOXML identifier from key, so the same
// hub letter always gets the same XDIS91 letter id (idempotent delivery).
func StableID(key string) string {
	sum := sha256.Sum256([]byte(key))
	return b32.EncodeToString(sum[:])[:14]
}

// NewID returns a random 14-character identifier (envelope ids).
func NewID() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return b32.EncodeToString(b[:])[:14]
}

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// PartyFromLetter derives XDIS91 sender/receiver identifiers: a municipality
// number as kommunenummer, a SOR id as sorkode, otherwise the GLN itself as
// lokationsnummer.
func PartyFromLetter(p letter.Party) Party {
	out := Party{EAN: p.GLN, OrganisationName: clip(p.Name, 35), DepartmentName: clip(p.Unit, 35)}
	switch {
	case p.Municipality != "":
		out.Identifier, out.IdentifierCode = p.Municipality, "kommunenummer"
	case p.SOR != "":
		out.Identifier, out.IdentifierCode = p.SOR, "sorkode"
	default:
		out.Identifier, out.IdentifierCode = p.GLN, "lokationsnummer"
	}
	return out
}

// BuildLetter writes l as an XDIS91 Emessage (XD9134L, ISO-8859-1). It
// returns *FieldError values (joined) when l cannot be expressed in XDIS91.
func BuildLetter(l *letter.Letter, opt LetterOptions) ([]byte, error) {
	opt.defaults(l)
	if opt.EpisodeOfCareID == "" {
		opt.EpisodeOfCareID = l.Meta[MetaEpisodeOfCareID]
	}
	w := &writer{}
	snd, rcv := parties(l, opt)

	doc := etree.NewDocument()
	doc.CreateProcInst("xml", `version="1.0" encoding="`+outCharset+`"`)
	root := doc.CreateElement("Emessage")
	root.CreateAttr("xmlns", NS2006)
	envelope(root, opt.Now, opt.EnvelopeID, opt.AcknowledgementCode)

	const p = "Emessage/ClinicalEmail[1]"
	ce := root.CreateElement("ClinicalEmail")
	le := ce.CreateElement("Letter")
	w.add(le, p+"/Letter", "Identifier", opt.LetterID)
	w.add(le, p+"/Letter", "VersionCode", VersionXD9134L)
	w.add(le, p+"/Letter", "StatisticalCode", "XDIS91")
	dateTime(le.CreateElement("Authorisation"), opt.Now)
	w.add(le, p+"/Letter", "TypeCode", "XDIS91")
	w.add(le, p+"/Letter", "StatusCode", opt.StatusCode)
	w.opt(le, p+"/Letter", "EpisodeOfCareIdentifier", strings.ReplaceAll(opt.EpisodeOfCareID, "-", ""))
	w.party(ce.CreateElement("Sender"), p+"/Sender", snd, true)
	w.party(ce.CreateElement("Receiver"), p+"/Receiver", rcv, false)

	pe := ce.CreateElement("Patient")
	pp := p + "/Patient"
	w.patient(pe, pp, l.Patient)
	w.add(pe, pp, "EpisodeOfCareStatusCode", "inaktiv")

	prio := map[string]string{"routine": "rutine", "asap": "høj_prioritet", "urgent": "høj_prioritet", "stat": "høj_prioritet"}[l.Priority]
	if prio != "" || l.Subject != "" {
		ai := ce.CreateElement("AdditionalInformation")
		w.opt(ai, p+"/AdditionalInformation", "Priority", prio)
		w.opt(ai, p+"/AdditionalInformation", "Subject", clip(l.Subject, 70))
	}
	// References: every file must have one (its bytes travel in XBIN01);
	// links take the room left of XDIS91's ten. A link that finds none,
	// or is longer than a Reference/URL may be, ends the text instead, so
	// the receiver still gets it.
	files := 0
	for _, a := range l.Attachments {
		if a.ContentType != "text/uri-list" {
			files++
		}
	}
	if files > maxReferences {
		w.fail(p+"/Reference", "XDIS91 names at most %d references; the letter has %d files, and a file must not be left out", maxReferences, files)
	}
	room := maxReferences - files
	asRef := make([]bool, len(l.Attachments))
	var inText []string
	for i, a := range l.Attachments {
		if a.ContentType != "text/uri-list" {
			asRef[i] = true
			continue
		}
		url := strings.TrimSpace(string(a.Data))
		if room > 0 && utf8.RuneCountInString(url) <= maxURL {
			asRef[i], room = true, room-1
			continue
		}
		inText = append(inText, strings.TrimSpace(a.Name)+": "+url)
	}
	body := l.Text
	if len(inText) > 0 {
		if body != "" {
			body += "\n\n"
		}
		body += "Links:\n" + strings.Join(inText, "\n")
	}
	// Split what will be written: a replaced "…" is three characters.
	text, _ := toLatin1(body)
	blocks := textBlocks(text, strings.TrimSpace(l.Subject) != "")
	if len(blocks) > maxTextBlocks {
		w.fail(p+"/ClinicalInformation", "the text is too long for XDIS91: it needs %d blocks, and XDIS91 carries %d blocks of %d lines of %d characters (about 31,000 characters), what survives conversion to EDIFACT on the way; shorten it or send it as a FHIR CareCommunication", len(blocks), maxTextBlocks, blockLines, edifactLine)
		blocks = nil
	}
	for i, block := range blocks {
		t01 := ce.CreateElement("ClinicalInformation").CreateElement("Text01")
		w.formatted(t01, fmt.Sprintf("%s/ClinicalInformation[%d]/Text01", p, i+1), block)
	}
	n := 0
	for i, a := range l.Attachments {
		link := a.ContentType == "text/uri-list"
		switch {
		case !asRef[i]:
			continue // in the text
		case !link && !opt.Files:
			w.fail(fmt.Sprintf("%s/Reference[%d]", p, n+1), "the letter carries a file (%s) and XDIS91 carries none itself; it travels in an XBIN01 letter, which this writer was not asked to name", a.ContentType)
			continue
		case n == maxReferences:
			continue // too many files: refused above
		}
		n++
		rp := fmt.Sprintf("%s/Reference[%d]", p, n)
		re := ce.CreateElement("Reference")
		w.add(re, rp, "RefDescription", clip(a.Name, 70))
		if link {
			w.add(re, rp, "URL", strings.TrimSpace(string(a.Data)))
			continue
		}
		code, ext := objectCodes(a)
		be := re.CreateElement("BIN")
		w.add(be, rp+"/BIN", "ObjectIdentifier", ObjectID(opt.LetterID, i+1))
		w.add(be, rp+"/BIN", "ObjectCode", code)
		w.add(be, rp+"/BIN", "ObjectExtensionCode", ext)
		w.add(be, rp+"/BIN", "OriginalObjectSize", strconv.FormatInt(max(a.Len(), 1), 10))
	}
	return finish(doc, w.errs, "letter")
}

// patient writes the child's identifier and names, as XDIS91 and XBIN01
// have them.
func (w *writer) patient(pe *etree.Element, pp string, pat *letter.Patient) {
	switch {
	case pat == nil:
		w.fail(pp, "the letter has no patient; XDIS91 requires one")
	case pat.CPR != "":
		w.add(pe, pp, "CivilRegistrationNumber", pat.CPR)
	case pat.ReplacementID != "":
		if n := utf8.RuneCountInString(pat.ReplacementID); n != 10 {
			w.fail(pp+"/AlternativeIdentifier", "XDIS91 takes a replacement CPR of exactly 10 characters; the child's has %d", n)
		}
		w.add(pe, pp, "AlternativeIdentifier", pat.ReplacementID)
	default:
		w.add(pe, pp, "CivilRegistrationNumber", "0000000000") // the XSD's "required but unknown"
	}
	if pat != nil {
		// XDIS91 requires a surname and has no way to say it is unknown
		// (FHIR has data-absent-reason). No MedCom guidance covers an
		// XDIS91 letter for such a child, so none is made up ("Ukendt"
		// would read as the child's name) and no blank is sent (valid
		// XSD, but an EDIFACT conversion on the way may refuse it): the
		// letter fails for good with the reason, so the coordinator can
		// record the name or have it sent as a CareCommunication.
		if strings.TrimSpace(pat.FamilyName) == "" {
			w.fail(pp+"/PersonSurnameName", "the child's family name is unknown and XDIS91 requires one; record the family name, or send the letter as a FHIR CareCommunication, which can say the name is unknown")
		} else {
			w.add(pe, pp, "PersonSurnameName", pat.FamilyName)
		}
		w.opt(pe, pp, "PersonGivenName", strings.TrimSpace(pat.GivenName))
	}
}

// defaults fills in the options left empty (see LetterOptions).
func (opt *LetterOptions) defaults(l *letter.Letter) {
	if opt.Now.IsZero() {
		opt.Now = time.Now()
	}
	if opt.EnvelopeID == "" {
		opt.EnvelopeID = NewID()
	}
	if opt.LetterID == "" {
		opt.LetterID = StableID(l.ID)
	}
	if opt.AcknowledgementCode == "" {
		opt.AcknowledgementCode = AckWanted
	}
	if opt.StatusCode == "" {
		opt.StatusCode = "nytbrev"
	}
}

// parties are the sender and receiver a letter is written with.
func parties(l *letter.Letter, opt LetterOptions) (snd, rcv Party) {
	if opt.Sender != nil {
		snd = *opt.Sender
	} else {
		snd = PartyFromLetter(l.Sender)
	}
	if opt.Receiver != nil {
		rcv = *opt.Receiver
	} else if len(l.Receivers) > 0 {
		rcv = PartyFromLetter(l.Receivers[0])
		// A reply to an XDIS91 letter goes back with the identifiers it came with.
		if id, ok := l.Meta[MetaSenderID]; ok && l.Meta[MetaSenderEAN] == rcv.EAN {
			rcv.IdentifierCode, rcv.Identifier, _ = strings.Cut(id, ":")
		}
	}
	if snd.OrganisationName == "" {
		snd.OrganisationName = "Samhub"
	}
	return snd, rcv
}

// HasFiles reports whether l carries a file, which XDIS91 sends in an
// XBIN01 letter of its own.
func HasFiles(l *letter.Letter) bool {
	for _, a := range l.Attachments {
		if a.ContentType != "text/uri-list" {
			return true
		}
	}
	return false
}

// ObjectID is the ObjectIdentifier of attachment n (from 1) of the XDIS91
// letter letterID, in its BIN reference and in its XBIN01 letter.
func ObjectID(letterID string, n int) string {
	return StableID(fmt.Sprintf("%s|object|%d", letterID, n))
}

// BinaryLetterID is the id of the XBIN01 letter carrying the files of the
// XDIS91 letter letterID.
func BinaryLetterID(letterID string) string { return StableID(letterID + "|xbin01") }

// objectCodes picks MedCom's ObjectCode and ObjectExtensionCode for a file,
// by its media type, else its name's extension.
func objectCodes(a letter.Attachment) (code, ext string) {
	for e, ct := range extensionMIME {
		if ct == strings.ToLower(strings.TrimSpace(strings.Split(a.ContentType, ";")[0])) {
			ext = e
			break
		}
	}
	if ext == "" {
		if i := strings.LastIndexByte(a.Name, '.'); i >= 0 && slices.Contains(objectExtensionCodes, strings.ToLower(a.Name[i+1:])) {
			ext = strings.ToLower(a.Name[i+1:])
		} else {
			ext = "bin"
		}
	}
	switch {
	case strings.HasPrefix(extensionMIME[ext], "image/"):
		return "billede", ext
	case ext == "bin" || ext == "zip" || ext == "dcm":
		return "proprietaert_indhold", ext
	}
	return "tekstfil", ext
}

// BuildBinaryLetter writes the XBIN01 letter (XB0130X, in an Emessage of
// its own, ISO-8859-1) carrying the files BuildLetter named with the same
// options. Its identifier is BinaryLetterID(opt.LetterID); opt.EnvelopeID
// must differ from the letter's. Each file's bytes must be inline.
func BuildBinaryLetter(l *letter.Letter, opt LetterOptions) ([]byte, error) {
	return buildBinaryLetter(l, opt, nil)
}

// WriteBinaryLetter is BuildBinaryLetter for files whose bytes are not at
// hand (a stored attachment): each is read, in base64, as the body is
// written.
func WriteBinaryLetter(l *letter.Letter, opt LetterOptions) (*body.Body, error) {
	parts := &body.Template{}
	doc, err := buildBinaryLetter(l, opt, parts)
	if err != nil {
		return nil, err
	}
	return parts.Body(doc)
}

func buildBinaryLetter(l *letter.Letter, opt LetterOptions, parts *body.Template) ([]byte, error) {
	opt.defaults(l)
	w := &writer{}
	snd, rcv := parties(l, opt)
	doc := etree.NewDocument()
	doc.CreateProcInst("xml", `version="1.0" encoding="`+outCharset+`"`)
	root := doc.CreateElement("Emessage")
	root.CreateAttr("xmlns", NS2005)
	envelope(root, opt.Now, opt.EnvelopeID, opt.AcknowledgementCode)
	const p = "Emessage/BinaryLetter[1]"
	bl := root.CreateElement("BinaryLetter")
	le := bl.CreateElement("Letter")
	w.add(le, p+"/Letter", "Identifier", BinaryLetterID(opt.LetterID))
	w.add(le, p+"/Letter", "VersionCode", VersionXBIN01)
	w.add(le, p+"/Letter", "StatisticalCode", "XBIN01")
	dateTime(le.CreateElement("Authorisation"), opt.Now)
	w.add(le, p+"/Letter", "TypeCode", "XBIN01")
	w.add(le, p+"/Letter", "StatusCode", opt.StatusCode)
	w.party(bl.CreateElement("Sender"), p+"/Sender", snd, true)
	w.party(bl.CreateElement("Receiver"), p+"/Receiver", rcv, false)
	w.patient(bl.CreateElement("Patient"), p+"/Patient", l.Patient)
	n := 0
	var standIns [][]byte
	for i, a := range l.Attachments {
		if a.ContentType == "text/uri-list" {
			continue
		}
		n++
		op := fmt.Sprintf("%s/BinaryObject[%d]", p, n)
		var text string
		switch {
		case a.Len() <= 0:
			w.fail(op, "file %d is empty", i+1)
			continue
		case a.Inline():
			text = wrapBase64(a.Data)
		case parts == nil:
			w.fail(op, "file %d has no bytes at hand", i+1)
			continue
		default:
			standIn := parts.Mark(fmt.Sprintf("attachment %d", i+1), a.Open, a.Len())
			standIns = append(standIns, standIn)
			text = base64.StdEncoding.EncodeToString(standIn)
		}
		code, ext := objectCodes(a)
		oe := bl.CreateElement("BinaryObject")
		w.add(oe, op, "ObjectIdentifier", ObjectID(opt.LetterID, i+1))
		w.add(oe, op, "ObjectCode", code)
		w.add(oe, op, "ObjectExtensionCode", ext)
		w.add(oe, op, "OriginalObjectSize", strconv.FormatInt(a.Len(), 10))
		oe.CreateElement("Object_Base64Encoded").SetText(text)
	}
	if n == 0 {
		w.fail(p+"/BinaryObject", "the letter carries no file")
	}
	return finish(doc, w.errs, "binary letter", standIns...)
}

// wrapBase64 breaks base64 into lines of 76, as MIME and MedCom's examples do.
func wrapBase64(b []byte) string {
	s := base64.StdEncoding.EncodeToString(b)
	var sb strings.Builder
	sb.Grow(len(s) + len(s)/76 + 1)
	for len(s) > 76 {
		sb.WriteString(s[:76])
		sb.WriteByte('\n')
		s = s[76:]
	}
	sb.WriteString(s)
	return sb.String()
}

// ReceiptOptions controls BuildReceipt.
type ReceiptOptions struct {
	Type       string // PositiveReceipt or NegativeReceipt
	SelfEAN    string // the receipt's sender; default: the receiver EAN of the first letter
	EnvelopeID string // random when empty
	ReceiptID  string // default StableID of (type, original sender, letters)
	Now        time.Time
	Letters    []*ClinicalEmail // the letters receipted; none means the whole envelope
	RefuseCode string           // negative only; default ikke_specificeret
	RefuseText string           // negative only; plain text, no personal data
}

// BuildReceipt writes an XCTL03 PositiveReceipt or XCTL02 NegativeReceipt
// for of. A negative receipt with letters refuses each of them; without
// letters it refuses the whole envelope.
func BuildReceipt(of *Emessage, opt ReceiptOptions) ([]byte, error) {
	if opt.Type != PositiveReceipt && opt.Type != NegativeReceipt {
		return nil, fmt.Errorf("oioxml: receipt type %q: must be %s or %s", opt.Type, PositiveReceipt, NegativeReceipt)
	}
	if opt.Now.IsZero() {
		opt.Now = time.Now()
	}
	var origSender, origReceiver string
	heads := append(append([]*ClinicalEmail{}, opt.Letters...), of.Letters...)
	for _, b := range of.Binaries {
		heads = append(heads, b.ReceiptView())
	}
	for _, ce := range heads {
		if ce.Sender.EAN != "" {
			origSender, origReceiver = ce.Sender.EAN, ce.Receiver.EAN
			break
		}
	}
	if opt.SelfEAN == "" {
		opt.SelfEAN = origReceiver
	}
	if origSender == "" || opt.SelfEAN == "" || of.Envelope.Identifier == "" {
		return nil, errors.New("oioxml: cannot address a receipt: the envelope id or the sender's or receiver's EAN is unreadable")
	}
	if n := utf8.RuneCountInString(origReceiver); n < 1 || n > 35 {
		// Unreadable (missing or no EANIdentifier): the receipt's sender
		// stands in, or the receipt would itself be invalid.
		origReceiver = opt.SelfEAN
	}
	if opt.EnvelopeID == "" {
		opt.EnvelopeID = NewID()
	}
	if opt.ReceiptID == "" {
		key := opt.Type + "|" + origSender + "|" + of.Envelope.Identifier
		for _, ce := range opt.Letters {
			key += "|" + ce.Identifier
		}
		opt.ReceiptID = StableID(key)
	}
	if opt.Type == NegativeReceipt {
		if opt.RefuseCode == "" {
			opt.RefuseCode = RefuseUnspecified
		}
		// A letter whose own id is unusable cannot be named; refuse the
		// whole envelope instead.
		for _, ce := range opt.Letters {
			if n := utf8.RuneCountInString(ce.Identifier); n < 1 || n > 14 {
				opt.Letters = nil
				break
			}
		}
	}
	ver := receiptVersions[opt.Type]
	w := &writer{}
	doc := etree.NewDocument()
	doc.CreateProcInst("xml", `version="1.0" encoding="`+outCharset+`"`)
	root := doc.CreateElement("Emessage")
	root.CreateAttr("xmlns", NS2005)
	envelope(root, opt.Now, opt.EnvelopeID, AckNotWanted) // receipts are never receipted
	p := "Emessage/" + opt.Type + "[1]"
	rc := root.CreateElement(opt.Type)
	le := rc.CreateElement("Letter")
	w.add(le, p+"/Letter", "Identifier", opt.ReceiptID)
	w.add(le, p+"/Letter", "VersionCode", ver[0])
	w.add(le, p+"/Letter", "StatisticalCode", ver[1])
	w.add(rc.CreateElement("Sender"), p+"/Sender", "EANIdentifier", opt.SelfEAN)
	w.add(rc.CreateElement("Receiver"), p+"/Receiver", "EANIdentifier", origSender)
	oe := rc.CreateElement("OriginalEmessage")
	op := p + "/OriginalEmessage"
	w.add(oe, op, "OriginalEnvelopeIdentifier", of.Envelope.Identifier)
	w.add(oe.CreateElement("OriginalSender"), op+"/OriginalSender", "EANIdentifier", origSender)
	w.add(oe.CreateElement("OriginalReceiver"), op+"/OriginalReceiver", "EANIdentifier", origReceiver)
	negative := opt.Type == NegativeReceipt
	if negative && len(opt.Letters) == 0 {
		w.add(oe, op, "RefuseCode", opt.RefuseCode)
		w.breakable(oe, op, "RefuseText", opt.RefuseText)
	}
	for i, ce := range opt.Letters {
		lp := fmt.Sprintf("%s/OriginalLetter[%d]", op, i+1)
		ol := oe.CreateElement("OriginalLetter")
		w.add(ol, lp, "OriginalLetterIdentifier", ce.Identifier)
		v := ce.VersionCode
		if v == "" {
			v = VersionXD9134L
		}
		w.add(ol, lp, "OriginalVersionCode", v)
		if negative {
			w.add(ol, lp, "RefuseCode", opt.RefuseCode)
			w.breakable(ol, lp, "RefuseText", opt.RefuseText)
		}
	}
	return finish(doc, w.errs, "receipt")
}

func envelope(root *etree.Element, now time.Time, id, ack string) {
	env := root.CreateElement("Envelope")
	dateTime(env.CreateElement("Sent"), now)
	env.CreateElement("Identifier").SetText(id)
	env.CreateElement("AcknowledgementCode").SetText(ack)
}

func dateTime(el *etree.Element, t time.Time) {
	t = t.In(copenhagen)
	el.CreateElement("Date").SetText(t.Format("2006-01-02"))
	el.CreateElement("Time").SetText(t.Format("15:04"))
}

// finish encodes a built document, unless building it failed, and checks
// the output by the same rules the adapter applies to input. standIns are
// the objects' stand-ins for files streamed in later (see parse).
func finish(doc *etree.Document, errs []error, what string, standIns ...[]byte) ([]byte, error) {
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	out, err := encode(doc)
	if err != nil {
		return nil, err
	}
	if _, err := parse(out, xmlsafe.DefaultLimits(), standIns); err != nil {
		return nil, fmt.Errorf("built %s fails validation: %w", what, err)
	}
	return out, nil
}

func encode(doc *etree.Document) ([]byte, error) {
	doc.WriteSettings.CanonicalEndTags = false
	s, err := doc.WriteToString()
	if err != nil {
		return nil, err
	}
	out, err := charmap.ISO8859_1.NewEncoder().String(s)
	if err != nil {
		return nil, fmt.Errorf("oioxml: encode ISO-8859-1: %w", err)
	}
	return []byte(out), nil
}

type writer struct{ errs []error }

func (w *writer) fail(path, msg string, args ...any) {
	w.errs = append(w.errs, &FieldError{Path: path, Msg: fmt.Sprintf(msg, args...)})
}

// add writes a required element; an empty value is reported by path.
func (w *writer) add(parent *etree.Element, path, name, value string) {
	if value == "" {
		w.fail(path+"/"+name, "required but empty in the letter")
	}
	parent.CreateElement(name).SetText(w.latin1(path+"/"+name, value))
}

func (w *writer) opt(parent *etree.Element, path, name, value string) {
	if value != "" {
		w.add(parent, path, name, value)
	}
}

func (w *writer) party(el *etree.Element, path string, p Party, sender bool) {
	w.add(el, path, "EANIdentifier", p.EAN)
	w.add(el, path, "Identifier", p.Identifier)
	w.add(el, path, "IdentifierCode", p.IdentifierCode)
	if sender {
		w.add(el, path, "OrganisationName", clip(p.OrganisationName, 35))
	} else {
		w.opt(el, path, "OrganisationName", clip(p.OrganisationName, 35))
	}
	w.opt(el, path, "DepartmentName", clip(p.DepartmentName, 35))
	w.opt(el, path, "UnitName", clip(p.UnitName, 35))
	w.opt(el, path, "StreetName", clip(p.StreetName, 35))
	w.opt(el, path, "SuburbName", clip(p.SuburbName, 35))
	w.opt(el, path, "DistrictName", clip(p.DistrictName, 35))
	w.opt(el, path, "PostCodeIdentifier", p.PostCode)
	if sender {
		w.opt(el, path, "TelephoneSubscriberIdentifier", p.Telephone)
		w.opt(el, path, "MedicalSpecialityCode", p.MedicalSpecialityCode)
	}
}

// formatted writes text with newlines as <Break/>.
func (w *writer) formatted(el *etree.Element, path, text string) {
	for i, line := range strings.Split(w.latin1(path, text), "\n") {
		if i > 0 {
			el.CreateElement("Break")
		}
		if line != "" {
			el.CreateText(line)
		}
	}
}

func (w *writer) breakable(parent *etree.Element, path, name, text string) {
	if text != "" {
		w.formatted(parent.CreateElement(name), path+"/"+name, text)
	}
}

// typographic maps characters Word and mail clients insert to Latin-1.
var typographic = strings.NewReplacer(
	"\u2013", "-", "\u2014", "-", "\u2018", "'", "\u2019", "'", "\u201A", "'", "\u201C", `"`, "\u201D", `"`,
	"\u201E", `"`, "\u2026", "...", "\u20AC", "EUR", "\u00A0", " ", "\u2022", "*", "\r\n", "\n", "\r", "\n",
)

// latin1 makes s writable in ISO-8859-1 or reports the first character that
// is not (by code point only: the text itself is never quoted).
func (w *writer) latin1(path, s string) string {
	s, bad := toLatin1(s)
	if bad >= 0 {
		w.fail(path, "character U+%04X cannot be written in ISO-8859-1", bad)
	}
	return s
}

// toLatin1 is s as written in ISO-8859-1: composed (NFC, so an "e" and a
// combining accent become the Latin-1 "é" rather than a refusal),
// typographic characters replaced, control characters dropped. bad is the
// first character left that ISO-8859-1 lacks, or -1.
func toLatin1(s string) (out string, bad rune) {
	s = typographic.Replace(norm.NFC.String(s))
	bad = -1
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n':
			return r
		case r < 0x20 || (r >= 0x7F && r < 0xA0):
			return -1 // control characters are not allowed in XML 1.0 / make no sense in a letter
		case r > 0xFF || r == utf8.RuneError:
			if bad < 0 {
				bad = r
			}
		}
		return r
	}, s)
	return s, bad
}

func clip(s string, n int) string {
	s = strings.TrimSpace(s)
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return strings.TrimSpace(string([]rune(s)[:n-3])) + "..."
}

// XDIS91's limits on references (Reference.xsd).
const (
	maxReferences = 10
	maxURL        = 350
)

// What one XDIS91 text block carries through MedCom's conversion to
// EDIFACT DIS91 (medcom.md §1.6): each ClinicalInformation becomes one
// segment group of at most 9 FTX segments (8 in the first when a Subject
// takes one), each of 5 lines of at most 70 characters; the converter
// wraps a longer line at its last space before the 70th character, and
// an empty line takes a line of its own. Text beyond that would be cut
// off on the way to a receiver who reads EDIFACT.
const (
	maxTextBlocks = 10
	blockLines    = 9 * 5
	edifactLine   = 70
)

// textBlocks splits text into ClinicalInformation blocks that each fit
// blockLines EDIFACT lines (blockLines-5 for the first when subject). It
// cuts at a blank line where it can, which the "\n\n" that parsing joins
// blocks with restores exactly; failing that, between two lines (read
// back with a blank line between them) and, for a line longer than a
// block, inside it. More than maxTextBlocks blocks means the text does not
// fit XDIS91; the caller refuses it.
func textBlocks(text string, subject bool) []string {
	text = strings.ReplaceAll(text, "\r\n", "\n")
	if text == "" {
		return nil
	}
	capacity := func(n int) int {
		if n == 0 && subject {
			return blockLines - 5
		}
		return blockLines
	}
	var blocks []string
	var cur []string // lines of the block being filled
	used := 0
	flush := func() {
		// Cut at the last blank line after the first line, when there is one.
		cut := -1
		for k := len(cur) - 1; k >= 1; k-- {
			if cur[k] == "" {
				cut = k
				break
			}
		}
		if cut < 0 {
			blocks = append(blocks, strings.Join(cur, "\n"))
			cur, used = nil, 0
			return
		}
		blocks = append(blocks, strings.Join(cur[:cut], "\n"))
		cur = append([]string(nil), cur[cut+1:]...)
		used = 0
		for _, l := range cur {
			used += len(wrapLine(l))
		}
	}
	for _, line := range strings.Split(text, "\n") {
		pieces := wrapLine(line)
		for len(pieces) > 0 {
			room := capacity(len(blocks)) - used
			if len(pieces) <= room {
				cur = append(cur, line)
				used += len(pieces)
				break
			}
			if len(cur) > 0 {
				flush()
				continue
			}
			// A line longer than a whole block: the part that fits.
			n := 0
			for _, p := range pieces[:room] {
				n += len(p)
			}
			cur = append(cur, line[:n])
			used = room
			line, pieces = line[n:], pieces[room:]
			flush()
		}
	}
	if len(cur) > 0 || len(blocks) == 0 {
		blocks = append(blocks, strings.Join(cur, "\n"))
	}
	return blocks
}

// wrapLine cuts one line of text into the EDIFACT lines the converter
// makes of it (at least one, for an empty line): at most edifactLine-1
// characters and a continuation mark each, cut after the last white space
// when there is one past the third character. The pieces, joined, are
// the line.
func wrapLine(line string) []string {
	const width = edifactLine - 1
	var out []string
	for utf8.RuneCountInString(line) > width {
		end := 0 // byte offset after width runes
		for i := 0; i < width; i++ {
			_, size := utf8.DecodeRuneInString(line[end:])
			end += size
		}
		cut := end
		if sp := strings.LastIndexAny(line[:end], " \t"); sp > 2 {
			cut = sp + 1
		}
		out = append(out, line[:cut])
		line = line[cut:]
	}
	return append(out, line)
}
