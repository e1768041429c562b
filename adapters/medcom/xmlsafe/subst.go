package xmlsafe

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"unsafe"
)

// substitute is what the decoder reads: the input with every long value
// (scan.go) replaced by a placeholder, a random nonce and the value's index,
// followed by as many line feeds as the value held so that the decoder's
// line numbers stay those of the input. The tree gets the value itself
// (expand), so the decoder never buffers a long value.
type substitute struct {
	s     *scanner
	nonce []byte
	pos   int    // next byte of the input
	next  int    // next run
	pend  []byte // placeholder bytes not yet read
	// stop: while pos < stop, the input's bytes are read as they are (no
	// placeholder pending, no run starting). It is what keeps ReadByte, which
	// the decoder calls for every byte, to one comparison on most bytes.
	stop int
}

// idxLen is the number of digits of a run's index in its placeholder.
const idxLen = 8

func newSubstitute(s *scanner) *substitute {
	var b [8]byte
	_, _ = rand.Read(b[:])
	r := &substitute{s: s, nonce: []byte("xs" + hex.EncodeToString(b[:]))}
	r.setStop()
	return r
}

// setStop sets stop for the current state: 0 while placeholder bytes are
// pending, else the start of the next run or the end of the input.
func (r *substitute) setStop() {
	switch {
	case len(r.pend) > 0:
		r.stop = 0
	case r.next < len(r.s.runs):
		r.stop = r.s.runs[r.next].start
	default:
		r.stop = len(r.s.data)
	}
}

// inputPos is how far the decoder has read into the input: within a
// placeholder, the start of the value it stands for.
func (r *substitute) inputPos() int {
	if len(r.pend) > 0 && r.next > 0 {
		return r.s.runs[r.next-1].start
	}
	return r.pos
}

func (r *substitute) placeholder(i int) []byte {
	p := make([]byte, 0, len(r.nonce)+idxLen+r.s.runs[i].lines)
	p = append(p, r.nonce...)
	p = fmt.Appendf(p, "%0*d", idxLen, i)
	return append(p, bytes.Repeat([]byte{'\n'}, r.s.runs[i].lines)...)
}

// fill moves on to the next run's placeholder when the input reaches it.
func (r *substitute) fill() {
	if len(r.pend) == 0 && r.next < len(r.s.runs) && r.pos == r.s.runs[r.next].start {
		r.pend = r.placeholder(r.next)
		r.pos = r.s.runs[r.next].end
		r.next++
	}
}

func (r *substitute) ReadByte() (byte, error) {
	if r.pos < r.stop {
		b := r.s.data[r.pos]
		r.pos++
		return b, nil
	}
	return r.readByteSlow()
}

// readByteSlow is ReadByte at a run's start, inside a placeholder or at
// the end of the input.
func (r *substitute) readByteSlow() (byte, error) {
	r.fill()
	defer r.setStop()
	if len(r.pend) > 0 {
		b := r.pend[0]
		r.pend = r.pend[1:]
		return b, nil
	}
	if r.pos >= len(r.s.data) {
		return 0, io.EOF
	}
	b := r.s.data[r.pos]
	r.pos++
	return b, nil
}

// Read serves a CharsetReader (ISO-8859-1, windows-1252), which reads in blocks.
func (r *substitute) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		r.fill()
		if len(r.pend) > 0 {
			c := copy(p[n:], r.pend)
			r.pend = r.pend[c:]
			n += c
			continue
		}
		if r.pos >= len(r.s.data) {
			break
		}
		end := len(r.s.data)
		if r.next < len(r.s.runs) {
			end = r.s.runs[r.next].start
		}
		c := copy(p[n:], r.s.data[r.pos:end])
		r.pos += c
		n += c
	}
	r.setStop()
	if n == 0 && len(p) > 0 {
		return 0, io.EOF
	}
	return n, nil
}

// run returns the index of the run whose placeholder v is, or -1.
func (r *substitute) run(v []byte) int {
	if len(v) < len(r.nonce)+idxLen || !bytes.HasPrefix(v, r.nonce) {
		return -1
	}
	i := 0
	for _, c := range v[len(r.nonce) : len(r.nonce)+idxLen] {
		if c < '0' || c > '9' {
			return -1
		}
		i = i*10 + int(c-'0')
	}
	if i >= r.next || len(v) != len(r.nonce)+idxLen+r.s.runs[i].lines {
		return -1
	}
	return i
}

// expand returns the value a token holds: the long value its placeholder
// stands for, or the token itself.
func (r *substitute) expand(v []byte) string {
	if i := r.run(v); i >= 0 {
		return r.value(i)
	}
	return string(v)
}

func (r *substitute) expandString(v string) string {
	if i := r.run(unsafe.Slice(unsafe.StringData(v), len(v))); i >= 0 {
		return r.value(i)
	}
	return v
}

// value is run i's value as the decoder would have given it. A plain value
// (UTF-8, no reference, no carriage return) shares the input's memory: the
// input is never modified (Parse says so to its callers), and a 66 MB
// attachment is then not held twice.
func (r *substitute) value(i int) string {
	ru := r.s.runs[i]
	v := r.s.data[ru.start:ru.end]
	if ru.plain {
		return unsafe.String(unsafe.SliceData(v), len(v))
	}
	if r.s.latin != nil {
		b, err := r.s.latin.NewDecoder().Bytes(v)
		if err == nil {
			v = b
		}
	}
	var b strings.Builder
	b.Grow(len(v))
	for k := 0; k < len(v); k++ {
		c := v[k]
		switch {
		case c == '\r' && ru.kind != runComment:
			// \r\n and a lone \r become \n, as the decoder writes them.
			b.WriteByte('\n')
			if k+1 < len(v) && v[k+1] == '\n' {
				k++
			}
		case c == '&' && (ru.kind == runText || ru.kind == runAttr):
			semi := bytes.IndexByte(v[k:], ';')
			text, _ := entity(string(v[k+1 : k+semi])) // checked by the scan
			b.WriteString(text)
			k += semi
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
