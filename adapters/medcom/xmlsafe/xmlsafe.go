// Package xmlsafe parses untrusted XML (MedCom letters, FHIR XML) into an
// etree document, refusing as it reads what could hurt the hub: oversize
// input, DTDs (so external entities and entity expansion never happen),
// excessive depth, token counts or attribute/text sizes, and charsets other
// than UTF-8, ISO-8859-1 and windows-1252.
//
// encoding/xml itself never expands DTD entities, but it has no size or depth
// limits, and etree's default charset reader silently ignores a declared
// ISO-8859-1; this package closes both gaps (see shared/domain/reliability.md §4).
package xmlsafe

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/beevik/etree"
	"golang.org/x/text/encoding/charmap"
)

// Limits bound what Parse and CheckJSON accept. A zero field means "use the
// default" so callers can override just one value.
type Limits struct {
	MaxBytes int64 // whole input
	MaxDepth int   // element (or JSON container) nesting
	// MaxTokens and TokenBytes make the token budget of an input of n bytes,
	// MaxTokens + n/TokenBytes (XML tokens incl. attributes, or JSON
	// tokens): what a parser keeps per token (a tree node, about 250
	// bytes) must stay near the size of the input itself.
	MaxTokens  int
	TokenBytes int
	MaxAttrLen int // one attribute value or one run of character data (or JSON string)
	MaxAttrs   int // attributes on one element
}

// DefaultLimits fits MedCom's largest legal messages (domain/medcom.md §3.1,
// §5.1; docs/operations.md lists them):
//   - MaxBytes 100 MB: the network governance cap for a message incl. its
//     VANSEnvelope and base64 attachments;
//   - MaxDepth 100: XDIS91 nests 6 levels and FHIR Bundles about 15; 100
//     leaves room without letting a stack of tags grow unbounded;
//   - token budget 20,000 + one per 256 bytes: an XDIS91 letter has a few
//     hundred tokens, a CareCommunication a few hundred per message of its
//     thread, and every byte of an attachment is base64 in one value; a
//     100 MB message may hold 410,000 tokens, a 10 KB one 20,000;
//   - MaxAttrLen 100 MB: a FHIR attachment is base64 in one value="…"
//     attribute and a VANSEnvelope carries the whole message base64 in one
//     Data element, so one value may be nearly the whole input; long values
//     are not buffered by the tokenizer (scan.go), so this costs no memory;
//   - MaxAttrs 256: MedCom elements carry a handful of attributes; a million
//     on one element cost encoding/xml a gigabyte.
func DefaultLimits() Limits {
	return Limits{MaxBytes: 100_000_000, MaxDepth: 100, MaxTokens: 20_000, TokenBytes: 256, MaxAttrLen: 100_000_000, MaxAttrs: 256}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxBytes <= 0 {
		l.MaxBytes = d.MaxBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = d.MaxDepth
	}
	if l.MaxTokens <= 0 {
		l.MaxTokens = d.MaxTokens
	}
	if l.TokenBytes <= 0 {
		l.TokenBytes = d.TokenBytes
	}
	if l.MaxAttrLen <= 0 {
		l.MaxAttrLen = d.MaxAttrLen
	}
	if l.MaxAttrs <= 0 {
		l.MaxAttrs = d.MaxAttrs
	}
	return l
}

// TokenBudget is how many tokens an input of size bytes may hold.
func (l Limits) TokenBudget(size int) int {
	l = l.withDefaults()
	return l.MaxTokens + size/l.TokenBytes
}

// Error says where in the document input was refused and why. Msg never
// quotes character data, so it is safe to show to a coordinator.
type Error struct {
	Path   string // element path at the fault, e.g. "Emessage/Envelope"; "" before the root
	Line   int    // 1-based line, 0 if unknown
	Msg    string
	Reason Reason
	// Offset is how far the input had been read when it was refused: the
	// bytes before it were read as XML (or JSON) within every limit, and
	// the fault is at or just before it. 0 when nothing was read as such
	// (a refusal of the whole input: its size, its charset).
	Offset int
	json   bool // from DecodeJSON
}

// Reason classifies an Error for tests and metrics.
type Reason string

