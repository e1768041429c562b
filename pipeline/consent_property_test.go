package pipeline

import (
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/samhub/samhub/pipeline/letter"
)

// effectiveConsent against random records and letters' own statements,
// checked against what docs/architecture.md ("Consent and routing") says:
// the coordinator's record when there is one, else the letter's own; an
// objection the letter reports after the record was given (a withdrawal
// dated after it, a young person's refusal in a letter received after it)
// still stands over the record. The record's scopes are never widened by
// the letter. SAMHUB_ROUTE_PROP_SEEDS=n runs n × 100 cases (default 50).
func TestEffectiveConsentProperties(t *testing.T) {
	seeds := 50
	if v, err := strconv.Atoi(os.Getenv("SAMHUB_ROUTE_PROP_SEEDS")); err == nil && v > 0 {
		seeds = v
	}
	base := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	at := func(rng *rand.Rand) time.Time { return base.Add(time.Duration(rng.IntN(7)-3) * 24 * time.Hour) }
	gen := func(rng *rand.Rand) *letter.Consent {
		if rng.IntN(4) == 0 {
			return nil
		}
		c := &letter.Consent{GivenBy: "custody-holder", GivenAt: at(rng)}
		for _, s := range letter.Scopes {
			if rng.IntN(2) == 0 {
				c.Scopes = append(c.Scopes, s)
			}
		}
		if rng.IntN(3) == 0 {
			c.WithdrawnAt = at(rng)
		}
		c.YoungPersonRefused = rng.IntN(5) == 0
		return c
	}
	for seed := uint64(1); seed <= uint64(seeds); seed++ {
		rng := rand.New(rand.NewPCG(seed, 0xc0))
		for range 100 {
			rec, own, received := gen(rng), gen(rng), at(rng)
			got := effectiveConsent(rec, own, received)
			for _, now := range []time.Time{base.Add(-5 * 24 * time.Hour), base, base.Add(5 * 24 * time.Hour)} {
				for _, s := range letter.Scopes {
					allows := got.Allows(s, now)
					var want bool
					switch {
					case rec == nil:
						want = own.Allows(s, now)
					default:
						want = rec.Allows(s, now)
						if own != nil && !own.WithdrawnAt.IsZero() && own.WithdrawnAt.After(rec.GivenAt) && !now.Before(own.WithdrawnAt) {
							want = false
						}
						if own != nil && own.YoungPersonRefused && received.After(rec.GivenAt) && s != letter.ScopeMunicipality {
							want = false
						}
					}
					if allows != want {
						t.Fatalf("seed %d (SAMHUB_ROUTE_PROP_SEEDS): record %+v, letter's own %+v received %s: scope %s at %s allowed %v, want %v",
							seed, rec, own, received.Format(time.DateOnly), s, now.Format(time.DateOnly), allows, want)
					}
				}
			}
		}
	}
}
