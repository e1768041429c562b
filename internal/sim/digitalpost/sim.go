package digitalpostsim

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Count is what one messageUUID came to.
type Count struct {
	// Requests counts the kombi requests that carried it, repeats and
	// refusals after parsing included (in memory, since the simulator
	// started).
	Requests int `json:"requests"`
	// Stored is 1 when a message is stored under it (from the persisted
	// state): a UUID is never a second letter.
	Stored int `json:"stored"`
	// Repeats counts later requests with the same UUID (persisted).
	Repeats int `json:"repeats"`
	// Conflicts counts requests that used it for another message.
	Conflicts int `json:"conflicts"`
}

// Counts is what GET /_sim/counts shows.
type Counts struct {
	Messages map[string]Count `json:"messages"`
	// Conflicts lists the UUIDs sent for two different messages, sorted:
	// empty unless a sender reuses a UUID (two recipients, one UUID).
	Conflicts []string `json:"conflicts"`
}

// Counts reports requests, stored messages and repeats per messageUUID.
func (s *Server) Counts() Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := Counts{Messages: map[string]Count{}, Conflicts: []string{}}
	for id, c := range s.counts {
		out.Messages[id] = *c
		if c.Conflicts > 0 {
			out.Conflicts = append(out.Conflicts, id)
		}
	}
	for id, m := range s.st.Messages {
		c := out.Messages[id]
		c.Stored, c.Repeats = 1, m.Repeats
		out.Messages[id] = c
	}
	slices.Sort(out.Conflicts)
	return out
}

// Messages lists the stored messages in the order received.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, 0, len(s.st.Order))
	for _, id := range s.st.Order {
		out = append(out, *s.st.Messages[id])
	}
	return out
}

// Message returns the message stored under uuid.
func (s *Server) Message(uuid string) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.st.Messages[strings.ToLower(uuid)]
	if !ok {
		return Message{}, false
	}
	return *m, true
}

// MessagesFor lists the stored messages to the citizen with cpr.
func (s *Server) MessagesFor(cpr string) []Message {
	var out []Message
	for _, m := range s.Messages() {
		if m.RecipientCPR == cpr {
			out = append(out, m)
		}
	}
	return out
}

// Text returns the content of a message's main document when it is text
// (text/plain or text/html), else "".
func (s *Server) Text(m Message) string {
	if len(m.MainDocument) == 0 || !strings.HasPrefix(m.MainDocument[0].EncodingFormat, "text/") {
		return ""
	}
	b, err := s.FileData(m.MainDocument[0].SHA256)
	if err != nil {
		return ""
	}
	return string(b)
}

// Requests lists the requests answered so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// FailNext makes the next n kombi requests fail with status (a 5xx: the
// service is unavailable; 429: throttled), with Retry-After when after > 0.
func (s *Server) FailNext(n, status int, after time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.failCount, s.faults.failStatus, s.faults.retryAfter = n, status, after
}

// RefuseNext makes the next n kombi requests be refused with code and
// status (400 when 0), whatever they carry.
func (s *Server) RefuseNext(n int, code string, status int) {
	if status == 0 {
		status = http.StatusBadRequest
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.refuseCount, s.faults.refuseCode, s.faults.refuseHTTP = n, code, status
}

// SetDelay makes every kombi request wait d before it is handled (slow).
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.delay = d
}

// DropNext stores the next n messages and then drops the connection
// instead of answering (a reply lost after the service took the message).
func (s *Server) DropNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.dropCount = n
}

// RejectTokens makes the service refuse every token while on.
func (s *Server) RejectTokens(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.rejectTok = on
}

// RevokeTokens forgets every token issued (as a restart would).
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens = map[string]token{}
}

// ResetFaults turns every fault off.
func (s *Server) ResetFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = faults{}
}

// MessageView is a message with its documents' content, for GET
// /_sim/messages/{uuid}: text as text, other files in base64.
type MessageView struct {
	Message
	Documents [][]FileView `json:"documents"`
}

// FileView is one file with its content.
type FileView struct {
	File
	Text    string `json:"text,omitempty"`
	Content []byte `json:"content,omitempty"`
}

