package casesys

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"time"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/adapters/body"
	"github.com/samhub/samhub/adapters/httpclient"
	"github.com/samhub/samhub/internal/failpoint"
	"github.com/samhub/samhub/pipeline/letter"
)

// Deliver journalises l on the child's case: it finds (or creates) the
// case by CPR or replacement id and updates the child's name and CPR on it
// (case.go), adds the letter as a document (original file, a plain-text
// rendering and any attachments) and a journal note. RemoteID is the
// document id; Existing is true when the document was there already.
func (a *Adapter) Deliver(ctx context.Context, l *letter.Letter) (adapters.Delivery, error) {
	if l.Source == a.name && l.SourceDocumentID != "" {
		// The letter came from this case system's outbox: its document is there.
		return adapters.Delivery{RemoteID: l.SourceDocumentID, Existing: true}, nil
	}
	if normaliseID(l.Patient.Identifier()) == "" {
		return adapters.Delivery{}, adapters.Permanent("no_patient", "the letter names no child (no CPR or replacement id), so no case can be found", nil)
	}
	caseID, err := a.resolveCase(ctx, l)
	if err != nil {
		return adapters.Delivery{}, err
	}
	doc, docExisted, err := a.ensureDocument(ctx, l, caseID)
	if notFound(err) {
		// The case went (deleted, merged) between the search and the
		// upload: find the child's case again (interfaces.md §1.5), once.
		a.log.Info("the child's case is gone from the case system; looking for it again", "case", caseID, slog.Any("letter", l))
		if caseID, err = a.resolveCase(ctx, l); err == nil {
			doc, docExisted, err = a.ensureDocument(ctx, l, caseID)
		}
	}
	if err != nil {
		return adapters.Delivery{}, err
	}
	failpoint.Kill(failpoint.CaseDocumentAdded)
	if _, err := a.ensureNote(ctx, l, caseID, doc); err != nil {
		return adapters.Delivery{}, err
	}
	// Existing follows the document, the object RemoteID names; a journal
	// note added now to complete an earlier half-done delivery does not
	// change that the letter was already in the case.
	d := adapters.Delivery{RemoteID: doc.ID, Existing: docExisted}
	a.log.Info("letter journalised in the case system", slog.Any("letter", l), "document", doc.ID, "existing", d.Existing)
	return d, nil
}

// notFound reports a 404 answer (classify's not_found).
func notFound(err error) bool {
	var e *adapters.Error
	return errors.As(err, &e) && e.Code == "not_found"
}

// normaliseID drops the hyphen of the "ddmmyy-ssss" CPR spelling.
func normaliseID(s string) string {
	s = strings.TrimSpace(s)
	if len(s) == 11 && s[6] == '-' {
		return s[:6] + s[7:]
	}
	return s
}

func (a *Adapter) idemKey(l *letter.Letter, op string) string {
	return "samhub:" + l.ID + ":" + a.name + ":" + op
}

// opaque makes an externalId part from text that may be personal (CPR) or
// merely look like it (MedCom letter numbers): a SHA-256 in lower-case
// base32, whose alphabet has no 0, 1, 8 or 9, so it cannot form a
// CPR-like run of digits in a URL.
func opaque(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(h.Sum(nil))[:32])
}

// CaseExternalID is the externalId of the case the hub creates for a child:
// a hash of case type and the child's id (the CPR, or the replacement id
// with its system), so it is stable forever but is not the CPR.
func CaseExternalID(caseType, cpr string) string {
	return "samhub:case:" + opaque("case", caseType, cpr)
}

// DocumentExternalID is the externalId of the document made from letter id.
func DocumentExternalID(letterID string) string { return "samhub:doc:" + opaque("document", letterID) }

// NoteExternalID is the externalId of the journal note made for letter id.
func NoteExternalID(letterID string) string { return "samhub:note:" + opaque("note", letterID) }

func isDuplicate(resp *response) bool {
	return resp.status == http.StatusConflict && parseProblem(resp.body).Code == "duplicate-external-id"
}

// existingID reads the id named by a duplicate-external-id answer.
func existingID(resp *response) (string, error) {
	if id := parseProblem(resp.body).ExistingID; id != "" {
		return id, nil
	}
	if loc := resp.header.Get("Location"); loc != "" {
		return loc[strings.LastIndex(loc, "/")+1:], nil
	}
	return "", adapters.Retryable("bad_answer", "the case system reported an existing object without naming it", nil)
}

type documentView struct {
	ID        string    `json:"id"`
	CreatedAt time.Time `json:"createdAt"`
}

