package acceptance

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	epjsim "github.com/samhub/samhub/internal/sim/epj"
	"github.com/samhub/samhub/internal/sim/medcompeer"
	register "github.com/samhub/samhub/pipeline/council"
	"github.com/samhub/samhub/pipeline/council/schedule"
	"github.com/samhub/samhub/pipeline/journey"
	"github.com/samhub/samhub/pipeline/letter"
)

// The council's month (issue 18): eight referrals of seven children from
// three practices are assigned to the next two meetings (five places
// each): Bruno's second referral, sent before his meeting, joins his open
// one and takes no seat; every referring GP gets a receipt naming the
// meeting; the council recommends for six children, to their GPs, to child
// psychiatry where the parents consented, and to Bruno's parents by
// Digital Post (one of them exempt: the copy waits for a paper letter),
// and Bruno's one recommendation answers both his referrals; child
// psychiatry turns one referral down; the coordinator moves a meeting and
// exports the agenda; one child (Peter, without a family name) has no
// recommendation when the watch runs out: his referral is flagged and the
// coordinator reminded; and the council's figures count exactly what
// happened.
//
// The watch is a minute here (council.watch_days takes fractions), so the
// other six recommendations have most of a minute to arrive.

// Two more of MedCom's fictitious persons: E-CPR numbers, one without a
// known family name.
var (
	peter    = child{Given: "Peter Test", Family: "Hansen", ReplacementID: "0703921VJ5"}
	peterNoF = child{Given: "Peter", ReplacementID: "1206550VK9"}
)

const watchSeconds = 60

var monthCouncil = fmt.Sprintf(`council:
  meetings: {rule: "second tuesday 13:00", zone: Europe/Copenhagen, cap: 5}
  watch_days: %.9f
  receipt: {enabled: true, destination: gp}
  rejections:
    - {name: bup-afviser, match: {source: [epj], sender: [%q]}, words: [afvis]}
`, watchSeconds/86400.0, childPsychiatry.SOR)

// referred is one referral of the month.
type referred struct {
	c    child
	gp   gp
	how  medcompeer.Outgoing
	sent medcompeer.Sent
}

