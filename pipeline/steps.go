package pipeline

import (
	"context"
	"time"

	"github.com/samhub/samhub/pipeline/journey"
)

// recordStep adds a step to the letter's journey (package journey: on the
// default journey stream it is written in the background, in order). A
// step that cannot be recorded is logged, never fails the letter: the
// journey is the coordinator's view, not the letter.
func (h *Hub) recordStep(ctx context.Context, ev journey.Event) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := h.journey.Record(ctx, ev); err != nil {
		h.log.Warn("journey step not recorded", "step", ev.Step, "letter_id", ev.LetterID, "err", err)
	}
}
