package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/samhub/samhub/pipeline/letter"
)

// secretPatient is a LogValuer that (wrongly) exposes personal data, to show
// the handler catches what a careless LogValue returns.
type secretPatient struct{ cpr, name string }

func (p secretPatient) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", p.cpr), slog.String("name", p.name), slog.Int("age", 11))
}

// caseRef is a plain struct logged with slog.Any.
type caseRef struct {
	CaseID  string
	CPRNum  int64
	Name    string
	Tags    []string
	Private map[string]string
}

// stringer formats with a CPR in it.
type stringer struct{}

func (stringer) String() string { return "ref 2509479989" }

// nilErr has a pointer receiver that dereferences, so a nil *nilErr panics.
type nilErr struct{ code int }

func (e *nilErr) Error() string { return fmt.Sprintf("code %d", e.code) }

// badText fails to marshal.
type badText struct{}

func (badText) MarshalText() ([]byte, error) { return nil, errors.New("no") }

// decode parses one JSON log line.
func decode(t *testing.T, buf *bytes.Buffer) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatalf("log line is not JSON: %v\n%s", err, buf)
	}
	return m
}

// path returns the value at a dotted path in a decoded log line.
func path(m map[string]any, p string) any {
	var cur any = m
	for _, k := range strings.Split(p, ".") {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[k]
	}
	return cur
}

func TestHandlerRedacts(t *testing.T) {
	wrapped := fmt.Errorf("deliver to casesystem-1: %w",
		fmt.Errorf("post document for 250947-9989: %w", errors.New("409 conflict")))
	joined := errors.Join(errors.New("first 1509819996"), errors.New("second 0703921VJ4"))
	tests := []struct {
		name string
		log  func(l *slog.Logger)
		want map[string]any // dotted path → exact value
	}{
		{
			name: "message",
			log:  func(l *slog.Logger) { l.Info("received referral for 2509479989") },
			want: map[string]any{"msg": "received referral for [CPR]"},
		},
		{
			name: "string attribute",
			log:  func(l *slog.Logger) { l.Info("x", "file", "in/2509479989.xml") },
			want: map[string]any{"file": "in/[CPR].xml"},
		},
		{
			name: "wrapped error",
			log:  func(l *slog.Logger) { l.Error("failed", "err", wrapped) },
			want: map[string]any{"err": "deliver to casesystem-1: post document for [CPR]: 409 conflict"},
		},
		{
			name: "joined error",
			log:  func(l *slog.Logger) { l.Error("failed", slog.Any("err", joined)) },
			want: map[string]any{"err": "first [CPR]\nsecond [CPR]"},
		},
		{
			name: "sensitive keys any spelling",
			log: func(l *slog.Logger) {
				l.Info("x", "text", "Bruno har ondt i maven", "Subject", "Henvisning", "givenName", "Bruno",
					"family_name", "Elmer", "CPR", "x", "patient", "p", "body", 42, "adapter", "medcom-in")
			},
			want: map[string]any{
				"text": "[redacted]", "Subject": "[redacted]", "givenName": "[redacted]",
				"family_name": "[redacted]", "CPR": "[redacted]", "patient": "[redacted]",
				"body": "[redacted]", "adapter": "medcom-in",
			},
		},
		{
			name: "nested groups",
			log: func(l *slog.Logger) {
				l.Info("x", slog.Group("letter", slog.String("id", "L1"),
					slog.Group("sender", slog.String("name", "Lægehuset"), slog.String("gln", "5790000123456")),
					slog.String("ref", "1509819996")))
			},
			want: map[string]any{
				"letter.id": "L1", "letter.sender.name": "[redacted]",
				"letter.sender.gln": "5790000123456", "letter.ref": "[CPR]",
			},
		},
		{
			name: "sensitive group replaced whole",
			log: func(l *slog.Logger) {
				l.Info("x", slog.Group("patient", slog.String("pseudonym", "p-1")))
			},
			want: map[string]any{"patient": "[redacted]"},
		},
		{
			name: "careless LogValuer",
			log: func(l *slog.Logger) {
				l.Info("x", slog.Any("who", secretPatient{cpr: "2512489996", name: "Nancy Ann Test Berggren"}))
			},
			want: map[string]any{"who.id": "[CPR]", "who.name": "[redacted]", "who.age": float64(11)},
		},
		{
			name: "letter LogValuer",
			log: func(l *slog.Logger) {
				l.Info("x", slog.Any("letter", &letter.Letter{
					ID: "L-7", Kind: letter.KindReferral, Source: "medcom-in", Subject: "Bruno 2509479989",
					Text:    "Bruno Test Elmer",
					Patient: &letter.Patient{CPR: "2509479989", GivenName: "Bruno Test", FamilyName: "Elmer"},
				}))
			},
			want: map[string]any{"letter.id": "L-7", "letter.kind": "referral", "letter.source": "medcom-in"},
		},
		{
			name: "struct through JSON",
			log: func(l *slog.Logger) {
				l.Info("x", slog.Any("ref", caseRef{
					CaseID: "K-1", CPRNum: 2509479989, Name: "Bruno", Tags: []string{"ok", "1509819996"},
					Private: map[string]string{"email": "brita@example.org", "note": "250947-9989"},
				}))
			},
			want: map[string]any{
				"ref.CaseID": "K-1", "ref.CPRNum": "[CPR]", "ref.Name": "[redacted]",
				"ref.Tags": []any{"ok", "[CPR]"}, "ref.Private.email": "[redacted]",
				"ref.Private.note": "[CPR]",
			},
		},
		{
			name: "integer CPR",
			log:  func(l *slog.Logger) { l.Info("x", "n", int64(2509479989), "count", 3) },
			want: map[string]any{"n": "[CPR]", "count": float64(3)},
		},
		{
			name: "Stringer and TextMarshaler",
			log: func(l *slog.Logger) {
				l.Info("x", "s", stringer{}, "ip", netip.MustParseAddr("127.0.0.1"), "raw", []byte("a 0703921VJ4"))
			},
			want: map[string]any{"s": "ref [CPR]", "ip": "127.0.0.1", "raw": "a [CPR]"},
		},
		{
			name: "panicking and failing values do not crash logging",
			log: func(l *slog.Logger) {
				var e *nilErr
				l.Info("x", "err", error(e), "t", badText{})
			},
			want: map[string]any{"t": "[unprintable]"},
		},
		{
			name: "non-personal kinds pass",
			log: func(l *slog.Logger) {
				l.Info("x", "ok", true, "took", 1500*time.Millisecond, "ratio", 0.5, "none", nil)
			},
			want: map[string]any{"ok": true, "took": float64(1500 * time.Millisecond), "ratio": 0.5, "none": nil},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			tt.log(New(&buf, slog.LevelDebug, "json"))
			if ContainsCPR(buf.String()) {
				t.Errorf("log line contains a CPR: %s", &buf)
			}
			for _, leak := range []string{"Bruno", "Elmer", "Nancy", "ondt", "Henvisning", "brita@"} {
				if strings.Contains(buf.String(), leak) {
					t.Errorf("log line leaks %q: %s", leak, &buf)
				}
			}
			m := decode(t, &buf)
			for p, want := range tt.want {
				got := path(m, p)
				gj, _ := json.Marshal(got)
				wj, _ := json.Marshal(want)
				if !bytes.Equal(gj, wj) {
					t.Errorf("%s = %s, want %s\nline: %s", p, gj, wj, &buf)
				}
			}
		})
	}
}

