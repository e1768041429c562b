// Package partscan finds the large base64 values of a MedCom FHIR message
// (an attachment's data, a VANSEnvelope's Data) in a file without reading
// the file into memory, and gives back the message with a short token in
// the place of each value. The parsers (xmlsafe, fhirmsg) then read a
// document of a few kilobytes, and each attachment is read from the file
// again, decoded as it goes, when the hub stores it: a 100 MB attachment
// is never held whole, nor the 133 MB file carrying it.
//
// Which values are lifted out is fixed by the format, not guessed: in FHIR
// XML the value attribute of a data element (Attachment.data), in FHIR
// JSON the "data" member, in a VANSEnvelope the text of its Data element
// (the whole message in base64, scanned in turn as it is decoded). A value
// is lifted out only when it is at least MinRun long and holds nothing but
// base64 and white space; anything else (entities, escapes, a value cut by
// markup) stays in the document as it was, for the parsers to read or
// refuse as before. The scan parses nothing beyond what it needs to tell
// those values apart (tags, comments, CDATA, processing instructions, JSON
// strings); input it does not follow is copied as it is, so the parsers'
// limits and errors (xmlsafe) apply to the document exactly as they did to
// the file. Replacing a value by a token keeps the document's structure
// and line numbers (a token is followed by as many line feeds as the value
// held).
package partscan

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/samhub/samhub/adapters/medcom/xmlsafe"
)

// Options tune a scan; zero values take the defaults.
type Options struct {
	// MinRun is the length from which a value is lifted out (default
	// 64 KiB, the blob store's smallest part): shorter ones stay.
	MinRun int
	// MaxValue refuses a value longer than it, as the parser would
	// (xmlsafe.Limits.MaxAttrLen; default its default).
	MaxValue int64
}

func (o Options) withDefaults() Options {
	if o.MinRun <= 0 {
		o.MinRun = 64 << 10
	}
	if o.MaxValue <= 0 {
		o.MaxValue = int64(xmlsafe.DefaultLimits().MaxAttrLen)
	}
	return o
}

// Doc is a scanned message.
type Doc struct {
	Data   []byte // the message with tokens standing for the parts
	Size   int64  // bytes read from the source
	SHA256 string // hex SHA-256 of the source's bytes
	Parts  []*Part
	nonce  string
}

// Part is one value lifted out: base64 in its source, not yet decoded.
type Part struct {
	Token    string
	Line     int   // where the value starts in its source, 1-based
	Encoded  int64 // base64 characters in it, white space excluded
	Envelope bool  // a VANSEnvelope's Data: a message, not an attachment
	src      Source
	off, n   int64 // the raw value: src[off:off+n]

	// Set by Resolve (Measure, or Scan for an envelope's Data):
	Size   int64  // decoded bytes
	SHA256 string // hex
	SHA1   []byte
	Nested *Doc  // an envelope's message, scanned
	Bad    error // the value does not decode (wraps ErrNotBase64)
}

