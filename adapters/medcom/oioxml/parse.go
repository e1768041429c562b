package oioxml

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // Europe/Copenhagen must resolve on minimal hosts
	"unicode/utf8"

	"github.com/beevik/etree"

	"github.com/samhub/samhub/adapters/medcom/xmlsafe"
)

// FieldError names the element at fault and the rule it breaks. Msg never
// quotes the element's value (it may be a CPR number or a name).
type FieldError struct {
	Path string // e.g. Emessage/ClinicalEmail[1]/Patient/CivilRegistrationNumber
	Msg  string
}

func (e *FieldError) Error() string { return e.Path + ": " + e.Msg }

// Kind of failure, for choosing a RefuseCode.
var (
	// ErrUnsupported marks input that is well-formed but not a type or
	// version this package reads (RefuseCode problem_med_version).
	ErrUnsupported = errors.New("unsupported OIOXML type or version")
)

var copenhagen = mustLoad("Europe/Copenhagen")

func mustLoad(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// maxOIOXMLRun bounds one attribute value or text run in OIOXML.
const maxOIOXMLRun = 1 << 20

// Parse reads and validates one Emessage. On validation errors it returns
// the Emessage as far as it could be read (so a negative receipt can name the
// envelope and sender) together with errors.Join of *FieldError; on input that
// is not safe or not well-formed XML it returns a nil Emessage and the
// *xmlsafe.Error.
func Parse(data []byte, lim xmlsafe.Limits) (*Emessage, error) {
	return parse(data, lim, nil)
}

// parse is Parse; an object whose bytes are one of standIns is a built
// letter's stand-in for a file streamed in later (body.Template.Mark), and
// its declared size is not held to those bytes (the stream is held to it).
func parse(data []byte, lim xmlsafe.Limits, standIns [][]byte) (*Emessage, error) {
	// XDIS91 carries no base64 attachments (unlike FHIR XML), so no single
	// attribute or text run needs the default's tens of megabytes; an
	// XBIN01 file does, in its Object_Base64Encoded.
	if (lim.MaxAttrLen <= 0 || lim.MaxAttrLen > maxOIOXMLRun) && !bytes.Contains(data, []byte("BinaryLetter")) {
		lim.MaxAttrLen = maxOIOXMLRun
	}
	doc, err := xmlsafe.Parse(data, lim)
	if err != nil {
		return nil, err
	}
	m := &Emessage{Charset: declaredCharset(data)}
	r := &reader{standIns: standIns}
	root := doc.Root()
	if root.Tag != "Emessage" {
		return nil, fmt.Errorf("%w: root element is %s, expected Emessage", ErrUnsupported, root.Tag)
	}
	m.Namespace = root.NamespaceURI()
	if m.Namespace != NS2006 && m.Namespace != NS2005 {
		// Another MedCom letter family: its envelope and letter heads are
		// still read, so its sender gets a negative receipt.
		m.Envelope.Identifier = headText(root, "Envelope", "Identifier")
		m.Unread = unreadHeads(root.ChildElements())
		return m, fmt.Errorf("%w: Emessage: namespace %q is not one of the XDIS91/receipt namespaces (%s, %s)", ErrUnsupported, m.Namespace, NS2006, NS2005)
	}
	r.ns = m.Namespace
	s := r.seq(root, "Emessage")
	if env := s.one("Envelope"); env != nil {
		m.Envelope = r.envelope(env, "Emessage/Envelope")
	}
	items := s.rest()
	if len(items) == 0 {
		r.fail("Emessage", "must contain at least one letter after Envelope")
	}
	for i, el := range items {
		switch {
		case el.Tag == "Local_Elements":
			continue // xs:anyType: anything goes
		case el.Tag == "ClinicalEmail":
			ce := r.clinicalEmail(el, len(m.Letters)+1)
			m.Letters = append(m.Letters, ce)
		case el.Tag == "BinaryLetter":
			m.Binaries = append(m.Binaries, r.binaryLetter(el, len(m.Binaries)+1))
		case el.Tag == NegativeVansReceipt || el.Tag == NegativeReceipt || el.Tag == PositiveReceipt:
			rc := r.receipt(el, len(m.Receipts)+1)
			m.Receipts = append(m.Receipts, rc)
		default:
			m.Unread = unreadHeads(items[i:])
			return m, fmt.Errorf("%w: Emessage/%s: letter type %s is not read by this hub (it reads ClinicalEmail XDIS91, BinaryLetter XBIN01 and receipts XCTL01-03)", ErrUnsupported, el.Tag, el.Tag)
		}
	}
	if r.unsupported != nil {
		return m, r.unsupported
	}
	return m, errors.Join(r.errs...)
}

// unreadHeads reads, as leniently as it can, the head of each letter of a
// type this hub does not read: every MedCom OIOXML letter starts with
// Letter (Identifier, VersionCode), Sender and Receiver (EANIdentifier),
// which is all a negative receipt needs. Receipts are skipped: a receipt is
// never answered.
func unreadHeads(els []*etree.Element) []*ClinicalEmail {
	var out []*ClinicalEmail
	for _, el := range els {
		if el.Tag == "Envelope" || el.Tag == "Local_Elements" || strings.HasSuffix(el.Tag, "Receipt") {
			continue
		}
		out = append(out, &ClinicalEmail{
			Index:       len(out) + 1,
			Identifier:  headText(el, "Letter", "Identifier"),
			VersionCode: headText(el, "Letter", "VersionCode"),
			Sender:      Party{EAN: headText(el, "Sender", "EANIdentifier")},
			Receiver:    Party{EAN: headText(el, "Receiver", "EANIdentifier")},
		})
	}
	return out
}

// headText is the text of el/a/b, in whatever namespace.
func headText(el *etree.Element, a, b string) string {
	if el = el.SelectElement(a); el == nil {
		return ""
	}
	return strings.TrimSpace(xmlsafe.Text(el.SelectElement(b)))
}

// IsUnsupported reports whether err says the input is a type or version this
// package does not read.
func IsUnsupported(err error) bool { return errors.Is(err, ErrUnsupported) }

var encDecl = regexp.MustCompile(`^\s*<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9._-]+)["']`)

func declaredCharset(data []byte) string {
	data = bytes.TrimPrefix(data, []byte{0xEF, 0xBB, 0xBF})
	if m := encDecl.FindSubmatch(data[:min(len(data), 200)]); m != nil {
		return string(m[1])
	}
	return ""
}

type reader struct {
	ns          string
	errs        []error
	unsupported error
	standIns    [][]byte // see parse
}

func (r *reader) fail(path, msg string, args ...any) {
	r.errs = append(r.errs, &FieldError{Path: path, Msg: fmt.Sprintf(msg, args...)})
}

// seq walks an element's children in the order an xs:sequence prescribes.
type seq struct {
	r    *reader
	path string
	kids []*etree.Element
	i    int
}

func (r *reader) seq(el *etree.Element, path string) *seq {
	s := &seq{r: r, path: path, kids: el.ChildElements()}
	for _, k := range s.kids {
		if k.NamespaceURI() != r.ns && k.Tag != "Local_Elements" {
			r.fail(path+"/"+k.Tag, "element is in namespace %q, expected %q", k.NamespaceURI(), r.ns)
		}
	}
	for _, t := range el.Child {
		if cd, ok := t.(*etree.CharData); ok && strings.TrimSpace(cd.Data) != "" {
			r.fail(path, "must contain only elements, not text")
			break
		}
	}
	return s
}

func (s *seq) peek(name string) bool { return s.i < len(s.kids) && s.kids[s.i].Tag == name }

func (s *seq) opt(name string) *etree.Element {
	if s.peek(name) {
		s.i++
		return s.kids[s.i-1]
	}
	return nil
}

func (s *seq) one(name string) *etree.Element {
	if el := s.opt(name); el != nil {
		return el
	}
	if s.i < len(s.kids) {
		s.r.fail(s.path+"/"+name, "required element missing (found %s instead)", s.kids[s.i].Tag)
	} else {
		s.r.fail(s.path+"/"+name, "required element missing")
	}
	return nil
}

func (s *seq) many(name string, maxN int) []*etree.Element {
	var out []*etree.Element
	for s.peek(name) {
		out = append(out, s.kids[s.i])
		s.i++
	}
	if len(out) > maxN {
		s.r.fail(s.path+"/"+name, "at most %d allowed, found %d", maxN, len(out))
	}
	return out
}

func (s *seq) rest() []*etree.Element {
	out := s.kids[s.i:]
	s.i = len(s.kids)
	return out
}

// end reports children the sequence does not allow (unknown or out of order).
func (s *seq) end() {
	for _, k := range s.kids[s.i:] {
		s.r.fail(s.path+"/"+k.Tag, "element not allowed here (unknown, repeated or out of order)")
	}
	s.i = len(s.kids)
}

// Simple-content helpers. Values are trimmed: MedCom files are sometimes
// indented inside simple elements, and no rule here depends on outer spaces.
// Paths are joined from parent and name only when a rule fails: building
// them for every field was a measurable share of a parse.
func (r *reader) text(el *etree.Element, parent, name string) string {
	if el == nil {
		return ""
	}
	for _, t := range el.Child {
		if k, ok := t.(*etree.Element); ok {
			r.fail(parent+"/"+name, "must contain text only, found element %s", k.Tag)
			break
		}
	}
	return strings.TrimSpace(xmlsafe.Text(el))
}

// take reads the next element name, required or optional.
func (s *seq) take(name string, required bool) *etree.Element {
	if required {
		return s.one(name)
	}
	return s.opt(name)
}

func (r *reader) str(s *seq, name string, minL, maxL int, required bool) string {
	el := s.take(name, required)
	if el == nil {
		return ""
	}
	v := r.text(el, s.path, name)
	if n := utf8.RuneCountInString(v); n < minL || n > maxL {
		if minL == maxL {
			r.fail(s.path+"/"+name, "must be exactly %d characters, found %d", minL, n)
		} else {
			r.fail(s.path+"/"+name, "must be %d to %d characters, found %d", minL, maxL, n)
		}
	}
	return v
}

func (r *reader) enum(s *seq, name string, required bool, allowed ...string) string {
	el := s.take(name, required)
	if el == nil {
		return ""
	}
	v := r.text(el, s.path, name)
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	if len(allowed) > 12 {
		r.fail(s.path+"/"+name, "must be one of MedCom's %d codes for this element (see ValueLists.xsd)", len(allowed))
	} else {
		r.fail(s.path+"/"+name, "must be one of %s", strings.Join(allowed, ", "))
	}
	return v
}

var hhmm = regexp.MustCompile(`^(([0-1][0-9])|(2[0-3])):[0-5][0-9]$`)

// dateTime reads a DateTimeType (Date xs:date + Time hh:mm) as Danish local time.
func (r *reader) dateTime(el *etree.Element, path string) time.Time {
	if el == nil {
		return time.Time{}
	}
	s := r.seq(el, path)
	d := r.text(s.one("Date"), path, "Date")
	tm := r.text(s.one("Time"), path, "Time")
	s.end()
	day, err := parseXSDate(d)
	if err != nil && d != "" {
		r.fail(path+"/Date", "must be a date YYYY-MM-DD")
	}
	if tm != "" && !hhmm.MatchString(tm) {
		r.fail(path+"/Time", "must be a time hh:mm (00:00 to 23:59)")
		return time.Time{}
	}
	if err != nil || tm == "" {
		return time.Time{}
	}
	h, _ := strconv.Atoi(tm[:2])
	mi, _ := strconv.Atoi(tm[3:])
	return time.Date(day.Year(), day.Month(), day.Day(), h, mi, 0, 0, copenhagen)
}

// parseXSDate accepts xs:date with an optional time zone, as the XSD does.
func parseXSDate(s string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02", "2006-01-02Z07:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errors.New("bad date")
}

func (r *reader) envelope(el *etree.Element, path string) Envelope {
	var e Envelope
	s := r.seq(el, path)
	e.Sent = r.dateTime(s.one("Sent"), path+"/Sent")
	e.Identifier = r.str(s, "Identifier", 1, 14, true)
	e.AcknowledgementCode = r.enum(s, "AcknowledgementCode", true, AckNotWanted, AckWanted)
	s.end()
	return e
}

func (r *reader) clinicalEmail(el *etree.Element, idx int) *ClinicalEmail {
	ce := &ClinicalEmail{Index: idx}
	path := fmt.Sprintf("Emessage/ClinicalEmail[%d]", idx)
	s := r.seq(el, path)
	if l := s.one("Letter"); l != nil {
		lp := path + "/Letter"
		ls := r.seq(l, lp)
		ce.Identifier = r.str(ls, "Identifier", 1, 14, true)
		want := VersionXD9134L
		if r.ns == NS2005 {
			want = VersionXD9133L
		}
		ce.VersionCode = r.text(ls.one("VersionCode"), lp, "VersionCode")
		if ce.VersionCode != "" && ce.VersionCode != want {
			if ce.VersionCode == VersionXD9134L || ce.VersionCode == VersionXD9133L {
				r.fail(lp+"/VersionCode", "must be %s in namespace %s", want, r.ns)
			} else if r.unsupported == nil {
				r.unsupported = fmt.Errorf("%w: %s/VersionCode: version is not %s or %s", ErrUnsupported, lp, VersionXD9134L, VersionXD9133L)
			}
		}
		ce.StatisticalCode = r.str(ls, "StatisticalCode", 1, 8, true)
		ce.Authorisation = r.dateTime(ls.one("Authorisation"), lp+"/Authorisation")
		ce.TypeCode = r.enum(ls, "TypeCode", true, "XDIS91")
		ce.StatusCode = r.enum(ls, "StatusCode", true, "nytbrev", "rettetbrev")
		ce.EpisodeOfCareIdentifier = r.str(ls, "EpisodeOfCareIdentifier", 1, 35, false)
		ls.end()
	}
	if el := s.one("Sender"); el != nil {
		ce.Sender = r.party(el, path+"/Sender", true)
	}
	if el := s.one("Receiver"); el != nil {
		ce.Receiver = r.party(el, path+"/Receiver", false)
	}
	if el := s.one("Patient"); el != nil {
		ce.Patient = r.patient(el, path+"/Patient", true)
	}
	if r.ns == NS2006 {
		if ai := s.opt("AdditionalInformation"); ai != nil {
			ap := path + "/AdditionalInformation"
			as := r.seq(ai, ap)
			ce.Priority = r.enum(as, "Priority", false, "rutine", "høj_prioritet")
			ce.Subject = r.str(as, "Subject", 1, 70, false)
			as.end()
		}
	}
	for i, ci := range s.many("ClinicalInformation", 10) {
		cp := fmt.Sprintf("%s/ClinicalInformation[%d]", path, i+1)
		cs := r.seq(ci, cp)
		if t := cs.one("Text01"); t != nil {
			ce.Texts = append(ce.Texts, r.formatted(t, cp+"/Text01"))
		}
		cs.end()
	}
	for i, ref := range s.many("Reference", 10) {
		ce.References = append(ce.References, r.reference(ref, fmt.Sprintf("%s/Reference[%d]", path, i+1)))
	}
	s.end()
	return ce
}

var identifierCodes = []string{"sygehusafdelingsnummer", "ydernummer", "lokationsnummer", "kommunenummer", "amt", "sorkode"}

func (r *reader) party(el *etree.Element, path string, sender bool) Party {
	var p Party
	s := r.seq(el, path)
	p.EAN = r.str(s, "EANIdentifier", 1, 35, true)
	p.Identifier = r.str(s, "Identifier", 1, 17, true)
	p.IdentifierCode = r.enum(s, "IdentifierCode", true, identifierCodes...)
	p.OrganisationName = r.str(s, "OrganisationName", 1, 35, sender)
	p.DepartmentName = r.str(s, "DepartmentName", 1, 35, false)
	p.UnitName = r.str(s, "UnitName", 1, 35, false)
	p.StreetName = r.str(s, "StreetName", 1, 35, false)
	p.SuburbName = r.str(s, "SuburbName", 1, 35, false)
	p.DistrictName = r.str(s, "DistrictName", 1, 35, false)
	p.PostCode = r.str(s, "PostCodeIdentifier", 1, 9, false)
	if sender {
		p.Telephone = r.str(s, "TelephoneSubscriberIdentifier", 1, 25, false)
		p.MedicalSpecialityCode = r.enum(s, "MedicalSpecialityCode", false, medicalSpecialityCodes...)
	}
	s.end()
	return p
}

// patient reads a Patient block; XBIN01's has no EpisodeOfCareStatusCode
// in the converter's mapping, so there it may be left out.
func (r *reader) patient(el *etree.Element, path string, statusRequired bool) Patient {
	var p Patient
	s := r.seq(el, path)
	switch {
	case s.peek("CivilRegistrationNumber"):
		p.CPR = r.text(s.one("CivilRegistrationNumber"), path, "CivilRegistrationNumber")
		if msg := CheckCPR(p.CPR); msg != "" {
			r.fail(path+"/CivilRegistrationNumber", "%s", msg)
		}
	case s.peek("AlternativeIdentifier"):
		p.AlternativeID = r.str(s, "AlternativeIdentifier", 10, 10, true)
	default:
		r.fail(path+"/CivilRegistrationNumber", "required element missing (or AlternativeIdentifier)")
	}
	p.Surname = r.personName(s, "PersonSurnameName", true)
	p.GivenName = r.personName(s, "PersonGivenName", false)
	p.StreetName = r.str(s, "StreetName", 1, 35, false)
	p.SuburbName = r.str(s, "SuburbName", 1, 35, false)
	p.DistrictName = r.str(s, "DistrictName", 1, 35, false)
	p.PostCode = r.str(s, "PostCodeIdentifier", 1, 9, false)
	p.Occupancy = r.str(s, "OccupancyText", 1, 35, false)
	p.EpisodeOfCareStatusCode = r.enum(s, "EpisodeOfCareStatusCode", statusRequired, "inaktiv", "indlagt", "ambulant", "doed", "ambulant_roentgen")
	s.end()
	return p
}

// personName reads a name of String_1_70. White space alone is a valid value
// (xs:string keeps it) and is what a sender writes for a name it does not
// know, so it reads as an empty name rather than being refused.
func (r *reader) personName(s *seq, name string, required bool) string {
	el := s.take(name, required)
	if el == nil {
		return ""
	}
	raw := xmlsafe.Text(el)
	v := r.text(el, s.path, name)
	if n := utf8.RuneCountInString(v); raw == "" || n > 70 {
		r.fail(s.path+"/"+name, "must be 1 to 70 characters, found %d", n)
	}
	return v
}

// CheckCPR returns "" for a valid CPR number, else a message without the
// number. Rules: 10 digits, DDMMYY a real date once the century is taken
// from digit 7 (cpr.dk), or the XSD's "0000000000" for "unknown". There is no
// modulus-11 check: CPR numbers without it are issued since 2007.
func CheckCPR(cpr string) string {
	if cpr == "0000000000" {
		return ""
	}
	if len(cpr) != 10 || strings.Trim(cpr, "0123456789") != "" {
		return "must be 10 digits (DDMMYY and 4 digits)"
	}
	d, _ := strconv.Atoi(cpr[0:2])
	m, _ := strconv.Atoi(cpr[2:4])
	yy, _ := strconv.Atoi(cpr[4:6])
	year := cprCentury(cpr[6], yy) + yy
	t := time.Date(year, time.Month(m), d, 0, 0, 0, 0, time.UTC)
	if m < 1 || m > 12 || d < 1 || t.Day() != d || int(t.Month()) != m {
		return "must start with a real birth date DDMMYY"
	}
	return ""
}

func cprCentury(d7 byte, yy int) int {
	switch {
	case d7 <= '3':
		return 1900
	case d7 == '4' || d7 == '9':
		if yy <= 36 {
			return 2000
		}
		return 1900
	default: // 5-8
		if yy <= 57 {
			return 2000
		}
		return 1800
	}
}

var formatting = map[string]bool{"Bold": true, "Italic": true, "Underline": true, "Right": true, "Center": true, "FixedFont": true}

// formatted flattens FormattedText: <Break/> becomes a newline, <Space/> a
// space, and the styling elements keep their text (FHIR has no styling).
func (r *reader) formatted(el *etree.Element, path string) string {
	var b strings.Builder
	b.Grow(textLen(el))
	r.flatten(&b, el, path, 0)
	return b.String()
}

// flatten writes el's text to b; one builder for the whole tree, sized
// up front, saves the copies of growing it piece by piece. level follows
// FormattedText.xsd: 0 FormattedText (any styling), 1 inside FixedFont
// (styling but no FixedFont), 2 inside Bold etc. (Break/Space only).
func (r *reader) flatten(b *strings.Builder, el *etree.Element, path string, level int) {
	for _, t := range el.Child {
		switch t := t.(type) {
		case *etree.CharData:
			b.WriteString(t.Data)
		case *etree.Element:
			switch {
			case t.Tag == "Break":
				b.WriteByte('\n')
			case t.Tag == "Space":
				b.WriteByte(' ')
			case formatting[t.Tag] && level < 2 && (level == 0 || t.Tag != "FixedFont"):
				next := 2
				if t.Tag == "FixedFont" {
					next = 1
				}
				r.flatten(b, t, path+"/"+t.Tag, next)
			default:
				r.fail(path+"/"+t.Tag, "element not allowed in formatted text (allowed: Break, Space, Bold, Italic, Underline, Right, Center, FixedFont)")
			}
		}
	}
}

// textLen is the length of all text under el plus one byte per element (a
// Break or Space): what flatten writes, or a little more.
func textLen(el *etree.Element) int {
	n := 0
	for _, t := range el.Child {
		switch t := t.(type) {
		case *etree.CharData:
			n += len(t.Data)
		case *etree.Element:
			n += 1 + textLen(t)
		}
	}
	return n
}

func (r *reader) reference(el *etree.Element, path string) Reference {
	var ref Reference
	s := r.seq(el, path)
	ref.Description = r.str(s, "RefDescription", 1, 70, true)
	switch {
	case s.peek("URL"):
		ref.URL = r.str(s, "URL", 1, 350, true)
	case s.peek("SUP"):
		v := r.text(s.one("SUP"), path, "SUP")
		if v != "true" {
			r.fail(path+"/SUP", "must be true")
		}
		ref.SUP = true
	case s.peek("BIN"):
		bp := path + "/BIN"
		bs := r.seq(s.one("BIN"), bp)
		b := r.binObject(bs, bp)
		bs.end()
		ref.BIN = &b
	default:
		r.fail(path+"/URL", "required element missing (or SUP or BIN)")
	}
	s.end()
	return ref
}

// binObject reads the description of a binary object, in a BIN reference
// and in XBIN01's BinaryObject alike.
func (r *reader) binObject(bs *seq, bp string) BinObject {
	var b BinObject
	b.Identifier = r.str(bs, "ObjectIdentifier", 1, 35, true)
	b.ObjectCode = r.enum(bs, "ObjectCode", true, "tekstfil", "billede", "program", "vektor_grafik", "biosignaler", "multimedie", "proprietaert_indhold")
	b.ExtensionCode = r.enum(bs, "ObjectExtensionCode", true, objectExtensionCodes...)
	if v := r.text(bs.one("OriginalObjectSize"), bp, "OriginalObjectSize"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			r.fail(bp+"/OriginalObjectSize", "must be a positive integer")
		}
		b.Size = n
	}
	return b
}

