package seqtest

import (
	"slices"
	"testing"
)

// fails3and7 fails every sequence holding both 3 and 7.
func fails3and7(t *testing.T, ops []int) []string {
	if slices.Contains(ops, 3) && slices.Contains(ops, 7) {
		return []string{"3 and 7"}
	}
	return nil
}

func TestShrinkKeepsOnlyWhatTheFailureNeeds(t *testing.T) {
	all := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	ops, why := Test[int]{Replay: fails3and7, Budget: 100}.shrink(t, all)
	if !slices.Equal(ops, []int{3, 7}) || len(why) != 1 {
		t.Errorf("shrunk to %v (%v), want [3 7]", ops, why)
	}
	// Valid keeps sequences that start with 0.
	ops, _ = Test[int]{Replay: fails3and7, Valid: func(ops []int) bool { return len(ops) > 0 && ops[0] == 0 }, Budget: 100}.shrink(t, all)
	if !slices.Equal(ops, []int{0, 3, 7}) {
		t.Errorf("shrunk to %v with Valid, want [0 3 7]", ops)
	}
	// No budget: nothing tried, nothing found.
	if ops, why := (Test[int]{Replay: fails3and7}).shrink(t, all); len(ops) != len(all) || why != nil {
		t.Errorf("shrunk with no budget to %v (%v)", ops, why)
	}
}

func TestFromEnvReplaysOneSeed(t *testing.T) {
	t.Setenv("X_SEQ_SEEDS", "30")
	t.Setenv("X_SEQ_STEPS", "70")
	if s := FromEnv("X_SEQ", 2, 10); s.First != 1 || s.Seeds != 30 || s.Steps != 70 {
		t.Errorf("%+v", s)
	}
	t.Setenv("X_SEQ_SEED", "17")
	if s := FromEnv("X_SEQ", 2, 10); s.First != 17 || s.Seeds != 1 || s.Steps != 70 {
		t.Errorf("with a seed: %+v", s)
	}
}
