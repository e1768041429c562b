package xmlsafe

import (
	"bytes"
	"strconv"
	"strings"
	"unicode/utf8"
)

// A head scan reads the part of a refused input before its fault (Error.
// Offset) for the few values an answer to its sender needs (an envelope's
// id, the sender's and receiver's numbers), when the input is not
// well-formed as a whole: a file cut off in transit still names who sent
// it. It is no second parse: one pass over the bytes that builds nothing,
// keeps only the values HeadOptions.Keep asks for (each at most
// maxHeadValue bytes, at most maxHeadLeaves of them), and stops at the
// first thing that is not plainly well-formed (a DTD, an unknown entity, a
// tag cut off, a mismatched end tag), at the depth, attribute and token
// limits of Limits, and at the end of its input. Its memory is the open
// elements' names; its time one look at each byte.

// HeadOptions say what a head scan keeps.
type HeadOptions struct {
	// Keep says whether the value at path is wanted. A path is the names
	// from the root, each with its index among siblings of that name:
	// "Emessage[0].Envelope[0].Identifier[0]"; in JSON the member names
	// ("entry[2].resource[0].id[0]", an array's elements indexed, other
	// values [0]).
	Keep func(path string) bool
	// Leaf receives each value kept: an element's text (when the element
	// ended), an attribute's value (the attribute "value" at the element's
	// own path, any other at path.name[0]) or a JSON string.
	Leaf func(path, value string)
	// TypeWrapper names an element whose child names a type (FHIR XML's
	// resource): the child is reported as a value at
	// path.resourceType[0] and is left out of its descendants' paths, so
	// that FHIR XML and JSON paths agree.
	TypeWrapper string
	// Span, when Keep also asks for it, receives where the first text of
	// an element lies in the input, even when the input ends in it (a
	// VANSEnvelope's Data, cut off in transit).
	Span     func(path string, from, to int)
	SpanKeep func(path string) bool
}

const (
	maxHeadValue  = 256
	maxHeadLeaves = 512
	maxHeadName   = 4 << 10
)

type headFrame struct {
	name   string // local name
	path   string // its path, for Keep
	counts map[string]int
	keep   bool
	text   []byte
	bad    bool // its text could not be kept (too long, a child element)
	plain  bool // a TypeWrapper's child: not part of the paths below it
}

type headXML struct {
	b      []byte
	i      int
	lim    Limits
	opt    HeadOptions
	stack  []*headFrame
	tokens int
	budget int
	leaves int
	span   int // start of a text span asked for, -1 when none is open
	spanAt string
}

// HeadXML scans data as XML (see HeadOptions).
func HeadXML(data []byte, lim Limits, opt HeadOptions) {
	lim = lim.withDefaults()
	data = bytes.TrimPrefix(data, []byte{0xEF, 0xBB, 0xBF})
	h := &headXML{b: data, lim: lim, opt: opt, budget: lim.TokenBudget(len(data)), span: -1}
	h.run()
	if h.span >= 0 && h.opt.Span != nil {
		h.opt.Span(h.spanAt, h.span, len(h.b)) // the input ends in it
	}
}

func (h *headXML) leaf(path, v string) {
	if h.opt.Leaf == nil || h.leaves >= maxHeadLeaves || len(v) > maxHeadValue || !utf8.ValidString(v) {
		return
	}
	h.leaves++
	h.opt.Leaf(path, v)
}

func (h *headXML) keep(path string) bool { return h.opt.Keep != nil && h.opt.Keep(path) }

// count spends one token of the budget; false when it is spent.
func (h *headXML) count() bool {
	h.tokens++
	return h.tokens <= h.budget
}

