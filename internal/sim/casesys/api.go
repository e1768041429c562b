package casesyssim

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

var (
	cprPattern = regexp.MustCompile(`^[0-9]{10}$`) // modulus 11 is not checked
	// replacementPattern fits X-eCPR, the regions' D-eCPR and OIOXML's
	// AlternativeIdentifier: at most 10 letters and digits.
	replacementPattern = regexp.MustCompile(`^[0-9A-Za-z]{1,10}$`)
	validScope         = []string{"municipality", "gp", "parents", "region_psychiatry", "school_ppr"}
	directions         = []string{"incoming", "outgoing", "internal"}
)

// decodeJSON reads a JSON request body; it returns a reply when the body is
// not acceptable.
func decodeJSON(c *call, v any) *reply {
	mt, _, _ := mime.ParseMediaType(c.r.Header.Get("Content-Type"))
	if mt != "application/json" && !(mt == "application/merge-patch+json" && c.r.Method == http.MethodPatch) {
		p := problem(http.StatusUnsupportedMediaType, "unsupported-media-type", "Body must be application/json", "", fieldErr{"Content-Type", "must be application/json"})
		return &p
	}
	if err := json.Unmarshal(c.body, v); err != nil {
		p := problem(http.StatusBadRequest, "malformed-json", "Body is not valid JSON for this operation", jsonErrDetail(err))
		return &p
	}
	return nil
}

// jsonErrDetail names the offending field of a type error without its value.
func jsonErrDetail(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return "field " + te.Field + " has the wrong type (expected " + te.Type.String() + ")"
	}
	return "the body could not be parsed as JSON"
}

func invalid(fields ...fieldErr) reply {
	return problem(http.StatusUnprocessableEntity, "validation-failed", "The request has invalid fields", "See errors for the fields at fault.", fields...)
}

func validateConsent(prefix string, c *Consent) []fieldErr {
	if c == nil {
		return nil
	}
	var errs []fieldErr
	for i, sc := range c.Scopes {
		if !slices.Contains(validScope, sc) {
			errs = append(errs, fieldErr{prefix + ".scopes[" + strconv.Itoa(i) + "]", "must be one of " + strings.Join(validScope, ", ")})
		}
	}
	if c.Form != "" && c.Form != "oral" && c.Form != "written" {
		errs = append(errs, fieldErr{prefix + ".form", "must be oral or written"})
	}
	return errs
}

// validatePerson checks a case's party: a CPR or a replacement id (or
// both), names within bounds.
func validatePerson(prefix string, p Person) []fieldErr {
	var errs []fieldErr
	if p.CPR == "" && p.ReplacementID == "" {
		errs = append(errs, fieldErr{prefix + ".cpr", "cpr or replacementId is required"})
	}
	if p.CPR != "" && !cprPattern.MatchString(p.CPR) {
		errs = append(errs, fieldErr{prefix + ".cpr", "must be 10 digits"})
	}
	if p.ReplacementID != "" && !replacementPattern.MatchString(p.ReplacementID) {
		errs = append(errs, fieldErr{prefix + ".replacementId", "must be 1-10 letters and digits"})
	}
	if p.ReplacementSystem != "" && p.ReplacementID == "" {
		errs = append(errs, fieldErr{prefix + ".replacementSystem", "needs replacementId"})
	}
	for _, f := range []struct{ name, v string }{{"replacementSystem", p.ReplacementSystem}, {"name", p.Name}, {"givenName", p.GivenName}, {"familyName", p.FamilyName}} {
		if len(f.v) > 200 {
			errs = append(errs, fieldErr{prefix + "." + f.name, "must be at most 200 bytes"})
		}
	}
	return errs
}

// fillName sets the full name from its parts when only the parts are given.
func fillName(p *Person) {
	if p.Name == "" {
		p.Name = strings.TrimSpace(p.GivenName + " " + p.FamilyName)
	}
}

// upgradePerson moves a replacement id that an older simulator kept in cpr
// to replacementId.
func upgradePerson(p *Person) {
	if p.CPR != "" && !cprPattern.MatchString(p.CPR) && p.ReplacementID == "" {
		p.ReplacementID, p.CPR = p.CPR, ""
	}
}

type searchRequest struct {
	CPR               string   `json:"cpr"`
	ReplacementID     string   `json:"replacementId"`
	ReplacementSystem string   `json:"replacementSystem"`
	ReferralThreadID  string   `json:"referralThreadId"`
	CaseType          string   `json:"caseType"`
	Status            []string `json:"status"`
	ExternalID        *string  `json:"externalId"`
	Page              int      `json:"page"`
	PageSize          int      `json:"pageSize"`
}

// searchCases finds cases matching every criterion given. A replacement id
// matches when the systems agree or either side names none.
func (s *Server) searchCases(c *call) reply {
	var q searchRequest
	if rep := decodeJSON(c, &q); rep != nil {
		return *rep
	}
	var errs []fieldErr
	ext := ""
	if q.ExternalID != nil {
		ext = *q.ExternalID
	}
	if q.CPR == "" && q.ReplacementID == "" && q.ReferralThreadID == "" && ext == "" {
		errs = append(errs, fieldErr{"cpr", "one of cpr, replacementId, referralThreadId and externalId is required"})
	}
	if q.CPR != "" && !cprPattern.MatchString(q.CPR) {
		errs = append(errs, fieldErr{"cpr", "must be 10 digits"})
	}
	if q.ReplacementID != "" && !replacementPattern.MatchString(q.ReplacementID) {
		errs = append(errs, fieldErr{"replacementId", "must be 1-10 letters and digits"})
	}
	for i, st := range q.Status {
		if st != "open" && st != "closed" {
			errs = append(errs, fieldErr{"status[" + strconv.Itoa(i) + "]", "must be open or closed"})
		}
	}
	if q.Page == 0 {
		q.Page = 1
	}
	if q.PageSize == 0 {
		q.PageSize = 50
	}
	if q.Page < 1 {
		errs = append(errs, fieldErr{"page", "must be at least 1"})
	}
	if q.PageSize < 1 || q.PageSize > 100 {
		errs = append(errs, fieldErr{"pageSize", "must be between 1 and 100"})
	}
	if len(errs) > 0 {
		return invalid(errs...)
	}
	var hits []*Case
	for _, cs := range s.st.Cases {
		p := cs.PrimaryParty
		switch {
		case q.CPR != "" && p.CPR != q.CPR,
			q.ReplacementID != "" && (p.ReplacementID != q.ReplacementID || (q.ReplacementSystem != "" && p.ReplacementSystem != "" && p.ReplacementSystem != q.ReplacementSystem)),
			q.ReferralThreadID != "" && (cs.Referral == nil || cs.Referral.ThreadID != q.ReferralThreadID),
			ext != "" && cs.ExternalID != ext,
			q.CaseType != "" && cs.CaseType != q.CaseType,
			len(q.Status) > 0 && !slices.Contains(q.Status, cs.Status):
			continue
		}
		hits = append(hits, cs)
	}
	sort.Slice(hits, func(i, j int) bool { return hits[i].ID < hits[j].ID })
	total := len(hits)
	from := min((q.Page-1)*q.PageSize, total)
	to := min(from+q.PageSize, total)
	return jsonReply(http.StatusOK, map[string]any{"results": nonNil(hits[from:to]), "total": total, "page": q.Page, "pageSize": q.PageSize})
}

func nonNil[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}

type caseCreate struct {
	ExternalID      string         `json:"externalId"`
	CaseType        string         `json:"caseType"`
	Title           string         `json:"title"`
	KLE             string         `json:"kle"`
	PrimaryParty    Person         `json:"primaryParty"`
	ResponsibleUnit string         `json:"responsibleUnit"`
	Consent         *Consent       `json:"consent"`
	ContactPerson   *ContactPerson `json:"contactPerson"`
	Referral        *Referral      `json:"referral"`
}

