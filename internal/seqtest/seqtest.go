// Package seqtest runs the model-based sequence tests (the council
// register, the MedCom drop folder, the mail source and sink): seeds from
// the environment, each seed's operations planned and replayed, and a
// failing seed's operations shrunk to the shortest sequence that still
// fails, printed with how to replay it.
package seqtest

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Settings are a sequence test's seeds and steps.
type Settings struct {
	Prefix string // of the environment variables, e.g. SAMHUB_MEDCOM_SEQ
	First  uint64 // the first seed
	Seeds  int    // how many seeds from First
	Steps  int    // operations per seed
}

// FromEnv reads <prefix>_SEEDS and <prefix>_STEPS (seeds and steps when
// unset), and <prefix>_SEED, which replays that one seed.
func FromEnv(prefix string, seeds, steps int) Settings {
	s := Settings{Prefix: prefix, First: 1, Seeds: envInt(prefix+"_SEEDS", seeds), Steps: envInt(prefix+"_STEPS", steps)}
	if v, err := strconv.ParseUint(os.Getenv(prefix+"_SEED"), 10, 64); err == nil {
		s.First, s.Seeds = v, 1
	}
	return s
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// Test is one sequence test.
type Test[Op any] struct {
	// Plan makes a seed's operations; what it says of the seed (its
	// configuration) goes in the failure's first line.
	Plan func(seed uint64, steps int) (ops []Op, about string)
	// Replay runs ops on a fresh world and returns what failed, nil when
	// every check held.
	Replay func(t *testing.T, ops []Op) []string
	// Valid, when set, keeps the shrinking to sequences the run can make
	// sense of (steps naming what the shorter sequence still makes).
	Valid func(ops []Op) bool
	// Budget bounds the replays spent shrinking one failing seed.
	Budget int
}

// Run runs every seed of s; a seed that fails is shrunk and fails t with
// the seed, how to replay it and the shortest sequence found.
func (x Test[Op]) Run(t *testing.T, s Settings) {
	t.Helper()
	for seed := s.First; seed < s.First+uint64(s.Seeds); seed++ {
		ops, about := x.Plan(seed, s.Steps)
		var fails []string
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) { fails = x.Replay(t, ops) })
		if fails == nil {
			continue
		}
		small, why := x.shrink(t, ops)
		if why == nil {
			small, why = ops, fails
		}
		var b strings.Builder
		if about != "" {
			about = " (" + about + ")"
		}
		fmt.Fprintf(&b, "seed %d%s fails (%s_SEED=%d %s_STEPS=%d replays it):\n  %s\nshortest sequence found (%d steps):\n",
			seed, about, s.Prefix, seed, s.Prefix, s.Steps, strings.Join(why, "\n  "), len(small))
		for _, op := range small {
			fmt.Fprintf(&b, "  %v\n", op)
		}
		t.Fatal(b.String())
	}
}

// shrink drops runs of operations, halving their length, while the
// sequence still fails (with any failure).
func (x Test[Op]) shrink(t *testing.T, ops []Op) ([]Op, []string) {
	var last []string
	budget := x.Budget
	for chunk := len(ops) / 2; chunk >= 1; chunk /= 2 {
		for i := 0; i+chunk <= len(ops) && budget > 0; {
			try := slices.Concat(ops[:i], ops[i+chunk:])
			budget--
			if x.Valid != nil && !x.Valid(try) {
				i += chunk
				continue
			}
			var got []string
			t.Run("shrink", func(t *testing.T) { got = x.Replay(t, try) })
			if got != nil {
				ops, last = try, got
				continue
			}
			i += chunk
		}
	}
	return ops, last
}
