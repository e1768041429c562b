package reliability

// The oracle every scenario that claims lost=0 and duplicates=0 ends with
// (issue 19): a ledger of what was sent, joined letter by letter with what
// each destination actually holds — documents in the case system,
// Communications at the region, messages in Digital Post, the notices'
// mails in the SMTP server, letters the MedCom peer took from out/ — so that one lost letter and one duplicate
// cannot cancel out in a total.
//
// An object a destination holds belongs to a letter when it names the
// letter's id, holds the letter's original bytes (their SHA-256), or
// carries the letter's marker, a token unique to it in its text. The
// marker follows the letter into every format (XDIS91 from a GP, a mail's
// text, a Communication's payload, a CareCommunication), so a copy made
// under another identity — a bug that re-ids a letter, or the failpoints
// build's deliver-twice switch — is still found as the letter's second copy.

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-message/mail"

	"github.com/samhub/samhub/adapters/email/mailtest"
	casesyssim "github.com/samhub/samhub/internal/sim/casesys"
	digitalpostsim "github.com/samhub/samhub/internal/sim/digitalpost"
	epjsim "github.com/samhub/samhub/internal/sim/epj"
	"github.com/samhub/samhub/internal/sim/medcompeer"
	"github.com/samhub/samhub/pipeline/retryq"
)

// The destinations the oracle knows, by the names every scenario's hub
// gives them.
const (
	destCase    = "casefile" // the case system: a document per letter
	destGP      = "gp"       // MedCom out folder: a letter file per letter, taken by the peer
	destRegion  = "region"   // the EPJ: a Communication per letter
	destParents = "parents"  // Digital Post: a message per letter and custody holder
	destNotices = "notices"  // SMTP: the coordinator's notice of each referral, a mail naming it
)

// oMarkerRE finds letter markers: "ORK-" a three-letter tag, a number.
var oMarkerRE = regexp.MustCompile(`ORK-[A-Z]{3}-[0-9]+\b`)

// oMarker is the marker of letter number i of a run tagged tag.
func oMarker(tag string, i int) string { return fmt.Sprintf("ORK-%s-%d", tag, i) }

// oLetter is one letter the scenario sent.
type oLetter struct {
	ID     string   // the hub's letter id
	Digest string   // SHA-256 of the original bytes
	Marker string   // the marker in its text ("" when it has none)
	Dests  []string // destinations it must reach
}

// oLedger is the record of what was sent.
type oLedger struct {
	mu       sync.Mutex
	letters  []*oLetter
	byID     map[string]*oLetter
	byDigest map[string]*oLetter
	byMarker map[string]*oLetter
}

func oNewLedger() *oLedger {
	return &oLedger{byID: map[string]*oLetter{}, byDigest: map[string]*oLetter{}, byMarker: map[string]*oLetter{}}
}

// Add records a letter: its hub id, its original bytes (the marker is read
// from them) and the destinations it must reach. Adding an id again
// replaces what was recorded for it.
func (l *oLedger) Add(id string, original []byte, dests ...string) {
	s := sha256.Sum256(original)
	ol := &oLetter{ID: id, Digest: hex.EncodeToString(s[:]), Marker: string(oMarkerRE.Find(original)), Dests: dests}
	l.mu.Lock()
	defer l.mu.Unlock()
	if old, ok := l.byID[id]; ok {
		*old = *ol
		ol = old
	} else {
		l.letters = append(l.letters, ol)
		l.byID[id] = ol
	}
	l.byDigest[ol.Digest] = ol
	if ol.Marker != "" {
		l.byMarker[ol.Marker] = ol
	}
}

// Len is how many letters were sent.
func (l *oLedger) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.letters)
}

// IDs lists the letters' ids in the order they were added.
func (l *oLedger) IDs() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, len(l.letters))
	for i, ol := range l.letters {
		out[i] = ol.ID
	}
	return out
}

// Expected is how many (letter, destination) deliveries the ledger expects.
func (l *oLedger) Expected() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, ol := range l.letters {
		n += len(ol.Dests)
	}
	return n
}