// binaryLetter reads XBIN01 (XB0130X) as MedCom's EDIFACT-to-OIOXML
// converter writes it: Letter, Sender, Receiver, Patient or
// SystemInformation, then one or more BinaryObject.
func (r *reader) binaryLetter(el *etree.Element, idx int) *BinaryLetter {
	b := &BinaryLetter{Index: idx}
	path := fmt.Sprintf("Emessage/BinaryLetter[%d]", idx)
	s := r.seq(el, path)
	if l := s.one("Letter"); l != nil {
		lp := path + "/Letter"
		ls := r.seq(l, lp)
		b.Identifier = r.str(ls, "Identifier", 1, 14, true)
		b.VersionCode = r.text(ls.one("VersionCode"), lp, "VersionCode")
		if b.VersionCode != "" && b.VersionCode != VersionXBIN01 && r.unsupported == nil {
			r.unsupported = fmt.Errorf("%w: %s/VersionCode: version is not %s", ErrUnsupported, lp, VersionXBIN01)
		}
		b.StatisticalCode = r.str(ls, "StatisticalCode", 1, 8, true)
		if a := ls.opt("Authorisation"); a != nil {
			b.Authorisation = r.dateTime(a, lp+"/Authorisation")
		}
		r.enum(ls, "TypeCode", true, "XBIN01")
		b.StatusCode = r.enum(ls, "StatusCode", true, "nytbrev", "rettetbrev")
		ls.end()
	}
	if el := s.one("Sender"); el != nil {
		b.Sender = r.party(el, path+"/Sender", true)
	}
	if el := s.one("Receiver"); el != nil {
		b.Receiver = r.party(el, path+"/Receiver", false)
	}
	switch {
	case s.peek("SystemInformation"):
		if v := r.text(s.one("SystemInformation"), path, "SystemInformation"); v != "true" {
			r.fail(path+"/SystemInformation", "must be true")
		}
		b.SystemInformation = true
		r.text(s.opt("Contents"), path, "Contents") // a description; no rule known
	default:
		if el := s.one("Patient"); el != nil {
			b.Patient = r.patient(el, path+"/Patient", false)
		}
	}
	objs := s.many("BinaryObject", maxBinaryObjects)
	if len(objs) == 0 {
		r.fail(path+"/BinaryObject", "required element missing")
	}
	for i, oe := range objs {
		op := fmt.Sprintf("%s/BinaryObject[%d]", path, i+1)
		obs := r.seq(oe, op)
		o := BinaryObject{BinObject: r.binObject(obs, op)}
		if de := obs.one("Object_Base64Encoded"); de != nil {
			data, err := decodeBase64(r.text(de, op, "Object_Base64Encoded"))
			switch {
			case err != nil:
				r.fail(op+"/Object_Base64Encoded", "must be base64 (RFC 4648)")
			case len(data) == 0:
				r.fail(op+"/Object_Base64Encoded", "must not be empty")
			case o.Size > 0 && int64(len(data)) != o.Size && !slices.ContainsFunc(r.standIns, func(b []byte) bool { return bytes.Equal(b, data) }):
				// The file was cut short or is not the one described:
				// which, the hub cannot tell, so it takes neither.
				r.fail(op+"/OriginalObjectSize", "declares %d bytes, but Object_Base64Encoded holds %d", o.Size, len(data))
			}
			o.Data = data
		}
		obs.end()
		b.Objects = append(b.Objects, o)
	}
	s.end()
	return b
}

