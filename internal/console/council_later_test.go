package console

import (
	"strings"
	"testing"
	"time"

	"github.com/samhub/samhub/pipeline/council"
)

// A child referred again while its first referral was open has one seat;
// the page lists both referring letters, their dates, practices and
// receipts.
func TestChildBlockListsTheLaterReferrals(t *testing.T) {
	cph, err := time.LoadLocation("Europe/Copenhagen")
	if err != nil {
		t.Fatal(err)
	}
	c := &Console{lang: "da", loc: cph}
	first := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	again := time.Date(2026, 3, 3, 9, 0, 0, 0, time.UTC)
	moved := time.Date(2026, 3, 5, 9, 0, 0, 0, time.UTC)
	ch := council.Child{LetterID: "R1", Received: first, State: "waiting", Due: first.AddDate(0, 0, 35),
		GP:       council.Org{Name: "Lægehuset Ærø", GLN: "5790000000005"},
		Referral: council.Tracked{LetterID: "R1", Kind: "referral"},
		Receipt:  &council.Tracked{LetterID: "receipt:R1", Received: first},
		NewDates: []council.Tracked{{LetterID: council.NewDateID("R1", moved), Received: moved}},
		LaterReferrals: []council.LaterReferral{{
			Tracked:  council.Tracked{LetterID: "R2", Kind: "referral", Received: again},
			GP:       council.Org{Name: "Lægerne i Østergade", GLN: "5790000000029"},
			Receipt:  &council.Tracked{LetterID: "receipt:R2", Received: again},
			NewDates: []council.Tracked{{LetterID: council.NewDateID("R2", moved), Received: moved}},
			AnswerCopies: []council.Tracked{{LetterID: "copy:D1|R2", Received: again.AddDate(0, 0, 10),
				Deliveries: []council.Delivery{{Destination: "gp", Sector: "gp", To: "GLN 5790000000029", At: again.AddDate(0, 0, 10)}}}},
		}},
		Recommendations: []council.Tracked{{LetterID: "D1", Source: "casesys", Received: again.AddDate(0, 0, 10),
			Deliveries: []council.Delivery{{Destination: "gp", Sector: "gp", To: "GLN 5790000000005", At: again.AddDate(0, 0, 10)}}}},
	}
	b := c.childBlock(1, ch, 35, false)
	rows := map[string][]string{}
	for _, r := range b.Rows {
		for _, l := range r.Lines {
			rows[r.ID] = append(rows[r.ID], l.Text+" "+l.Href)
		}
	}
	for id, want := range map[string][]string{
		"referral": {"R1 /console/letters/R1", "henvist igen: R2 /console/letters/R2"},
		"received": {"2026-03-01 10:00:00 CET ", "henvist igen: 2026-03-03 10:00:00 CET "},
		"gp":       {"Lægehuset Ærø (GLN 5790000000005) ", "henvist igen: Lægerne i Østergade (GLN 5790000000029) "},
	} {
		if strings.Join(rows[id], "|") != strings.Join(want, "|") {
			t.Errorf("row %s: %q, want %q", id, rows[id], want)
		}
	}
	if got := strings.Join(rows["receipt"], "|"); !strings.Contains(got, "/console/letters/receipt:R1") ||
		!strings.Contains(got, "henvist igen: ") || !strings.Contains(got, "/console/letters/receipt:R2") {
		t.Errorf("receipt lines %q", rows["receipt"])
	}
	// Each GP was told the meeting's new date: the letters follow each
	// receipt, the later referral's marked as such.
	got := strings.Join(rows["receipt"], "|")
	r1, r2 := strings.Index(got, "|Nyt mødetidspunkt meddelt 2026-03-05 10:00:00 CET /console/letters/receipt:R1@20260305T090000.000000000Z|"),
		strings.Index(got, "|henvist igen: Nyt mødetidspunkt meddelt 2026-03-05 10:00:00 CET /console/letters/receipt:R2@20260305T090000.000000000Z|")
	if r1 < 0 || r2 < 0 || r1 > strings.Index(got, "letters/receipt:R2|") || r2 < strings.Index(got, "letters/receipt:R2|") {
		t.Errorf("receipt lines %q", rows["receipt"])
	}
	// The recommendation reached the first GP; the second GP's copy is
	// listed under it, with where it went.
	got = strings.Join(rows["recommendation"], "|")
	i, j := strings.Index(got, "/console/letters/D1"), strings.Index(got, "En kopi til Lægerne i Østergade, som også henviste barnet, lavet 2026-03-13")
	if i < 0 || j < i || !strings.Contains(got[j:], "/console/letters/copy:D1%7CR2") || !strings.Contains(got[j:], "5790000000029") {
		t.Errorf("recommendation lines %q", rows["recommendation"])
	}
}
