package body_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/adapters/body"
)

func random(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// part opens data; after failAfter bytes (when ≥ 0) its reader fails.
type part struct {
	data      []byte
	failAfter int
	opens     int
}

func (p *part) open(context.Context) (io.ReadCloser, error) {
	p.opens++
	var r io.Reader = bytes.NewReader(p.data)
	if p.failAfter >= 0 {
		r = io.MultiReader(io.LimitReader(r, int64(p.failAfter)), errReader{})
	}
	return io.NopCloser(r), nil
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("store went away") }

// Every length, raw and base64, of a part between two byte runs comes out
// as the bytes it stands for, with Len exact before anything is read.
func TestBodyGivesWhatItsLengthSays(t *testing.T) {
	ctx := context.Background()
	for _, n := range []int{0, 1, 2, 3, 4, 5, 6, 7, 10<<10 - 1, 10 << 10, 10<<10 + 1, 47 << 10, 48<<10 - 1, 48 << 10, 48<<10 + 1, 1 << 20} {
		data := random(t, n)
		p := &part{data: data, failAfter: -1}
		var b body.Body
		b.WriteString("<a>")
		b.Part("attachment 1", p.open, int64(n), body.Base64)
		b.WriteString("</a>")
		b.Part("attachment 2", p.open, int64(n), body.Raw)
		want := "<a>" + base64.StdEncoding.EncodeToString(data) + "</a>" + string(data)
		for range 2 { // a body is read again, for a resend
			got, err := b.Bytes(ctx)
			if err != nil {
				t.Fatalf("%d bytes: %v", n, err)
			}
			if string(got) != want || int64(len(got)) != b.Len() {
				t.Fatalf("%d bytes: got %d bytes (Len %d), want %d", n, len(got), b.Len(), len(want))
			}
		}
		if p.opens != 4 {
			t.Errorf("%d bytes: the part was opened %d times, want 4", n, p.opens)
		}
	}
}

// A part that fails half way, or is shorter or longer than its size, fails
// the reader before its last byte with a PartError, which sinks classify
// retryable.
func TestBodyFailsOnAPartThatCannotBeRead(t *testing.T) {
	ctx := context.Background()
	data := random(t, 100<<10)
	cases := map[string]struct {
		p    *part
		size int64
	}{
		"fails half way": {&part{data: data, failAfter: 50 << 10}, int64(len(data))},
		"shorter":        {&part{data: data[:90<<10], failAfter: -1}, int64(len(data))},
		"longer":         {&part{data: data, failAfter: -1}, int64(len(data) - 1)},
		// Parts smaller than the encoder's largest buffer, which is sized
		// by the part.
		"small, fails half way": {&part{data: data[:10<<10], failAfter: 5 << 10}, 10 << 10},
		"small, shorter":        {&part{data: data[:10<<10-1], failAfter: -1}, 10 << 10},
		"small, longer":         {&part{data: data[:10<<10+1], failAfter: -1}, 10 << 10},
		"one byte, longer":      {&part{data: data[:2], failAfter: -1}, 1},
	}
	for name, c := range cases {
		for _, enc := range []body.Encoding{body.Raw, body.Base64} {
			var b body.Body
			b.WriteString("head")
			b.Part("attachment 1", c.p.open, c.size, enc)
			b.WriteString("tail")
			n, err := io.Copy(io.Discard, b.Reader(ctx))
			var pe *body.PartError
			if !errors.As(err, &pe) || pe.What != "attachment 1" {
				t.Fatalf("%s: read %d bytes, then %v; want a PartError", name, n, err)
			}
			if n >= b.Len() {
				t.Errorf("%s: all %d bytes came out", name, n)
			}
			if class, _, code := adapters.Classify(body.Unreadable(err)); class != adapters.ClassRetryable || code != "part_unreadable" {
				t.Errorf("%s: classified %s %s", name, class, code)
			}
		}
	}
	if body.Unreadable(errors.New("connection reset")) != nil {
		t.Error("an error of the destination was taken for a part's")
	}
}

// A JSON document encoded with marks becomes the document with the parts'
// base64 in their places, in document order whatever the order of marking.
func TestTemplateCutsAtTheMarks(t *testing.T) {
	ctx := context.Background()
	a, b := random(t, 70<<10), random(t, 5)
	pa, pb := &part{data: a, failAfter: -1}, &part{data: b, failAfter: -1}
	var tp body.Template
	doc := map[string]any{
		"z": map[string]any{"data": tp.Mark("attachment 1", pa.open, int64(len(a)))},
		"a": map[string]any{"data": tp.Mark("attachment 2", pb.open, int64(len(b))), "size": len(b)},
	}
	enc, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	bd, err := tp.Body(enc)
	if err != nil {
		t.Fatal(err)
	}
	got, err := bd.Bytes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		A struct{ Data []byte } `json:"a"`
		Z struct{ Data []byte } `json:"z"`
	}
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatalf("%v in %.200s", err, got)
	}
	if !bytes.Equal(back.A.Data, b) || !bytes.Equal(back.Z.Data, a) {
		t.Error("the parts are not in their places")
	}
	if int64(len(got)) != bd.Len() {
		t.Errorf("Len %d, read %d", bd.Len(), len(got))
	}
	if _, err := tp.Body([]byte(strings.Repeat("x", 100))); err == nil {
		t.Error("a document without the marks was accepted")
	}
}
