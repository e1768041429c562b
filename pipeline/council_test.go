package pipeline_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/samhub/samhub/internal/config"
	"github.com/samhub/samhub/pipeline/broker"
	"github.com/samhub/samhub/pipeline/council"
	"github.com/samhub/samhub/pipeline/letter"
)

// councilEnv is the test hub with the council's register: receipts to the
// doctor destination, reminders of unanswered referrals, and a watch short
// enough to run out during the test.
func councilEnv(t *testing.T, watch time.Duration) *env {
	t.Helper()
	return newEnvWith(t, func(c *config.Config, _ int) {
		c.Council.WatchDays = watch.Hours() / 24
		c.Council.Meetings.Cap = 2
		c.Council.Receipt = config.CouncilReceipt{Enabled: true, Destination: "doctor", Template: config.DefaultReceiptTemplate}
		c.Notify.On = append(c.Notify.On, council.EventUnanswered)
	})
}

// gpReferral is a referral from gpA to the council about the child cpr.
func gpReferral(id, cpr string) *letter.Letter {
	l := mkLetter(id, letter.KindReferral, "episode-"+id)
	l.Sender = gpA
	l.Receivers = []letter.Party{{Role: letter.RoleMunicipality, Name: "Samrådet for Børn og Unge", GLN: "5790001382445"}}
	l.Patient.CPR = cpr
	if n, ok := testChildren[cpr]; ok {
		l.Patient.GivenName, l.Patient.FamilyName = n[0], n[1]
		l.Text = "Henvisning vedr. " + n[0] + " " + n[1]
	}
	return l
}

// testChildren are MedCom's fictitious test persons by CPR number.
var testChildren = map[string][2]string{
	"2509479989": {"Bruno Test", "Elmer"},
	"1509819996": {"Brita Test", "Berggren"},
	"2512489996": {"Nancy Ann Test", "Berggren"},
}

func (e *env) referral(id string) council.Referral {
	e.t.Helper()
	for _, r := range e.hub.Council().Referrals(council.ReferralFilter{}) {
		if r.LetterID == id {
			return council.Referral{Key: r.Key, LetterID: r.LetterID, Meeting: r.Meeting, Received: r.Received}
		}
	}
	return council.Referral{}
}

