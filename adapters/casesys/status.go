package casesys

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/pipeline/letter"
)

// The case system's outbox keeps a status per recipient of a document
// (openapi.yaml, "The outbox"). The pipeline tells this adapter each
// recipient's fate through ReportStatus; the adapter keeps the report in
// its state store before it returns, and writes it to the case system
// right away in the background; until the case system has taken it, every
// poll hands it to that background writer again (never writing it on the
// poll's own path). State store layout (keys free of personal data):
//
//	casesys.<name>.status.<docId>   the reports of one document, by recipient
//	casesys.<name>.status-pending   the documents with reports not yet written
//
// A report names its recipient as the letter did (a letter.Party); it is
// kept under a digest of role and identifiers, with email address, name and
// a custody holder's CPR number only as digests, and mapped to the recipient's key in the case system
// when it is written, through the same list the letter's Receivers came
// from (outboxItem.recipients). Document records stay after their reports
// are written (they are small and one per outbox document), so a report
// older than the kept one is ignored here as well as in the case system.

type statusRecord struct {
	Reports map[string]*storedReport `json:"reports"`
}

type storedReport struct {
	Role        string    `json:"role,omitempty"`
	GLN         string    `json:"gln,omitempty"`
	SOR         string    `json:"sor,omitempty"`
	EmailDigest string    `json:"emailDigest,omitempty"`
	NameDigest  string    `json:"nameDigest,omitempty"`
	CPRDigest   string    `json:"cprDigest,omitempty"`
	State       string    `json:"state"`
	Code        string    `json:"code,omitempty"`
	Reason      string    `json:"reason,omitempty"`
	Destination string    `json:"destination,omitempty"`
	At          time.Time `json:"at"`
	Written     bool      `json:"written"` // the case system has this report
}

var validStates = []adapters.RecipientState{adapters.StateSent, adapters.StateWaiting, adapters.StateFailed, adapters.StateNotSent}

// ReportStatus keeps s durably and has it written to the case system. A
// report older than the one kept for the same letter and recipient is
// ignored. It fails only when the report could not be kept.
func (a *Adapter) ReportStatus(ctx context.Context, s adapters.RecipientStatus) error {
	docID, ok := strings.CutPrefix(s.LetterID, "casesys:"+a.name+":")
	if !ok || docID == "" {
		a.log.Warn("status report for a letter that is not from this case system's outbox; ignored", "letter", s.LetterID)
		return nil
	}
	if !slices.Contains(validStates, s.State) {
		return fmt.Errorf("casesys: recipient state %q: must be one of sent, waiting, failed, not_sent", s.State)
	}
	if s.At.IsZero() {
		return errors.New("casesys: a recipient status needs its time (At)")
	}
	rep := reportOf(s)
	if a.st == nil {
		// Nothing to keep it in: write it now or fail, so the caller retries.
		return a.writeReports(ctx, docID, &statusRecord{Reports: map[string]*storedReport{identity(s.Recipient): rep}})
	}
	changed, err := a.keepReport(ctx, docID, identity(s.Recipient), rep)
	if err != nil || !changed {
		return err
	}
	if err := a.updatePending(ctx, func(docs []string) []string {
		if slices.Contains(docs, docID) {
			return nil
		}
		return append(docs, docID)
	}); err != nil {
		return err
	}
	a.flusher.kick(a, docID)
	return nil
}

// reportOf is what is kept of a report: the recipient's role and
// organisation identifiers, digests of email and name, and a code and
// reason within the contract's bounds.
func reportOf(s adapters.RecipientStatus) *storedReport {
	r := &storedReport{
		Role: strings.ToLower(strings.TrimSpace(s.Recipient.Role)), GLN: strings.TrimSpace(s.Recipient.GLN), SOR: strings.TrimSpace(s.Recipient.SOR),
		State: string(s.State), Code: cleanCode(s.Code), Reason: truncate(s.Reason, 1000), Destination: truncate(s.Destination, 200), At: s.At.UTC(),
	}
	if e := strings.ToLower(strings.TrimSpace(s.Recipient.Email)); e != "" {
		r.EmailDigest = opaque("email", e)
	}
	if n := strings.Join(strings.Fields(s.Recipient.Name), " "); n != "" {
		r.NameDigest = opaque("name", n)
	}
	if c := strings.TrimSpace(s.Recipient.CPR); c != "" {
		r.CPRDigest = opaque("cpr", c)
	}
	return r
}

