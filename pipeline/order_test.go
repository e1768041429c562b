package pipeline_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/pipeline"
	"github.com/samhub/samhub/pipeline/journey"
	"github.com/samhub/samhub/pipeline/letter"
	"github.com/samhub/samhub/pipeline/retryq"
)

var coordinator = pipeline.Actor{Name: "koordinator", Role: "coordinator"}

func gpConsent(t *testing.T, e *env) {
	t.Helper()
	if err := e.hub.RecordConsent(context.Background(), "2509479989", letter.Consent{GivenBy: "custody-holder", Form: "oral", GivenAt: time.Now().Add(-time.Hour), Scopes: []letter.Scope{letter.ScopeGP}}); err != nil {
		t.Fatal(err)
	}
}

func parkedAt(t *testing.T, e *env, dest, letterID string) retryq.Entry {
	t.Helper()
	var got retryq.Entry
	eventually(t, letterID+" parked at "+dest, func() bool {
		es, _ := e.hub.Queue().List(context.Background(), retryq.Filter{Destination: dest})
		for _, x := range es {
			if x.LetterID == letterID {
				got = x
				return true
			}
		}
		return false
	})
	return got
}

func (b *box) orderOf() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.order)
}

// A letter whose receiver cannot be resolved parks instead of going anywhere.
func TestUnresolvableReceiverParks(t *testing.T) {
	e := newEnv(t)
	gpConsent(t, e)
	l := mkLetter("NOGP", letter.KindRecommendation, "T-NOGP")
	l.Receivers = []letter.Party{{Role: letter.RoleGP, Name: "egen læge"}} // no GLN, and it answers nothing
	e.feed.ch <- l
	p := parkedAt(t, e, "doctor", "NOGP")
	if p.LastError.Code != "receiver_unresolved" {
		t.Fatalf("parked with %q, want receiver_unresolved", p.LastError.Code)
	}
	if e.gp.total() != 0 {
		t.Fatal("a letter without a resolvable receiver reached the GP destination")
	}
	eventually(t, "the source told the GP's copy failed", func() bool {
		r, ok := e.feed.latest("NOGP", letter.RoleGP)
		return ok && r.State == adapters.StateFailed && r.Code == "receiver_unresolved"
	})
}

// The sink gets exactly the resolved addressee: the GP the letter names,
// or the GP who sent the letter it answers.
func TestSinkGetsTheResolvedAddressee(t *testing.T) {
	e := newEnv(t)
	gpConsent(t, e)
	ref := mkLetter("REF-A", letter.KindReferral, "T-A")
	ref.Sender = letter.Party{Name: "Lægerne på Torvet", GLN: "5790000654321"}
	e.feed.ch <- ref
	eventually(t, "the referral in the case file", func() bool { return e.muni.count("REF-A") == 1 })
	rec := mkLetter("REC-A", letter.KindRecommendation, "T-A")
	rec.InReplyTo = "REF-A"
	rec.Receivers = []letter.Party{{Role: letter.RoleGP, Name: "egen læge"}, {Role: letter.RoleMunicipality, GLN: "5790001382445"}}
	e.feed.ch <- rec
	named := mkLetter("REC-B", letter.KindRecommendation, "T-B") // names gpA
	e.feed.ch <- named
	eventually(t, "both recommendations at the GP", func() bool { return e.gp.total() == 2 })
	e.gp.mu.Lock()
	defer e.gp.mu.Unlock()
	for _, got := range e.gp.letters {
		want := map[string]string{"REC-A": "5790000654321", "REC-B": gpA.GLN}[got.ID]
		if len(got.To) != 1 || got.To[0].GLN != want || got.To[0].Role != letter.RoleGP {
			t.Errorf("%s addressed to %+v, want the GP %s", got.ID, got.To, want)
		}
	}
	eventually(t, "the source told REC-A was sent", func() bool {
		r, ok := e.feed.latest("REC-A", letter.RoleGP)
		return ok && r.State == adapters.StateSent && r.Destination == "doctor"
	})
}

