package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/pipeline/audit"
)

// Rejected is one input a source refused and set aside, with the source's
// name: the coordinator's list of rejected files.
type Rejected struct {
	Source string `json:"source"`
	adapters.RejectedInput
}

// ListRejected lists what the sources set aside (adapters.RejectedInputs),
// newest first, at most limit items.
func (h *Hub) ListRejected(ctx context.Context, limit int) ([]Rejected, error) {
	var out []Rejected
	for _, name := range h.rejectingSources() {
		items, err := h.sources[name].(adapters.RejectedInputs).ListRejected(ctx, limit)
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			out = append(out, Rejected{Source: name, RejectedInput: it})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.After(out[j].At) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (h *Hub) rejectingSources() []string {
	var names []string
	for name, s := range h.sources {
		if _, ok := s.(adapters.RejectedInputs); ok {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

// PutBack gives a rejected input back to its source to be read again, with
// a required reason; it is audited before it happens. It returns
// adapters.ErrUnknownInput for an unknown source or id and
// adapters.ErrAnswered when the source refuses because the sender was
// answered already.
func (h *Hub) PutBack(ctx context.Context, who Actor, source, id, reason string) error {
	if strings.TrimSpace(reason) == "" {
		return ErrReasonRequired
	}
	src, ok := h.sources[source].(adapters.RejectedInputs)
	if !ok {
		return adapters.ErrUnknownInput
	}
	// The id is a file name a sender chose: it is scrubbed like free text.
	rec := audit.Record{Actor: who.Name, Role: who.Role, Remote: who.Remote, Action: "put-back",
		Target: fmt.Sprintf("rejected:%s:%s", source, scrubText(id)), Reason: scrubText(reason), Result: "ok"}
	if err := h.audit.Append(ctx, rec); err != nil {
		return err
	}
	err := src.PutBack(ctx, id)
	if err != nil {
		// Nothing happened: the log says so after the request it records.
		if !errors.Is(err, adapters.ErrUnknownInput) && !errors.Is(err, adapters.ErrAnswered) {
			h.log.Error("put back failed", "source", source, "err", err)
		}
		h.auditUndone(ctx, rec, err)
	}
	return err
}
