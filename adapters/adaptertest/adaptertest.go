// Package adaptertest holds what every adapter is tested with: the
// conformance suite, an in-memory StateStore with the hub store's rules,
// and a Publisher that can refuse, hold or lose a store.
//
// The suite (Conformance) loops over the adapter registry and runs each
// type against the harness its package registers (Register) beside its
// adapters.Register* call: its simulator or an in-process server. A
// registered type without a harness fails. Sinks must deliver
// idempotently (again, concurrently, after a lost reply), classify
// failures as the harness says (permanent or retryable), never call a
// cancelled call permanent, give reasons without personal data, open an
// attachment that is streamed (not held) again on every attempt, and
// send nothing half when its read fails half way (a retryable failure).
// Sources must acknowledge nothing before the store confirms, offer the
// same letter id again after a crash between store and acknowledgement,
// retry a refused store, and lose nothing when stopped mid-round.
package adaptertest

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/internal/logging"
	"github.com/samhub/samhub/pipeline/letter"
)

// Sink runs the basic sink checks (idempotent, cancelled call retryable,
// reasons without personal data) against a live sink. mk returns a fresh
// letter the sink's system accepts, distinct for each n. Conformance runs
// these and more for every registered type.
func Sink(t *testing.T, sink adapters.Sink, mk func(n int) *letter.Letter) {
	t.Helper()
	t.Run("idempotent", func(t *testing.T) { checkIdempotent(t, sink, mk(1), nil) })
	t.Run("cancelled-call-is-retryable", func(t *testing.T) { checkCancelled(t, sink, mk(2)) })
	t.Run("reasons-without-personal-data", func(t *testing.T) { checkReasons(t, sink, mk(3)) })
}

func checkIdempotent(t *testing.T, sink adapters.Sink, l *letter.Letter, stored func(*letter.Letter) int) {
	ctx := context.Background()
	first, err := sink.Deliver(ctx, l)
	if err != nil {
		t.Fatalf("first delivery: %v", err)
	}
	if first.RemoteID == "" {
		t.Error("a delivery must name what the destination created (RemoteID)")
	}
	again, err := sink.Deliver(ctx, l)
	if err != nil {
		t.Fatalf("second delivery of the same letter: %v", err)
	}
	if !again.Existing && again.RemoteID != first.RemoteID {
		t.Errorf("the same letter delivered twice made a second object: %q then %q", first.RemoteID, again.RemoteID)
	}
	if stored != nil {
		if n := stored(l); n != 1 {
			t.Errorf("the destination holds %d objects for a letter delivered twice, want 1", n)
		}
	}
}

func checkCancelled(t *testing.T, sink adapters.Sink, l *letter.Letter) {
	cctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := sink.Deliver(cctx, l)
	if err == nil {
		return // finished anyway
	}
	var ae *adapters.Error
	if errors.As(err, &ae) && ae.Class == adapters.ClassPermanent {
		// Also when it wraps the context's error: a sink timeout is a
		// cancelled call too, and would park the letter.
		t.Errorf("a cancelled call was classified %s: the letter would be parked", describeClass(err))
	}
}

func checkReasons(t *testing.T, sink adapters.Sink, l *letter.Letter) {
	l.Original = letter.Original{} // not something any sink can send
	l.Patient = &letter.Patient{CPR: "2509479989", GivenName: "Bruno Test", FamilyName: "Elmer"}
	_, err := sink.Deliver(context.Background(), l)
	if err == nil {
		return
	}
	_, reason, code := adapters.Classify(err)
	if logging.ContainsCPR(reason+" "+code) || strings.Contains(reason, "Bruno") || strings.Contains(reason, "Elmer") {
		t.Errorf("a reason carries personal data: %q", reason)
	}
	if reason == "" {
		t.Error("an error must carry a reason for the coordinator")
	}
}
