package retryq_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/samhub/samhub/pipeline/broker"
	"github.com/samhub/samhub/pipeline/broker/brokertest"
	"github.com/samhub/samhub/pipeline/retryq"
)

// BenchmarkFind measures a page of the retry queue after an outage: 10,000
// and (without -short) 100,000 parked entries over three destinations, 90 %
// of them "unavailable", 9 % "consent_missing", 1 % "case_closed", parked
// in two halves so an age filter has something to cut.
func BenchmarkFind(b *testing.B) {
	sizes := []int{10_000, 100_000}
	if testing.Short() {
		sizes = sizes[:1]
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("parked=%d", n), func(b *testing.B) {
			q, mid, cut := fillQueue(b, n)
			ctx := context.Background()
			thread := broker.Token(fmt.Sprint("thread-", n/2/3))
			cases := []struct {
				name string
				f    retryq.Filter
				w    retryq.Window
			}{
				{"first-page", retryq.Filter{}, retryq.Window{Size: 50}},
				{"middle-page", retryq.Filter{}, retryq.Window{Offset: n / 2, Size: 50}},
				{"last-page", retryq.Filter{}, retryq.Window{Offset: n - 50, Size: 50}},
				{"next-page-by-cursor", retryq.Filter{}, retryq.Window{After: mid, Size: 50}},
				{"destination-and-rare-code", retryq.Filter{Destination: "region", Code: "case_closed"}, retryq.Window{Size: 50}},
				{"code-middle-page", retryq.Filter{Code: "unavailable"}, retryq.Window{Offset: n * 9 / 20, Size: 50}},
				{"older-than-half", retryq.Filter{ParkedBefore: cut}, retryq.Window{Size: 50}},
				{"newer-half-middle-page", retryq.Filter{ParkedAfter: cut, Destination: "casefile"}, retryq.Window{Offset: n / 12, Size: 50}},
				{"thread-reads-every-header", retryq.Filter{Thread: thread}, retryq.Window{Size: 50}},
			}
			for _, c := range cases {
				b.Run(c.name, func(b *testing.B) {
					for b.Loop() {
						pg, err := q.Find(ctx, c.f, c.w)
						if err != nil || len(pg.Entries) == 0 || pg.Total == 0 {
							b.Fatalf("%d entries of %d, %v", len(pg.Entries), pg.Total, err)
						}
					}
				})
			}
			b.Run("count-for-a-preview", func(b *testing.B) {
				for b.Loop() {
					c, err := q.Count(ctx, retryq.Filter{Code: "consent_missing", ParkedBefore: cut})
					if err != nil || c.Total == 0 || len(c.ByDestination) != 3 {
						b.Fatalf("%+v, %v", c, err)
					}
				}
			})
		})
	}
}

// fillQueue parks n entries the way the hub does (retryq.Park, 64 at a
// time) and returns the sequence in the middle and a time between the two
// halves.
func fillQueue(b *testing.B, n int) (*retryq.Queue, uint64, time.Time) {
	br := brokertest.Open(b)
	st := brokertest.Streams()
	st.ParkedMaxBytes = 512 << 20
	ctx := context.Background()
	if err := broker.Provision(ctx, br.JS, st, 1); err != nil {
		b.Fatal(err)
	}
	q := retryq.New(br.JS)
	start := time.Now()
	park := func(from, to int) {
		var next atomic.Int64
		next.Store(int64(from))
		var wg sync.WaitGroup
		for range 64 {
			wg.Go(func() {
				for {
					i := int(next.Add(1) - 1)
					if i >= to {
						return
					}
					e := entry([]string{"casefile", "region", "gp"}[i%3], fmt.Sprintf("BENCH%08d", i), uint64(i+1))
					e.LastError.Code = "unavailable"
					switch {
					case i%100 == 7:
						e.LastError.Code = "case_closed"
					case i%10 == 3:
						e.LastError.Code = "consent_missing"
					}
					e.Thread = broker.Token(fmt.Sprint("thread-", i/3))
					e.Patient = retryq.PatientToken("2509479989")
					if err := q.Park(ctx, e, []byte(`{"id":"x"}`)); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
	}
	park(0, n/2)
	time.Sleep(10 * time.Millisecond)
	cut := time.Now()
	time.Sleep(10 * time.Millisecond)
	park(n/2, n)
	b.Logf("parked %d in %.1f s", n, time.Since(start).Seconds())
	pg, err := q.Find(ctx, retryq.Filter{}, retryq.Window{Offset: n / 2, Size: 1})
	if err != nil || pg.Total != n {
		b.Fatalf("filled %d of %d: %v", pg.Total, n, err)
	}
	return q, pg.Entries[0].Seq, cut
}