// identity is the key a recipient's report is kept under.
func identity(p letter.Party) string {
	r := reportOf(adapters.RecipientStatus{Recipient: p})
	return opaque("recipient", r.Role, r.GLN, r.SOR, r.EmailDigest, r.NameDigest, r.CPRDigest)
}

var badCode = regexp.MustCompile(`[^A-Za-z0-9_.:-]`)

func cleanCode(c string) string { return truncate(badCode.ReplaceAllString(c, "_"), 64) }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

func (a *Adapter) statusKey(docID string) string {
	return "casesys." + safeKey(a.name) + ".status." + safeKey(docID)
}

func (a *Adapter) pendingKey() string { return "casesys." + safeKey(a.name) + ".status-pending" }

// keepReport stores rep for recipient id of docID unless a newer report
// is kept already; it reports whether it stored it.
func (a *Adapter) keepReport(ctx context.Context, docID, id string, rep *storedReport) (bool, error) {
	key := a.statusKey(docID)
	for {
		rec, rev, err := a.loadRecord(ctx, docID)
		if err != nil {
			return false, err
		}
		if old := rec.Reports[id]; old != nil && rep.At.Before(old.At) {
			return false, nil // out of order: the kept report is newer
		}
		if old := rec.Reports[id]; old != nil && sameReport(old, rep) {
			return false, nil // a repeat
		}
		rec.Reports[id] = rep
		b, _ := json.Marshal(rec)
		if rev == 0 {
			_, err = a.st.Create(ctx, key, b)
		} else {
			_, err = a.st.Update(ctx, key, b, rev)
		}
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, adapters.ErrExists) || errors.Is(err, adapters.ErrConflict):
			continue // another report of the same document; read it again
		default:
			return false, fmt.Errorf("casesys: keep the recipient status: %w", err)
		}
	}
}

func (a *Adapter) loadRecord(ctx context.Context, docID string) (*statusRecord, uint64, error) {
	b, rev, err := a.st.Get(ctx, a.statusKey(docID))
	rec := &statusRecord{}
	switch {
	case errors.Is(err, adapters.ErrNotFound):
		rev = 0
	case err != nil:
		return nil, 0, fmt.Errorf("casesys: read the recipient statuses: %w", err)
	default:
		if err := json.Unmarshal(b, rec); err != nil {
			return nil, 0, fmt.Errorf("casesys: recipient statuses of %s unreadable: %w", docID, err)
		}
	}
	if rec.Reports == nil {
		rec.Reports = map[string]*storedReport{}
	}
	return rec, rev, nil
}

// updatePending changes the list of documents with reports to write; edit
// returns nil for "no change".
func (a *Adapter) updatePending(ctx context.Context, edit func([]string) []string) error {
	key := a.pendingKey()
	for {
		var docs []string
		b, rev, err := a.st.Get(ctx, key)
		switch {
		case errors.Is(err, adapters.ErrNotFound):
			rev = 0
		case err != nil:
			return fmt.Errorf("casesys: read the pending recipient statuses: %w", err)
		default:
			if err := json.Unmarshal(b, &docs); err != nil {
				return fmt.Errorf("casesys: pending recipient statuses unreadable: %w", err)
			}
		}
		next := edit(docs)
		if next == nil {
			return nil
		}
		b, _ = json.Marshal(next)
		if rev == 0 {
			_, err = a.st.Create(ctx, key, b)
		} else {
			_, err = a.st.Update(ctx, key, b, rev)
		}
		switch {
		case err == nil:
			return nil
		case errors.Is(err, adapters.ErrExists) || errors.Is(err, adapters.ErrConflict):
			continue
		default:
			return fmt.Errorf("casesys: record the pending recipient statuses: %w", err)
		}
	}
}

// pendingList is the documents with reports still to write.
func (a *Adapter) pendingList(ctx context.Context) ([]string, error) {
	b, _, err := a.st.Get(ctx, a.pendingKey())
	if errors.Is(err, adapters.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("casesys: read the pending recipient statuses: %w", err)
	}
	var docs []string
	if err := json.Unmarshal(b, &docs); err != nil {
		return nil, fmt.Errorf("casesys: pending recipient statuses unreadable: %w", err)
	}
	return docs, nil
}

