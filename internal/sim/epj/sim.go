package epjsim

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// ---- fault switches ----

// FailNext makes the next n FHIR requests (not token requests) fail with
// status, e.g. 503 or 429, sending Retry-After when retryAfter > 0.
func (s *Server) FailNext(n, status int, retryAfter time.Duration) {
	s.FailNextOn("", n, status, retryAfter)
}

// FailNextOn is FailNext for requests to one path only, e.g. "/Communication".
func (s *Server) FailNextOn(path string, n, status int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.failPath, s.faults.failCount, s.faults.failStatus, s.faults.failRetryAfter = path, n, status, retryAfter
}

// SetDelay makes every FHIR request wait d before it is handled (0 = none).
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.delay = d
}

// DropNext makes the next n POST /Communication requests be fully handled
// (a create is saved) and then the connection closed without a response.
func (s *Server) DropNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.dropCount = n
}

// RejectTokens makes every bearer token be refused with 401 while on.
func (s *Server) RejectTokens(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.rejectTokens = on
}

// RevokeTokens forgets every issued token, as a gateway restart would.
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens = map[string]time.Time{}
}

// createRace is the RaceNextCreates fault: conditional creates that found
// no match meet here before any of them stores.
type createRace struct {
	want, arrived int
	met           chan struct{}
}

// raceWait bounds how long a create waits for the others of a race; one
// that waits in vain stores as usual.
const raceWait = 10 * time.Second

// RaceNextCreates makes the next n conditional creates (n ≥ 2) that find
// no match race, as requests arriving together do on HAPI FHIR: each has
// searched and found nothing before any stores. Since HAPI FHIR 6.6 a
// conditional create also writes its condition into a table with a unique
// index (HFJ_RES_SEARCH_URL), so the first to store wins (201) and the
// others fail that index and are answered 409 Conflict (HAPI's
// ResourceVersionConflictException) without storing; a later conditional
// create finds the winner (200). Earlier HAPI versions stored them all,
// after which every conditional create for it is answered 412.
func (s *Server) RaceNextCreates(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.race = nil
	if n >= 2 {
		s.faults.race = &createRace{want: n, met: make(chan struct{})}
	}
}

// SetLinkBase makes the simulator write base (e.g.
// "http://fhir-internal:8080/fhir") into its links (Bundle.link, fullUrl,
// Location) instead of the address a request came to, as a FHIR server
// behind a proxy does when its own idea of its address (HAPI FHIR's
// server_address) is not the one its clients use. "" restores the default.
// The server still serves only at the address it listens on.
func (s *Server) SetLinkBase(base string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.linkBase = strings.TrimRight(base, "/")
}

// ResetFaults turns every fault off.
func (s *Server) ResetFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = faults{}
}

// MakeAmbiguous stores one more Communication carrying the identifier
// urn:samhub:letter|letterID, so a conditional create for it matches more
// than once (412). With none stored yet it stores two.
func (s *Server) MakeAmbiguous(letterID string) error {
	_, err := s.store(func() (*record, error) {
		n := 0
		for _, rec := range s.st.ofType("Communication") {
			if matchToken(SystemLetter+"|"+letterID, viewOf(rec).Identifier) {
				n++
			}
		}
		var last *record
		for ; n < 2; n++ {
			body := map[string]any{
				"status":     "completed",
				"identifier": []any{map[string]string{"system": SystemLetter, "value": letterID}},
			}
			rec, err := s.st.add("Communication", body, time.Time{})
			if err != nil {
				return nil, err
			}
			last = rec
		}
		return last, nil
	})
	return err
}

// ---- seeding ----

// Patient is a patient to seed. Use MedCom's fictitious test persons only.
type Patient struct {
	CPR           string `json:"cpr,omitempty"`
	ReplacementID string `json:"replacementId,omitempty"` // X-eCPR
	GivenName     string `json:"givenName,omitempty"`
	FamilyName    string `json:"familyName,omitempty"`
	// GP is the child's general practitioner (Patient.generalPractitioner).
	GP *Organisation `json:"gp,omitempty"`
}

