package xmlsafe

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"

	"github.com/go-json-experiment/json/jsontext"
)

// DecodeJSON reads untrusted JSON into the values encoding/json gives for an
// any (map[string]any, []any, string, json.Number, bool, nil), checking the
// limits as it reads: size, nesting, the token budget and string length.
// It reads in one pass with a tokenizer that works on data itself
// (jsontext), so memory is the values kept, not a copy of the input (the
// encoding/json Decoder buffered the whole input and every token again: a
// 66 MB message peaked at 410 MB). Long strings share memory with data,
// which must not be modified while the values are in use. Duplicate names
// keep the last value, as encoding/json does. Errors are *Error; Path is
// the byte offset.
func DecodeJSON(data []byte, lim Limits) (any, error) {
	v, _, err := DecodeJSONDuplicates(data, lim)
	return v, err
}

// DecodeJSONDuplicates is DecodeJSON that also returns where a name occurs
// twice in one object: JSON Pointers (RFC 6901) to the repeated members,
// at most maxDuplicates. Readers disagree on which of the two counts (the
// first, the last, or neither), so a message that has them reads one way
// here and may read another way downstream; the caller decides whether to
// refuse it.
func DecodeJSONDuplicates(data []byte, lim Limits) (any, []string, error) {
	lim = lim.withDefaults()
	if int64(len(data)) > lim.MaxBytes {
		return nil, nil, &Error{Reason: ReasonTooLarge, Msg: fmt.Sprintf("input is %d bytes, more than the limit of %d", len(data), lim.MaxBytes), json: true}
	}
	bom := len(data)
	data = bytes.TrimPrefix(data, []byte{0xEF, 0xBB, 0xBF})
	r := &jsonReader{data: data, lim: lim, budget: lim.TokenBudget(len(data)), bom: bom - len(data),
		dec: jsontext.NewDecoder(bytes.NewBuffer(data), jsontext.AllowDuplicateNames(true))}
	if r.dec.PeekKind() == 0 {
		if _, err := r.dec.ReadToken(); errors.Is(err, io.EOF) {
			return nil, nil, &Error{Reason: ReasonSyntax, Msg: "empty input: expected JSON", json: true}
		}
	}
	v, err := r.value(0)
	if err != nil {
		return nil, nil, err
	}
	if _, err := r.dec.ReadToken(); !errors.Is(err, io.EOF) {
		return nil, nil, r.fail(ReasonSyntax, "more than one JSON value")
	}
	return v, r.dups, nil
}

const maxDuplicates = 10

// CheckJSON refuses oversize, too deeply nested or malformed JSON.
func CheckJSON(data []byte, lim Limits) error {
	_, err := DecodeJSON(data, lim)
	return err
}

type jsonReader struct {
	bom    int // bytes of a byte-order mark before data
	data   []byte
	dec    *jsontext.Decoder
	lim    Limits
	budget int
	tokens int
	dups   []string // JSON Pointers to names repeated in their object
}

func (r *jsonReader) fail(reason Reason, msg string) error {
	off := int(r.dec.InputOffset())
	return &Error{Reason: reason, Path: fmt.Sprintf("offset %d", off), Msg: msg, Offset: off + r.bom, json: true}
}

func (r *jsonReader) syntax(err error) error {
	msg := "malformed JSON"
	var se *jsontext.SyntacticError
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		msg += ": unexpected end of input (truncated file?)"
	case errors.As(err, &se):
		msg += ": " + redact(se.Err.Error())
	}
	return r.fail(ReasonSyntax, msg)
}

func (r *jsonReader) count() error {
	r.tokens++
	if r.tokens > r.budget {
		return r.fail(ReasonTooMany, fmt.Sprintf("more than %d JSON tokens (the limit for an input of %d bytes)", r.budget, len(r.data)))
	}
	return nil
}

