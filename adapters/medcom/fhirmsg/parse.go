package fhirmsg

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/samhub/samhub/adapters/medcom/partscan"
	"github.com/samhub/samhub/adapters/medcom/xmlsafe"
	"github.com/samhub/samhub/pipeline/letter"
)

// ErrNotUTF8 marks a message refused for its charset: FHIR is UTF-8 only.
var ErrNotUTF8 = errors.New("FHIR messages must be UTF-8")

// Parse reads a MedCom FHIR message: a Bundle in FHIR XML or JSON, bare or
// base64 inside a VANSEnvelope. It fails only when the input cannot be read
// as a FHIR Bundle at all (limits, syntax, charset, envelope); breaches of
// MedCom's profile rules are reported by Validate. On error the returned
// Message may still be non-nil, holding what could be read (e.g. VANS), so a
// caller can address a negative acknowledgement; callers must check err.
func Parse(data []byte, lim xmlsafe.Limits) (*Message, error) {
	return parse(data, lim, 0, nil)
}

// ParseScanned is Parse of a message whose large base64 values a scan
// lifted out (partscan.Scan, then Doc.Resolve): each attachment's data is
// the part its token names, opened from the input when the letter's
// attachment is read, and a VANSEnvelope's Data the message scanned in
// it. The limits apply as to the whole input: the token budget counts the
// bytes lifted out as Parse would have.
func ParseScanned(d *partscan.Doc, lim xmlsafe.Limits) (*Message, error) {
	return parse(d.Data, scannedLimits(d, lim), 0, d)
}

// ParsePrevious reads a message the hub received, from its original in
// src, as the Previous of a reply (BuildOptions): its segments,
// Provenances, thread and episode. Attachment data are left in src,
// neither decoded nor measured, since a reply lists earlier attachments
// without them; only a VANSEnvelope's message is decoded, as it is
// scanned. A 100 MB original is read as a stream (twice when enveloped)
// and never held. Not for a forward, which must carry the attachments'
// data. Errors are src's when it cannot be read, else the scan's or the
// parser's.
func ParsePrevious(src partscan.Source, lim xmlsafe.Limits) (*Message, error) {
	opt := partscan.Options{MaxValue: int64(lim.MaxAttrLen)}
	doc, err := partscan.Scan(src, opt)
	if err != nil {
		return nil, err
	}
	for _, p := range doc.Parts {
		if !p.Envelope {
			continue
		}
		if p.Nested, err = p.Scan(opt); errors.Is(err, partscan.ErrNotBase64) {
			p.Bad, err = err, nil
		}
		if err != nil {
			return nil, err
		}
	}
	return ParseScanned(doc, lim)
}

// scannedLimits grants the scanned document the token budget of the whole
// input it stands for.
func scannedLimits(d *partscan.Doc, lim xmlsafe.Limits) xmlsafe.Limits {
	def := xmlsafe.DefaultLimits()
	if lim.MaxTokens <= 0 {
		lim.MaxTokens = def.MaxTokens
	}
	if lim.TokenBytes <= 0 {
		lim.TokenBytes = def.TokenBytes
	}
	if lifted := d.Size - int64(len(d.Data)); lifted > 0 {
		lim.MaxTokens += int(lifted / int64(lim.TokenBytes))
	}
	return lim
}

