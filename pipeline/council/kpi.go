package council

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// KPI are the council's figures over whole months, the current one
// included, computed from the register (so they survive restarts and agree
// across replicas).
type KPI struct {
	// From and To bound the figures: the first day of the first month,
	// and the first day after the current month, in Zone.
	From       time.Time `json:"from"`
	To         time.Time `json:"to"`
	Zone       string    `json:"zone"`
	ComputedAt time.Time `json:"computedAt"`
	// Referrals arrived in the window: a later referral joined to an open
	// one of the same child is not counted again (Joined counts those).
	Referrals int `json:"referrals"`
	// Joined are the later referrals in the window that joined an open
	// referral of the same child (a supplement, a second GP).
	Joined int `json:"joined"`
	// LeadTime is from a referral to the council's first recommendation,
	// for recommendations that arrived in the window.
	LeadTime LeadTime `json:"leadTime"`
	// PerPractice counts the window's referrals by the referring practice,
	// most first; a referral that a second practice joined counts for both.
	PerPractice []Practice `json:"perPractice"`
	// Rejections are letters child psychiatry turned a referral down with
	// (council.rejections); Configured false: no rule, no figure.
	Rejections Rejections `json:"rejections"`
	// Months are the window's months, oldest first.
	Months []Month `json:"months"`
	// Unanswered are the referrals now past the watch without a
	// recommendation (any month); WatchDays is council.watch_days.
	Unanswered int     `json:"unanswered"`
	WatchDays  float64 `json:"watchDays"`
	// KeptFrom is set when the window begins before what the register
	// keeps (council.retention_days, RetentionDays): the first day of the
	// first month kept whole. The months before it are NotKept and the
	// totals count from it.
	KeptFrom      time.Time `json:"keptFrom,omitzero"`
	RetentionDays int       `json:"retentionDays,omitempty"`
}

// LeadTime summarises durations from referral to recommendation. The
// median and the 90th percentile interpolate between the nearest ranks
// (the common "type 7" definition); zero when Count is 0.
type LeadTime struct {
	Count         int     `json:"count"`
	MedianSeconds float64 `json:"medianSeconds"`
	P90Seconds    float64 `json:"p90Seconds"`
	MedianDays    float64 `json:"medianDays"`
	P90Days       float64 `json:"p90Days"`
}

// Practice is one referring practice's count.
type Practice struct {
	Org
	Referrals int `json:"referrals"`
}

// Rejections counts letters classified as child psychiatry turning a
// referral down.
type Rejections struct {
	Configured bool     `json:"configured"`
	Rules      []string `json:"rules,omitempty"`
	Total      int      `json:"total"`
}

// Month is one month's figures.
type Month struct {
	Month     string `json:"month"` // 2026-03
	Referrals int    `json:"referrals"`
	// Recommended: referrals whose first recommendation arrived this month;
	// LeadTime is theirs.
	Recommended int      `json:"recommended"`
	LeadTime    LeadTime `json:"leadTime"`
	Rejections  int      `json:"rejections"`
	// NotKept says why the month has no figures: the register no longer
	// keeps (all of) its referrals. Its figures are null in JSON, not 0.
	NotKept string `json:"notKept,omitempty"`
}

// MarshalJSON writes a month not kept with null figures: 0 would say
// nothing happened.
func (m Month) MarshalJSON() ([]byte, error) {
	type plain Month
	if m.NotKept == "" {
		return json.Marshal(plain(m))
	}
	return json.Marshal(struct {
		Month       string `json:"month"`
		Referrals   any    `json:"referrals"`
		Recommended any    `json:"recommended"`
		LeadTime    any    `json:"leadTime"`
		Rejections  any    `json:"rejections"`
		NotKept     string `json:"notKept"`
	}{Month: m.Month, NotKept: m.NotKept})
}

// KPI computes the figures for the last months months (1–60; default 12).
func (c *Council) KPI(months int) KPI {
	var rules []string
	for _, r := range c.cfg.Rejections {
		rules = append(rules, r.Name)
	}
	return Figures(c.reg.allReferrals(), c.reg.allRejections(), FigureOptions{Now: c.now(), Months: months, Loc: c.rule.Loc, Watch: c.watch,
		WatchDays: c.cfg.WatchDays, RejectionRules: rules, Retention: c.keep})
}

// FigureOptions set what Figures computes.
type FigureOptions struct {
	Now            time.Time
	Months         int
	Loc            *time.Location
	Watch          time.Duration
	WatchDays      float64
	RejectionRules []string
	// Retention is how long the register keeps a referral
	// (council.retention_days); 0: all is kept.
	Retention time.Duration
}

