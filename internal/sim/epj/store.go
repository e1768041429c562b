package epjsim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/samhub/samhub/internal/sim/simstore"
)

// record is one stored resource version. JSON holds the full resource as
// the server returns it, id and meta included.
type record struct {
	Type        string          `json:"type"`
	ID          string          `json:"id"`
	Version     int             `json:"version"`
	LastUpdated time.Time       `json:"lastUpdated"`
	JSON        json.RawMessage `json:"json"`
}

// state is everything the simulator keeps. Resources are never changed
// once stored, so each is a file of its own under records/, written once
// when it is new: a save costs the same at the ten-thousandth letter as at
// the first (it used to rewrite every resource, attachments included, on
// each change). A state written whole by earlier versions
// (epj-sim.json) is read at start and left as it is.
type state struct {
	NextID  int       `json:"nextId"`
	Records []*record `json:"records"`
	// saved counts the records, from the first, that are on disk.
	saved int
	// blobsRenamed: an attachment file was put in blobs/ (liftValue) since
	// the last save, whose directory that save must sync.
	blobsRenamed atomic.Bool
}

const (
	legacyFile = "epj-sim.json"
	recordsDir = "records"
)

func loadState(dir string) (*state, error) {
	st := &state{NextID: 1}
	b, err := os.ReadFile(filepath.Join(dir, legacyFile))
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, err
	default:
		if err := json.Unmarshal(b, st); err != nil {
			return nil, fmt.Errorf("epjsim: %s: %w", legacyFile, err)
		}
	}
	have := map[string]bool{}
	for _, r := range st.Records {
		have[r.Type+"/"+r.ID] = true
	}
	ents, err := os.ReadDir(filepath.Join(dir, recordsDir))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") || strings.HasPrefix(e.Name(), ".") {
			continue // a temp file a crash left
		}
		b, err := os.ReadFile(filepath.Join(dir, recordsDir, e.Name()))
		if err != nil {
			return nil, err
		}
		r := &record{}
		if err := json.Unmarshal(b, r); err != nil || r.Type == "" || r.ID == "" {
			return nil, fmt.Errorf("epjsim: %s/%s: not a stored resource: %v", recordsDir, e.Name(), err)
		}
		if !have[r.Type+"/"+r.ID] {
			have[r.Type+"/"+r.ID] = true
			st.Records = append(st.Records, r)
		}
	}
	// Creation order, which the numeric ids are.
	sort.SliceStable(st.Records, func(i, j int) bool { return numericID(st.Records[i]) < numericID(st.Records[j]) })
	for _, r := range st.Records {
		st.NextID = max(st.NextID, numericID(r)+1)
	}
	st.saved = len(st.Records)
	return st, nil
}

func numericID(r *record) int {
	n, _ := strconv.Atoi(r.ID)
	return n
}

// saving is one save: the records added since the last, as bytes.
type saving struct {
	st        *state
	dir       string
	upTo      int
	files     []pendingFile
	syncBlobs bool
}

type pendingFile struct {
	path string
	data []byte
}

// prepare takes the records not yet on disk; the caller holds s.mu.
func (st *state) prepare(dir string) (*saving, error) {
	// An attachment is renamed into blobs/ before the record naming it is
	// added, so a record taken here has its blob's flag set already.
	sv := &saving{st: st, dir: dir, upTo: len(st.Records), syncBlobs: st.blobsRenamed.Swap(false)}
	for _, r := range st.Records[st.saved:] {
		b, err := json.Marshal(r)
		if err != nil {
			return nil, err
		}
		sv.files = append(sv.files, pendingFile{filepath.Join(dir, recordsDir, r.Type+"-"+r.ID+".json"), b})
	}
	return sv, nil
}

// Write puts each new record in place, synced, then syncs its directory
// and, when an attachment was put there, the blobs directory, whose files
// the records name.
func (sv *saving) Write() error {
	dirs := map[string]bool{}
	for _, f := range sv.files {
		if err := simstore.WriteFile(f.path, f.data, dirs); err != nil {
			return err
		}
	}
	if sv.syncBlobs {
		dirs[filepath.Join(sv.dir, blobsDir)] = true
	}
	return simstore.SyncDirs(dirs)
}

// Done records what is on disk; after a failure the next save writes the
// same records, and syncs blobs/, again. The caller holds s.mu.
func (sv *saving) Done(err error) {
	if err != nil {
		if sv.syncBlobs {
			sv.st.blobsRenamed.Store(true)
		}
		return
	}
	sv.st.saved = max(sv.st.saved, sv.upTo)
}

// add stores body as a new resource of type typ, assigning id, versionId
// and lastUpdated (at, or now when zero).
func (st *state) add(typ string, body map[string]any, at time.Time) (*record, error) {
	if at.IsZero() {
		at = time.Now()
	}
	at = at.UTC().Truncate(time.Millisecond)
	id := strconv.Itoa(st.NextID)
	st.NextID++
	body["resourceType"] = typ
	body["id"] = id
	body["meta"] = map[string]any{"versionId": "1", "lastUpdated": at.Format(time.RFC3339Nano)}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	rec := &record{Type: typ, ID: id, Version: 1, LastUpdated: at, JSON: b}
	st.Records = append(st.Records, rec)
	return rec, nil
}

func (st *state) get(typ, id string) *record {
	for _, r := range st.Records {
		if r.Type == typ && r.ID == id {
			return r
		}
	}
	return nil
}

// ofType returns the records of typ sorted by lastUpdated, then numeric id,
// the order the feed is served in.
func (st *state) ofType(typ string) []*record {
	var out []*record
	for _, r := range st.Records {
		if r.Type == typ {
			out = append(out, r)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].LastUpdated.Equal(out[j].LastUpdated) {
			return out[i].LastUpdated.Before(out[j].LastUpdated)
		}
		a, _ := strconv.Atoi(out[i].ID)
		b, _ := strconv.Atoi(out[j].ID)
		return a < b
	})
	return out
}

// decodeObject reads a JSON object keeping numbers exact.
func decodeObject(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("not a JSON object")
	}
	return m, nil
}

// view is the part of a resource the simulator searches on. It is its own
// small type rather than the adapter's, so a wrong JSON name on either side
// shows up in tests.
type view struct {
	ResourceType string  `json:"resourceType"`
	Status       string  `json:"status"`
	Identifier   []ident `json:"identifier"`
	Subject      *ref    `json:"subject"`
	Recipient    []ref   `json:"recipient"`
	Context      *struct {
		Related []ref `json:"related"`
	} `json:"context"`
}

type ident struct {
	System string `json:"system"`
	Value  string `json:"value"`
}

type ref struct {
	Reference  string `json:"reference"`
	Identifier *ident `json:"identifier"`
}

func viewOf(r *record) view {
	var v view
	_ = json.Unmarshal(r.JSON, &v) // stored JSON was produced by this package
	return v
}

// matchToken matches "system|value", "|value" or "value" against ids.
func matchToken(token string, ids []ident) bool {
	sys, val, hasSys := cut(token)
	for _, id := range ids {
		if val != id.Value {
			continue
		}
		if !hasSys || sys == id.System {
			return true
		}
	}
	return false
}

func cut(token string) (sys, val string, hasSys bool) {
	for i := 0; i < len(token); i++ {
		if token[i] == '|' {
			return token[:i], token[i+1:], true
		}
	}
	return "", token, false
}