func TestCouncilRegisterFollowsTheLetterStream(t *testing.T) {
	e := councilEnv(t, 3*time.Second)
	ctx := context.Background()
	// Three children: a second referral of a child whose first is open
	// would join it and take no seat of its own.
	cprs := []string{"2509479989", "1509819996", "2512489996"}
	for i, cpr := range cprs {
		e.feed.ch <- gpReferral(fmt.Sprintf("R%d", i), cpr)
	}
	eventually(t, "three referrals seated", func() bool {
		n := 0
		for _, r := range e.hub.Council().Referrals(council.ReferralFilter{}) {
			if r.Meeting != "" {
				n++
			}
		}
		return n == 3
	})
	ms := e.hub.Council().Meetings(time.Now(), time.Now().AddDate(0, 3, 0))
	if len(ms) < 2 || ms[0].Referrals != 2 || ms[1].Referrals != 1 {
		t.Errorf("meetings %+v; want the first two referrals in the next meeting (cap 2), the third in the one after", ms)
	}

	// The receipt goes to the referring GP as a reply in the referral's
	// thread, addressed from the thread (the letter names nobody), and
	// is filed in the case too; it tells the coordinator nothing.
	eventually(t, "three receipts at the GP", func() bool { return e.gp.total() == 3 })
	e.gp.mu.Lock()
	rc := e.gp.letters[0]
	e.gp.mu.Unlock()
	if !strings.HasPrefix(rc.ID, "receipt:R") || rc.Kind != letter.KindReply || len(rc.To) != 1 || rc.To[0].GLN != gpA.GLN ||
		!strings.Contains(rc.Text, "Henvisningen er modtaget og behandles på samrådsmødet") || rc.Patient.CPR != cprs[rc.ID[len(rc.ID)-1]-'0'] {
		t.Errorf("receipt at the GP: %+v", rc)
	}
	eventually(t, "receipts filed in the case", func() bool { return e.muni.count(council.ReceiptID("R0")) == 1 })

	// A recommendation answers R0; R1 and R2 get none: after the watch
	// they are flagged, and the coordinator is reminded once each.
	rec := mkLetter("D0", letter.KindRecommendation, "episode-R0")
	rec.InReplyTo = "R0"
	rec.Consent = &letter.Consent{Scopes: []letter.Scope{letter.ScopeGP}}
	e.feed.ch <- rec
	eventually(t, "two reminders", func() bool { return len(e.notices("unanswered")) == 2 })
	for _, n := range e.notices("unanswered") {
		if strings.ContainsAny(n.Text, "0123456789") && (strings.Contains(n.Text, cprs[0]) || strings.Contains(n.Text, cprs[1]) || strings.Contains(n.Text, cprs[2])) ||
			strings.Contains(n.Text, "Elmer") || strings.Contains(n.Text, "Berggren") || n.Subject != "Samhub: unanswered" {
			t.Errorf("reminder names the child or says more than it should: %q %q", n.Subject, n.Text)
		}
	}
	if got := e.notices("answered"); len(got) != 1 || got[0].Meta["letterId"] != "D0" {
		t.Errorf("answered notices %+v; want only the recommendation's (receipts are no news)", got)
	}
	// The watch mails the reminder before it marks the referral flagged (a
	// crash in between mails again rather than never): poll for the mark.
	var un []council.Child
	eventually(t, "both unanswered referrals flagged", func() bool {
		un = e.hub.Council().Referrals(council.ReferralFilter{State: "unanswered"})
		return len(un) == 2 && un[0].Flagged != nil && un[1].Flagged != nil
	})
	view, err := e.hub.Council().MeetingView(ctx, ms[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(view.Children) != 2 {
		t.Fatalf("meeting view %+v", view)
	}
	r0 := view.Children[0]
	if r0.LetterID != "R0" || r0.State != "answered" || len(r0.Referral.Deliveries) != 1 || r0.Referral.Deliveries[0].Destination != "casefile" ||
		r0.Referral.Deliveries[0].RemoteID != "doc-R0" || r0.Receipt == nil || len(r0.Receipt.Deliveries) != 2 {
		t.Errorf("R0 on the meeting page: %+v", r0)
	}
	eventually(t, "the recommendation at the GP", func() bool { return e.gp.count("D0") == 1 })
	view, _ = e.hub.Council().MeetingView(ctx, ms[0].ID)
	if d := view.Children[0].Recommendations; len(d) != 1 || len(d[0].Deliveries) < 1 || !hasDelivery(d[0], "doctor", "GLN "+gpA.GLN) {
		t.Errorf("R0's recommendation on the meeting page: %+v", d)
	}

	// After a restart, and with the register's consumer gone (read the
	// stream anew), nothing is seated twice, no second receipt or reminder.
	before := e.hub.Council().KPI(12)
	e.readRegisterAnew(t)
	after := e.hub.Council().KPI(12)
	if before.Referrals != 3 || after.Referrals != 3 || after.LeadTime.Count != 1 || after.Unanswered != 2 {
		t.Errorf("figures before %+v, after %+v", before, after)
	}
	ms2 := e.hub.Council().Meetings(time.Now(), time.Now().AddDate(0, 3, 0))
	if ms2[0].Referrals != 2 || ms2[1].Referrals != 1 {
		t.Errorf("meetings after the stream was read again %+v", ms2)
	}
	if n := e.gp.total(); n != 4 {
		t.Errorf("the GP has %d letters, want three receipts and one recommendation", n)
	}
	if n := len(e.notices("unanswered")); n != 2 {
		t.Errorf("%d reminders after the stream was read again", n)
	}
}

// readRegisterAnew restarts the hub and deletes the register's consumer,
// so the register reads the whole letter stream again, and waits a second
// past the end of it: a second receipt, reminder or copy would show.
func (e *env) readRegisterAnew(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	e.shutdown()
	e.start()
	if err := e.b.JS.DeleteConsumer(ctx, broker.StreamLetters, council.ConsumerName); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the register's consumer made anew and at the end of the stream", func() bool {
		c, err := e.b.JS.Consumer(ctx, broker.StreamLetters, council.ConsumerName)
		if err != nil {
			return false
		}
		info, err := c.Info(ctx)
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.Delivered.Stream > 0
	})
	time.Sleep(time.Second)
}

