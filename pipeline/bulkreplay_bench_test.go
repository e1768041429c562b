package pipeline_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/samhub/samhub/internal/hubtest"
	"github.com/samhub/samhub/pipeline"
	"github.com/samhub/samhub/pipeline/retryq"
)

// BenchmarkBulkReplay measures how fast a replay by filter works through
// 10,000 parked letters (letters/s: what its progress page shows), on the
// whole hub. The letters are parked for a destination no consumer reads,
// so the figure is the replay's own work (read the entry, check consent,
// store the replay, remove the entry, record the step) and not the
// destination's.
func BenchmarkBulkReplay(b *testing.B) {
	const n = 10_000
	h := hubtest.Start(b)
	data, err := os.ReadFile("../testdata/medcom/samhub/letter-utf8.xml")
	if err != nil {
		b.Fatal(err)
	}
	h.Drop("letter-utf8.xml", data)
	var id string
	h.Eventually("the fixture stored", func() bool {
		found, _ := h.App.Hub.FindLetters(context.Background(), pipeline.Query{PatientID: "2509479989"})
		if len(found) > 0 {
			id = found[0].ID
		}
		return id != ""
	})
	who := pipeline.Actor{Name: "koordinator", Role: "coordinator"}
	var spent time.Duration
	for b.Loop() {
		b.StopTimer()
		h.ParkCopies(id, "archive", "unavailable", n)
		b.StartTimer()
		start := time.Now()
		r, _, err := h.App.Hub.StartBulkReplay(context.Background(), who, pipeline.NewRequestID(), retryq.Filter{Destination: "archive"}, "benchmark")
		if err != nil || r.Planned != n {
			b.Fatalf("%+v, %v", r, err)
		}
		for r.State == pipeline.BulkRunning {
			time.Sleep(20 * time.Millisecond)
			if r, err = h.App.Hub.BulkReplay(context.Background(), r.ID); err != nil {
				b.Fatal(err)
			}
		}
		spent += time.Since(start)
		if r.State != pipeline.BulkDone || r.Replayed != n {
			b.Fatalf("ended %+v", r)
		}
	}
	b.ReportMetric(float64(n*b.N)/spent.Seconds(), "letters/s")
}
