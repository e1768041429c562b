package pipeline_test

import (
	"context"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/samhub/samhub/pipeline"
	"github.com/samhub/samhub/pipeline/broker"
	"github.com/samhub/samhub/pipeline/letter"
)

// storeAsIfKilled stores l the way ingest does and nothing more: the hub's
// previous life stored it and was killed before it told anyone (the source
// gives it again, since it never heard that it was stored).
func storeAsIfKilled(t *testing.T, e *env, l *letter.Letter) {
	t.Helper()
	source := ""
	for name := range e.cfg.Adapters {
		if strings.HasPrefix(name, "feed") {
			source = name
		}
	}
	l.Source = source
	data, err := letter.Marshal(l)
	if err != nil {
		t.Fatal(err)
	}
	msg := nats.NewMsg(broker.InSubject(source, l.ID))
	msg.Data = data
	msg.Header.Set(jetstream.MsgIDHeader, source+":"+broker.Token(l.ID))
	msg.Header.Set(pipeline.HdrThread, broker.Token(l.Thread()))
	msg.Header.Set(pipeline.HdrKind, string(l.Kind))
	msg.Header.Set(pipeline.HdrSource, source)
	if _, err := e.b.JS.PublishMsg(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
}

// A referral stored by a life that died before its notice: when the source
// gives it again, the coordinator's notice is sent after all, and only once
// however often it comes.
func TestANoticeLostWithTheHubIsSentWhenTheLetterComesAgain(t *testing.T) {
	e := newEnv(t)
	storeAsIfKilled(t, e, mkLetter("K1", letter.KindReferral, ""))
	eventually(t, "the stored referral filed", func() bool { return e.muni.count("K1") == 1 })
	for range 3 {
		e.feed.ch <- mkLetter("K1", letter.KindReferral, "")
	}
	eventually(t, "the arrival notice", func() bool { return e.notes.total() == 1 })
	e.feed.ch <- mkLetter("K2", letter.KindReferral, "")
	eventually(t, "the next referral's notice", func() bool { return e.notes.total() == 2 })
	if n := e.notes.count("notice:arrived::K1"); n != 1 {
		t.Errorf("K1's arrival notice delivered %d times, want once", n)
	}
	if n := e.muni.count("K1"); n != 1 {
		t.Errorf("K1 filed %d times", n)
	}
}