func parse(data []byte, lim xmlsafe.Limits, level int, parts *partscan.Doc) (*Message, error) {
	body, err := utf8Body(data)
	if err != nil {
		return nil, err
	}
	switch {
	case len(body) == 0:
		return nil, errors.New("empty input: expected a FHIR Bundle in XML or JSON")
	case body[0] == '{' || body[0] == '[':
		if int64(len(data)) > lim.MaxBytes && lim.MaxBytes > 0 {
			return nil, xmlsafe.CheckJSON(data, lim) // names the limit
		}
		if !utf8.Valid(body) {
			return nil, fmt.Errorf("json: input is not valid UTF-8: %w", ErrNotUTF8)
		}
		root, dups, err := fromJSON(body, lim)
		if err != nil {
			return nil, err
		}
		if root.name != "Bundle" {
			return nil, fmt.Errorf("json: resourceType: must be Bundle")
		}
		m := fromBundle(root, EncodingJSON, parts)
		m.findings = append(dups, m.findings...)
		return m, nil
	case body[0] == '<':
		if enc := declaredEncoding(body); enc != "" && !strings.EqualFold(enc, "utf-8") && !strings.EqualFold(enc, "utf8") {
			return nil, fmt.Errorf("xml: declared encoding is not UTF-8: %w", ErrNotUTF8)
		}
		if !utf8.Valid(body) {
			return nil, fmt.Errorf("xml: input is not valid UTF-8: %w", ErrNotUTF8)
		}
		doc, err := xmlsafe.Parse(data, lim)
		if err != nil {
			return nil, err
		}
		root := doc.Root()
		switch {
		case root == nil:
			return nil, errors.New("xml: no root element")
		case root.Tag == "VANSEnvelope":
			if level > 0 {
				return nil, errors.New("VANSEnvelope.Message.Data: holds another VANSEnvelope; expected a FHIR Bundle")
			}
			return fromVANS(root, lim, parts)
		case root.Tag != "Bundle":
			return nil, fmt.Errorf("xml: root element %s: expected a FHIR Bundle or a VANSEnvelope", root.Tag)
		case root.NamespaceURI() != nsFHIR:
			return nil, fmt.Errorf("xml: Bundle: must be in namespace %s", nsFHIR)
		}
		return fromBundle(fromXML(root), EncodingXML, parts), nil
	}
	return nil, errors.New("input is neither XML nor JSON: expected a FHIR Bundle or a VANSEnvelope")
}

// utf8Body strips a UTF-8 BOM and leading white space, and refuses UTF-16/32.
func utf8Body(data []byte) ([]byte, error) {
	if bytes.HasPrefix(data, []byte{0xFE, 0xFF}) || bytes.HasPrefix(data, []byte{0xFF, 0xFE}) ||
		bytes.HasPrefix(data, []byte{0, 0, 0xFE, 0xFF}) {
		return nil, fmt.Errorf("input is UTF-16 or UTF-32: %w", ErrNotUTF8)
	}
	data = bytes.TrimPrefix(data, []byte{0xEF, 0xBB, 0xBF})
	return bytes.TrimLeft(data, " \t\r\n"), nil
}

// declaredEncoding returns the encoding pseudo-attribute of an XML
// declaration, or "". xmlsafe rewrites the declaration after decoding, so
// the raw bytes are the only place to see what the sender declared.
func declaredEncoding(b []byte) string {
	if !bytes.HasPrefix(b, []byte("<?xml")) {
		return ""
	}
	end := bytes.Index(b, []byte("?>"))
	if end < 0 {
		return ""
	}
	decl := string(b[:end])
	i := strings.Index(decl, "encoding")
	if i < 0 {
		return ""
	}
	rest := strings.TrimLeft(decl[i+len("encoding"):], " \t\r\n")
	rest = strings.TrimLeft(strings.TrimPrefix(rest, "="), " \t\r\n")
	if rest == "" || (rest[0] != '"' && rest[0] != '\'') {
		return ""
	}
	q := rest[0]
	rest = rest[1:]
	if j := strings.IndexByte(rest, q); j >= 0 {
		return rest[:j]
	}
	return ""
}

type entry struct {
	i                int
	fullURL, typ, id string
	res              *node
	path             string
}

type bundle struct {
	entries  []*entry
	byURL    map[string]*entry
	byTypeID map[string]*entry
}

// resolve finds the entry a reference points at: by fullUrl, by the
// reference made absolute against the referring entry's base, or by
// type/id. Never by position.
func (b *bundle) resolve(ref string, from *entry) *entry {
	if ref == "" {
		return nil
	}
	if e := b.byURL[ref]; e != nil {
		return e
	}
	if strings.Contains(ref, ":") { // absolute, not found
		return nil
	}
	if from != nil {
		if base, ok := restBase(from.fullURL); ok {
			if e := b.byURL[base+ref]; e != nil {
				return e
			}
		}
	}
	ref = strings.SplitN(ref, "/_history/", 2)[0]
	return b.byTypeID[ref]
}

