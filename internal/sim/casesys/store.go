package casesyssim

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// state is everything the simulator persists. It is small (a simulator holds
// tens of cases), so each commit rewrites one JSON snapshot atomically
// (write temp file, fsync, rename, fsync dir): a crash leaves either the old
// or the new state, never a torn one. File bytes are content-addressed under
// files/ and written before the snapshot that refers to them.
type state struct {
	Seq         map[string]int          `json:"seq"`
	Cases       map[string]*Case        `json:"cases"`
	Documents   map[string]*Document    `json:"documents"`
	Notes       map[string]*JournalNote `json:"journalNotes"`
	Idempotency map[string]*idemRecord  `json:"idempotency"`
}

// idemRecord is a stored answer to an Idempotency-Key.
type idemRecord struct {
	Fingerprint string    `json:"fingerprint"`
	Route       string    `json:"route"`
	Status      int       `json:"status"`
	ContentType string    `json:"contentType,omitempty"`
	Location    string    `json:"location,omitempty"`
	Body        []byte    `json:"body,omitempty"`
	CreatedAt   time.Time `json:"createdAt"`
}

func newState() *state {
	return &state{
		Seq:         map[string]int{},
		Cases:       map[string]*Case{},
		Documents:   map[string]*Document{},
		Notes:       map[string]*JournalNote{},
		Idempotency: map[string]*idemRecord{},
	}
}

func (s *Server) statePath() string { return filepath.Join(s.cfg.DataDir, "state.json") }

func (s *Server) load() error {
	b, err := os.ReadFile(s.statePath())
	if errors.Is(err, fs.ErrNotExist) {
		s.st = newState()
		return nil
	}
	if err != nil {
		return fmt.Errorf("read simulator state: %w", err)
	}
	st := newState()
	if err := json.Unmarshal(b, st); err != nil {
		return fmt.Errorf("decode simulator state %s: %w", s.statePath(), err)
	}
	s.st = st
	return nil
}

// save persists the current state; callers hold s.mu.
func (s *Server) save() error {
	b, err := json.Marshal(s.st)
	if err != nil {
		return err
	}
	return writeAtomic(s.statePath(), b)
}

// putFile stores data content-addressed and returns its digest.
func (s *Server) putFile(data []byte) (string, error) {
	sum := sha256.Sum256(data)
	h := hex.EncodeToString(sum[:])
	p := filepath.Join(s.cfg.DataDir, "files", h)
	if _, err := os.Stat(p); err == nil {
		return h, nil
	}
	return h, writeAtomic(p, data)
}

func (s *Server) readFile(sha string) ([]byte, error) {
	return os.ReadFile(filepath.Join(s.cfg.DataDir, "files", sha))
}

func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// nextID hands out readable, sequential ids per kind, skipping ids a
// seeded object already took.
func (s *Server) nextID(kind string) string {
	for {
		s.st.Seq[kind]++
		n := s.st.Seq[kind]
		var id string
		var taken bool
		switch kind {
		case "case":
			id = fmt.Sprintf("SAG-%d-%06d", s.now().Year(), n)
			_, taken = s.st.Cases[id]
		case "document":
			id = fmt.Sprintf("DOK-%06d", n)
			_, taken = s.st.Documents[id]
		default:
			id = fmt.Sprintf("JN-%06d", n)
			_, taken = s.st.Notes[id]
		}
		if !taken {
			return id
		}
	}
}

// pruneIdempotency forgets records older than the retention; callers hold s.mu.
func (s *Server) pruneIdempotency() {
	cutoff := s.now().Add(-s.cfg.IdempotencyRetention)
	for k, r := range s.st.Idempotency {
		if r.CreatedAt.Before(cutoff) {
			delete(s.st.Idempotency, k)
		}
	}
}
