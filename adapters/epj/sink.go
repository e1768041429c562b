package epj

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/adapters/body"
	"github.com/samhub/samhub/adapters/epj/internal/fhir"
	"github.com/samhub/samhub/adapters/httpclient"
	"github.com/samhub/samhub/internal/failpoint"
	"github.com/samhub/samhub/pipeline/letter"
)

// Deliver files l with the region as a Communication. It is idempotent:
// a conditional create on the letter id finds an earlier delivery.
func (a *Adapter) Deliver(ctx context.Context, l *letter.Letter) (adapters.Delivery, error) {
	now := a.now()
	// Checked before any network call: without consent nothing about the
	// child may reach the region, not even a patient search.
	if !l.Consent.Allows(letter.ScopeRegionPsychiatry, now) {
		return adapters.Delivery{}, adapters.Permanent("no_consent", "consent does not cover region psychiatry", nil)
	}
	if l.Patient.Identifier() == "" {
		return adapters.Delivery{}, adapters.Permanent("no_patient", "the letter names no patient (CPR or replacement CPR), so the region cannot file it", nil)
	}
	to, err := a.recipient(l)
	if err != nil {
		return adapters.Delivery{}, err
	}
	patientID, err := a.findPatient(ctx, l.Patient)
	if err != nil {
		return adapters.Delivery{}, err
	}
	// The Communication is encoded once with marks where the attachments'
	// base64 goes, and sent with the attachments read as it goes out.
	var tp body.Template
	doc, err := json.Marshal(a.communication(l, to, patientID, now, &tp))
	if err != nil {
		return adapters.Delivery{}, adapters.Permanent("encode", "the hub could not encode the letter as FHIR", err)
	}
	send, err := tp.Body(doc)
	if err != nil {
		return adapters.Delivery{}, adapters.Permanent("encode", "the hub could not encode the letter as FHIR", err)
	}
	if max := a.cfg.MaxUpload; max > 0 && send.Len() > max {
		return adapters.Delivery{}, &adapters.TooLarge{Size: send.Len(), Limit: max, Setting: "adapters." + a.name + ".max_upload"}
	}
	cond := url.Values{"identifier": {fhir.SystemLetter + "|" + l.ID}}.Encode()
	resp, err := a.c.doStream(ctx, http.MethodPost, "Communication", fhir.ContentType, send, http.Header{"If-None-Exist": {cond}})
	if err != nil {
		return adapters.Delivery{}, err
	}
	if resp.status == http.StatusRequestEntityTooLarge {
		return adapters.Delivery{}, &adapters.TooLarge{Size: send.Len(), Limit: a.cfg.MaxUpload, Err: classify(resp, "letter delivery")}
	}
	if resp.status == http.StatusCreated {
		failpoint.Kill(failpoint.EPJCreated)
	}
	switch resp.status {
	case http.StatusCreated, http.StatusOK:
		if !fhirAnswer(resp.body) && (resp.status != http.StatusCreated || locationID(resp) == "") {
			// A proxy's or login page's 200, or an answer cut off without
			// a Location: nothing says the region holds the letter. Sending again is safe (the
			// conditional create finds a copy stored meanwhile).
			return adapters.Delivery{}, adapters.Retryable("bad_answer",
				fmt.Sprintf("the region's gateway answered the letter delivery with HTTP %d but not with a FHIR resource, so it is not known to have the letter; it is sent again", resp.status), nil)
		}
		d := adapters.Delivery{RemoteID: createdID(resp), Existing: resp.status == http.StatusOK}
		a.log.InfoContext(ctx, "epj: letter delivered", slog.Any("letter", l), "remote_id", d.RemoteID, "existing", d.Existing)
		return d, nil
	case http.StatusPreconditionFailed:
		return adapters.Delivery{}, adapters.Permanent("ambiguous_duplicate",
			"the region already holds more than one copy of this letter; ask the region to remove the extra copies, then resend", classify(resp, "letter delivery"))
	case http.StatusConflict:
		// HAPI FHIR answers 409 to the loser of two conditional creates
		// racing on one condition (another attempt of this letter, from a
		// replica or a resend, stored first). Trying again is safe and
		// settles it: the conditional create then finds that copy (200)
		// and makes no second. A 409 that does not pass is parked after
		// max_attempts.
		return adapters.Delivery{}, adapters.Retryable("http_409",
			"the region's gateway answered the letter delivery with a conflict (HTTP 409), as a FHIR server does when two attempts to deliver the same letter meet; it is sent again, and finds the copy stored if there is one", classify(resp, "letter delivery"))
	}
	return adapters.Delivery{}, classify(resp, "letter delivery")
}

// findPatient returns the region's Patient id for p. The identifier goes in
// a form body so no CPR ever appears in a URL or an access log.
func (a *Adapter) findPatient(ctx context.Context, p *letter.Patient) (string, error) {
	system, value := fhir.SystemCPR, p.CPR
	if value == "" {
		system, value = fhir.SystemXeCPR, p.ReplacementID
	}
	form := url.Values{"identifier": {system + "|" + value}}.Encode()
	resp, err := a.c.do(ctx, http.MethodPost, "Patient/_search", "application/x-www-form-urlencoded", []byte(form), nil)
	if err != nil {
		return "", err
	}
	if resp.status != http.StatusOK {
		return "", classify(resp, "patient search")
	}
	var b fhir.Bundle
	if err := json.Unmarshal(resp.body, &b); err != nil || b.ResourceType != "Bundle" {
		return "", adapters.Retryable("bad_bundle", "the region's gateway answered the patient search with something other than a Bundle", err)
	}
	var ids []string
	for _, e := range b.Entry {
		var h fhir.ResourceHead
		if json.Unmarshal(e.Resource, &h) == nil && h.ResourceType == "Patient" && h.ID != "" {
			ids = append(ids, h.ID)
		}
	}
	switch len(ids) {
	case 0:
		return "", adapters.Permanent("patient_unknown", "the region does not know the patient; check the CPR number or ask the region to register the child", nil)
	case 1:
		return ids[0], nil
	}
	return "", adapters.Permanent("patient_ambiguous", "the region's patient search found more than one patient for the child; the region must resolve it", nil)
}

// recipient is the department a delivery goes to: the one addressee the
// pipeline resolved (l.To), by its SOR code, which is how the region files
// a Communication; the configured recipient when the letter was given
// none. An addressee the Communication cannot name (no SOR, only a GLN)
// or more than one is refused rather than sent to the configured
// department, which would be another party than the one resolved.
func (a *Adapter) recipient(l *letter.Letter) (letter.Party, error) {
	switch {
	case len(l.To) == 0:
		return letter.Party{SOR: a.cfg.Recipient}, nil
	case len(l.To) > 1:
		return letter.Party{}, adapters.Permanent("receiver_unresolved", fmt.Sprintf("a letter to the region goes to exactly one department; this delivery names %d (resolve the receiver in the document or the receiver directory)", len(l.To)), nil)
	case l.To[0].SOR == "":
		return letter.Party{}, adapters.Permanent("receiver_unresolved", "the region's department has no SOR code, by which the region files letters (add it to the receiver directory)", nil)
	}
	return l.To[0], nil
}

