package adaptertest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"sync/atomic"
	"testing"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/pipeline/letter"
)

// Large letters (issue 21): a sink gets attachments that open from the
// blob store as it sends. It must open them again for each attempt (a
// retry never reuses what an earlier attempt read), and when a read fails
// half way it must send nothing half and call the failure retryable.

// streamedPart is an attachment that opens as the blob store's parts do:
// each Open is a new reader from the first byte. While failAt >= 0, a
// reader fails after failAt bytes, as a store that stops answering.
type streamedPart struct {
	data   []byte
	opens  atomic.Int64
	failAt atomic.Int64
}

var errStoreStopped = errors.New("adaptertest: the part's store stopped answering half way")

func newStreamedPart(size int, seed uint64) *streamedPart {
	var key [32]byte
	key[0], key[1] = byte(seed), byte(seed>>8)
	b := make([]byte, size)
	_, _ = rand.NewChaCha8(key).Read(b)
	copy(b, "%PDF-1.7\n")
	p := &streamedPart{data: b}
	p.failAt.Store(-1)
	return p
}

func (p *streamedPart) open(context.Context) (io.ReadCloser, error) {
	p.opens.Add(1)
	r := io.Reader(bytes.NewReader(p.data))
	if at := p.failAt.Load(); at >= 0 {
		r = io.MultiReader(io.LimitReader(r, at), &failing{})
	}
	return io.NopCloser(r), nil
}

type failing struct{}

func (*failing) Read([]byte) (int, error) { return 0, errStoreStopped }

// attach gives l the part as a streamed attachment (no Data), as the
// pipeline hands a sink a letter whose large parts are in the blob store.
func (p *streamedPart) attach(l *letter.Letter) *letter.Letter {
	c := *l
	c.Attachments = append(append([]letter.Attachment(nil), l.Attachments...),
		letter.StreamedAttachment("journaludskrift.pdf", "application/pdf", int64(len(p.data)), letter.Digest(p.data), p.open))
	return &c
}

// streamingSuite runs the checks for parts that open. The part is larger
// than any buffer a sink should keep (and than an HTTP client's or a
// file's write buffer), so a sink that cut it off mid-way has sent some.
func streamingSuite(t *testing.T, h SinkHarness, sinkOf func(t *testing.T) adapters.Sink) {
	const size = 3 << 20
	t.Run("read-failing-half-way-is-retryable-and-sends-nothing-half", func(t *testing.T) {
		sink := sinkOf(t)
		part := newStreamedPart(size, 50)
		l := part.attach(h.Letter(50))
		part.failAt.Store(size / 2)
		_, err := sink.Deliver(context.Background(), l)
		if err == nil {
			t.Fatal("the delivery succeeded though an attachment could not be read past its middle")
		}
		if class, _, _ := adapters.Classify(err); class != adapters.ClassRetryable {
			t.Fatalf("a part that stopped reading half way was classified %s: the letter would be parked, not tried again", describeClass(err))
		}
		if part.opens.Load() == 0 {
			t.Fatal("the sink never opened the attachment")
		}
		if n := h.Stored(t, l); n != 0 {
			t.Fatalf("the destination holds %d objects from a delivery whose attachment stopped half way, want none", n)
		}
		part.failAt.Store(-1)
		before := part.opens.Load()
		if _, err := deliverRetrying(t, sink, l); err != nil {
			t.Fatalf("once the part reads again: %v", err)
		}
		if part.opens.Load() == before {
			t.Error("the retry did not open the attachment again")
		}
		if n := h.Stored(t, l); n != 1 {
			t.Errorf("after the retry the destination holds %d objects, want 1", n)
		}
	})

	// A retryable failure of the destination (the first the harness has):
	// the next attempt opens the attachment again from its first byte.
	t.Run("retry-reopens-attachment", func(t *testing.T) {
		var fault *Fault
		for _, f := range h.Faults() {
			if f.Class == adapters.ClassRetryable {
				fault = &f
				break
			}
		}
		if fault == nil {
			t.Fatal("the harness shows no retryable failure")
		}
		sink := sinkOf(t)
		part := newStreamedPart(size, 60)
		l, clear := fault.Arm(t, part.attach(h.Letter(60)))
		_, err := sink.Deliver(context.Background(), l)
		clear()
		if err == nil {
			t.Fatalf("%s: the delivery succeeded", fault.Name)
		}
		if class, _, _ := adapters.Classify(err); class != adapters.ClassRetryable {
			t.Fatalf("%s: classified %s, want retryable", fault.Name, describeClass(err))
		}
		before := part.opens.Load()
		if _, err := deliverRetrying(t, sink, l); err != nil {
			t.Fatalf("%s: once the fault cleared: %v", fault.Name, err)
		}
		if part.opens.Load() == before {
			t.Errorf("%s: the retry sent the attachment without opening it again", fault.Name)
		}
		if n := h.Stored(t, l); n != 1 {
			t.Errorf("%s: after the retry the destination holds %d objects, want 1", fault.Name, n)
		}
	})
}
