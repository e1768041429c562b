package medcom

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/google/uuid"

	"github.com/samhub/samhub/adapters/medcom/fhirmsg"
	"github.com/samhub/samhub/adapters/medcom/oioxml"
	"github.com/samhub/samhub/adapters/medcom/partscan"
	"github.com/samhub/samhub/adapters/medcom/xmlsafe"
	"github.com/samhub/samhub/pipeline/letter"
)

const (
	kindOIOXML = "oioxml"
	kindFHIR   = "fhir"
)

// inbound is one examined input file.
type inbound struct {
	kind string // kindOIOXML or kindFHIR
	oio  *oioxml.Emessage
	fhir *fhirmsg.Message
	err  error // nil when the input is valid
	// salvaged: the input is not well-formed, and oio or fhir holds only
	// the head an answer needs, read before its fault (salvage.go); the
	// input's SHA-256 in hex, which keys that answer.
	salvaged string
	// scanned is a FHIR message whose large values stayed in the file
	// (examineFile): the letter's original and those attachments are
	// opened from file, which stays open until close.
	scanned *partscan.Doc
	file    *os.File
}

func (in *inbound) close() {
	if in.file != nil {
		in.file.Close()
		in.file = nil
	}
}

// atEnd tells whether f ends at size (it has not grown since its stat).
func atEnd(f *os.File, size int64) bool {
	var b [1]byte
	n, err := f.ReadAt(b[:], size)
	return n == 0 && errors.Is(err, io.EOF)
}

// headBytes is how much of a file is read to tell its format.
const headBytes = 64 << 10

// examineFile is examine for a file on disk. A FHIR message is scanned
// (partscan) rather than read: its attachments' base64, and a
// VANSEnvelope's message, stay in the file, are decoded once to measure
// them, and are read again when the hub stores them; the parsers read the
// message without them. Other input (OIOXML, which carries no files) is
// read whole. data is the input as the letters' original when it was read
// whole or nothing was left in the file, else nil. An error means the
// file could not be read (try again later), not that it is invalid.
func examineFile(path string, lim xmlsafe.Limits) (in *inbound, data []byte, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	head := make([]byte, min(fi.Size(), headBytes))
	nh, err := f.ReadAt(head, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		f.Close()
		return nil, nil, err
	}
	if !isFHIR(head) || fi.Size() > lim.MaxBytes {
		if nh == len(head) && int64(nh) == fi.Size() && atEnd(f, fi.Size()) {
			// The head is the whole file (most letters): no second read.
			f.Close()
			return examine(head, lim), head, nil
		}
		// Read into a buffer of the file's size: io.ReadAll's doubling
		// from 512 bytes allocated three times the letter.
		buf := bytes.NewBuffer(make([]byte, 0, min(fi.Size(), lim.MaxBytes+1)+bytes.MinRead))
		_, err := buf.ReadFrom(io.LimitReader(f, lim.MaxBytes+1))
		data := buf.Bytes()
		f.Close()
		if err != nil {
			return nil, nil, err
		}
		return examine(data, lim), data, nil
	}
	opt := partscan.Options{MaxValue: int64(lim.MaxAttrLen)}
	doc, err := partscan.Scan(partscan.File(f, fi.Size()), opt)
	if err == nil {
		err = doc.Resolve(opt)
	}
	var refused *xmlsafe.Error
	switch {
	case errors.As(err, &refused):
		f.Close()
		return &inbound{kind: kindFHIR, err: err}, nil, nil
	case err != nil:
		f.Close()
		return nil, nil, err
	}
	in = &inbound{kind: kindFHIR, scanned: doc}
	in.fhir, in.err = fhirmsg.ParseScanned(doc, lim)
	finishFHIR(in)
	salvage(in, doc.Data, doc.SHA256, lim)
	if len(doc.Parts) == 0 {
		// Nothing was left in the file: the message is the input.
		f.Close()
		in.scanned = nil
		return in, doc.Data, nil
	}
	in.file = f
	return in, nil, nil
}

// addressable reports whether an acknowledgement can be sent at all.
func (in *inbound) addressable() bool {
	return in.oio != nil || (in.fhir != nil && in.fhir.HeaderID != "")
}

// examine detects the format and parses and validates data. A nil oio and
// fhir with err set means the input could not be read far enough to answer.
func examine(data []byte, lim xmlsafe.Limits) *inbound {
	if int64(len(data)) > lim.MaxBytes {
		return &inbound{err: &xmlsafe.Error{Reason: xmlsafe.ReasonTooLarge, Msg: fmt.Sprintf("input is %d bytes, more than the limit of %d", len(data), lim.MaxBytes)}}
	}
	if isFHIR(data) {
		in := &inbound{kind: kindFHIR}
		in.fhir, in.err = fhirmsg.Parse(data, lim)
		finishFHIR(in)
		salvage(in, data, "", lim)
		return in
	}
	in := &inbound{kind: kindOIOXML}
	in.oio, in.err = oioxml.Parse(data, lim)
	salvage(in, data, "", lim)
	return in
}