// restBase returns "https://x/y/" from "https://x/y/Type/id".
func restBase(fullURL string) (string, bool) {
	if !strings.HasPrefix(fullURL, "http://") && !strings.HasPrefix(fullURL, "https://") {
		return "", false
	}
	parts := strings.Split(fullURL, "/")
	if len(parts) < 5 {
		return "", false
	}
	return strings.Join(parts[:len(parts)-2], "/") + "/", true
}

func newBundle(root *node) *bundle {
	b := &bundle{byURL: map[string]*entry{}, byTypeID: map[string]*entry{}}
	for i, en := range root.all("entry") {
		res, typ := en.first("resource").resource()
		e := &entry{i: i, fullURL: en.str("fullUrl"), typ: typ, res: res, id: res.str("id")}
		if typ == "" {
			typ = "?"
		}
		e.path = fmt.Sprintf("Bundle.entry[%d].resource(%s)", i, typ)
		b.entries = append(b.entries, e)
		if e.fullURL != "" && b.byURL[e.fullURL] == nil {
			b.byURL[e.fullURL] = e
		}
		if e.typ != "" && e.id != "" && b.byTypeID[e.typ+"/"+e.id] == nil {
			b.byTypeID[e.typ+"/"+e.id] = e
		}
	}
	return b
}

func (b *bundle) ofType(typ string) []*entry {
	var out []*entry
	for _, e := range b.entries {
		if e.typ == typ {
			out = append(out, e)
		}
	}
	return out
}

// fromBundle reads the fields MedCom defines. Structural problems become
// findings for Validate; reading goes on so that as much as possible is known.
func fromBundle(root *node, encoding string, parts *partscan.Doc) *Message {
	m := &Message{Encoding: encoding, BundleID: root.str("id"), parts: parts}
	add := func(path, format string, args ...any) { m.findings = append(m.findings, ferr(path, format, args...)) }
	if m.BundleID == "" {
		add("Bundle.id", "must be present")
	}
	if t := root.str("type"); t != "message" {
		add("Bundle.type", "must be %q", "message")
	}
	if ts := root.str("timestamp"); ts != "" {
		if t, err := parseInstant(ts); err == nil {
			m.Sent = t
		} else {
			add("Bundle.timestamp", "must be a date-time with time zone")
		}
	}
	modifierExtensions(root, "Bundle", add)
	b := newBundle(root)
	if len(b.entries) == 0 {
		add("Bundle.entry", "must hold a MessageHeader and the resources it references")
		m.paths.defaults()
		return m
	}
	for _, e := range b.entries {
		switch {
		case e.res == nil:
			add(fmt.Sprintf("Bundle.entry[%d].resource", e.i), "must hold exactly one resource")
		case e.id == "":
			add(e.path+".id", "must be present")
		}
		if e.fullURL == "" {
			add(fmt.Sprintf("Bundle.entry[%d].fullUrl", e.i), "must be present")
		}
	}

	headers := b.ofType("MessageHeader")
	if len(headers) == 0 {
		add("Bundle.entry[0].resource", "must be a MessageHeader (none found)")
		m.paths.defaults()
		return m
	}
	if len(headers) > 1 {
		add(headers[1].path, "must not be present: a message has exactly one MessageHeader")
	}
	h := headers[0]
	if h.i != 0 {
		add("Bundle.entry[0].resource", "must be the MessageHeader (it is entry %d)", h.i)
	}
	m.paths.header = h.path
	m.HeaderID = h.id
	m.Event = h.res.str("eventCoding.code")
	if m.Event == "" {
		add(h.path+".eventCoding.code", "must be present")
	}

	// Sender and primary receiver.
	m.paths.sender = h.path + ".sender"
	if org := m.readOrg(b, h, h.res.first("sender"), m.paths.sender); org != nil {
		m.Sender = *org
	}
	dests := h.res.all("destination")
	di := 0
	for i, d := range dests {
		if x := d.ext(extDestUse); x != nil && x.str("valueCoding.code") == "primary" {
			di = i
			break
		}
	}
	m.paths.receiver = fmt.Sprintf("%s.destination[%d].receiver", h.path, di)
	if len(dests) > 1 && (m.Event == EventCareCommunication || m.Event == EventAcknowledgement) {
		// Both profiles allow one destination, the primary (no cc): a
		// second receiver would never learn it was left out.
		add(h.path+".destination", "must name exactly one receiver, the primary (found %d)", len(dests))
	}
	if len(dests) == 0 {
		add(h.path+".destination", "must name the receiver")
	} else if org := m.readOrg(b, h, dests[di].first("receiver"), m.paths.receiver); org != nil {
		m.Receiver = *org
	}

	// Provenances: all of them (for replies and acks), and ours.
	for _, e := range b.ofType("Provenance") {
		p := readProvenance(b, e)
		m.provs = append(m.provs, p)
		if t := b.resolve(p.target, e); (t != nil && t == h) || strings.HasSuffix(p.target, "MessageHeader/"+m.HeaderID) {
			pp := p
			m.own = &pp
		}
	}
	if m.own != nil {
		m.activity = m.own.activity
		for _, en := range m.own.entities {
			if en.role != "revision" {
				continue
			}
			switch {
			case en.ref != "":
				m.PreviousHeaderID = en.ref[strings.LastIndex(en.ref, "/")+1:]
			case en.ident != "":
				m.PreviousHeaderID = en.ident
			}
		}
	}

	switch m.Event {
	case EventAcknowledgement:
		m.readAck(b, h)
	case EventCareCommunication:
		m.readCareCommunication(b, h)
	}
	m.paths.defaults()
	return m
}