const (
	ReasonTooLarge    Reason = "too_large"
	ReasonDTD         Reason = "dtd"
	ReasonTooDeep     Reason = "too_deep"
	ReasonTooMany     Reason = "too_many_tokens"
	ReasonAttrTooLong Reason = "too_long"
	ReasonCharset     Reason = "charset"
	ReasonSyntax      Reason = "syntax"
)

func (e *Error) Error() string {
	var b strings.Builder
	if e.json {
		b.WriteString("json")
	} else {
		b.WriteString("xml")
	}
	if e.Path != "" {
		b.WriteString(" ")
		b.WriteString(e.Path)
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, " (line %d)", e.Line)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// Parse checks data against lim and returns the document with all text in
// UTF-8. The XML declaration of the returned document says UTF-8 so that
// writing it back yields consistent bytes; the caller keeps the original bytes.
// Long values in the document share memory with data, so data must not be
// modified while the document is in use.
//
// A scan of the raw bytes (scan.go) refuses what needs no decoder to refuse
// and takes long values out of the decoder's way; then the input is
// tokenised once: the limits are checked on each token as the tree is
// built, so a refusal stops the read at the offending token, and the token
// budget (TokenBudget) bounds the tree a refused input can grow.
func Parse(data []byte, lim Limits) (*etree.Document, error) {
	return parse(data, lim, longRun)
}

// parse is Parse with long values from long bytes on (tests vary it).
func parse(data []byte, lim Limits, long int) (*etree.Document, error) {
	lim = lim.withDefaults()
	if int64(len(data)) > lim.MaxBytes {
		return nil, &Error{Reason: ReasonTooLarge, Msg: fmt.Sprintf("input is %d bytes, more than the limit of %d", len(data), lim.MaxBytes)}
	}
	bom := len(data)
	data, err := stripBOM(data)
	if err != nil {
		return nil, err
	}
	bom -= len(data)
	doc, err := parseStripped(data, lim, long)
	var xe *Error
	if errors.As(err, &xe) && xe.Offset > 0 {
		xe.Offset += bom // an offset into the input as given
	}
	return doc, err
}

func parseStripped(data []byte, lim Limits, long int) (*etree.Document, error) {
	// The declaration against the bytes first: a US-ASCII or Latin-1
	// declaration over other bytes is the sender's charset mistake, which
	// the scan would report as bad UTF-8 or read as mojibake.
	if err := checkLabel(data); err != nil {
		return nil, err // Offset 0: nothing is read as XML before the charset is trusted
	}
	sc := &scanner{data: data, lim: lim, latin: legacyCharset(data), long: long}
	if err := sc.scan(); err != nil {
		return nil, err
	}
	doc, err := walk(sc, lim)
	if err != nil {
		return nil, err
	}
	for _, t := range doc.Child {
		if pi, ok := t.(*etree.ProcInst); ok && pi.Target == "xml" {
			pi.Inst = `version="1.0" encoding="UTF-8"`
		}
	}
	return doc, nil
}

// legacyCharset is the charmap of a document whose XML declaration names
// ISO-8859-1 or windows-1252, read exactly as encoding/xml reads it (the
// target must be "xml", the label "encoding=" followed by a quote), or nil.
func legacyCharset(data []byte) *charmap.Charmap {
	if !bytes.HasPrefix(data, []byte("<?xml")) {
		return nil
	}
	if len(data) > 5 {
		if c := data[5]; c >= 0x80 || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("_:.-", c) >= 0 {
			return nil // a processing instruction with another target
		}
	}
	end := bytes.Index(data, []byte("?>"))
	if end < 0 {
		return nil
	}
	cm, _ := CharsetOf(procInstParam("encoding", string(data[5:end])))
	return cm
}

// CharsetOf is the charmap of a charset label (an XML declaration's, or a
// MIME part's charset parameter): nil
// for UTF-8 and for US-ASCII (UTF-8's first half; checkLabel refuses a
// byte beyond it), known false for a charset the reader does not take.
// The one-byte charsets are those Danish systems declare: Latin-1, its
// windows-1252 superset and Latin-9 (ISO-8859-15, with €).
func CharsetOf(label string) (cm *charmap.Charmap, known bool) {
	switch strings.ToLower(strings.TrimSpace(label)) {
	case "utf-8", "utf8", "us-ascii", "ascii", "iso646-us":
		return nil, true
	case "iso-8859-1", "iso_8859-1", "iso8859-1", "latin1", "latin-1", "l1":
		return charmap.ISO8859_1, true
	case "windows-1252", "cp1252", "x-cp1252":
		return charmap.Windows1252, true
	case "iso-8859-15", "iso_8859-15", "iso8859-15", "latin-9", "latin9", "l9":
		return charmap.ISO8859_15, true
	}
	return nil, false
}

// procInstParam finds param="value" in a processing instruction as
// encoding/xml's procInst does (no space around '=').
func procInstParam(param, s string) string {
	param += "="
	for i := 0; i < len(s); {
		k := strings.Index(s[i:], param)
		if k < 0 || i+k+len(param) >= len(s) {
			return ""
		}
		i += k + len(param)
		q := s[i]
		i++
		if q == '\'' || q == '"' {
			j := strings.IndexByte(s[i:], q)
			if j < 0 {
				return ""
			}
			return s[i : i+j]
		}
	}
	return ""
}

func stripBOM(data []byte) ([]byte, error) {
	switch {
	case bytes.HasPrefix(data, []byte{0xEF, 0xBB, 0xBF}):
		return data[3:], nil
	case bytes.HasPrefix(data, []byte{0xFE, 0xFF}), bytes.HasPrefix(data, []byte{0xFF, 0xFE}):
		return nil, &Error{Reason: ReasonCharset, Msg: "UTF-16 input is not supported; expected UTF-8, ISO-8859-1 or windows-1252"}
	}
	return data, nil
}

// charsetReader decodes the two legacy charsets MedCom OIOXML uses. WHATWG
// label tables (x/net/html/charset) map iso-8859-1 to windows-1252, so the
// exact charmaps are chosen here by hand.
func charsetReader(label string, in io.Reader) (io.Reader, error) {
	cm, ok := CharsetOf(label)
	switch {
	case !ok:
		return nil, errCharset
	case cm == nil:
		return in, nil
	}
	return cm.NewDecoder().Reader(in), nil
}

var errCharset = errors.New("unsupported charset")

// walk reads the raw tokens once, enforcing the limits on each token and
// adding it to a new document. etree's own reader offers no hook per token,
// so the loop that feeds its tree is written here; it makes the same tree
// etree.Document.ReadFromBytes would. The decoder reads the substitute of
// the input (long values replaced by placeholders), an io.ByteReader, so
// encoding/xml adds no bufio layer.
func walk(sc *scanner, lim Limits) (*etree.Document, error) {
	sub := newSubstitute(sc)
	dec := xml.NewDecoder(sub)
	dec.Strict = true
	dec.CharsetReader = charsetReader
	var (
		names  []xml.Name       // open elements, for end-tag matching and error paths
		elems  []*etree.Element // open elements of the tree
		tokens int
		roots  int
	)
	budget := lim.TokenBudget(len(sc.data))
	var nodes slab
	nodes.init(sc.data)
	doc := etree.NewDocument()
	elems = append(make([]*etree.Element, 0, 16), &doc.Element)
	names = make([]xml.Name, 0, 16)
	fail := func(r Reason, msg string) error {
		line, _ := dec.InputPos()
		return &Error{Reason: r, Path: elementPath(names), Line: line, Msg: msg, Offset: sub.inputPos()}
	}
	tooMany := func() error {
		return fail(ReasonTooMany, fmt.Sprintf("more than %d XML tokens (the limit for an input of %d bytes)", budget, len(sc.data)))
	}
	for {
		tok, err := dec.RawToken()
		if err == io.EOF {
			switch {
			case len(names) > 0:
				return nil, fail(ReasonSyntax, "unexpected end of input: element not closed (truncated file?)")
			case roots == 0:
				return nil, fail(ReasonSyntax, "no root element: input is not XML")
			}
			return doc, nil
		}
		if err != nil {
			return nil, fail(decodeError(err))
		}
		tokens++
		if tokens > budget {
			return nil, tooMany()
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(names) == 0 {
				roots++
				if roots > 1 {
					return nil, fail(ReasonSyntax, "more than one root element")
				}
			}
			names = append(names, t.Name)
			if len(names) > lim.MaxDepth {
				names = names[:lim.MaxDepth]
				return nil, fail(ReasonTooDeep, fmt.Sprintf("elements nested deeper than %d levels", lim.MaxDepth))
			}
			if len(t.Attr) > lim.MaxAttrs {
				return nil, fail(ReasonTooMany, fmt.Sprintf("element %s has %d attributes, more than the limit of %d", qname(t.Name), len(t.Attr), lim.MaxAttrs))
			}
			tokens += len(t.Attr)
			if tokens > budget {
				return nil, tooMany()
			}
			el := nodes.element()
			el.Space, el.Tag = t.Name.Space, t.Name.Local
			elems[len(elems)-1].AddChild(el)
			for _, a := range t.Attr {
				v := sub.expandString(a.Value)
				if len(v) > lim.MaxAttrLen {
					return nil, fail(ReasonAttrTooLong, fmt.Sprintf("attribute %s is %d bytes, more than the limit of %d", qname(a.Name), len(v), lim.MaxAttrLen))
				}
				// CreateAttr links the attribute to its element and
				// keeps the last of duplicate names, as etree's reader does.
				el.CreateAttr(qname(a.Name), v)
			}
			elems = append(elems, el)
		case xml.EndElement:
			if len(names) == 0 || names[len(names)-1] != t.Name {
				return nil, fail(ReasonSyntax, fmt.Sprintf("not well-formed XML: unexpected end tag </%s>", qname(t.Name)))
			}
			names = names[:len(names)-1]
			elems = elems[:len(elems)-1]
		case xml.CharData:
			var v string
			if sub.run(t) >= 0 {
				v = sub.expand(t)
			} else {
				v = textString(t)
			}
			if len(names) == 0 && len(strings.TrimSpace(v)) > 0 {
				return nil, fail(ReasonSyntax, "text outside the root element: input is not XML")
			}
			if len(v) > lim.MaxAttrLen {
				return nil, fail(ReasonAttrTooLong, fmt.Sprintf("text is %d bytes, more than the limit of %d", len(v), lim.MaxAttrLen))
			}
			// SetData marks whitespace-only text as etree's reader does
			// (Indent relies on it); AddChild links it to its parent.
			cd := nodes.text()
			cd.SetData(v)
			elems[len(elems)-1].AddChild(cd)
		case xml.Directive:
			// Any DTD is refused, even an internal one: entities are how XXE
			// and billion-laughs attacks work, and no MedCom format uses them.
			// (The scan refuses it first; this is the second lock.)
			return nil, fail(ReasonDTD, "DOCTYPE/ENTITY declarations are not allowed")
		case xml.ProcInst:
			if t.Target == "xml" && tokens > 1 {
				return nil, fail(ReasonSyntax, "XML declaration not at the start")
			}
			elems[len(elems)-1].CreateProcInst(t.Target, string(t.Inst))
		case xml.Comment:
			elems[len(elems)-1].CreateComment(sub.expand(t))
		}
	}
}

// slab hands out tree nodes from arrays, a few hundred per allocation
// instead of one: a letter's tree is read, used and dropped as a whole, and
// one malloc per node was a tenth of a parse.
type slab struct {
	elems []etree.Element
	texts []etree.CharData
	size  int
}

func (s *slab) init(data []byte) {
	// Each element has a start tag and most an end tag, and most tags are
	// followed by a text run (indentation or content): three quarters of the
	// '<' fit a typical letter in one array of each.
	n := bytes.Count(data, []byte{'<'})
	s.size = min(max(n*3/4+1, 8), 512)
}

func (s *slab) element() *etree.Element {
	if len(s.elems) == 0 {
		s.elems = make([]etree.Element, s.size)
	}
	e := &s.elems[0]
	s.elems = s.elems[1:]
	return e
}

func (s *slab) text() *etree.CharData {
	if len(s.texts) == 0 {
		s.texts = make([]etree.CharData, s.size)
	}
	c := &s.texts[0]
	s.texts = s.texts[1:]
	return c
}

// indent is a line break and the spaces that indent pretty-printed XML.
const indent = "\n" + "                                                                " +
	"                                                                "

// textString converts a text run to a string. Runs of only a line break and
// spaces (about half the runs of an indented letter) are sliced from indent
// instead of allocated.
func textString(t []byte) string {
	if len(t) == 0 || len(t) > len(indent) || t[0] != '\n' {
		return string(t)
	}
	for _, c := range t[1:] {
		if c != ' ' {
			return string(t)
		}
	}
	return indent[:len(t)]
}

// decodeError classifies an encoding/xml error in words fit for a coordinator.
func decodeError(err error) (Reason, string) {
	if errors.Is(err, errCharset) || strings.Contains(err.Error(), "charset") {
		return ReasonCharset, "unsupported charset in the XML declaration; expected UTF-8, US-ASCII, ISO-8859-1, ISO-8859-15 or windows-1252"
	}
	var se *xml.SyntaxError
	if errors.As(err, &se) {
		msg := se.Msg
		if strings.Contains(msg, "UTF-8") {
			msg = "invalid UTF-8: the bytes do not match the declared charset (UTF-8 unless the XML declaration names another)"
		} else if strings.Contains(msg, "unexpected EOF") {
			msg = "unexpected end of input (truncated file?)"
		}
		return ReasonSyntax, "not well-formed XML: " + redact(msg)
	}
	return ReasonSyntax, "cannot read XML: " + redact(err.Error())
}

func elementPath(names []xml.Name) string {
	if len(names) == 0 {
		return ""
	}
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = qname(n)
	}
	return strings.Join(parts, "/")
}

