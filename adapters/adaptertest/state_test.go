package adaptertest

import (
	"context"
	"errors"
	"testing"

	"github.com/samhub/samhub/adapters"
)

// The fake keeps the hub store's rules, or adapter tests would pass on
// behaviour the real store refuses.
func TestStateKeepsTheStoreRules(t *testing.T) {
	ctx := context.Background()
	s := NewState()
	if _, _, err := s.Get(ctx, "k"); !errors.Is(err, adapters.ErrNotFound) {
		t.Fatalf("missing key: %v", err)
	}
	rev, err := s.Create(ctx, "k", []byte("1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, "k", []byte("2")); !errors.Is(err, adapters.ErrExists) {
		t.Fatalf("second create: %v", err)
	}
	if _, err := s.Update(ctx, "k", []byte("3"), rev+1); !errors.Is(err, adapters.ErrConflict) {
		t.Fatalf("stale update: %v", err)
	}
	if _, err := s.Update(ctx, "k", []byte("3"), rev); err != nil {
		t.Fatal(err)
	}
	if v, _, _ := s.Get(ctx, "k"); string(v) != "3" || s.Keys("") != 1 || s.Keys("x") != 0 {
		t.Fatalf("value %q, keys %d", v, s.Keys(""))
	}
	down := errors.New("down")
	s.SetDown(down)
	if _, err := s.Put(ctx, "k", nil); !errors.Is(err, down) {
		t.Fatalf("store down: %v", err)
	}
	s.SetDown(nil)
	if err := s.Delete(ctx, "k"); err != nil || s.Keys("") != 0 {
		t.Fatalf("delete: %v, %d keys", err, s.Keys(""))
	}
}