func (h *headXML) run() {
	for h.i < len(h.b) {
		if !h.count() {
			return
		}
		if h.b[h.i] != '<' {
			j := bytes.IndexByte(h.b[h.i:], '<')
			end := len(h.b)
			if j >= 0 {
				end = h.i + j
			} else {
				return // text the input ends in: its element never ends
			}
			if !h.text(h.b[h.i:end]) {
				return
			}
			h.closeSpan(end)
			h.i = end
			continue
		}
		h.closeSpan(h.i)
		rest := h.b[h.i:]
		var ok bool
		switch {
		case bytes.HasPrefix(rest, []byte("<!--")):
			ok = h.skip("-->")
		case bytes.HasPrefix(rest, []byte("<![CDATA[")):
			k := bytes.Index(rest, []byte("]]>"))
			if k < 0 {
				return
			}
			h.addText(rest[len("<![CDATA["):k])
			h.i += k + 3
			ok = true
		case bytes.HasPrefix(rest, []byte("<?")):
			ok = h.skip("?>")
		case bytes.HasPrefix(rest, []byte("<!")):
			return // a DTD: what it declares is never read
		case bytes.HasPrefix(rest, []byte("</")):
			ok = h.end()
		default:
			ok = h.start()
		}
		if !ok {
			return
		}
	}
}

func (h *headXML) closeSpan(at int) {
	if h.span >= 0 {
		if h.opt.Span != nil {
			h.opt.Span(h.spanAt, h.span, at)
		}
		h.span = -1
	}
}

func (h *headXML) skip(end string) bool {
	k := bytes.Index(h.b[h.i:], []byte(end))
	if k < 0 {
		return false
	}
	h.i += k + len(end)
	return true
}

// text takes a run of character data: it must hold only known entity
// references, and outside the root only white space.
func (h *headXML) text(t []byte) bool {
	if len(h.stack) == 0 {
		return len(bytes.TrimSpace(t)) == 0
	}
	if bytes.Contains(t, []byte("]]>")) {
		return false
	}
	f := h.stack[len(h.stack)-1]
	if !f.keep || f.bad {
		_, ok := unescape(t, false)
		return ok
	}
	v, ok := unescape(t, true)
	if !ok {
		return false
	}
	h.addText(v)
	return true
}

func (h *headXML) addText(v []byte) {
	if len(h.stack) == 0 {
		return
	}
	f := h.stack[len(h.stack)-1]
	if !f.keep || f.bad {
		return
	}
	if len(f.text)+len(v) > maxHeadValue {
		f.bad, f.text = true, nil
		return
	}
	f.text = append(f.text, v...)
}

// name reads a name at h.i.
func (h *headXML) name() (string, bool) {
	j := h.i
	for j < len(h.b) && j-h.i <= maxHeadName {
		c := h.b[j]
		if isSpace(c) || c == '/' || c == '>' || c == '=' || c == '<' || c == '"' || c == '\'' || c == '&' {
			break
		}
		j++
	}
	if j == h.i || j >= len(h.b) || j-h.i > maxHeadName {
		return "", false
	}
	n := string(h.b[h.i:j])
	h.i = j
	return n, true
}

func (h *headXML) space() {
	for h.i < len(h.b) && isSpace(h.b[h.i]) {
		h.i++
	}
}

func localName(n string) string {
	if k := strings.LastIndexByte(n, ':'); k >= 0 {
		return n[k+1:]
	}
	return n
}