// flushDoc writes one document's unwritten reports and, when none is left,
// takes the document off the pending list.
func (a *Adapter) flushDoc(ctx context.Context, docID string) error {
	rec, _, err := a.loadRecord(ctx, docID)
	if err != nil {
		return err
	}
	werr := a.writeReports(ctx, docID, rec)
	// Mark what was written, unless a newer report replaced it meanwhile.
	var rev uint64
	for {
		cur, curRev, err := a.loadRecord(ctx, docID)
		if err != nil {
			return err
		}
		rev = curRev
		changed := false
		for id, c := range cur.Reports {
			if r := rec.Reports[id]; r != nil && r.Written && !c.Written && sameReport(r, c) {
				c.Written, changed = true, true
			}
		}
		if !changed {
			if werr != nil || anyUnwritten(cur) {
				return werr
			}
			break
		}
		b, _ := json.Marshal(cur)
		if _, err := a.st.Update(ctx, a.statusKey(docID), b, curRev); err != nil && !errors.Is(err, adapters.ErrConflict) {
			return fmt.Errorf("casesys: record the written recipient statuses: %w", err)
		}
		// Read again: on a conflict to retry, on success to see what is left.
	}
	if err := a.updatePending(ctx, func(docs []string) []string {
		if !slices.Contains(docs, docID) {
			return nil
		}
		return slices.DeleteFunc(slices.Clone(docs), func(d string) bool { return d == docID })
	}); err != nil {
		return err
	}
	// A report kept between the check and the removal must stay pending.
	if again, againRev, err := a.loadRecord(ctx, docID); err != nil || (againRev != rev && anyUnwritten(again)) {
		return a.updatePending(ctx, func(docs []string) []string {
			if slices.Contains(docs, docID) {
				return nil
			}
			return append(docs, docID)
		})
	}
	return nil
}

// sameReport compares two reports' content, not whether they are written.
func sameReport(x, y *storedReport) bool {
	a, b := *x, *y
	a.Written, b.Written = false, false
	a.At, b.At = time.Time{}, time.Time{}
	return a == b && x.At.Equal(y.At)
}

func anyUnwritten(rec *statusRecord) bool {
	for _, r := range rec.Reports {
		if !r.Written {
			return true
		}
	}
	return false
}

// writeReports sends each unwritten report of rec to the case system and
// sets Written on those it took (or that can never be taken).
func (a *Adapter) writeReports(ctx context.Context, docID string, rec *statusRecord) error {
	if !anyUnwritten(rec) {
		return nil
	}
	path := "/outbox/" + url.PathEscape(docID)
	resp, err := a.api.do(ctx, request{method: http.MethodGet, path: path})
	if err != nil {
		return err
	}
	if resp.status == http.StatusNotFound {
		a.log.Warn("recipient statuses for a document no longer in the case system's outbox; dropped", "document", docID)
		for _, r := range rec.Reports {
			r.Written = true
		}
		return nil
	}
	if resp.status != http.StatusOK {
		return classify("reading an outbox document to report its recipients' statuses", resp)
	}
	var it outboxItem
	if err := json.Unmarshal(resp.body, &it); err != nil {
		return adapters.Retryable("bad_answer", "the case system's outbox answer could not be read", err)
	}
	recipients := it.recipients()
	for _, r := range rec.Reports {
		if r.Written {
			continue
		}
		keys := matchRecipient(r, recipients)
		if len(keys) == 0 {
			a.log.Warn("a recipient status names no recipient of the outbox document; dropped", "document", docID, "role", r.Role, "code", r.Code)
			r.Written = true
			continue
		}
		for _, key := range keys {
			if err := a.writeReport(ctx, docID, key, r); errors.Is(err, errRefused) {
				_, reason, code := adapters.Classify(err)
				a.log.Warn("the case system refused a recipient status; dropped", "document", docID, "recipient", key, "code", code, "reason", reason)
			} else if err != nil {
				return err
			}
		}
		r.Written = true
	}
	return nil
}

// errRefused marks a report the case system will never take (400, 422):
// it is dropped rather than retried for ever. Anything else, an auth
// problem included, is retried at the next poll.
var errRefused = errors.New("the case system refuses this report")

func (a *Adapter) writeReport(ctx context.Context, docID, key string, r *storedReport) error {
	body, _ := json.Marshal(map[string]any{"key": key, "status": r.State, "code": r.Code, "reason": r.Reason, "destination": r.Destination, "at": r.At})
	resp, err := a.api.do(ctx, request{
		method: http.MethodPost, path: "/outbox/" + url.PathEscape(docID) + "/recipients", body: body, contentType: "application/json",
		idemKey: "samhub:" + a.name + ":" + docID + ":status:" + key + ":" + opaque(string(body))[:12],
	})
	if err != nil {
		return err
	}
	switch resp.status {
	case http.StatusOK:
		return nil
	case http.StatusBadRequest, http.StatusUnprocessableEntity:
		return fmt.Errorf("%w: %w", errRefused, classify("reporting a recipient's status to the outbox", resp))
	default:
		return classify("reporting a recipient's status to the outbox", resp)
	}
}

// matchRecipient finds the outbox recipients a report is about: those
// equal in role and every identifier; else those of the role sharing an
// identifier (GLN, SOR, email or CPR); else the only recipient of the role.
func matchRecipient(r *storedReport, recipients []outboxRecipient) []string {
	type cand struct {
		key string
		id  *storedReport
	}
	var same []cand
	for _, o := range recipients {
		id := reportOf(adapters.RecipientStatus{Recipient: o.party})
		if id.Role == r.Role {
			same = append(same, cand{o.key, id})
		}
	}
	pick := func(ok func(*storedReport) bool) []string {
		var keys []string
		for _, c := range same {
			if ok(c.id) {
				keys = append(keys, c.key)
			}
		}
		return keys
	}
	if keys := pick(func(c *storedReport) bool {
		return c.GLN == r.GLN && c.SOR == r.SOR && c.EmailDigest == r.EmailDigest && c.NameDigest == r.NameDigest && c.CPRDigest == r.CPRDigest
	}); len(keys) > 0 {
		return keys
	}
	if keys := pick(func(c *storedReport) bool {
		return (r.GLN != "" && c.GLN == r.GLN) || (r.SOR != "" && c.SOR == r.SOR) || (r.EmailDigest != "" && c.EmailDigest == r.EmailDigest) ||
			(r.CPRDigest != "" && c.CPRDigest == r.CPRDigest)
	}); len(keys) > 0 {
		return keys
	}
	if len(same) == 1 {
		return []string{same[0].key}
	}
	return nil
}

// flusher writes reports in the background right after they are kept, one
// document at a time, so ReportStatus never waits for the case system.
type flusher struct {
	mu      sync.Mutex
	queued  []string
	running bool
}

func (f *flusher) kick(a *Adapter, docID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !slices.Contains(f.queued, docID) {
		f.queued = append(f.queued, docID)
	}
	if !f.running {
		f.running = true
		go f.drain(a)
	}
}

// catchUp queues every document with reports still to write (those a
// background write could not finish, and those of an earlier run), unless
// the flusher is at work already: what it finishes leaves the list, and
// what fails is queued again by the next poll's catch-up.
func (f *flusher) catchUp(ctx context.Context, a *Adapter) {
	if a.st == nil {
		return
	}
	f.mu.Lock()
	busy := f.running
	f.mu.Unlock()
	if busy {
		return
	}
	docs, err := a.pendingList(ctx)
	if err != nil {
		a.log.Warn("recipient statuses not yet written to the case system; trying again at the next poll", "reason", err.Error())
		return
	}
	for _, d := range docs {
		f.kick(a, d)
	}
}

func (f *flusher) drain(a *Adapter) {
	for {
		f.mu.Lock()
		if len(f.queued) == 0 {
			f.running = false
			f.mu.Unlock()
			return
		}
		doc := f.queued[0]
		f.queued = f.queued[1:]
		f.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 2*a.cfg.Timeout)
		if err := a.flushDoc(ctx, doc); err != nil {
			_, reason, code := adapters.Classify(err)
			a.log.Info("recipient status not yet written to the case system; the next poll tries again", "document", doc, "code", code, "reason", reason)
		}
		cancel()
	}
}