// ensureDocument finds the letter's document by externalId or adds it,
// under the create guard so that concurrent deliveries add one.
func (a *Adapter) ensureDocument(ctx context.Context, l *letter.Letter, caseID string) (documentView, bool, error) {
	ext := DocumentExternalID(l.ID)
	docsPath := "/cases/" + url.PathEscape(caseID) + "/documents"
	release, err := a.guardCreate(ctx, ext)
	if err != nil {
		return documentView{}, false, err
	}
	defer release()
	if d, ok, err := a.findByExternalID(ctx, docsPath, ext, "looking for an earlier copy of the document"); err != nil || ok {
		return d, ok, err
	}
	upload, ctype := a.documentBody(l, ext)
	if max := a.cfg.MaxUpload; max > 0 && upload.Len() > max {
		return documentView{}, false, &adapters.TooLarge{Size: upload.Len(), Limit: max, Setting: "adapters." + a.name + ".max_upload"}
	}
	resp, err := a.api.do(ctx, request{method: http.MethodPost, path: docsPath, stream: upload, contentType: ctype, idemKey: a.idemKey(l, "add-document")})
	if err != nil {
		return documentView{}, false, err
	}
	switch {
	case resp.status == http.StatusCreated || resp.status == http.StatusOK:
		var d documentView
		if err := json.Unmarshal(resp.body, &d); err != nil || d.ID == "" {
			return d, false, adapters.Retryable("bad_answer", "the case system's answer to adding the document could not be read", err)
		}
		return d, false, nil
	case isDuplicate(resp):
		// Saved by an earlier attempt whose answer was lost; read it back for createdAt.
		if d, ok, err := a.findByExternalID(ctx, docsPath, ext, "reading the existing document"); err != nil || ok {
			return d, true, err
		}
		id, err := existingID(resp)
		return documentView{ID: id}, true, err
	case resp.status == http.StatusRequestEntityTooLarge:
		return documentView{}, false, &adapters.TooLarge{Size: upload.Len(), Limit: a.cfg.MaxUpload, Err: classify("adding the document", resp)}
	default:
		return documentView{}, false, classify("adding the document", resp)
	}
}

// findByExternalID looks an object up with GET path?externalId=ext.
func (a *Adapter) findByExternalID(ctx context.Context, path, ext, what string) (documentView, bool, error) {
	resp, err := a.api.do(ctx, request{method: http.MethodGet, path: path, query: url.Values{"externalId": {ext}}})
	if err != nil {
		return documentView{}, false, err
	}
	if resp.status != http.StatusOK {
		return documentView{}, false, classify(what, resp)
	}
	var list struct {
		Results []documentView `json:"results"`
	}
	if err := json.Unmarshal(resp.body, &list); err != nil {
		return documentView{}, false, adapters.Retryable("bad_answer", "the case system's answer to "+what+" could not be read", err)
	}
	if len(list.Results) == 0 {
		return documentView{}, false, nil
	}
	return list.Results[0], true, nil
}

type docMetadata struct {
	ExternalID   string         `json:"externalId"`
	Title        string         `json:"title"`
	Direction    string         `json:"direction"`
	DocumentDate *time.Time     `json:"documentDate,omitempty"`
	Sender       letter.Party   `json:"sender"`
	Recipients   []letter.Party `json:"recipients,omitempty"`
	Files        []string       `json:"files"`
	Letter       letterRef      `json:"letter"`
}

type letterRef struct {
	ID        string `json:"id"`
	Kind      string `json:"kind"`
	ThreadID  string `json:"threadId,omitempty"`
	InReplyTo string `json:"inReplyTo,omitempty"`
}

type filePart struct {
	name, contentType string
	data              []byte
	open              letter.Opener // when not in data
	size              int64
	what              string
}

// The contract's Party has no CPR: a custody holder's CPR number stays in
// the case (the outbox document that named them), not in every copy's
// metadata.
func withoutCPR(p letter.Party) letter.Party {
	p.CPR = ""
	return p
}

func partiesWithoutCPR(ps []letter.Party) []letter.Party {
	out := make([]letter.Party, len(ps))
	for i, p := range ps {
		out[i] = withoutCPR(p)
	}
	return out
}

