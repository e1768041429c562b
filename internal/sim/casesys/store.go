package casesyssim

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/samhub/samhub/internal/sim/simstore"
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
	state             []byte // state.json as last written
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

// save persists what changed; callers hold s.gc (Lock) and s.mu.
func (s *Server) save() error {
	w, err := s.prepareSave()
	if err == nil {
		err = w.write()
	}
	s.savedWrite(w, err)
	return err
}

// pendingWrite is what one save writes: state.json when it changed, then
// each new or changed document, note and idempotency record.
type pendingWrite struct {
	dir         string // the simulator's data directory
	state       []byte // nil: unchanged
	files       []pendingFile
	removeIdem  []string
	docs, notes []string
	idem        []string
}

type pendingFile struct {
	path string
	data []byte
}

// prepareSave takes what changed since the last save (callers hold s.mu):
// the bytes are made now, the files written by write, which needs no lock,
// so the simulator answers reads while a save waits for the disk, as a
// database does during a commit.
func (s *Server) prepareSave() (*pendingWrite, error) {
	w := &pendingWrite{dir: s.cfg.DataDir}
	b, err := json.Marshal(snapshot{Seq: s.st.Seq, Cases: s.st.Cases})
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(b, s.saved.state) {
		w.state = b
	}
	add := func(path string, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		w.files = append(w.files, pendingFile{path, b})
		return nil
	}
	for id, d := range s.st.Documents {
		if s.saved.docs[id] && !s.dirty[id] {
			continue // documents change only in the outbox, which marks them dirty
		}
		if err := add(filepath.Join(s.cfg.DataDir, "docs", id+".json"), d); err != nil {
			return nil, err
		}
		w.docs = append(w.docs, id)
		delete(s.dirty, id) // a change from now on marks it again
	}
	for id, n := range s.st.Notes {
		if !s.saved.notes[id] {
			if err := add(filepath.Join(s.cfg.DataDir, "notes", id+".json"), n); err != nil {
				return nil, err
			}
			w.notes = append(w.notes, id)
		}
	}
	for k, r := range s.st.Idempotency {
		if !s.saved.idem[k] {
			if err := add(filepath.Join(s.cfg.DataDir, "idem", idemName(k)), idemFile{Key: k, Record: r}); err != nil {
				return nil, err
			}
			w.idem = append(w.idem, k)
		}
	}
	for k := range s.saved.idem {
		if _, ok := s.st.Idempotency[k]; !ok {
			w.removeIdem = append(w.removeIdem, k)
		}
	}
	return w, nil
}

// write writes what prepareSave took. Cases first, so a crash never
// leaves a document whose case is unknown: state.json is renamed and its
// directory synced before any other file appears. The other files are each
// synced before their rename, and their directories once at the end,
// before the caller answers: a database's commit, not a file system's
// worst case (which made every outbox write cost six fsyncs).
func (w *pendingWrite) write() error {
	if w.state != nil {
		if err := simstore.WriteFile(filepath.Join(w.dir, "state.json"), w.state, nil); err != nil {
			return err
		}
	}
	dirs := map[string]bool{}
	for _, f := range w.files {
		if err := simstore.WriteFile(f.path, f.data, dirs); err != nil {
			return err
		}
	}
	for _, k := range w.removeIdem {
		_ = os.Remove(filepath.Join(w.dir, "idem", idemName(k)))
	}
	for dir := range dirs {
		if err := simstore.SyncDir(dir); err != nil {
			return err
		}
	}
	return nil
}

// savedWrite records what a write made durable (callers hold s.mu); after
// a failed one, its documents are marked changed again for the next save.
func (s *Server) savedWrite(w *pendingWrite, err error) {
	if w == nil {
		return
	}
	if err != nil {
		for _, id := range w.docs {
			s.dirty[id] = true
		}
		return
	}
	if w.state != nil {
		s.saved.state = w.state
	}
	for _, id := range w.docs {
		s.saved.docs[id] = true
	}
	for _, id := range w.notes {
		s.saved.notes[id] = true
	}
	for _, k := range w.idem {
		s.saved.idem[k] = true
	}
	for _, k := range w.removeIdem {
		delete(s.saved.idem, k)
	}
}

// writeJSON writes v to path as writeAtomic does.
func writeJSON(path string, v any, dirs map[string]bool) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return simstore.WriteFile(path, b, dirs)
}

// putFile stores data content-addressed and returns its digest.
func (s *Server) putFile(data []byte) (string, error) {
	sum := sha256.Sum256(data)
	h := hex.EncodeToString(sum[:])
	p := filepath.Join(s.cfg.DataDir, "files", h)
	if _, err := os.Stat(p); err == nil {
		return h, nil
	}
	return h, simstore.WriteFile(p, data, nil)
}

func (s *Server) readFile(sha string) ([]byte, error) {
	return os.ReadFile(filepath.Join(s.cfg.DataDir, "files", sha))
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
