package council

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/samhub/samhub/pipeline/letter"
)

var practiceOster = letter.Party{Role: letter.RoleGP, Name: "Lægerne i Østergade", GLN: "5790000000029", SOR: "123456789012345"}

// recommendation is the case system's recommendation about Bruno Test
// Elmer, answering referral to (as the case system does: the referral that
// opened the child's case).
func recommendation(id, to string, at time.Time) *letter.Letter {
	return &letter.Letter{ID: id, Kind: letter.KindRecommendation, Source: "casesys", InReplyTo: to, ThreadID: "episode-" + to,
		Patient: &letter.Patient{CPR: "2509479989"}, Received: at.UTC()}
}

// A child referred again, by another GP, before the council answered: one
// seat, both referring letters on the page, the clock from the first, and
// the recommendation answers both, so neither stays open.
func TestAChildReferredTwiceHasOneSeatAndOneAnswer(t *testing.T) {
	f := newFixture(t, receiptsOn)
	ctx := context.Background()
	start := f.clock.now() // Sunday 1 March 2026; the meeting is on the 10th
	f.apply(f.c, f.referral("R1", start, "2509479989"))
	brita := f.referral("B1", start.Add(24*time.Hour), "1509819996")
	f.apply(f.c, brita)
	r2 := f.referral("R2", start.Add(2*24*time.Hour), "2509479989")
	r2.Sender = practiceOster
	r2.Consent = &letter.Consent{GivenBy: "custody-holder", Form: "written", Scopes: []letter.Scope{letter.ScopeMunicipality, letter.ScopeGP, letter.ScopeRegionPsychiatry}}
	f.clock.set(r2.Received)
	f.apply(f.c, r2)
	f.apply(f.c, r2) // read again: nothing changes

	v, err := f.c.MeetingView(ctx, "2026-03-10")
	if err != nil {
		t.Fatal(err)
	}
	if v.Meeting.Referrals != 2 || v.Meeting.Room != 4 || len(v.Children) != 2 {
		t.Fatalf("meeting %+v with %d children; want two seats, Bruno's and Brita's", v.Meeting, len(v.Children))
	}
	ch := v.Children[0]
	if ch.LetterID != "R1" || !ch.Received.Equal(start) || ch.GP.Name != practiceAero.Name || len(ch.LaterReferrals) != 1 {
		t.Fatalf("Bruno's seat %+v", ch)
	}
	if j := ch.LaterReferrals[0]; j.LetterID != "R2" || !j.Received.Equal(r2.Received) || j.GP.GLN != practiceOster.GLN || j.Kind != "referral" ||
		j.Receipt == nil || j.Receipt.LetterID != ReceiptID("R2") {
		t.Errorf("the later referral as shown: %+v", j)
	}
	// The newer letter's statement of the consent is the one shown.
	if ch.Consent.Letter != "R2" || ch.Consent.Sectors["region_psychiatry"] != "given" {
		t.Errorf("consent %+v", ch.Consent)
	}
	// Each referring GP is told which meeting takes the child, in its own
	// thread (the receipt destination addresses the thread's party).
	var receipts []string
	for _, rc := range f.hub.receipts {
		receipts = append(receipts, rc.ID+" "+rc.InReplyTo+" "+rc.ThreadID)
		if rc.ID == ReceiptID("R2") && !strings.Contains(rc.Text, "10. marts 2026") {
			t.Errorf("R2's receipt: %q", rc.Text)
		}
	}
	if want := "[receipt:R1 R1 episode-R1 receipt:B1 B1 episode-B1 receipt:R2 R2 episode-R2]"; fmt.Sprint(receipts) != want {
		t.Errorf("receipts %v, want %s", receipts, want)
	}
	// The second GP's letters, in its own thread, land on the child's seat.
	f.apply(f.c, &letter.Letter{ID: "A2", Kind: letter.KindReply, Source: "medcom", ThreadID: "episode-R2", Received: start.Add(4 * 24 * time.Hour).UTC()})
	if r, _ := f.c.reg.referral(tokenOf("R1")); len(r.Documents) != 1 || r.Documents[0].LetterID != "A2" {
		t.Errorf("R1's documents %+v", r.Documents)
	}
	a, err := f.c.Agenda(ctx, Actor{Name: "koordinator"}, "2026-03-10", "Dagsorden", "csv")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := f.c.WriteCSV(&b, a); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), ";Bruno Test Elmer;2026-03-01;Lægehuset Ærø, Lægerne i Østergade (2026-03-03);") {
		t.Errorf("csv:\n%s", b.String())
	}

	// The recommendation answers the referral that opened the case.
	f.apply(f.c, recommendation("casesys:casesys:D1", "R1", start.Add(12*24*time.Hour)))
	f.clock.set(start.Add(40 * 24 * time.Hour))
	if err := f.c.Watch(ctx, f.clock.now()); err != nil {
		t.Fatal(err)
	}
	var states []string
	for _, c := range f.c.Referrals(ReferralFilter{}) {
		states = append(states, c.LetterID+":"+c.State)
	}
	if fmt.Sprint(states) != "[R1:answered B1:unanswered]" {
		t.Errorf("the overview %v; want Bruno answered and only Brita unanswered", states)
	}
	if g := gaugeValue(t, f.reg, "samhub_referrals_unanswered"); g != 1 {
		t.Errorf("unanswered gauge %v, want 1 (Brita)", g)
	}
	k := f.c.KPI(12)
	var practices []string
	for _, p := range k.PerPractice {
		practices = append(practices, fmt.Sprintf("%s:%d", p.Name, p.Referrals))
	}
	if k.Referrals != 2 || k.Joined != 1 || k.Unanswered != 1 || k.LeadTime.Count != 1 || k.LeadTime.MedianDays != 12 ||
		fmt.Sprint(practices) != "[Lægehuset Ærø:2 Lægerne i Østergade:1]" {
		t.Errorf("figures: referrals %d, joined %d, unanswered %d, lead time %+v (want 12 days, from the first referral), practices %v",
			k.Referrals, k.Joined, k.Unanswered, k.LeadTime, practices)
	}

	// Referred again once answered: a new case, with a seat of its own.
	f.clock.set(time.Date(2026, 4, 20, 9, 0, 0, 0, cph))
	f.apply(f.c, f.referral("R3", f.clock.now(), "2509479989"))
	if r, ok := f.c.reg.referral(tokenOf("R3")); !ok || r.Meeting != "2026-05-12" || r.Answered() {
		t.Errorf("R3 after the answer: %+v (registered %v), want its own seat on 12 May", r, ok)
	}
	if r, _ := f.c.reg.referral(tokenOf("R1")); len(r.Joined) != 1 {
		t.Errorf("R1 joined %+v", r.Joined)
	}
}

