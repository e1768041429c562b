package casesyssim

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
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
	cprPattern = regexp.MustCompile(`^[0-9]{6}[0-9A-Z]{4}$`) // CPR or replacement id (X-eCPR); modulus 11 is not checked
	validScope = []string{"municipality", "gp", "parents", "region_psychiatry", "school_ppr"}
	directions = []string{"incoming", "outgoing", "internal"}
)

// decodeJSON reads a JSON request body; it returns a reply when the body is
// not acceptable.
func decodeJSON(c *call, v any) *reply {
	mt, _, _ := mime.ParseMediaType(c.r.Header.Get("Content-Type"))
	if mt != "application/json" {
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

type searchRequest struct {
	CPR        string   `json:"cpr"`
	CaseType   string   `json:"caseType"`
	Status     []string `json:"status"`
	ExternalID *string  `json:"externalId"`
	Page       int      `json:"page"`
	PageSize   int      `json:"pageSize"`
}

func (s *Server) searchCases(c *call) reply {
	var q searchRequest
	if rep := decodeJSON(c, &q); rep != nil {
		return *rep
	}
	var errs []fieldErr
	if q.CPR == "" && (q.ExternalID == nil || *q.ExternalID == "") {
		errs = append(errs, fieldErr{"cpr", "cpr or externalId is required"})
	}
	if q.CPR != "" && !cprPattern.MatchString(q.CPR) {
		errs = append(errs, fieldErr{"cpr", "must be 10 characters: 6 digits and 4 digits or capital letters"})
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
		if q.CPR != "" && cs.PrimaryParty.CPR != q.CPR {
			continue
		}
		if q.ExternalID != nil && *q.ExternalID != "" && cs.ExternalID != *q.ExternalID {
			continue
		}
		if q.CaseType != "" && cs.CaseType != q.CaseType {
			continue
		}
		if len(q.Status) > 0 && !slices.Contains(q.Status, cs.Status) {
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
	if !cprPattern.MatchString(in.PrimaryParty.CPR) {
		errs = append(errs, fieldErr{"primaryParty.cpr", "must be 10 characters: 6 digits and 4 digits or capital letters"})
	}
	errs = append(errs, validateConsent("consent", in.Consent)...)
	if len(errs) > 0 {
		return invalid(errs...)
	}
	if dup := s.caseByExternalID(in.ExternalID); dup != nil {
		return duplicate(dup.ID, "/cases/"+dup.ID)
	}
	cs := &Case{
		ID: s.nextID("case"), ExternalID: in.ExternalID, CaseType: in.CaseType, Title: in.Title, KLE: in.KLE,
		PrimaryParty: in.PrimaryParty, ResponsibleUnit: in.ResponsibleUnit, Status: "open", Version: 1,
		CreatedAt: s.now().UTC(), Consent: in.Consent, ContactPerson: in.ContactPerson, Referral: in.Referral,
	}
	s.st.Cases[cs.ID] = cs
	rep := jsonReply(http.StatusCreated, cs)
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
	r := jsonReply(http.StatusOK, cs)
	r.header = http.Header{"Etag": {`W/"` + strconv.Itoa(cs.Version) + `"`}}
	return r
}

func (s *Server) closeCase(c *call) reply {
	cs, rep := s.lookupCase(c)
	if rep != nil {
		return *rep
	}
	r := jsonReply(http.StatusOK, cs)
	if cs.Status != "closed" {
		now := s.now().UTC()
		cs.Status, cs.ClosedAt = "closed", &now
		cs.Version++
		r = jsonReply(http.StatusOK, cs)
		r.changed = true
	}
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
	for _, d := range s.st.Documents {
		if d.ExternalID == meta.ExternalID {
			return duplicate(d.ID, "/cases/"+d.CaseID+"/documents/"+d.ID)
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
	for _, n := range s.st.Notes {
		if n.ExternalID == in.ExternalID {
			return duplicate(n.ID, "/cases/"+n.CaseID+"/journal-notes?externalId="+url.QueryEscape(n.ExternalID))
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

func (s *Server) outboxItem(d *Document) OutboxItem {
	it := OutboxItem{
		DocumentID: d.ID, CaseID: d.CaseID, Status: d.Outbox.Status, Kind: d.Outbox.Kind, Title: d.Title, Text: d.Outbox.Text,
		ReadyAt: d.Outbox.ReadyAt, SentAt: d.Outbox.SentAt, Recipients: d.Outbox.Recipients, Files: []OutboxFile{},
	}
	if cs := s.st.Cases[d.CaseID]; cs != nil {
		it.Referral = cs.Referral
	}
	for i, f := range d.Files {
		it.Files = append(it.Files, OutboxFile{FileInfo: f, Href: "/cases/" + d.CaseID + "/documents/" + d.ID + "/files/" + strconv.Itoa(i)})
	}
	return it
}

func (s *Server) listOutbox(c *call) reply {
	status := c.r.URL.Query().Get("status")
	if status == "" {
		status = "ready"
	}
	if status != "ready" && status != "sent" {
		return problem(http.StatusBadRequest, "invalid-query", "Invalid query parameter", "", fieldErr{"status", "must be ready or sent"})
	}
	var docs []*Document
	for _, d := range s.st.Documents {
		if d.Outbox != nil && d.Outbox.Status == status {
			docs = append(docs, d)
		}
	}
	sort.Slice(docs, func(i, j int) bool {
		if !docs[i].Outbox.ReadyAt.Equal(docs[j].Outbox.ReadyAt) {
			return docs[i].Outbox.ReadyAt.Before(docs[j].Outbox.ReadyAt)
		}
		return docs[i].ID < docs[j].ID
	})
	out := []OutboxItem{}
	for _, d := range docs {
		out = append(out, s.outboxItem(d))
	}
	return jsonReply(http.StatusOK, map[string]any{"results": out})
}

func (s *Server) markSent(c *call) reply {
	d, ok := s.st.Documents[c.r.PathValue("docId")]
	if !ok || d.Outbox == nil {
		return problem(http.StatusNotFound, "outbox-item-not-found", "No outbox item with this document id", "", fieldErr{"docId", "does not name an outbox document"})
	}
	r := jsonReply(http.StatusOK, s.outboxItem(d))
	if d.Outbox.Status != "sent" {
		now := s.now().UTC()
		d.Outbox.Status, d.Outbox.SentAt = "sent", &now
		r = jsonReply(http.StatusOK, s.outboxItem(d))
		r.changed = true
	}
	return r
}