func TestTheCouncilsMonth(t *testing.T) {
	// Most of this scenario waits out the watch: let the others run meanwhile.
	t.Parallel()
	w := newWorld(t, withConfig(monthCouncil), withDigitalPost(nancy.CPR))
	cases, coordinator, region := w.caseSystem(), w.coordinator(), w.region()
	start := time.Now()

	// The children the council hears about, with their practices and the
	// consent the parents gave the municipality when the case was opened.
	noFamily := fhirXML
	noFamily.FamilyNameUnknown = true
	month := []*referred{
		{c: aase, gp: gpAero, how: xdis91Latin1},
		{c: mads, gp: gpAero, how: xdis91UTF8},
		{c: bruno, gp: gpOster, how: fhirXML},
		{c: peter, gp: gpOster, how: fhirXML},
		{c: caecar, gp: gpSonder, how: fhirJSONVANS},
		{c: birgit, gp: gpSonder, how: noFamily},
		{c: peterNoF, gp: gpSonder, how: noFamily},
	}
	for _, r := range month {
		scopes := []letter.Scope{letter.ScopeMunicipality, letter.ScopeGP}
		if r.c.ID() == aase.ID() || r.c.ID() == bruno.ID() {
			scopes = append(scopes, letter.ScopeRegionPsychiatry, letter.ScopeParents)
		}
		cases.Knows(r.c, scopes...)
		w.expectLetters(r.c, r.gp)
	}
	region.Knows(aase, &gpAero)
	region.Knows(bruno, &gpOster)
	region.Knows(caecar, &gpSonder)

	// Week 1: seven referrals; Bruno's GP refers him again before his
	// meeting (here: once the first is filed), in a new episode. It joins
	// his open referral: one child, one seat, one answer.
	for _, r := range month {
		r.sent = w.gp(r.gp).Refers(r.c, r.how)
	}
	for _, r := range month {
		cases.Files(r.sent.ID)
	}
	again := &referred{c: bruno, gp: gpSonder, how: fhirXML}
	w.expectLetters(bruno, gpSonder)
	again.sent = w.gp(gpSonder).Refers(bruno, fhirXML)
	cases.Files(again.sent.ID)
	all := append(slices.Clone(month), again)

	// Two meetings take the seven children: five, then two.
	meetings := coordinator.Meetings()
	var taken []register.Meeting
	w.eventually("seven children seated in two meetings", func() bool {
		meetings, taken = coordinator.Meetings(), nil
		n := 0
		for _, m := range meetings {
			if m.Referrals > 0 {
				taken = append(taken, m)
				n += m.Referrals
			}
		}
		return n == 7
	})
	if len(taken) != 2 || taken[0].Referrals != 5 || taken[1].Referrals != 2 || taken[0].Cap != 5 {
		t.Fatalf("the referrals took meetings %+v; want the next meeting full (5) and two in the one after", taken)
	}
	// seat: each referral's meeting; a joined referral's is its child's.
	// The register reads the letters on its own: the eighth referral,
	// which takes no seat, may be read after the seven are seated.
	var seat map[string]register.Meeting
	var joinedTo map[string]string // later referral → the child's seat (its first referral)
	w.eventually("all eight referrals on the meeting pages", func() bool {
		seat, joinedTo = map[string]register.Meeting{}, map[string]string{}
		for _, m := range taken {
			for _, ch := range coordinator.Meeting(m.ID).Children {
				for _, id := range append([]string{ch.LetterID}, laterIDs(ch)...) {
					if _, twice := seat[id]; twice {
						t.Errorf("referral %s is in two meetings, or twice in one", id)
					}
					seat[id] = m
					joinedTo[id] = ch.LetterID
				}
			}
		}
		return len(seat) >= len(all)
	})
	if joinedTo[again.sent.ID] != month[2].sent.ID || joinedTo[month[2].sent.ID] != month[2].sent.ID {
		t.Errorf("Bruno's second referral %s sits with %q; want it joined to his first, %s", again.sent.ID, joinedTo[again.sent.ID], month[2].sent.ID)
	}
	for _, r := range all {
		if _, ok := seat[r.sent.ID]; !ok {
			t.Errorf("%s's referral %s is in no meeting", r.c.Name(), r.sent.ID)
		}
	}

	// Every referring GP gets a receipt in the referral's thread, in the
	// format the practice takes, naming the meeting in Danish.
	for _, r := range all {
		rid := register.ReceiptID(r.sent.ID)
		var receipt *medcompeer.Letter
		for _, l := range w.gp(r.gp).Receives(r.c, rid, 1) {
			if strings.Contains(l.Text, "Henvisningen er modtaget") && l.Thread == r.sent.Thread {
				receipt = &l
			}
		}
		if receipt == nil {
			t.Errorf("%s's GP got no receipt in the referral's thread %s", r.c.Name(), r.sent.Thread)
			continue
		}
		m := seat[r.sent.ID]
		want := "behandles på samrådsmødet " + schedule.Danish(m.At.In(cph()))
		if !strings.Contains(receipt.Text, want) || receipt.To.GLN != r.gp.GLN {
			t.Errorf("%s's receipt at %s: %q to %s; want %q to the practice", r.c.Name(), r.gp.Name, receipt.Text, receipt.To.GLN, want)
		}
		if wantFormat := formatOf(r.gp); receipt.Format != wantFormat {
			t.Errorf("%s's receipt reached %s as %s; the practice takes %s", r.c.Name(), r.gp.Name, receipt.Format, wantFormat)
		}
		if receipt.Format != medcompeer.FormatXDIS91 && (receipt.Kind != letter.KindReply || receipt.InReplyTo != r.sent.ID) {
			t.Errorf("%s's receipt is a %s answering %q; want a reply to the referral %s", r.c.Name(), receipt.Kind, receipt.InReplyTo, r.sent.ID)
		}
	}

	// Week 2: the council recommends for six of the seven children: to the
	// GP always, to child psychiatry and the parents where the parents
	// consented to that. Peter, the last, is still being discussed.
	recommended, waiting := month[:6], month[6]
	recs := map[string]string{} // child id → recommendation letter id
	for _, r := range recommended {
		to := recipients{GP: &r.gp}
		switch r.c.ID() {
		case aase.ID():
			to.Region = true
		case bruno.ID():
			// His custody holders by Digital Post; Nancy is exempt.
			to.Region, to.Custody = true, []custodyHolder{brita, nancy}
		}
		recs[r.c.ID()] = w.council().Recommends(r.c, to, "Samrådet anbefaler et forløb hos PPR. Kontaktperson: Sagsbehandler Test.")
	}
	// Bruno's recommendation answers both his referrals: Søndergade,
	// which referred him again, gets it in its own referral's thread.
	for _, r := range append(slices.Clone(recommended), again) {
		got := w.gp(r.gp).Receives(r.c, recs[r.c.ID()], 2)
		i := slices.IndexFunc(got, func(l medcompeer.Letter) bool { return strings.Contains(l.Text, "PPR") })
		switch {
		case i < 0:
			t.Errorf("%s's GP %s did not get the recommendation", r.c.Name(), r.gp.Name)
		case got[i].Format != medcompeer.FormatXDIS91 && (got[i].InReplyTo != r.sent.ID || got[i].Thread != r.sent.Thread):
			t.Errorf("%s's recommendation reached %s answering %q in thread %q; want the referral %s in %s", r.c.Name(), r.gp.Name, got[i].InReplyTo, got[i].Thread, r.sent.ID, r.sent.Thread)
		}
	}
	w.eventually("Åse's and Bruno's recommendations at the region", func() bool {
		return len(region.CommunicationsFor(recs[aase.ID()])) == 1 && len(region.CommunicationsFor(recs[bruno.ID()])) == 1
	})
	// Bruno's parents: Brita gets a MeMo in her Digital Post; Nancy is
	// exempt, so the parents' copy waits in the queue for a paper letter.
	w.eventually("Brita's Digital Post", func() bool { return len(w.post.MessagesFor(brita.CPR)) == 1 })
	exempt := coordinator.FindsParked("parents", recs[bruno.ID()])
	if exempt.LastError.Code != "recipient_exempt" || !strings.Contains(exempt.LastError.Reason, "paper") {
		t.Errorf("the parents' copy waits with %s (%q); want recipient_exempt telling the coordinator to send it on paper", exempt.LastError.Code, exempt.LastError.Reason)
	}
	if n := len(w.post.MessagesFor(nancy.CPR)); n != 0 {
		t.Errorf("Nancy, exempt from Digital Post, has %d messages there", n)
	}
	cases.OutboxShows(recs[bruno.ID()], "failed", map[string]string{"gp": "sent", "region": "sent", "parent-1": "sent", "parent-2": "failed"})

	// Week 3: child psychiatry turns Cæcar's referral down.
	turnedDown := region.TurnsDown(caecar, "Henvisningen afvises: barnet er ikke i målgruppen for børne- og ungdomspsykiatrien.")
	cases.Files(turnedDown)

	// The coordinator's meeting page: each child with the GP, consent per
	// sector, documents, the recommendation sent and to whom, the GP's
	// acknowledgement; names only in the agenda.
	first := taken[0]
	var page register.MeetingView
	var lacking []string // what the page still lacks, logged when it changes
	said := ""
	w.eventually("the first meeting's page with every recommendation acknowledged", func() bool {
		page = coordinator.Meeting(first.ID)
		lacking = lacking[:0]
		for _, ch := range page.Children {
			if ch.LetterID == waiting.sent.ID {
				continue // the letters reach the hub in any order: Peter may sit here
			}
			switch {
			case len(ch.Recommendations) != 1:
				lacking = append(lacking, fmt.Sprintf("%s's referral %s: %d recommendations", byLetter(all, ch.LetterID).c.Name(), ch.LetterID, len(ch.Recommendations)))
			case len(ch.Recommendations[0].Acknowledgements) == 0:
				lacking = append(lacking, fmt.Sprintf("referral %s: recommendation %s unacknowledged (deliveries %+v)", ch.LetterID, ch.Recommendations[0].LetterID, ch.Recommendations[0].Deliveries))
			}
		}
		if now := strings.Join(lacking, "; "); now != said && now != "" {
			t.Logf("the meeting page still lacks: %s", now)
			said = now
		}
		return len(lacking) == 0
	})
	for _, ch := range page.Children {
		r := byLetter(all, ch.LetterID)
		if ch.GP.GLN != r.gp.GLN || ch.GP.Name != r.gp.Name || ch.Name != "" {
			t.Errorf("%s on the meeting page: GP %+v, name %q; want the practice and no name", r.c.Name(), ch.GP, ch.Name)
		}
		if len(ch.Referral.Deliveries) == 0 || ch.Referral.Deliveries[0].Destination != "casefile" || ch.Receipt == nil || len(ch.Receipt.Deliveries) == 0 {
			t.Errorf("%s's referral on the page: filed %+v, receipt %+v", r.c.Name(), ch.Referral.Deliveries, ch.Receipt)
		}
		if ch.LetterID == waiting.sent.ID {
			continue // no recommendation yet, so no word of the case's consent either
		}
		// The case's consent reaches the register with the recommendation.
		if ch.Consent.Sectors["gp"] != "given" {
			t.Errorf("%s's consent on the page: %+v; the case carries the gp scope", r.c.Name(), ch.Consent)
		}
		rec := ch.Recommendations[0]
		if !hasTo(rec, "gp", "GLN "+r.gp.GLN) || !rec.Acknowledgements[0].Positive {
			t.Errorf("%s's recommendation on the page: %+v", r.c.Name(), rec)
		}
		if r.c.ID() == aase.ID() && (!hasTo(rec, "region_psychiatry", "") || ch.Consent.Sectors["region_psychiatry"] != "given") {
			t.Errorf("Åse's recommendation on the page does not show child psychiatry: %+v", rec)
		}
	}

	// Bruno's seat, in whichever meeting: his second referral joined, with
	// its own receipt, and answered by his one recommendation.
	var brunoSeat register.Child
	w.eventually("Bruno's seat answered", func() bool {
		for _, ch := range coordinator.Meeting(seat[month[2].sent.ID].ID).Children {
			if ch.LetterID == month[2].sent.ID {
				brunoSeat = ch
			}
		}
		return brunoSeat.State == "answered"
	})
	if later := brunoSeat.LaterReferrals; len(later) != 1 || later[0].LetterID != again.sent.ID || later[0].GP.GLN != gpSonder.GLN || later[0].Receipt == nil {
		t.Errorf("Bruno's seat: later referrals %+v; want his second referral joined, from Søndergade, with its receipt", later)
	}
	// The page shows the recommendation's copy to Søndergade, delivered
	// and acknowledged; Østergade had the recommendation itself.
	w.eventually("the copy to Søndergade acknowledged on Bruno's seat", func() bool {
		for _, ch := range coordinator.Meeting(seat[month[2].sent.ID].ID).Children {
			if ch.LetterID == month[2].sent.ID {
				brunoSeat = ch
			}
		}
		c := brunoSeat.LaterReferrals[0].AnswerCopies
		return len(c) == 1 && len(c[0].Acknowledgements) == 1
	})
	if c := brunoSeat.LaterReferrals[0].AnswerCopies[0]; c.LetterID != register.CopyID(recs[bruno.ID()], again.sent.ID) ||
		!hasTo(c, "gp", "GLN "+gpSonder.GLN) || !c.Acknowledgements[0].Positive || len(brunoSeat.AnswerCopies) != 0 {
		t.Errorf("Bruno's seat: the copy to Søndergade %+v, copies to Østergade %+v", c, brunoSeat.AnswerCopies)
	}
	// The copy went to the GP alone: the case, the region and the parents
	// had the recommendation itself.
	tr := coordinator.Traces(register.CopyID(recs[bruno.ID()], again.sent.ID))
	var went []string
	for _, s := range tr.Steps {
		if s.Destination != "" {
			went = append(went, s.Step+" "+s.Destination)
		}
	}
	if len(tr.steps(journey.Delivered, "gp")) != 1 || len(went) != 1 {
		t.Errorf("the copy's journey %v; want one delivery, to the GP", went)
	}

	// The coordinator moves the first meeting a day and exports its agenda.
	moveTo := first.At.In(cph()).AddDate(0, 0, 1)
	out, code := w.samhubctl(coordinatorToken, "meeting", "move", first.ID, "--at", moveTo.Format("2006-01-02")+" 09:00", "--reason", "Lokalet er optaget")
	if code != 0 || !strings.Contains(out, "its 5 referrals go with it") {
		t.Errorf("samhubctl meeting move: exit %d: %s", code, out)
	}
	csv, code := w.samhubctl(coordinatorToken, "meeting", "export", first.ID, "--reason", "Dagsorden til samrådets møde")
	if code != 0 || !strings.HasPrefix(csv, "\ufeffMøde;Barn;") || strings.Count(csv, "\n") != 6 {
		t.Errorf("samhubctl meeting export: exit %d:\n%s", code, csv)
	}
	for _, ch := range page.Children {
		if r := byLetter(all, ch.LetterID); !strings.Contains(csv, ";"+r.c.Name()+";") && !strings.Contains(csv, ";"+r.c.Given+";") {
			t.Errorf("the agenda does not name %s:\n%s", r.c.Name(), csv)
		}
	}
	for _, m := range coordinator.Meetings() {
		if m.ID == first.ID && (m.MovedFrom == nil || !m.At.Equal(time.Date(moveTo.Year(), moveTo.Month(), moveTo.Day(), 9, 0, 0, 0, cph()))) {
			t.Errorf("the moved meeting: %+v", m)
		}
	}
	// The GP of a child still waiting there (Peter, if he sits here) is
	// told the new date; the GPs of the children answered are not.
	firstAt := schedule.Danish(time.Date(moveTo.Year(), moveTo.Month(), moveTo.Day(), 9, 0, 0, 0, cph()))
	peterWas := schedule.Danish(seat[waiting.sent.ID].At.In(cph()))
	if seat[waiting.sent.ID].ID == first.ID {
		w.toldNewDate(waiting, firstAt, peterWas)
		peterWas = firstAt
	}

	// The watch runs out for Peter's referral: flagged, and the coordinator
	// reminded once, without the child in the mail. Bruno's second
	// referral is not: his recommendation answered it.
	var flagged []register.Child
	w.eventuallyWithin(time.Duration(watchSeconds+60)*time.Second, "Peter's referral flagged", func() bool {
		flagged = coordinator.Referrals("unanswered")
		return slices.ContainsFunc(flagged, func(c register.Child) bool { return c.Flagged != nil })
	})
	if len(flagged) != 1 || flagged[0].LetterID != waiting.sent.ID || flagged[0].Flagged == nil {
		t.Errorf("unanswered referrals %+v; want only Peter's (if another is listed, its recommendation came after the watch: the machine was too slow)", flagged)
	}
	w.eventually("the reminder of Peter's referral", func() bool {
		for _, n := range w.notices() {
			if strings.Contains(n, "har ikke fået en anbefaling") && strings.Contains(n, waiting.sent.ID) {
				return true
			}
		}
		return false
	})
	reminders := 0
	for _, n := range w.notices() {
		if strings.Contains(n, "har ikke fået en anbefaling") {
			reminders++
		}
		for _, r := range all {
			if strings.Contains(n, r.c.ID()) || (r.c.Family != "" && strings.Contains(n, r.c.Family)) {
				t.Errorf("a notice to the coordinator names %s", r.c.Name())
			}
		}
	}
	if reminders != 1 {
		t.Errorf("%d reminders, want one", reminders)
	}
	if v := w.metric("samhub_referrals_unanswered"); v != 1 {
		t.Errorf("samhub_referrals_unanswered = %v, want 1", v)
	}

	// The council did not reach Peter: the coordinator adds a meeting and
	// moves his seat there. His clock and flag stay; his old meeting no
	// longer lists him.
	extra := time.Now().In(cph()).AddDate(0, 2, 0)
	extra = time.Date(extra.Year(), extra.Month(), 1, 10, 0, 0, 0, cph()) // never a rule meeting's day
	extraID := extra.Format("2006-01-02")
	if out, code := w.samhubctl(coordinatorToken, "meeting", "add", "--at", extraID+" 10:00", "--cap", "2", "--reason", "Ekstra møde"); code != 0 {
		t.Fatalf("samhubctl meeting add: exit %d: %s", code, out)
	}
	old := seat[waiting.sent.ID].ID
	out, code = w.samhubctl(coordinatorToken, "referral", "move", waiting.sent.ID, "--to", extraID, "--reason", "Samrådet nåede ikke sagen")
	if code != 0 || !strings.Contains(out, "now sits in meeting "+extraID+" (moved from "+old+")") {
		t.Errorf("samhubctl referral move: exit %d: %s", code, out)
	}
	moved := coordinator.Meeting(extraID)
	if len(moved.Children) != 1 || moved.Children[0].LetterID != waiting.sent.ID || moved.Children[0].MovedFrom != old ||
		moved.Children[0].State != "unanswered" || moved.Children[0].Flagged == nil || !moved.Children[0].Received.Equal(flagged[0].Received) {
		t.Errorf("the added meeting %+v; want Peter, moved from %s, still unanswered and flagged", moved.Children, old)
	}
	for _, ch := range coordinator.Meeting(old).Children {
		if ch.LetterID == waiting.sent.ID {
			t.Errorf("Peter is still listed in meeting %s", old)
		}
	}
	// His GP is told the added meeting's date, in his referral's thread,
	// and only Peter's GP was ever told a new date.
	w.toldNewDate(waiting, schedule.Danish(extra), peterWas)
	for _, l := range w.peer.Letters() {
		if strings.Contains(l.Text, "tidligere meddelt") && l.Patient.Identifier() != waiting.c.ID() {
			t.Errorf("GLN %s was told a new date for a child answered: %q", l.Party, l.Text)
		}
	}
	if moved := coordinator.Meeting(extraID); len(moved.Children) != 1 || len(moved.Children[0].NewDates) == 0 {
		t.Errorf("Peter's page lists no letter telling his GP the new date: %+v", moved.Children)
	}

	// The council's figures: what the month did.
	k := w.kpi()
	// Children's cases count once: Bruno's second referral is joined.
	if k.Referrals != 7 || k.Joined != 1 || k.Unanswered != 1 || !k.Rejections.Configured || k.Rejections.Total != 1 {
		t.Errorf("figures: %d referrals, %d joined, %d unanswered, rejections %+v; want 7, 1, 1, 1", k.Referrals, k.Joined, k.Unanswered, k.Rejections)
	}
	perMonth := 0
	for _, m := range k.Months {
		perMonth += m.Referrals
	}
	if perMonth != 7 || len(k.Months) != 12 || k.Months[11].Month != time.Now().In(cph()).Format("2006-01") {
		t.Errorf("months %+v", k.Months)
	}
	practices := map[string]int{}
	for _, p := range k.PerPractice {
		practices[p.Name+" "+p.GLN] = p.Referrals
	}
	if want := map[string]int{"Lægehuset Ærø 5790000000005": 2, "Lægerne i Østergade 5790000000029": 2, "Lægeklinikken Søndergade 5790000000036": 4}; fmt.Sprint(practices) != fmt.Sprint(want) {
		t.Errorf("referrals per practice %v, want %v", practices, want)
	}
	// Lead times as the journeys show them: referral received → its
	// recommendation received (Bruno's from his first referral).
	var lead []float64
	for _, r := range recommended {
		lead = append(lead, coordinator.receivedAt(recs[r.c.ID()]).Sub(coordinator.receivedAt(r.sent.ID)).Seconds())
	}
	slices.Sort(lead)
	if k.LeadTime.Count != 6 || !near(k.LeadTime.MedianSeconds, quantile7(lead, 0.5)) || !near(k.LeadTime.P90Seconds, quantile7(lead, 0.9)) {
		t.Errorf("lead time %+v; the journeys give median %.3f s, 90th percentile %.3f s of %d", k.LeadTime, quantile7(lead, 0.5), quantile7(lead, 0.9), len(lead))
	}
	if lead[len(lead)-1] > time.Since(start).Seconds() {
		t.Errorf("a lead time longer than the scenario: %v", lead)
	}
	table, code := w.samhubctl(coordinatorToken, "kpi")
	if code != 0 || !strings.Contains(table, "Referrals: 7") || !strings.Contains(table, "Turned down by child psychiatry: 1 (rules: bup-afviser)") {
		t.Errorf("samhubctl kpi: exit %d:\n%s", code, table)
	}
	// Peter's parents withdraw their consent: the coordinator withdraws
	// his referral, which then waits for nothing, and cancels the meeting
	// added for him.
	out, code = w.samhubctl(coordinatorToken, "referral", "withdraw", waiting.sent.ID, "--reason", "Forældrene har trukket samtykket tilbage")
	if code != 0 || !strings.Contains(out, "is withdrawn") {
		t.Errorf("samhubctl referral withdraw: exit %d: %s", code, out)
	}
	if k := w.kpi(); k.Unanswered != 0 || k.Referrals != 7 {
		t.Errorf("figures after the withdrawal: %d unanswered of %d; want 0 of 7", k.Unanswered, k.Referrals)
	}
	if v := w.metric("samhub_referrals_unanswered"); v != 0 {
		t.Errorf("samhub_referrals_unanswered = %v after the withdrawal, want 0", v)
	}
	if out, code = w.samhubctl(coordinatorToken, "meeting", "cancel", extraID, "--reason", "Mødet er ikke nødvendigt"); code != 0 {
		t.Errorf("samhubctl meeting cancel: exit %d: %s", code, out)
	}
	if out, _ = w.samhubctl(coordinatorToken, "meeting", "show", extraID); !strings.Contains(out, "CANCELLED") || !strings.Contains(out, ": withdrawn") {
		t.Errorf("the cancelled meeting:\n%s", out)
	}
	// The parents give their consent again: the coordinator reinstates
	// Peter's referral in a meeting with room, and his GP is told its date.
	// His clock ran out long ago: he counts as unanswered again.
	var later register.Meeting
	for _, m := range coordinator.Meetings() {
		if later.ID == "" && !m.Past && m.Cancelled == nil && m.Room > 0 {
			later = m
		}
	}
	if out, code = w.samhubctl(coordinatorToken, "referral", "reinstate", waiting.sent.ID, "--to", later.ID, "--reason", "Forældrene har givet samtykke igen"); code != 0 ||
		!strings.Contains(out, "is reinstated in meeting "+later.ID) {
		t.Errorf("samhubctl referral reinstate: exit %d: %s", code, out)
	}
	w.toldNewDate(waiting, schedule.Danish(later.At.In(cph())), schedule.Danish(extra))
	if k := w.kpi(); k.Unanswered != 1 {
		t.Errorf("figures after reinstating: %d unanswered; want Peter's", k.Unanswered)
	}
	// The audit log has the coordinator's actions with their reasons.
	audit, _ := w.samhubctl(auditorToken, "audit", "tail", "-n", "50", "-o", "json")
	for _, want := range []string{`"action": "meeting-move"`, "Lokalet er optaget", `"action": "agenda-export"`, "Dagsorden til samrådets møde",
		`"action": "referral-move"`, `"action": "referral-withdraw"`, `"action": "meeting-cancel"`, `"action": "referral-reinstate"`, "Forældrene har givet samtykke igen"} {
		if !strings.Contains(audit, want) {
			t.Errorf("the audit log lacks %s", want)
		}
	}
}