func qname(n xml.Name) string {
	if n.Space != "" {
		return n.Space + ":" + n.Local
	}
	return n.Local
}

// redact removes long digit runs from parser messages: they echo markup, not
// text, but a CPR number must never reach a log or a coordinator's screen.
func redact(s string) string { return digitRun.ReplaceAllString(s, "…") }

var digitRun = regexp.MustCompile(`[0-9]{6,}`)

var encodingDecl = regexp.MustCompile(`^\s*<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9._-]+)["']`)

// checkLabel refuses a file whose declaration names ISO-8859-1 or
// windows-1252 while its bytes are UTF-8 with non-ASCII letters: decoding it
// as declared would turn "Kære" into "KÃ¦re" without any error. A genuine
// Latin-1 letter with æ, ø or å is practically never valid UTF-8.
func checkLabel(data []byte) error {
	head := data[:min(len(data), 256)]
	m := encodingDecl.FindSubmatch(head)
	if m == nil {
		return nil
	}
	cm, known := CharsetOf(string(m[1]))
	if !known {
		return nil
	}
	high := bytes.IndexFunc(data, func(r rune) bool { return r >= 0x80 })
	if cm == nil {
		if l := strings.ToLower(string(m[1])); l != "utf-8" && l != "utf8" && high >= 0 {
			return &Error{Reason: ReasonCharset, Msg: fmt.Sprintf("the XML declaration says %s but the text holds other characters (byte offset %d); the sender must declare the charset the bytes are in", m[1], high)}
		}
		return nil
	}
	if high >= 0 && utf8.Valid(data) {
		return &Error{Reason: ReasonCharset, Msg: fmt.Sprintf("the XML declaration says %s but the bytes are UTF-8; the sender must declare encoding=\"UTF-8\" or send %s", m[1], m[1])}
	}
	return nil
}

// Text is all character data directly inside el, comments and processing
// instructions skipped. etree's Text stops at the first processing
// instruction, so <Identifier>LTR0<?x?>1</Identifier> read as "LTR0": a
// value silently cut short, or a base64 object cut on a quantum boundary.
// Child elements are the caller's to refuse.
func Text(el *etree.Element) string {
	if el == nil {
		return ""
	}
	var first string
	var b strings.Builder
	n := 0
	for _, t := range el.Child {
		cd, ok := t.(*etree.CharData)
		if !ok {
			continue
		}
		switch n++; n {
		case 1:
			first = cd.Data
		case 2:
			b.WriteString(first)
			fallthrough
		default:
			b.WriteString(cd.Data)
		}
	}
	if n > 1 {
		return b.String()
	}
	return first
}