// value reads one value at nesting depth.
func (r *jsonReader) value(depth int) (any, error) {
	if err := r.count(); err != nil {
		return nil, err
	}
	switch r.dec.PeekKind() {
	case '"':
		return r.str()
	case '{':
		if _, err := r.dec.ReadToken(); err != nil {
			return nil, r.syntax(err)
		}
		if depth+1 > r.lim.MaxDepth {
			return nil, r.fail(ReasonTooDeep, fmt.Sprintf("JSON nested deeper than %d levels", r.lim.MaxDepth))
		}
		obj := map[string]any{}
		for r.dec.PeekKind() != '}' {
			if r.dec.PeekKind() != '"' {
				_, err := r.dec.ReadToken()
				return nil, r.syntax(err)
			}
			if err := r.count(); err != nil {
				return nil, err
			}
			name, err := r.str()
			if err != nil {
				return nil, err
			}
			if _, dup := obj[name]; dup && len(r.dups) < maxDuplicates {
				r.dups = append(r.dups, string(r.dec.StackPointer()))
			}
			v, err := r.value(depth + 1)
			if err != nil {
				return nil, err
			}
			obj[name] = v
		}
		if _, err := r.dec.ReadToken(); err != nil {
			return nil, r.syntax(err)
		}
		return obj, nil
	case '[':
		if _, err := r.dec.ReadToken(); err != nil {
			return nil, r.syntax(err)
		}
		if depth+1 > r.lim.MaxDepth {
			return nil, r.fail(ReasonTooDeep, fmt.Sprintf("JSON nested deeper than %d levels", r.lim.MaxDepth))
		}
		arr := []any{}
		for r.dec.PeekKind() != ']' {
			if r.dec.PeekKind() == 0 {
				_, err := r.dec.ReadToken()
				return nil, r.syntax(err)
			}
			v, err := r.value(depth + 1)
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		if _, err := r.dec.ReadToken(); err != nil {
			return nil, r.syntax(err)
		}
		return arr, nil
	}
	tok, err := r.dec.ReadToken()
	if err != nil {
		return nil, r.syntax(err)
	}
	switch tok.Kind() {
	case 'n':
		return nil, nil
	case 't', 'f':
		return tok.Bool(), nil
	case '0':
		return json.Number(tok.String()), nil
	}
	return nil, r.fail(ReasonSyntax, "malformed JSON")
}

// str reads a string. One without escapes is the bytes between its quotes
// in data, so a long one (a base64 attachment) is not copied.
func (r *jsonReader) str() (string, error) {
	raw, err := r.dec.ReadValue()
	if err != nil {
		return "", r.syntax(err)
	}
	if len(raw)-2 > r.lim.MaxAttrLen {
		return "", r.fail(ReasonAttrTooLong, fmt.Sprintf("string is %d bytes, more than the limit of %d", len(raw)-2, r.lim.MaxAttrLen))
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		end := int(r.dec.InputOffset())
		if v := r.data[end-len(raw)+1 : end-1]; len(v) >= longRun {
			return unsafe.String(unsafe.SliceData(v), len(v)), nil
		}
		return string(raw[1 : len(raw)-1]), nil
	}
	s, ok := unquote(raw)
	if !ok {
		// Not reached for what the decoder accepted; jsontext names the fault.
		_, err := jsontext.AppendUnquote(nil, raw)
		return "", r.syntax(err)
	}
	if len(s) > r.lim.MaxAttrLen {
		return "", r.fail(ReasonAttrTooLong, fmt.Sprintf("string is %d bytes, more than the limit of %d", len(s), r.lim.MaxAttrLen))
	}
	return unsafe.String(unsafe.SliceData(s), len(s)), nil
}

// unquote is the string a JSON string literal (raw includes the quotes)
// holds, in a buffer of exactly its length, which the string then shares.
// jsontext.AppendUnquote would do, but it first grows its buffer to the
// literal's length: a 20 MB string of \u00e6 escapes (6.7 MB unquoted) cost
// 20 MB more and put `samhub validate` over its memory target (twice the
// input plus 30 MB). ok is false on a malformed escape; lone surrogates
// become U+FFFD, as with encoding/json (the decoder refuses them before).
func unquote(raw []byte) (s []byte, ok bool) {
	if len(raw) < 2 {
		return nil, false
	}
	out, body := make([]byte, 0, unquotedLen(raw)), raw[1:len(raw)-1]
	for len(body) > 0 {
		k := bytes.IndexByte(body, '\\')
		if k < 0 {
			return append(out, body...), true
		}
		out, body = append(out, body[:k]...), body[k:]
		if len(body) < 2 {
			return nil, false
		}
		n := 2
		switch c := body[1]; c {
		case '"', '\\', '/':
			out = append(out, c)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := hex4(body, 2)
			if !ok {
				return nil, false
			}
			n = 6
			if utf16.IsSurrogate(r) {
				r2, ok := hex4(body, 8)
				if d := utf16.DecodeRune(r, r2); ok && body[6] == '\\' && body[7] == 'u' && d != utf8.RuneError {
					r, n = d, 12
				} else {
					r = utf8.RuneError
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			return nil, false
		}
		body = body[n:]
	}
	return out, true
}

// unquotedLen is the length of the string a valid JSON string literal
// holds (raw includes the quotes).
func unquotedLen(raw []byte) int {
	n := 0
	for i := 1; i < len(raw)-1; {
		if raw[i] != '\\' {
			n, i = n+1, i+1
			continue
		}
		if i+1 < len(raw) && raw[i+1] != 'u' {
			n, i = n+1, i+2
			continue
		}
		r, ok := hex4(raw, i+2)
		switch {
		case !ok:
			return n + len(raw) - i // malformed: AppendUnquote says so
		case utf16.IsSurrogate(r):
			if r2, ok := hex4(raw, i+8); ok && i+7 < len(raw) && raw[i+6] == '\\' && raw[i+7] == 'u' && utf16.DecodeRune(r, r2) != utf8.RuneError {
				n, i = n+4, i+12
			} else {
				n, i = n+3, i+6 // a lone surrogate becomes U+FFFD
			}
		default:
			n, i = n+utf8.RuneLen(r), i+6
		}
	}
	return n
}

func hex4(b []byte, at int) (rune, bool) {
	if at+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[at : at+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}