func cph() *time.Location {
	l, err := time.LoadLocation("Europe/Copenhagen")
	if err != nil {
		panic(err)
	}
	return l
}

// toldNewDate waits for the letter telling r's GP that the council takes
// the referral at now (in Danish) and not at before, in the referral's
// thread and the format the practice takes.
func (w *world) toldNewDate(r *referred, now, before string) {
	w.t.Helper()
	want := "behandles nu på samrådsmødet " + now + " og ikke som tidligere meddelt " + before
	var got []medcompeer.Letter
	w.eventually(r.c.Name()+"'s GP told the new date "+now, func() bool {
		got = got[:0]
		for _, l := range w.peer.Letters() {
			if l.Party == r.gp.GLN && l.Patient.Identifier() == r.c.ID() && strings.Contains(l.Text, want) {
				got = append(got, l)
			}
		}
		return len(got) > 0
	})
	l := got[0]
	if len(got) != 1 || l.Format != formatOf(r.gp) || l.Thread != r.sent.Thread || (l.Format != medcompeer.FormatXDIS91 && l.InReplyTo != r.sent.ID) {
		w.t.Errorf("%s's GP was told the new date in %d letters; the first %s in thread %q answering %q; want one, %s, answering %s in %s",
			r.c.Name(), len(got), l.Format, l.Thread, l.InReplyTo, formatOf(r.gp), r.sent.ID, r.sent.Thread)
	}
}