// maxBinaryObjects bounds the objects of one XBIN01 letter: an XDIS91
// letter names at most 10 references.
const maxBinaryObjects = 10

// decodeBase64 decodes base64 broken over lines, as MedCom writes it,
// without a cleaned copy of the text: an object may be most of a 100 MB
// file.
func decodeBase64(s string) ([]byte, error) {
	// Room for all it can hold, and a byte more, so the decoder always has
	// room to report the end. A quantum cut short is io.ErrUnexpectedEOF:
	// an error here.
	out := make([]byte, base64.StdEncoding.DecodedLen(len(s))+1)
	dec := base64.NewDecoder(base64.StdEncoding, &spaceless{s: s})
	n := 0
	for {
		m, err := dec.Read(out[n:])
		n += m
		switch {
		case errors.Is(err, io.EOF):
			return out[:n:n], nil
		case err != nil:
			return nil, err
		case n == len(out):
			return nil, errors.New("base64: more data than its text can hold") // cannot happen
		}
	}
}

// spaceless reads s without its spaces and tabs (the base64 decoder skips
// line breaks itself).
type spaceless struct{ s string }

func (r *spaceless) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) && len(r.s) > 0 {
		if c := r.s[0]; c != ' ' && c != '\t' {
			p[n] = c
			n++
		}
		r.s = r.s[1:]
	}
	if n == 0 && len(r.s) == 0 {
		return 0, io.EOF
	}
	return n, nil
}