// Figures computes the council's figures from the register's facts.
func Figures(refs []Referral, rejections []Rejection, o FigureOptions) KPI {
	if o.Months < 1 || o.Months > 60 {
		o.Months = 12
	}
	now := o.Now.In(o.Loc)
	first := time.Date(now.Year(), now.Month()-time.Month(o.Months-1), 1, 0, 0, 0, 0, o.Loc)
	end := time.Date(now.Year(), now.Month()+1, 1, 0, 0, 0, 0, o.Loc)
	k := KPI{From: first, To: end, Zone: o.Loc.String(), ComputedAt: o.Now.UTC(), WatchDays: o.WatchDays,
		Rejections: Rejections{Configured: len(o.RejectionRules) > 0, Rules: o.RejectionRules}}
	// A month is kept when it begins after the retention's cut: one the
	// cut goes through has lost part of its referrals already.
	keptFrom := first
	if o.Retention > 0 {
		cut := now.Add(-o.Retention)
		keptFrom = time.Date(cut.Year(), cut.Month(), 1, 0, 0, 0, 0, o.Loc)
		if keptFrom.Before(cut) {
			keptFrom = keptFrom.AddDate(0, 1, 0)
		}
		if keptFrom.After(first) {
			k.KeptFrom, k.RetentionDays = keptFrom, int(o.Retention.Hours()/24)
		}
	}
	notKept := fmt.Sprintf("before council.retention_days (%d days): the register no longer keeps this month's referrals", int(o.Retention.Hours()/24))
	idx := map[string]int{}
	for i := range o.Months {
		m := first.AddDate(0, i, 0)
		if m.Before(keptFrom) {
			k.Months = append(k.Months, Month{Month: m.Format("2006-01"), NotKept: notKept})
			continue // counted nowhere, so the totals are the kept months'
		}
		idx[m.Format("2006-01")] = i
		k.Months = append(k.Months, Month{Month: m.Format("2006-01")})
	}
	in := func(t time.Time) (int, bool) {
		i, ok := idx[t.In(o.Loc).Format("2006-01")]
		return i, ok
	}
	refs = slices.Clone(refs)
	slices.SortFunc(refs, func(a, b Referral) int { return a.Received.Compare(b.Received) })
	practices := map[string]*Practice{}
	var all []float64
	perMonth := make([][]float64, o.Months)
	for _, r := range refs {
		if r.awaits() && !now.Before(r.Received.Add(o.Watch)) {
			k.Unanswered++
		}
		if i, ok := in(r.Received); ok {
			k.Referrals++
			k.Months[i].Referrals++
			counted := map[string]bool{}
			for _, gp := range r.referrers() {
				id := cmp.Or(gp.GLN, gp.SOR, gp.Name, "unknown")
				if counted[id] {
					continue // one practice's supplement to its own referral
				}
				counted[id] = true
				p, ok := practices[id]
				if !ok {
					p = &Practice{Org: gp}
					practices[id] = p
				} else if gp.Name != "" {
					p.Org = gp // the newest name a practice used
				}
				p.Referrals++
			}
		}
		for _, j := range r.Joined {
			if _, ok := in(j.Received); ok {
				k.Joined++
			}
		}
		if !r.Answered() {
			continue
		}
		first := r.Recommendations[0]
		for _, x := range r.Recommendations[1:] {
			if x.Received.Before(first.Received) {
				first = x
			}
		}
		if i, ok := in(first.Received); ok {
			d := max(0, first.Received.Sub(r.Received).Seconds())
			all = append(all, d)
			perMonth[i] = append(perMonth[i], d)
			k.Months[i].Recommended++
		}
	}
	k.LeadTime = leadTime(all)
	for i := range k.Months {
		k.Months[i].LeadTime = leadTime(perMonth[i])
	}
	for _, x := range rejections {
		if i, ok := in(x.Received); ok {
			k.Rejections.Total++
			k.Months[i].Rejections++
		}
	}
	for _, p := range practices {
		k.PerPractice = append(k.PerPractice, *p)
	}
	slices.SortFunc(k.PerPractice, func(a, b Practice) int {
		// Most referrals first; practices known by number only after the named.
		return cmp.Or(cmp.Compare(b.Referrals, a.Referrals), cmp.Compare(boolInt(a.Name == ""), boolInt(b.Name == "")),
			strings.Compare(a.Name, b.Name), strings.Compare(a.GLN+a.SOR, b.GLN+b.SOR))
	})
	if k.PerPractice == nil {
		k.PerPractice = []Practice{}
	}
	return k
}

// referrers are the practices that referred the child, the first first.
func (r *Referral) referrers() []Org {
	out := []Org{r.GP}
	for _, j := range r.Joined {
		out = append(out, j.GP)
	}
	return out
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func leadTime(secs []float64) LeadTime {
	if len(secs) == 0 {
		return LeadTime{}
	}
	s := slices.Clone(secs)
	slices.Sort(s)
	lt := LeadTime{Count: len(s), MedianSeconds: quantile(s, 0.5), P90Seconds: quantile(s, 0.9)}
	lt.MedianDays, lt.P90Days = round1(lt.MedianSeconds/86400), round1(lt.P90Seconds/86400)
	return lt
}

// quantile of sorted s, interpolating between the nearest ranks.
func quantile(s []float64, q float64) float64 {
	h := q * float64(len(s)-1)
	lo := math.Floor(h)
	i := int(lo)
	if i+1 >= len(s) {
		return s[len(s)-1]
	}
	return s[i] + (h-lo)*(s[i+1]-s[i])
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }
