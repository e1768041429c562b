// Package route decides, for one letter and one destination, whether the
// letter goes there, under which rule and consent, and whether it is
// anonymised first. It is pure: no I/O, so every decision is table-testable
// and `samhub route --dry-run` shows exactly what the consumers will do.
package route

import (
	"fmt"
	"slices"
	"time"

	"github.com/samhub/samhub/pipeline/letter"
)

// Verdict is what happens to a letter at one destination.
type Verdict string

const (
	Skip    Verdict = "skip"    // no rule sends it there
	Deliver Verdict = "deliver" // send it
	Deny    Verdict = "deny"    // a rule sends it there but consent does not allow it: park for the coordinator
)

// Decision explains a Verdict in words a coordinator can read; Reason never
// contains personal data.
type Decision struct {
	Destination string  `json:"destination"`
	Verdict     Verdict `json:"verdict"`
	Route       string  `json:"route,omitempty"`
	Anonymise   bool    `json:"anonymise,omitempty"`
	Reason      string  `json:"reason"`
	Code        string  `json:"code,omitempty"`
	// To and Addressed say whom a delivery would go to and how that was
	// resolved (PlanAddressed only).
	To        []letter.Party `json:"to,omitempty"`
	Addressed string         `json:"addressed,omitempty"`
}

// Router holds the configured rules and the receiver directory.
type Router struct {
	routes []Rule
	dests  map[string]Destination
	names  []string
	dir    Directory
}

// New builds a Router from checked rules.
func New(o Options) *Router {
	names := make([]string, 0, len(o.Destinations))
	for n := range o.Destinations {
		names = append(names, n)
	}
	slices.Sort(names)
	return &Router{routes: o.Rules, dests: o.Destinations, names: names, dir: NewDirectory(o.Receivers)}
}

// Directory is the receiver directory the router addresses with.
func (r *Router) Directory() Directory { return r.dir }

// Destinations lists the configured destination names, sorted.
func (r *Router) Destinations() []string { return r.names }

// Plan decides for every destination.
func (r *Router) Plan(l *letter.Letter, consent *letter.Consent, now time.Time) []Decision {
	out := make([]Decision, 0, len(r.names))
	for _, d := range r.names {
		out = append(out, r.Decide(l, d, consent, now))
	}
	return out
}

// PlanAddressed is Plan with the addressee of every delivery resolved
// (Address); thread is the party of the letter l answers, when the caller
// could read it. A delivery whose receiver cannot be resolved becomes the
// receiver_unresolved denial it will be at the destination.
func (r *Router) PlanAddressed(l *letter.Letter, consent *letter.Consent, now time.Time, thread *letter.Party) []Decision {
	out := r.Plan(l, consent, now)
	for i, d := range out {
		if d.Verdict != Deliver {
			continue
		}
		to, how, ok := r.Address(l, d.Destination, thread)
		switch {
		case !ok && thread == nil && r.NeedsThread(l, d.Destination):
			out[i].Addressed = "the party of the letter it answers (" + l.InReplyTo + "), read when it is delivered"
		case !ok:
			u := Unresolved(d.Destination, r.dests[d.Destination].Sector)
			u.Route = d.Route
			out[i] = u
		default:
			// A decision is shown (the dry run, the console): a citizen's
			// CPR stays out of it.
			for j := range to {
				to[j].CPR = ""
			}
			out[i].To, out[i].Addressed = to, how
		}
	}
	return out
}

