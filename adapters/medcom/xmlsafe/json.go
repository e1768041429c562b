package xmlsafe

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// CheckJSON refuses oversize, too deeply nested or malformed JSON before a
// caller decodes it into structs (encoding/json's own limit is 10,000 levels
// and it has no size limit). Errors are *Error; Path is the JSON offset.
func CheckJSON(data []byte, lim Limits) error {
	lim = lim.withDefaults()
	if int64(len(data)) > lim.MaxBytes {
		return &Error{Reason: ReasonTooLarge, Msg: fmt.Sprintf("input is %d bytes, more than the limit of %d", len(data), lim.MaxBytes)}
	}
	data = bytes.TrimPrefix(data, []byte{0xEF, 0xBB, 0xBF})
	dec := json.NewDecoder(bytes.NewReader(data))
	depth, tokens := 0, 0
	at := func() string { return fmt.Sprintf("offset %d", dec.InputOffset()) }
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			if tokens == 0 {
				return &Error{Reason: ReasonSyntax, Msg: "empty input: expected JSON"}
			}
			if depth != 0 {
				return &Error{Reason: ReasonSyntax, Path: at(), Msg: "malformed JSON: unexpected end of input (truncated file?)"}
			}
			return nil
		}
		if err != nil {
			var se *json.SyntaxError
			msg := "malformed JSON"
			if errors.As(err, &se) {
				msg += ": " + redact(se.Error())
			} else if errors.Is(err, io.ErrUnexpectedEOF) {
				msg += ": unexpected end of input (truncated file?)"
			}
			return &Error{Reason: ReasonSyntax, Path: at(), Msg: msg}
		}
		tokens++
		if tokens > lim.MaxTokens {
			return &Error{Reason: ReasonTooMany, Path: at(), Msg: fmt.Sprintf("more than %d JSON tokens", lim.MaxTokens)}
		}
		switch t := tok.(type) {
		case json.Delim:
			if t == '{' || t == '[' {
				depth++
				if depth > lim.MaxDepth {
					return &Error{Reason: ReasonTooDeep, Path: at(), Msg: fmt.Sprintf("JSON nested deeper than %d levels", lim.MaxDepth)}
				}
			} else {
				depth--
			}
		case string:
			if len(t) > lim.MaxAttrLen {
				return &Error{Reason: ReasonAttrTooLong, Path: at(), Msg: fmt.Sprintf("string is %d bytes, more than the limit of %d", len(t), lim.MaxAttrLen)}
			}
		}
		if depth == 0 && dec.More() {
			return &Error{Reason: ReasonSyntax, Path: at(), Msg: "more than one JSON value"}
		}
	}
}