// documentBody builds the multipart upload: the metadata and the letter's
// rendering as bytes, the original and the attachments sent from their
// readers. The boundary is derived from the letter id so a retry sends
// byte-identical bodies.
func (a *Adapter) documentBody(l *letter.Letter, ext string) (*body.Body, string) {
	var files []filePart
	if o := l.Original; o.Len() > 0 || o.Streamed() {
		files = append(files, filePart{name: originalName(l), contentType: orDefault(o.ContentType, "application/octet-stream"), open: o.Open, size: o.Len(), what: "the original"})
	}
	files = append(files, filePart{name: "letter.txt", contentType: "text/plain; charset=utf-8", data: []byte(render(l))})
	for i, at := range l.Attachments {
		name := at.Name
		if name == "" {
			name = fmt.Sprintf("attachment-%d", i+1)
		}
		files = append(files, filePart{name: name, contentType: orDefault(at.ContentType, "application/octet-stream"), open: at.Open, size: at.Len(), what: fmt.Sprintf("attachment %d", i+1)})
	}
	meta := docMetadata{
		ExternalID: ext, Title: title(l), Direction: direction(l), Sender: withoutCPR(l.Sender), Recipients: partiesWithoutCPR(l.Receivers),
		Letter: letterRef{ID: l.ID, Kind: string(l.Kind), ThreadID: l.ThreadID, InReplyTo: l.InReplyTo},
	}
	if d := letterDate(l); !d.IsZero() {
		meta.DocumentDate = &d
	}
	for _, f := range files {
		meta.Files = append(meta.Files, f.name)
	}
	mb, _ := json.Marshal(meta)

	// The multipart writer writes each part's boundary and headers; the
	// bytes between them are the files', which the body sends from their
	// readers.
	var b body.Body
	var frame bytes.Buffer
	w := multipart.NewWriter(&frame)
	sum := sha256.Sum256([]byte(l.ID))
	w.SetBoundary("samhub-" + hex.EncodeToString(sum[:16]))
	flush := func() {
		b.Write(bytes.Clone(frame.Bytes()))
		frame.Reset()
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="metadata"`)
	h.Set("Content-Type", "application/json")
	w.CreatePart(h)
	frame.Write(mb)
	for _, f := range files {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", mime.FormatMediaType("form-data", map[string]string{"name": "file", "filename": f.name}))
		h.Set("Content-Type", f.contentType)
		w.CreatePart(h)
		if f.open == nil {
			frame.Write(f.data)
			continue
		}
		flush()
		b.Part(f.what, f.open, f.size, body.Raw)
	}
	w.Close()
	flush()
	return &b, w.FormDataContentType()
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func originalName(l *letter.Letter) string {
	if l.Original.Filename != "" {
		return l.Original.Filename
	}
	mt, _, _ := mime.ParseMediaType(l.Original.ContentType)
	switch {
	case mt == "application/pdf":
		return "original.pdf"
	case strings.HasSuffix(mt, "json"):
		return "original.json"
	case strings.HasSuffix(mt, "xml"):
		return "original.xml"
	case strings.HasPrefix(mt, "text/"):
		return "original.txt"
	case mt == "message/rfc822":
		return "original.eml"
	default:
		return "original.bin"
	}
}

// letterDate is a date taken from the letter itself, so retries send the
// same metadata.
func letterDate(l *letter.Letter) time.Time {
	if !l.Sent.IsZero() {
		return l.Sent
	}
	return l.Received
}

func direction(l *letter.Letter) string {
	if l.Sender.Role == "municipality" || l.Sender.Role == "coordinator" {
		return "outgoing"
	}
	return "incoming"
}

type noteView struct {
	ExternalID  string    `json:"externalId"`
	Title       string    `json:"title"`
	Text        string    `json:"text"`
	ContactTime time.Time `json:"contactTime"`
}

// ensureNote adds the journal note that records the document, unless an
// earlier attempt did.
func (a *Adapter) ensureNote(ctx context.Context, l *letter.Letter, caseID string, doc documentView) (bool, error) {
	ext := NoteExternalID(l.ID)
	notesPath := "/cases/" + url.PathEscape(caseID) + "/journal-notes"
	release, err := a.guardCreate(ctx, ext)
	if err != nil {
		return false, err
	}
	defer release()
	if _, ok, err := a.findByExternalID(ctx, notesPath, ext, "looking for an earlier journal note"); err != nil || ok {
		return ok, err
	}
	when := letterDate(l)
	if when.IsZero() {
		when = doc.CreatedAt
	}
	body, _ := json.Marshal(noteView{ExternalID: ext, Title: "Brev journaliseret af Samhub", Text: noteText(l, doc.ID), ContactTime: when})
	resp, err := a.api.do(ctx, request{method: http.MethodPost, path: notesPath, body: body, contentType: "application/json", idemKey: a.idemKey(l, "add-journal-note")})
	if err != nil {
		return false, err
	}
	switch {
	case resp.status == http.StatusCreated || resp.status == http.StatusOK:
		return false, nil
	case isDuplicate(resp):
		return true, nil
	default:
		return false, classify("adding the journal note", resp)
	}
}

// Capacity: deliveries at once, one per connection to the system.
func (a *Adapter) Capacity() int { return httpclient.MaxConnsPerHost }