// Decide applies the first rule (in configuration order) that matches the
// letter and names dest. consent is the effective consent (the letter's own,
// or the one the coordinator recorded).
func (r *Router) Decide(l *letter.Letter, dest string, consent *letter.Consent, now time.Time) Decision {
	d := Decision{Destination: dest, Verdict: Skip, Reason: "no routing rule sends this letter here"}
	dc, ok := r.dests[dest]
	if !ok {
		d.Reason = "unknown destination"
		return d
	}
	if l.CopyOf != "" {
		// A copy is for the parties it names, which the original did not
		// reach; every other destination had the original.
		if names, covers := r.narrowed(l, sectorRoles[dc.Sector]); !names || !covers {
			d.Reason = fmt.Sprintf("a copy of letter %s for the parties it names, none of whom %s serves; the letter itself went there", l.CopyOf, dest)
			return d
		}
	}
	for _, rt := range r.routes {
		if !slices.Contains(rt.To, dest) || !Matches(rt.Match, l) {
			continue
		}
		d.Route, d.Anonymise = rt.Name, rt.Anonymise
		if roles := sectorRoles[dc.Sector]; roles != nil {
			if names, covers := r.narrowed(l, roles); names && !covers {
				d.Verdict, d.Anonymise = Skip, false
				d.Reason = fmt.Sprintf("rule %q sends this kind of letter to %s, but the letter names its recipients and none is in that sector (rules narrow a letter's recipients, never widen them)", rt.Name, dc.Sector)
				return d
			}
		}
		if !needsConsent(rt, dc) {
			if dc.Sector != "municipality" && dc.Sector != "internal" && consent != nil {
				// A route that needs no consent outside the municipality
				// (discharge notes to the GP) still stops at a recorded
				// objection.
				switch {
				case !consent.WithdrawnAt.IsZero() && !now.Before(consent.WithdrawnAt):
					d.Verdict, d.Code = Deny, "consent_withdrawn"
					d.Reason = fmt.Sprintf("rule %q needs no consent, but the consent was withdrawn, so nothing more goes to %s", rt.Name, dc.Sector)
					return d
				case consent.YoungPersonRefused:
					d.Verdict, d.Code = Deny, "young_person_refused"
					d.Reason = fmt.Sprintf("rule %q needs no consent, but the young person (15–17) refused sharing with %s", rt.Name, dc.Sector)
					return d
				}
			}
			d.Verdict, d.Reason = Deliver, fmt.Sprintf("rule %q; the %s sector needs no consent for this route", rt.Name, dc.Sector)
			return d
		}
		scope := letter.Scope(dc.Sector)
		switch {
		case consent == nil:
			d.Verdict, d.Code = Deny, "consent_missing"
			d.Reason = fmt.Sprintf("rule %q sends this letter to %s, but no consent is recorded; record the consent and replay", rt.Name, dc.Sector)
		case !consent.WithdrawnAt.IsZero() && !now.Before(consent.WithdrawnAt):
			d.Verdict, d.Code = Deny, "consent_withdrawn"
			d.Reason = fmt.Sprintf("rule %q: the consent was withdrawn, so nothing more goes to %s", rt.Name, dc.Sector)
		case consent.YoungPersonRefused && scope != letter.ScopeMunicipality:
			d.Verdict, d.Code = Deny, "young_person_refused"
			d.Reason = fmt.Sprintf("rule %q: the young person (15–17) refused sharing, which overrides the parents' consent for %s", rt.Name, dc.Sector)
		case !consent.Allows(scope, now):
			d.Verdict, d.Code = Deny, "consent_scope"
			d.Reason = fmt.Sprintf("rule %q: the consent does not cover %s", rt.Name, dc.Sector)
		default:
			d.Verdict = Deliver
			d.Reason = fmt.Sprintf("rule %q; consent covers %s", rt.Name, dc.Sector)
		}
		return d
	}
	return d
}

func needsConsent(rt Rule, dc Destination) bool { return ConsentRequired(rt.RequireConsent, dc.Sector) }

// ConsentRequired is whether a rule with require_consent requireConsent
// (nil: not set) asks consent for a destination of sector: deny by default
// for every other sector; the municipality's own case system and internal
// notifications need none unless the rule asks.
func ConsentRequired(requireConsent *bool, sector string) bool {
	if requireConsent != nil {
		return *requireConsent
	}
	return sector != "municipality" && sector != "internal"
}

// Matches reports whether l satisfies every non-empty list in m.
func Matches(m Match, l *letter.Letter) bool {
	// Hub notices go only where a rule asks for them by kind, never along
	// with "everything" rules.
	if l.Kind == letter.KindNotification && !slices.Contains(m.Kind, string(letter.KindNotification)) {
		return false
	}
	if len(m.Kind) > 0 && !slices.Contains(m.Kind, string(l.Kind)) {
		return false
	}
	if len(m.Source) > 0 && !slices.Contains(m.Source, l.Source) {
		return false
	}
	if len(m.Category) > 0 && !slices.Contains(m.Category, l.Category) {
		return false
	}
	if len(m.Format) > 0 && !slices.Contains(m.Format, l.Format) {
		return false
	}
	if len(m.Sender) > 0 && !partyIn(m.Sender, l.Sender) {
		return false
	}
	if len(m.Receiver) > 0 {
		found := false
		for _, p := range l.Receivers {
			if partyIn(m.Receiver, p) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func partyIn(ids []string, p letter.Party) bool {
	for _, id := range ids {
		if id == "" {
			continue
		}
		if id == p.GLN || id == p.SOR || id == p.Email || id == p.Municipality || id == "role:"+p.Role {
			return true
		}
	}
	return false
}

// DecideReplay is Decide for a letter the coordinator sends back to one
// destination: the routing rule need not match any more, but consent is
// checked again (a replay after a consent was recorded is the usual case).
// A destination that any rule anonymises for gets an anonymised copy when
// no rule matches: the letter parked under such a rule (or a rule since
// changed), and a replay must not send the forum the child's name.
func (r *Router) DecideReplay(l *letter.Letter, dest string, consent *letter.Consent, now time.Time) Decision {
	d := r.Decide(l, dest, consent, now)
	if d.Verdict != Skip {
		return d
	}
	dc, ok := r.dests[dest]
	if !ok {
		return d
	}
	rt := Rule{Name: "replay", To: []string{dest}}
	for _, o := range r.routes {
		if o.Anonymise && slices.Contains(o.To, dest) {
			rt.Anonymise = true
		}
	}
	tmp := &Router{routes: []Rule{rt}, dests: map[string]Destination{dest: dc}, dir: r.dir}
	return tmp.Decide(l, dest, consent, now)
}