func parseInstant(s string) (time.Time, error) {
	return time.Parse(time.RFC3339Nano, s)
}

// missingOrg is the issue code of an Organization the message does not
// identify: MedCom's own for the receiver, none for others.
func missingOrg(path string) string {
	if strings.Contains(path, ".destination[") {
		return IssueReceiverMissing
	}
	return ""
}

// readOrg resolves an Organization reference and reads name, SOR and GLN.
func (m *Message) readOrg(b *bundle, from *entry, ref *node, path string) *Organization {
	r := ref.str("reference")
	if r == "" {
		m.findings = append(m.findings, ferr(path+".reference", "must reference an Organization in the Bundle").coded(missingOrg(path)))
		return nil
	}
	e := b.resolve(r, from)
	if e == nil || e.typ != "Organization" {
		m.findings = append(m.findings, ferr(path+".reference", "must resolve to an Organization entry in the Bundle").coded(IssueLocalFail))
		return nil
	}
	org := orgOf(e.res)
	if org.SOR == "" {
		m.findings = append(m.findings, ferr(e.path+".identifier", "must include a SOR id (system %s)", sysSOR).coded(missingOrg(path)))
	}
	if org.GLN == "" {
		m.findings = append(m.findings, ferr(e.path+".identifier", "must include a GLN (system %s)", sysGLN).coded(missingOrg(path)))
	}
	for i, id := range e.res.all("identifier") {
		v := id.str("value")
		switch id.str("system") {
		case sysSOR:
			if !allDigits(v) || len(v) < 6 || len(v) > 18 {
				m.findings = append(m.findings, ferr(fmt.Sprintf("%s.identifier[%d].value", e.path, i), "must be a SOR id of 6 to 18 digits").coded(IssueBadFormat))
			}
		case sysGLN, sysGLNOld:
			if !allDigits(v) || len(v) != 13 {
				m.findings = append(m.findings, ferr(fmt.Sprintf("%s.identifier[%d].value", e.path, i), "must be a GLN of 13 digits").coded(IssueBadFormat))
			}
		}
	}
	return &org
}

