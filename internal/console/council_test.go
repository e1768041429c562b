package console_test

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/samhub/samhub/internal/config"
	"github.com/samhub/samhub/internal/hubtest"
	casesyssim "github.com/samhub/samhub/internal/sim/casesys"
	epjsim "github.com/samhub/samhub/internal/sim/epj"
	"github.com/samhub/samhub/internal/sim/medcompeer"
	"github.com/samhub/samhub/pipeline/council"
	"github.com/samhub/samhub/pipeline/council/schedule"
	"github.com/samhub/samhub/pipeline/letter"
)

// The council's world around a test hub: two GP practices played by the
// MedCom peer (they refer, and acknowledge what the hub sends them), the
// case system with each child's case and consent, child psychiatry's EPJ,
// and the council's register with receipts to the GP and a rule for child
// psychiatry's rejections. The children are MedCom's fictitious test
// persons with made-up names.

type kid struct{ Given, Family, CPR string }

func (k kid) name() string { return k.Given + " " + k.Family }

var (
	aase   = kid{"Åse Test", "Kjærgård", "1509819996"}
	mads   = kid{"Mads Test", "Bøgelund", "2512489996"}
	bruno  = kid{"Bruno Test", "Elmer", "2509479989"}
	caecar = kid{"Cæcar Test", "Østergård", "2311143995"}

	gpAero  = medcompeer.Party{Name: "Lægehuset Ærø", Role: "gp", GLN: "5790000000005", SOR: "543210987654321", ProviderNumber: "123456"}
	gpOster = medcompeer.Party{Name: "Lægerne i Østergade", Role: "gp", GLN: "5790000000029", SOR: "543210987654338", ProviderNumber: "234567"}
)

const (
	councilGLN      = "5790001382445"
	councilSOR      = "1144561000016002"
	councilName     = "Samrådet for Børn og Unge"
	childPsychSOR   = "6071000016008"
	childPsychName  = "Børne- og Ungdomspsykiatrien"
	rejectionRule   = "bup-afviser"
	referralSubject = "Henvisning til samråd"
)

type councilWorld struct {
	t     *testing.T
	h     *hubtest.Hub
	peer  *medcompeer.Peer
	cases map[string]string // CPR → case id
}

// councilConfig is the council's configuration of the world: watch is
// council.watch_days as a duration.
func councilConfig(watch time.Duration) hubtest.Option {
	return hubtest.WithConfig(func(c *config.Config) {
		c.Council.WatchDays = watch.Hours() / 24
		c.Council.Receipt = config.CouncilReceipt{Enabled: true, Destination: "gp", Template: config.DefaultReceiptTemplate}
		c.Council.Rejections = []config.RejectionRule{{Name: rejectionRule, Match: config.Match{Source: []string{"epj"}, Sender: []string{childPsychSOR}}, Words: []string{"afvis"}}}
		c.Receivers = append(c.Receivers,
			config.Receiver{Name: gpAero.Name, Role: "gp", GLN: gpAero.GLN, SOR: gpAero.SOR, Formats: []string{"xdis91"}},
			config.Receiver{Name: gpOster.Name, Role: "gp", GLN: gpOster.GLN, SOR: gpOster.SOR, Formats: []string{"fhir-xml"}})
	})
}

// newCouncilWorld starts the hub with the console in the council's world.
func newCouncilWorld(t *testing.T, watch time.Duration, opts ...hubtest.Option) *councilWorld {
	t.Helper()
	cfg := councilConfig(watch)
	h := startHub(t, append([]hubtest.Option{cfg}, opts...)...)
	peer, err := medcompeer.New(medcompeer.Config{Dir: h.MedComDir, Council: medcompeer.Org{Name: councilName, GLN: councilGLN, SOR: councilSOR},
		Parties: []medcompeer.Party{gpAero, gpOster}})
	if err != nil {
		t.Fatal(err)
	}
	peer.Start()
	t.Cleanup(func() { _ = peer.Close() })
	return &councilWorld{t: t, h: h, peer: peer, cases: map[string]string{}}
}

// refer gives the child a case (with the parents' consent to the given
// sectors) and has the practice refer the child; it returns the hub's
// letter id once the register has seated the referral.
func (w *councilWorld) refer(k kid, from medcompeer.Party, format string, scopes ...letter.Scope) string {
	w.t.Helper()
	cc := casesyssim.Case{Title: "Samråd", PrimaryParty: casesyssim.Person{CPR: k.CPR, Name: k.name()}}
	if len(scopes) > 0 {
		at := time.Now().Add(-24 * time.Hour).UTC()
		cc.Consent = &casesyssim.Consent{GivenBy: "custody-holder", Form: "written", GivenAt: &at}
		for _, s := range scopes {
			cc.Consent.Scopes = append(cc.Consent.Scopes, string(s))
		}
	}
	got, err := w.h.CaseSys.SeedCase(cc)
	if err != nil {
		w.t.Fatal(err)
	}
	w.cases[k.CPR] = got.ID
	sent, err := w.peer.Send(medcompeer.Outgoing{From: from.GLN, Format: format, Patient: letter.Patient{CPR: k.CPR, GivenName: k.Given, FamilyName: k.Family},
		Subject: referralSubject, Text: "Drengen/pigen mistrives i skolen og derhjemme. Forældrene ønsker samrådets vurdering."})
	if err != nil {
		w.t.Fatal(err)
	}
	w.h.Eventually("referral "+sent.ID+" seated", func() bool {
		for _, r := range w.h.App.Hub.Council().Referrals(council.ReferralFilter{}) {
			if r.LetterID == sent.ID && r.Meeting != "" {
				return true
			}
		}
		return false
	})
	return sent.ID
}