var receiptVersions = map[string][2]string{
	NegativeVansReceipt: {VersionXCTL01, "XCTL01"},
	NegativeReceipt:     {VersionXCTL02, "XCTL02"},
	PositiveReceipt:     {VersionXCTL03, "XCTL03"},
}

var refuseCodes = []string{RefuseUnspecified, RefuseUnknownLocation, RefuseReceiverID, RefuseVersion, RefuseSyntax}

// receipt reads XCTL01/02/03 (receipt XSDs of 2005/08/07, structure in medcom.md §1.9).
func (r *reader) receipt(el *etree.Element, idx int) *Receipt {
	rc := &Receipt{Index: idx, Type: el.Tag}
	path := fmt.Sprintf("Emessage/%s[%d]", el.Tag, idx)
	want := receiptVersions[el.Tag]
	s := r.seq(el, path)
	if l := s.one("Letter"); l != nil {
		lp := path + "/Letter"
		ls := r.seq(l, lp)
		rc.Identifier = r.str(ls, "Identifier", 1, 14, true)
		rc.VersionCode = r.enum(ls, "VersionCode", true, want[0])
		rc.StatisticalCode = r.enum(ls, "StatisticalCode", true, want[1])
		ls.end()
	}
	rc.SenderEAN = r.eanOnly(s, "Sender")
	rc.ReceiverEAN = r.eanOnly(s, "Receiver")
	if oe := s.one("OriginalEmessage"); oe != nil {
		op := path + "/OriginalEmessage"
		os := r.seq(oe, op)
		rc.OriginalEnvelopeIdentifier = r.str(os, "OriginalEnvelopeIdentifier", 1, 14, true)
		rc.OriginalSenderEAN = r.eanOnly(os, "OriginalSender")
		rc.OriginalReceiverEAN = r.eanOnly(os, "OriginalReceiver")
		if rc.Type != PositiveReceipt {
			rc.RefuseCode = r.enum(os, "RefuseCode", false, refuseCodes...)
			if t := os.opt("RefuseText"); t != nil {
				rc.RefuseText = r.breakable(t, op+"/RefuseText")
			}
		}
		for i, ol := range os.many("OriginalLetter", 99) {
			lp := fmt.Sprintf("%s/OriginalLetter[%d]", op, i+1)
			ls := r.seq(ol, lp)
			var o OriginalLetter
			o.Identifier = r.str(ls, "OriginalLetterIdentifier", 1, 14, true)
			o.VersionCode = r.str(ls, "OriginalVersionCode", 1, 7, true)
			if rc.Type == NegativeReceipt {
				o.RefuseCode = r.enum(ls, "RefuseCode", false, refuseCodes...)
				if t := ls.opt("RefuseText"); t != nil {
					o.RefuseText = r.breakable(t, lp+"/RefuseText")
				}
			}
			ls.end()
			rc.OriginalLetters = append(rc.OriginalLetters, o)
		}
		os.end()
	}
	s.end()
	return rc
}

func (r *reader) eanOnly(s *seq, name string) string {
	el := s.one(name)
	if el == nil {
		return ""
	}
	ps := r.seq(el, s.path+"/"+name)
	v := r.str(ps, "EANIdentifier", 1, 35, true)
	ps.end()
	return v
}

func (r *reader) breakable(el *etree.Element, path string) string {
	var b strings.Builder
	for _, t := range el.Child {
		switch t := t.(type) {
		case *etree.CharData:
			b.WriteString(t.Data)
		case *etree.Element:
			switch t.Tag {
			case "Break":
				b.WriteByte('\n')
			case "Space":
				b.WriteByte(' ')
			default:
				r.fail(path+"/"+t.Tag, "element not allowed (allowed: Break, Space)")
			}
		}
	}
	return b.String()
}
