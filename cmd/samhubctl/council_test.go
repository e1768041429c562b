package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/samhub/samhub/internal/hubtest"
	"github.com/samhub/samhub/pipeline/council"
)

// dropReferrals drops n XDIS91 referrals from Lægehuset Ærø (each its own
// letter and episode) and waits until the register has them.
func dropReferrals(t *testing.T, h *hubtest.Hub, n int) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("../../testdata/medcom/samhub", "letter-utf8.xml"))
	if err != nil {
		t.Fatal(err)
	}
	// Each referral is of another child: a second referral of a child
	// whose first is open joins it and takes no seat of its own.
	children := [][3]string{{"2509479989", "Elmer", "Bruno Test"}, {"1509819996", "Berggren", "Brita Test"}, {"2512489996", "Berggren", "Nancy Ann Test"}}
	if n > len(children) {
		t.Fatalf("dropReferrals: at most %d children", len(children))
	}
	var ids []string
	for i := range n {
		c := children[i]
		d := bytes.Replace(data, []byte("<CivilRegistrationNumber>2509479989<"), []byte("<CivilRegistrationNumber>"+c[0]+"<"), 1)
		d = bytes.Replace(d, []byte("<PersonSurnameName>Elmer<"), []byte("<PersonSurnameName>"+c[1]+"<"), 1)
		d = bytes.Replace(d, []byte("<PersonGivenName>Bruno Test<"), []byte("<PersonGivenName>"+c[2]+"<"), 1)
		d = bytes.Replace(d, []byte("LTR00000000001"), []byte(fmt.Sprintf("LTR%011d", 900+i)), 1)
		d = bytes.Replace(d, []byte("ENV00000000001"), []byte(fmt.Sprintf("ENV%011d", 900+i)), 1)
		d = bytes.Replace(d, []byte("0f6c1e2d3a4b5c6d7e8f90a1b2c3d4e5"), []byte(fmt.Sprintf("%032x", 900+i)), 1)
		h.Drop(fmt.Sprintf("ref-%d.xml", i), d)
		ids = append(ids, fmt.Sprintf("5790000000005#LTR%011d", 900+i))
	}
	h.Eventually("the referrals in the council's register", func() bool {
		seated := 0
		for _, r := range h.App.Hub.Council().Referrals(council.ReferralFilter{}) {
			if r.Meeting != "" {
				seated++
			}
		}
		return seated == n
	})
	h.Eventually("the referrals filed in the case system", func() bool {
		for _, r := range h.App.Hub.Council().Referrals(council.ReferralFilter{}) {
			v, err := h.App.Hub.Council().MeetingView(context.Background(), r.Meeting)
			if err != nil {
				return false
			}
			for _, ch := range v.Children {
				if len(ch.Referral.Deliveries) == 0 {
					return false
				}
			}
		}
		return true
	})
	return ids
}