func formatOf(p gp) string {
	if len(p.Formats) > 0 && p.Formats[0] == "xdis91" {
		return medcompeer.FormatXDIS91
	}
	return medcompeer.FormatFHIRXML
}

func byLetter(all []*referred, id string) *referred {
	for _, r := range all {
		if r.sent.ID == id {
			return r
		}
	}
	return &referred{}
}

func hasTo(t register.Tracked, sector, to string) bool {
	for _, d := range t.Deliveries {
		if d.Sector == sector && (to == "" || d.To == to) {
			return true
		}
	}
	return false
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-3 }

// quantile7 is the interpolating quantile of sorted s (type 7), written
// here apart from the hub's.
func quantile7(s []float64, q float64) float64 {
	pos := q * float64(len(s)-1)
	i := int(pos)
	if i == len(s)-1 {
		return s[i]
	}
	return s[i] + (pos-float64(i))*(s[i+1]-s[i])
}

// TurnsDown puts a note into the region's feed: child psychiatry turning
// c's referral down. It returns the hub's letter id.
func (r region) TurnsDown(c child, text string) string {
	r.w.t.Helper()
	pid, ok := r.w.epjPatients[c.ID()]
	if !ok {
		r.w.t.Fatalf("the region does not know %s", c.Name())
	}
	sor := map[string]string{"system": epjsim.SystemSOR, "value": childPsychiatry.SOR}
	body := map[string]any{
		"resourceType": "DocumentReference", "status": "current",
		"contained":   []any{map[string]any{"resourceType": "Organization", "id": "sender", "identifier": []any{sor}, "name": childPsychiatry.Name}},
		"type":        map[string]any{"coding": []any{map[string]string{"system": "http://loinc.org", "code": "11488-4", "display": "Consult note"}}},
		"subject":     map[string]string{"reference": "Patient/" + pid},
		"date":        time.Now().UTC().Format(time.RFC3339),
		"author":      []any{map[string]any{"reference": "#sender", "identifier": sor}},
		"description": text,
		"content":     []any{map[string]any{"attachment": map[string]any{"contentType": "text/plain; charset=utf-8", "title": "Afvisning", "data": base64.StdEncoding.EncodeToString([]byte(text))}}},
		// To the municipality (the council), the feed the hub reads.
		"context": map[string]any{"related": []any{map[string]any{"identifier": map[string]string{"system": epjsim.SystemSOR, "value": theCouncil.SOR}, "display": theCouncil.Name}}},
	}
	b, _ := json.Marshal(body)
	ref, err := r.w.epj.SeedResource("DocumentReference", b, time.Time{})
	if err != nil {
		r.w.t.Fatal(err)
	}
	return "epj:epj:" + ref + "/1"
}

