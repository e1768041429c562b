package jspubsub_test

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/samhub/samhub/pipeline/jspubsub"
)

// benchmarkPubSub publishes b.N messages of 10 KB (batch per Publish call)
// to a SyncAlways file stream while one subscriber consumes and acks them,
// and reports msgs/s end to end.
func benchmarkPubSub(b *testing.B, batch int) {
	br := startBroker(b)
	_, js := br.connect(b)
	topic := "bench." + watermill.NewShortUUID()
	stream, consumer, err := jspubsub.Provisioner("bench", 30*time.Second, 1000)(context.Background(), js, topic)
	if err != nil {
		b.Fatal(err)
	}
	pub, err := jspubsub.NewPublisher(js, jspubsub.PublisherConfig{ExpectStream: stream}, nil)
	if err != nil {
		b.Fatal(err)
	}
	sub, err := jspubsub.NewSubscriber(js, jspubsub.SubscriberConfig{
		Consumer: func(string) (string, string) { return stream, consumer },
	}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Close()
	ch, err := sub.Subscribe(context.Background(), topic)
	if err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 10*1024)
	_, _ = rand.Read(payload)

	b.SetBytes(int64(len(payload)))
	b.ResetTimer()
	start := time.Now()
	published := make(chan error, 1)
	go func() {
		for i := 0; i < b.N; i += batch {
			msgs := make([]*message.Message, 0, batch)
			for j := i; j < min(i+batch, b.N); j++ {
				msgs = append(msgs, message.NewMessage(watermill.NewUUID(), payload))
			}
			if err := pub.Publish(topic, msgs...); err != nil {
				published <- err
				return
			}
		}
		published <- nil
	}()
	pubDone := published
	for got := 0; got < b.N; {
		select {
		case m := <-ch:
			m.Ack()
			got++
		case err := <-pubDone:
			if err != nil {
				b.Fatal(err)
			}
			pubDone = nil
		case <-time.After(time.Minute):
			b.Fatalf("received %d of %d", got, b.N)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

func BenchmarkPublishConsume10KB(b *testing.B) { benchmarkPubSub(b, 1) }

func BenchmarkPublishConsume10KBBatch100(b *testing.B) { benchmarkPubSub(b, 100) }
