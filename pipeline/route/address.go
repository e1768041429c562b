package route

import (
	"fmt"
	"slices"

	"github.com/samhub/samhub/pipeline/letter"
)

// sectorRoles are the party roles a destination sector delivers to. The
// municipality's own sector and internal notices have none: they are the
// council's side, which receives every inbound copy.
var sectorRoles = map[string][]string{
	"gp":                {letter.RoleGP},
	"parents":           {letter.RoleParents},
	"region_psychiatry": {letter.RoleRegion, letter.RoleHospital},
	"school_ppr":        {letter.RoleSchool},
}

// SectorRoles returns the party roles a destination sector delivers to; nil
// for the municipality's own sector and internal notices.
func SectorRoles(sector string) []string { return sectorRoles[sector] }

// Directory is the receiver directory from configuration: who a GLN or SOR
// is and which MedCom formats it takes.
type Directory struct {
	byID map[string]Receiver
}

// NewDirectory indexes the configured receivers by GLN and SOR.
func NewDirectory(rs []Receiver) Directory {
	d := Directory{byID: map[string]Receiver{}}
	for _, r := range rs {
		for _, id := range []string{r.GLN, r.SOR} {
			if id != "" {
				d.byID[id] = r
			}
		}
	}
	return d
}

// Lookup finds p in the directory by GLN, then SOR.
func (d Directory) Lookup(p letter.Party) (Receiver, bool) {
	for _, id := range []string{p.GLN, p.SOR} {
		if id == "" {
			continue
		}
		if r, ok := d.byID[id]; ok {
			return r, true
		}
	}
	return Receiver{}, false
}

// Enrich completes p from its directory entry: role, name, the other
// identifier and the formats it takes. What the letter says wins where both
// have a value, except the formats, which only the directory knows, and the
// role: a GLN or SOR is the organisation the directory says it is, whatever
// the letter calls it, since the role decides whose consent is needed.
func (d Directory) Enrich(p letter.Party) letter.Party {
	r, ok := d.Lookup(p)
	if !ok {
		// Not listed: the sink's default format for its role, whatever
		// formats the letter claims for the party.
		p.Accepts = nil
		return p
	}
	p.Role = r.Role
	if p.Name == "" {
		p.Name = r.Name
	}
	if p.GLN == "" {
		p.GLN = r.GLN
	}
	if p.SOR == "" {
		p.SOR = r.SOR
	}
	p.Accepts = slices.Clone(r.Formats)
	return p
}

// role is p's role as the directory knows it, else as the letter gives
// it. The directory wins: a letter naming the region's GLN as "the GP"
// must not reach the region under the GP's consent.
func (d Directory) role(p letter.Party) string {
	if r, ok := d.Lookup(p); ok {
		return r.Role
	}
	return p.Role
}

// narrowed reports whether the letter names its recipients (it lists
// receivers and the role of each is known, from the letter or the receiver
// directory) and, if so, whether one of them is in roles. A letter that
// names its recipients goes to those sectors only: routing rules may narrow
// that list, never widen it. A receiver of unknown role (a GP the directory
// does not list) leaves the decision to the rules, so that the letter is
// addressed, or parks as unresolved, instead of being skipped unseen.
func (r *Router) narrowed(l *letter.Letter, roles []string) (names, covers bool) {
	if len(l.Receivers) == 0 {
		return false, false
	}
	for _, p := range l.Receivers {
		role := r.dir.role(p)
		if role == "" {
			return false, false
		}
		if slices.Contains(roles, role) {
			covers = true
		}
	}
	return true, covers
}

// How an addressee was found, for the journey and the dry run.
const (
	AddressedNamed       = "named by the letter"
	AddressedThread      = "the party of the thread the letter answers"
	AddressedDestination = "the destination's configured receiver"
)

// CodeUnresolved is the reason code of a letter whose receiver cannot be
// resolved for a destination: it parks rather than going anywhere.
const CodeUnresolved = "receiver_unresolved"

// Address resolves who a letter goes to at dest, after a Deliver decision:
//  1. the receivers the letter names in the destination's sector (with an
//     identifier a sink can address: GLN, SOR or email; parents by name),
//  2. else thread, the party of the letter this one answers (the referring
//     GP of a referral), when its role fits the sector or is unknown,
//  3. else the destination's configured receiver, when the directory
//     gives it a role of the destination's sector.
//
// Every addressee is completed from the receiver directory. Destinations of
// the municipality's own sector and internal ones need no addressee (nil,
// true). ok is false when nothing resolves; how says which rule applied.
func (r *Router) Address(l *letter.Letter, dest string, thread *letter.Party) (to []letter.Party, how string, ok bool) {
	dc, known := r.dests[dest]
	if !known {
		return nil, "", false
	}
	roles := sectorRoles[dc.Sector]
	if roles == nil {
		return nil, "", true
	}
	for _, p := range l.Receivers {
		// A mention without identifiers ("the GP") resolves like none:
		// by the thread, then the destination's receiver.
		if slices.Contains(roles, r.dir.role(p)) && addressable(p) {
			to = append(to, r.dir.Enrich(p))
		}
	}
	if len(to) > 0 {
		return to, AddressedNamed, true
	}
	if thread != nil && addressable(*thread) {
		p := r.dir.Enrich(*thread)
		if p.Role == "" || slices.Contains(roles, p.Role) {
			if p.Role == "" {
				p.Role = roles[0]
			}
			return []letter.Party{p}, AddressedThread, true
		}
	}
	if dc.Receiver != "" {
		// Configuration checks that the receiver is in the directory and
		// of the sector; a receiver of another role (a hospital as the GP
		// destination's receiver) would get the letter under the consent
		// of a sector it is not in, so it is no addressee: the letter
		// parks as unresolved.
		if e, ok := r.dir.byID[dc.Receiver]; ok && slices.Contains(roles, e.Role) {
			p := letter.Party{Role: e.Role, Name: e.Name, GLN: e.GLN, SOR: e.SOR, Accepts: slices.Clone(e.Formats)}
			return []letter.Party{p}, AddressedDestination, true
		}
	}
	return nil, "", false
}

// NeedsThread reports whether Address would look at the party of the
// thread: the destination addresses a sector and the letter names nobody
// there with an identifier. Callers read the answered letter only then.
func (r *Router) NeedsThread(l *letter.Letter, dest string) bool {
	dc, ok := r.dests[dest]
	if !ok || sectorRoles[dc.Sector] == nil || l.InReplyTo == "" {
		return false
	}
	for _, p := range l.Receivers {
		if slices.Contains(sectorRoles[dc.Sector], r.dir.role(p)) && addressable(p) {
			return false
		}
	}
	return true
}

// Unresolved is the decision for a letter whose receiver cannot be
// resolved at dest.
func Unresolved(dest, sector string) Decision {
	return Decision{Destination: dest, Verdict: Deny, Code: CodeUnresolved,
		Reason: fmt.Sprintf("no receiver in the %s sector could be resolved for this letter (the letter names none with a GLN, SOR or address, it answers no letter from that sector, and the destination has no receiver configured); add the receiver to the document or the receiver directory and replay", sector)}
}

// addressable: a party a sink can send to. Parents are named by the
// document (Digital Post finds them by CPR; a sink refuses a custody holder
// it cannot reach); others need an identifier.
func addressable(p letter.Party) bool {
	if p.Role == letter.RoleParents {
		return p.Name != "" || p.Email != "" || p.CPR != ""
	}
	return p.GLN != "" || p.SOR != "" || p.Email != ""
}
