package council

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/samhub/samhub/pipeline/broker"
	"github.com/samhub/samhub/pipeline/letter"
)

// kvWrites is how many writes the register's bucket has taken so far.
func kvWrites(b *testing.B, js jetstream.JetStream) uint64 {
	b.Helper()
	s, err := js.Stream(context.Background(), "KV_"+broker.BucketCouncil)
	if err != nil {
		b.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	return info.State.LastSeq
}

func benchFixture(b *testing.B, capacity int) *fixture {
	b.Helper()
	return newFixtureTB(b, func(k *Options) { k.Meetings.Cap = capacity })
}

// BenchmarkApplyReferral is the register's cost per referral: the
// meeting's compare-and-set and the referral's record (synced writes on
// a SyncAlways server), off the letter's path.
func BenchmarkApplyReferral(b *testing.B) {
	f := benchFixture(b, 6)
	start := f.clock.now()
	w0 := kvWrites(b, f.js)
	b.ResetTimer()
	for i := range b.N {
		l := f.referral(fmt.Sprintf("R%07d", i), start.Add(time.Duration(i)*time.Second), "")
		if err := f.c.Apply(context.Background(), l, uint64(i)); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(kvWrites(b, f.js)-w0)/float64(b.N), "kvwrites/op")
}

// BenchmarkApplyRecommendation is the cost of a letter that follows a
// referral: one compare-and-set on the referral's record.
func BenchmarkApplyRecommendation(b *testing.B) {
	f := benchFixture(b, 6)
	start := f.clock.now()
	const refs = 200
	for i := range refs {
		if err := f.c.Apply(context.Background(), f.referral(fmt.Sprintf("R%03d", i), start, ""), 1); err != nil {
			b.Fatal(err)
		}
	}
	w0 := kvWrites(b, f.js)
	b.ResetTimer()
	for i := range b.N {
		l := &letter.Letter{ID: fmt.Sprintf("D%07d", i), Kind: letter.KindRecommendation, Source: "casesys", InReplyTo: fmt.Sprintf("R%03d", i%refs), Received: start.Add(time.Hour).UTC()}
		if err := f.c.Apply(context.Background(), l, 1); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(kvWrites(b, f.js)-w0)/float64(b.N), "kvwrites/op")
}

// A council's year: about 20 referrals a month (240), and ten times that.
var figureSizes = []int{240, 2400}

// BenchmarkFiguresFromRegister computes a year's figures from the copy
// in memory, as GET /api/v1/kpi does.
func BenchmarkFiguresFromRegister(b *testing.B) {
	for _, n := range figureSizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			f := benchFixture(b, 6)
			year := f.fillYear(b, n, false)
			b.ResetTimer()
			for range b.N {
				if k := f.c.KPI(12); k.Referrals != year {
					b.Fatalf("%d referrals, want %d", k.Referrals, year)
				}
			}
		})
	}
}

// BenchmarkFiguresFromStream is the alternative measured and not taken:
// the same figures computed on demand by reading every stored letter back
// from the letter stream (and it could reach back no further than
// streams.letters_max_age, 90 days by default, not twelve months).
func BenchmarkFiguresFromStream(b *testing.B) {
	for _, n := range figureSizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			f := benchFixture(b, 6)
			year := f.fillYear(b, n, true)
			b.ResetTimer()
			for range b.N {
				byID := map[string]*Referral{}
				var refs []Referral
				err := broker.Scan(context.Background(), f.js, broker.StreamLetters, jetstream.OrderedConsumerConfig{FilterSubjects: []string{broker.SubjLetters + ".in.>"}}, 0, func(m jetstream.Msg) bool {
					l, err := letter.Unmarshal(m.Data())
					if err != nil {
						return true
					}
					switch l.Kind {
					case letter.KindReferral:
						refs = append(refs, Referral{Key: l.ID, Received: l.Received, GP: org(l.Sender)})
						byID[l.ID] = &refs[len(refs)-1]
					case letter.KindRecommendation:
						if r := byID[l.InReplyTo]; r != nil {
							r.Recommendations = append(r.Recommendations, ref(l))
						}
					}
					return true
				})
				if err != nil {
					b.Fatal(err)
				}
				if k := Figures(refs, nil, FigureOptions{Now: f.clock.now(), Months: 12, Loc: cph, Watch: f.c.watch}); k.Referrals != year {
					b.Fatalf("%d referrals, want %d", k.Referrals, year)
				}
			}
		})
	}
}

// fillYear registers n referrals over the year before the clock, each
// answered 30 days on, and with stream also stores them (about 3 KB of
// letter each, as an XDIS91 referral) on the letter stream. It returns
// how many fall in the figures' twelve months.
func (f *fixture) fillYear(b *testing.B, n int, stream bool) int {
	b.Helper()
	ctx := context.Background()
	now := f.clock.now()
	first := time.Date(now.Year(), now.Month()-11, 1, 0, 0, 0, 0, cph)
	span := now.Sub(first) - 31*24*time.Hour
	body := strings.Repeat("Barnet har i et halvt år haft svært ved at sove. ", 50)
	store := func(l *letter.Letter) {
		data, err := letter.Marshal(l)
		if err != nil {
			b.Fatal(err)
		}
		msg := nats.NewMsg(broker.InSubject(l.Source, l.ID))
		msg.Data = data
		if _, err := f.js.PublishMsg(ctx, msg); err != nil {
			b.Fatal(err)
		}
	}
	for i := range n {
		at := first.Add(span / time.Duration(n) * time.Duration(i))
		l := f.referral(fmt.Sprintf("Y%05d", i), at, "")
		l.Text = body
		rec := &letter.Letter{ID: fmt.Sprintf("YD%05d", i), Kind: letter.KindRecommendation, Source: "casesys", InReplyTo: l.ID,
			Received: at.Add(30 * 24 * time.Hour).UTC(), Text: body, Original: letter.Original{Data: []byte(body)}}
		if stream {
			store(l)
			store(rec)
		} else {
			if err := f.c.Apply(ctx, l, 1); err != nil {
				b.Fatal(err)
			}
			if err := f.c.Apply(ctx, rec, 1); err != nil {
				b.Fatal(err)
			}
		}
	}
	return n
}