func hasDelivery(t council.Tracked, dest, to string) bool {
	for _, d := range t.Deliveries {
		if d.Destination == dest && d.To == to {
			return true
		}
	}
	return false
}

// notices are the notices of event the notices destination got.
func (e *env) notices(event string) []*letter.Letter {
	e.notes.mu.Lock()
	defer e.notes.mu.Unlock()
	var out []*letter.Letter
	for _, l := range e.notes.letters {
		if l.Meta["event"] == event {
			out = append(out, l)
		}
	}
	return out
}

// BenchmarkReferralFlood stores b.N referrals and waits until each is filed
// in the case file and, with the council's register on, until the register
// holds every one. It reports the letters per second filed, how long the
// register trailed the last filing, and the register's writes per letter.
func BenchmarkReferralFlood(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("register=%v", on), func(b *testing.B) {
			e := newEnvWith(b, func(c *config.Config, _ int) {
				c.Council.Enabled = on
				c.Council.Meetings.Cap = 6
			})
			ctx := context.Background()
			kv := func() uint64 {
				s, err := e.b.JS.Stream(ctx, "KV_"+broker.BucketCouncil)
				if err != nil {
					b.Fatal(err)
				}
				info, err := s.Info(ctx)
				if err != nil {
					b.Fatal(err)
				}
				return info.State.LastSeq
			}
			w0 := kv()
			b.ResetTimer()
			start := time.Now()
			go func() {
				for i := range b.N {
					// No CPR number: each its own child, told apart by
					// its thread, so none joins another's referral.
					e.feed.ch <- gpReferral(fmt.Sprintf("F%07d", i), "")
				}
			}()
			wait := func(what string, cond func() bool) {
				deadline := time.Now().Add(10 * time.Minute)
				for !cond() {
					if time.Now().After(deadline) {
						b.Fatalf("timed out waiting for %s", what)
					}
					time.Sleep(5 * time.Millisecond)
				}
			}
			wait("the case file", func() bool { return e.muni.total() >= b.N })
			filed := time.Since(start)
			if on {
				wait("the register", func() bool { return len(e.hub.Council().Referrals(council.ReferralFilter{})) >= b.N })
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/filed.Seconds(), "filed/s")
			b.ReportMetric((time.Since(start)-filed).Seconds()*1000, "register-lag-ms")
			b.ReportMetric(float64(kv()-w0)/float64(b.N), "kvwrites/letter")
		})
	}
}