func (h *headXML) start() bool {
	h.i++ // '<'
	qn, ok := h.name()
	if !ok {
		return false
	}
	name := localName(qn)
	var parent *headFrame
	base := ""
	if len(h.stack) > 0 {
		parent = h.stack[len(h.stack)-1]
		parent.bad, parent.text = true, nil // holds an element: no value of its own
		base = parent.path
	}
	if len(h.stack)+1 > h.lim.MaxDepth {
		return false
	}
	f := &headFrame{name: name}
	if parent != nil && h.opt.TypeWrapper != "" && parent.name == h.opt.TypeWrapper && !parent.plain {
		// The resource's type, as JSON's resourceType says it.
		if p := base + ".resourceType[0]"; h.keep(p) {
			h.leaf(p, name)
		}
		f.path, f.plain = base, true
	} else {
		idx := 0
		if parent != nil {
			if parent.counts == nil {
				parent.counts = map[string]int{}
			}
			idx = parent.counts[name]
			parent.counts[name] = idx + 1
		}
		seg := name + "[" + strconv.Itoa(idx) + "]"
		if base != "" {
			seg = base + "." + seg
		}
		f.path = seg
	}
	f.keep = h.keep(f.path)
	type attr struct{ name, value string }
	var kept []attr
	for attrs := 0; ; attrs++ {
		h.space()
		if h.i >= len(h.b) {
			return false
		}
		switch {
		case h.b[h.i] == '>':
			h.i++
			h.push(f, kept != nil)
			for _, a := range kept {
				h.leaf(a.name, a.value)
			}
			if h.opt.SpanKeep != nil && h.opt.SpanKeep(f.path) {
				h.span, h.spanAt = h.i, f.path
			}
			return true
		case h.b[h.i] == '/':
			if h.i+1 >= len(h.b) || h.b[h.i+1] != '>' {
				return false
			}
			h.i += 2
			h.push(f, true)
			for _, a := range kept {
				h.leaf(a.name, a.value)
			}
			h.stack = h.stack[:len(h.stack)-1]
			return true
		}
		if attrs >= h.lim.MaxAttrs || !h.count() {
			return false
		}
		an, ok := h.name()
		if !ok {
			return false
		}
		h.space()
		if h.i >= len(h.b) || h.b[h.i] != '=' {
			return false
		}
		h.i++
		h.space()
		if h.i >= len(h.b) || (h.b[h.i] != '"' && h.b[h.i] != '\'') {
			return false
		}
		q := h.b[h.i]
		k := bytes.IndexByte(h.b[h.i+1:], q)
		if k < 0 {
			return false
		}
		raw := h.b[h.i+1 : h.i+1+k]
		h.i += k + 2
		if bytes.IndexByte(raw, '<') >= 0 {
			return false
		}
		if strings.HasPrefix(an, "xmlns") {
			continue
		}
		p := f.path + "." + localName(an) + "[0]"
		if localName(an) == "value" {
			p = f.path
		}
		if !h.keep(p) || len(raw) > maxHeadValue {
			if _, ok := unescape(raw, false); !ok {
				return false
			}
			continue
		}
		v, ok := unescape(raw, true)
		if !ok {
			return false
		}
		kept = append(kept, attr{p, string(v)})
	}
}

// push opens f; withValue: its start tag gave it a value (it keeps no
// text of its own then).
func (h *headXML) push(f *headFrame, withValue bool) {
	if withValue {
		f.bad = true
	}
	h.stack = append(h.stack, f)
}

func (h *headXML) end() bool {
	h.i += 2 // "</"
	qn, ok := h.name()
	if !ok {
		return false
	}
	h.space()
	if h.i >= len(h.b) || h.b[h.i] != '>' {
		return false
	}
	h.i++
	if len(h.stack) == 0 || h.stack[len(h.stack)-1].name != localName(qn) {
		return false
	}
	f := h.stack[len(h.stack)-1]
	h.stack = h.stack[:len(h.stack)-1]
	if f.keep && !f.bad {
		h.leaf(f.path, strings.TrimSpace(string(f.text)))
	}
	return true
}

// unescape decodes the five predefined entities and character
// references; ok is false for anything else (an entity a DTD would have
// declared, a bare '&'). Without out, it only checks.
func unescape(v []byte, out bool) ([]byte, bool) {
	if bytes.IndexByte(v, '&') < 0 {
		return v, true
	}
	var b []byte
	for len(v) > 0 {
		k := bytes.IndexByte(v, '&')
		if k < 0 {
			if out {
				b = append(b, v...)
			}
			break
		}
		if out {
			b = append(b, v[:k]...)
		}
		v = v[k+1:]
		e := bytes.IndexByte(v, ';')
		if e <= 0 || e > 10 {
			return nil, false
		}
		ref := string(v[:e])
		v = v[e+1:]
		s, known := entity(ref)
		if !known {
			return nil, false
		}
		if out {
			b = append(b, s...)
		}
	}
	return b, true
}

type headJSON struct {
	b      []byte
	i      int
	lim    Limits
	opt    HeadOptions
	tokens int
	budget int
	leaves int
}

// HeadJSON scans data as JSON (see HeadOptions); Span is not used.
func HeadJSON(data []byte, lim Limits, opt HeadOptions) {
	lim = lim.withDefaults()
	data = bytes.TrimPrefix(data, []byte{0xEF, 0xBB, 0xBF})
	h := &headJSON{b: data, lim: lim, opt: opt, budget: lim.TokenBudget(len(data))}
	h.value("", 0)
}

func (h *headJSON) space() {
	for h.i < len(h.b) && isSpace(h.b[h.i]) {
		h.i++
	}
}

