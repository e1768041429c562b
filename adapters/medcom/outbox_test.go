package medcom

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/adapters/medcom/oioxml"
	"github.com/samhub/samhub/pipeline/letter"
)

// dropReceipt drops the GP's positive receipt of the XDIS91 letter out/name.
func (e *env) dropReceipt(t *testing.T, name string) {
	t.Helper()
	sent := parseOut(t, e.read(t, "out", name))
	receipt, err := oioxml.BuildReceipt(sent, oioxml.ReceiptOptions{Type: oioxml.PositiveReceipt, Letters: sent.Letters, Now: e.clock.now()})
	if err != nil {
		t.Fatal(err)
	}
	e.drop(t, "kvittering.xml", receipt)
}

func numbered(i int) *letter.Letter {
	l := xdisLetter()
	l.ID = fmt.Sprintf("casesys:sag-4711:brev-%d", i)
	return l
}

// TestTheOutboxWritesOnlyTheLetterItChanges: with hundreds of letters
// awaiting their acknowledgement, a delivery, an acknowledgement and the
// check each write one letter's entry. The outbox was one value holding
// every letter, rewritten whole each time (300 letters: 77 KB a write,
// and past about 4,000 more than a NATS server takes by default).
func TestTheOutboxWritesOnlyTheLetterItChanges(t *testing.T) {
	e := newEnv(t)
	largest := 0 // bytes of the largest write to the state store
	a := e.adapterOn(t, &hookedState{memState: e.state, onWrite: func(_ string, v []byte) { largest = max(largest, len(v)) }})
	ctx := context.Background()
	const n = 300
	for i := range n {
		if _, err := a.Deliver(ctx, numbered(i)); err != nil {
			t.Fatal(err)
		}
	}
	if largest > 1024 {
		t.Errorf("a delivery wrote %d bytes to the state store with %d letters awaiting an answer; want one letter's entry", largest, n)
	}

	// The GP acknowledges letter 150; the others still wait.
	e.dropReceipt(t, "xdis91-"+oioxml.StableID(numbered(150).ID)+".xml")
	pub := newPub()
	a.Poll(ctx, pub)
	if len(pub.letters) != 1 || pub.letters[0].InReplyTo != numbered(150).ID {
		t.Fatalf("published %v, want the acknowledgement of letter 150", pub.ids())
	}
	e.clock.add(31 * time.Minute)
	if err := a.CheckAcks(ctx); err != nil {
		t.Fatal(err)
	}
	if g := e.gauge(t); g != n-1 {
		t.Errorf("%v letters flagged without acknowledgement, want %d", g, n-1)
	}
	if largest > 1024 {
		t.Errorf("the acknowledgement or the check wrote %d bytes; want one letter's entry", largest)
	}
	if got := len(e.files(t, "out")); got != 2*n-1 {
		t.Errorf("%d files in out/, want the %d letters and a resend of each but the acknowledged one", got, n)
	}
}

// TestTheOutboxOfAnEarlierVersionIsMoved: letters an earlier version
// left in its single outbox value get a key each at the next check, and
// are then acknowledged and resent as any other; a letter a replica of
// that version adds later (a rolling upgrade) is moved at the check after.
func TestTheOutboxOfAnEarlierVersionIsMoved(t *testing.T) {
	e := newEnv(t)
	a := e.adapter(t, nil)
	ctx := context.Background()
	refs := map[int]string{}
	for i := range 3 {
		d, err := a.Deliver(ctx, numbered(i))
		if err != nil {
			t.Fatal(err)
		}
		refs[i] = d.RemoteID
	}
	// Rewrite letters 0 and 1 as an earlier version kept them: in one value, by reference.
	old := map[string]map[string]any{}
	take := func(i int) {
		b, _, err := e.state.Get(ctx, pendingKey(refs[i]))
		if err != nil {
			t.Fatal(err)
		}
		var p map[string]any
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatal(err)
		}
		delete(p, "ref")
		old[refs[i]] = p
		if err := e.state.Delete(ctx, pendingKey(refs[i])); err != nil {
			t.Fatal(err)
		}
	}
	putOld := func() {
		b, _ := json.Marshal(old)
		if _, err := e.state.Put(ctx, oldOutboxKey, b); err != nil {
			t.Fatal(err)
		}
	}
	take(0)
	take(1)
	putOld()

	// The GP's acknowledgement of letter 0 waits in in/ when this version
	// starts: it must find the letter the earlier version named.
	e.dropReceipt(t, "xdis91-"+oioxml.StableID(numbered(0).ID)+".xml")
	pub := newPub()
	run, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- e.adapter(t, nil).Run(run, pub) }()
	eventually(t, "the acknowledgement to be read", func() bool {
		pub.mu.Lock()
		defer pub.mu.Unlock()
		return len(pub.letters) > 0
	})
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(pub.letters) != 1 || pub.letters[0].InReplyTo != numbered(0).ID {
		t.Fatalf("published %v in reply to %q, want the acknowledgement of letter 0 matched to it", pub.ids(), pub.letters[0].InReplyTo)
	}
	if v, _, _ := e.state.Get(ctx, oldOutboxKey); string(v) != "{}" {
		t.Errorf("the earlier outbox holds %s, want {}", v)
	}
	if p, _, _ := a.pendingEntry(ctx, refs[0]); p != nil {
		t.Errorf("letter 0 still awaits its acknowledgement")
	}
	if got := e.state.Keys(pendingPrefix); got != 2 {
		t.Fatalf("%d outbox entries, want letter 1 moved and letter 2 of this version", got)
	}

	// A replica of the earlier version takes letter 2 into its value.
	old = map[string]map[string]any{}
	take(2)
	putOld()
	e.clock.add(31 * time.Minute)
	if err := a.CheckAcks(ctx); err != nil {
		t.Fatal(err)
	}
	var resent []string
	for _, f := range e.files(t, "out") {
		if strings.HasSuffix(f, "-r1.xml") {
			resent = append(resent, f)
		}
	}
	if len(resent) != 2 || e.gauge(t) != 2 {
		t.Errorf("resent %v, %v flagged; want letters 1 and 2", resent, e.gauge(t))
	}
	for _, i := range []int{1, 2} {
		if p, _, err := a.pendingEntry(ctx, refs[i]); err != nil || p == nil || p.Resends != 1 || p.HubID != numbered(i).ID {
			t.Errorf("letter %d's entry: %+v %v", i, p, err)
		}
	}
}