// communication maps a letter onto a Communication to the department to.
// Sender and recipient are contained Organizations whose references also
// carry the SOR identifier, so a gateway can search on them without
// resolving "#…".
func (a *Adapter) communication(l *letter.Letter, dept letter.Party, patientID string, now time.Time, tp *body.Template) *fhir.Communication {
	self := fhir.Organization{ResourceType: "Organization", ID: "sender", Name: a.cfg.Self.Name,
		Identifier: []fhir.Identifier{{System: fhir.SystemSOR, Value: a.cfg.Self.SOR}}}
	if a.cfg.Self.GLN != "" {
		self.Identifier = append(self.Identifier, fhir.Identifier{System: fhir.SystemGLN, Value: a.cfg.Self.GLN})
	}
	to := dept.SOR
	region := fhir.Organization{ResourceType: "Organization", ID: "recipient", Name: dept.Name}
	region.Identifier = []fhir.Identifier{{System: fhir.SystemSOR, Value: to}}

	sent := l.Sent
	if sent.IsZero() {
		sent = now
	}
	c := &fhir.Communication{
		ResourceType: "Communication",
		Contained:    []fhir.Organization{self, region},
		Identifier:   []fhir.Identifier{{System: fhir.SystemLetter, Value: l.ID}},
		Status:       "completed",
		Category:     []fhir.CodeableConcept{{Coding: []fhir.Coding{{System: fhir.SystemKind, Code: string(l.Kind)}}}},
		Subject:      &fhir.Reference{Reference: "Patient/" + patientID},
		Sent:         sent.Format(time.RFC3339),
		Sender:       &fhir.Reference{Reference: "#sender", Identifier: &fhir.Identifier{System: fhir.SystemSOR, Value: a.cfg.Self.SOR}},
		Recipient:    []fhir.Reference{{Reference: "#recipient", Identifier: &fhir.Identifier{System: fhir.SystemSOR, Value: to}}},
	}
	switch l.Priority {
	case "routine", "urgent", "asap", "stat":
		c.Priority = l.Priority
	}
	if l.Subject != "" {
		c.Topic = &fhir.CodeableConcept{Text: l.Subject}
	}
	if l.InReplyTo != "" {
		c.InResponseTo = []fhir.Reference{{Identifier: &fhir.Identifier{System: fhir.SystemLetter, Value: l.InReplyTo}}}
	}
	if l.Text != "" {
		c.Payload = append(c.Payload, fhir.CommunicationPayload{ContentString: l.Text})
	}
	for i, at := range l.Attachments {
		c.Payload = append(c.Payload, fhir.CommunicationPayload{ContentAttachment: &fhir.Attachment{
			ContentType: at.ContentType, Title: at.Name, Data: mark(tp, fmt.Sprintf("attachment %d", i+1), at.Open, at.Len()), Size: at.Len(),
		}})
	}
	if o := l.Original; o.Len() > 0 || o.Streamed() {
		ct := l.Original.ContentType
		if ct == "" {
			ct = "application/octet-stream"
		}
		if l.Original.Charset != "" && !strings.Contains(ct, "charset") {
			ct = mime.FormatMediaType(ct, map[string]string{"charset": l.Original.Charset})
		}
		title := l.Original.Filename
		if title == "" {
			title = "original"
		}
		c.Payload = append(c.Payload, fhir.CommunicationPayload{ContentAttachment: &fhir.Attachment{
			ContentType: ct, Title: title, Data: mark(tp, "the original", o.Open, o.Len()), Size: o.Len(),
		}})
	}
	return c
}

// mark puts a part's mark where its bytes go; an empty part is written
// as it is (FHIR has no empty base64Binary: the element is left out).
func mark(tp *body.Template, what string, open letter.Opener, size int64) []byte {
	if size == 0 {
		return nil
	}
	return tp.Mark(what, open, size)
}

// fhirAnswer reports an answer to a create that a FHIR server gives: no
// body (Prefer: return=minimal) or a whole JSON resource (the
// Communication, or an OperationOutcome).
func fhirAnswer(b []byte) bool {
	if len(bytes.TrimSpace(b)) == 0 {
		return true
	}
	var h fhir.ResourceHead
	return json.Unmarshal(b, &h) == nil && (h.ResourceType == "Communication" || h.ResourceType == "OperationOutcome")
}

// createdID reads the id from the returned resource, or else from Location
// (…/Communication/{id}/_history/{v}).
func createdID(resp *response) string {
	var h fhir.ResourceHead
	if json.Unmarshal(resp.body, &h) == nil && h.ID != "" {
		return h.ID
	}
	return locationID(resp)
}

// locationID reads the id from Location (…/Communication/{id}/_history/{v}).
func locationID(resp *response) string {
	parts := strings.Split(strings.TrimSuffix(resp.header.Get("Location"), "/"), "/")
	for i := len(parts) - 2; i >= 0; i-- {
		if parts[i] == "Communication" {
			return parts[i+1]
		}
	}
	return ""
}

// Capacity: deliveries at once, one per connection to the system.
func (a *Adapter) Capacity() int { return httpclient.MaxConnsPerHost }