func TestCLICouncilMonth(t *testing.T) {
	h := hubtest.Start(t)
	ids := dropReferrals(t, h, 2)
	coord := hubtest.CoordinatorToken
	next := h.App.Hub.Council().Referrals(council.ReferralFilter{})[0].Meeting

	t.Run("meeting list", func(t *testing.T) {
		code, out, errs := ctl(t, h, coord, "meeting", "list")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		mustHave(t, out, "Rule: second tuesday 13:00 (Europe/Copenhagen), 6 referrals per meeting.", "ID", "WHEN", next, "2/6", "rule")
	})

	t.Run("meeting show without names", func(t *testing.T) {
		code, out, errs := ctl(t, h, coord, "meeting", "show", next)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		mustHave(t, out, "Meeting "+next, "2 of 6 places taken", ids[0], ids[1], "Lægehuset Ærø (GLN 5790000000005)", "Consent (none): gp missing, region_psychiatry missing\n", "Referral: delivered to casefile", "Recommendation: none yet")
		if strings.Contains(out, "Elmer") || strings.Contains(out, "2509479989") {
			t.Errorf("the meeting names the child without --names:\n%s", out)
		}
	})

	t.Run("names need a reason and are audited", func(t *testing.T) {
		if code, _, errs := ctl(t, h, coord, "meeting", "show", next, "--names"); code != exitUsage || !strings.Contains(errs, "--reason") {
			t.Fatalf("exit %d: %s", code, errs)
		}
		code, out, errs := ctl(t, h, coord, "meeting", "show", next, "--names", "--reason", "Forberedelse af mødet")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		mustHave(t, out, "Child: Bruno Test Elmer")
		code, out, errs = ctl(t, h, coord, "meeting", "export", next, "--reason", "Dagsorden til samrådet")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		mustHave(t, out, "Møde;Barn;Henvist;Henvisende læge", "Bruno Test Elmer;", ";Lægehuset Ærø;")
		_, audit, _ := ctl(t, h, hubtest.AuditorToken, "audit", "tail", "-o", "json")
		mustHave(t, audit, `"action": "agenda-read"`, `"action": "agenda-export"`, "Dagsorden til samrådet", "meeting:"+next)
	})

	t.Run("add and move", func(t *testing.T) {
		if code, _, errs := ctl(t, h, coord, "meeting", "add", "--at", "2099-01-20 10:00"); code != exitUsage || !strings.Contains(errs, "--reason") {
			t.Fatalf("exit %d: %s", code, errs)
		}
		code, out, errs := ctl(t, h, coord, "meeting", "add", "--at", "2099-01-20 10:00", "--cap", "3", "--reason", "Ekstra møde")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		mustHave(t, out, "Meeting 2099-01-20 added: 2099-01-20 10:00 CET, 3 referrals.")
		if code, _, errs := ctl(t, h, coord, "meeting", "add", "--at", "2099-01-20 14:00", "--reason", "igen"); code != exitUsage || !strings.Contains(errs, "planned that day") {
			t.Errorf("a second meeting that day: exit %d: %s", code, errs)
		}
		code, out, errs = ctl(t, h, coord, "meeting", "move", next, "--at", time.Now().AddDate(0, 0, 40).Format("2006-01-02")+" 09:00", "--reason", "Lokalet er optaget")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		mustHave(t, out, "Meeting "+next+" moved to", "its 2 referrals go with it")
		if code, _, errs := ctl(t, h, coord, "meeting", "move", "2099-13-40", "--at", "2099-02-01 10:00", "--reason", "x"); code != exitNotFound {
			t.Errorf("moving a meeting that is not: exit %d: %s", code, errs)
		}
		code, out, _ = ctl(t, h, coord, "meeting", "list", "--from", "2099-01-01", "--to", "2099-02-01", "-o", "json")
		var v struct{ Meetings []council.Meeting }
		if err := json.Unmarshal([]byte(out), &v); code != 0 || err != nil || len(v.Meetings) != 2 || v.Meetings[1].ID != "2099-01-20" || v.Meetings[1].Origin != "added" {
			t.Errorf("meetings in January 2099: %s", out)
		}
	})

	t.Run("referral move", func(t *testing.T) {
		if code, _, errs := ctl(t, h, coord, "referral", "move", ids[0], "--to", "2099-01-20"); code != exitUsage || !strings.Contains(errs, "--reason") {
			t.Fatalf("exit %d: %s", code, errs)
		}
		if code, _, errs := ctl(t, h, coord, "referral", "move", ids[0], "--to", "2099-13-40", "--reason", "x"); code != exitNotFound {
			t.Errorf("to a meeting that is not: exit %d: %s", code, errs)
		}
		code, out, errs := ctl(t, h, coord, "referral", "move", ids[0], "--to", "2099-01-20", "--reason", "Sagen er ikke klar")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		mustHave(t, out, "Referral "+ids[0]+" now sits in meeting 2099-01-20 (moved from "+next+").")
		code, out, _ = ctl(t, h, coord, "meeting", "show", "2099-01-20")
		mustHave(t, out, "1 of 3 places taken", ids[0], "moved here from meeting "+next)
		_, audit, _ := ctl(t, h, hubtest.AuditorToken, "audit", "tail", "-o", "json")
		mustHave(t, audit, `"action": "referral-move"`, "Sagen er ikke klar", "referral:"+ids[0]+" from:"+next+" to:2099-01-20")
		if code != 0 {
			t.Errorf("meeting show: exit %d", code)
		}
		// The added meeting seats a child: it cannot be cancelled until
		// the child is moved on.
		if code, _, errs := ctl(t, h, coord, "meeting", "cancel", "2099-01-20", "--reason", "Sommerferie"); code == 0 || !strings.Contains(errs, "still seats children") {
			t.Errorf("cancelling a meeting with a child: exit %d: %s", code, errs)
		}
		if code, out, errs := ctl(t, h, coord, "referral", "move", ids[0], "--to", next, "--reason", "Mødet aflyses"); code != 0 {
			t.Fatalf("moving back: exit %d: %s %s", code, out, errs)
		}
		code, out, errs = ctl(t, h, coord, "meeting", "cancel", "2099-01-20", "--reason", "Sommerferie")
		if code != 0 {
			t.Fatalf("meeting cancel: exit %d: %s", code, errs)
		}
		mustHave(t, out, "Meeting 2099-01-20 (2099-01-20 10:00 CET) is cancelled")
		_, out, _ = ctl(t, h, coord, "meeting", "list", "--from", "2099-01-01", "--to", "2099-02-01")
		mustHave(t, out, "added, CANCELLED")
	})

	t.Run("referral list and kpi", func(t *testing.T) {
		code, out, errs := ctl(t, h, coord, "referral", "list")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		mustHave(t, out, "LETTER", ids[0], ids[1], "waiting", next)
		code, out, errs = ctl(t, h, coord, "kpi")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		mustHave(t, out, "Referrals: 2", "no recommendations in the period", "not counted (no council.rejections rule configured)", "Lægehuset Ærø", hubtest.ThisMonth())
		code, out, _ = ctl(t, h, hubtest.OperationsToken, "kpi", "-o", "json", "--months", "3")
		var k council.KPI
		if err := json.Unmarshal([]byte(out), &k); code != 0 || err != nil || k.Referrals != 2 || len(k.Months) != 3 || len(k.PerPractice) != 1 || k.PerPractice[0].Referrals != 2 {
			t.Errorf("kpi as operations: exit %d %v: %s", code, err, out)
		}
		if code, _, _ := ctl(t, h, hubtest.OperationsToken, "meeting", "list"); code != exitAuth {
			t.Errorf("operations may list meetings: exit %d", code)
		}
	})

	t.Run("referral withdraw", func(t *testing.T) {
		if code, _, errs := ctl(t, h, coord, "referral", "withdraw", ids[1]); code != exitUsage || !strings.Contains(errs, "--reason") {
			t.Fatalf("exit %d: %s", code, errs)
		}
		code, out, errs := ctl(t, h, coord, "referral", "withdraw", ids[1], "--reason", "Henvist ved en fejl")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		mustHave(t, out, "Referral "+ids[1]+" is withdrawn; its place in meeting "+next+" is free.")
		code, out, _ = ctl(t, h, coord, "referral", "list", "--state", "withdrawn")
		if code != 0 || !strings.Contains(out, ids[1]) || strings.Contains(out, ids[0]) {
			t.Errorf("withdrawn referrals: exit %d:\n%s", code, out)
		}
		_, out, _ = ctl(t, h, coord, "meeting", "show", next)
		mustHave(t, out, "1 of 6 places taken", ids[1], ": withdrawn")
		if code, _, errs := ctl(t, h, coord, "referral", "move", ids[1], "--to", "2099-01-20", "--reason", "x"); code == 0 || !strings.Contains(errs, "withdrawn") {
			t.Errorf("moving a withdrawn referral: exit %d: %s", code, errs)
		}
		// Withdrawn by mistake: reinstated in its own meeting, it takes
		// its place again.
		if code, _, errs := ctl(t, h, coord, "referral", "reinstate", ids[1]); code != exitUsage || !strings.Contains(errs, "--reason") {
			t.Fatalf("exit %d: %s", code, errs)
		}
		code, out, errs = ctl(t, h, coord, "referral", "reinstate", ids[1], "--reason", "Trukket tilbage ved en fejl")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		mustHave(t, out, "Referral "+ids[1]+" is reinstated in meeting "+next+".")
		_, out, _ = ctl(t, h, coord, "meeting", "show", next)
		mustHave(t, out, "2 of 6 places taken")
		_, audit, _ := ctl(t, h, hubtest.AuditorToken, "audit", "tail", "-o", "json")
		mustHave(t, audit, `"action": "referral-withdraw"`, "Henvist ved en fejl", `"action": "referral-reinstate"`, "Trukket tilbage ved en fejl")
	})
}