// finishFHIR validates a parsed FHIR message.
func finishFHIR(in *inbound) {
	if in.err == nil {
		in.err = fhirmsg.Validate(in.fhir)
	}
	if in.fhir != nil && in.fhir.HeaderID == "" && in.err == nil {
		in.err = errors.New("MessageHeader.id: must be present")
	}
}

// isFHIR looks at the start of data only: JSON, or an XML root named Bundle
// or VANSEnvelope. Everything else goes to the OIOXML reader, whose errors
// (including xmlsafe's refusals) then describe the problem.
func isFHIR(data []byte) bool {
	if u := utf16Head(data); u != nil {
		// Sniffed as text so that a UTF-16 FHIR message is refused by the
		// FHIR reader (FHIR must be UTF-8), not as an OIOXML charset.
		data = u
	}
	body := bytes.TrimLeft(bytes.TrimPrefix(data, []byte{0xEF, 0xBB, 0xBF}), " \t\r\n")
	if len(body) > 0 && (body[0] == '{' || body[0] == '[') {
		return true // an array: refused by the JSON reader, as JSON
	}
	name := rootName(body)
	if i := bytes.IndexByte(name, ':'); i >= 0 {
		name = name[i+1:]
	}
	return string(name) == "Bundle" || string(name) == "VANSEnvelope"
}

// utf16Head is the start of data as UTF-8 when data begins with a UTF-16
// byte-order mark, else nil.
func utf16Head(data []byte) []byte {
	var order binary.ByteOrder
	switch {
	case bytes.HasPrefix(data, []byte{0xFF, 0xFE}):
		order = binary.LittleEndian
	case bytes.HasPrefix(data, []byte{0xFE, 0xFF}):
		order = binary.BigEndian
	default:
		return nil
	}
	data = data[2:min(len(data), 2+2*headBytes)]
	units := make([]uint16, len(data)/2)
	for i := range units {
		units[i] = order.Uint16(data[2*i:])
	}
	return []byte(string(utf16.Decode(units)))
}

// rootName is the name of the first element, skipping the XML declaration,
// processing instructions, comments and white space; nil when a DOCTYPE or
// anything else comes first. It reads bytes, not tokens: encoding/xml would
// read the whole start tag first, a million attributes of it included.
func rootName(b []byte) []byte {
	for {
		b = bytes.TrimLeft(b, " \t\r\n")
		var end []byte
		switch {
		case bytes.HasPrefix(b, []byte("<?")):
			end = []byte("?>")
		case bytes.HasPrefix(b, []byte("<!--")):
			end = []byte("-->")
		case bytes.HasPrefix(b, []byte("<")) && !bytes.HasPrefix(b, []byte("<!")):
			n := 1
			for n < len(b) && n < 256 && !bytes.ContainsRune([]byte(" \t\r\n/>"), rune(b[n])) {
				n++
			}
			return b[1:n]
		default:
			return nil
		}
		i := bytes.Index(b, end)
		if i < 0 {
			return nil
		}
		b = b[i+len(end):]
	}
}

// plannedAck is an acknowledgement owed for one inbound letter.
type plannedAck struct {
	key      string // duplicate-memory key
	hubID    string
	name     string // file name in out/
	data     []byte // nil when no acknowledgement is owed (minuspositivkvitt)
	negative bool
	rec      inRecord
	with     []inRecord // the receipts of XBIN01 letters joined to this one
}

// planAcks builds the acknowledgements for in: one per distinct letter.
// Receipts and FHIR acknowledgements are never acknowledged.
//
// MedCom's rule: an acknowledgement is sent by the letter's receiver (XCTL
// Sender = the original Receiver's EAN; the FHIR Acknowledgement's sender is
// the Organization the MessageHeader's destination named). One mailbox may
// receive for several GLNs (the council, PPR, …), so each answer comes from
// the identity its letter was addressed to; self, the hub's configured
// identity, answers only when that cannot be read from a broken letter.
func planAcks(in *inbound, self Self, now time.Time) ([]plannedAck, error) {
	switch {
	case in.oio != nil:
		return planOIOXML(in.oio, in.err, self, now, in.salvaged)
	case in.fhir != nil && in.fhir.HeaderID != "" && in.fhir.Event != fhirmsg.EventAcknowledgement:
		return planFHIR(in.fhir, in.err, self, now, in.salvaged)
	}
	return nil, nil
}

// brokenKey is the duplicate-memory key of the answer to letter id read
// from a file that is not well-formed (salvage.go): the file's SHA-256,
// broken, is part of it, so a copy of that file is answered the same and
// the letter sent again whole is not taken for it.
func brokenKey(id, broken string) string {
	if broken == "" {
		return id
	}
	return id + "|syntax|" + broken
}