func (s *Server) createCase(c *call) reply {
	var in caseCreate
	if rep := decodeJSON(c, &in); rep != nil {
		return *rep
	}
	var errs []fieldErr
	if in.ExternalID == "" {
		errs = append(errs, fieldErr{"externalId", "is required"})
	}
	if in.CaseType == "" {
		errs = append(errs, fieldErr{"caseType", "is required"})
	}
	if in.Title == "" {
		errs = append(errs, fieldErr{"title", "is required"})
	}
	errs = append(errs, validatePerson("primaryParty", in.PrimaryParty)...)
	errs = append(errs, validateConsent("consent", in.Consent)...)
	if len(errs) > 0 {
		return invalid(errs...)
	}
	if dup := s.caseByExternalID(in.ExternalID); dup != nil && s.uniqueExternalIDs() {
		return duplicate(dup.ID, "/cases/"+dup.ID)
	}
	fillName(&in.PrimaryParty)
	cs := &Case{
		ID: s.nextID("case"), ExternalID: in.ExternalID, CaseType: in.CaseType, Title: in.Title, KLE: in.KLE,
		PrimaryParty: in.PrimaryParty, ResponsibleUnit: in.ResponsibleUnit, Status: "open", Version: 1,
		CreatedAt: s.now().UTC(), Consent: in.Consent, ContactPerson: in.ContactPerson, Referral: in.Referral,
	}
	s.st.Cases[cs.ID] = cs
	rep := caseReply(http.StatusCreated, cs)
	rep.location = "/cases/" + cs.ID
	rep.changed = true
	return rep
}

func duplicate(existingID, location string) reply {
	p := problem(http.StatusConflict, "duplicate-external-id", "An object with this externalId exists", "externalId is unique forever; the existing object is named in existingId.", fieldErr{"externalId", "is already used"})
	var pb Problem
	json.Unmarshal(p.body, &pb)
	pb.ExistingID = existingID
	p.body, _ = json.Marshal(pb)
	p.location = location
	return p
}

func (s *Server) caseByExternalID(ext string) *Case {
	for _, cs := range s.st.Cases {
		if cs.ExternalID == ext {
			return cs
		}
	}
	return nil
}

// lookupCase returns the case or a 404 reply.
func (s *Server) lookupCase(c *call) (*Case, *reply) {
	cs, ok := s.st.Cases[c.r.PathValue("caseId")]
	if !ok {
		p := problem(http.StatusNotFound, "case-not-found", "No case with this id", "", fieldErr{"caseId", "does not name a case"})
		return nil, &p
	}
	return cs, nil
}

func caseClosed() reply {
	return problem(http.StatusConflict, "case-closed", "The case is closed", "A caseworker must reopen the case before anything is added to it.")
}

func (s *Server) getCase(c *call) reply {
	cs, rep := s.lookupCase(c)
	if rep != nil {
		return *rep
	}
	return caseReply(http.StatusOK, cs)
}

// caseReply answers a case with its version as a strong ETag, which
// If-Match on PATCH compares.
func caseReply(status int, cs *Case) reply {
	r := jsonReply(status, cs)
	r.header = http.Header{"Etag": {etag(cs.Version)}}
	return r
}

func etag(version int) string { return `"` + strconv.Itoa(version) + `"` }

// patchable are the members of a case a merge patch (RFC 7396) may
// change: only the primary party. In it, a member left out stays as it
// is; null clears a name or the replacement system.
var (
	patchable      = []string{"primaryParty"}
	partyMembers   = []string{"cpr", "replacementId", "replacementSystem", "name", "givenName", "familyName"}
	partyClearable = []string{"replacementSystem", "name", "givenName", "familyName"}
)