// Organisation names a party by SOR and GLN.
type Organisation struct {
	SOR  string `json:"sor,omitempty"`
	GLN  string `json:"gln,omitempty"`
	Name string `json:"name,omitempty"`
}

func (o Organisation) reference() map[string]any {
	ref := map[string]any{"display": o.Name}
	if o.SOR != "" {
		ref["identifier"] = map[string]string{"system": SystemSOR, "value": o.SOR}
	} else {
		ref["identifier"] = map[string]string{"system": SystemGLN, "value": o.GLN}
	}
	return ref
}

// SeedPatient stores a Patient and returns its id. Seeding the same CPR
// twice makes the patient search ambiguous.
func (s *Server) SeedPatient(p Patient) (string, error) {
	var ids []any
	if p.CPR != "" {
		ids = append(ids, map[string]string{"system": SystemCPR, "value": p.CPR})
	}
	if p.ReplacementID != "" {
		ids = append(ids, map[string]string{"use": "temp", "system": SystemXeCPR, "value": p.ReplacementID})
	}
	if ids == nil {
		return "", errors.New("epjsim: patient needs a cpr or a replacementId")
	}
	name := map[string]any{"use": "official", "family": p.FamilyName}
	if p.GivenName != "" {
		name["given"] = strings.Fields(p.GivenName)
	}
	body := map[string]any{"identifier": ids, "name": []any{name}}
	if p.GP != nil {
		body["generalPractitioner"] = []any{p.GP.reference()}
	}
	rec, err := s.store(func() (*record, error) { return s.st.add("Patient", body, time.Time{}) })
	if err != nil {
		return "", err
	}
	return rec.ID, nil
}

// Note is an outgoing note from child psychiatry to seed into the feed.
type Note struct {
	// Type is "Communication" or "DocumentReference".
	Type         string `json:"type"`
	PatientCPR   string `json:"patientCpr"`   // a seeded patient's CPR or replacement id
	RecipientSOR string `json:"recipientSor"` // the municipality
	SenderSOR    string `json:"senderSor"`    // the region's department
	SenderName   string `json:"senderName,omitempty"`
	Discharge    bool   `json:"discharge,omitempty"` // DocumentReference typed as a discharge summary
	Text         string `json:"text,omitempty"`
	Attachments  []File `json:"attachments,omitempty"`
	InReplyTo    string `json:"inReplyTo,omitempty"` // a Samhub letter id this answers
	// AlsoTo are further recipients (Communication.recipient,
	// DocumentReference.context.related), e.g. the child's GP.
	AlsoTo      []Organisation `json:"alsoTo,omitempty"`
	LastUpdated time.Time      `json:"lastUpdated,omitempty"` // zero = now; equal values make ties
}

// File is an attachment of a seeded note.
type File struct {
	Title       string `json:"title"`
	ContentType string `json:"contentType"`
	Data        []byte `json:"data"`
}