// A later referral that arrives after the child's meeting was held, while
// the recommendation is still to come, takes a seat at the next meeting:
// the council has not seen it. The recommendation from the first meeting
// does not answer it; the next meeting's does, though the case system
// answers in the first referral's thread.
func TestAReferralAfterTheChildsMeetingTakesTheNextMeeting(t *testing.T) {
	f := newFixture(t, nil)
	start := f.clock.now()
	f.apply(f.c, f.referral("R1", start, "2509479989"))
	f.apply(f.c, f.referral("R2", time.Date(2026, 3, 11, 9, 0, 0, 0, cph), "2509479989"))
	if r, _ := f.c.reg.referral(tokenOf("R2")); r.Meeting != "2026-04-14" {
		t.Fatalf("R2 takes %q, want the April meeting", r.Meeting)
	}
	f.apply(f.c, recommendation("casesys:casesys:D1", "R1", time.Date(2026, 3, 13, 9, 0, 0, 0, cph)))
	if r, _ := f.c.reg.referral(tokenOf("R2")); r.Answered() {
		t.Errorf("R2 answered before its meeting: %+v", r.Recommendations)
	}
	f.apply(f.c, recommendation("casesys:casesys:D2", "R1", time.Date(2026, 4, 16, 9, 0, 0, 0, cph)))
	r1, _ := f.c.reg.referral(tokenOf("R1"))
	r2, _ := f.c.reg.referral(tokenOf("R2"))
	if len(r2.Recommendations) != 1 || r2.Recommendations[0].LetterID != "casesys:casesys:D2" || len(r1.Recommendations) != 2 {
		t.Errorf("R1's recommendations %+v, R2's %+v", r1.Recommendations, r2.Recommendations)
	}
}

