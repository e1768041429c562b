// Package adaptertest holds the conformance checks every Sink must pass,
// whatever system it speaks: deliveries are idempotent, a cancelled call is
// never a permanent failure (so shutdown never parks a letter), and errors
// carry reasons a coordinator may see — without personal data.
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

// Sink runs the conformance checks against a live sink. mk returns a fresh
// letter the sink's system accepts, distinct for each n.
func Sink(t *testing.T, sink adapters.Sink, mk func(n int) *letter.Letter) {
	t.Helper()
	ctx := context.Background()

	t.Run("idempotent", func(t *testing.T) {
		l := mk(1)
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
	})

	t.Run("cancelled-call-is-retryable", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := sink.Deliver(cctx, mk(2))
		if err == nil {
			return // a sink that finished anyway is fine
		}
		if errors.Is(err, context.Canceled) {
			return // the pipeline treats a cancelled call as a release
		}
		class, reason, _ := adapters.Classify(err)
		if class == adapters.ClassPermanent {
			t.Errorf("a cancelled call was classified permanent (%s): shutdown would park letters", reason)
		}
	})

	t.Run("reasons-without-personal-data", func(t *testing.T) {
		l := mk(3)
		l.Original = letter.Original{} // not something any sink can send
		l.Patient = &letter.Patient{CPR: "2509479989", GivenName: "Bruno Test", FamilyName: "Elmer"}
		_, err := sink.Deliver(ctx, l)
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
	})
}