// updateCase applies a merge patch to the case whose version If-Match
// names. A CPR or replacement id may be set where the case has none, never
// changed to another: that would move the case to another child.
func (s *Server) updateCase(c *call) reply {
	var members map[string]json.RawMessage
	if rep := decodeJSON(c, &members); rep != nil {
		return *rep
	}
	var errs []fieldErr
	for _, m := range slices.Sorted(maps.Keys(members)) {
		if !slices.Contains(patchable, m) {
			errs = append(errs, fieldErr{m, "cannot be changed through this operation (only primaryParty)"})
		}
	}
	var party map[string]*string // nil value: JSON null
	if raw, ok := members["primaryParty"]; ok {
		if err := json.Unmarshal(raw, &party); err != nil {
			errs = append(errs, fieldErr{"primaryParty", "must be an object of strings"})
		}
	}
	for _, m := range slices.Sorted(maps.Keys(party)) {
		switch {
		case !slices.Contains(partyMembers, m):
			errs = append(errs, fieldErr{"primaryParty." + m, "is not a member of a party"})
		case party[m] == nil && !slices.Contains(partyClearable, m):
			errs = append(errs, fieldErr{"primaryParty." + m, "cannot be removed"})
		}
	}
	if len(errs) > 0 {
		return invalid(errs...)
	}
	match := c.r.Header.Get("If-Match")
	if match == "" {
		return problem(http.StatusPreconditionRequired, "precondition-required", "If-Match header required", "Send the case's ETag (its version) in If-Match.", fieldErr{"If-Match", "header is required"})
	}
	cs, rep := s.lookupCase(c)
	if rep != nil {
		return *rep
	}
	if match != etag(cs.Version) && match != "*" {
		p := problem(http.StatusPreconditionFailed, "version-mismatch", "The case has changed", "If-Match does not name the case's current version; read the case again and decide anew.", fieldErr{"If-Match", "is not the current version"})
		p.header = http.Header{"Etag": {etag(cs.Version)}}
		return p
	}
	if cs.Status == "closed" {
		return caseClosed()
	}
	p := cs.PrimaryParty
	for _, f := range []struct {
		name string
		dst  *string
	}{{"cpr", &p.CPR}, {"replacementId", &p.ReplacementID}} {
		if v, ok := party[f.name]; ok && *f.dst != "" && *v != *f.dst {
			return problem(http.StatusConflict, "party-conflict", "The case belongs to another person", "The case's party already has another "+f.name+"; it cannot be changed.", fieldErr{"primaryParty." + f.name, "differs from the case's"})
		}
	}
	for name, dst := range map[string]*string{"cpr": &p.CPR, "replacementId": &p.ReplacementID, "replacementSystem": &p.ReplacementSystem, "name": &p.Name, "givenName": &p.GivenName, "familyName": &p.FamilyName} {
		if v, ok := party[name]; ok {
			*dst = ""
			if v != nil {
				*dst = *v
			}
		}
	}
	_, setName := party["name"]
	_, setGiven := party["givenName"]
	_, setFamily := party["familyName"]
	if !setName && (setGiven || setFamily) {
		p.Name = "" // the parts changed: the full name follows them
	}
	fillName(&p)
	if errs := validatePerson("primaryParty", p); len(errs) > 0 {
		return invalid(errs...)
	}
	if p == cs.PrimaryParty {
		return caseReply(http.StatusOK, cs)
	}
	now := s.now().UTC()
	cs.PrimaryParty, cs.UpdatedAt = p, &now
	cs.Version++
	r := caseReply(http.StatusOK, cs)
	r.changed = true
	return r
}

func (s *Server) closeCase(c *call) reply {
	cs, rep := s.lookupCase(c)
	if rep != nil {
		return *rep
	}
	if cs.Status == "closed" {
		return caseReply(http.StatusOK, cs)
	}
	now := s.now().UTC()
	cs.Status, cs.ClosedAt = "closed", &now
	cs.Version++
	r := caseReply(http.StatusOK, cs)
	r.changed = true
	return r
}

type documentMetadata struct {
	ExternalID   string     `json:"externalId"`
	Title        string     `json:"title"`
	Direction    string     `json:"direction"`
	DocumentDate *time.Time `json:"documentDate"`
	Sender       *Party     `json:"sender"`
	Recipients   []Party    `json:"recipients"`
	Files        []string   `json:"files"`
	Letter       *LetterRef `json:"letter"`
}

type upload struct {
	name, contentType string
	data              []byte
}