func orgOf(res *node) Organization {
	org := Organization{Name: res.str("name")}
	for _, id := range res.all("identifier") {
		switch id.str("system") {
		case sysSOR:
			if org.SOR == "" {
				org.SOR = id.str("value")
			}
		case sysGLN, sysGLNOld:
			if org.GLN == "" {
				org.GLN = id.str("value")
			}
		}
	}
	return org
}

func readProvenance(b *bundle, e *entry) provenance {
	p := provenance{
		target:   e.res.str("target.reference"),
		occurred: e.res.str("occurredDateTime"),
		recorded: e.res.str("recorded"),
		activity: e.res.str("activity.coding.code"),
	}
	if ag := b.resolve(e.res.str("agent.who.reference"), e); ag != nil && ag.typ == "Organization" {
		o := orgOf(ag.res)
		p.agent = &o
	}
	for _, en := range e.res.all("entity") {
		p.entities = append(p.entities, provEntity{
			role:  en.str("role"),
			ref:   en.str("what.reference"),
			ident: en.str("what.identifier.value"),
		})
	}
	return p
}

func (m *Message) readAck(b *bundle, h *entry) {
	resp := h.res.first("response")
	if resp == nil {
		m.findings = append(m.findings, ferr(h.path+".response", "must be present in an acknowledgement"))
		return
	}
	m.Response = &Response{Code: resp.str("code"), Identifier: resp.str("identifier")}
	if d := resp.str("details.reference"); d != "" {
		oo := b.resolve(d, h)
		if oo == nil || oo.typ != "OperationOutcome" {
			m.findings = append(m.findings, ferr(h.path+".response.details.reference", "must resolve to an OperationOutcome entry in the Bundle").coded(IssueLocalFail))
			return
		}
		for _, is := range oo.res.all("issue") {
			det := is.str("details.coding.code")
			if det == "" {
				det = is.str("details.text")
			}
			m.Response.Issues = append(m.Response.Issues, Issue{Severity: is.str("severity"), Code: is.str("code"), Details: det, Text: is.str("details.text")})
		}
	}
	if len(b.ofType("Patient")) > 0 {
		m.findings = append(m.findings, ferr(b.ofType("Patient")[0].path, "must not be present: an acknowledgement carries no patient"))
	}
}