// SeedNote stores a note and returns its reference, e.g. "Communication/7".
func (s *Server) SeedNote(n Note) (string, error) {
	if n.Type != "Communication" && n.Type != "DocumentReference" {
		return "", fmt.Errorf("epjsim: note type must be Communication or DocumentReference, not %q", n.Type)
	}
	if n.RecipientSOR == "" || n.SenderSOR == "" {
		return "", errors.New("epjsim: note needs recipientSor and senderSor")
	}
	s.mu.Lock()
	patientID := ""
	for _, rec := range s.st.ofType("Patient") {
		v := viewOf(rec)
		if matchToken(SystemCPR+"|"+n.PatientCPR, v.Identifier) || matchToken(SystemXeCPR+"|"+n.PatientCPR, v.Identifier) {
			patientID = rec.ID
			break
		}
	}
	s.mu.Unlock()
	if patientID == "" {
		return "", errors.New("epjsim: note's patient is not seeded")
	}
	org := map[string]any{
		"resourceType": "Organization",
		"id":           "sender",
		"identifier":   []any{map[string]string{"system": SystemSOR, "value": n.SenderSOR}},
		"name":         n.SenderName,
	}
	senderRef := map[string]any{"reference": "#sender", "identifier": map[string]string{"system": SystemSOR, "value": n.SenderSOR}}
	recipientRef := map[string]any{"identifier": map[string]string{"system": SystemSOR, "value": n.RecipientSOR}}
	recipients := []any{recipientRef}
	for _, o := range n.AlsoTo {
		recipients = append(recipients, o.reference())
	}
	var attachments []any
	for _, f := range n.Attachments {
		attachments = append(attachments, map[string]any{
			"contentType": f.ContentType,
			"title":       f.Title,
			"data":        base64.StdEncoding.EncodeToString(f.Data),
			"size":        len(f.Data),
		})
	}
	at := n.LastUpdated
	if at.IsZero() {
		at = time.Now()
	}
	var body map[string]any
	if n.Type == "Communication" {
		var payload []any
		if n.Text != "" {
			payload = append(payload, map[string]any{"contentString": n.Text})
		}
		for _, a := range attachments {
			payload = append(payload, map[string]any{"contentAttachment": a})
		}
		body = map[string]any{
			"contained": []any{org},
			"status":    "completed",
			"subject":   map[string]string{"reference": "Patient/" + patientID},
			"sent":      at.UTC().Format(time.RFC3339),
			"sender":    senderRef,
			"recipient": recipients,
			"payload":   payload,
		}
		if n.InReplyTo != "" {
			body["inResponseTo"] = []any{map[string]any{"identifier": map[string]string{"system": SystemLetter, "value": n.InReplyTo}}}
		}
	} else {
		code, display := "11488-4", "Consult note"
		if n.Discharge {
			code, display = "18842-5", "Discharge summary"
		}
		var content []any
		for _, a := range attachments {
			content = append(content, map[string]any{"attachment": a})
		}
		if content == nil {
			// DocumentReference.content is 1..*: a note without files still
			// carries its text as a plain-text attachment.
			content = append(content, map[string]any{"attachment": map[string]any{
				"contentType": "text/plain; charset=utf-8",
				"data":        base64.StdEncoding.EncodeToString([]byte(n.Text)),
			}})
		}
		body = map[string]any{
			"contained":   []any{org},
			"status":      "current",
			"type":        map[string]any{"coding": []any{map[string]string{"system": "http://loinc.org", "code": code, "display": display}}},
			"subject":     map[string]string{"reference": "Patient/" + patientID},
			"date":        at.UTC().Format(time.RFC3339),
			"author":      []any{senderRef},
			"description": n.Text,
			"content":     content,
			"context":     map[string]any{"related": recipients},
		}
	}
	rec, err := s.store(func() (*record, error) { return s.st.add(n.Type, body, at) })
	if err != nil {
		return "", err
	}
	return rec.Type + "/" + rec.ID, nil
}

// SeedResource stores a resource given as JSON (a fixture) as typ, with
// id and meta assigned by the simulator, and returns its reference.
func (s *Server) SeedResource(typ string, body []byte, lastUpdated time.Time) (string, error) {
	m, err := decodeObject(body)
	if err != nil {
		return "", fmt.Errorf("epjsim: seed %s: %w", typ, err)
	}
	if rt, _ := m["resourceType"].(string); rt != typ {
		return "", fmt.Errorf("epjsim: seed %s: resourceType is %q", typ, rt)
	}
	rec, err := s.store(func() (*record, error) { return s.st.add(typ, m, lastUpdated) })
	if err != nil {
		return "", err
	}
	return rec.Type + "/" + rec.ID, nil
}

// ---- inspection ----

