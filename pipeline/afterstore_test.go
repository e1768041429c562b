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
	storeWithID(t, e, l, "")
}

// storeWithID stores l as ingest does, under the message id msgID (ingest's
// own when empty): another id stands for a copy stored so long ago that the
// broker's de-duplication window has forgotten it.
func storeWithID(t *testing.T, e *env, l *letter.Letter, msgID string) {
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
	if msgID == "" {
		msgID = source + ":" + broker.Token(l.ID)
	}
	msg.Header.Set(jetstream.MsgIDHeader, msgID)
	msg.Header.Set(pipeline.HdrThread, broker.Token(l.Thread()))
	msg.Header.Set(pipeline.HdrKind, string(l.Kind))
	msg.Header.Set(pipeline.HdrSource, source)
	if _, err := e.b.JS.PublishMsg(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
}

// A referral stored by a life that died right after storing it: the
// coordinator's notice follows from the stored letter alone, before the
// source gives it again, and only once however often it comes.
func TestTheNoticeFollowsFromTheStoredLetter(t *testing.T) {
	e := newEnv(t)
	storeAsIfKilled(t, e, mkLetter("K1", letter.KindReferral, ""))
	eventually(t, "the stored referral filed", func() bool { return e.muni.count("K1") == 1 })
	eventually(t, "the arrival notice without the source giving it again", func() bool { return e.notes.total() == 1 })
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

// A letter stored before the broker's de-duplication window (another
// message id) is still a duplicate when its source gives it again: the
// stream itself refuses a second letter on its subject.
func TestALetterStoredLongAgoIsNotRoutedAgain(t *testing.T) {
	e := newEnv(t)
	storeWithID(t, e, mkLetter("W1", letter.KindReferral, ""), "stored-before-the-window")
	eventually(t, "the stored referral filed", func() bool { return e.muni.count("W1") == 1 })
	for range 2 {
		e.feed.ch <- mkLetter("W1", letter.KindReferral, "")
	}
	e.feed.ch <- mkLetter("W2", letter.KindReferral, "")
	eventually(t, "the next referral filed", func() bool { return e.muni.count("W2") == 1 })
	// The boxes are idempotent like the real sinks; the stream is what
	// would hold a second copy.
	st, err := e.b.JS.Stream(context.Background(), broker.StreamLetters)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background(), jetstream.WithSubjectFilter(broker.SubjLetters+".in.>"))
	if err != nil {
		t.Fatal(err)
	}
	for subj, n := range info.State.Subjects {
		if strings.HasSuffix(subj, broker.Token("W1")) && n != 1 {
			t.Errorf("%d copies of W1 stored, want one", n)
		}
	}
	if len(info.State.Subjects) != 2 {
		t.Errorf("letters stored on %d subjects, want 2 (W1, W2): %v", len(info.State.Subjects), info.State.Subjects)
	}
}
