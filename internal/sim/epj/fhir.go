package epjsim

import (
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// FHIR identifier systems the simulator knows.
const (
	SystemCPR    = "urn:oid:1.2.208.176.1.2"
	SystemXeCPR  = "urn:oid:1.2.208.176.1.6.1.1"
	SystemSOR    = "urn:oid:1.2.208.176.1.1"
	SystemGLN    = "https://www.gs1.org/gln"
	SystemLetter = "urn:samhub:letter"
)

const fhirJSON = "application/fhir+json; fhirVersion=4.0"

func writeJSON(w http.ResponseWriter, status int, ctype string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"resourceType":"OperationOutcome"}`)
	}
	w.Header().Set("Content-Type", ctype)
	w.WriteHeader(status)
	w.Write(b)
}

// writeOutcome answers with an OperationOutcome. diagnostics may echo input,
// as real servers' do; the adapter must never pass it on.
func writeOutcome(w http.ResponseWriter, status int, code, expression, diagnostics string) {
	issue := map[string]any{"severity": "error", "code": code}
	if expression != "" {
		issue["expression"] = []string{expression}
	}
	if diagnostics != "" {
		issue["diagnostics"] = diagnostics
	}
	writeJSON(w, status, fhirJSON, map[string]any{"resourceType": "OperationOutcome", "issue": []any{issue}})
}

// baseURL is where the simulator's links point: the address the request
// came to, unless SetLinkBase named another.
func (s *Server) baseURL(r *http.Request) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.linkBase != "" {
		return s.linkBase
	}
	return "http://" + r.Host
}

func (s *Server) handleMetadata(w http.ResponseWriter, r *http.Request) {
	res := func(typ string, interactions []string, params ...string) map[string]any {
		var in []map[string]string
		for _, i := range interactions {
			in = append(in, map[string]string{"code": i})
		}
		var sp []map[string]string
		for _, p := range params {
			sp = append(sp, map[string]string{"name": p, "type": "token"})
		}
		m := map[string]any{"type": typ, "interaction": in}
		if sp != nil {
			m["searchParam"] = sp
		}
		if typ == "Communication" {
			m["conditionalCreate"] = true
		}
		return m
	}
	writeJSON(w, http.StatusOK, fhirJSON, map[string]any{
		"resourceType": "CapabilityStatement",
		"status":       "active",
		"date":         "2025-01-01",
		"kind":         "instance",
		"fhirVersion":  "4.0.1",
		"format":       []string{"application/fhir+json"},
		"rest": []any{map[string]any{
			"mode": "server",
			"resource": []any{
				res("Patient", []string{"read", "search-type"}, "identifier"),
				res("Communication", []string{"create", "read", "search-type"}, "identifier", "recipient", "_lastUpdated"),
				res("DocumentReference", []string{"read", "search-type"}, "related", "_lastUpdated"),
			},
		}},
	})
}

// handlePatientSearch is POST /Patient/_search with a form body, the way to
// search without putting the CPR in a URL.
func (s *Server) handlePatientSearch(w http.ResponseWriter, r *http.Request) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "application/x-www-form-urlencoded" {
		writeOutcome(w, http.StatusBadRequest, "structure", "", "search parameters must be sent as application/x-www-form-urlencoded")
		return
	}
	if err := r.ParseForm(); err != nil {
		writeOutcome(w, http.StatusBadRequest, "structure", "", "form body could not be read")
		return
	}
	token := r.PostForm.Get("identifier")
	if token == "" {
		writeOutcome(w, http.StatusBadRequest, "required", "Patient.identifier", "identifier parameter is required")
		return
	}
	sys, val, _ := cut(token)
	if sys == SystemCPR && !validCPR(val) {
		// Echoing the value is what many servers do; it is here so tests can
		// check the adapter never passes diagnostics on.
		writeOutcome(w, http.StatusBadRequest, "value", "Patient.identifier", "invalid CPR number "+val)
		return
	}
	s.mu.Lock()
	var hits []*record
	for _, rec := range s.st.ofType("Patient") {
		if matchToken(token, viewOf(rec).Identifier) {
			hits = append(hits, rec)
		}
	}
	s.mu.Unlock()
	s.writeBundle(w, r, hits, len(hits), "")
}

// validCPR checks the form only (DDMMYY + four digits); modulus 11 is not
// required since 2007 and MedCom's test persons fail it.
func validCPR(v string) bool {
	if len(v) != 10 {
		return false
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return false
		}
	}
	_, err := time.Parse("020106", v[:6])
	return err == nil
}

func (s *Server) writeBundle(w http.ResponseWriter, r *http.Request, recs []*record, total int, next string) {
	entries := []any{}
	for _, rec := range recs {
		entries = append(entries, map[string]any{
			"fullUrl":  s.baseURL(r) + "/" + rec.Type + "/" + rec.ID,
			"resource": json.RawMessage(s.inlined(rec.JSON)),
			"search":   map[string]string{"mode": "match"},
		})
	}
	links := []any{map[string]string{"relation": "self", "url": s.baseURL(r) + r.URL.RequestURI()}}
	if next != "" {
		links = append(links, map[string]string{"relation": "next", "url": next})
	}
	writeJSON(w, http.StatusOK, fhirJSON, map[string]any{
		"resourceType": "Bundle",
		"type":         "searchset",
		"total":        total,
		"link":         links,
		"entry":        entries,
	})
}

func (s *Server) handleRead(typ string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		rec := s.st.get(typ, r.PathValue("id"))
		s.mu.Unlock()
		if rec == nil {
			writeOutcome(w, http.StatusNotFound, "not-found", "", typ+" not found")
			return
		}
		s.writeResource(w, http.StatusOK, rec)
	}
}

func (s *Server) writeResource(w http.ResponseWriter, status int, rec *record) {
	w.Header().Set("ETag", `W/"`+strconv.Itoa(rec.Version)+`"`)
	w.Header().Set("Last-Modified", rec.LastUpdated.Format(http.TimeFormat))
	w.Header().Set("Content-Type", fhirJSON)
	w.WriteHeader(status)
	s.inline(w, rec.JSON)
}

// handleCreateCommunication is create, conditional when If-None-Exist is
// sent (FHIR R4 http.html#ccreate): no match creates (201), one match
// returns it (200), several matches fail (412), and the loser of a race
// (RaceNextCreates) fails with 409.
func (s *Server) handleCreateCommunication(w http.ResponseWriter, r *http.Request) {
	// Large attachments were lifted out of the body as it came in (ServeHTTP).
	b, err := io.ReadAll(r.Body)
	if err != nil {
		writeOutcome(w, http.StatusBadRequest, "structure", "", "body could not be read")
		return
	}
	body, err := decodeObject(b)
	if err != nil {
		writeOutcome(w, http.StatusBadRequest, "structure", "", "body is not a JSON object")
		return
	}
	var v view
	if err := json.Unmarshal(b, &v); err != nil {
		writeOutcome(w, http.StatusBadRequest, "structure", "", "body does not have the shape of a Communication")
		return
	}
	if v.ResourceType != "Communication" {
		writeOutcome(w, http.StatusBadRequest, "invalid", "Communication.resourceType", "resourceType must be Communication")
		return
	}
	if v.Status == "" {
		writeOutcome(w, http.StatusUnprocessableEntity, "required", "Communication.status", "status is required")
		return
	}
	if v.Subject == nil || !strings.HasPrefix(v.Subject.Reference, "Patient/") {
		writeOutcome(w, http.StatusUnprocessableEntity, "required", "Communication.subject", "subject must reference a Patient")
		return
	}
	if len(v.Recipient) == 0 || v.Recipient[0].Identifier == nil || v.Recipient[0].Identifier.System != SystemSOR {
		writeOutcome(w, http.StatusUnprocessableEntity, "required", "Communication.recipient", "recipient must carry an SOR identifier")
		return
	}
	var cond url.Values
	if h := r.Header.Get("If-None-Exist"); h != "" {
		cond, err = url.ParseQuery(h)
		if err != nil || cond.Get("identifier") == "" || len(cond) != 1 {
			writeOutcome(w, http.StatusBadRequest, "not-supported", "", "If-None-Exist supports identifier=system|value only")
			return
		}
	}

	s.mu.Lock()
	if s.st.get("Patient", strings.TrimPrefix(v.Subject.Reference, "Patient/")) == nil {
		s.mu.Unlock()
		writeOutcome(w, http.StatusUnprocessableEntity, "processing", "Communication.subject", "unknown patient "+v.Subject.Reference)
		return
	}
	if cond != nil {
		hits := s.matching(cond.Get("identifier"))
		if rc := s.faults.race; rc != nil && len(hits) == 0 {
			rc.arrived++
			if rc.arrived == rc.want {
				s.faults.race = nil
				close(rc.met)
			}
			s.mu.Unlock()
			select {
			case <-rc.met:
			case <-time.After(raceWait):
			case <-r.Context().Done():
			}
			s.mu.Lock()
			// The unique index on the condition: a racer stored first.
			if len(s.matching(cond.Get("identifier"))) > 0 {
				s.mu.Unlock()
				writeOutcome(w, http.StatusConflict, "processing", "", "conditional constraint failure: another request made the same conditional create at the same time and stored first")
				return
			}
		}
		switch {
		case len(hits) == 1:
			// A match still being saved is answered once it is on disk,
			// as a database shows only what is committed.
			gen := s.gc.Current()
			s.mu.Unlock()
			if err := s.commit(gen); err != nil {
				writeOutcome(w, http.StatusInternalServerError, "exception", "", "could not store the resource")
				return
			}
			w.Header().Set("Location", s.baseURL(r)+"/Communication/"+hits[0].ID+"/_history/"+strconv.Itoa(hits[0].Version))
			s.writeResource(w, http.StatusOK, hits[0])
			return
		case len(hits) > 1:
			s.mu.Unlock()
			writeOutcome(w, http.StatusPreconditionFailed, "multiple-matches", "", "If-None-Exist matched "+strconv.Itoa(len(hits))+" resources")
			return
		}
	}
	rec, err := s.st.add("Communication", body, time.Time{})
	var gen uint64
	if err == nil {
		gen = s.gc.Changed()
	}
	s.mu.Unlock()
	if err == nil {
		err = s.commit(gen) // the answer waits for the disk
	}
	if err != nil {
		writeOutcome(w, http.StatusInternalServerError, "exception", "", "could not store the resource")
		return
	}
	w.Header().Set("Location", s.baseURL(r)+"/Communication/"+rec.ID+"/_history/1")
	s.writeResource(w, http.StatusCreated, rec)
}

// matching returns the Communications carrying identifier token; the
// caller holds s.mu.
func (s *Server) matching(token string) []*record {
	var hits []*record
	for _, rec := range s.st.ofType("Communication") {
		if matchToken(token, viewOf(rec).Identifier) {
			hits = append(hits, rec)
		}
	}
	return hits
}

// handleSearch serves GET /Communication and GET /DocumentReference with
// identifier, recipient / related (reference or :identifier), subject,
// _lastUpdated (gt, ge, lt, le, eq; repeatable), _count and _offset, sorted
// by _lastUpdated then id whatever _sort says.
func (s *Server) handleSearch(typ string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		type bound struct {
			op string
			at time.Time
		}
		var bounds []bound
		for _, p := range q["_lastUpdated"] {
			op, val := "eq", p
			if len(p) > 2 && strings.Contains("gt ge lt le eq", p[:2]) {
				op, val = p[:2], p[2:]
			}
			at, err := time.Parse(time.RFC3339Nano, val)
			if err != nil {
				writeOutcome(w, http.StatusBadRequest, "value", "_lastUpdated", "_lastUpdated must be an instant with a prefix, e.g. gt2025-01-01T00:00:00Z")
				return
			}
			bounds = append(bounds, bound{op, at})
		}
		count, offset := 50, 0
		if c := q.Get("_count"); c != "" {
			n, err := strconv.Atoi(c)
			if err != nil || n < 1 {
				writeOutcome(w, http.StatusBadRequest, "value", "_count", "_count must be a positive integer")
				return
			}
			count = min(n, 500)
		}
		if o := q.Get("_offset"); o != "" {
			n, err := strconv.Atoi(o)
			if err != nil || n < 0 {
				writeOutcome(w, http.StatusBadRequest, "value", "_offset", "_offset must be a non-negative integer")
				return
			}
			offset = n
		}
		addressee := "recipient"
		if typ == "DocumentReference" {
			addressee = "related"
		}
		for k := range q {
			switch k {
			case "_lastUpdated", "_count", "_offset", "_sort", "identifier", "subject", addressee, addressee + ":identifier":
			default:
				writeOutcome(w, http.StatusBadRequest, "not-supported", "", "unsupported search parameter "+k)
				return
			}
		}

		s.mu.Lock()
		all := s.st.ofType(typ)
		s.mu.Unlock()
		var hits []*record
	next:
		for _, rec := range all {
			for _, b := range bounds {
				ok := false
				switch b.op {
				case "gt":
					ok = rec.LastUpdated.After(b.at)
				case "ge":
					ok = !rec.LastUpdated.Before(b.at)
				case "lt":
					ok = rec.LastUpdated.Before(b.at)
				case "le":
					ok = !rec.LastUpdated.After(b.at)
				case "eq":
					ok = rec.LastUpdated.Equal(b.at)
				}
				if !ok {
					continue next
				}
			}
			v := viewOf(rec)
			if t := q.Get("identifier"); t != "" && !matchToken(t, v.Identifier) {
				continue
			}
			if t := q.Get("subject"); t != "" && (v.Subject == nil || v.Subject.Reference != t) {
				continue
			}
			refs := v.Recipient
			if typ == "DocumentReference" {
				refs = nil
				if v.Context != nil {
					refs = v.Context.Related
				}
			}
			if t := q.Get(addressee); t != "" && !refMatches(refs, t, false) {
				continue
			}
			if t := q.Get(addressee + ":identifier"); t != "" && !refMatches(refs, t, true) {
				continue
			}
			hits = append(hits, rec)
		}
		total := len(hits)
		page := hits[min(offset, total):min(offset+count, total)]
		nextURL := ""
		if offset+count < total {
			nq := url.Values{}
			for k, v := range q {
				nq[k] = v
			}
			nq.Set("_offset", strconv.Itoa(offset+count))
			nq.Set("_count", strconv.Itoa(count))
			nextURL = s.baseURL(r) + "/" + typ + "?" + nq.Encode()
		}
		s.writeBundle(w, r, page, total, nextURL)
	}
}

func refMatches(refs []ref, token string, byIdentifier bool) bool {
	for _, rf := range refs {
		if byIdentifier {
			if rf.Identifier != nil && matchToken(token, []ident{*rf.Identifier}) {
				return true
			}
		} else if rf.Reference == token {
			return true
		}
	}
	return false
}