// value reads one value whose path is path; false stops the scan.
func (h *headJSON) value(path string, depth int) bool {
	h.tokens++
	if h.tokens > h.budget || depth > h.lim.MaxDepth {
		return false
	}
	h.space()
	if h.i >= len(h.b) {
		return false
	}
	switch c := h.b[h.i]; {
	case c == '{':
		h.i++
		for first := true; ; first = false {
			h.space()
			if h.i >= len(h.b) {
				return false
			}
			if h.b[h.i] == '}' {
				h.i++
				return true
			}
			if !first {
				if h.b[h.i] != ',' {
					return false
				}
				h.i++
				h.space()
			}
			key, ok := h.str(true)
			if !ok || len(key) > maxHeadName {
				return false
			}
			h.space()
			if h.i >= len(h.b) || h.b[h.i] != ':' {
				return false
			}
			h.i++
			h.space()
			p := key
			if path != "" {
				p = path + "." + key
			}
			if h.i < len(h.b) && h.b[h.i] == '[' {
				if !h.array(p, depth+1) {
					return false
				}
				continue
			}
			if !h.value(p+"[0]", depth+1) {
				return false
			}
		}
	case c == '[':
		return h.array(path, depth+1)
	case c == '"':
		keep := h.opt.Keep != nil && h.opt.Keep(path)
		v, ok := h.str(keep)
		if ok && keep && h.opt.Leaf != nil && h.leaves < maxHeadLeaves && len(v) <= maxHeadValue {
			h.leaves++
			h.opt.Leaf(path, v)
		}
		return ok
	default:
		// A number, true, false or null: up to the next delimiter.
		j := h.i
		for j < len(h.b) && (h.b[j] == '-' || h.b[j] == '+' || h.b[j] == '.' || h.b[j] >= '0' && h.b[j] <= '9' || h.b[j] >= 'a' && h.b[j] <= 'z' || h.b[j] >= 'A' && h.b[j] <= 'Z') {
			j++
		}
		if j == h.i || j >= len(h.b) {
			return false // nothing, or the input ends in it
		}
		lit := string(h.b[h.i:j])
		if c := lit[0]; (c < '0' || c > '9') && c != '-' && lit != "true" && lit != "false" && lit != "null" {
			return false
		}
		h.i = j
		return true
	}
}

// array reads an array whose elements are path[0], path[1], …
func (h *headJSON) array(path string, depth int) bool {
	if depth > h.lim.MaxDepth {
		return false
	}
	h.i++ // '['
	for n := 0; ; n++ {
		h.space()
		if h.i >= len(h.b) {
			return false
		}
		if h.b[h.i] == ']' {
			h.i++
			return true
		}
		if n > 0 {
			if h.b[h.i] != ',' {
				return false
			}
			h.i++
		}
		if !h.value(path+"["+strconv.Itoa(n)+"]", depth) {
			return false
		}
	}
}

// str reads a string at h.i, decoded when keep (else only checked).
func (h *headJSON) str(keep bool) (string, bool) {
	if h.i >= len(h.b) || h.b[h.i] != '"' {
		return "", false
	}
	h.i++
	var out []byte
	for h.i < len(h.b) {
		c := h.b[h.i]
		switch {
		case c == '"':
			h.i++
			if len(out) <= maxHeadValue && !utf8.Valid(out) {
				return "", false
			}
			return string(out), true
		case c < 0x20:
			return "", false
		case c == '\\':
			if h.i+1 >= len(h.b) {
				return "", false
			}
			e := h.b[h.i+1]
			h.i += 2
			var r rune
			switch e {
			case '"', '\\', '/':
				r = rune(e)
			case 'b':
				r = '\b'
			case 'f':
				r = '\f'
			case 'n':
				r = '\n'
			case 'r':
				r = '\r'
			case 't':
				r = '\t'
			case 'u':
				if h.i+4 > len(h.b) {
					return "", false
				}
				n, err := strconv.ParseUint(string(h.b[h.i:h.i+4]), 16, 32)
				if err != nil {
					return "", false
				}
				h.i += 4
				r = rune(n)
			default:
				return "", false
			}
			if keep && len(out) <= maxHeadValue {
				out = utf8.AppendRune(out, r)
			}
		default:
			if keep && len(out) <= maxHeadValue {
				out = append(out, c)
			}
			h.i++
		}
	}
	return "", false // the input ends in it
}