// oItem is one object a destination holds.
type oItem struct {
	Dest    string   // the destination (destCase …)
	Ident   string   // the destination's name for it: document id, Communication id, Message-ID, MedCom letter id
	Letter  string   // the hub letter id it names, when it names one
	Digests []string // SHA-256 of the files or attachments it holds
	Text    string   // its text, searched for markers
	// Transmission marks a mail or a MedCom file: the same Ident arriving
	// again is a repeat of one message, which the receiver can recognise
	// by that id (MedCom requires receivers to; mail clients thread it).
	// Records (documents, Communications) are each a copy of their own.
	Transmission bool
}

// oTally is the verdict for one destination.
type oTally struct {
	Once, Lost, Dup, Repeat, Parked int
	LostIDs, DupIDs, RepeatIDs      []string
}

// oVerdict is the oracle's verdict: per destination, every letter meant
// for it is once, lost, dup (two or more copies: records, or transmissions
// under different ids), or parked (no copy, parked there with a reason);
// repeats count transmissions of one message id beyond the first. Stray
// objects belong to no letter sent to that destination.
type oVerdict struct {
	Dests map[string]*oTally
	Stray []string // "dest ident"
}

func (v oVerdict) sum(f func(*oTally) int) int {
	n := 0
	for _, t := range v.Dests {
		n += f(t)
	}
	return n
}

func (v oVerdict) Once() int   { return v.sum(func(t *oTally) int { return t.Once }) }
func (v oVerdict) Lost() int   { return v.sum(func(t *oTally) int { return t.Lost }) }
func (v oVerdict) Dup() int    { return v.sum(func(t *oTally) int { return t.Dup }) }
func (v oVerdict) Repeat() int { return v.sum(func(t *oTally) int { return t.Repeat }) }
func (v oVerdict) Parked() int { return v.sum(func(t *oTally) int { return t.Parked }) }

func (v oVerdict) ids(f func(*oTally) []string) []string {
	var out []string
	for _, d := range v.destNames() {
		for _, id := range f(v.Dests[d]) {
			out = append(out, d+":"+id)
		}
	}
	return out
}

func (v oVerdict) LostIDs() []string { return v.ids(func(t *oTally) []string { return t.LostIDs }) }
func (v oVerdict) DupIDs() []string  { return v.ids(func(t *oTally) []string { return t.DupIDs }) }

func (v oVerdict) destNames() []string {
	var ds []string
	for d := range v.Dests {
		ds = append(ds, d)
	}
	sort.Strings(ds)
	return ds
}

// String is the verdict per destination, for scenario lines and messages.
func (v oVerdict) String() string {
	var b strings.Builder
	for _, d := range v.destNames() {
		t := v.Dests[d]
		fmt.Fprintf(&b, "%s[once=%d lost=%d dup=%d repeat=%d parked=%d] ", d, t.Once, t.Lost, t.Dup, t.Repeat, t.Parked)
	}
	fmt.Fprintf(&b, "stray=%d", len(v.Stray))
	return b.String()
}

// Figures are the scenario line's oracle figures.
func (v oVerdict) Figures() []any {
	return []any{"lost", v.Lost(), "duplicates", v.Dup(), "repeats", v.Repeat(), "stray", len(v.Stray), "parked", v.Parked(), "oracle", strings.ReplaceAll(v.String(), " ", ",")}
}

// oParkedSet makes the retry queue's entries a set of "destination|letter".
func oParkedSet(es []retryq.Entry) map[string]bool {
	out := map[string]bool{}
	for _, e := range es {
		id := e.LetterID
		// A notice is a letter of its own, "notice:<event>:<dest>:<letter>";
		// the oracle counts it under the letter it is about.
		if n, ok := strings.CutPrefix(id, "notice:"); ok && e.Destination == destNotices {
			if parts := strings.SplitN(n, ":", 3); len(parts) == 3 {
				id = parts[2]
			}
		}
		out[e.Destination+"|"+id] = true
	}
	return out
}

