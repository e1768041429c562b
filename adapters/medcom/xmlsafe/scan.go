package xmlsafe

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
)

// Why a scan before encoding/xml sees the input: the decoder copies every
// token into a growing buffer and then into a string, so one 50 MB attribute
// cost about five times its size, and a start tag with a million attributes
// a gigabyte (issue 19: 254 MB for a 50 MB attribute). The scan walks the
// raw bytes once, without allocating, and
//
//   - refuses what MedCom never sends before the decoder buffers it: a
//     DOCTYPE or ENTITY declaration, a name or processing instruction longer
//     than a few kilobytes, more attributes on one element than MaxAttrs, a
//     value longer than MaxAttrLen;
//   - finds every long value (attribute value, text, CDATA section, comment
//     of longRun bytes or more), checks it as the decoder would (characters,
//     entity references, "]]>" and "--"), and records it, so that the decoder
//     is given a short placeholder instead and the tree gets the value
//     straight from the input (subst.go).
//
// Where the input is not well-formed the scan stops recording and leaves the
// error to the decoder, which meets it first; stretches after that point
// are held to maxUnscanned.

// longRun is the length from which a value is replaced by a placeholder.
// Shorter values cost the decoder little.
var longRun = 4 << 10

const (
	maxName = 4 << 10 // an element or attribute name
	maxPI   = 4 << 10 // a processing instruction
	// maxUnscanned bounds any stretch without '<' after the scan gave up.
	maxUnscanned = 1 << 20
)

type runKind uint8

const (
	runText    runKind = iota // character data: entities decoded, line ends normalised
	runAttr                   // an attribute value: the same
	runCDATA                  // a CDATA section: line ends normalised only
	runComment                // a comment: as it is
)

// run is a long value in the input: data[start:end], its kind and how many
// line feeds it holds (the placeholder keeps them, so line numbers stay true).
type run struct {
	start, end int
	kind       runKind
	lines      int
	plain      bool // no '&' or '\r' and nothing to decode: the value is the bytes themselves
}

// scanner is one pass over the input.
type scanner struct {
	data  []byte
	lim   Limits
	latin *charmap.Charmap // the declared legacy charset, nil for UTF-8
	long  int              // longRun
	runs  []run
}

func (s *scanner) fail(at int, r Reason, msg string) error {
	return &Error{Reason: r, Line: 1 + bytes.Count(s.data[:at], []byte{'\n'}), Msg: msg, Offset: at}
}

func (s *scanner) syntax(at int, msg string) error {
	r, m := decodeError(&xml.SyntaxError{Msg: msg})
	return s.fail(at, r, m)
}

// scan returns the long values of data, or the first refusal.
func (s *scanner) scan() error {
	d := s.data
	i := 0
	for i < len(d) {
		j := bytes.IndexByte(d[i:], '<')
		end := len(d)
		if j >= 0 {
			end = i + j
		}
		if err := s.value(i, end, runText); err != nil {
			return err
		}
		if j < 0 {
			return nil
		}
		i = end
		var err error
		var ok bool
		switch {
		case bytes.HasPrefix(d[i:], []byte("<!--")):
			i, ok, err = s.delimited(i, "<!--", "-->", runComment)
		case bytes.HasPrefix(d[i:], []byte("<![CDATA[")):
			i, ok, err = s.delimited(i, "<![CDATA[", "]]>", runCDATA)
		case bytes.HasPrefix(d[i:], []byte("<?")):
			k := bytes.Index(d[i:], []byte("?>"))
			if k < 0 && len(d)-i > maxPI || k > maxPI {
				return s.fail(i, ReasonAttrTooLong, fmt.Sprintf("processing instruction longer than %d bytes", maxPI))
			}
			if k < 0 {
				return s.giveUp(i)
			}
			i, ok = i+k+2, true
		case bytes.HasPrefix(d[i:], []byte("<!")):
			// Any DTD is refused before the decoder reads it into memory.
			return s.fail(i, ReasonDTD, "DOCTYPE/ENTITY declarations are not allowed")
		default:
			i, ok, err = s.tag(i)
		}
		if err != nil {
			return err
		}
		if !ok {
			return s.giveUp(i)
		}
	}
	return nil
}