// parseDocument reads the multipart body: one "metadata" JSON part and one
// or more "file" parts.
func (s *Server) parseDocument(c *call) (documentMetadata, []upload, *reply) {
	var meta documentMetadata
	mt, params, _ := mime.ParseMediaType(c.r.Header.Get("Content-Type"))
	if mt != "multipart/form-data" || params["boundary"] == "" {
		p := problem(http.StatusUnsupportedMediaType, "unsupported-media-type", "Body must be multipart/form-data", "", fieldErr{"Content-Type", "must be multipart/form-data with a boundary"})
		return meta, nil, &p
	}
	mr := multipart.NewReader(bytes.NewReader(c.body), params["boundary"])
	var files []upload
	seenMeta := false
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			p := problem(http.StatusBadRequest, "malformed-multipart", "The multipart body could not be parsed", "")
			return meta, nil, &p
		}
		data, err := io.ReadAll(part)
		if err != nil {
			p := problem(http.StatusBadRequest, "malformed-multipart", "The multipart body could not be parsed", "")
			return meta, nil, &p
		}
		switch part.FormName() {
		case "metadata":
			seenMeta = true
			if err := json.Unmarshal(data, &meta); err != nil {
				p := problem(http.StatusBadRequest, "malformed-json", "The metadata part is not valid JSON", jsonErrDetail(err), fieldErr{"metadata", "must be a JSON object"})
				return meta, nil, &p
			}
		case "file":
			ct := part.Header.Get("Content-Type")
			if ct == "" {
				ct = "application/octet-stream"
			}
			files = append(files, upload{name: part.FileName(), contentType: ct, data: data})
		default:
			p := problem(http.StatusBadRequest, "unexpected-part", "Unexpected multipart part", "Only metadata and file parts are allowed.", fieldErr{"(part)", "must be named metadata or file"})
			return meta, nil, &p
		}
	}
	var errs []fieldErr
	if !seenMeta {
		errs = append(errs, fieldErr{"metadata", "part is required"})
	}
	if meta.ExternalID == "" {
		errs = append(errs, fieldErr{"metadata.externalId", "is required"})
	}
	if meta.Title == "" {
		errs = append(errs, fieldErr{"metadata.title", "is required"})
	}
	if !slices.Contains(directions, meta.Direction) {
		errs = append(errs, fieldErr{"metadata.direction", "must be incoming, outgoing or internal"})
	}
	if len(files) == 0 {
		errs = append(errs, fieldErr{"file", "at least one file part is required"})
	}
	if meta.Files != nil {
		if len(meta.Files) != len(files) {
			errs = append(errs, fieldErr{"metadata.files", "must list the file parts in order"})
		} else {
			for i := range files {
				if meta.Files[i] != files[i].name {
					errs = append(errs, fieldErr{"metadata.files[" + strconv.Itoa(i) + "]", "does not match the file part's name"})
				}
			}
		}
	}
	for i, f := range files {
		if f.name == "" {
			errs = append(errs, fieldErr{"file[" + strconv.Itoa(i) + "]", "needs a filename"})
		}
	}
	if len(errs) > 0 {
		p := invalid(errs...)
		return meta, nil, &p
	}
	for i, f := range files {
		base, _, _ := mime.ParseMediaType(f.contentType)
		if slices.Contains(s.cfg.BlockedTypes, base) {
			p := problem(http.StatusUnsupportedMediaType, "file-type-not-allowed", "A file type is not allowed in this case system", "", fieldErr{"file[" + strconv.Itoa(i) + "].contentType", "is a blocked file type"})
			return meta, nil, &p
		}
	}
	return meta, files, nil
}

func (s *Server) addDocument(c *call) reply {
	meta, files, rep := s.parseDocument(c)
	if rep != nil {
		return *rep
	}
	cs, rep := s.lookupCase(c)
	if rep != nil {
		return *rep
	}
	if s.uniqueExternalIDs() {
		for _, d := range s.st.Documents {
			if d.ExternalID == meta.ExternalID {
				return duplicate(d.ID, "/cases/"+d.CaseID+"/documents/"+d.ID)
			}
		}
	}
	if cs.Status == "closed" {
		return caseClosed()
	}
	doc := &Document{
		CaseID: cs.ID, ExternalID: meta.ExternalID, Title: meta.Title, Direction: meta.Direction,
		Sender: meta.Sender, Recipients: meta.Recipients, Letter: meta.Letter, Journalised: true, CreatedAt: s.now().UTC(),
	}
	if meta.DocumentDate != nil {
		doc.DocumentDate = *meta.DocumentDate
	} else {
		doc.DocumentDate = doc.CreatedAt
	}
	for _, f := range files {
		sum, err := s.putFile(f.data)
		if err != nil {
			return problem(http.StatusInternalServerError, "storage-failed", "The file could not be stored", "")
		}
		doc.Files = append(doc.Files, FileInfo{Name: f.name, ContentType: f.contentType, SHA256: sum, Size: int64(len(f.data))})
	}
	doc.ID = s.nextID("document")
	s.st.Documents[doc.ID] = doc
	if cs.Referral == nil && meta.Letter != nil && meta.Letter.Kind == "referral" && meta.Letter.ID != "" {
		thread := meta.Letter.ThreadID
		if thread == "" {
			thread = meta.Letter.ID
		}
		cs.Referral = &Referral{ThreadID: thread, LetterID: meta.Letter.ID}
		cs.Version++
	}
	r := jsonReply(http.StatusCreated, doc)
	r.location = "/cases/" + cs.ID + "/documents/" + doc.ID
	r.changed = true
	return r
}