// oJoin joins the ledger with what the destinations hold and what is
// parked.
func oJoin(l *oLedger, items []oItem, parked map[string]bool) oVerdict {
	l.mu.Lock()
	defer l.mu.Unlock()
	v := oVerdict{Dests: map[string]*oTally{}}
	type key struct{ dest, id string }
	got := map[key][]oItem{}
	for _, it := range items {
		owners := map[*oLetter]bool{}
		if ol := l.byID[it.Letter]; ol != nil {
			owners[ol] = true
		}
		for _, d := range it.Digests {
			if ol := l.byDigest[d]; ol != nil {
				owners[ol] = true
			}
		}
		for _, m := range oMarkerRE.FindAllString(it.Text, -1) {
			if ol := l.byMarker[m]; ol != nil {
				owners[ol] = true
			}
		}
		matched := false
		for ol := range owners {
			if slices.Contains(ol.Dests, it.Dest) {
				got[key{it.Dest, ol.ID}] = append(got[key{it.Dest, ol.ID}], it)
				matched = true
			}
		}
		if !matched {
			v.Stray = append(v.Stray, it.Dest+" "+it.Ident)
		}
	}
	for _, ol := range l.letters {
		for _, d := range ol.Dests {
			t := v.Dests[d]
			if t == nil {
				t = &oTally{}
				v.Dests[d] = t
			}
			its := got[key{d, ol.ID}]
			copies, repeats := len(its), 0
			if len(its) > 0 && its[0].Transmission {
				seen := map[string]bool{}
				for _, it := range its {
					seen[it.Ident] = true
				}
				copies, repeats = len(seen), len(its)-len(seen)
			}
			switch {
			case copies == 0 && parked[d+"|"+ol.ID]:
				t.Parked++
			case copies == 0:
				t.Lost++
				t.LostIDs = append(t.LostIDs, ol.ID)
			case copies == 1:
				t.Once++
			default:
				t.Dup++
				t.DupIDs = append(t.DupIDs, ol.ID)
			}
			if repeats > 0 {
				t.Repeat += repeats
				t.RepeatIDs = append(t.RepeatIDs, ol.ID)
			}
		}
	}
	sort.Strings(v.Stray)
	return v
}

// oAllow is what a scenario tolerates besides once: parked letters (when
// parking is what it expects), transmissions repeated under the same id at
// a destination (only where a kill landed in the one window no protocol
// closes: after the mail server accepted a message and before the hub
// recorded it), and lost letters per destination (none since issue 20: a
// notice is rendered from the stored letter by its own destination, so no
// crash between two stores can lose it).
type oAllow struct {
	Parked  bool
	Repeats map[string]int
	Lost    map[string]int
}

// oRequire fails t unless every letter reached every destination it was
// meant for exactly once (or parked, when allowed), nothing stray arrived,
// and repeats stay within what is allowed.
func oRequire(t testing.TB, v oVerdict, allow oAllow) {
	t.Helper()
	lost := false
	for _, d := range v.destNames() {
		lost = lost || v.Dests[d].Lost > allow.Lost[d]
	}
	if lost || v.Dup() != 0 || len(v.Stray) != 0 || (!allow.Parked && v.Parked() != 0) {
		t.Errorf("oracle: %s (lost %v, duplicated %v, stray %v)", v, r1First(v.LostIDs()), r1First(v.DupIDs()), r1First(v.Stray))
	}
	for _, d := range v.destNames() {
		if tl := v.Dests[d]; tl.Repeat > allow.Repeats[d] {
			t.Errorf("oracle: %d messages to %s were sent again under the same id (%v), want at most %d", tl.Repeat, d, r1First(tl.RepeatIDs), allow.Repeats[d])
		}
	}
}

// oMailInFlight is how many notices the hub can have in the mail window
// at one kill: the notices destination holds at most its SMTP sink's
// capacity in flight (adapters.Capacity: twice the pool's max_conns, 8 by
// default), and each of them may be between the server's acceptance and
// the sent marker. A kill repeats at most that many mails.
const oMailInFlight = 2 * 8

// oDelivered counts the (letter, destination) deliveries with at least one
// copy, for progress waits.
func oDelivered(l *oLedger, items []oItem) int {
	v := oJoin(l, items, nil)
	return v.Once() + v.Dup()
}

// --- what each destination holds ---

// oCaseItems are the case system's documents made from letters (the
// council's own outbox documents are not deliveries).
func oCaseItems(sim *casesyssim.Server) []oItem {
	var out []oItem
	for _, d := range sim.Documents() {
		if d.Outbox != nil {
			continue
		}
		it := oItem{Dest: destCase, Ident: d.ID}
		if d.Letter != nil {
			it.Letter = d.Letter.ID
		}
		for _, f := range d.Files {
			it.Digests = append(it.Digests, f.SHA256)
		}
		out = append(out, it)
	}
	return out
}

