package pipeline

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/samhub/samhub/pipeline/broker"
	"github.com/samhub/samhub/pipeline/letter"
)

// consentKey keys the registry by a hash of the patient identifier, so the
// bucket is not a list of CPR numbers.
func consentKey(patientID string) string { return "p." + broker.Token("patient:"+patientID) }

// RecordConsent stores the consent the coordinator recorded for a patient
// (a withdrawal is a consent with WithdrawnAt set). Callers audit it.
func (h *Hub) RecordConsent(ctx context.Context, patientID string, c letter.Consent) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	_, err = h.consents.Put(ctx, consentKey(patientID), b)
	return err
}

// RecordedConsent returns the coordinator's record, or nil.
func (h *Hub) RecordedConsent(ctx context.Context, patientID string) (*letter.Consent, error) {
	if patientID == "" {
		return nil, nil
	}
	e, err := h.consents.Get(ctx, consentKey(patientID))
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var c letter.Consent
	if err := json.Unmarshal(e.Value(), &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// effectiveConsent is the coordinator's record when there is one (it is the
// newer, checked statement and carries withdrawals), else the letter's own.
func (h *Hub) effectiveConsent(ctx context.Context, l *letter.Letter) (*letter.Consent, error) {
	rec, err := h.RecordedConsent(ctx, l.Patient.Identifier())
	if err != nil {
		return nil, err
	}
	if rec != nil {
		return rec, nil
	}
	return l.Consent, nil
}