func (s *Server) listDocuments(c *call) reply {
	cs, rep := s.lookupCase(c)
	if rep != nil {
		return *rep
	}
	ext := c.r.URL.Query().Get("externalId")
	var out []*Document
	for _, d := range s.st.Documents {
		if d.CaseID == cs.ID && (ext == "" || d.ExternalID == ext) {
			out = append(out, d)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return jsonReply(http.StatusOK, map[string]any{"results": nonNil(out)})
}

func (s *Server) lookupDocument(c *call) (*Document, *reply) {
	d, ok := s.st.Documents[c.r.PathValue("docId")]
	if !ok || d.CaseID != c.r.PathValue("caseId") {
		p := problem(http.StatusNotFound, "document-not-found", "No document with this id on this case", "", fieldErr{"docId", "does not name a document of the case"})
		return nil, &p
	}
	return d, nil
}

func (s *Server) getDocument(c *call) reply {
	d, rep := s.lookupDocument(c)
	if rep != nil {
		return *rep
	}
	return jsonReply(http.StatusOK, d)
}

func (s *Server) getFile(c *call) reply {
	d, rep := s.lookupDocument(c)
	if rep != nil {
		return *rep
	}
	i, err := strconv.Atoi(c.r.PathValue("index"))
	if err != nil || i < 0 || i >= len(d.Files) {
		return problem(http.StatusNotFound, "file-not-found", "No file with this index on the document", "", fieldErr{"index", "must be a file index of the document"})
	}
	data, err := s.readFile(d.Files[i].SHA256)
	if err != nil {
		return problem(http.StatusInternalServerError, "storage-failed", "The file could not be read", "")
	}
	return reply{status: http.StatusOK, contentType: d.Files[i].ContentType, body: data}
}

type noteCreate struct {
	ExternalID  string     `json:"externalId"`
	Title       string     `json:"title"`
	Text        string     `json:"text"`
	ContactTime *time.Time `json:"contactTime"`
}

func (s *Server) addNote(c *call) reply {
	var in noteCreate
	if rep := decodeJSON(c, &in); rep != nil {
		return *rep
	}
	var errs []fieldErr
	if in.ExternalID == "" {
		errs = append(errs, fieldErr{"externalId", "is required"})
	}
	if in.Title == "" {
		errs = append(errs, fieldErr{"title", "is required"})
	}
	if in.Text == "" {
		errs = append(errs, fieldErr{"text", "is required"})
	}
	if in.ContactTime == nil {
		errs = append(errs, fieldErr{"contactTime", "is required (RFC 3339 date-time)"})
	}
	if len(errs) > 0 {
		return invalid(errs...)
	}
	cs, rep := s.lookupCase(c)
	if rep != nil {
		return *rep
	}
	if s.uniqueExternalIDs() {
		for _, n := range s.st.Notes {
			if n.ExternalID == in.ExternalID {
				return duplicate(n.ID, "/cases/"+n.CaseID+"/journal-notes?externalId="+url.QueryEscape(n.ExternalID))
			}
		}
	}
	if cs.Status == "closed" {
		return caseClosed()
	}
	n := &JournalNote{ID: s.nextID("note"), CaseID: cs.ID, ExternalID: in.ExternalID, Title: in.Title, Text: in.Text, ContactTime: *in.ContactTime, CreatedAt: s.now().UTC()}
	s.st.Notes[n.ID] = n
	r := jsonReply(http.StatusCreated, n)
	r.location = "/cases/" + cs.ID + "/journal-notes?externalId=" + url.QueryEscape(n.ExternalID)
	r.changed = true
	return r
}

func (s *Server) listNotes(c *call) reply {
	cs, rep := s.lookupCase(c)
	if rep != nil {
		return *rep
	}
	ext := c.r.URL.Query().Get("externalId")
	var out []*JournalNote
	for _, n := range s.st.Notes {
		if n.CaseID == cs.ID && (ext == "" || n.ExternalID == ext) {
			out = append(out, n)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return jsonReply(http.StatusOK, map[string]any{"results": nonNil(out)})
}
