package route

import (
	"slices"

	"github.com/samhub/samhub/pipeline/letter"
)

// NeedsConsent reports whether Decide's answer for l at dest can depend on
// the consent: the first rule that sends l there needs consent, or sends it
// outside the municipality (where a withdrawal or a young person's refusal
// still stops it). A destination reads the consent register only then.
func (r *Router) NeedsConsent(l *letter.Letter, dest string) bool {
	dc, ok := r.dests[dest]
	if !ok {
		return false
	}
	for _, rt := range r.routes {
		if !slices.Contains(rt.To, dest) || !Matches(rt.Match, l) {
			continue
		}
		return needsConsent(rt, dc) || (dc.Sector != "municipality" && dc.Sector != "internal")
	}
	return false
}
