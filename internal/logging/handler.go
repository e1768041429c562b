package logging

import (
	"bytes"
	"context"
	"encoding"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
)

// redactedMark replaces the value of an attribute whose key names personal data.
const redactedMark = "[redacted]"

// DefaultRedactKeys are the attribute keys whose values are never logged.
// Keys match case-insensitively and ignoring '_', '-' and '.', so "givenName",
// "given_name" and "GIVEN-NAME" are the same key.
func DefaultRedactKeys() []string {
	return []string{
		"text", "body", "subject", "name", "cpr", "patient", "content",
		"givenname", "familyname", "fullname", "address", "email", "phone",
		"replacementid", "ecpr",
	}
}

// HandlerOptions configures a Handler.
type HandlerOptions struct {
	// RedactKeys replaces DefaultRedactKeys when not nil.
	RedactKeys []string
}

// Handler is a slog.Handler that removes personal data before the next
// handler sees a record: CPR numbers anywhere in the message, string values,
// errors, Stringers and structured values (see Redact), and the whole value of
// attributes whose key is a redact key, at any group depth.
//
// It also gives every line about a letter or a request its correlation_id
// at the top level: the id in the context (see WithCorrelation), else the
// id of the letter the line names (a "letter" attribute logged through
// Letter.LogValue, or "letter_id"). And it writes each top-level key once:
// a key already added with With is not repeated by a later With or by the
// record (the first value stays), so JSON lines never carry a key twice.
type Handler struct {
	next slog.Handler
	keys map[string]bool
	// top holds the top-level keys added by WithAttrs before any group.
	top map[string]bool
	// steps holds WithGroup/WithAttrs calls made after the first group. They
	// are replayed in Handle so correlation_id can stay at the top level;
	// attributes added before any group go straight to next, preformatted.
	steps []step
}

// step is one WithGroup (group != "") or WithAttrs call.
type step struct {
	group string
	attrs []slog.Attr
}

// NewHandler wraps next so nothing it writes carries personal data.
func NewHandler(next slog.Handler, opts HandlerOptions) *Handler {
	keys := opts.RedactKeys
	if keys == nil {
		keys = DefaultRedactKeys()
	}
	m := make(map[string]bool, len(keys))
	for _, k := range keys {
		m[normKey(k)] = true
	}
	return &Handler{next: next, keys: m}
}

// Enabled reports whether the next handler wants records at level.
func (h *Handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

// Handle redacts r and passes it on.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	attrs := make([]slog.Attr, 0, r.NumAttrs()+1)
	id := CorrelationID(ctx)
	seen := map[string]bool{}
	r.Attrs(func(a slog.Attr) bool {
		if id == "" {
			id = letterID(a)
		}
		if len(h.steps) == 0 { // top-level keys: each once
			if h.top[a.Key] || seen[a.Key] || a.Key == CorrelationKey {
				return true
			}
			seen[a.Key] = true
		}
		attrs = append(attrs, h.redactAttr(a))
		return true
	})
	for i := len(h.steps) - 1; i >= 0; i-- {
		s := h.steps[i]
		if s.group == "" {
			attrs = append(s.attrs[:len(s.attrs):len(s.attrs)], attrs...)
			continue
		}
		if len(attrs) == 0 {
			continue // slog drops empty groups; do the same
		}
		if h.sensitive(s.group) {
			attrs = []slog.Attr{slog.String(s.group, redactedMark)}
			continue
		}
		attrs = []slog.Attr{{Key: s.group, Value: slog.GroupValue(attrs...)}}
	}
	if id != "" && !h.top[CorrelationKey] {
		attrs = append(attrs, slog.String(CorrelationKey, Redact(id)))
	}
	out := slog.NewRecord(r.Time, r.Level, Redact(r.Message), r.PC)
	out.AddAttrs(attrs...)
	return h.next.Handle(ctx, out)
}

