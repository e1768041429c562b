package jspubsub_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/samhub/samhub/pipeline/jspubsub"
)

func streamMsgs(t *testing.T, f *fixture) uint64 {
	t.Helper()
	s, err := f.js.Stream(context.Background(), f.stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func TestPublishDeduplicatesByMsgID(t *testing.T) {
	f := newFixture(t, startBroker(t), time.Second)

	// A resend of the same letter with a fresh Watermill UUID but the same
	// letter key is stored once; the duplicate PubAck is success.
	for range 2 {
		m := message.NewMessage(watermill.NewUUID(), []byte("letter"))
		m.Metadata.Set(jspubsub.MsgIDKey, "letter-0001")
		if err := f.pub.Publish(f.topic, m); err != nil {
			t.Fatal(err)
		}
	}
	// Without the metadata the UUID is the id.
	same := message.NewMessage(watermill.NewUUID(), []byte("x"))
	if err := f.pub.Publish(f.topic, same, same.Copy()); err != nil {
		t.Fatal(err)
	}
	if n := streamMsgs(t, f); n != 2 {
		t.Fatalf("stream holds %d messages, want 2", n)
	}
}

func TestPublishRejectsMetadataNATSCannotCarry(t *testing.T) {
	f := newFixture(t, startBroker(t), time.Second)
	cases := map[string]struct{ key, value, want string }{
		"colon in key":   {"Bad:Key", "v", `metadata key "Bad:Key": byte 3`},
		"space in key":   {"Bad Key", "v", `metadata key "Bad Key": byte 3`},
		"non-ASCII key":  {"Brev-æ", "v", `metadata key "Brev-æ"`},
		"line break":     {"Reason", "one\r\ntwo", `metadata "Reason": value contains a line break`},
		"trailing space": {"Reason", "x ", `metadata "Reason": value has leading or trailing white space`},
		"server header":  {"Nats-Rollup", "all", `metadata key "Nats-Rollup": Nats-* headers are reserved`},
		"empty key":      {"", "v", "metadata key: must not be empty"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			ok := message.NewMessage(watermill.NewUUID(), []byte("ok"))
			bad := message.NewMessage(watermill.NewUUID(), []byte("bad"))
			bad.Metadata[c.key] = c.value
			err := f.pub.Publish(f.topic, ok, bad)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), bad.UUID+" (index 1)") {
				t.Fatalf("error = %v, want it to name message %s (index 1) and contain %q", err, bad.UUID, c.want)
			}
		})
	}
	if n := streamMsgs(t, f); n != 0 {
		t.Fatalf("stream holds %d messages after rejected calls, want 0 (a call is checked before anything is sent)", n)
	}
}

func TestPublishToWrongStreamFailsFast(t *testing.T) {
	b := startBroker(t)
	f := newFixture(t, b, time.Second)
	_, js := b.connect(t)
	pub, err := jspubsub.NewPublisher(js, jspubsub.PublisherConfig{ExpectStream: "OTHER", Timeout: time.Minute}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := message.NewMessage(watermill.NewUUID(), []byte("x"))
	err = pub.Publish(f.topic, m)
	if err == nil || !strings.Contains(err.Error(), "1 of 1 messages not stored") || !strings.Contains(err.Error(), m.UUID) {
		t.Fatalf("error = %v, want a rejection naming %s", err, m.UUID)
	}
	if strings.Contains(err.Error(), "no PubAck within") {
		t.Fatalf("publish waited for the timeout instead of failing on the server's answer: %v", err)
	}
	if err := pub.Close(); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(f.topic, m); err != jspubsub.ErrClosed {
		t.Fatalf("Publish after Close: %v, want ErrClosed", err)
	}
}
