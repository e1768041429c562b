package casesys

import (
	"context"
	"encoding/json"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/internal/failpoint"
	"github.com/samhub/samhub/pipeline/letter"
)

// Run polls the outbox every poll_interval: it publishes each ready
// document as a letter, accepting it in the case system only once the hub
// holds the letter, and has the recipients' statuses the case system has
// not taken yet written in the background (status.go). With poll_interval
// 0 it only waits for ctx.
func (a *Adapter) Run(ctx context.Context, pub adapters.Publisher) error {
	if a.cfg.PollInterval == 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(a.cfg.PollInterval)
	defer t.Stop()
	for {
		if err := a.pollOnce(ctx, pub); err != nil && ctx.Err() == nil {
			class, reason, code := adapters.Classify(err)
			a.log.Warn("case system outbox poll failed; trying again at the next poll", "class", class.String(), "code", code, "reason", reason)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

type outboxOrg struct {
	Key  string `json:"key"`
	Name string `json:"name"`
	GLN  string `json:"gln"`
	SOR  string `json:"sor"`
}

type outboxItem struct {
	DocumentID string    `json:"documentId"`
	CaseID     string    `json:"caseId"`
	Kind       string    `json:"kind"`
	Title      string    `json:"title"`
	Text       string    `json:"text"`
	ReadyAt    time.Time `json:"readyAt"`
	Recipients struct {
		GP      *outboxOrg `json:"gp"`
		Parents []struct {
			Key   string `json:"key"`
			Name  string `json:"name"`
			Email string `json:"email"`
			CPR   string `json:"cpr"` // Digital Post reaches a custody holder by it
		} `json:"parents"`
		Region *outboxOrg `json:"region"`
	} `json:"recipients"`
	Referral *referralView `json:"referral"`
	Files    []struct {
		Name        string `json:"name"`
		ContentType string `json:"contentType"`
		SHA256      string `json:"sha256"`
		Href        string `json:"href"`
	} `json:"files"`
	raw json.RawMessage
}

// outboxRecipient is one recipient the document names: its key in the
// case system and the party the letter names.
type outboxRecipient struct {
	key   string
	party letter.Party
}

// recipients lists the document's recipients as the letter's Receivers
// (gp, parents, region). Status reports are mapped back through the same
// list, so a party reported by the pipeline finds its key exactly.
func (it *outboxItem) recipients() []outboxRecipient {
	var out []outboxRecipient
	if gp := it.Recipients.GP; gp != nil {
		out = append(out, outboxRecipient{gp.Key, letter.Party{Role: letter.RoleGP, Name: gp.Name, GLN: gp.GLN, SOR: gp.SOR}})
	}
	for _, p := range it.Recipients.Parents {
		out = append(out, outboxRecipient{p.Key, letter.Party{Role: letter.RoleParents, Name: p.Name, Email: p.Email, CPR: strings.TrimSpace(p.CPR)}})
	}
	if r := it.Recipients.Region; r != nil {
		out = append(out, outboxRecipient{r.Key, letter.Party{Role: letter.RoleRegion, Name: r.Name, GLN: r.GLN, SOR: r.SOR}})
	}
	return out
}

// Rounds of the outbox: a ready list is published in rounds of at most
// roundMax letters or roundBytes of files, so a backlog (after the hub or
// the broker was down) goes into the hub's batches, one synced write per
// round, without holding every file of the backlog in memory at once.
const (
	roundMax   = 128
	roundBytes = 4 << 20
)

// pollOnce publishes every ready outbox document in order, in rounds, and
// accepts each in the case system once the hub holds its letter. It stops
// at a failure that may pass (the case system or the broker), so the next
// poll starts again from there; a document that can never make a letter is
// left in the outbox with a warning, the later documents of its case wait
// behind it (a case's letters keep their order), and the other cases go on.
//
// Recipient statuses are written by the background flusher (status.go),
// never on the poll's path: a slow status write must not hold back the
// next recommendation.
//
// Publishing is the checkpoint's only write: the letter id is the
// document's, so after a crash between publish and accept the document is
// published again and the letter stream refuses the copy (Duplicate), and
// only then accepted.
func (a *Adapter) pollOnce(ctx context.Context, pub adapters.Publisher) error {
	a.flusher.catchUp(ctx, a)
	resp, err := a.api.do(ctx, request{method: http.MethodGet, path: "/outbox", query: url.Values{"status": {"ready"}}})
	if err != nil {
		return err
	}
	if resp.status != http.StatusOK {
		return classify("reading the outbox", resp)
	}
	var list struct {
		Results []json.RawMessage `json:"results"`
	}
	if err := json.Unmarshal(resp.body, &list); err != nil {
		return adapters.Retryable("bad_answer", "the case system's outbox answer could not be read", err)
	}
	cases := map[string]*caseView{}
	held := map[string]bool{} // cases with a document left in the outbox: their later ones wait
	var docs []string
	var items []adapters.Item
	size := 0
	for _, raw := range list.Results {
		var it outboxItem
		if err := json.Unmarshal(raw, &it); err != nil || it.DocumentID == "" || it.CaseID == "" {
			a.log.Warn("skipping an outbox entry that could not be read")
			continue
		}
		it.raw = raw
		if held[it.CaseID] {
			a.log.Info("outbox document waits behind an earlier one of its case left in the outbox", "document", it.DocumentID)
			continue
		}
		l, err := a.outboxLetter(ctx, &it, cases)
		if err != nil {
			if class, reason, code := adapters.Classify(err); class == adapters.ClassPermanent {
				a.log.Warn("outbox document cannot be read; left in the outbox", "document", it.DocumentID, "code", code, "reason", reason)
				held[it.CaseID] = true
				continue
			}
			// What was read before it still goes.
			if perr := a.publishRound(ctx, pub, docs, items); perr != nil {
				return perr
			}
			return err
		}
		if err := l.Validate(); err != nil {
			a.log.Warn("outbox document does not make a valid letter; left in the outbox", "document", it.DocumentID)
			held[it.CaseID] = true
			continue
		}
		docs, items = append(docs, it.DocumentID), append(items, adapters.Item{Letter: l})
		size += len(l.Original.Data)
		for _, f := range l.Attachments {
			size += len(f.Data)
		}
		if len(items) == roundMax || size >= roundBytes {
			if err := a.publishRound(ctx, pub, docs, items); err != nil {
				return err
			}
			docs, items, size = nil, nil, 0
		}
	}
	return a.publishRound(ctx, pub, docs, items)
}

// publishRound stores a round of outbox letters (docs[i] made items[i])
// and accepts in the case system each document whose letter the hub holds
// now. It returns the first failure; a document not accepted stays ready
// for the next poll. A letter not stored holds back the later letters of
// its thread in the same round (adapters.PublishBatch), so a thread is
// never published out of order.
func (a *Adapter) publishRound(ctx context.Context, pub adapters.Publisher, docs []string, items []adapters.Item) error {
	if len(items) == 0 {
		return nil
	}
	res := adapters.PublishBatch(ctx, pub, items)
	var first error
	for i, r := range res {
		if r.Outcome == adapters.Failed {
			if first == nil {
				first = r.Err
			}
			continue
		}
		failpoint.Kill(failpoint.OutboxPublished)
		a.log.Info("outbox document published", slog.Any("letter", items[i].Letter), "document", docs[i], "outcome", r.Outcome.String())
		if err := a.accept(ctx, docs[i]); err != nil {
			return err // the case system is in trouble: the rest wait for the next poll
		}
	}
	return first
}

// accept marks an outbox document as taken by the hub.
func (a *Adapter) accept(ctx context.Context, docID string) error {
	resp, err := a.api.do(ctx, request{method: http.MethodPost, path: "/outbox/" + url.PathEscape(docID) + "/accept", idemKey: "samhub:" + a.name + ":" + docID + ":accept"})
	if err != nil {
		return err
	}
	if resp.status != http.StatusOK {
		return classify("accepting an outbox document", resp)
	}
	return nil
}

var unsafeKey = regexp.MustCompile(`[^A-Za-z0-9_=.-]`)

func safeKey(s string) string { return unsafeKey.ReplaceAllString(s, "_") }

// outboxLetter turns an outbox entry into a letter. The letter id is
// deterministic, so publishing again after a crash is de-duplicated by the
// broker.
func (a *Adapter) outboxLetter(ctx context.Context, it *outboxItem, cases map[string]*caseView) (*letter.Letter, error) {
	cs, ok := cases[it.CaseID]
	if !ok {
		resp, err := a.api.do(ctx, request{method: http.MethodGet, path: "/cases/" + url.PathEscape(it.CaseID)})
		if err != nil {
			return nil, err
		}
		if resp.status != http.StatusOK {
			return nil, classify("reading the case of an outbox document", resp)
		}
		cs = &caseView{}
		if err := json.Unmarshal(resp.body, cs); err != nil {
			return nil, adapters.Retryable("bad_answer", "the case system's case answer could not be read", err)
		}
		cases[it.CaseID] = cs
	}
	kind := letter.Kind(it.Kind)
	if !slices.Contains(letter.Kinds, kind) {
		kind = letter.KindRecommendation
	}
	s := a.cfg.Outbox.Sender
	sender := letter.Party{Role: s.Role, Name: s.Name, GLN: s.GLN, SOR: s.SOR, Municipality: s.Municipality, Unit: s.Unit, Email: s.Email}
	if cs.ContactPerson != nil && cs.ContactPerson.Email != "" {
		sender.Email = cs.ContactPerson.Email // replies reach the caseworker
	}
	l := &letter.Letter{
		ID:       "casesys:" + a.name + ":" + it.DocumentID,
		Kind:     kind,
		Format:   "casesys",
		Source:   a.name,
		Received: a.now().UTC(),
		Sent:     it.ReadyAt,
		Sender:   sender,
		Subject:  it.Title,
		Text:     it.Text,
		Patient:  patient(cs),
		Consent:  consent(cs.Consent),
		// The sink recognises its own document by it (sink.go).
		SourceDocumentID: it.DocumentID,
		Meta:             map[string]string{MetaCaseID: it.CaseID},
	}
	if cs.ContactPerson != nil && cs.ContactPerson.Email != "" {
		// The hub's notices ("answered", "parked") also reach the case's
		// contact person.
		l.ContactEmail = cs.ContactPerson.Email
	}
	ref := it.Referral
	if ref == nil {
		ref = cs.Referral
	}
	if ref != nil {
		l.ThreadID, l.InReplyTo = ref.ThreadID, ref.LetterID
	}
	for _, r := range it.recipients() {
		l.Receivers = append(l.Receivers, r.party)
	}
	for i, f := range it.Files {
		data, err := a.download(ctx, f.Href)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			_, params, _ := mime.ParseMediaType(f.ContentType)
			l.Original = letter.Original{Data: data, ContentType: f.ContentType, Charset: params["charset"], Filename: f.Name, SHA256: letter.Digest(data)}
			continue
		}
		l.Attachments = append(l.Attachments, letter.NewAttachment(f.Name, f.ContentType, data))
	}
	if l.Original.Data == nil {
		// A document without files: keep the outbox entry itself as the original.
		l.Original = letter.Original{Data: it.raw, ContentType: "application/json", Filename: "outbox.json", SHA256: letter.Digest(it.raw)}
	}
	return l, nil
}

// download fetches a file by the href the outbox gave (relative to the
// API base URL).
func (a *Adapter) download(ctx context.Context, href string) ([]byte, error) {
	u, err := url.Parse(href)
	if err != nil || u.IsAbs() || !strings.HasPrefix(u.Path, "/") {
		return nil, adapters.Permanent("bad_answer", "the case system's outbox names a file with an unusable link", err)
	}
	resp, err := a.api.do(ctx, request{method: http.MethodGet, path: u.EscapedPath()})
	if err != nil {
		return nil, err
	}
	if resp.status != http.StatusOK {
		return nil, classify("downloading an outbox document's file", resp)
	}
	return resp.body, nil
}

// patient is the child of an outbox letter, from the case.
func patient(cs *caseView) *letter.Patient {
	pp := cs.PrimaryParty
	if pp.CPR == "" && pp.ReplacementID == "" {
		return nil
	}
	p := &letter.Patient{CPR: pp.CPR}
	if p.CPR == "" {
		p.ReplacementID, p.ReplacementSystem = pp.ReplacementID, pp.ReplacementSystem
	}
	// The parts as the letters gave them, so several given names, a
	// family name of two words and a child whose family name is unknown
	// all come back as they went in; only a case that has nothing but a
	// full name (typed by a caseworker) is split, last word as family name.
	p.GivenName, p.FamilyName = pp.GivenName, pp.FamilyName
	if p.GivenName == "" && p.FamilyName == "" {
		p.GivenName, p.FamilyName = splitName(pp.Name)
	}
	return p
}

func consent(c *consentView) *letter.Consent {
	if c == nil {
		return nil
	}
	out := &letter.Consent{GivenBy: c.GivenBy, Form: c.Form, YoungPersonRefused: c.YoungPersonRefused}
	if c.GivenAt != nil {
		out.GivenAt = *c.GivenAt
	}
	if c.WithdrawnAt != nil {
		out.WithdrawnAt = *c.WithdrawnAt
	}
	for _, s := range c.Scopes {
		out.Scopes = append(out.Scopes, letter.Scope(s))
	}
	return out
}
