package casesyssim

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The outbox: documents the council marked ready to send. The hub takes a
// document (accept) and then reports each recipient's fate; the document's
// status is derived from those reports, so the council sees "sent" only
// when every recipient it named was sent the document.

var recipientKey = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// assignKeys gives every recipient without a key its default one (gp,
// region, parent-1, parent-2 …) and checks that keys are unique.
func assignKeys(r *OutboxRecipients) error {
	seen := map[string]bool{}
	check := func(field string, key *string, def string) error {
		if *key == "" {
			*key = def
		}
		if !recipientKey.MatchString(*key) {
			return fmt.Errorf("%s.key must be 1-64 letters, digits, '_', '.' or '-'", field)
		}
		if seen[*key] {
			return fmt.Errorf("%s.key %q is used by another recipient of the document", field, *key)
		}
		seen[*key] = true
		return nil
	}
	if r.GP != nil {
		if err := check("recipients.gp", &r.GP.Key, "gp"); err != nil {
			return err
		}
	}
	for i := range r.Parents {
		field := "recipients.parents[" + strconv.Itoa(i) + "]"
		if err := check(field, &r.Parents[i].Key, "parent-"+strconv.Itoa(i+1)); err != nil {
			return err
		}
		if c := r.Parents[i].CPR; c != "" && !cprPattern.MatchString(c) {
			return fmt.Errorf("%s.cpr must be a CPR number of 10 digits", field)
		}
	}
	if r.Region != nil {
		if err := check("recipients.region", &r.Region.Key, "region"); err != nil {
			return err
		}
	}
	return nil
}

// recipientEntries lists a document's recipients, pending, in the order
// gp, parents, region.
func recipientEntries(r OutboxRecipients) []RecipientStatus {
	var out []RecipientStatus
	if r.GP != nil {
		out = append(out, RecipientStatus{Key: r.GP.Key, Recipient: Party{Role: "gp", Name: r.GP.Name, GLN: r.GP.GLN, SOR: r.GP.SOR}, Status: RecipientPending})
	}
	for _, p := range r.Parents {
		out = append(out, RecipientStatus{Key: p.Key, Recipient: Party{Role: "parents", Name: p.Name, Email: p.Email}, Status: RecipientPending})
	}
	if r.Region != nil {
		out = append(out, RecipientStatus{Key: r.Region.Key, Recipient: Party{Role: "region", Name: r.Region.Name, GLN: r.Region.GLN, SOR: r.Region.SOR}, Status: RecipientPending})
	}
	return out
}

// upgradeOutbox brings an outbox state written by an older simulator
// (no keys, no recipient statuses, "sent" set by the hub as soon as it
// had stored the letter) to the current shape. An old "sent" only ever
// meant "taken", so it becomes accepted with every recipient pending.
func upgradeOutbox(o *OutboxState) {
	if o.RecipientStatus == nil {
		_ = assignKeys(&o.Recipients)
		o.RecipientStatus = recipientEntries(o.Recipients)
		if o.Status == "sent" && o.AcceptedAt == nil {
			o.AcceptedAt, o.SentAt = o.SentAt, nil
		}
	}
	o.Status = Derive(o)
}

// Derive is the document status an outbox state implies:
//
//	ready        not yet accepted by the hub
//	accepted     accepted; no recipient has a status yet (or there are none)
//	failed       some recipient failed (whatever the others' statuses)
//	waiting      otherwise, some recipient is waiting or still pending
//	sent         every recipient was sent
//	partly-sent  every recipient settled: some sent, the others not sent
//	not-sent     every recipient settled and none was sent
func Derive(o *OutboxState) string {
	if o.AcceptedAt == nil {
		return OutboxReady
	}
	var pending, waiting, failed, sent int
	for _, r := range o.RecipientStatus {
		switch r.Status {
		case RecipientSent:
			sent++
		case RecipientWaiting:
			waiting++
		case RecipientFailed:
			failed++
		case RecipientNotSent:
		default:
			pending++
		}
	}
	n := len(o.RecipientStatus)
	switch {
	case pending == n:
		return OutboxAccepted
	case failed > 0:
		return OutboxFailed
	case pending+waiting > 0:
		return OutboxWaiting
	case sent == n:
		return OutboxSent
	case sent > 0:
		return OutboxPartlySent
	default:
		return OutboxNotSent
	}
}

func (s *Server) outboxItem(d *Document) OutboxItem {
	it := OutboxItem{
		DocumentID: d.ID, CaseID: d.CaseID, Status: d.Outbox.Status, Kind: d.Outbox.Kind, Title: d.Title, Text: d.Outbox.Text,
		ReadyAt: d.Outbox.ReadyAt, AcceptedAt: d.Outbox.AcceptedAt, SentAt: d.Outbox.SentAt, Recipients: d.Outbox.Recipients,
		RecipientStatus: nonNil(slices.Clone(d.Outbox.RecipientStatus)), Files: []OutboxFile{},
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
		status = OutboxReady
	}
	if !slices.Contains(OutboxStatuses, status) {
		return problem(http.StatusBadRequest, "invalid-query", "Invalid query parameter", "", fieldErr{"status", "must be one of " + strings.Join(OutboxStatuses, ", ")})
	}
	return jsonReply(http.StatusOK, map[string]any{"results": s.outboxItems(status)})
}

