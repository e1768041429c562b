package audit_test

import (
	"context"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/samhub/samhub/internal/hubtest"
	"github.com/samhub/samhub/pipeline/audit"
)

// A reason of almost a megabyte (the console's forms take 500 characters,
// a hand-made post or an API body any length) is cut to MaxReason, so the
// auditor's page of the last 500 records stays a page.
func TestLongReasonsAreCut(t *testing.T) {
	h := hubtest.Start(t)
	log := h.App.Hub.Audit()
	ctx := context.Background()
	long := strings.Repeat("æ", 450_000)
	if err := log.Append(ctx, audit.Record{Actor: "koordinator", Role: "coordinator", Action: "discard", Reason: long}); err != nil {
		t.Fatal(err)
	}
	if err := log.Append(ctx, audit.Record{Actor: "koordinator", Role: "coordinator", Action: "discard", Reason: "duplicate"}); err != nil {
		t.Fatal(err)
	}
	recs, err := log.Tail(ctx, 2)
	if err != nil || len(recs) != 2 {
		t.Fatalf("tail: %v, %d records", err, len(recs))
	}
	if n := utf8.RuneCountInString(recs[0].Reason); n > audit.MaxReason+10 || !strings.HasPrefix(recs[0].Reason, long[:200]) || !strings.HasSuffix(recs[0].Reason, "[…]") {
		t.Errorf("long reason kept as %d characters, ending %q", n, recs[0].Reason[len(recs[0].Reason)-20:])
	}
	if recs[1].Reason != "duplicate" {
		t.Errorf("a short reason was changed: %q", recs[1].Reason)
	}
}
