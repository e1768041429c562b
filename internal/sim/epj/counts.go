package epjsim

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
)

// Count is how often one idempotency key or external id was seen.
type Count struct {
	// Requests counts the creates that carried it, replays and refusals
	// included (in memory, since the simulator started).
	Requests int `json:"requests"`
	// Created counts what it made. For an idempotency key: creates answered
	// 201 (in memory). For an external id: the Communications stored with
	// it now (from the persisted state); 2 or more is a double delivery.
	Created int `json:"created"`
}

// Counts is what GET /_sim/counts shows. The idempotency key of a create
// is its If-None-Exist condition (FHIR's conditional create), or its
// Idempotency-Key header; its external ids are the Communication's
// identifiers as "system|value".
type Counts struct {
	IdempotencyKeys map[string]Count `json:"idempotencyKeys"`
	ExternalIDs     map[string]Count `json:"externalIds"`
	// Duplicates lists the external ids more than one stored Communication
	// carries, sorted: empty unless something was delivered twice.
	Duplicates []string `json:"duplicates"`
}

type counts struct {
	keys map[string]*Count
	ext  map[string]int
}

// peekCreate reads what a create carries, leaving the body readable for
// the handler.
func peekCreate(r *http.Request) (key string, ext []string) {
	key = r.Header.Get("If-None-Exist")
	if key != "" {
		if q, err := url.ParseQuery(key); err == nil && q.Get("identifier") != "" {
			key = q.Get("identifier")
		}
	} else {
		key = r.Header.Get("Idempotency-Key")
	}
	b, err := io.ReadAll(r.Body) // lifted: large attachments are in files
	r.Body = io.NopCloser(bytes.NewReader(b))
	if err != nil {
		return key, nil
	}
	var v view
	if json.Unmarshal(b, &v) == nil {
		for _, id := range v.Identifier {
			ext = append(ext, id.System+"|"+id.Value)
		}
	}
	return key, ext
}

// count records one create; callers hold s.mu.
func (s *Server) count(key string, ext []string, status int) {
	if s.counts.keys == nil {
		s.counts = counts{keys: map[string]*Count{}, ext: map[string]int{}}
	}
	if key != "" {
		c := s.counts.keys[key]
		if c == nil {
			c = &Count{}
			s.counts.keys[key] = c
		}
		c.Requests++
		if status == http.StatusCreated {
			c.Created++
		}
	}
	for _, e := range ext {
		s.counts.ext[e]++
	}
}

// Counts returns the creates seen per idempotency key and per external id
// and the Communications stored per external id.
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
	for _, rec := range s.st.ofType("Communication") {
		for _, id := range viewOf(rec).Identifier {
			e := id.System + "|" + id.Value
			c := out.ExternalIDs[e]
			c.Created++
			out.ExternalIDs[e] = c
		}
	}
	for e, c := range out.ExternalIDs {
		if c.Created > 1 {
			out.Duplicates = append(out.Duplicates, e)
		}
	}
	slices.Sort(out.Duplicates)
	return out
}

// Duplicates lists the external ids more than one stored Communication carries.
func (s *Server) Duplicates() []string { return s.Counts().Duplicates }