// giveUp stops at input the scan does not understand: the decoder reports
// it. Nothing after it gets a placeholder, so no stretch may be long.
func (s *scanner) giveUp(at int) error {
	limit := min(maxUnscanned, s.lim.MaxAttrLen)
	for i := at; i < len(s.data); {
		j := bytes.IndexByte(s.data[i:], '<')
		if j < 0 {
			j = len(s.data) - i
		}
		if j > limit {
			return s.fail(i, ReasonAttrTooLong, fmt.Sprintf("%d bytes without markup, more than the limit of %d for one attribute or text", j, limit))
		}
		i += j + 1
	}
	return nil
}

// delimited handles a comment or CDATA section starting at i.
func (s *scanner) delimited(i int, open, close string, kind runKind) (int, bool, error) {
	from := i + len(open)
	k := bytes.Index(s.data[from:], []byte(close))
	if k < 0 {
		return i, false, nil
	}
	if err := s.value(from, from+k, kind); err != nil {
		return i, false, err
	}
	return from + k + len(close), true, nil
}

func isSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }

// name returns the end of the name starting at i.
func (s *scanner) name(i int) (int, error) {
	j := i
	for j < len(s.data) {
		b := s.data[j]
		if isSpace(b) || b == '/' || b == '>' || b == '=' || b == '<' || b == '"' || b == '\'' {
			break
		}
		j++
		if j-i > maxName {
			return j, s.fail(i, ReasonAttrTooLong, fmt.Sprintf("name longer than %d bytes", maxName))
		}
	}
	return j, nil
}

func (s *scanner) space(i int) int {
	for i < len(s.data) && isSpace(s.data[i]) {
		i++
	}
	return i
}

// tag reads a start or end tag at i, its attributes and their values.
func (s *scanner) tag(i int) (int, bool, error) {
	d := s.data
	start := i
	i++
	end := i < len(d) && d[i] == '/'
	if end {
		i++
	}
	nameEnd, err := s.name(i)
	if err != nil || nameEnd == i {
		return i, false, err
	}
	tagName := d[i:nameEnd]
	i = nameEnd
	attrs := 0
	for {
		i = s.space(i)
		if i >= len(d) {
			return i, false, nil
		}
		switch {
		case d[i] == '>':
			return i + 1, true, nil
		case d[i] == '/' && !end && i+1 < len(d) && d[i+1] == '>':
			return i + 2, true, nil
		case end:
			return i, false, nil
		}
		an, err := s.name(i)
		if err != nil || an == i {
			return i, false, err
		}
		i = s.space(an)
		if i >= len(d) || d[i] != '=' {
			return i, false, nil
		}
		i = s.space(i + 1)
		if i >= len(d) || (d[i] != '"' && d[i] != '\'') {
			return i, false, nil
		}
		q := d[i]
		k := bytes.IndexByte(d[i+1:], q)
		if k < 0 {
			return i, false, nil
		}
		if lt := bytes.IndexByte(d[i+1:i+1+k], '<'); lt >= 0 {
			return i, false, s.syntax(i+1+lt, "unescaped < inside quoted string")
		}
		attrs++
		if attrs > s.lim.MaxAttrs {
			return i, false, s.fail(start, ReasonTooMany, fmt.Sprintf("element %s has more than %d attributes", tagName, s.lim.MaxAttrs))
		}
		if err := s.value(i+1, i+1+k, runAttr); err != nil {
			return i, false, err
		}
		i = i + 1 + k + 1
	}
}

