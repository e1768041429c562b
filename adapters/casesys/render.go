package casesys

import (
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // letters are dated in Danish time even on hosts without zoneinfo

	"github.com/samhub/samhub/pipeline/letter"
)

var kindTitles = map[letter.Kind]string{
	letter.KindReferral:        "Henvisning",
	letter.KindReply:           "Svar",
	letter.KindRecommendation:  "Anbefaling fra Samrådet",
	letter.KindAcknowledgement: "Kvittering",
	letter.KindDischargeNote:   "Epikrise",
	letter.KindNote:            "Notat",
	letter.KindNotification:    "Meddelelse",
}

// title names the document in the case system's list: the letter's kind
// and, when known, who sent it.
func title(l *letter.Letter) string {
	t := kindTitles[l.Kind]
	if t == "" {
		t = "Brev"
	}
	if l.Subject != "" {
		return t + ": " + l.Subject
	}
	if n := l.Sender.Name; n != "" {
		return t + " fra " + n
	}
	return t
}

func partyLine(p letter.Party) string {
	var parts []string
	for _, s := range []string{p.Name, p.Unit} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	if p.GLN != "" {
		parts = append(parts, "lokationsnr. "+p.GLN)
	}
	if p.SOR != "" {
		parts = append(parts, "SOR "+p.SOR)
	}
	if p.Email != "" {
		parts = append(parts, p.Email)
	}
	if len(parts) == 0 {
		return p.Role
	}
	return strings.Join(parts, ", ")
}

// render is the readable text copy of a letter filed next to the original,
// so a caseworker can read an XML or FHIR letter without a viewer.
func render(l *letter.Letter) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n", title(l))
	fmt.Fprintf(&b, "Fra: %s\n", partyLine(l.Sender))
	for _, r := range l.Receivers {
		fmt.Fprintf(&b, "Til: %s\n", partyLine(r))
	}
	if d := letterDate(l); !d.IsZero() {
		fmt.Fprintf(&b, "Dato: %s\n", d.In(copenhagen()).Format("2006-01-02 15:04"))
	}
	if l.Priority != "" {
		fmt.Fprintf(&b, "Prioritet: %s\n", l.Priority)
	}
	if l.Subject != "" {
		fmt.Fprintf(&b, "Emne: %s\n", l.Subject)
	}
	fmt.Fprintf(&b, "Samhub-id: %s\n\n", l.ID)
	b.WriteString(strings.TrimSpace(l.Text))
	b.WriteString("\n")
	if len(l.Attachments) > 0 {
		b.WriteString("\nBilag:\n")
		for _, a := range l.Attachments {
			fmt.Fprintf(&b, "- %s (%s, %d bytes)\n", a.Name, a.ContentType, a.Size)
		}
	}
	return b.String()
}

func noteText(l *letter.Letter, docID string) string {
	t := kindTitles[l.Kind]
	if t == "" {
		t = "Brev"
	}
	s := fmt.Sprintf("%s er modtaget og journaliseret automatisk af Samhub som dokument %s.\nAfsender: %s\n", t, docID, partyLine(l.Sender))
	if d := letterDate(l); !d.IsZero() {
		s += "Dato: " + d.In(copenhagen()).Format("2006-01-02 15:04") + "\n"
	}
	return s
}

var cph = func() *time.Location {
	loc, err := time.LoadLocation("Europe/Copenhagen")
	if err != nil {
		return time.UTC
	}
	return loc
}()

func copenhagen() *time.Location { return cph }
