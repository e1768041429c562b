// Package body assembles what a sink sends (a request body, a mail, a
// file) from bytes and letter parts, so that an attachment is sent from
// its reader and never held whole: a 100 MB attachment costs a sink a few
// buffers, not 100 MB, and certainly not 100 MB of base64 in a request
// built in memory.
//
// A Body is a list of segments: bytes, and parts (an opener and a size),
// raw or base64-encoded. Its length is known before anything is read, so
// an HTTP request carries a Content-Length (a server can refuse a body too
// large before reading it, and a body cut short is seen as such by both
// ends). Every Reader opens the parts anew, so an HTTP client that sends
// the body again (a new token after 401) and a retried delivery both send
// the same bytes. A part whose read fails, or that gives more or fewer
// bytes than its size, fails the Reader: whoever sends must then send
// nothing (an HTTP request is aborted before its last byte, a mail is not
// ended, a file is not renamed into place).
//
// Documents that carry parts in base64 inside JSON or XML are built with a
// Template: the document is encoded once with a random marker standing for
// each part's bytes, and Template.Body cuts it at the markers' base64.
package body

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/pipeline/letter"
)

// Encoding is how a part's bytes appear in a body.
type Encoding int

const (
	Raw    Encoding = iota // as they are
	Base64                 // standard base64 with padding, no line breaks
)

// Body is bytes and parts in order.
type Body struct {
	segs []segment
	size int64
}

type segment struct {
	data []byte
	open letter.Opener // nil for bytes
	size int64         // the part's own length (before encoding)
	enc  Encoding
	what string // names the part in errors: "attachment 2"
}

func (s segment) len() int64 {
	switch {
	case s.open == nil:
		return int64(len(s.data))
	case s.enc == Base64:
		return Base64Len(s.size)
	}
	return s.size
}

// Base64Len is the length of n bytes in padded standard base64.
func Base64Len(n int64) int64 { return (n + 2) / 3 * 4 }

// Write appends bytes. The body keeps p; the caller must not change it.
func (b *Body) Write(p []byte) {
	if len(p) == 0 {
		return
	}
	b.segs = append(b.segs, segment{data: p})
	b.size += int64(len(p))
}

// WriteString appends a string.
func (b *Body) WriteString(s string) { b.Write([]byte(s)) }

// Part appends a part of size bytes that open gives, in enc.
func (b *Body) Part(what string, open letter.Opener, size int64, enc Encoding) {
	s := segment{open: open, size: size, enc: enc, what: what}
	b.segs = append(b.segs, s)
	b.size += s.len()
}

// Len is the number of bytes a Reader gives.
func (b *Body) Len() int64 { return b.size }

// Reader returns a reader over the whole body that opens each part when it
// gets to it. ctx is passed to the parts' openers.
func (b *Body) Reader(ctx context.Context) io.ReadCloser {
	return &reader{ctx: ctx, segs: b.segs}
}

// WriteTo writes the body to w, opening each part in turn.
func (b *Body) WriteTo(ctx context.Context, w io.Writer) (int64, error) {
	r := b.Reader(ctx)
	defer r.Close()
	// A buffer of its own rather than io.Copy's ReaderFrom path, so what w
	// sees is written in 32 KiB pieces whatever w is.
	return io.CopyBuffer(struct{ io.Writer }{w}, r, make([]byte, 32<<10))
}

// Bytes reads the whole body into memory: for tests and small bodies.
func (b *Body) Bytes(ctx context.Context) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(int(b.size))
	_, err := b.WriteTo(ctx, &buf)
	return buf.Bytes(), err
}

type reader struct {
	ctx  context.Context
	segs []segment
	i    int
	off  int           // in a bytes segment
	cur  io.ReadCloser // the open part, encoded as the segment says
	err  error
}

func (r *reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	for r.i < len(r.segs) {
		s := r.segs[r.i]
		if s.open == nil {
			if r.off < len(s.data) {
				n := copy(p, s.data[r.off:])
				r.off += n
				return n, nil
			}
			r.i, r.off = r.i+1, 0
			continue
		}
		if r.cur == nil {
			pr, err := s.open(r.ctx)
			if err != nil {
				r.err = &PartError{What: s.what, Err: err}
				return 0, r.err
			}
			var rd io.Reader = &exact{r: pr, left: s.size, what: s.what}
			if s.enc == Base64 {
				rd = newB64(rd, s.size)
			}
			r.cur = readCloser{Reader: rd, Closer: pr}
		}
		n, err := r.cur.Read(p)
		if errors.Is(err, io.EOF) {
			r.cur.Close()
			r.cur = nil
			r.i++
			err = nil
		}
		if err != nil {
			r.err = err
			return n, err
		}
		if n > 0 {
			return n, nil
		}
	}
	return 0, io.EOF
}

