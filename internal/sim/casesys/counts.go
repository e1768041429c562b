package casesyssim

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	"slices"
)

// Mode is how faithfully the simulator imitates a real case system.
type Mode struct {
	// IgnoreIdempotencyKeys: see Config.IgnoreIdempotencyKeys.
	IgnoreIdempotencyKeys bool `json:"ignoreIdempotencyKeys"`
	// UniqueExternalIDs: see Config.UniqueExternalIDs.
	UniqueExternalIDs bool `json:"uniqueExternalIds"`
}

// SetMode switches the idempotency behaviour of a running simulator.
func (s *Server) SetMode(m Mode) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mode = m
}

// CurrentMode returns the idempotency behaviour in force.
func (s *Server) CurrentMode() Mode {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mode
}

// uniqueExternalIDs reports the natural-key guard; callers hold s.mu.
func (s *Server) uniqueExternalIDs() bool { return s.mode.UniqueExternalIDs }

// counts tallies write requests per Idempotency-Key and per externalId
// since the simulator started.
type counts struct {
	keys map[string]*Count
	ext  map[string]int
}

func newCounts() counts { return counts{keys: map[string]*Count{}, ext: map[string]int{}} }

// add counts one write request; callers hold s.mu.
func (c *counts) add(key, ext string, created bool) {
	if key != "" {
		k := c.keys[key]
		if k == nil {
			k = &Count{}
			c.keys[key] = k
		}
		k.Requests++
		if created {
			k.Created++
		}
	}
	if ext != "" {
		c.ext[ext]++
	}
}

// externalIDOf reads the externalId a write request names: the JSON
// body's externalId, or the metadata part's of a multipart upload.
func externalIDOf(contentType string, body []byte) string {
	var v struct {
		ExternalID string `json:"externalId"`
	}
	mt, params, _ := mime.ParseMediaType(contentType)
	switch mt {
	case "application/json":
		_ = json.Unmarshal(body, &v)
	case "multipart/form-data":
		mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
		for {
			p, err := mr.NextPart()
			if err != nil {
				break
			}
			if p.FormName() == "metadata" {
				b, _ := io.ReadAll(io.LimitReader(p, 1<<20))
				_ = json.Unmarshal(b, &v)
				break
			}
		}
	}
	if len(v.ExternalID) > 512 {
		return ""
	}
	return v.ExternalID
}

// Counts returns the write requests seen per Idempotency-Key and per
// externalId, and the objects stored per externalId. A letter delivered
// twice shows as an externalId with Created 2, or, when the hub searched
// first as it should, as a key or externalId with more requests than
// objects.
func (s *Server) Counts() Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := Counts{IdempotencyKeys: map[string]Count{}, ExternalIDs: map[string]Count{}, Duplicates: []string{}}
	for k, c := range s.counts.keys {
		out.IdempotencyKeys[k] = *c
	}
	for e, n := range s.counts.ext {
		out.ExternalIDs[e] = Count{Requests: n}
	}
	stored := func(ext string) {
		if ext == "" {
			return
		}
		c := out.ExternalIDs[ext]
		c.Created++
		out.ExternalIDs[ext] = c
	}
	for _, c := range s.st.Cases {
		stored(c.ExternalID)
	}
	for _, d := range s.st.Documents {
		stored(d.ExternalID)
	}
	for _, n := range s.st.Notes {
		stored(n.ExternalID)
	}
	for e, c := range out.ExternalIDs {
		if c.Created > 1 {
			out.Duplicates = append(out.Duplicates, e)
		}
	}
	slices.Sort(out.Duplicates)
	return out
}

// Duplicates lists the externalIds more than one stored object carries.
func (s *Server) Duplicates() []string { return s.Counts().Duplicates }