// A child referred by two GPs, the second referral joined to the first: the
// recommendation answers both referrals, so both GPs get it. It names the
// first GP; the second gets a hub-made copy in its own referral's thread,
// with the recommendation's files, and nobody else gets the copy (the case
// has the recommendation once). Reading the stream again sends no second
// copy.
func TestTheRecommendationReachesEveryReferringGP(t *testing.T) {
	e := newEnvWith(t, func(c *config.Config, _ int) {
		c.Pipeline.InlineMaxBytes = "256KiB"
	})
	ctx := context.Background()
	gpB := letter.Party{Role: letter.RoleGP, Name: "Lægerne i Østergade", GLN: "5790000000029"}
	e.feed.ch <- gpReferral("R0", "2509479989")
	again := gpReferral("R1", "2509479989")
	again.Sender = gpB
	e.feed.ch <- again
	eventually(t, "the second referral joined to the first", func() bool {
		for _, r := range e.hub.Council().Referrals(council.ReferralFilter{}) {
			if r.LetterID == "R0" && len(r.LaterReferrals) == 1 {
				return true
			}
		}
		return false
	})

	rec := mkLetter("D0", letter.KindRecommendation, "episode-R0")
	rec.InReplyTo = "R0"
	rec.Consent = &letter.Consent{Scopes: []letter.Scope{letter.ScopeMunicipality, letter.ScopeGP}}
	pdf := bytes.Repeat([]byte("%PDF-1.7 anbefaling\n"), 20000) // 400 KB: kept in the blob store
	rec.Attachments = []letter.Attachment{{Name: "anbefaling.pdf", ContentType: "application/pdf", Data: pdf}}
	e.feed.ch <- rec
	copyID := council.CopyID("D0", "R1")
	eventually(t, "the recommendation at both GPs", func() bool { return e.gp.count("D0") == 1 && e.gp.count(copyID) == 1 })

	e.gp.mu.Lock()
	var got *letter.Letter
	for _, l := range e.gp.letters {
		switch l.ID {
		case "D0":
			if len(l.To) != 1 || l.To[0].GLN != gpA.GLN {
				t.Errorf("the recommendation went to %+v; want the first GP", l.To)
			}
		case copyID:
			got = l
		}
	}
	e.gp.mu.Unlock()
	if got.CopyOf != "D0" || got.InReplyTo != "R1" || got.ThreadID != "episode-R1" || got.Kind != letter.KindRecommendation ||
		len(got.To) != 1 || got.To[0].GLN != gpB.GLN || got.Patient.CPR != "2509479989" || got.Text != rec.Text {
		t.Errorf("the copy at the GP: %+v", got)
	}
	if len(got.Attachments) != 1 {
		t.Fatalf("the copy's files: %+v", got.Attachments)
	}
	if b, err := letter.ReadAll(ctx, got.Attachments[0].Open); err != nil || !bytes.Equal(b, pdf) {
		t.Errorf("the copy's PDF: %d bytes, %v", len(b), err)
	}
	// The case has the recommendation once; the copy is only the GP's.
	time.Sleep(500 * time.Millisecond)
	if n, c := e.muni.count("D0"), e.muni.count(copyID); n != 1 || c != 0 {
		t.Errorf("the case system has the recommendation %d times and the copy %d times; want 1 and 0", n, c)
	}
	tr, err := e.hub.TraceLetter(ctx, copyID)
	if err != nil {
		t.Fatal(err)
	}
	var skipped []string
	for _, s := range tr.Steps {
		skipped = append(skipped, s.Destination+":"+s.Step)
	}

	// The meeting page shows the copy under the later referral.
	ch := e.hub.Council().Referrals(council.ReferralFilter{})[0]
	view, err := e.hub.Council().MeetingView(ctx, ch.Meeting)
	if err != nil {
		t.Fatal(err)
	}
	if j := view.Children[0].LaterReferrals; len(j) != 1 || len(j[0].AnswerCopies) != 1 || j[0].AnswerCopies[0].LetterID != copyID ||
		!hasDelivery(j[0].AnswerCopies[0], "doctor", "GLN "+gpB.GLN) {
		t.Errorf("the later referral on the meeting page: %+v (journey %v)", j, skipped)
	}
	if c := view.Children[0].AnswerCopies; len(c) != 0 {
		t.Errorf("the first referral's copies %+v; its GP had the recommendation itself", c)
	}

	// Read anew after a restart: no second copy.
	e.readRegisterAnew(t)
	if n := e.gp.count(copyID); n != 1 {
		t.Errorf("the second GP has the copy %d times", n)
	}
}