func (r *reader) Close() error {
	if r.cur != nil {
		r.cur.Close()
		r.cur = nil
	}
	if r.err == nil {
		r.err = errors.New("body: reader closed")
	}
	return nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// PartError is a part that could not be read while sending: a sink that
// sees one sent nothing and classifies the delivery retryable
// (adapters.PartUnreadable).
type PartError struct {
	What string
	Err  error
}

func (e *PartError) Error() string { return "reading " + e.What + ": " + e.Err.Error() }
func (e *PartError) Unwrap() error { return e.Err }

// exact passes on a part's bytes and fails unless they are exactly left.
type exact struct {
	r    io.Reader
	left int64
	what string
}

func (e *exact) Read(p []byte) (int, error) {
	if int64(len(p)) > e.left+1 {
		p = p[:e.left+1] // one byte more shows a part longer than recorded
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	switch {
	case e.left < 0:
		return 0, &PartError{What: e.what, Err: errors.New("longer than its recorded size")}
	case errors.Is(err, io.EOF) && e.left > 0:
		return n, &PartError{What: e.what, Err: fmt.Errorf("%d bytes short of its recorded size", e.left)}
	case err != nil && !errors.Is(err, io.EOF):
		return n, &PartError{What: e.what, Err: err}
	}
	return n, err
}

// b64 encodes what it reads, in blocks of whole 3-byte groups.
type b64 struct {
	r   io.Reader
	in  []byte
	enc []byte // the encoding buffer, reused
	out []byte // encoded, not yet read (in enc)
	eof bool
}

// newB64 encodes a part of size bytes. Its buffers are the part's size up
// to 48 KB: a 10 KB letter's part then costs 24 KB of buffers, not 112.
func newB64(r io.Reader, size int64) *b64 {
	n := int64(48 << 10)
	if size+1 < n {
		// One byte more than the part, so its end is read in the same
		// fill (exact reports a part longer than its size then).
		n = (size + 1 + 2) / 3 * 3
	}
	return &b64{r: r, in: make([]byte, 0, n)}
}

func (b *b64) Read(p []byte) (int, error) {
	for len(b.out) == 0 {
		if b.eof {
			return 0, io.EOF
		}
		// Fill the input to a multiple of 3 (or the end), encode it.
		for len(b.in) < cap(b.in) && !b.eof {
			n, err := b.r.Read(b.in[len(b.in):cap(b.in)])
			b.in = b.in[:len(b.in)+n]
			if errors.Is(err, io.EOF) {
				b.eof = true
			} else if err != nil {
				return 0, err
			}
		}
		whole := len(b.in)
		if !b.eof {
			whole -= whole % 3
		}
		if b.enc == nil {
			b.enc = make([]byte, base64.StdEncoding.EncodedLen(cap(b.in)))
		}
		n := base64.StdEncoding.EncodedLen(whole)
		base64.StdEncoding.Encode(b.enc[:n], b.in[:whole])
		b.out = b.enc[:n]
		b.in = b.in[:copy(b.in, b.in[whole:])]
	}
	n := copy(p, b.out)
	b.out = b.out[n:]
	return n, nil
}

// Template builds a JSON or XML document that carries parts in base64:
// Mark gives the bytes to put where a part's bytes go, the document is
// encoded as usual (base64 of them appears once per Mark), and Body cuts
// the encoded document at each mark's base64 and puts the part there.
type Template struct {
	marks []mark
}

type mark struct {
	token []byte // base64 of the marker bytes
	open  letter.Opener
	size  int64
	what  string
}

// Mark returns the bytes that stand for a part in the document to encode:
// 30 random bytes, whose base64 (40 characters, no padding, nothing any
// JSON or XML encoder escapes) cannot occur in the document by chance.
func (t *Template) Mark(what string, open letter.Opener, size int64) []byte {
	raw := make([]byte, 30)
	_, _ = rand.Read(raw)
	t.marks = append(t.marks, mark{token: []byte(base64.StdEncoding.EncodeToString(raw)), open: open, size: size, what: what})
	return raw
}

// Body cuts doc at the marks' base64 and returns the body with the parts
// in their places. Each mark must occur exactly once.
func (t *Template) Body(doc []byte) (*Body, error) {
	type at struct {
		pos int
		m   mark
	}
	var found []at
	for _, m := range t.marks {
		i := bytes.Index(doc, m.token)
		if i < 0 || bytes.Index(doc[i+len(m.token):], m.token) >= 0 {
			return nil, fmt.Errorf("body: the encoded document holds %s's mark not exactly once", m.what)
		}
		found = append(found, at{i, m})
	}
	// In document order.
	for i := 1; i < len(found); i++ {
		for j := i; j > 0 && found[j].pos < found[j-1].pos; j-- {
			found[j], found[j-1] = found[j-1], found[j]
		}
	}
	var b Body
	last := 0
	for _, f := range found {
		b.Write(doc[last:f.pos])
		b.Part(f.m.what, f.m.open, f.m.size, Base64)
		last = f.pos + len(f.m.token)
	}
	b.Write(doc[last:])
	return &b, nil
}

// Unreadable returns the retryable adapters.PartUnreadable error when err
// comes from a part that could not be read, nil otherwise: a sink checks
// it first when sending failed, so a failed read is not taken for the
// destination's fault.
func Unreadable(err error) error {
	var pe *PartError
	if err != nil && errors.As(err, &pe) {
		return adapters.PartUnreadable(err)
	}
	return nil
}
