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

// state is everything the simulator persists. Cases and id counters are few
// and change in place, so each commit rewrites them in one snapshot
// (state.json, written atomically: temp file, fsync, rename, fsync dir).
// Documents, journal notes and idempotency records grow with every letter,
// so each is its own file under docs/, notes/ and idem/, written once when
// it is new (documents in the outbox again when their state changed):
// a commit costs the same at the ten-thousandth document as at the first.
// File bytes are content-addressed under files/ and written first.
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

// snapshot is what state.json holds; older simulators wrote every object
// there, which load still reads.
type snapshot struct {
	Seq   map[string]int   `json:"seq"`
	Cases map[string]*Case `json:"cases"`
}

type idemFile struct {
	Key    string      `json:"key"`
	Record *idemRecord `json:"record"`
}

func idemName(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:]) + ".json"
}

// persisted remembers which growing objects have a file already.
type persisted struct {
	docs, notes, idem map[string]bool
}

func (s *Server) load() error {
	s.saved = persisted{docs: map[string]bool{}, notes: map[string]bool{}, idem: map[string]bool{}}
	s.dirty = map[string]bool{}
	st := newState()
	b, err := os.ReadFile(s.statePath())
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("read simulator state: %w", err)
	default:
		if err := json.Unmarshal(b, st); err != nil {
			return fmt.Errorf("decode simulator state %s: %w", s.statePath(), err)
		}
	}
	for _, c := range st.Cases {
		upgradePerson(&c.PrimaryParty)
	}
	if err := readDir(filepath.Join(s.cfg.DataDir, "docs"), func(b []byte) error {
		d := &Document{}
		if err := json.Unmarshal(b, d); err != nil {
			return err
		}
		st.Documents[d.ID], s.saved.docs[d.ID] = d, true
		if d.Outbox != nil {
			upgradeOutbox(d.Outbox)
		}
		return nil
	}); err != nil {
		return err
	}
	if err := readDir(filepath.Join(s.cfg.DataDir, "notes"), func(b []byte) error {
		n := &JournalNote{}
		if err := json.Unmarshal(b, n); err != nil {
			return err
		}
		st.Notes[n.ID], s.saved.notes[n.ID] = n, true
		return nil
	}); err != nil {
		return err
	}
	if err := readDir(filepath.Join(s.cfg.DataDir, "idem"), func(b []byte) error {
		var f idemFile
		if err := json.Unmarshal(b, &f); err != nil {
			return err
		}
		st.Idempotency[f.Key], s.saved.idem[f.Key] = f.Record, true
		return nil
	}); err != nil {
		return err
	}
	s.st = st
	return nil
}

func readDir(dir string, fn func([]byte) error) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() || filepath.Ext(e.Name()) != ".json" {
			continue // temp files of an interrupted write
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return err
		}
		if err := fn(b); err != nil {
			return fmt.Errorf("decode simulator state %s: %w", filepath.Join(dir, e.Name()), err)
		}
	}
	return nil
}

// save persists what changed; callers hold s.mu. Cases first, so a crash
// never leaves a document whose case is unknown.
func (s *Server) save() error {
	b, err := json.Marshal(snapshot{Seq: s.st.Seq, Cases: s.st.Cases})
	if err != nil {
		return err
	}
	if err := writeAtomic(s.statePath(), b); err != nil {
		return err
	}
	for id, d := range s.st.Documents {
		if s.saved.docs[id] && !s.dirty[id] {
			continue // documents change only in the outbox, which marks them dirty
		}
		if err := writeJSON(filepath.Join(s.cfg.DataDir, "docs", id+".json"), d); err != nil {
			return err
		}
		s.saved.docs[id] = true
		delete(s.dirty, id)
	}
	for id, n := range s.st.Notes {
		if s.saved.notes[id] {
			continue
		}
		if err := writeJSON(filepath.Join(s.cfg.DataDir, "notes", id+".json"), n); err != nil {
			return err
		}
		s.saved.notes[id] = true
	}
	for k, r := range s.st.Idempotency {
		if s.saved.idem[k] {
			continue
		}
		if err := writeJSON(filepath.Join(s.cfg.DataDir, "idem", idemName(k)), idemFile{Key: k, Record: r}); err != nil {
			return err
		}
		s.saved.idem[k] = true
	}
	for k := range s.saved.idem {
		if _, ok := s.st.Idempotency[k]; !ok {
			_ = os.Remove(filepath.Join(s.cfg.DataDir, "idem", idemName(k)))
			delete(s.saved.idem, k)
		}
	}
	return nil
}

func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return writeAtomic(path, b)
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