// TestARefusalReadWhileTheStoreFailedIsNotLost: the receiver refuses a
// letter while the hub's state store fails the write that marks it
// refused. The refusal is read again (its file goes back to in/) and
// marks it then, so the coordinator's replay sends the letter again under
// new ids. The outbox entry used to be removed first: the second reading
// found nothing to settle, and the replay reported the refused letter as
// delivered without sending anything.
func TestARefusalReadWhileTheStoreFailedIsNotLost(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	first, err := e.adapter(t, nil).Deliver(ctx, xdisLetter())
	if err != nil {
		t.Fatal(err)
	}
	name := e.files(t, "out")[0]
	sent := parseOut(t, e.read(t, "out", name))
	refusal, err := oioxml.BuildReceipt(sent, oioxml.ReceiptOptions{Type: oioxml.NegativeReceipt, Letters: sent.Letters, RefuseCode: "problem_med_modtagerID", RefuseText: "ukendt modtager", Now: e.clock.now()})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(e.dir, "out", name)); err != nil { // the VANS client took it
		t.Fatal(err)
	}
	e.drop(t, "afvisning.xml", refusal)
	a := e.adapterOn(t, &trippingState{memState: e.state, prefix: "out.", armed: true}) // the mark fails once
	pub := newPub()
	for i := 0; i < 50 && len(e.files(t, "in")) > 0; i++ {
		a.Poll(ctx, pub)
		e.clock.add(time.Minute)
	}
	if in := e.files(t, "in"); len(in) > 0 {
		t.Fatalf("the refusal is still in in/: %v", in)
	}
	d, err := e.adapter(t, nil).Deliver(ctx, xdisLetter()) // the coordinator's replay
	if err != nil || d.Existing || d.RemoteID == first.RemoteID {
		t.Fatalf("the replay after the refusal: %+v %v, want the letter written again under new ids", d, err)
	}
	if out := e.files(t, "out"); len(out) != 1 {
		t.Errorf("out/ %v, want the letter sent again", out)
	}
}

// TestAStoppedSourceCountsNoMissingAcknowledgements: a replica whose
// source stops (its lease went to another replica) reports 0, not the
// last count it saw, which would keep the max-by-adapter alert firing
// after the replica that runs the check now sees every letter answered.
func TestAStoppedSourceCountsNoMissingAcknowledgements(t *testing.T) {
	e := newEnv(t)
	a := e.adapter(t, map[string]any{"ack_timeout": "1m"})
	ctx := context.Background()
	if _, err := a.Deliver(ctx, numbered(1)); err != nil {
		t.Fatal(err)
	}
	e.clock.add(2 * time.Minute)
	run, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(run, newPub()) }()
	eventually(t, "the letter counted as unacknowledged", func() bool { return e.gauge(t) == 1 })
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if g := e.gauge(t); g != 0 {
		t.Errorf("the stopped source still reports %v letters without acknowledgement", g)
	}
}

var _ adapters.StateStore = (*hookedState)(nil)