func (m *Message) readCareCommunication(b *bundle, h *entry) {
	add := func(path, format string, args ...any) { m.findings = append(m.findings, ferr(path, format, args...)) }
	if def := h.res.str("definition"); !strings.HasPrefix(def, ccDefinitionPfx) {
		add(h.path+".definition", "must be %s|5.x", strings.TrimSuffix(ccDefinition, "|5.0"))
	}
	if m.own == nil {
		add("Bundle.entry(Provenance)", "must include a Provenance whose target is this MessageHeader")
	}
	focus := h.res.all("focus")
	if len(focus) != 1 {
		add(h.path+".focus", "must reference exactly one Communication")
		return
	}
	ce := b.resolve(focus[0].str("reference"), h)
	if ce == nil || ce.typ != "Communication" {
		add(h.path+".focus[0].reference", "must resolve to a Communication entry in the Bundle")
		return
	}
	c := ce.res
	m.paths.comm = ce.path
	m.paths.thread = ce.path + ".identifier[0].value"
	ids := c.all("identifier")
	if len(ids) > 0 {
		m.ThreadID = ids[0].str("value")
	}
	if len(ids) != 1 {
		add(ce.path+".identifier", "must hold exactly one identifier (the thread id)")
	}
	cats := c.all("category")
	m.paths.category = ce.path + ".category[0].coding[0].code"
	if len(cats) != 1 {
		add(ce.path+".category", "must hold exactly one category")
	}
	if len(cats) > 0 {
		for _, cd := range cats[0].all("coding") {
			if cd.str("system") == sysCat || m.Category == "" {
				m.Category = cd.str("code")
			}
		}
		if sys := cats[0].str("coding.system"); sys != sysCat {
			add(ce.path+".category[0].coding[0].system", "must be %s", sysCat)
		}
	}
	m.Topic = c.str("topic.text")
	m.paths.topic = ce.path + ".topic.text"
	m.Priority = c.str("priority")
	m.paths.priority = ce.path + ".priority"

	// The patient: Communication.subject, and exactly one Patient overall.
	pats := b.ofType("Patient")
	switch len(pats) {
	case 0:
		add("Bundle.entry", "must hold exactly one Patient (none found)")
	case 1:
	default:
		add(pats[1].path, "must not be present: a CareCommunication holds exactly one Patient (found %d)", len(pats))
	}
	pe := b.resolve(c.str("subject.reference"), ce)
	if pe == nil || pe.typ != "Patient" {
		add(ce.path+".subject.reference", "must resolve to the Patient entry in the Bundle")
		if len(pats) > 0 {
			pe = pats[0]
		}
	}
	if pe != nil {
		m.readPatient(pe)
	}

	// A more specific recipient and sender than the organisations (optional):
	// a CareTeam's name is kept as the party's unit; a PractitionerRole (a
	// named GP) says nothing the hub routes on.
	if ct := b.resolve(c.str("recipient.reference"), ce); ct != nil && ct.typ == "CareTeam" {
		m.recipientUnit = ct.res.str("name")
	}
	if x := c.ext(extSender); x != nil {
		if ct := b.resolve(x.str("valueReference.reference"), ce); ct != nil && ct.typ == "CareTeam" {
			m.senderUnit = ct.res.str("name")
		}
	}

	// Episode of care (carried over on reply).
	if enc := b.resolve(c.str("encounter.reference"), ce); enc != nil && enc.typ == "Encounter" {
		if v := enc.res.str("episodeOfCare.identifier.value"); v != "" {
			m.episode = &episode{system: enc.res.str("episodeOfCare.identifier.system"), value: v}
		}
	}

	// Payload segments.
	texts := 0
	for i, p := range c.all("payload") {
		path := fmt.Sprintf("%s.payload[%d]", ce.path, i)
		s := segment{}
		if x := p.ext(extDateTime); x != nil {
			s.time = x.str("valueDateTime")
		}
		if x := p.ext(extIdentifier); x != nil {
			s.id = x.str("valueIdentifier.value")
			if a := b.resolve(x.str("valueIdentifier.assigner.reference"), ce); a != nil && a.typ == "Organization" {
				s.assignerSOR = orgOf(a.res).SOR
			}
		}
		if s.id == "" {
			add(path+".extension(identifier)", "must give the segment identifier")
		}
		if s.time == "" {
			add(path+".extension(datetime)", "must give the segment date-time")
		} else if _, err := parseInstant(s.time); err != nil {
			add(path+".extension(datetime).valueDateTime", "must be a date-time with time zone")
		}
		if x := p.ext(extPractitioner); x != nil {
			s.author = readAuthor(b, ce, x.str("valueReference.reference"))
			if s.author != nil {
				if cp := p.ext(extContact); cp != nil {
					s.author.phone = cp.str("valueContactPoint.value")
				}
			}
		}
		switch {
		case p.first("contentString") != nil:
			s.text = p.str("contentString")
			texts++
		case p.first("contentAttachment") != nil:
			a := p.first("contentAttachment")
			sa := &segAttachment{contentType: a.str("contentType"), title: a.str("title"), url: a.str("url"), creation: a.str("creation")}
			var content *contentFacts
			if d := a.str("data"); d != "" {
				if p := m.parts.Part(d); p != nil && !p.Envelope {
					// Lifted out by the scan: measured, not read in.
					if p.Bad != nil {
						add(path+".contentAttachment.data", "must be base64")
					} else {
						sa.part = p
						content = &contentFacts{size: p.Size, sha1: p.SHA1}
					}
				} else {
					data, err := decodeBase64(d)
					if err != nil {
						add(path+".contentAttachment.data", "must be base64")
					}
					sa.data = data
				}
			}
			if sa.data != nil {
				sum := sha1.Sum(sa.data)
				content = &contentFacts{size: int64(len(sa.data)), sha1: sum[:]}
			}
			if sa.title == "" {
				add(path+".contentAttachment.title", "must be present")
			}
			m.findings = append(m.findings, checkAttachment(path+".contentAttachment", a, content)...)
			s.att = sa
		default:
			add(path, "must hold contentString or contentAttachment")
		}
		m.segments = append(m.segments, s)
	}
	if texts == 0 {
		add(ce.path+".payload", "must hold at least one text segment (contentString)")
	}
	m.collectContent()
}