// Meetings are the meetings samhubctl lists (three months back to six ahead).
func (co coordinator) Meetings() []register.Meeting {
	co.w.t.Helper()
	var v struct{ Meetings []register.Meeting }
	co.ctlJSON(&v, "meeting", "list")
	return v.Meetings
}

// Meeting is a meeting's page as samhubctl shows it (no names).
func (co coordinator) Meeting(id string) register.MeetingView {
	co.w.t.Helper()
	var v register.MeetingView
	co.ctlJSON(&v, "meeting", "show", id)
	return v
}

// Referrals lists the register's referrals in a state.
func (co coordinator) Referrals(state string) []register.Child {
	co.w.t.Helper()
	var v struct{ Referrals []register.Child }
	co.ctlJSON(&v, "referral", "list", "--state", state)
	return v.Referrals
}

// receivedAt is when the hub stored a letter, from its journey.
func (co coordinator) receivedAt(id string) time.Time {
	co.w.t.Helper()
	for _, s := range co.Traces(id).Steps {
		if s.Step == journey.Received {
			return s.At
		}
	}
	co.w.t.Fatalf("letter %s has no received step", id)
	return time.Time{}
}

// kpi is GET /api/v1/kpi as the coordinator.
func (w *world) kpi() register.KPI {
	w.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, w.hub.url+"/api/v1/kpi", nil)
	req.Header.Set("Authorization", "Bearer "+coordinatorToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	var k register.KPI
	if err := json.NewDecoder(resp.Body).Decode(&k); err != nil || resp.StatusCode != http.StatusOK {
		w.t.Fatalf("GET /api/v1/kpi: %s %v", resp.Status, err)
	}
	return k
}

// metric reads one unlabelled gauge from the hub's /metrics.
func (w *world) metric(name string) float64 {
	w.t.Helper()
	resp, err := http.Get(w.hub.url + "/metrics")
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	w.t.Fatalf("/metrics has no %s", name)
	return 0
}

// eventuallyWithin is eventually with a longer limit (the watch period).
func (w *world) eventuallyWithin(d time.Duration, what string, cond func() bool) {
	w.t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			w.t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// laterIDs are the letter ids of the later referrals joined to ch.
func laterIDs(ch register.Child) []string {
	var ids []string
	for _, l := range ch.LaterReferrals {
		ids = append(ids, l.LetterID)
	}
	return ids
}