func planOIOXML(m *oioxml.Emessage, verr error, self Self, now time.Time, broken string) ([]plannedAck, error) {
	var out []plannedAck
	code := oioxml.RefuseSyntax
	if oioxml.IsUnsupported(verr) {
		code = oioxml.RefuseVersion
	}
	// XBIN01 letters are receipted like XDIS91 letters, each by its own id.
	heads := append(m.Letters[:len(m.Letters):len(m.Letters)], m.Unread...)
	for _, b := range m.Binaries {
		heads = append(heads[:len(heads):len(heads)], b.ReceiptView())
	}
	for _, ce := range heads {
		if ce.Sender.EAN == "" || ce.Identifier == "" || len([]rune(ce.Identifier)) > 14 {
			continue // not addressable letter by letter; handled below
		}
		id := oioxml.LetterID(ce.Sender.EAN, ce.Identifier)
		p := plannedAck{key: stateKey("in", brokenKey(id, broken)), hubID: id, rec: inRecord{
			HubID: id, Format: oioxml.Format, At: now,
			SenderEAN: ce.Sender.EAN, SenderIdentifier: ce.Sender.Identifier, SenderIdentifierCode: ce.Sender.IdentifierCode,
			SenderName: ce.Sender.OrganisationName, ReceiverEAN: ce.Receiver.EAN, Episode: ce.EpisodeOfCareIdentifier,
		}}
		opt := oioxml.ReceiptOptions{Type: oioxml.PositiveReceipt, Letters: []*oioxml.ClinicalEmail{ce}, Now: now}
		if verr != nil {
			opt.Type, opt.RefuseCode, opt.RefuseText = oioxml.NegativeReceipt, code, refuseText(verr)
			p.negative = true
		} else if !m.Envelope.WantsPositiveReceipt() {
			out = append(out, p)
			continue
		}
		opt.ReceiptID = oioxml.StableID(brokenKey(opt.Type+"|"+id, broken))
		data, err := buildReceipt(m, opt, []string{ce.Receiver.EAN, self.GLN})
		if err != nil {
			if verr != nil {
				continue // cannot even address a negative receipt: the error file says why
			}
			return nil, err
		}
		p.data, p.name = data, receiptName(opt.Type, opt.ReceiptID)
		out = append(out, p)
	}
	if len(out) == 0 && verr != nil && len(heads) > 0 && m.Envelope.Identifier != "" {
		// No letter could be named: refuse the whole envelope.
		id := "envelope:" + m.Envelope.Identifier
		rid := oioxml.StableID(brokenKey(oioxml.NegativeReceipt+"|"+id, broken))
		var from []string
		for _, ce := range heads {
			from = append(from, ce.Receiver.EAN)
		}
		data, err := buildReceipt(m, oioxml.ReceiptOptions{Type: oioxml.NegativeReceipt, Now: now,
			RefuseCode: code, RefuseText: refuseText(verr), ReceiptID: rid}, append(from, self.GLN))
		if err == nil {
			out = append(out, plannedAck{key: stateKey("in", brokenKey(id, broken)), hubID: id, name: receiptName(oioxml.NegativeReceipt, rid), data: data, negative: true,
				rec: inRecord{HubID: id, Format: oioxml.Format, At: now}})
		}
	}
	return out, nil
}

