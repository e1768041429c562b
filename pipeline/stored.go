package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/samhub/samhub/pipeline/blobs"
	"github.com/samhub/samhub/pipeline/broker"
	"github.com/samhub/samhub/pipeline/letter"
)

// ErrUnknownLetter means no letter with that id is stored.
var ErrUnknownLetter = errors.New("no letter with that id")

// storedLetters reads letters back from the letter stream by id: the
// letter a reply answers, a refused letter to park, the operations' views.
type storedLetters struct {
	stream jetstream.Stream
	blobs  *blobs.Store
}

// get is the letter as stored, with the bytes it was stored as and where.
func (s *storedLetters) get(ctx context.Context, id string) (*letter.Letter, *jetstream.RawStreamMsg, error) {
	raw, err := s.stream.GetLastMsgForSubject(ctx, broker.SubjLetters+".in.*."+broker.Token(id))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil, ErrUnknownLetter
	}
	if err != nil {
		return nil, nil, err
	}
	l, err := letter.Unmarshal(raw.Data)
	return l, raw, err
}

// Letter finds a stored letter by id (any source), with its content: parts
// kept in the blob store are read back in, so the caller gets the original
// and attachments as received.
func (h *Hub) Letter(ctx context.Context, id string) (*letter.Letter, uint64, error) {
	l, seq, err := h.StoredLetter(ctx, id)
	if err != nil {
		return nil, 0, err
	}
	full, err := h.blobs.Resolve(ctx, l)
	if err != nil {
		return nil, 0, fmt.Errorf("letter content: %w", err)
	}
	return full, seq, nil
}

// StoredLetter is a letter as stored: its text and metadata, with the
// original and large attachments named by Ref and not read from the blob
// store. Views that show no bytes (the console's content view lists
// attachments by name) need no more.
func (h *Hub) StoredLetter(ctx context.Context, id string) (*letter.Letter, uint64, error) {
	l, raw, err := h.stored.get(ctx, id)
	if err != nil {
		return nil, 0, err
	}
	return l, raw.Sequence, nil
}
