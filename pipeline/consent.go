package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/samhub/samhub/pipeline/broker"
	"github.com/samhub/samhub/pipeline/letter"
)

// consentKey keys the registry by a hash of the patient identifier, so the
// bucket is not a list of CPR numbers. The identifier is normalised the way
// the retry queue's patient token is (no dash, upper case), so a consent
// typed as 250947-9989 is the one a letter about 2509479989 finds.
func consentKey(patientID string) string {
	return "p." + broker.Token("patient:"+strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(patientID), "-", "")))
}

// consents reads and records the coordinator's consent register (the
// consent KV bucket). Destinations read it only for letters a rule needs
// consent for.
type consents struct {
	kv jetstream.KeyValue
}

// RecordConsent stores the consent the coordinator recorded for a patient
// (a withdrawal is a consent with WithdrawnAt set). Callers audit it.
func (h *Hub) RecordConsent(ctx context.Context, patientID string, c letter.Consent) error {
	return h.consents.record(ctx, patientID, c)
}

// RecordedConsent returns the coordinator's record, or nil.
func (h *Hub) RecordedConsent(ctx context.Context, patientID string) (*letter.Consent, error) {
	return h.consents.recorded(ctx, patientID)
}

// ConsentHistory returns the recorded consents of a patient, oldest first
// (the last is the one in force). Callers audit the read.
func (h *Hub) ConsentHistory(ctx context.Context, patientID string) ([]ConsentRecord, error) {
	return h.consents.history(ctx, patientID)
}

func (c *consents) record(ctx context.Context, patientID string, rec letter.Consent) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	_, err = c.kv.Put(ctx, consentKey(patientID), b)
	return err
}

func (c *consents) recorded(ctx context.Context, patientID string) (*letter.Consent, error) {
	if patientID == "" {
		return nil, nil
	}
	return c.at(ctx, consentKey(patientID))
}

// byToken is recorded for a patient token (retryq.PatientToken, the same
// hash consentKey uses), for the council's register, which keeps tokens
// only.
func (c *consents) byToken(ctx context.Context, token string) (*letter.Consent, error) {
	if token == "" {
		return nil, nil
	}
	return c.at(ctx, "p."+token)
}

func (c *consents) at(ctx context.Context, key string) (*letter.Consent, error) {
	e, err := c.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var rec letter.Consent
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return nil, err
	}
	return &rec, nil
}

// ConsentRecord is one recorded statement of a patient's consent, as the
// coordinator recorded it, with when.
type ConsentRecord struct {
	Consent  letter.Consent `json:"consent"`
	Recorded time.Time      `json:"recorded"`
	Revision uint64         `json:"revision"`
}

func (c *consents) history(ctx context.Context, patientID string) ([]ConsentRecord, error) {
	es, err := c.kv.History(ctx, consentKey(patientID))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []ConsentRecord
	for _, e := range es {
		if e.Operation() != jetstream.KeyValuePut {
			continue
		}
		var rec letter.Consent
		if err := json.Unmarshal(e.Value(), &rec); err != nil {
			continue
		}
		out = append(out, ConsentRecord{Consent: rec, Recorded: e.Created(), Revision: e.Revision()})
	}
	return out, nil
}

// effective is the consent a letter goes by: the coordinator's record
// when there is one, else the letter's own (effectiveConsent).
func (c *consents) effective(ctx context.Context, l *letter.Letter) (*letter.Consent, error) {
	rec, err := c.recorded(ctx, l.Patient.Identifier())
	if err != nil {
		return nil, err
	}
	return effectiveConsent(rec, l.Consent, l.Received), nil
}

// effectiveConsent is the coordinator's record when there is one (the
// checked statement, which grants the scopes), else the letter's own. An
// objection the letter states after the record was given still stands:
// a withdrawal dated after it, or a young person's refusal in a letter
// received after it. Deny by default: a record made on Monday must not
// carry Thursday's letter past the objection it reports.
func effectiveConsent(rec, own *letter.Consent, received time.Time) *letter.Consent {
	if rec == nil {
		return own
	}
	if own == nil {
		return rec
	}
	merged := *rec
	if w := own.WithdrawnAt; !w.IsZero() && w.After(rec.GivenAt) && (merged.WithdrawnAt.IsZero() || w.Before(merged.WithdrawnAt)) {
		merged.WithdrawnAt = w
	}
	if own.YoungPersonRefused && received.After(rec.GivenAt) {
		merged.YoungPersonRefused = true
	}
	return &merged
}