// WithAttrs returns a handler that adds the redacted attrs to every record.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	red := make([]slog.Attr, 0, len(attrs))
	c := *h
	if len(h.steps) == 0 {
		c.top = make(map[string]bool, len(h.top)+len(attrs))
		for k := range h.top {
			c.top[k] = true
		}
		for _, a := range attrs {
			if !c.top[a.Key] {
				c.top[a.Key] = true
				red = append(red, h.redactAttr(a))
			}
		}
		c.next = h.next.WithAttrs(red)
		return &c
	}
	for _, a := range attrs {
		red = append(red, h.redactAttr(a))
	}
	c.steps = append(h.steps[:len(h.steps):len(h.steps)], step{attrs: red})
	return &c
}

// WithGroup returns a handler that nests later attributes under name.
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.steps = append(h.steps[:len(h.steps):len(h.steps)], step{group: name})
	return &c
}

func (h *Handler) sensitive(key string) bool { return h.keys[normKey(key)] }

// letterID is the letter id an attribute names: "letter_id", or the "id"
// in a "letter" group (Letter.LogValue), or "".
func letterID(a slog.Attr) string {
	switch a.Key {
	case "letter_id":
		return a.Value.Resolve().String()
	case "letter":
		v := a.Value.Resolve()
		if v.Kind() != slog.KindGroup {
			return ""
		}
		for _, g := range v.Group() {
			if g.Key == "id" {
				return g.Value.Resolve().String()
			}
		}
	}
	return ""
}

// redactAttr returns a with personal data removed, resolving LogValuers.
func (h *Handler) redactAttr(a slog.Attr) slog.Attr {
	if h.sensitive(a.Key) {
		return slog.String(a.Key, redactedMark)
	}
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, Redact(v.String()))
	case slog.KindGroup:
		g := v.Group()
		out := make([]slog.Attr, len(g))
		for i, ga := range g {
			out[i] = h.redactAttr(ga)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(out...)}
	case slog.KindAny:
		return slog.Attr{Key: a.Key, Value: h.redactAny(v.Any())}
	}
	// Numbers are checked too: a CPR stored as an integer is still a CPR.
	if v.Kind() == slog.KindInt64 || v.Kind() == slog.KindUint64 {
		if s := v.String(); ContainsCPR(s) {
			return slog.String(a.Key, Redact(s))
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

// redactAny turns an arbitrary value into a redacted one. Errors, Stringers,
// TextMarshalers and byte slices become redacted strings (an error's text
// includes every wrapped cause); anything else goes through JSON so nested
// fields can be checked by key and value whatever handler formats it.
func (h *Handler) redactAny(x any) slog.Value {
	switch t := x.(type) {
	case nil:
		return slog.AnyValue(nil)
	case error, fmt.Stringer:
		// fmt recovers from a panicking Error/String method (a nil pointer
		// receiver, say), so a bad value cannot crash the logging call.
		return slog.StringValue(Redact(fmt.Sprint(t)))
	case encoding.TextMarshaler:
		return slog.StringValue(Redact(marshalText(t)))
	case []byte:
		return slog.StringValue(Redact(string(t)))
	}
	raw, err := json.Marshal(x)
	if err != nil {
		return slog.StringValue(Redact(fmt.Sprintf("%+v", x)))
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return slog.StringValue(Redact(fmt.Sprintf("%+v", x)))
	}
	return slog.AnyValue(h.redactTree(tree))
}

// marshalText returns t's text, or a marker if it fails or panics.
func marshalText(t encoding.TextMarshaler) (s string) {
	defer func() {
		if recover() != nil {
			s = "[unprintable]"
		}
	}()
	b, err := t.MarshalText()
	if err != nil {
		return "[unprintable]"
	}
	return string(b)
}

// redactTree redacts a decoded JSON value in place.
func (h *Handler) redactTree(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			if h.sensitive(k) {
				t[k] = redactedMark
			} else {
				t[k] = h.redactTree(e)
			}
		}
		return t
	case []any:
		for i, e := range t {
			t[i] = h.redactTree(e)
		}
		return t
	case string:
		return Redact(t)
	case json.Number:
		if ContainsCPR(string(t)) {
			return Redact(string(t))
		}
		return t
	}
	return v
}

// normKey folds case and drops separators so key spellings compare equal.
func normKey(k string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '_', '-', '.':
			return -1
		}
		return r
	}, strings.ToLower(k))
}
