package retryq_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/samhub/samhub/pipeline/broker"
	"github.com/samhub/samhub/pipeline/retryq"
)

// queueFixture parks entries in three batches, seconds apart in stream
// time, with a spread of destinations, codes, threads and patients, some of
// them under the subjects of earlier builds, and removes some (holes in the
// sequence). It returns every entry left and the times between batches.
func queueFixture(t *testing.T) (*retryq.Queue, []retryq.Entry, [2]time.Time) {
	b := open(t)
	ctx := context.Background()
	q := retryq.New(b.JS)
	dests := []string{"casefile", "region", "gp"}
	codes := []string{"unavailable", "consent_missing", "thread_held", "case_closed", "odd code.with dots"}
	var cuts [2]time.Time
	n := 0
	for batch := range 3 {
		if batch > 0 {
			time.Sleep(20 * time.Millisecond)
			cuts[batch-1] = time.Now()
			time.Sleep(20 * time.Millisecond)
		}
		for range 80 {
			i := n
			n++
			e := entry(dests[i%3], fmt.Sprintf("L%04d", i), uint64(i+1))
			e.LastError.Code = codes[(i/3)%len(codes)]
			e.Thread = broker.Token(fmt.Sprint("thread-", i%7))
			e.Patient = retryq.PatientToken([]string{"2509479989", "1509819996"}[i%2])
			if i%41 == 0 {
				// As an earlier build parked it: one subject per destination.
				parkLegacy(t, b.JS, broker.SubjParked+"."+e.Destination, e)
				continue
			}
			if err := q.Park(ctx, e, []byte(`{}`)); err != nil {
				t.Fatal(err)
			}
		}
	}
	all, err := q.List(ctx, retryq.Filter{})
	if err != nil || len(all) != n {
		t.Fatalf("listed %d of %d, %v", len(all), n, err)
	}
	var kept []retryq.Entry
	for i, e := range all {
		if i%9 == 4 {
			if err := q.Remove(ctx, e.Seq); err != nil {
				t.Fatal(err)
			}
			continue
		}
		kept = append(kept, e)
	}
	return q, kept, cuts
}

func reference(all []retryq.Entry, f retryq.Filter) []retryq.Entry {
	var out []retryq.Entry
	for _, e := range all {
		switch {
		case f.Destination != "" && e.Destination != f.Destination,
			f.Code != "" && e.LastError.Code != f.Code,
			f.Thread != "" && e.Thread != f.Thread,
			f.Patient != "" && e.Patient != f.Patient,
			!f.ParkedAfter.IsZero() && e.ParkedAt.Before(f.ParkedAfter),
			!f.ParkedBefore.IsZero() && !e.ParkedAt.Before(f.ParkedBefore),
			f.UpTo != 0 && e.Seq > f.UpTo:
			continue
		}
		out = append(out, e)
	}
	return out
}

func seqs(es []retryq.Entry) []uint64 {
	out := []uint64{}
	for _, e := range es {
		out = append(out, e.Seq)
	}
	return out
}

