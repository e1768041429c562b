package casesys

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkDeliver measures one full delivery (search, lookup, upload,
// note) against the simulator on loopback, the case existing already.
func BenchmarkDeliver(b *testing.B) {
	e := startSim(b, nil)
	a := e.adapter(nil, nil)
	ctx := context.Background()
	if _, err := a.Deliver(ctx, referral(b, "bench:warmup")); err != nil {
		b.Fatal(err)
	}
	for i := 0; b.Loop(); i++ {
		if _, err := a.Deliver(ctx, referral(b, fmt.Sprintf("bench:%d", i))); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRedeliver measures the duplicate path: everything is found by
// externalId and nothing is written.
func BenchmarkRedeliver(b *testing.B) {
	e := startSim(b, nil)
	a := e.adapter(nil, nil)
	ctx := context.Background()
	l := referral(b, "bench:same")
	if _, err := a.Deliver(ctx, l); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if d, err := a.Deliver(ctx, l); err != nil || !d.Existing {
			b.Fatal(d, err)
		}
	}
}