// recommend puts the council's recommendation on the child's case, to the
// practice and child psychiatry, and waits until it answers the referral.
func (w *councilWorld) recommend(k kid, gp medcompeer.Party, referral string) {
	w.t.Helper()
	r := casesyssim.OutboxRecipients{GP: &casesyssim.Organisation{Name: gp.Name, GLN: gp.GLN, SOR: gp.SOR},
		Region: &casesyssim.Organisation{Name: childPsychName, SOR: childPsychSOR}}
	if _, err := w.h.CaseSys.SeedOutboxDocument(w.cases[k.CPR], casesyssim.SeedDocument{Title: "Samrådets anbefaling", Text: "Samrådet anbefaler et forløb hos PPR.", Recipients: r}); err != nil {
		w.t.Fatal(err)
	}
	w.h.Eventually("the recommendation answers "+referral, func() bool { return w.child(referral).State == "answered" })
}

// regionKnows seeds the child as a patient of child psychiatry.
func (w *councilWorld) regionKnows(k kid) {
	w.t.Helper()
	if _, err := w.h.EPJ.SeedPatient(epjsim.Patient{CPR: k.CPR, GivenName: k.Given, FamilyName: k.Family}); err != nil {
		w.t.Fatal(err)
	}
}

// turnsDown: child psychiatry writes that it turns the referral down.
func (w *councilWorld) turnsDown(k kid, referral string) {
	w.t.Helper()
	if _, err := w.h.EPJ.SeedNote(epjsim.Note{Type: "DocumentReference", PatientCPR: k.CPR, RecipientSOR: councilSOR, SenderSOR: childPsychSOR, SenderName: childPsychName,
		Text: "Børne- og ungdomspsykiatrien afviser henvisningen: barnet hører til i kommunens tilbud."}); err != nil {
		w.t.Fatal(err)
	}
	w.h.Eventually("the rejection on "+referral, func() bool { return len(w.child(referral).Rejections) == 1 })
}

// child is the referral as the register has it (no journeys).
func (w *councilWorld) child(letterID string) council.Child {
	for _, r := range w.h.App.Hub.Council().Referrals(council.ReferralFilter{}) {
		if r.LetterID == letterID {
			return r
		}
	}
	return council.Child{}
}

// meetingOf is the id of the meeting the referral takes.
func (w *councilWorld) meetingOf(letterID string) string { return w.child(letterID).Meeting }