// Every filter and window gives what filtering the whole queue by hand
// gives: the server-side counts, the seek to a deep offset, the cursor and
// the header checks agree with the reference.
func TestFindAgreesWithTheWholeQueue(t *testing.T) {
	q, all, cuts := queueFixture(t)
	ctx := context.Background()
	bruno := retryq.PatientToken("2509479989")
	filters := []retryq.Filter{
		{},
		{Destination: "region"},
		{Code: "unavailable"},
		{Code: "odd code.with dots"},
		{Destination: "casefile", Code: "thread_held"},
		{ParkedBefore: cuts[0]},
		{ParkedAfter: cuts[0]},
		{ParkedAfter: cuts[0], ParkedBefore: cuts[1]},
		{Destination: "gp", Code: "case_closed", ParkedAfter: cuts[1]},
		{ParkedAfter: cuts[1], ParkedBefore: cuts[0]},
		{Thread: broker.Token("thread-3")},
		{Patient: bruno, Destination: "casefile"},
		{Code: "consent_missing", Patient: bruno, ParkedBefore: cuts[1]},
		{UpTo: all[len(all)/2].Seq},
		{Destination: "region", UpTo: all[len(all)/3].Seq, ParkedAfter: cuts[0]},
		{Destination: "nowhere"},
		{Code: "no_such_code"},
	}
	for _, f := range filters {
		want := reference(all, f)
		t.Run(f.String(), func(t *testing.T) {
			c, err := q.Count(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			if c.Total != len(want) {
				t.Fatalf("count %d, want %d", c.Total, len(want))
			}
			byDest, byCode := map[string]int{}, map[string]int{}
			for _, e := range want {
				byDest[e.Destination]++
				byCode[e.LastError.Code]++
			}
			if fmt.Sprint(c.ByDestination) != fmt.Sprint(byDest) || fmt.Sprint(c.ByCode) != fmt.Sprint(byCode) {
				t.Errorf("per destination %v, per code %v; want %v, %v", c.ByDestination, c.ByCode, byDest, byCode)
			}
			for _, size := range []int{1, 7, 50, 1000} {
				for _, offset := range []int{0, 1, size, len(want) / 2, len(want) - 1, len(want), len(want) + 3} {
					if offset < 0 {
						continue
					}
					pg, err := q.Find(ctx, f, retryq.Window{Offset: offset, Size: size})
					if err != nil {
						t.Fatal(err)
					}
					lo, hi := min(offset, len(want)), min(offset+size, len(want))
					if pg.Total != len(want) || !slices.Equal(seqs(pg.Entries), seqs(want[lo:hi])) {
						t.Fatalf("size %d offset %d: total %d, %v; want %d, %v", size, offset, pg.Total, seqs(pg.Entries), len(want), seqs(want[lo:hi]))
					}
					if more := hi < len(want); more != (pg.Next != 0) || (more && pg.Next != want[hi-1].Seq) {
						t.Fatalf("size %d offset %d: next cursor %d, more %v", size, offset, pg.Next, more)
					}
				}
			}
			// Walking with the cursor visits every match once, in order.
			var walked []retryq.Entry
			var after uint64
			for {
				pg, err := q.Find(ctx, f, retryq.Window{After: after, Size: 13})
				if err != nil {
					t.Fatal(err)
				}
				walked = append(walked, pg.Entries...)
				if pg.Next == 0 {
					break
				}
				after = pg.Next
			}
			if !slices.Equal(seqs(walked), seqs(want)) {
				t.Fatalf("cursor walk %v, want %v", seqs(walked), seqs(want))
			}
			listed, err := q.List(ctx, f)
			if err != nil || !slices.Equal(seqs(listed), seqs(want)) {
				t.Fatalf("list %v (%v), want %v", seqs(listed), err, seqs(want))
			}
		})
	}
}

// A count freezes the queue at its last sequence: acting on Counts.UpTo
// leaves out what parked after the count.
func TestCountFreezesWhatItCounted(t *testing.T) {
	b := open(t)
	ctx := context.Background()
	q := retryq.New(b.JS)
	for i := range 5 {
		if err := q.Park(ctx, entry("casefile", fmt.Sprint("A", i), uint64(i+1)), []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	c, err := q.Count(ctx, retryq.Filter{Destination: "casefile"})
	if err != nil || c.Total != 5 || c.UpTo == 0 {
		t.Fatalf("count %+v, %v", c, err)
	}
	for i := range 3 {
		if err := q.Park(ctx, entry("casefile", fmt.Sprint("B", i), uint64(i+10)), []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	frozen, err := q.List(ctx, retryq.Filter{Destination: "casefile", UpTo: c.UpTo})
	if err != nil || len(frozen) != 5 || frozen[4].LetterID != "A4" {
		t.Fatalf("up to the count: %d entries, %v", len(frozen), err)
	}
	if now, _ := q.Count(ctx, retryq.Filter{Destination: "casefile"}); now.Total != 8 {
		t.Fatalf("a new count: %d, want 8", now.Total)
	}
}

// The entry's time is the queue's own: what a page shows is what an age
// filter selects.
func TestParkedAtIsTheStreamsTime(t *testing.T) {
	b := open(t)
	ctx := context.Background()
	q := retryq.New(b.JS)
	e := entry("casefile", "L1", 1)
	e.ParkedAt = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC) // what a caller asked for
	before := time.Now()
	if err := q.Park(ctx, e, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	list, err := q.List(ctx, retryq.Filter{})
	if err != nil || len(list) != 1 || list[0].ParkedAt.Before(before.Add(-time.Second)) {
		t.Fatalf("listed %+v, %v", list, err)
	}
	got, _, err := q.Get(ctx, list[0].Seq)
	if err != nil || !got.ParkedAt.Equal(list[0].ParkedAt) {
		t.Fatalf("get says parked %v, the list %v (%v)", got.ParkedAt, list[0].ParkedAt, err)
	}
	if n, _ := q.Count(ctx, retryq.Filter{ParkedBefore: before.Add(-time.Second)}); n.Total != 0 {
		t.Fatalf("parked before the park: %d", n.Total)
	}
}

func TestCodeTokens(t *testing.T) {
	seen := map[string]string{}
	for _, code := range []string{"unavailable", "http_503", "", "-", "a.b", "a b", "æøå", "-2d", "A-b_9"} {
		tok := broker.ParkedCodeToken(code)
		if other, dup := seen[tok]; dup {
			t.Errorf("%q and %q share the token %q", code, other, tok)
		}
		seen[tok] = code
		for _, c := range tok {
			if c == '.' || c == '*' || c == '>' || c == ' ' || c > 127 {
				t.Errorf("%q: token %q is not a subject token", code, tok)
			}
		}
		if back, ok := broker.ParkedCode(tok); !ok || back != code {
			t.Errorf("%q: token %q reads back as %q", code, tok, back)
		}
	}
}