// A letter whose case links it to a letter about another child (a wrong
// referral picked in the case system) is not addressed to that child's GP:
// with nothing else to resolve the GP from, it parks.
func TestAnAnswerToAnotherChildsLetterDoesNotGoToItsGP(t *testing.T) {
	e := newEnv(t)
	gpConsent(t, e)
	ref := mkLetter("REF-OTHER", letter.KindReferral, "T-OTHER-CHILD")
	ref.Patient = &letter.Patient{CPR: "1509819996", GivenName: "Brita Test", FamilyName: "Berggren"}
	ref.Sender = letter.Party{Name: "Lægerne på Torvet", GLN: "5790000654321"}
	e.feed.ch <- ref
	eventually(t, "the other child's referral in the case file", func() bool { return e.muni.count("REF-OTHER") == 1 })
	rec := mkLetter("REC-WRONG", letter.KindRecommendation, "T-OTHER-CHILD")
	rec.InReplyTo = "REF-OTHER"
	rec.Receivers = []letter.Party{{Role: letter.RoleGP, Name: "egen læge"}}
	e.feed.ch <- rec
	p := parkedAt(t, e, "doctor", "REC-WRONG")
	if p.LastError.Code != "receiver_unresolved" {
		t.Fatalf("parked with %q, want receiver_unresolved", p.LastError.Code)
	}
	if n := e.gp.count("REC-WRONG"); n != 0 {
		t.Fatalf("Bruno's letter reached the GP of another child's referral (%d times)", n)
	}
}

// A letter that names its recipients goes to those sectors only.
func TestRoutesNeverWidenTheRecipients(t *testing.T) {
	e := newEnv(t)
	gpConsent(t, e)
	l := mkLetter("REC-P", letter.KindRecommendation, "T-P")
	l.Receivers = []letter.Party{{Role: letter.RoleParents, Name: "Brita Test Berggren"}}
	e.feed.ch <- l
	eventually(t, "the case file copy", func() bool { return e.muni.count("REC-P") == 1 })
	// The parents have no destination: the source hears it, not nothing.
	eventually(t, "not_sent reported for the parents", func() bool {
		r, ok := e.feed.latest("REC-P", letter.RoleParents)
		return ok && r.State == adapters.StateNotSent
	})
	time.Sleep(300 * time.Millisecond)
	if e.gp.count("REC-P") != 0 {
		t.Fatal("a letter naming only the parents went to the GP")
	}
	if es, _ := e.hub.Queue().List(context.Background(), retryq.Filter{Destination: "doctor"}); len(es) != 0 {
		t.Fatalf("a letter naming only the parents was parked at the GP: %+v", es)
	}
}

// Order holds through park and replay: a later letter of a parked letter's
// thread waits, visibly, and follows it once it is replayed.
func TestThreadWaitsForItsParkedLetterAndFollowsItOnReplay(t *testing.T) {
	e := newEnv(t)
	gpConsent(t, e)
	e.gp.mu.Lock()
	e.gp.failFor["R1"] = 100 // down for R1 long enough to park it
	e.gp.mu.Unlock()
	e.feed.ch <- mkLetter("R1", letter.KindRecommendation, "T-ORDER")
	first := parkedAt(t, e, "doctor", "R1")
	e.feed.ch <- mkLetter("R2", letter.KindRecommendation, "T-ORDER")
	e.feed.ch <- mkLetter("OTHER", letter.KindRecommendation, "T-OTHER")
	held := parkedAt(t, e, "doctor", "R2")
	if held.LastError.Code != pipeline.CodeThreadHeld {
		t.Fatalf("R2 parked with %q, want %s", held.LastError.Code, pipeline.CodeThreadHeld)
	}
	eventually(t, "the other thread delivered", func() bool { return e.gp.count("OTHER") == 1 })
	if e.gp.count("R2") != 0 {
		t.Fatal("R2 overtook R1, which is parked")
	}
	if hs := e.hub.Holds(); len(hs) != 1 || hs[0].WaitsFor != "R1" || hs[0].Destination != "doctor" {
		t.Fatalf("holds = %+v, want doctor waiting for R1", hs)
	}
	eventually(t, "the source told R2 waits", func() bool {
		r, _ := e.feed.latest("R2", letter.RoleGP)
		return r.State == adapters.StateWaiting && r.Code == pipeline.CodeThreadHeld
	})
	// A letter of the thread arriving now waits too.
	e.feed.ch <- mkLetter("R3", letter.KindRecommendation, "T-ORDER")
	parkedAt(t, e, "doctor", "R3")

	e.gp.mu.Lock()
	e.gp.failFor["R1"] = 0
	e.gp.mu.Unlock()
	if _, err := e.hub.Replay(context.Background(), coordinator, first.Seq, "the GP system is back", false); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the whole thread delivered", func() bool { return e.gp.count("R3") == 1 })
	order := e.gp.orderOf()
	i1, i2, i3 := slices.Index(order, "R1"), slices.Index(order, "R2"), slices.Index(order, "R3")
	if !(i1 >= 0 && i1 < i2 && i2 < i3) {
		t.Fatalf("delivery order %v, want R1 before R2 before R3", order)
	}
	eventually(t, "the queue empty and the hold lifted", func() bool {
		es, _ := e.hub.Queue().List(context.Background(), retryq.Filter{Destination: "doctor"})
		return len(es) == 0 && len(e.hub.Holds()) == 0
	})
	e.feed.ch <- mkLetter("R4", letter.KindRecommendation, "T-ORDER")
	eventually(t, "a later letter goes straight through", func() bool { return e.gp.count("R4") == 1 })
	for _, id := range []string{"R1", "R2", "R3", "R4"} {
		if n := e.gp.count(id); n != 1 {
			t.Errorf("%s delivered %d times", id, n)
		}
	}
}

