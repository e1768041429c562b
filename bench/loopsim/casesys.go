package loopsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// CaseSystem answers the case-system REST calls the casesys sink and source
// make (schemas/casesys/openapi.yaml): token, case search and create,
// documents and journal notes by externalId, an always-empty outbox. It
// also takes the peer engine's letters on POST /peer/letters.
type CaseSystem struct {
	URL      string
	Letters  *Arrivals // hub letters, by letter id (from the Idempotency-Key)
	Files    *Digests  // the documents' files, by letter id
	Peer     *Arrivals // peer letters, by the X-Letter-Id header
	srv      *http.Server
	mu       sync.Mutex
	cases    map[string]string            // cpr -> case id
	parties  map[string]json.RawMessage   // case id -> primaryParty as created (the child's name with it)
	docs     map[string]map[string]string // case id -> externalId -> document id
	notes    map[string]map[string]string
	seq      int
	received int64
}

// StartCaseSystem listens on 127.0.0.1 at a random port.
func StartCaseSystem() (*CaseSystem, error) {
	s := &CaseSystem{Letters: newArrivals(), Files: newDigests(), Peer: newArrivals(), cases: map[string]string{}, parties: map[string]json.RawMessage{},
		docs: map[string]map[string]string{}, notes: map[string]map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth2/token", token)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, map[string]string{"status": "ok"}) })
	mux.HandleFunc("GET /outbox", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, map[string]any{"results": []any{}}) })
	mux.HandleFunc("POST /cases/search", s.search)
	mux.HandleFunc("POST /cases", s.createCase)
	mux.HandleFunc("GET /cases/{id}/documents", s.find(s.docs))
	mux.HandleFunc("GET /cases/{id}/journal-notes", s.find(s.notes))
	mux.HandleFunc("POST /cases/{id}/documents", s.addDocument)
	mux.HandleFunc("POST /cases/{id}/journal-notes", s.addNote)
	mux.HandleFunc("POST /peer/letters", s.peerLetter)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.URL = "http://" + ln.Addr().String()
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// Close stops the server.
func (s *CaseSystem) Close() error { return s.srv.Close() }

func token(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	writeJSON(w, 200, map[string]any{"access_token": "bench-token", "token_type": "Bearer", "expires_in": 3600, "scope": "cases.read cases.write"})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func (s *CaseSystem) search(w http.ResponseWriter, r *http.Request) {
	var q struct {
		CPR string `json:"cpr"`
	}
	_ = json.NewDecoder(r.Body).Decode(&q)
	s.mu.Lock()
	id, ok := s.cases[q.CPR]
	party := s.parties[id]
	s.mu.Unlock()
	res := []any{}
	if ok {
		// The child as the case was created: the sink then has no better
		// name to write back.
		res = append(res, map[string]any{"id": id, "status": "open", "version": 1, "primaryParty": party})
	}
	writeJSON(w, 200, map[string]any{"results": res})
}

func (s *CaseSystem) createCase(w http.ResponseWriter, r *http.Request) {
	var in struct {
		PrimaryParty json.RawMessage `json:"primaryParty"`
	}
	_ = json.NewDecoder(r.Body).Decode(&in)
	var p struct {
		CPR string `json:"cpr"`
	}
	_ = json.Unmarshal(in.PrimaryParty, &p)
	s.mu.Lock()
	id, ok := s.cases[p.CPR]
	if !ok {
		s.seq++
		id = fmt.Sprintf("SAG-%d", s.seq)
		s.cases[p.CPR] = id
		s.parties[id] = in.PrimaryParty
	}
	s.mu.Unlock()
	writeJSON(w, 201, map[string]string{"id": id, "status": "open"})
}

func (s *CaseSystem) find(index map[string]map[string]string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ext := r.URL.Query().Get("externalId")
		s.mu.Lock()
		id, ok := index[r.PathValue("id")][ext]
		s.mu.Unlock()
		res := []any{}
		if ok {
			res = append(res, map[string]any{"id": id, "externalId": ext, "createdAt": time.Now().UTC()})
		}
		writeJSON(w, 200, map[string]any{"results": res})
	}
}

// store records ext under the case and answers with the object's id.
func (s *CaseSystem) store(w http.ResponseWriter, index map[string]map[string]string, caseID, ext, prefix string) {
	s.mu.Lock()
	m := index[caseID]
	if m == nil {
		m = map[string]string{}
		index[caseID] = m
	}
	id, existed := m[ext]
	if !existed {
		s.seq++
		id = fmt.Sprintf("%s-%d", prefix, s.seq)
		m[ext] = id
	}
	s.mu.Unlock()
	status := 201
	if existed {
		status = 200
	}
	writeJSON(w, status, map[string]any{"id": id, "externalId": ext, "createdAt": time.Now().UTC()})
}

func (s *CaseSystem) addDocument(w http.ResponseWriter, r *http.Request) {
	_, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		http.Error(w, "multipart body expected", 400)
		return
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	var meta struct {
		ExternalID string `json:"externalId"`
	}
	var sums []string
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// A body cut short (the hub stopped sending): no document.
			http.Error(w, "multipart body unreadable", 400)
			return
		}
		if p.FormName() == "metadata" {
			_ = json.NewDecoder(p).Decode(&meta)
			continue
		}
		h := newHashing()
		if _, err := io.Copy(h, p); err != nil {
			http.Error(w, "multipart body unreadable", 400)
			return
		}
		sums = append(sums, h.sum())
	}
	if meta.ExternalID == "" {
		http.Error(w, "metadata.externalId missing", 400)
		return
	}
	s.store(w, s.docs, r.PathValue("id"), meta.ExternalID, "DOK")
	// Idempotency-Key is "samhub:<letter id>:<adapter>:add-document".
	if k := strings.TrimPrefix(r.Header.Get("Idempotency-Key"), "samhub:"); k != "" {
		if i := strings.LastIndex(k, ":"); i > 0 {
			if j := strings.LastIndex(k[:i], ":"); j > 0 {
				s.Files.Set(k[:j], sums)
				s.Letters.Mark(k[:j])
			}
		}
	}
}

func (s *CaseSystem) addNote(w http.ResponseWriter, r *http.Request) {
	var in struct {
		ExternalID string `json:"externalId"`
	}
	_ = json.NewDecoder(r.Body).Decode(&in)
	s.store(w, s.notes, r.PathValue("id"), in.ExternalID, "NOTAT")
}

func (s *CaseSystem) peerLetter(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	id := r.Header.Get("X-Letter-Id")
	if id == "" {
		http.Error(w, "X-Letter-Id header missing", 400)
		return
	}
	s.Peer.Mark(id)
	writeJSON(w, 201, map[string]string{"id": id})
}