// A letter discarded after a paper copy shows the coordinator's reason, not
// "(-)", which read as if the parents never got it.
func TestDiscardShowsItsReason(t *testing.T) {
	var b strings.Builder
	printTracked(&b, "   Recommendation", council.Tracked{Waiting: []council.Waiting{
		{Destination: "parents", Step: "discarded", Reason: "sendt som fysisk brev"},
		{Destination: "region", Step: "consent-denied", Code: "consent_missing", Reason: "rule … no consent"},
	}})
	want := "   Recommendation: discarded at parents (sendt som fysisk brev); consent-denied at region (consent_missing)\n"
	if b.String() != want {
		t.Fatalf("got %q\nwant %q", b.String(), want)
	}
}

// meeting show writes a referral's dates in the council's zone, as the
// console and the agenda do, also on a machine whose clock is UTC: a
// referral at 00:30 on 1 March in Copenhagen is 1 March's.
func TestMeetingShowDatesAreTheCouncilsDays(t *testing.T) {
	saved := time.Local
	time.Local = time.UTC
	t.Cleanup(func() { time.Local = saved })
	at := time.Date(2026, 2, 28, 23, 30, 0, 0, time.UTC) // 00:30 on 1 March in Copenhagen
	v := council.MeetingView{
		Meeting: council.Meeting{ID: "2026-03-10", At: time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC), Zone: "Europe/Copenhagen", Cap: 6, Referrals: 1},
		Children: []council.Child{{LetterID: "5790000000005#LTR00000000900", Received: at, State: "waiting", Due: at.Add(35 * 24 * time.Hour),
			Recommendations: []council.Tracked{{LetterID: "casesys:casesys:DOK-1", Received: time.Date(2026, 3, 31, 22, 30, 0, 0, time.UTC)}}}},
	}
	var b bytes.Buffer
	printMeeting(&b, v)
	mustHave(t, b.String(), "Meeting 2026-03-10: 2026-03-10 13:00 CET", "LTR00000000900, 2026-03-01 from", "(due 2026-04-05)", "Recommendation casesys:casesys:DOK-1 (2026-04-01)")
	if strings.Contains(b.String(), "holiday") {
		t.Errorf("an ordinary day's meeting speaks of a holiday:\n%s", b.String())
	}

	// A meeting ahead on a day off says so; one held, or cancelled, not.
	b.Reset()
	v.Meeting.DayOff = "Kristi Himmelfartsdag"
	printMeeting(&b, v)
	mustHave(t, b.String(), "it falls on Kristi Himmelfartsdag, a Danish public holiday or closing day: move or cancel it")
	b.Reset()
	v.Meeting.Past = true
	printMeeting(&b, v)
	if strings.Contains(b.String(), "holiday") {
		t.Errorf("a meeting held speaks of its holiday:\n%s", b.String())
	}
}

