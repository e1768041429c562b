package adaptertest

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync"

	"github.com/samhub/samhub/adapters"
)

// State is an in-memory adapters.StateStore for tests of one adapter built
// alone, with the semantics of the hub's JetStream store (a revision per
// write, Create refuses an existing key, Update checks the revision), and
// a switch that makes every call fail like a store that is down. Tests of
// the whole hub use the real store.
type State struct {
	mu   sync.Mutex
	vals map[string][]byte
	revs map[string]uint64
	rev  uint64
	down error
	// failWrites makes this many Put, Create and Update calls fail with
	// writeErr, as a store that accepted reads but lost a write would.
	failWrites int
	writeErr   error
}

func NewState() *State { return &State{vals: map[string][]byte{}, revs: map[string]uint64{}} }

var _ adapters.StateStore = (*State)(nil)

// SetDown makes every call fail with err; nil makes the store work again.
func (s *State) SetDown(err error) {
	s.mu.Lock()
	s.down = err
	s.mu.Unlock()
}

// FailNextWrites makes the next n writes (Put, Create, Update) fail with err.
func (s *State) FailNextWrites(n int, err error) {
	s.mu.Lock()
	s.failWrites, s.writeErr = n, err
	s.mu.Unlock()
}

// writeFault reports the error a write fails with now; callers hold s.mu.
func (s *State) writeFault() error {
	if s.down != nil {
		return s.down
	}
	if s.failWrites > 0 {
		s.failWrites--
		return s.writeErr
	}
	return nil
}

func (s *State) Get(_ context.Context, k string) ([]byte, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down != nil {
		return nil, 0, s.down
	}
	v, ok := s.vals[k]
	if !ok {
		return nil, 0, adapters.ErrNotFound
	}
	return append([]byte(nil), v...), s.revs[k], nil
}

func (s *State) Put(_ context.Context, k string, v []byte) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writeFault(); err != nil {
		return 0, err
	}
	return s.put(k, v), nil
}

func (s *State) Create(_ context.Context, k string, v []byte) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writeFault(); err != nil {
		return 0, err
	}
	if _, ok := s.vals[k]; ok {
		return 0, adapters.ErrExists
	}
	return s.put(k, v), nil
}

func (s *State) Update(_ context.Context, k string, v []byte, rev uint64) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writeFault(); err != nil {
		return 0, err
	}
	if s.revs[k] != rev {
		return 0, adapters.ErrConflict
	}
	return s.put(k, v), nil
}

func (s *State) Delete(_ context.Context, k string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down != nil {
		return s.down
	}
	delete(s.vals, k)
	delete(s.revs, k)
	return nil
}

func (s *State) Scan(_ context.Context, prefix string) ([]adapters.StateEntry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down != nil {
		return nil, s.down
	}
	if prefix != "" && !strings.HasSuffix(prefix, ".") {
		return nil, fmt.Errorf("state prefix %q: must be empty or end in a dot", prefix)
	}
	var out []adapters.StateEntry
	for k, v := range s.vals {
		if strings.HasPrefix(k, prefix) {
			out = append(out, adapters.StateEntry{Key: k, Value: append([]byte(nil), v...), Revision: s.revs[k]})
		}
	}
	return out, nil
}

func (s *State) put(k string, v []byte) uint64 {
	s.rev++
	s.vals[k], s.revs[k] = append([]byte(nil), v...), s.rev
	return s.rev
}

// Keys counts the stored keys that start with prefix ("" counts all).
func (s *State) Keys(prefix string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k := range s.vals {
		if strings.HasPrefix(k, prefix) {
			n++
		}
	}
	return n
}

// Snapshot returns a copy of every key and value.
func (s *State) Snapshot() map[string][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.vals)
}