// Resolve reads every part once: an attachment is decoded and measured,
// an envelope's Data scanned as a message (whose parts are resolved in
// turn). A value that does not decode is recorded in its Bad, for the
// parser to report; the error returned is the source's (an input that
// could not be read, to be tried again) or a scan's refusal.
func (d *Doc) Resolve(opt Options) error {
	for _, p := range d.Parts {
		var err error
		if p.Envelope {
			if p.Nested, err = p.Scan(opt); err == nil {
				err = p.Nested.Resolve(opt)
			}
		} else {
			err = p.Measure()
		}
		if errors.Is(err, ErrNotBase64) {
			p.Bad, err = err, nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Part returns the part a value of the document stands for (white space
// around a token is ignored: an attribute's line feeds become spaces), or
// nil when the value is none of this document's tokens.
func (d *Doc) Part(value string) *Part {
	v := strings.TrimSpace(value)
	if d == nil || !strings.HasPrefix(v, d.nonce) || len(v) != len(d.nonce)+idxLen {
		return nil
	}
	i := 0
	for _, c := range v[len(d.nonce):] {
		if c < '0' || c > '9' {
			return nil
		}
		i = i*10 + int(c-'0')
	}
	if i >= len(d.Parts) {
		return nil
	}
	return d.Parts[i]
}

// Source is where the part's base64 is, decoded.
func (p *Part) Source() Source { return Decoded(p.src, p.off, p.n) }

// Open returns a reader over the part's decoded bytes. A value that is not
// valid base64 fails the reader (base64.CorruptInputError).
func (p *Part) Open() (io.ReadCloser, error) { return p.Source().Open(0) }

// Measure decodes the part once and records its size and digests. An
// error wrapping ErrNotBase64 means the value does not decode; any other
// is the source's.
func (p *Part) Measure() error {
	r, err := p.Open()
	if err != nil {
		return err
	}
	defer r.Close()
	h2, h1 := sha256.New(), sha1.New()
	n, err := io.Copy(io.MultiWriter(h2, h1), r)
	if err != nil {
		return decodeErr(err)
	}
	p.Size, p.SHA256, p.SHA1 = n, hex.EncodeToString(h2.Sum(nil)), h1.Sum(nil)
	return nil
}

// Scan reads the part's decoded bytes as a message in turn (a
// VANSEnvelope's Data) and records their size.
func (p *Part) Scan(opt Options) (*Doc, error) {
	d, err := Scan(p.Source(), opt)
	if err != nil {
		return nil, decodeErr(err)
	}
	p.Size = d.Size
	return d, nil
}

// ErrNotBase64 is wrapped by errors of a value that does not decode.
var ErrNotBase64 = errors.New("not base64")

func decodeErr(err error) error {
	var ce base64.CorruptInputError
	if errors.As(err, &ce) {
		return fmt.Errorf("%w: %v", ErrNotBase64, err)
	}
	return err
}

// idxLen is the number of digits of a part's index in its token.
const idxLen = 6

// maxName bounds an element or attribute name the scan follows; a longer
// one stops it (the parser refuses such names).
const maxName = 4 << 10

// Scan reads src once and returns the message with its large base64
// values replaced by tokens. It fails only on a value longer than
// opt.MaxValue (an xmlsafe.Error, as the parser's) or when src cannot be
// read; whatever else is wrong with the input is left to the parser.
func Scan(src Source, opt Options) (*Doc, error) {
	opt = opt.withDefaults()
	r, err := src.Open(0)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var nb [8]byte
	_, _ = rand.Read(nb[:])
	h := sha256.New()
	s := &scanner{
		src: src, opt: opt, line: 1,
		br:  bufio.NewReaderSize(io.TeeReader(r, h), 64<<10),
		doc: &Doc{nonce: "samhubpart" + hex.EncodeToString(nb[:])},
	}
	err = s.scan()
	var rest int64
	if err == nil {
		// Whatever the scan did not follow is still part of the message.
		rest, err = io.Copy(&s.out, s.br)
	}
	if err != nil {
		return nil, err
	}
	s.doc.Data = s.out.Bytes()
	s.doc.Size = s.pos + rest
	s.doc.SHA256 = hex.EncodeToString(h.Sum(nil))
	return s.doc, nil
}

// scanner walks the source once, copying it to out, tokens for values.
type scanner struct {
	src      Source
	opt      Options
	br       *bufio.Reader
	out      bytes.Buffer
	pos      int64 // bytes consumed from br
	line     int
	doc      *Doc
	envelope bool // the values lifted are a VANSEnvelope's Data
}

var errStop = errors.New("partscan: stop following the input")

func (s *scanner) scan() error {
	// A BOM and white space before the first byte that says the format.
	for {
		b, err := s.br.Peek(1)
		if err != nil {
			return nil // empty: the parser says so
		}
		switch {
		case b[0] == 0xEF || b[0] == 0xBB || b[0] == 0xBF || isSpace(b[0]):
			s.copyByte()
			continue
		case b[0] == '{':
			err = s.json()
		case b[0] == '<':
			err = s.xml()
		default:
			return nil
		}
		if errors.Is(err, errStop) || errors.Is(err, io.EOF) {
			return nil
		}
		return err
	}
}

// next consumes one byte.
func (s *scanner) next() (byte, error) {
	c, err := s.br.ReadByte()
	if err != nil {
		return 0, err
	}
	s.pos++
	if c == '\n' {
		s.line++
	}
	return c, nil
}

// copyByte consumes one byte into out.
func (s *scanner) copyByte() (byte, error) {
	c, err := s.next()
	if err == nil {
		s.out.WriteByte(c)
	}
	return c, err
}

// copyUntil copies up to and including the first occurrence of end.
func (s *scanner) copyUntil(end string) error {
	var last [8]byte // the last len(end) bytes copied, as a ring
	for n := 0; ; n++ {
		c, err := s.copyByte()
		if err != nil {
			return err
		}
		last[n%len(end)] = c
		if n+1 < len(end) || c != end[len(end)-1] {
			continue
		}
		match := true
		for i := range len(end) {
			if last[(n+1+i)%len(end)] != end[i] {
				match = false
				break
			}
		}
		if match {
			return nil
		}
	}
}

func (s *scanner) hasPrefix(p string) bool {
	b, _ := s.br.Peek(len(p))
	return string(b) == p
}

// skipSpace copies white space.
func (s *scanner) skipSpace() error {
	for {
		b, err := s.br.Peek(1)
		if err != nil {
			return err
		}
		if !isSpace(b[0]) {
			return nil
		}
		s.copyByte()
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// b64 holds the bytes a base64 value may hold; spaces allowed separately.
var b64 = func() (t [256]bool) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") {
		t[c] = true
	}
	return
}()

// value reads a value up to (not including) the byte end, copying a short
// or unusual one to out and replacing a long base64 one by a token.
// spaces says whether white space may occur in it (XML). A value that
// stops at any other byte ('<' or '&' in an attribute, '\\' in a JSON
// string) is copied, and the caller goes on copying as usual from there.
// after, when not nil, must hold for the value to be lifted (XML text must
// be followed by an end tag: a value cut by markup is no single value).
func (s *scanner) value(end byte, spaces bool, after func() bool) error {
	start, line := s.pos, s.line
	var head []byte // up to MinRun bytes, written out if the value stays short
	var encoded int64
	for {
		if _, err := s.br.Peek(1); err != nil {
			// Cut short: the parser says so; the bytes stay.
			if s.pos-start < int64(s.opt.MinRun) {
				s.out.Write(head)
			} else if cerr := s.copyBack(start); cerr != nil {
				return cerr
			}
			return err
		}
		// A buffered block at a time, up to a byte that is not base64.
		buf, _ := s.br.Peek(s.br.Buffered())
		k, stop := 0, false
		for ; k < len(buf); k++ {
			c := buf[k]
			if b64[c] {
				encoded++
				continue
			}
			if spaces && isSpace(c) {
				continue
			}
			stop = true
			break
		}
		var at byte
		if stop {
			at = buf[k]
		}
		if room := s.opt.MinRun - len(head); room > 0 {
			head = append(head, buf[:min(room, k)]...)
		}
		s.line += bytes.Count(buf[:k], []byte{'\n'})
		s.pos += int64(k)
		_, _ = s.br.Discard(k)
		if s.pos-start > s.opt.MaxValue {
			return &xmlsafe.Error{Reason: xmlsafe.ReasonAttrTooLong, Line: line, Msg: fmt.Sprintf("a value is longer than the limit of %d bytes", s.opt.MaxValue)}
		}
		if !stop {
			continue
		}
		if s.pos-start < int64(s.opt.MinRun) {
			s.out.Write(head)
			return nil
		}
		if at == end && (after == nil || after()) {
			s.lift(start, line, encoded)
			return nil
		}
		return s.copyBack(start)
	}
}

// lift records src[start:pos] as a part and writes its token.
func (s *scanner) lift(start int64, line int, encoded int64) {
	i := len(s.doc.Parts)
	tok := fmt.Sprintf("%s%0*d", s.doc.nonce, idxLen, i)
	s.doc.Parts = append(s.doc.Parts, &Part{Token: tok, Line: line, Encoded: encoded, Envelope: s.envelope, src: s.src, off: start, n: s.pos - start})
	s.out.WriteString(tok)
	// Keep the line numbers of what follows.
	for range s.line - line {
		s.out.WriteByte('\n')
	}
}

// copyBack writes src[start:pos] to out, read again from the source: a
// long value that turned out not to be one to lift.
func (s *scanner) copyBack(start int64) error {
	r, err := s.src.Open(start)
	if err != nil {
		return err
	}
	defer r.Close()
	_, err = io.CopyN(&s.out, r, s.pos-start)
	return err
}

// name reads a name (element or attribute) into out and returns it.
func (s *scanner) name() (string, error) {
	var n []byte
	for {
		b, err := s.br.Peek(1)
		if err != nil {
			return "", err
		}
		c := b[0]
		if isSpace(c) || c == '/' || c == '>' || c == '=' || c == '<' || c == '"' || c == '\'' {
			return string(n), nil
		}
		if len(n) >= maxName {
			return "", errStop
		}
		n = append(n, c)
		s.copyByte()
	}
}

func local(name string) string {
	if i := strings.LastIndexByte(name, ':'); i >= 0 {
		return name[i+1:]
	}
	return name
}