// Discarding the letter a thread waits for lets the rest of the thread go.
func TestDiscardReleasesTheThread(t *testing.T) {
	e := newEnv(t)
	gpConsent(t, e)
	e.gp.mu.Lock()
	e.gp.failFor["D1"] = 100
	e.gp.mu.Unlock()
	e.feed.ch <- mkLetter("D1", letter.KindRecommendation, "T-DISCARD")
	first := parkedAt(t, e, "doctor", "D1")
	e.feed.ch <- mkLetter("D2", letter.KindRecommendation, "T-DISCARD")
	parkedAt(t, e, "doctor", "D2")
	if err := e.hub.Discard(context.Background(), coordinator, first.Seq, "sent by post instead"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "D2 delivered after the discard", func() bool { return e.gp.count("D2") == 1 })
	if e.gp.count("D1") != 0 {
		t.Fatal("the discarded letter was delivered")
	}
	eventually(t, "the source told D1 was discarded", func() bool {
		r, _ := e.feed.latest("D1", letter.RoleGP)
		return r.State == adapters.StateFailed && r.Code == "discarded"
	})
}

// The coordinator can let a held thread go on without the parked letter.
func TestCoordinatorReleasesAHeldThread(t *testing.T) {
	e := newEnv(t)
	gpConsent(t, e)
	e.gp.mu.Lock()
	e.gp.failFor["H1"] = 100
	e.gp.mu.Unlock()
	e.feed.ch <- mkLetter("H1", letter.KindRecommendation, "T-RELEASE")
	parkedAt(t, e, "doctor", "H1")
	e.feed.ch <- mkLetter("H2", letter.KindRecommendation, "T-RELEASE")
	parkedAt(t, e, "doctor", "H2")
	hs := e.hub.Holds()
	if len(hs) != 1 {
		t.Fatalf("holds = %+v", hs)
	}
	if err := e.hub.ReleaseThread(context.Background(), coordinator, "doctor", hs[0].Thread, ""); err == nil {
		t.Fatal("a release without a reason was accepted")
	}
	if err := e.hub.ReleaseThread(context.Background(), coordinator, "doctor", hs[0].Thread, "H2 does not depend on H1"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "H2 delivered", func() bool { return e.gp.count("H2") == 1 })
	es, _ := e.hub.Queue().List(context.Background(), retryq.Filter{Destination: "doctor"})
	if len(es) != 1 || es[0].LetterID != "H1" {
		t.Fatalf("queue = %+v, want H1 still parked", es)
	}
	recs, err := e.hub.Audit().Tail(context.Background(), 5)
	if err != nil || len(recs) == 0 || recs[len(recs)-1].Action != "release-thread" {
		t.Fatalf("release not audited: %v %+v", err, recs)
	}
}