func (s *Server) view(m Message) MessageView {
	v := MessageView{Message: m}
	for _, doc := range append([][]File{m.MainDocument}, m.Additional...) {
		var fs []FileView
		for _, f := range doc {
			fv := FileView{File: f}
			if b, err := s.FileData(f.SHA256); err == nil {
				if strings.HasPrefix(f.EncodingFormat, "text/") {
					fv.Text = string(b)
				} else {
					fv.Content = b
				}
			}
			fs = append(fs, fv)
		}
		v.Documents = append(v.Documents, fs)
	}
	return v
}

func (s *Server) simRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /_sim/messages", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"results": s.Messages()})
	})
	m.HandleFunc("GET /_sim/messages/{uuid}", func(w http.ResponseWriter, r *http.Request) {
		msg, ok := s.Message(r.PathValue("uuid"))
		if !ok {
			http.Error(w, "no message with this UUID", http.StatusNotFound)
			return
		}
		writeJSON(w, http.StatusOK, s.view(msg))
	})
	m.HandleFunc("GET /_sim/requests", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Requests())
	})
	m.HandleFunc("GET /_sim/counts", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Counts())
	})
	m.HandleFunc("POST /_sim/exempt", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			CPR    string `json:"cpr"`
			Exempt bool   `json:"exempt"`
		}
		if !readSim(w, r, &in) {
			return
		}
		if !cprPattern.MatchString(in.CPR) {
			simError(w, "want {cpr: 10 digits, exempt: true|false}")
			return
		}
		s.SetExempt(in.CPR, in.Exempt)
		w.WriteHeader(http.StatusNoContent)
	})
	m.HandleFunc("POST /_sim/fail", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Count      int    `json:"count"`
			Status     int    `json:"status"`
			RetryAfter string `json:"retry_after"`
		}
		if !readSim(w, r, &in) {
			return
		}
		after, err := parseDur(in.RetryAfter)
		if err != nil || in.Status < 400 || in.Status > 599 {
			simError(w, "want {count, status 4xx/5xx, retry_after like \"2s\"}")
			return
		}
		s.FailNext(in.Count, in.Status, after)
		w.WriteHeader(http.StatusNoContent)
	})
	m.HandleFunc("POST /_sim/refuse", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Count  int    `json:"count"`
			Code   string `json:"code"`
			Status int    `json:"status"`
		}
		if !readSim(w, r, &in) {
			return
		}
		if in.Code == "" || (in.Status != 0 && (in.Status < 400 || in.Status > 499)) {
			simError(w, "want {count, code, optional status 4xx}")
			return
		}
		s.RefuseNext(in.Count, in.Code, in.Status)
		w.WriteHeader(http.StatusNoContent)
	})
	m.HandleFunc("POST /_sim/delay", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Delay string `json:"delay"`
		}
		if !readSim(w, r, &in) {
			return
		}
		d, err := parseDur(in.Delay)
		if err != nil {
			simError(w, "want {delay like \"1s\"}")
			return
		}
		s.SetDelay(d)
		w.WriteHeader(http.StatusNoContent)
	})
	m.HandleFunc("POST /_sim/drop", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Count int `json:"count"`
		}
		if !readSim(w, r, &in) {
			return
		}
		s.DropNext(in.Count)
		w.WriteHeader(http.StatusNoContent)
	})
	m.HandleFunc("POST /_sim/reject-tokens", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			On bool `json:"on"`
		}
		if !readSim(w, r, &in) {
			return
		}
		s.RejectTokens(in.On)
		w.WriteHeader(http.StatusNoContent)
	})
	m.HandleFunc("POST /_sim/reset", func(w http.ResponseWriter, r *http.Request) {
		s.ResetFaults()
		w.WriteHeader(http.StatusNoContent)
	})
}

func readSim(w http.ResponseWriter, r *http.Request, v any) bool {
	if r.ContentLength == 0 {
		return true
	}
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		simError(w, "body must be JSON: "+err.Error())
		return false
	}
	return true
}

func simError(w http.ResponseWriter, msg string) { http.Error(w, msg, http.StatusBadRequest) }

func parseDur(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	return time.ParseDuration(s)
}