func (m *Message) readPatient(pe *entry) {
	m.paths.patient = pe.path
	p := &letter.Patient{}
	m.paths.patientID = pe.path + ".identifier"
	rank := 0
	for i, id := range pe.res.all("identifier") {
		sys, v := id.str("system"), id.str("value")
		if v == "" {
			continue // e.g. a value given only as a data-absent-reason
		}
		path := fmt.Sprintf("%s.identifier[%d].value", pe.path, i)
		switch r := replacementRank(sys); {
		case sys == sysCPR && p.CPR == "":
			p.CPR = v
			m.paths.patientID = path
		case r > rank:
			rank = r
			p.ReplacementID, p.ReplacementSystem = v, sys
			m.paths.replacementID = path
		}
	}
	if p.CPR == "" && p.ReplacementID == "" {
		m.findings = append(m.findings, ferr(pe.path+".identifier", "must hold a CPR number (%s) or, for a child without one, a replacement CPR (X-eCPR %s, D-eCPR %s.*, E-CPR %s)", sysCPR, sysXeCPR, sysDeCPR, sysECPR))
	}
	if p.CPR == "" && p.ReplacementID != "" {
		m.paths.patientID = m.paths.replacementID
	}

	// The official name if there is one, else the first (MedCom's receive
	// test G sends a child known only by a "temp" name). A family name that
	// is unknown is absent with a data-absent-reason extension, which
	// MedCom's patient profile (from DK-core) allows; the name is then left
	// empty, never made up.
	names := pe.res.all("name")
	ni := -1
	for i, n := range names {
		if n.str("use") == "official" {
			ni = i
			break
		}
	}
	if ni < 0 && len(names) > 0 {
		ni = 0
	}
	if ni < 0 {
		m.findings = append(m.findings, ferr(pe.path+".name", "must hold the patient's name (a family name, or a data-absent-reason extension on family when it is unknown)"))
	} else {
		name := names[ni]
		var given []string
		for _, g := range name.all("given") {
			if g.val != "" {
				given = append(given, g.val)
			}
		}
		p.GivenName = strings.Join(given, " ")
		fam := name.first("family")
		if fam != nil {
			p.FamilyName = fam.val
		}
		if p.FamilyName == "" {
			reason := absentReason(fam)
			if reason == "" {
				reason = absentReason(name)
			}
			if reason == "" {
				m.findings = append(m.findings, ferr(fmt.Sprintf("%s.name[%d].family", pe.path, ni),
					"must hold the family name, or a data-absent-reason extension (%s) saying why it is missing", extAbsent))
			}
			m.nameAbsent = reason
		}
	}
	if a := pe.res.first("address"); a != nil {
		var lines []string
		for _, l := range a.all("line") {
			if l.val != "" {
				lines = append(lines, l.val)
			}
		}
		if pc := strings.TrimSpace(a.str("postalCode") + " " + a.str("city")); pc != "" {
			lines = append(lines, pc)
		}
		p.Address = strings.Join(lines, ", ")
	}
	m.Patient = p
}

// absentReason returns the code of n's data-absent-reason extension, or "".
func absentReason(n *node) string {
	if x := n.ext(extAbsent); x != nil {
		if c := x.str("valueCode"); c != "" {
			return c
		}
		return "unknown" // the extension without a code still says the value is absent
	}
	return ""
}

func readAuthor(b *bundle, from *entry, ref string) *author {
	re := b.resolve(ref, from)
	if re == nil || re.typ != "PractitionerRole" {
		return nil
	}
	a := &author{
		roleSystem: re.res.str("code.coding.system"),
		roleCode:   re.res.str("code.coding.code"),
		roleText:   re.res.str("code.text"),
	}
	if pr := b.resolve(re.res.str("practitioner.reference"), re); pr != nil && pr.typ == "Practitioner" {
		n := pr.res.first("name")
		for _, g := range n.all("given") {
			a.given = append(a.given, g.val)
		}
		a.family = n.str("family")
	}
	return a
}