// Requests returns every FHIR and token request received so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// TokensIssued counts access tokens handed out.
func (s *Server) TokensIssued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issued
}

// Communications returns the stored Communication resources, oldest first.
func (s *Server) Communications() []json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []json.RawMessage
	for _, rec := range s.st.ofType("Communication") {
		out = append(out, s.inlined(rec.JSON))
	}
	return out
}

// CommunicationsFor returns the stored Communications carrying letterID.
func (s *Server) CommunicationsFor(letterID string) []json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []json.RawMessage
	for _, rec := range s.st.ofType("Communication") {
		if matchToken(SystemLetter+"|"+letterID, viewOf(rec).Identifier) {
			out = append(out, s.inlined(rec.JSON))
		}
	}
	return out
}

// ---- the same over HTTP, for the demo and other processes ----

func (s *Server) simRoutes(m *http.ServeMux) {
	m.HandleFunc("POST /_sim/fail", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Path       string `json:"path"`
			Count      int    `json:"count"`
			Status     int    `json:"status"`
			RetryAfter string `json:"retry_after"`
		}
		if !readSim(w, r, &in) {
			return
		}
		after, err := parseDur(in.RetryAfter)
		if err != nil || in.Status < 400 || in.Status > 599 {
			simError(w, "want {count, status 4xx/5xx, retry_after like \"2s\", optional path}")
			return
		}
		s.FailNextOn(in.Path, in.Count, in.Status, after)
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
	m.HandleFunc("POST /_sim/revoke-tokens", func(w http.ResponseWriter, r *http.Request) {
		s.RevokeTokens()
		w.WriteHeader(http.StatusNoContent)
	})
	m.HandleFunc("POST /_sim/reset", func(w http.ResponseWriter, r *http.Request) {
		s.ResetFaults()
		w.WriteHeader(http.StatusNoContent)
	})
	m.HandleFunc("POST /_sim/ambiguous", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			LetterID string `json:"letter_id"`
		}
		if !readSim(w, r, &in) {
			return
		}
		if in.LetterID == "" {
			simError(w, "want {letter_id}")
			return
		}
		if err := s.MakeAmbiguous(in.LetterID); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	m.HandleFunc("POST /_sim/race", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Count int `json:"count"`
		}
		if !readSim(w, r, &in) {
			return
		}
		if in.Count < 2 {
			simError(w, "want {count ≥ 2}")
			return
		}
		s.RaceNextCreates(in.Count)
		w.WriteHeader(http.StatusNoContent)
	})
	m.HandleFunc("POST /_sim/link-base", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Base string `json:"base"`
		}
		if !readSim(w, r, &in) {
			return
		}
		s.SetLinkBase(in.Base)
		w.WriteHeader(http.StatusNoContent)
	})
	m.HandleFunc("POST /_sim/patients", func(w http.ResponseWriter, r *http.Request) {
		var in Patient
		if !readSim(w, r, &in) {
			return
		}
		id, err := s.SeedPatient(in)
		if err != nil {
			simError(w, err.Error())
			return
		}
		writeJSON(w, http.StatusCreated, "application/json", map[string]string{"id": id})
	})
	m.HandleFunc("POST /_sim/notes", func(w http.ResponseWriter, r *http.Request) {
		var in Note
		if !readSim(w, r, &in) {
			return
		}
		ref, err := s.SeedNote(in)
		if err != nil {
			simError(w, err.Error())
			return
		}
		writeJSON(w, http.StatusCreated, "application/json", map[string]string{"reference": ref})
	})
	m.HandleFunc("GET /_sim/requests", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, "application/json", s.Requests())
	})
	m.HandleFunc("GET /_sim/communications", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, "application/json", s.Communications())
	})
	m.HandleFunc("GET /_sim/counts", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, "application/json", s.Counts())
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

func simError(w http.ResponseWriter, msg string) {
	http.Error(w, msg, http.StatusBadRequest)
}

func parseDur(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	return time.ParseDuration(s)
}