// oEPJItems are the region's Communications.
func oEPJItems(sim *epjsim.Server) []oItem {
	var out []oItem
	for _, raw := range sim.Communications() {
		var c struct {
			ID         string `json:"id"`
			Identifier []struct {
				System, Value string
			} `json:"identifier"`
			Payload []struct {
				ContentString     string `json:"contentString"`
				ContentAttachment *struct {
					Data string `json:"data"`
				} `json:"contentAttachment"`
			} `json:"payload"`
		}
		if json.Unmarshal(raw, &c) != nil {
			out = append(out, oItem{Dest: destRegion, Ident: "unreadable"})
			continue
		}
		it := oItem{Dest: destRegion, Ident: c.ID}
		for _, id := range c.Identifier {
			if strings.Contains(id.System, "letter") {
				it.Letter = id.Value
			}
		}
		var text strings.Builder
		for _, p := range c.Payload {
			text.WriteString(p.ContentString + "\n")
			if p.ContentAttachment != nil {
				if b, err := base64.StdEncoding.DecodeString(p.ContentAttachment.Data); err == nil {
					s := sha256.Sum256(b)
					it.Digests = append(it.Digests, hex.EncodeToString(s[:]))
					text.Write(b)
				}
			}
		}
		it.Text = text.String()
		out = append(out, it)
	}
	return out
}

// oMails reads the SMTP server's messages once each; messages are only
// ever appended, so a cache by position is exact.
type oMails struct {
	srv  *mailtest.SMTPServer
	to   string // the coordinator's address: mails to others are not this destination's
	mu   sync.Mutex
	seen []oItem
	skip []bool
}

func (m *oMails) Items() []oItem {
	msgs := m.srv.Messages()
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := len(m.seen); i < len(msgs); i++ {
		m.seen = append(m.seen, oMailItem(msgs[i]))
		m.skip = append(m.skip, !slices.Contains(msgs[i].To, m.to))
	}
	var out []oItem
	for i, it := range m.seen {
		if !m.skip[i] {
			out = append(out, it)
		}
	}
	return out
}

// oMailItem reads one mail: its Message-ID and the decoded text of every
// part (quoted-printable and base64 undone, so a marker is found whole).
func oMailItem(r mailtest.Received) oItem {
	it := oItem{Dest: destNotices, Transmission: true}
	mr, err := mail.CreateReader(bytes.NewReader(r.Data))
	if err != nil {
		it.Ident, it.Text = "unreadable", string(r.Data)
		return it
	}
	it.Ident, _ = mr.Header.MessageID()
	var text strings.Builder
	for {
		p, err := mr.NextPart()
		if err != nil {
			break
		}
		b, _ := io.ReadAll(p.Body)
		text.Write(b)
		text.WriteString("\n")
	}
	it.Text = text.String()
	// A notice names its letter by reference only (never its content).
	if m := oNoticeRefRE.FindStringSubmatch(it.Text); m != nil {
		it.Letter = m[1]
	}
	return it
}

// oNoticeRefRE finds the letter a notice is about.
var oNoticeRefRE = regexp.MustCompile(`Reference: (\S+)`)

// oPostItems are the messages Digital Post stored (one per messageUUID:
// a repeat under the same UUID is counted by the simulator, not stored).
func oPostItems(sim *digitalpostsim.Server) []oItem {
	var out []oItem
	for _, m := range sim.Messages() {
		it := oItem{Dest: destParents, Ident: m.UUID, Text: sim.Text(m)}
		for _, f := range m.MainDocument {
			it.Digests = append(it.Digests, f.SHA256)
		}
		out = append(out, it)
	}
	return out
}

// oPeerItems are the letters the MedCom peer took from out/ (its
// acknowledgements are not deliveries).
func oPeerItems(p *medcompeer.Peer) []oItem {
	var out []oItem
	for _, l := range p.Letters() {
		ident := l.ID
		if ident == "" {
			ident = "unreadable " + l.File
		}
		out = append(out, oItem{Dest: destGP, Ident: ident, Text: l.Subject + "\n" + l.Text, Transmission: true})
	}
	return out
}

// r1First returns up to five items, for messages.
func r1First(ids []string) []string {
	if len(ids) > 5 {
		return ids[:5]
	}
	return ids
}
