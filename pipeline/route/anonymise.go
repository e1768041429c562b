package route

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"regexp"
	"strings"

	"github.com/samhub/samhub/internal/logging"
	"github.com/samhub/samhub/pipeline/letter"
)

// cprLike is a CPR number as people write it: ten digits, or six and four
// apart by a dash or a space. maskCPR takes it wherever no digit adjoins
// it, letters and underscores included ("cpr2509479989",
// "Bruno_2509479989.pdf"), which a word boundary (\b) would miss.
var cprLike = regexp.MustCompile(`^\d{6}[- ]?\d{4}`)

// maskCPR replaces every CPR-shaped number of s that is not part of a
// longer run of digits (a GLN, a phone number written together) by [CPR].
func maskCPR(s string) string {
	digit := func(i int) bool { return i >= 0 && i < len(s) && s[i] >= '0' && s[i] <= '9' }
	var b strings.Builder
	last := 0
	for i := 0; i < len(s); i++ {
		if !digit(i) || digit(i-1) {
			continue
		}
		m := cprLike.FindStringIndex(s[i:])
		if m == nil || digit(i+m[1]) {
			continue
		}
		b.WriteString(s[last:i])
		b.WriteString("[CPR]")
		last = i + m[1]
		i = last - 1
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// Anonymise returns a copy of l for a consultative forum: CPR, names and
// address removed, the patient replaced by a stable case pseudonym (HMAC of
// the identifier with the hub's secret, so it cannot be reversed without
// it), CPR-shaped numbers, the patient's replacement CPR and address and
// the names of the patient and of the citizens the letter names (custody
// holders, a private sender) masked in subject, topic and text, those
// citizens reduced to their role, and the original bytes and attachments
// dropped because they carry the identifiers. Free text can still
// describe a child; rules should send anonymised letters only to forums
// inside the municipality.
func Anonymise(l *letter.Letter, secret []byte) *letter.Letter {
	c := *l
	c.Meta = map[string]string{}
	for k, v := range l.Meta {
		c.Meta[k] = v
	}
	var ids, names, places []string
	addNames := func(ss ...string) {
		for _, s := range ss {
			for _, n := range strings.Fields(s) {
				if len([]rune(n)) > 1 {
					names = append(names, n)
				}
			}
		}
	}
	if p := l.Patient; p != nil {
		addNames(p.GivenName, p.FamilyName)
		// A replacement CPR (X-eCPR, "0703921VJ4") identifies the child
		// as its CPR number would, but has no CPR's shape; the patient's
		// own is masked as written, any other as the logs mask it.
		if id := strings.TrimSpace(p.ReplacementID); len(id) > 6 {
			ids = append(ids, id)
			if n, ok := letter.NormalisePatientID(id); ok {
				ids = append(ids, n, n[:6]+"-"+n[6:])
			}
		}
		// The whole address, then each line of it ("Testvej 1", "5000 Odense").
		if a := strings.TrimSpace(p.Address); a != "" {
			places = append(places, a)
			for _, part := range strings.FieldsFunc(a, func(r rune) bool { return r == ',' || r == '\n' }) {
				if part = strings.TrimSpace(part); len([]rune(part)) > 3 {
					places = append(places, part)
				}
			}
		}
		c.Patient = &letter.Patient{Pseudonym: Pseudonym(l.Patient.Identifier(), secret)}
	}
	for _, p := range append([]letter.Party{l.Sender}, l.Receivers...) {
		if citizen(p) {
			addNames(p.Name)
		}
	}
	mask := func(s string) string {
		s = logging.Redact(maskCPR(s))
		for _, id := range ids {
			s = replaceFold(s, id, "[CPR]")
		}
		for _, a := range places {
			s = replaceFold(s, a, "[adresse]")
		}
		for _, n := range names {
			s = replaceFold(s, n, "[navn]")
		}
		return s
	}
	c.Subject, c.Topic, c.Text = mask(l.Subject), mask(l.Topic), mask(l.Text)
	// Custody holders and private senders are citizens; an anonymised copy
	// names none of them (nor does it go to them). The addressees (To) are
	// the forum's, whom the sink must still reach.
	c.Sender = anonymousParty(l.Sender)
	c.Receivers, c.To = eachParty(l.Receivers, anonymousParty), eachParty(l.To, withoutCPR)
	c.Attachments = nil
	c.Original = letter.Original{ContentType: "text/plain; charset=utf-8", Data: []byte(c.Text)}
	c.Original.SHA256 = letter.Digest(c.Original.Data)
	c.Consent = nil
	c.Anonymised = true
	return &c
}

// citizen reports whether p may be a private person: a custody holder, a
// party with a CPR number, or one known by neither a GLN nor a SOR code (an
// email sender of no known role).
func citizen(p letter.Party) bool {
	return p.Role == letter.RoleParents || p.CPR != "" || (p.GLN == "" && p.SOR == "" && p.Role == "")
}

// anonymousParty is p as an anonymised copy names it: a citizen by role
// only, an organisation without a CPR number.
func anonymousParty(p letter.Party) letter.Party {
	if citizen(p) {
		return letter.Party{Role: p.Role}
	}
	return withoutCPR(p)
}

func withoutCPR(p letter.Party) letter.Party {
	p.CPR = ""
	return p
}

// eachParty is ps with f applied to each, nil for nil.
func eachParty(ps []letter.Party, f func(letter.Party) letter.Party) []letter.Party {
	if ps == nil {
		return nil
	}
	out := make([]letter.Party, len(ps))
	for i, p := range ps {
		out[i] = f(p)
	}
	return out
}

// Pseudonym is a short stable alias for a patient identifier.
func Pseudonym(id string, secret []byte) string {
	if id == "" {
		return ""
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(id))
	return "P-" + base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(m.Sum(nil)[:10])
}

func replaceFold(s, old, repl string) string {
	lo, lold := strings.ToLower(s), strings.ToLower(old)
	if lold == "" || len(lo) != len(s) {
		// Case folding changed byte lengths (rare letters); fall back to exact.
		return strings.ReplaceAll(s, old, repl)
	}
	var b strings.Builder
	for {
		i := strings.Index(lo, lold)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		b.WriteString(repl)
		s, lo = s[i+len(old):], lo[i+len(old):]
	}
}