// Two referrals of one child in one fetch: one seat, one write.
func TestAChildReferredTwiceInOneFetch(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	var b pending
	for i, id := range []string{"R1", "R2"} {
		if err := f.c.apply(ctx, f.referral(id, f.clock.now().Add(time.Duration(i)*time.Minute), "2509479989"), uint64(i), &b); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.c.flush(ctx, &b); err != nil {
		t.Fatal(err)
	}
	if got := f.seats(f.c, 1); fmt.Sprint(got) != "map[2026-03-10:[R1]]" {
		t.Errorf("seats %v", got)
	}
	if r, _ := f.c.reg.referral(tokenOf("R1")); len(r.Joined) != 1 || r.Joined[0].LetterID != "R2" {
		t.Errorf("R1 joined %+v", r.Joined)
	}
	// A recommendation answering the later one answers the child's seat.
	f.apply(f.c, recommendation("casesys:casesys:D1", "R2", f.clock.now().Add(20*24*time.Hour)))
	if r, _ := f.c.reg.referral(tokenOf("R1")); !r.Answered() {
		t.Errorf("the recommendation answering R2 did not answer R1's seat")
	}
}

// A child waiting for room, referred again: the later referral waits with
// it and goes with it to the meeting that gets room, each GP with a receipt.
func TestALaterReferralGoesWithAWaitingChildToItsSeat(t *testing.T) {
	f := newFixture(t, receiptsOnOnePlace)
	ctx := context.Background()
	for i := range 24 { // room for 24 children in two years
		f.apply(f.c, f.referral(fmt.Sprintf("R%02d", i), f.clock.now().Add(time.Duration(i)*time.Minute), ""))
	}
	f.apply(f.c, f.referral("W1", f.clock.now().Add(time.Hour), "2509479989"))
	w2 := f.referral("W2", f.clock.now().Add(2*time.Hour), "2509479989")
	w2.Sender = practiceOster
	f.apply(f.c, w2)
	if r, _ := f.c.reg.referral(tokenOf("W1")); r.Meeting != "" || len(r.Joined) != 1 {
		t.Fatalf("W1 %+v; want it waiting with W2 joined", r)
	}
	if _, err := f.c.AddMeeting(ctx, Actor{Name: "koordinator"}, "2026-03-24 13:00", 1, "Ekstra møde"); err != nil {
		t.Fatal(err)
	}
	if err := f.c.seatWaiting(ctx); err != nil {
		t.Fatal(err)
	}
	if r, _ := f.c.reg.referral(tokenOf("W1")); r.Meeting != "2026-03-24" || len(r.Joined) != 1 || r.Joined[0].LetterID != "W2" {
		t.Errorf("W1 seated %+v", r)
	}
	var got []string
	for _, rc := range f.hub.receipts {
		if strings.HasPrefix(rc.ID, "receipt:W") {
			got = append(got, rc.ID+" "+rc.Meta[MetaMeeting])
		}
	}
	if fmt.Sprint(got) != "[receipt:W1 2026-03-24 receipt:W2 2026-03-24]" {
		t.Errorf("receipts %v", got)
	}
}

// legacyRecord is a meeting's record as the register stored it before a
// later referral joined an open one (written by main at 594018f): Bruno
// Test Elmer referred twice, both referrals seated.
const legacyRecord = `{"id":"2026-03-10","at":"2026-03-10T12:00:00Z","origin":"rule","movedFrom":"0001-01-01T00:00:00Z","referrals":[` +
	`{"key":"a791366f6f6201254edcac9ec72017b1","letterId":"R1","seq":1,"thread":"2ad4d48ddddbe69af0bf0f93f0ef0424","patient":"b6b45f3c6448fe0774c6842835cbac04","received":"2026-03-01T09:00:00Z","source":"medcom","format":"xdis91","gp":{"name":"Lægehuset Ærø","gln":"5790000000005","sor":"543210987654321","role":"gp"},"council":{"name":"Samrådet for Børn og Unge","gln":"5790001382445","sor":"1144561000016002","role":"municipality"},"consent":{"givenBy":"custody-holder","form":"oral","givenAt":"0001-01-01T00:00:00Z","scopes":["municipality","gp"],"withdrawnAt":"0001-01-01T00:00:00Z"},"consentFrom":"R1","meeting":"2026-03-10","assigned":"2026-03-01T09:00:00Z","flagged":"0001-01-01T00:00:00Z"},` +
	`{"key":"d653b016db1da8f5b36f84a44465e5d6","letterId":"R2","seq":1,"thread":"e94d86f6ab27225d14354eb3b37d5dc1","patient":"b6b45f3c6448fe0774c6842835cbac04","received":"2026-03-03T09:00:00Z","source":"medcom","format":"xdis91","gp":{"name":"Lægerne i Østergade","gln":"5790000000029","sor":"123456789012345","role":"gp"},"council":{"name":"Samrådet for Børn og Unge","gln":"5790001382445","sor":"1144561000016002","role":"municipality"},"consent":{"givenBy":"custody-holder","form":"oral","givenAt":"0001-01-01T00:00:00Z","scopes":["municipality","gp"],"withdrawnAt":"0001-01-01T00:00:00Z"},"consentFrom":"R2","meeting":"2026-03-10","assigned":"2026-03-01T09:00:00Z","flagged":"0001-01-01T00:00:00Z"}]}`

// A register stored before reads the same: the record round-trips byte
// for byte, both seats stay as they are when the letters are read again
// (a register rebuilt by deleting the consumer), and the recommendation
// after the meeting answers both, so the older no longer stays open.
func TestAnOlderRegisterWithAChildSeatedTwiceReadsTheSame(t *testing.T) {
	var m meetingRecord
	if err := json.Unmarshal([]byte(legacyRecord), &m); err != nil {
		t.Fatal(err)
	}
	if again, _ := json.Marshal(m); !bytes.Equal(again, []byte(legacyRecord)) {
		t.Errorf("the record does not round-trip:\n%s\n%s", again, legacyRecord)
	}
	f := newFixture(t, nil)
	ctx := context.Background()
	if _, err := f.c.reg.kv.Put(ctx, prefixMeeting+"2026-03-10", []byte(legacyRecord)); err != nil {
		t.Fatal(err)
	}
	c, _ := open(t, f.js, f.clock, f.hub, newOptions(nil)) // a replica starting on it
	if got := f.seats(c, 2); fmt.Sprint(got) != "map[2026-03-10:[R1 R2]]" {
		t.Fatalf("seats %v", got)
	}
	r2 := f.referral("R2", time.Date(2026, 3, 3, 10, 0, 0, 0, cph), "2509479989")
	r2.Sender = practiceOster
	for _, l := range []*letter.Letter{f.referral("R1", f.clock.now(), "2509479989"), r2} {
		f.apply(c, l)
	}
	if e, _ := c.reg.kv.Get(ctx, prefixMeeting+"2026-03-10"); e == nil || e.Revision() != 1 {
		t.Errorf("reading the letters again rewrote the record: %v", e)
	}
	if ms := c.Meetings(f.clock.now(), f.clock.now().AddDate(0, 1, 0)); len(ms) != 1 || ms[0].Referrals != 2 {
		t.Errorf("meetings %+v", ms)
	}
	// The case system answers in the first referral's thread.
	f.apply(c, recommendation("casesys:casesys:D1", "R1", time.Date(2026, 3, 12, 9, 0, 0, 0, cph)))
	for _, id := range []string{"R1", "R2"} {
		if r, _ := c.reg.referral(tokenOf(id)); !slices.ContainsFunc(r.Recommendations, func(x Ref) bool { return x.LetterID == "casesys:casesys:D1" }) {
			t.Errorf("%s not answered: %+v", id, r.Recommendations)
		}
	}
}

// The recommendation answers every referral of the child's seat, so each
// GP who referred the child gets it: a GP it does not reach gets one copy
// in its own referral's thread, naming it alone; a GP it reaches, or who
// referred twice, gets none more. A recommendation older than a week (a
// register built anew) sends none.
func TestEveryReferringGPGetsTheRecommendation(t *testing.T) {
	f := newFixture(t, nil)
	start := f.clock.now()
	f.apply(f.c, f.referral("R1", start, "2509479989"))
	r2 := f.referral("R2", start.Add(24*time.Hour), "2509479989")
	r2.Sender = practiceOster
	r2.Sender.Role = "" // as a MedCom letter names its sender
	f.apply(f.c, r2)
	f.apply(f.c, f.referral("R3", start.Add(2*24*time.Hour), "2509479989")) // Ærø again
	copies := func() (out []string) {
		f.hub.mu.Lock()
		defer f.hub.mu.Unlock()
		for _, l := range f.hub.receipts {
			if l.CopyOf != "" {
				to := ""
				for _, p := range l.Receivers {
					to += p.GLN
				}
				out = append(out, l.ID+" "+l.InReplyTo+" "+l.ThreadID+" "+to+" "+l.Source)
			}
		}
		return out
	}

	// Answering the case's first referral: Østergade gets a copy.
	f.clock.set(start.Add(12 * 24 * time.Hour))
	rec := recommendation("D1", "R1", f.clock.now())
	rec.Text = "Samrådet anbefaler forløb i PPR."
	f.apply(f.c, rec)
	f.apply(f.c, rec) // read again: no second copy
	want := "[copy:D1|R2 R2 episode-R2 " + practiceOster.GLN + " " + HubSource + "]"
	if got := fmt.Sprint(copies()); got != want {
		t.Errorf("copies %s, want %s", got, want)
	}
	f.hub.mu.Lock()
	cp := f.hub.letters[CopyID("D1", "R2")]
	f.hub.mu.Unlock()
	if cp.CopyOf != "D1" || cp.Text != rec.Text || cp.Kind != letter.KindRecommendation || cp.Patient.CPR != "2509479989" || cp.Meta[MetaCopyFor] != "R2" ||
		len(cp.Receivers) != 1 || cp.Receivers[0].Role != letter.RoleGP || cp.Receivers[0].Name != practiceOster.Name {
		t.Errorf("the copy %+v", cp)
	}
	// The copy is no letter of the register's: it answers nothing more.
	f.apply(f.c, cp)
	if r, _ := f.c.reg.referral(tokenOf("R1")); len(r.Recommendations) != 1 {
		t.Errorf("R1's recommendations %+v", r.Recommendations)
	}

	// A second child: the recommendation answers the joined referral's
	// thread (the case system's case opened with it), so the first GP
	// gets the copy.
	f.referredTwice("S", "1509819996", start)
	rs := recommendation("E1", "S2", f.clock.now())
	rs.Patient = &letter.Patient{CPR: "1509819996"}
	f.apply(f.c, rs)
	want = "[copy:D1|R2 R2 episode-R2 " + practiceOster.GLN + " " + HubSource + " copy:E1|S1 S1 episode-S1 " + practiceAero.GLN + " " + HubSource + "]"
	if got := fmt.Sprint(copies()); got != want {
		t.Errorf("copies %s, want %s", got, want)
	}

	// A third child, answered only after a register built anew: no copy.
	f.referredTwice("T", "2512489996", start)
	old := recommendation("F1", "T1", f.clock.now())
	old.Patient = &letter.Patient{CPR: "2512489996"}
	f.clock.set(f.clock.now().Add(8 * 24 * time.Hour))
	f.apply(f.c, old)
	if got := copies(); len(got) != 2 {
		t.Errorf("copies %v; want none for a recommendation read a week late", got)
	}
	if r, _ := f.c.reg.referral(tokenOf("T1")); !r.Answered() {
		t.Errorf("T1 %+v; the late recommendation still answers it", r)
	}
}

// Copies follow whom the recommendation itself reaches: one naming the
// first GP but answering the second GP's thread still sends the second GP
// a copy; one naming only child psychiatry sends no GP anything (a
// letter's own recipients are never widened).
func TestCopiesFollowWhomTheRecommendationReaches(t *testing.T) {
	f := newFixture(t, nil)
	start := f.clock.now()
	region := letter.Party{Role: letter.RoleRegion, Name: "Børne- og ungdomspsykiatrien", GLN: "5790000000043"}
	f.referredTwice("A", "2509479989", start)
	f.referredTwice("B", "1509819996", start)
	f.clock.set(start.Add(12 * 24 * time.Hour))
	named := recommendation("D1", "A2", f.clock.now())
	named.Receivers = []letter.Party{practiceAero}
	f.apply(f.c, named)
	onlyRegion := recommendation("D2", "B1", f.clock.now())
	onlyRegion.Patient = &letter.Patient{CPR: "1509819996"}
	onlyRegion.Receivers = []letter.Party{region}
	f.apply(f.c, onlyRegion)

	var got []string
	f.hub.mu.Lock()
	for _, l := range f.hub.receipts {
		if l.CopyOf != "" {
			got = append(got, l.ID+" "+l.Receivers[0].GLN)
		}
	}
	f.hub.mu.Unlock()
	if want := "[copy:D1|A2 " + practiceOster.GLN + "]"; fmt.Sprint(got) != want {
		t.Errorf("copies %v, want %s", got, want)
	}
}

// The agenda's spreadsheet names the consent's sectors in Danish, and
// lists where the recommendation and its copies to the other referring
// GPs went.
func TestTheAgendaCSVListsTheCopies(t *testing.T) {
	f := newFixture(t, nil)
	at := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	sent := func(id, gln string) Tracked {
		return Tracked{LetterID: id, Deliveries: []Delivery{{Destination: "gp", To: "GLN " + gln, At: at}}, Acknowledgements: []Ack{{At: at, Code: "ok", Positive: true}}}
	}
	v := MeetingView{Meeting: Meeting{ID: "2026-03-10", At: at}, Children: []Child{{
		LetterID: "R1", Name: "Bruno Test Elmer", Received: at.AddDate(0, 0, -9), State: "answered", GP: org(practiceAero),
		Consent:         ConsentState{Sectors: map[string]string{"gp": "given", "region_psychiatry": "given", "parents": "missing"}},
		Recommendations: []Tracked{sent("D1", practiceAero.GLN)},
		LaterReferrals: []LaterReferral{{Tracked: Tracked{LetterID: "R2", Received: at.AddDate(0, 0, -7)}, GP: org(practiceOster),
			AnswerCopies: []Tracked{sent(CopyID("D1", "R2"), practiceOster.GLN)}}},
	}}}
	var b strings.Builder
	if err := f.c.WriteCSV(&b, v); err != nil {
		t.Fatal(err)
	}
	want := ";egen læge, børne- og ungdomspsykiatrien;0;gp GLN " + practiceAero.GLN + ", gp GLN " + practiceOster.GLN + ";ja;besvaret;R1"
	if !strings.Contains(b.String(), want) {
		t.Errorf("csv:\n%s\nwant a row with %q", b.String(), want)
	}
}

// referredTwice has the child cpr referred by Ærø (referral id+"1") and,
// a day later, by Østergade (id+"2"), which joins the first.
func (f *fixture) referredTwice(id, cpr string, at time.Time) {
	f.t.Helper()
	f.apply(f.c, f.referral(id+"1", at, cpr))
	second := f.referral(id+"2", at.Add(24*time.Hour), cpr)
	second.Sender = practiceOster
	f.apply(f.c, second)
}
