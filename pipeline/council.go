package pipeline

import (
	"context"
	"errors"

	"github.com/samhub/samhub/pipeline/council"
	"github.com/samhub/samhub/pipeline/letter"
)

// newCouncil opens the council's register (nil when council.enabled is
// false), with what it needs of the hub.
func (h *Hub) newCouncil(ctx context.Context) (*council.Council, error) {
	return council.New(ctx, council.Deps{
		JS: h.js, Options: h.opt.Council, Log: h.log, Registry: h.reg, Now: h.now, Holder: h.holder, Audit: h.audit,
		StoredLetter: func(ctx context.Context, id string) (*letter.Letter, error) {
			l, _, err := h.StoredLetter(ctx, id)
			if errors.Is(err, ErrUnknownLetter) {
				return nil, nil
			}
			return l, err
		},
		Trace:    h.journey.Trace,
		Consent:  h.consents.byToken,
		Publish:  h.Publisher(notifySource).Publish,
		Bind:     func(l *letter.Letter) *letter.Letter { return h.blobs.Bind(l, nil) },
		Notice:   h.Notice,
		NoticeOn: h.notifyOn,
	})
}

// Council is the council's register, or nil when council.enabled is false.
func (h *Hub) Council() *council.Council { return h.council }
