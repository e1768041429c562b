package route

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"regexp"
	"strings"

	"github.com/samhub/samhub/pipeline/letter"
)

var cprLike = regexp.MustCompile(`\b\d{6}-?\d{4}\b`)

// Anonymise returns a copy of l for a consultative forum: CPR, names and
// address removed, the patient replaced by a stable case pseudonym (HMAC of
// the identifier with the hub's secret, so it cannot be reversed without
// it), CPR-shaped numbers and the patient's names masked in subject and
// text, and the original bytes and attachments dropped because they carry
// the identifiers. Free text can still describe a child; rules should send
// anonymised letters only to forums inside the municipality.
func Anonymise(l *letter.Letter, secret []byte) *letter.Letter {
	c := *l
	c.Meta = map[string]string{}
	for k, v := range l.Meta {
		c.Meta[k] = v
	}
	var names []string
	if l.Patient != nil {
		for _, n := range append(strings.Fields(l.Patient.GivenName), strings.Fields(l.Patient.FamilyName)...) {
			if len([]rune(n)) > 1 {
				names = append(names, n)
			}
		}
		c.Patient = &letter.Patient{Pseudonym: Pseudonym(l.Patient.Identifier(), secret)}
	}
	mask := func(s string) string {
		s = cprLike.ReplaceAllString(s, "[CPR]")
		for _, n := range names {
			s = replaceFold(s, n, "[navn]")
		}
		return s
	}
	c.Subject, c.Text = mask(l.Subject), mask(l.Text)
	// Custody holders are citizens named by CPR; an anonymised copy names
	// none (nor does it go to them).
	c.Sender = withoutCPR(l.Sender)
	c.Receivers, c.To = partiesWithoutCPR(l.Receivers), partiesWithoutCPR(l.To)
	c.Attachments = nil
	c.Original = letter.Original{ContentType: "text/plain; charset=utf-8", Data: []byte(c.Text)}
	c.Original.SHA256 = letter.Digest(c.Original.Data)
	c.Consent = nil
	c.Anonymised = true
	return &c
}

func withoutCPR(p letter.Party) letter.Party {
	p.CPR = ""
	return p
}

func partiesWithoutCPR(ps []letter.Party) []letter.Party {
	if ps == nil {
		return nil
	}
	out := make([]letter.Party, len(ps))
	for i, p := range ps {
		out[i] = withoutCPR(p)
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