// A receiver's refusal is shown to the coordinator: the refused letter is
// parked at the destination that sent it, with the receiver's reason, and
// the source hears that the copy failed.
func TestRefusalParksTheRefusedLetter(t *testing.T) {
	e := newEnv(t)
	gpConsent(t, e)
	e.feed.ch <- mkLetter("REFUSED", letter.KindRecommendation, "T-REF")
	eventually(t, "the recommendation at the GP", func() bool { return e.gp.count("REFUSED") == 1 })
	eventually(t, "the delivery in the journey", func() bool {
		tr, err := e.hub.TraceLetter(context.Background(), "REFUSED")
		return err == nil && slices.ContainsFunc(tr.Steps, func(s journey.Event) bool { return s.Step == journey.Delivered && s.Destination == "doctor" })
	})
	ack := &letter.Letter{ID: "ACK-REFUSED", Kind: letter.KindAcknowledgement, Format: "test-ack", InReplyTo: "REFUSED",
		Ack: &letter.Ack{Positive: false, Code: "fatal-error", Reason: "MSG_RECEIVER_UNABLE_TO_RECEIVE_MSG_TYPE"}, Original: letter.Original{Data: []byte("<ack/>")}}
	if err := e.hub.Publisher(e.cfg.Destinations["doctor"].Adapter).Publish(context.Background(), ack); err != nil {
		t.Fatal(err)
	}
	p := parkedAt(t, e, "doctor", "REFUSED")
	if p.LastError.Code != pipeline.CodeNegativeAck || !strings.Contains(p.LastError.Reason, "MSG_RECEIVER_UNABLE_TO_RECEIVE_MSG_TYPE") {
		t.Fatalf("parked %+v", p.LastError)
	}
	tr, err := e.hub.TraceLetter(context.Background(), "REFUSED")
	if err != nil || !slices.ContainsFunc(tr.Steps, func(s journey.Event) bool { return s.Step == journey.Acknowledged && s.Code == "fatal-error" }) {
		t.Fatalf("journey lacks the refusal: %v %+v", err, tr)
	}
	eventually(t, "the source told the GP's copy failed", func() bool {
		r, _ := e.feed.latest("REFUSED", letter.RoleGP)
		return r.State == adapters.StateFailed && r.Code == pipeline.CodeNegativeAck
	})
	// The same refusal given again (its source never heard it was stored)
	// is neither recorded nor parked twice.
	if err := e.hub.Publisher(e.cfg.Destinations["doctor"].Adapter).Publish(context.Background(), ack); err != nil {
		t.Fatal(err)
	}
	tr, _ = e.hub.TraceLetter(context.Background(), "REFUSED")
	if n := len(slices.DeleteFunc(slices.Clone(tr.Steps), func(s journey.Event) bool { return s.Step != journey.Acknowledged })); n != 1 {
		t.Errorf("the refusal is in the journey %d times after it came twice", n)
	}
	if es, _ := e.hub.Queue().List(context.Background(), retryq.Filter{Destination: "doctor"}); len(es) != 1 {
		t.Errorf("the refused letter is parked %d times after its refusal came twice", len(es))
	}
	// A positive answer parks nothing.
	e.feed.ch <- mkLetter("FINE", letter.KindRecommendation, "T-FINE")
	eventually(t, "the second recommendation at the GP", func() bool { return e.gp.count("FINE") == 1 })
	ok := &letter.Letter{ID: "ACK-FINE", Kind: letter.KindAcknowledgement, Format: "test-ack", InReplyTo: "FINE", Ack: &letter.Ack{Positive: true, Code: "ok"}, Original: letter.Original{Data: []byte("<ack/>")}}
	if err := e.hub.Publisher(e.cfg.Destinations["doctor"].Adapter).Publish(context.Background(), ok); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	es, _ := e.hub.Queue().List(context.Background(), retryq.Filter{Destination: "doctor"})
	if len(es) != 1 {
		t.Fatalf("queue %+v, want only the refused letter", es)
	}
}

// A letter that waits for an earlier letter of its thread stays parked,
// in its place, when the coordinator replays it while that letter is
// being delivered. Before, its entry left the queue and its replay waited
// behind the earlier letter's, so the release that letter's delivery made
// sent the thread's later letters ahead of it (found by TestQueueSequences,
// seed 19, through a bulk replay).
func TestReplayingAHeldLetterKeepsItsPlaceInTheThread(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.muni.mu.Lock()
	e.muni.failFor["O1"] = 100
	e.muni.mu.Unlock()
	e.feed.ch <- mkLetter("O1", letter.KindNote, "T-PLACE")
	first := parkedAt(t, e, "casefile", "O1")
	e.feed.ch <- mkLetter("O2", letter.KindNote, "T-PLACE")
	second := parkedAt(t, e, "casefile", "O2")
	e.feed.ch <- mkLetter("O3", letter.KindNote, "T-PLACE")
	parkedAt(t, e, "casefile", "O3")
	// The preview answers as the replay would.
	if _, err := e.hub.Replay(ctx, coordinator, second.Seq, "preview", true); !errors.Is(err, pipeline.ErrThreadHeld) {
		t.Errorf("a dry run of a letter that waits for an earlier one: %v, want ErrThreadHeld", err)
	}
	e.muni.mu.Lock()
	e.muni.failFor["O1"], e.muni.delay = 0, 300*time.Millisecond
	e.muni.mu.Unlock()
	if _, err := e.hub.Replay(ctx, coordinator, first.Seq, "the case system is back", false); err != nil {
		t.Fatal(err)
	}
	_, err := e.hub.Replay(ctx, coordinator, second.Seq, "this one too", false)
	eventually(t, "the thread delivered", func() bool { return e.muni.count("O2") == 1 && e.muni.count("O3") == 1 })
	if order, want := e.muni.orderOf(), []string{"O1", "O2", "O3"}; !slices.Equal(order, want) {
		t.Fatalf("delivery order %v, want %v", order, want)
	}
	if !errors.Is(err, pipeline.ErrThreadHeld) {
		t.Errorf("replaying a letter that waits for an earlier one: %v, want ErrThreadHeld", err)
	}
	eventually(t, "the queue empty and the hold lifted", func() bool {
		es, _ := e.hub.Queue().List(ctx, retryq.Filter{})
		return len(es) == 0 && len(e.hub.Holds()) == 0
	})
}