// value checks data[from:to] of kind and records it when it is long.
func (s *scanner) value(from, to int, kind runKind) error {
	// MaxAttrLen is checked on the value itself when the tree gets it: a
	// long value costs the decoder nothing, so nothing is gained earlier.
	n := to - from
	if n < s.long || n == 0 {
		return nil
	}
	r := run{start: from, end: to, kind: kind, lines: bytes.Count(s.data[from:to], []byte{'\n'})}
	v := s.data[from:to]
	switch kind {
	case runComment:
		if k := bytes.Index(v, []byte("--")); k >= 0 || v[len(v)-1] == '-' {
			if k < 0 {
				k = len(v) - 1
			}
			return s.syntax(from+k, `invalid sequence "--" not allowed in comments`)
		}
		r.plain = s.latin == nil
	case runCDATA:
		if err := s.chars(from, v); err != nil {
			return err
		}
		r.plain = s.latin == nil && bytes.IndexByte(v, '\r') < 0
	default:
		if kind == runText {
			if k := bytes.Index(v, []byte("]]>")); k >= 0 {
				return s.syntax(from+k, "unescaped ]]> not in CDATA section")
			}
		}
		if err := s.chars(from, v); err != nil {
			return err
		}
		if err := s.entities(from, v); err != nil {
			return err
		}
		r.plain = s.latin == nil && bytes.IndexByte(v, '\r') < 0 && bytes.IndexByte(v, '&') < 0
	}
	s.runs = append(s.runs, r)
	return nil
}

// chars refuses bytes the decoder would refuse: invalid UTF-8 (in a UTF-8
// document) and characters outside XML's Char production.
func (s *scanner) chars(from int, v []byte) error {
	if s.latin != nil {
		for k, b := range v {
			if b < 0x20 && b != '\t' && b != '\n' && b != '\r' {
				return s.syntax(from+k, fmt.Sprintf("illegal character code %U", rune(b)))
			}
		}
		return nil
	}
	for k := 0; k < len(v); {
		b := v[k]
		if b < utf8.RuneSelf {
			if b < 0x20 && b != '\t' && b != '\n' && b != '\r' {
				return s.syntax(from+k, fmt.Sprintf("illegal character code %U", rune(b)))
			}
			k++
			continue
		}
		r, size := utf8.DecodeRune(v[k:])
		if r == utf8.RuneError && size == 1 {
			return s.syntax(from+k, "invalid UTF-8")
		}
		if !isInCharacterRange(r) {
			return s.syntax(from+k, fmt.Sprintf("illegal character code %U", r))
		}
		k += size
	}
	return nil
}

// entities refuses references the decoder would refuse: only the five
// predefined names and character references are known.
func (s *scanner) entities(from int, v []byte) error {
	for k := 0; ; {
		a := bytes.IndexByte(v[k:], '&')
		if a < 0 {
			return nil
		}
		a += k
		semi := bytes.IndexByte(v[a:], ';')
		if semi < 0 || semi > 32 {
			return s.syntax(from+a, "invalid character entity")
		}
		if _, ok := entity(string(v[a+1 : a+semi])); !ok {
			return s.syntax(from+a, "invalid character entity &"+string(v[a+1:a+semi])+";")
		}
		k = a + semi + 1
	}
}

// entity resolves the name of &name; as encoding/xml does.
func entity(name string) (string, bool) {
	switch name {
	case "lt":
		return "<", true
	case "gt":
		return ">", true
	case "amp":
		return "&", true
	case "apos":
		return "'", true
	case "quot":
		return `"`, true
	}
	if !strings.HasPrefix(name, "#") || len(name) < 2 {
		return "", false
	}
	num, base := name[1:], 10
	if num[0] == 'x' {
		num, base = num[1:], 16
	}
	if num == "" {
		return "", false
	}
	n, err := strconv.ParseUint(num, base, 64)
	if err != nil || n > utf8.MaxRune {
		return "", false
	}
	r := string(rune(n))
	if rr, _ := utf8.DecodeRuneInString(r); !isInCharacterRange(rr) {
		return "", false
	}
	return r, true
}

// isInCharacterRange is XML's Char production, as encoding/xml checks it.
func isInCharacterRange(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D || r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
}