// collectContent fills Text and Attachments. A reply repeats the thread's
// earlier segments (already delivered with the earlier letters), so only the
// segments this message added, as listed by its own Provenance, are taken;
// a new or forwarded message contributes all of them. Segments are ordered by
// their date-time, as MedCom asks receivers to show them.
func (m *Message) collectContent() {
	segs := append([]segment(nil), m.segments...)
	if m.activity == actReply && m.own != nil {
		mine := map[string]bool{}
		for _, en := range m.own.entities {
			if en.role == "source" && en.ident != "" {
				mine[en.ident] = true
			}
		}
		var added []segment
		for _, s := range m.segments {
			if mine[s.id] {
				added = append(added, s)
			}
		}
		if len(added) > 0 { // else the Provenance lists none of them: take all
			segs = added
		}
	}
	sort.SliceStable(segs, func(i, j int) bool {
		ti, ei := parseInstant(segs[i].time)
		tj, ej := parseInstant(segs[j].time)
		return ei == nil && ej == nil && ti.Before(tj)
	})
	var texts []string
	m.Attachments = nil
	m.attMissing = 0
	for _, s := range segs {
		switch {
		case s.att != nil && s.att.part != nil:
			p := s.att.part
			m.Attachments = append(m.Attachments, letter.StreamedAttachment(s.att.title, s.att.contentType, p.Size, p.SHA256,
				func(context.Context) (io.ReadCloser, error) { return p.Open() }))
		case s.att != nil && s.att.data != nil:
			m.Attachments = append(m.Attachments, letter.NewAttachment(s.att.title, s.att.contentType, s.att.data))
		case s.att != nil && s.att.url != "":
			// A link (a web page) travels as its address, as XDIS91's
			// Reference/URL does.
			m.Attachments = append(m.Attachments, letter.NewAttachment(s.att.title, contentTypeLink, []byte(s.att.url)))
		case s.att != nil:
			m.attMissing++
		default:
			texts = append(texts, s.text)
		}
	}
	m.Text = strings.Join(texts, "\n\n")
}

// decodeBase64 accepts base64 with line breaks, which XML producers add,
// and spaces. The decoder skips \r and \n itself, so only spaces and tabs
// need a copy without them (an attachment is tens of megabytes).
func decodeBase64(s string) ([]byte, error) {
	if strings.ContainsAny(s, " \t") {
		s = strings.Map(func(r rune) rune {
			if r == ' ' || r == '\n' || r == '\r' || r == '\t' {
				return -1
			}
			return r
		}, s)
	}
	return base64.StdEncoding.DecodeString(s)
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// modifierExtensions refuses every modifierExtension under n. FHIR lets a
// receiver ignore an extension it does not know, but not a modifier
// extension: it may change what the element means (e.g. "this text is
// retracted"), and MedCom's profiles define none, so none is known here.
func modifierExtensions(n *node, path string, add func(string, string, ...any)) {
	seen := map[string]int{}
	for _, k := range n.kids {
		seen[k.name]++
	}
	at := map[string]int{}
	for _, k := range n.kids {
		p := path + "." + k.name
		switch {
		case k.name == "resource" && len(k.kids) == 1:
			k = k.kids[0]
			p += "(" + k.name + ")"
		case k.list || seen[k.name] > 1:
			p += fmt.Sprintf("[%d]", at[k.name])
		}
		at[k.name]++
		if k.name == "modifierExtension" {
			url := k.url
			switch {
			case url == "":
				url = "(no url)"
			case len(url) > 200:
				url = strings.ToValidUTF8(url[:200], "") + "…"
			}
			add(p, "unknown modifier extension %s: it may change the meaning of its element, so it cannot be ignored (FHIR); expected none", url)
			continue
		}
		modifierExtensions(k, p, add)
	}
}