// outboxItems lists outbox documents with status ("" for all), oldest
// first; callers hold s.mu.
func (s *Server) outboxItems(status string) []OutboxItem {
	var docs []*Document
	for _, d := range s.st.Documents {
		if d.Outbox != nil && (status == "" || d.Outbox.Status == status) {
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
	return out
}

func (s *Server) lookupOutbox(c *call) (*Document, *reply) {
	d, ok := s.st.Documents[c.r.PathValue("docId")]
	if !ok || d.Outbox == nil {
		p := problem(http.StatusNotFound, "outbox-item-not-found", "No outbox item with this document id", "", fieldErr{"docId", "does not name an outbox document"})
		return nil, &p
	}
	return d, nil
}

func (s *Server) getOutbox(c *call) reply {
	d, rep := s.lookupOutbox(c)
	if rep != nil {
		return *rep
	}
	return jsonReply(http.StatusOK, s.outboxItem(d))
}

// accept records that the hub took the document; it leaves the ready list.
func (s *Server) acceptOutbox(c *call) reply {
	d, rep := s.lookupOutbox(c)
	if rep != nil {
		return *rep
	}
	changed := s.accept(d)
	r := jsonReply(http.StatusOK, s.outboxItem(d))
	r.changed = changed
	return r
}

func (s *Server) accept(d *Document) bool {
	if d.Outbox.AcceptedAt != nil {
		return false
	}
	now := s.now().UTC()
	d.Outbox.AcceptedAt = &now
	d.Outbox.Status = Derive(d.Outbox)
	s.dirty[d.ID] = true
	return true
}

type recipientReport struct {
	Key         string     `json:"key"`
	Status      string     `json:"status"`
	Code        string     `json:"code"`
	Reason      string     `json:"reason"`
	Destination string     `json:"destination"`
	At          *time.Time `json:"at"`
}

var reportCode = regexp.MustCompile(`^[A-Za-z0-9_.:-]{0,64}$`)

// reportRecipient records one recipient's status. A report older than the
// one kept for the recipient changes nothing (reports may arrive out of
// order from several hub replicas); a report for a document still ready
// accepts it, since the hub had it.
func (s *Server) reportRecipient(c *call) reply {
	var in recipientReport
	if rep := decodeJSON(c, &in); rep != nil {
		return *rep
	}
	var errs []fieldErr
	if in.Key == "" {
		errs = append(errs, fieldErr{"key", "is required"})
	}
	if !slices.Contains([]string{RecipientSent, RecipientWaiting, RecipientFailed, RecipientNotSent}, in.Status) {
		errs = append(errs, fieldErr{"status", "must be sent, waiting, failed or not_sent"})
	}
	if !reportCode.MatchString(in.Code) {
		errs = append(errs, fieldErr{"code", "must be at most 64 letters, digits, '_', '.', ':' or '-'"})
	}
	if len(in.Reason) > 1000 {
		errs = append(errs, fieldErr{"reason", "must be at most 1000 bytes"})
	}
	if len(in.Destination) > 200 {
		errs = append(errs, fieldErr{"destination", "must be at most 200 bytes"})
	}
	if in.At == nil {
		errs = append(errs, fieldErr{"at", "is required (RFC 3339 date-time)"})
	}
	if len(errs) > 0 {
		return invalid(errs...)
	}
	d, rep := s.lookupOutbox(c)
	if rep != nil {
		return *rep
	}
	i := slices.IndexFunc(d.Outbox.RecipientStatus, func(r RecipientStatus) bool { return r.Key == in.Key })
	if i < 0 {
		return invalid(fieldErr{"key", "does not name a recipient of the document"})
	}
	changed := s.accept(d)
	e := &d.Outbox.RecipientStatus[i]
	if e.At == nil || !in.At.Before(*e.At) {
		at := in.At.UTC()
		e.Status, e.Code, e.Reason, e.Destination, e.At = in.Status, in.Code, in.Reason, in.Destination, &at
		d.Outbox.Status = Derive(d.Outbox)
		switch {
		case d.Outbox.Status != OutboxSent:
			d.Outbox.SentAt = nil
		case d.Outbox.SentAt == nil:
			now := s.now().UTC()
			d.Outbox.SentAt = &now
		}
		s.dirty[d.ID] = true
		changed = true
	}
	r := jsonReply(http.StatusOK, s.outboxItem(d))
	r.changed = changed
	return r
}