func TestHandlerWithAttrsAndGroups(t *testing.T) {
	var buf bytes.Buffer
	ctx := WithCorrelation(context.Background(), "letter-42")
	l := New(&buf, slog.LevelInfo, "json").
		With("adapter", "casesystem-1", "name", "Bruno").
		WithGroup("delivery").
		With("to", "case/2509479989").
		WithGroup("patient").
		With("pseudonym", "p-9")
	l.InfoContext(ctx, "delivered", "attempt", 2)

	m := decode(t, &buf)
	want := map[string]any{
		"adapter":          "casesystem-1",
		"name":             "[redacted]",
		"delivery.to":      "case/[CPR]",
		"delivery.patient": "[redacted]",
		"correlation_id":   "letter-42",
	}
	for p, w := range want {
		if got := path(m, p); got != w {
			t.Errorf("%s = %v, want %v\nline: %s", p, got, w, &buf)
		}
	}
}

func TestHandlerGroupWithoutAttrsIsDropped(t *testing.T) {
	var buf bytes.Buffer
	New(&buf, slog.LevelInfo, "json").WithGroup("g").Info("nothing")
	m := decode(t, &buf)
	if _, ok := m["g"]; ok {
		t.Errorf("empty group was written: %s", &buf)
	}
}

func TestCorrelationID(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf, slog.LevelInfo, "json")
	l.Info("no context id")
	if strings.Contains(buf.String(), CorrelationKey) {
		t.Errorf("correlation_id written without one in the context: %s", &buf)
	}
	buf.Reset()
	ctx := WithCorrelation(context.Background(), "req-1")
	l.InfoContext(ctx, "with id")
	if got := decode(t, &buf)[CorrelationKey]; got != "req-1" {
		t.Errorf("correlation_id = %v, want req-1", got)
	}
	if got := CorrelationID(context.Background()); got != "" {
		t.Errorf("CorrelationID(empty ctx) = %q", got)
	}
}

