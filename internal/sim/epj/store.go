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
	"time"
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

// state is everything the simulator persists; it is small, so the whole of
// it is rewritten on each change.
type state struct {
	NextID  int       `json:"nextId"`
	Records []*record `json:"records"`
}

const stateFile = "epj-sim.json"

func loadState(dir string) (*state, error) {
	st := &state{NextID: 1}
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("epjsim: %s: %w", stateFile, err)
	}
	return st, nil
}

// save writes atomically (temp file + rename) so a crashed process never
// leaves half a file. It does not fsync: a simulator need not survive a
// power cut, and tests seed many resources.
func (st *state) save(dir string) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, stateFile+".*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, stateFile))
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