// buildReceipt builds the receipt from the first of senders it can be built
// from: the receiver the letter named, unless that is unreadable (a receipt
// naming it would itself be invalid), then the hub's own GLN.
func buildReceipt(m *oioxml.Emessage, opt oioxml.ReceiptOptions, senders []string) ([]byte, error) {
	var firstErr error
	for _, ean := range senders {
		if ean == "" {
			continue
		}
		opt.SelfEAN = ean
		data, err := oioxml.BuildReceipt(m, opt)
		if err == nil {
			return data, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if firstErr == nil {
		return nil, errors.New("oioxml: cannot address a receipt: neither the letter's receiver nor self.gln is known")
	}
	return nil, firstErr
}

func receiptName(typ, id string) string {
	if typ == oioxml.PositiveReceipt {
		return "xctl03-" + id + ".xml"
	}
	return "xctl02-" + id + ".xml"
}

// refuseText explains a refusal without personal data: element paths and
// rules only (FieldError and xmlsafe messages never quote values).
func refuseText(err error) string {
	lines := errLines(err)
	if len(lines) > 5 {
		lines = append(lines[:5], fmt.Sprintf("(and %d more)", len(lines)-5))
	}
	return "Samhub could not accept the message:\n" + strings.Join(lines, "\n")
}

func errLines(err error) []string {
	if err == nil {
		return nil
	}
	var out []string
	for _, l := range strings.Split(err.Error(), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

func planFHIR(m *fhirmsg.Message, verr error, self Self, now time.Time, broken string) ([]plannedAck, error) {
	org := ackSender(m.Receiver, self)
	code, issues := fhirmsg.AckOK, []fhirmsg.Issue(nil)
	switch {
	case broken != "":
		// Not well-formed: FHIR's issue type for content that cannot be
		// parsed, and the operation-outcome code MedCom's value set takes
		// for it.
		code, issues = fhirmsg.AckFatalError, []fhirmsg.Issue{{Severity: "error", Code: "structure",
			Details: fhirmsg.IssueBadSyntax, Text: errLines(verr)[0]}}
	case verr != nil:
		code, issues = fhirmsg.AckFatalError, fhirmsg.Issues(verr, 5)
	}
	data, err := fhirmsg.BuildAcknowledgement(m, code, issues, org, now)
	if err != nil {
		if verr != nil {
			return nil, nil // the error file says why no acknowledgement could be built
		}
		return nil, err
	}
	ext := "xml"
	if m.Encoding == fhirmsg.EncodingJSON {
		ext = "json"
	}
	name := "fhir-ack-" + uuid.NewSHA1(uuid.NameSpaceOID, []byte(brokenKey(m.HeaderID+"|"+code, broken))).String() + "." + ext
	if m.VANS != nil {
		ack, perr := fhirmsg.Parse(data, xmlsafe.DefaultLimits())
		if perr != nil {
			return nil, perr
		}
		data, err = fhirmsg.BuildVANSEnvelope(data, fhirmsg.Envelope{
			EnvelopeID: uuid.NewString(), MessageID: ack.HeaderID, FromGLN: org.GLN, ToGLN: m.Sender.GLN,
			Encoding: m.Encoding, Name: "MCM:FCTL#" + code, Version: "2.0.0", Now: now,
		})
		if err != nil {
			return nil, err
		}
		name = strings.TrimSuffix(name, "."+ext) + ".vans.xml"
	}
	rec := inRecord{HubID: m.HeaderID, Format: fhirmsg.FormatCareCommunication, At: now, HeaderID: m.HeaderID, ThreadID: m.ThreadID,
		SenderEAN: m.Sender.GLN, SenderSOR: m.Sender.SOR, SenderName: m.Sender.Name, ReceiverEAN: m.Receiver.GLN}
	if ep := m.EpisodeOfCare(); ep != nil { // a reply carries it over
		rec.Episode, rec.EpisodeSystem = ep.Value, ep.System
	}
	return []plannedAck{{
		key: stateKey("in", brokenKey("fhir#"+m.HeaderID, broken)), hubID: m.HeaderID, name: name, data: data, negative: verr != nil, rec: rec,
	}}, nil
}

// ackSender is who acknowledges a FHIR message: the Organization its
// MessageHeader addressed, when its SOR id and GLN can be read (the
// acknowledgement must carry both); otherwise self.
func ackSender(receiver fhirmsg.Organization, self Self) fhirmsg.Organization {
	usable := func(o fhirmsg.Organization) bool {
		return len(o.GLN) == 13 && digits(o.GLN) && len(o.SOR) >= 6 && len(o.SOR) <= 18 && digits(o.SOR)
	}
	own := fhirmsg.Organization{Name: self.Name, SOR: self.SOR, GLN: self.GLN}
	if !usable(receiver) {
		return own
	}
	if receiver.Name == "" && receiver == (fhirmsg.Organization{SOR: self.SOR, GLN: self.GLN}) {
		receiver.Name = self.Name // the letter did not name us; our configured name does
	}
	return receiver
}

func digits(s string) bool { return strings.Trim(s, "0123456789") == "" }

// letters maps a valid inbound file to the letters to publish.
func (in *inbound) letters(source, filename string, data []byte, now time.Time) []*letter.Letter {
	if in.oio != nil {
		return in.oio.ToLetters(oioxml.Input{Source: source, Data: data, Filename: filename, Received: now})
	}
	ct := fhirmsg.MIMEXML
	if in.fhir.Encoding == fhirmsg.EncodingJSON && in.fhir.VANS == nil {
		ct = fhirmsg.MIMEJSON
	}
	l := in.fhir.Letter(source, data, ct)
	l.Received = now
	l.Original.Filename = filename
	if in.scanned != nil {
		// The original stays in the file, which the hub stores from it.
		f, size := in.file, in.scanned.Size
		l.Original.Size, l.Original.SHA256 = size, in.scanned.SHA256
		l.Original = l.Original.WithOpener(func(context.Context) (io.ReadCloser, error) {
			if f == nil {
				return nil, errors.New("medcom: the input file is closed")
			}
			return io.NopCloser(io.NewSectionReader(f, 0, size)), nil
		})
	}
	return []*letter.Letter{l}
}
