package medcom

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"

	"github.com/samhub/samhub/adapters"
)

// State keys hash the MedCom ids: keys must be [A-Za-z0-9_=.-]+ and ids
// contain '#' and ':'.
func stateKey(prefix, id string) string {
	sum := sha256.Sum256([]byte(id))
	return prefix + "." + hex.EncodeToString(sum[:20])
}

// inRecord is what is kept of one inbound letter: the acknowledgement sent
// for it (so a duplicate gets the same one) and what a reply needs to be
// addressed. A stored letter carries it as its checkpoint (round.go); the
// state store keeps it under Key only where no stored letter can: negative
// acknowledgements, a letter answered under another key, and letters
// stored before checkpoints (read, never written, on the common path).
type inRecord struct {
	Key      string `json:"key,omitempty"` // the duplicate key (stateKey) it answers
	HubID    string `json:"hubId"`
	Format   string `json:"format"`
	AckName  string `json:"ackName,omitempty"`
	Ack      []byte `json:"ack,omitempty"`
	Negative bool   `json:"negative,omitempty"`
	At       time.Time

	// For replies (identifiers of organisations and threads, no personal data).
	SenderEAN, SenderIdentifier, SenderIdentifierCode, SenderName string `json:",omitempty"`
	ReceiverEAN, Episode, HeaderID, ThreadID                      string `json:",omitempty"`
	SenderSOR                                                     string `json:",omitempty"`
	// EpisodeSystem is the issuer of a FHIR letter's Episode (an XDIS91
	// letter's names none).
	EpisodeSystem string `json:",omitempty"`

	// With holds the records of the XBIN01 letters this letter took the
	// files of (binaries.go): stored in no letter of their own, their
	// receipts are repeated from here.
	With []inRecord `json:"with,omitempty"`
}

// outRecord makes Deliver idempotent: one per hub letter id.
type outRecord struct {
	Ref    string    `json:"ref"` // MedCom reference: "GLN#letterid" (OIOXML) or MessageHeader.id (FHIR)
	File   string    `json:"file"`
	Format string    `json:"format"`
	At     time.Time `json:"at"`
	// Version counts the letters written for this hub letter after the
	// receiver refused one: MedCom treats a letter id it has seen as a
	// duplicate and answers it as before, so a letter sent again after a
	// refusal gets new ids.
	Version int `json:"version,omitempty"`
	// Refused: the receiver answered this version negatively; the next
	// delivery (the coordinator's replay) writes a new version.
	Refused bool `json:"refused,omitempty"`
}

// pending is an outbound letter awaiting its acknowledgement.
type pending struct {
	// Ref is the letter's MedCom reference, which its acknowledgement names.
	Ref       string    `json:"ref"`
	HubID     string    `json:"hubId"`
	Format    string    `json:"format"`
	File      string    `json:"file"`
	FirstSent time.Time `json:"firstSent"`
	LastSent  time.Time `json:"lastSent"`
	Resends   int       `json:"resends"`
	Flagged   bool      `json:"flagged,omitempty"`
	Version   int       `json:"version,omitempty"` // outRecord.Version of what was sent
	// Staged is the hidden file in out/ the letter was written to before
	// the outbox named it; it is renamed into place next (Deliver). Empty
	// for entries written before staging, and by resends.
	Staged string `json:"staged,omitempty"`
	// The XBIN01 letter carrying an XDIS91 letter's files: its MedCom
	// reference (its receipt names it), file and staged file, as above.
	BinaryRef    string `json:"binaryRef,omitempty"`
	BinaryFile   string `json:"binaryFile,omitempty"`
	BinaryStaged string `json:"binaryStaged,omitempty"`
}

func getJSON(ctx context.Context, st adapters.StateStore, key string, v any) (uint64, bool, error) {
	b, rev, err := st.Get(ctx, key)
	if errors.Is(err, adapters.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	return rev, true, json.Unmarshal(b, v)
}