func TestNewTextFormatAndLevel(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf, slog.LevelWarn, "text")
	l.Info("hidden")
	l.Warn("parked 1509819996", "subject", "Henvisning", "dest", "epj")
	out := buf.String()
	if strings.Contains(out, "hidden") {
		t.Errorf("record below level was written: %s", out)
	}
	for _, want := range []string{`msg="parked [CPR]"`, "subject=[redacted]", "dest=epj", "level=WARN"} {
		if !strings.Contains(out, want) {
			t.Errorf("text output %q lacks %q", out, want)
		}
	}
	if strings.HasPrefix(out, "{") {
		t.Errorf("text format wrote JSON: %s", out)
	}
}

func TestCustomRedactKeys(t *testing.T) {
	var buf bytes.Buffer
	h := NewHandler(slog.NewJSONHandler(&buf, nil), HandlerOptions{RedactKeys: []string{"secret"}})
	slog.New(h).Info("x", "secret", "s", "text", "kept", "id", "2509479989")
	m := decode(t, &buf)
	if m["secret"] != "[redacted]" || m["text"] != "kept" || m["id"] != "[CPR]" {
		t.Errorf("custom keys not applied (CPR still redacted): %s", &buf)
	}
}

// failingHandler shows errors from the next handler reach the caller.
type failingHandler struct{ slog.Handler }

func (failingHandler) Handle(context.Context, slog.Record) error { return errors.New("disk full") }

func TestHandlerPassesNextError(t *testing.T) {
	h := NewHandler(failingHandler{slog.NewJSONHandler(io.Discard, nil)}, HandlerOptions{})
	err := h.Handle(context.Background(), slog.NewRecord(time.Now(), slog.LevelInfo, "m", 0))
	if err == nil || err.Error() != "disk full" {
		t.Errorf("Handle error = %v, want disk full", err)
	}
}

// BenchmarkHandler compares a plain JSON handler with the redacting one on a
// typical record, to show the redaction overhead per log line.
func BenchmarkHandler(b *testing.B) {
	ctx := WithCorrelation(context.Background(), "letter-7f3a")
	err := fmt.Errorf("post document: %w", errors.New("503 service unavailable"))
	logRecord := func(l *slog.Logger) {
		l.InfoContext(ctx, "delivery failed, will retry",
			"destination", "casesystem-1", "attempt", 3, "err", err,
			slog.Group("letter", slog.String("id", "L-1"), slog.String("kind", "referral")))
	}
	b.Run("plain-json", func(b *testing.B) {
		l := slog.New(slog.NewJSONHandler(io.Discard, nil)).With("adapter", "casesystem")
		b.ReportAllocs()
		for b.Loop() {
			logRecord(l)
		}
	})
	b.Run("redacting-json", func(b *testing.B) {
		l := New(io.Discard, slog.LevelInfo, "json").With("adapter", "casesystem")
		b.ReportAllocs()
		for b.Loop() {
			logRecord(l)
		}
	})
	b.Run("redacting-json-with-cpr", func(b *testing.B) {
		l := New(io.Discard, slog.LevelInfo, "json")
		b.ReportAllocs()
		for b.Loop() {
			l.Info("received 2509479989", "file", "in/250947-9989.xml")
		}
	})
	b.Run("disabled-level", func(b *testing.B) {
		l := New(io.Discard, slog.LevelWarn, "json")
		b.ReportAllocs()
		for b.Loop() {
			logRecord(l)
		}
	})
}

// A key is written once per line, however often With and the call repeat
// it (a JSON object with a key twice is read differently by every tool).
func TestHandlerWritesEachKeyOnce(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf, slog.LevelInfo, "json").With("adapter", "casesys").With("adapter", "casesys", "x", 1)
	l.Info("line", "adapter", "other", "x", 2, "y", 3, "y", 4)
	line := buf.String()
	for _, k := range []string{`"adapter"`, `"x"`, `"y"`} {
		if n := strings.Count(line, k); n != 1 {
			t.Errorf("%s appears %d times: %s", k, n, line)
		}
	}
	if m := decode(t, &buf); m["adapter"] != "casesys" || m["x"] != float64(1) || m["y"] != float64(3) {
		t.Errorf("the first value must stay: %s", line)
	}
}

type fakeLetter struct{ id string }

func (f fakeLetter) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", f.id), slog.String("kind", "referral"))
}

// A line about a letter carries the letter id as its correlation id; an id
// in the context (a request) wins.
func TestCorrelationFromTheLetter(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf, slog.LevelInfo, "json")
	l.Info("delivered", slog.Any("letter", fakeLetter{"medcom:5790000000005#LTR1"}))
	l.Info("acknowledged", "letter_id", "medcom:5790000000005#LTR2")
	l.InfoContext(WithCorrelation(context.Background(), "req-7"), "replayed", "letter_id", "x")
	var got []string
	dec := json.NewDecoder(&buf)
	for dec.More() {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprint(m[CorrelationKey]))
	}
	want := []string{"medcom:5790000000005#LTR1", "medcom:5790000000005#LTR2", "req-7"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("correlation ids %v, want %v", got, want)
	}
}