// meeting show lists a child's later referrals (a second GP's) under the
// first, with their dates in the council's zone, their receipts and the
// letters that told each GP a new meeting date.
func TestMeetingShowListsALaterReferral(t *testing.T) {
	first := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	again := time.Date(2026, 3, 2, 23, 30, 0, 0, time.UTC) // 00:30 on 3 March in Copenhagen
	v := council.MeetingView{
		Meeting: council.Meeting{ID: "2026-03-10", At: time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC), Zone: "Europe/Copenhagen", Cap: 6, Referrals: 1},
		Children: []council.Child{{LetterID: "R1", Received: first, State: "waiting", Due: first.Add(35 * 24 * time.Hour),
			GP: council.Org{Name: "Lægehuset Ærø", GLN: "5790000000005"},
			LaterReferrals: []council.LaterReferral{{Tracked: council.Tracked{LetterID: "R2", Received: again},
				GP: council.Org{Name: "Lægerne i Østergade", GLN: "5790000000029"}, Receipt: &council.Tracked{LetterID: "receipt:R2"},
				NewDates: []council.Tracked{{LetterID: "receipt:R2@20260305T090000.000000000Z"}}}},
			NewDates: []council.Tracked{{LetterID: "receipt:R1@20260305T090000.000000000Z"}}}},
	}
	var b bytes.Buffer
	printMeeting(&b, v)
	mustHave(t, b.String(), "1. Referral R1, 2026-03-01 from Lægehuset Ærø (GLN 5790000000005)",
		"Referred again R2, 2026-03-03 from Lægerne i Østergade (GLN 5790000000029)", "Receipt to that GP",
		"New meeting date told that GP receipt:R2@20260305T090000.000000000Z", "New meeting date told the GP receipt:R1@20260305T090000.000000000Z")
}