// delivered waits until the meeting page shows the letters delivered and
// acknowledged as the world's systems answer: the referral filed, the
// receipt and each recommendation at the GP with its acknowledgement.
func (w *councilWorld) settled(meeting string, answered ...string) {
	w.t.Helper()
	missing := func() string {
		v, err := w.h.App.Hub.Council().MeetingView(context.Background(), meeting)
		if err != nil {
			return err.Error()
		}
		for _, ch := range v.Children {
			switch {
			case len(ch.Referral.Deliveries) == 0:
				return ch.LetterID + " not filed"
			case ch.Receipt == nil:
				return ch.LetterID + " has no receipt"
			case len(ch.Receipt.Acknowledgements) == 0:
				return ch.LetterID + "'s receipt is not acknowledged"
			}
			for _, id := range answered {
				if ch.LetterID != id {
					continue
				}
				if len(ch.Recommendations) == 0 || len(ch.Recommendations[0].Acknowledgements) == 0 || len(ch.Recommendations[0].Deliveries)+len(ch.Recommendations[0].Waiting) < 2 {
					return fmt.Sprintf("%s's recommendation is not delivered and acknowledged: %+v", id, ch.Recommendations)
				}
			}
		}
		return ""
	}
	deadline := time.Now().Add(90 * time.Second)
	for m := missing(); m != ""; m = missing() {
		if time.Now().After(deadline) {
			w.t.Fatalf("the meeting's letters are not delivered and acknowledged: %s", m)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// month sets up the meeting the browser and page tests look at: four
// children from two practices; Åse and Mads answered (Åse's
// recommendation reaches child psychiatry, Mads's waits for consent),
// Bruno and Cæcar left unanswered, and child psychiatry turns Cæcar
// down. It returns the meeting and the referrals in order.
func (w *councilWorld) month() (string, []string) {
	w.t.Helper()
	all := []letter.Scope{letter.ScopeMunicipality, letter.ScopeGP, letter.ScopeRegionPsychiatry, letter.ScopeParents}
	basic := []letter.Scope{letter.ScopeMunicipality, letter.ScopeGP}
	w.regionKnows(aase)
	w.regionKnows(caecar)
	refs := []string{
		w.refer(aase, gpAero, medcompeer.FormatXDIS91, all...),
		w.refer(mads, gpAero, medcompeer.FormatXDIS91, basic...),
		w.refer(bruno, gpOster, medcompeer.FormatFHIRXML, basic...),
		w.refer(caecar, gpOster, medcompeer.FormatFHIRXML, all...),
	}
	w.recommend(aase, gpAero, refs[0])
	w.recommend(mads, gpAero, refs[1])
	w.turnsDown(caecar, refs[3])
	m := w.meetingOf(refs[0])
	for _, r := range refs {
		if w.meetingOf(r) != m {
			w.t.Fatalf("the four referrals took different meetings")
		}
	}
	w.settled(m, refs[0], refs[1])
	return m, refs
}

// flagged waits until the watch flags the referrals.
func (w *councilWorld) flagged(ids ...string) {
	w.t.Helper()
	for _, id := range ids {
		w.h.Eventually("referral "+id+" flagged", func() bool { return w.child(id).Flagged != nil })
	}
}

// agendaForm posts the meeting's agenda form.
func agendaForm(t *testing.T, c *http.Client, h *hubtest.Hub, csrf, meeting, format, reason string) *http.Response {
	t.Helper()
	resp, err := c.PostForm(h.BaseURL+"/console/meetings/"+meeting+"/agenda", url.Values{"csrf": {csrf}, "format": {format}, "reason": {reason}})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func countAudit(t *testing.T, h *hubtest.Hub, action string) int {
	n := 0
	for _, r := range auditRecords(t, h) {
		if r.Action == action {
			n++
		}
	}
	return n
}

// pdfText is the PDF's text as poppler's pdftotext reads it, page by page.
func pdfText(t *testing.T, data []byte) []string {
	t.Helper()
	bin, err := exec.LookPath("pdftotext")
	if err != nil {
		t.Fatal("pdftotext is not installed: apt-get install poppler-utils (make test-tools does, as root)")
	}
	path := filepath.Join(t.TempDir(), "agenda.pdf")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "-layout", "-enc", "UTF-8", path, "-").CombinedOutput()
	if err != nil {
		t.Fatalf("pdftotext: %v\n%s", err, out)
	}
	return strings.Split(strings.TrimRight(string(out), "\f\n"), "\f")
}

// TestCouncilMeetingPages drives the council's pages over HTTP: the
// meeting list and a meeting's children (no names), moving and adding
// meetings, the agenda as print, PDF and CSV (each with a reason,
// audited, names read now), the referral watch and who may see what.
func TestCouncilMeetingPages(t *testing.T) {
	w := newCouncilWorld(t, 25*time.Second)
	h := w.h
	meeting, refs := w.month()
	w.flagged(refs[2], refs[3])
	c, csrf := login(t, h, "koordinator", hubtest.CoordinatorPassword)
	names := []string{aase.name(), mads.name(), bruno.name(), caecar.name()}
	noNames := func(what, page string) {
		t.Helper()
		for _, k := range []kid{aase, mads, bruno, caecar} {
			if strings.Contains(page, k.Family) || strings.Contains(page, k.CPR) {
				t.Errorf("%s shows %s", what, k.name())
			}
		}
	}

	t.Run("meetings", func(t *testing.T) {
		st, page := get(t, c, h.BaseURL+"/console/meetings")
		if st != http.StatusOK {
			t.Fatalf("status %d", st)
		}
		mustContain(t, "meetings", page, "the second Tuesday of the month at 13:00", `id="meeting-`+meeting+`"`, "4 of 6", "Referrals without a recommendation", refs[2], refs[3], `href="/console/meetings/`+meeting+`"`)
		noNames("the meeting list", page)
	})

	t.Run("a meeting", func(t *testing.T) {
		st, page := get(t, c, h.BaseURL+"/console/meetings/"+meeting)
		if st != http.StatusOK {
			t.Fatalf("status %d", st)
		}
		noNames("the meeting page", page)
		mustContain(t, "meeting facts", page, `id="meeting-places">4 of 6`, `id="meeting-answered">2`, `id="meeting-unanswered"><strong class="flag">2`)
		blocks := childBlocks(page)
		if len(blocks) != 4 {
			t.Fatalf("%d children on the page, want 4", len(blocks))
		}
		// Åse: filed, consent to all four sectors, recommendation to her
		// GP (acknowledged) and child psychiatry, a receipt to the GP.
		mustContain(t, "Åse", blocks[0], refs[0], "Lægehuset Ærø (GLN 5790000000005", "answered", "The council&#39;s recommendation has come",
			"the GP: given", "child and adolescent psychiatry: given",
			"The referral filed at the municipality (casefile)", "From the case system, received",
			"delivered to the GP (gp) – GLN 5790000000005", "delivered to child and adolescent psychiatry (region) – SOR "+childPsychSOR, "positive acknowledgement",
			"Made ", "written")
		// Only the sectors a route needs consent for: not the case system's
		// municipality, nor school / PPR, where no route goes.
		for _, b := range blocks {
			if strings.Contains(b, "the municipality: ") || strings.Contains(b, "school / PPR: ") {
				t.Errorf("a consent no route needs is listed:\n%s", b)
			}
		}
		// Mads: no consent for child psychiatry: the recommendation waits.
		mustContain(t, "Mads", blocks[1], refs[1], "child and adolescent psychiatry: missing", "not delivered to child and adolescent psychiatry (region): held back: no consent")
		// Bruno: flagged, nothing yet.
		mustContain(t, "Bruno", blocks[2], refs[2], "Lægerne i Østergade", "unanswered", "Flagged by the referral watch: no recommendation after", "None yet.")
		// Cæcar: flagged and turned down, the rejection among the documents.
		mustContain(t, "Cæcar", blocks[3], "Turned down by child psychiatry", "note from child psychiatry&#39;s EPJ, received", "Flagged by the referral watch")
		mustContain(t, "agenda form", page, `id="agenda-form"`, `name="format" value="pdf"`, `name="format" value="csv"`, `name="format" value="print"`)
	})

	t.Run("agenda needs a reason", func(t *testing.T) {
		before := countAudit(t, h, "agenda-export")
		resp := agendaForm(t, c, h, csrf, meeting, "pdf", "  ")
		page := body(t, resp)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "Write why you need the agenda.") || resp.Header.Get("Content-Type") == "application/pdf" {
			t.Fatalf("no reason: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		noNames("the refusal", page)
		if n := countAudit(t, h, "agenda-export"); n != before {
			t.Errorf("a refused agenda was audited")
		}
	})

	t.Run("agenda to print", func(t *testing.T) {
		resp := agendaForm(t, c, h, csrf, meeting, "print", "dagsorden til mødet")
		page := body(t, resp)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
		mustContain(t, "print view", page, append(names, "Agenda: council meeting", "Confidential: contains personal data", `data-print`, "koordinator")...)
		if strings.Index(page, aase.name()) > strings.Index(page, caecar.name()) {
			t.Error("the children are not in the meeting's order")
		}
		r, ok := findAudit(auditRecords(t, h), "agenda-export", "koordinator")
		if !ok || r.Target != "meeting:"+meeting+" format:print" || r.Reason != "dagsorden til mødet" {
			t.Errorf("audit %+v %v", r, ok)
		}
	})

	t.Run("agenda as PDF", func(t *testing.T) {
		before := countAudit(t, h, "agenda-export")
		resp := agendaForm(t, c, h, csrf, meeting, "pdf", "til mødemappen")
		data := body(t, resp)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/pdf" ||
			resp.Header.Get("Content-Disposition") != `attachment; filename="samraad-`+meeting+`.pdf"` || resp.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("PDF answer %d %v", resp.StatusCode, resp.Header)
		}
		pages := pdfText(t, []byte(data))
		if len(pages) != 4 {
			t.Fatalf("%d pages, want one per child", len(pages))
		}
		for i, k := range []kid{aase, mads, bruno, caecar} {
			mustContain(t, fmt.Sprintf("PDF page %d", i+1), pages[i], fmt.Sprintf("%d. %s", i+1, k.name()), fmt.Sprintf("Page %d of 4", i+1), refs[i])
		}
		mustContain(t, "PDF page 1", pages[0], "Agenda: council meeting", "Lægehuset Ærø", "Confidential")
		mustContain(t, "PDF page 4", pages[3], "Flagged by the referral watch", "Turned down by", "note from child psychiatry's EPJ")
		if countAudit(t, h, "agenda-export") != before+1 {
			t.Error("the PDF export was not audited")
		}
	})

	t.Run("agenda as CSV", func(t *testing.T) {
		resp := agendaForm(t, c, h, csrf, meeting, "csv", "til regnearket")
		data := body(t, resp)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
			t.Fatalf("CSV answer %d %v", resp.StatusCode, resp.Header)
		}
		cr := csv.NewReader(strings.NewReader(strings.TrimPrefix(data, "\ufeff")))
		cr.Comma = ';'
		rows, err := cr.ReadAll()
		if err != nil || len(rows) != 5 {
			t.Fatalf("CSV rows %d %v", len(rows), err)
		}
		for i, n := range names {
			if rows[i+1][1] != n {
				t.Errorf("row %d names %q, want %q", i+1, rows[i+1][1], n)
			}
		}
		if r, ok := findAudit(auditRecords(t, h), "agenda-export", "koordinator"); !ok || r.Reason != "til regnearket" {
			t.Errorf("CSV export audit %+v", r)
		}
	})

	t.Run("move and add", func(t *testing.T) {
		at := time.Now().In(mustZone(t)).AddDate(0, 1, 20)
		to := time.Date(at.Year(), at.Month(), at.Day(), 9, 30, 0, 0, at.Location())
		// Without a reason nothing moves.
		st, page, _ := post(t, c, h.BaseURL+"/console/meetings/"+meeting+"/move", url.Values{"csrf": {csrf}, "at": {to.Format("2006-01-02T15:04")}})
		if st != http.StatusBadRequest || !strings.Contains(page, "Write a reason.") || countAudit(t, h, "meeting-move") != 0 {
			t.Fatalf("a move without a reason: %d", st)
		}
		st, page, _ = post(t, c, h.BaseURL+"/console/meetings/"+meeting+"/move", url.Values{"csrf": {csrf}, "at": {"next week"}, "reason": {"x"}})
		if st != http.StatusBadRequest || !strings.Contains(page, "Date and time: must be a date and a time") {
			t.Fatalf("a move to no time: %d", st)
		}
		st, _, loc := post(t, c, h.BaseURL+"/console/meetings/"+meeting+"/move", url.Values{"csrf": {csrf}, "at": {to.Format("2006-01-02T15:04")}, "reason": {"lokalet er optaget"}})
		if st != http.StatusSeeOther || loc != "/console/meetings/"+meeting {
			t.Fatalf("move: %d %s", st, loc)
		}
		_, page = get(t, c, h.BaseURL+loc)
		mustContain(t, "moved", page, "The meeting was moved to", "its 4 referrals go with it", `id="moved-from"`, to.Format("Monday 2 January 2006")+", 09:30")
		if r, ok := findAudit(auditRecords(t, h), "meeting-move", "koordinator"); !ok || r.Reason != "lokalet er optaget" || !strings.Contains(r.Target, "meeting:"+meeting) {
			t.Errorf("move audit %+v", r)
		}
		if w.meetingOf(refs[0]) != meeting {
			t.Error("the referrals did not go with the meeting")
		}
		// A second meeting that day is refused, saying which.
		st, page, _ = post(t, c, h.BaseURL+"/console/meetings", url.Values{"csrf": {csrf}, "at": {to.Format("2006-01-02") + "T15:00"}, "reason": {"ekstra"}})
		if st != http.StatusBadRequest || !strings.Contains(page, "There is a meeting that day already (") || !strings.Contains(page, `value="ekstra"`) {
			t.Fatalf("a clash: %d", st)
		}
		extra := to.AddDate(0, 0, 7)
		st, _, loc = post(t, c, h.BaseURL+"/console/meetings", url.Values{"csrf": {csrf}, "at": {extra.Format("2006-01-02T15:04")}, "cap": {"3"}, "reason": {"ekstra møde"}})
		if st != http.StatusSeeOther || loc != "/console/meetings/"+extra.Format("2006-01-02") {
			t.Fatalf("add: %d %s", st, loc)
		}
		_, page = get(t, c, h.BaseURL+loc)
		mustContain(t, "added", page, "The meeting ", "was added.", "0 of 3", "added by the coordinator", `id="no-children"`)
		if _, ok := findAudit(auditRecords(t, h), "meeting-add", "koordinator"); !ok {
			t.Error("the addition was not audited")
		}

		// A child the council did not reach moves to the added meeting:
		// the form offers the children still waiting and the meetings
		// ahead with room; without a reason nothing moves.
		_, page = get(t, c, h.BaseURL+"/console/meetings/"+meeting)
		mustContain(t, "the seat form", page, `id="seat-form"`, `<option value="`+refs[2]+`">`, `<option value="`+extra.Format("2006-01-02")+`">`, "(3 places free)")
		if strings.Contains(page, `<option value="`+refs[0]+`">`) {
			t.Error("the seat form offers a child with its recommendation")
		}
		seat := url.Values{"csrf": {csrf}, "letter": {refs[2]}, "to": {extra.Format("2006-01-02")}}
		st, page, _ = post(t, c, h.BaseURL+"/console/meetings/"+meeting+"/seat", seat)
		if st != http.StatusBadRequest || !strings.Contains(page, "Write a reason.") || countAudit(t, h, "referral-move") != 0 {
			t.Fatalf("a seat move without a reason: %d", st)
		}
		seat.Set("reason", "sagen er ikke klar")
		st, _, loc = post(t, c, h.BaseURL+"/console/meetings/"+meeting+"/seat", seat)
		if st != http.StatusSeeOther || loc != "/console/meetings/"+meeting {
			t.Fatalf("seat move: %d %s", st, loc)
		}
		_, page = get(t, c, h.BaseURL+loc)
		mustContain(t, "after the seat move", page, "Referral "+refs[2]+" now sits in the meeting of", `id="meeting-places">3 of 6`)
		_, page = get(t, c, h.BaseURL+"/console/meetings/"+extra.Format("2006-01-02"))
		mustContain(t, "the added meeting", page, "1 of 3", refs[2], "moved here from the meeting of "+meeting)
		if r, ok := findAudit(auditRecords(t, h), "referral-move", "koordinator"); !ok || r.Reason != "sagen er ikke klar" {
			t.Errorf("seat move audit %+v", r)
		}
		seat.Set("letter", refs[0])
		st, page, _ = post(t, c, h.BaseURL+"/console/meetings/"+meeting+"/seat", seat)
		if st != http.StatusBadRequest || !strings.Contains(page, "The child has its recommendation") {
			t.Errorf("moving an answered child: %d", st)
		}

		// A meeting that seats a child cannot be cancelled; an empty one
		// ahead can, and says so on its page and in the list.
		cancel := url.Values{"csrf": {csrf}, "reason": {"sommerferie"}}
		st, page, _ = post(t, c, h.BaseURL+"/console/meetings/"+extra.Format("2006-01-02")+"/cancel", cancel)
		if st != http.StatusBadRequest || !strings.Contains(page, "The meeting still seats children") {
			t.Errorf("cancelling a meeting with a child: %d", st)
		}
		var empty string
		for _, m := range h.App.Hub.Council().Meetings(time.Now(), time.Now().AddDate(0, 4, 0)) {
			if m.Origin == "rule" && m.Referrals == 0 && !m.Past && empty == "" {
				empty = m.ID
			}
		}
		st, page, _ = post(t, c, h.BaseURL+"/console/meetings/"+empty+"/cancel", url.Values{"csrf": {csrf}})
		if st != http.StatusBadRequest || !strings.Contains(page, "Write a reason.") || countAudit(t, h, "meeting-cancel") != 0 {
			t.Fatalf("a cancel without a reason: %d", st)
		}
		st, _, loc = post(t, c, h.BaseURL+"/console/meetings/"+empty+"/cancel", cancel)
		if st != http.StatusSeeOther || loc != "/console/meetings/"+empty {
			t.Fatalf("cancel: %d %s", st, loc)
		}
		_, page = get(t, c, h.BaseURL+loc)
		mustContain(t, "cancelled", page, "is cancelled.", `id="meeting-cancelled"`)
		if strings.Contains(page, `id="cancel-form"`) {
			t.Error("a cancelled meeting offers to be cancelled")
		}
		_, page = get(t, c, h.BaseURL+"/console/meetings")
		mustContain(t, "the list", page, `id="meeting-`+empty+`"`, "cancelled ")
		if r, ok := findAudit(auditRecords(t, h), "meeting-cancel", "koordinator"); !ok || r.Reason != "sommerferie" {
			t.Errorf("cancel audit %+v", r)
		}

		// A meeting on a Danish public holiday or closing day says so on
		// its page and in the list, in the console's language.
		k := h.App.Hub.Council()
		day, off := time.Now().In(k.Rule().Loc).AddDate(0, 0, 1), ""
		for ; off == ""; day = day.AddDate(0, 0, 1) {
			if _, taken := k.Meeting(day.Format("2006-01-02")); !taken {
				off = schedule.DayOff(day)
			}
		}
		day = day.AddDate(0, 0, -1)
		hol, err := k.AddMeeting(context.Background(), council.Actor{Name: "koordinator"}, day.Format("2006-01-02")+" 10:00", 2, "Ekstra møde")
		if err != nil || hol.DayOff != off {
			t.Fatalf("a meeting added on %s (%s): %+v, %v", day.Format("2006-01-02"), off, hol, err)
		}
		_, page = get(t, c, h.BaseURL+"/console/meetings/"+hol.ID)
		mustContain(t, "a meeting on "+off, page, `id="meeting-dayoff"`, "falls on "+off+", a Danish public holiday or closing day")
		_, page = get(t, c, h.BaseURL+"/console/meetings")
		mustContain(t, "the list", page, `id="meeting-`+hol.ID+`"`, "falls on "+off)
		if n := strings.Count(page, "a Danish public holiday or closing day"); n > 2 {
			t.Errorf("%d meetings in the list fall on a day off; want at most the one added (and a rule meeting on one)", n)
		}
	})

	t.Run("overview watch", func(t *testing.T) {
		_, page := get(t, c, h.BaseURL+"/console/overview")
		mustContain(t, "overview", page, `id="unanswered-count">2`, `id="referral-watch"`, refs[2], refs[3], `id="next-meeting"`)
		noNames("the overview", page)
	})

	t.Run("operations", func(t *testing.T) {
		oc, _ := login(t, h, "drift", hubtest.OperationsPassword)
		for _, p := range []string{"/console/meetings", "/console/meetings/" + meeting} {
			if st, _ := get(t, oc, h.BaseURL+p); st != http.StatusForbidden {
				t.Errorf("operations on %s: %d", p, st)
			}
		}
		st, page := get(t, oc, h.BaseURL+"/console/kpi")
		if st != http.StatusOK || !strings.Contains(page, `id="kpi-referrals">4<`) {
			t.Errorf("operations on the figures: %d", st)
		}
		_, page = get(t, oc, h.BaseURL+"/console/overview")
		mustContain(t, "operations overview", page, `id="unanswered-count">2`, `href="/console/kpi"`)
		if strings.Contains(page, refs[2]) || strings.Contains(page, "/console/meetings") {
			t.Error("operations sees the referral watch's letters or the meetings")
		}
	})

	t.Run("withdraw", func(t *testing.T) {
		in := w.meetingOf(refs[2]) // the meeting added above
		var st int
		var page, loc string
		// A referral sent by mistake is withdrawn: still listed, marked,
		// its place free.
		wd := url.Values{"csrf": {csrf}, "letter": {refs[2]}}
		st, page, _ = post(t, c, h.BaseURL+"/console/meetings/"+in+"/withdraw", wd)
		if st != http.StatusBadRequest || !strings.Contains(page, "Write a reason.") {
			t.Fatalf("a withdrawal without a reason: %d", st)
		}
		wd.Set("reason", "henvist ved en fejl")
		st, _, loc = post(t, c, h.BaseURL+"/console/meetings/"+in+"/withdraw", wd)
		if st != http.StatusSeeOther {
			t.Fatalf("withdraw: %d %s", st, loc)
		}
		_, page = get(t, c, h.BaseURL+loc)
		mustContain(t, "withdrawn", page, "Referral "+refs[2]+" is withdrawn; its place is free.", "0 of 3", "Withdrawn by the coordinator", refs[2])
		if strings.Contains(page, `id="withdraw-form"`) {
			t.Error("the withdraw form offers a withdrawn referral")
		}
		if r, ok := findAudit(auditRecords(t, h), "referral-withdraw", "koordinator"); !ok || r.Reason != "henvist ved en fejl" {
			t.Errorf("withdraw audit %+v", r)
		}
		_, page = get(t, c, h.BaseURL+"/console/overview")
		if strings.Contains(page, `id="unanswered-count">2`) {
			t.Error("the overview still counts the withdrawn referral unanswered")
		}

		// Withdrawn by mistake: reinstated in its own meeting's free place.
		_, page = get(t, c, h.BaseURL+"/console/meetings/"+in)
		mustContain(t, "the reinstate form", page, `id="reinstate-form"`, `<option value="" selected>This meeting (3 places free)</option>`)
		ri := url.Values{"csrf": {csrf}, "letter": {refs[2]}, "to": {""}}
		st, page, _ = post(t, c, h.BaseURL+"/console/meetings/"+in+"/reinstate", ri)
		if st != http.StatusBadRequest || !strings.Contains(page, "Write a reason.") || countAudit(t, h, "referral-reinstate") != 0 {
			t.Fatalf("a reinstatement without a reason: %d", st)
		}
		ri.Set("reason", "trukket tilbage ved en fejl")
		st, _, loc = post(t, c, h.BaseURL+"/console/meetings/"+in+"/reinstate", ri)
		if st != http.StatusSeeOther {
			t.Fatalf("reinstate: %d %s", st, loc)
		}
		_, page = get(t, c, h.BaseURL+loc)
		mustContain(t, "reinstated", page, "Referral "+refs[2]+" is reinstated in the meeting of", "1 of 3")
		if strings.Contains(page, `id="reinstate-form"`) || strings.Contains(page, "Withdrawn by the coordinator") {
			t.Error("the page still shows the referral withdrawn")
		}
		if r, ok := findAudit(auditRecords(t, h), "referral-reinstate", "koordinator"); !ok || r.Reason != "trukket tilbage ved en fejl" {
			t.Errorf("reinstate audit %+v", r)
		}
	})
}

// childBlocks cuts a meeting page into its children's sections.
func childBlocks(page string) []string {
	parts := regexp.MustCompile(`<section class="child `).Split(page, -1)
	if len(parts) < 2 {
		return nil
	}
	return parts[1:]
}

func TestCouncilOff(t *testing.T) {
	h := startHub(t, hubtest.WithConfig(func(c *config.Config) { c.Council.Enabled = false }))
	c, _ := login(t, h, "koordinator", hubtest.CoordinatorPassword)
	for _, p := range []string{"/console/meetings", "/console/meetings/2026-03-10", "/console/kpi"} {
		st, page := get(t, c, h.BaseURL+p)
		if st != http.StatusNotFound || !strings.Contains(page, "council.enabled: false") {
			t.Errorf("%s with the register off: %d", p, st)
		}
	}
	_, page := get(t, c, h.BaseURL+"/console/overview")
	if strings.Contains(page, "/console/meetings") || strings.Contains(page, "/console/kpi") || strings.Contains(page, "referral-watch") {
		t.Error("the overview offers the council's pages with the register off")
	}
}

// A year of the council's work for the figures: per month back from the
// current one, the days each referral waited for its recommendation, and
// how many child psychiatry turned down. The register gets them as its
// projection applies stored letters (council.Apply): a year cannot be
// waited for in a test.
var year = []struct {
	back       int
	leads      []int
	rejections int
}{
	{11, []int{14, 21, 30}, 1}, {10, []int{9, 18, 22, 27, 40}, 0}, {9, []int{12, 16, 25, 31}, 1}, {8, []int{10, 15, 19, 20, 28, 35}, 2},
	{7, []int{20, 26}, 0}, {6, []int{8, 13, 17, 24, 33}, 1}, {5, []int{11, 12, 14, 18, 21, 29, 38}, 1}, {4, []int{16, 22, 23, 30}, 0},
	{3, []int{9, 19, 27}, 1}, {2, []int{13, 15, 17, 26, 32, 36}, 0}, {1, []int{10, 14, 20, 25, 29}, 1},
}

var practices = []letter.Party{
	{Role: "gp", Name: gpAero.Name, GLN: gpAero.GLN, SOR: gpAero.SOR},
	{Role: "gp", Name: gpOster.Name, GLN: gpOster.GLN, SOR: gpOster.SOR},
	{Role: "gp", Name: "Lægeklinikken Søndergade", GLN: "5790000000036", SOR: "543210987654345"},
}

// history applies the year to the register and returns the referrals per
// month it made ("2026-03" → n) and the rejections in all.
func history(t *testing.T, h *hubtest.Hub) (map[string]int, int) {
	t.Helper()
	ctx := context.Background()
	k := h.App.Hub.Council()
	loc := k.Rule().Loc
	now := time.Now()
	this := time.Date(now.In(loc).Year(), now.In(loc).Month(), 1, 10, 0, 0, 0, loc)
	perMonth, rejections := map[string]int{}, 0
	kids := []kid{aase, mads, bruno, caecar}
	n := 0
	for _, m := range year {
		first := this.AddDate(0, -m.back, 0)
		for j, lead := range m.leads {
			n++
			gp := practices[n%len(practices)]
			if n%4 == 0 {
				gp = practices[0] // Ærø refers most
			}
			// In the first week: before the month's meeting (the second
			// Tuesday), so none takes a meeting still to come.
			at := first.AddDate(0, 0, j)
			ref := &letter.Letter{ID: fmt.Sprintf("%s#HIST%08d", gp.GLN, n), Kind: letter.KindReferral, Source: "medcom", Format: "xdis91", Received: at, Sender: gp,
				Receivers: []letter.Party{{Role: "municipality", Name: councilName, GLN: councilGLN}}, Patient: &letter.Patient{CPR: kids[n%4].CPR}, Subject: referralSubject}
			if err := k.Apply(ctx, ref, 0); err != nil {
				t.Fatal(err)
			}
			perMonth[at.Format("2006-01")]++
			answered := at.AddDate(0, 0, lead)
			if answered.After(now) {
				answered = now.Add(-time.Minute)
			}
			rec := &letter.Letter{ID: fmt.Sprintf("casesys:casesys:HIST-%08d", n), Kind: letter.KindRecommendation, Source: "casesys", Received: answered, InReplyTo: ref.ID,
				Sender: letter.Party{Role: "municipality", Name: councilName}, Patient: ref.Patient}
			if err := k.Apply(ctx, rec, 0); err != nil {
				t.Fatal(err)
			}
			if j < m.rejections {
				x := &letter.Letter{ID: fmt.Sprintf("epj:epj:DocumentReference/H%d/1", n), Kind: letter.KindNote, Source: "epj", Received: at.AddDate(0, 0, 3), InReplyTo: ref.ID,
					Sender: letter.Party{Role: "region", Name: childPsychName, SOR: childPsychSOR}, Patient: ref.Patient, Text: "Vi afviser henvisningen."}
				if err := k.Apply(ctx, x, 0); err != nil {
					t.Fatal(err)
				}
				rejections++
			}
		}
	}
	return perMonth, rejections
}

// TestCouncilFigures: the figures page shows the register's figures for
// a year of referrals, per month and per practice, as charts with titles
// and as tables.
func TestCouncilFigures(t *testing.T) {
	w := newCouncilWorld(t, 35*24*time.Hour)
	h := w.h
	perMonth, rejected := history(t, h)
	w.refer(aase, gpAero, medcompeer.FormatXDIS91)
	perMonth[time.Now().In(mustZone(t)).Format("2006-01")]++
	c, _ := login(t, h, "koordinator", hubtest.CoordinatorPassword)
	k := h.App.Hub.Council().KPI(12)
	total := 0
	for _, n := range perMonth {
		total += n
	}
	if k.Referrals != total || k.Rejections.Total != rejected {
		t.Fatalf("the register counts %d referrals and %d rejections; the history made %d and %d", k.Referrals, k.Rejections.Total, total, rejected)
	}
	st, page := get(t, c, h.BaseURL+"/console/kpi")
	if st != http.StatusOK {
		t.Fatalf("status %d", st)
	}
	mustContain(t, "tiles", page, fmt.Sprintf(`id="kpi-referrals">%d<`, total), fmt.Sprintf(`id="kpi-rejections">%d<`, rejected),
		fmt.Sprintf(`id="kpi-median">%s days<`, strings.TrimSuffix(fmt.Sprintf("%.1f", k.LeadTime.MedianDays), ".0")), `id="kpi-unanswered">0<`)
	for _, id := range []string{"chart-referrals", "chart-leadtime", "chart-practices", "chart-rejections"} {
		svg := regexp.MustCompile(`(?s)<svg class="chart[^"]*" id="` + id + `"[^>]*role="img" aria-labelledby="` + id + `-title ` + id + `-desc">\s*<title id="` + id + `-title">[^<]+</title>\s*<desc id="` + id + `-desc">[^<]+</desc>.*?</svg>`).FindString(page)
		if svg == "" {
			t.Errorf("no accessible chart %s", id)
			continue
		}
		if n := strings.Count(svg, "<rect "); n == 0 {
			t.Errorf("chart %s has no bars", id)
		}
	}
	// Each month's referrals in the table, in order, as many as the history made.
	table := regexp.MustCompile(`(?s)<table id="table-referrals".*?</table>`).FindString(page)
	rows := regexp.MustCompile(`<tr><th scope="row">(\w+) (\d{4})</th><td class="n">(\d+)</td></tr>`).FindAllStringSubmatch(table, -1)
	if len(rows) != 12 {
		t.Fatalf("%d months in the referrals table", len(rows))
	}
	for i, m := range k.Months {
		if got := rows[i][3]; got != fmt.Sprint(perMonth[m.Month]) {
			t.Errorf("%s: the table says %s referrals, the history made %d", m.Month, got, perMonth[m.Month])
		}
	}
	// One bar per month with a referral, its height the count's share.
	bars := regexp.MustCompile(`(?s)<svg class="chart" id="chart-referrals".*?</svg>`).FindString(page)
	if n := strings.Count(bars, `<rect class="bar"`); n != 12 {
		t.Errorf("%d bars in the referrals chart, want 12", n)
	}
	// Practices: the most referring first, named.
	mustContain(t, "practices", page, `<th scope="row">Lægehuset Ærø</th>`, `<th scope="row">Lægeklinikken Søndergade</th>`)
	if strings.Index(page, `<th scope="row">Lægehuset Ærø</th>`) > strings.Index(page, `<th scope="row">Lægerne i Østergade</th>`) {
		t.Error("the practice that referred most is not first")
	}
	// Lead time per month agrees with the register's figures.
	lead := regexp.MustCompile(`(?s)<table id="table-leadtime".*?</table>`).FindString(page)
	for _, m := range k.Months {
		if m.LeadTime.Count == 0 {
			continue
		}
		if !strings.Contains(lead, fmt.Sprintf(`<td class="n">%d</td><td class="n">%s</td>`, m.Recommended, strings.TrimSuffix(fmt.Sprintf("%.1f", m.LeadTime.MedianDays), ".0"))) {
			t.Errorf("%s: the lead-time table lacks %d recommendations with a median of %.1f days", m.Month, m.Recommended, m.LeadTime.MedianDays)
		}
	}
	// Shorter periods.
	st, page = get(t, c, h.BaseURL+"/console/kpi?months=6")
	if st != http.StatusOK || strings.Count(regexp.MustCompile(`(?s)<table id="table-referrals".*?</tbody>`).FindString(page), `<tr><th scope="row">`) != 6 {
		t.Errorf("six months: %d", st)
	}
	if st, _ := get(t, c, h.BaseURL+"/console/kpi?months=99"); st != http.StatusBadRequest {
		t.Errorf("99 months: %d", st)
	}
}

// TestCouncilZones: meeting times are the council's (council.meetings.zone);
// where the console shows another zone, the pages name the council's and
// give the time in the console's too.
func TestCouncilZones(t *testing.T) {
	for _, tc := range []struct {
		zone   string
		differ bool
	}{{"Europe/Copenhagen", false}, {"UTC", true}} {
		t.Run(tc.zone, func(t *testing.T) {
			h := startHub(t, hubtest.WithConfig(func(c *config.Config) { c.Console.TimeZone = tc.zone }))
			c, _ := login(t, h, "koordinator", hubtest.CoordinatorPassword)
			_, page := get(t, c, h.BaseURL+"/console/meetings")
			rows := regexp.MustCompile(`(?s)<table id="upcoming".*?</table>`).FindString(page)
			named := strings.Contains(rows, "(Europe/Copenhagen; ") && regexp.MustCompile(`\d\d:00:00 UTC\)`).MatchString(rows)
			note := strings.Contains(page, `id="council-zone"`)
			if named != tc.differ || note != tc.differ {
				t.Errorf("console zone %s: the council's zone named in the rows %v, noted %v; want %v", tc.zone, named, note, tc.differ)
			}
			if !strings.Contains(rows, ", 13:00") {
				t.Errorf("the meetings are not shown at 13:00 in the council's zone:\n%s", rows)
			}
		})
	}
}
