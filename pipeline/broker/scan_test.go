package broker_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/samhub/samhub/pipeline/broker"
)

// A scan reads what is there in order, stops where it is told, and leaves
// no consumer behind: views scan on every refresh, and consumers left for
// minutes each cost every later publish on the stream.
func TestScanReadsInOrderAndLeavesNoConsumer(t *testing.T) {
	b := open(t)
	ctx := context.Background()
	if err := broker.Provision(ctx, b.JS, streams(), 1); err != nil {
		t.Fatal(err)
	}
	for i := range 700 { // more than one fetch
		subj := broker.JourneySubject(fmt.Sprint("letter-", i%2))
		if _, err := b.JS.Publish(ctx, subj, []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	read := func(max uint64, stopAt int) []string {
		var got []string
		err := broker.Scan(ctx, b.JS, broker.StreamJourney, jetstream.OrderedConsumerConfig{FilterSubjects: []string{broker.JourneySubject("letter-1")}}, max, func(m jetstream.Msg) bool {
			got = append(got, string(m.Data()))
			return len(got) != stopAt
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	all := read(0, -1)
	if len(all) != 350 || all[0] != "1" || all[349] != "699" {
		t.Fatalf("read %d messages (%v … %v), want the 350 odd ones in order", len(all), all[:min(2, len(all))], all[max(0, len(all)-1):])
	}
	if got := read(10, -1); len(got) != 10 {
		t.Errorf("max 10 read %d", len(got))
	}
	if got := read(0, 3); len(got) != 3 {
		t.Errorf("stopping at 3 read %d", len(got))
	}
	st, err := b.JS.Stream(ctx, broker.StreamJourney)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Consumers != 0 {
		t.Errorf("%d consumers left on the journey stream after three scans", info.State.Consumers)
	}
}
