package council

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/samhub/samhub/pipeline/audit"
	"github.com/samhub/samhub/pipeline/broker/brokertest"
	"github.com/samhub/samhub/pipeline/journey"
	"github.com/samhub/samhub/pipeline/letter"
	"github.com/samhub/samhub/pipeline/route"
)

var cph, _ = time.LoadLocation("Europe/Copenhagen")

// testClock is a settable time for the register.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// hubSide is what the register gets of the hub: the letters it stored, the
// receipts and notices it was handed.
type hubSide struct {
	mu       sync.Mutex
	letters  map[string]*letter.Letter
	receipts []*letter.Letter
	reads    map[string]int // StoredLetter calls by id
	notices  []string       // event:letterID
	noticeOn bool
	refuse   int // publishes to refuse, as a letter stream refusing for a moment
}

type fixture struct {
	t     testing.TB
	js    jetstream.JetStream
	clock *testClock
	hub   *hubSide
	audit *audit.Log
	reg   *prometheus.Registry
	c     *Council
}

// receiptsOn turns receipts to the GP on (a fixture's edit).
func receiptsOn(k *Options) {
	k.Receipt = Receipt{Enabled: true, Destination: "gp", Template: DefaultReceiptTemplate}
}

// receiptsOnOnePlace is receiptsOn with meetings that take one child.
func receiptsOnOnePlace(k *Options) {
	receiptsOn(k)
	k.Meetings.Cap = 1
}

// newOptions are the council block's defaults (internal/config's), edited.
func newOptions(edit func(*Options)) Options {
	o := Options{Enabled: true, Meetings: Meetings{Rule: "second tuesday 13:00", Zone: "Europe/Copenhagen", Cap: 6}, WatchDays: 35, RetentionDays: 760,
		Receipt: Receipt{Template: DefaultReceiptTemplate}, Sectors: map[string]string{"casefile": "municipality", "gp": "gp"}}
	if edit != nil {
		edit(&o)
	}
	return o
}

// open starts a register on js (a replica); several may share one js.
func open(t testing.TB, js jetstream.JetStream, cl *testClock, hub *hubSide, o Options) (*Council, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	c, err := New(context.Background(), Deps{JS: js, Options: o, Log: slog.New(slog.DiscardHandler), Registry: reg, Now: cl.now, Holder: t.Name(),
		Audit: audit.New(js),
		StoredLetter: func(_ context.Context, id string) (*letter.Letter, error) {
			hub.mu.Lock()
			defer hub.mu.Unlock()
			if hub.reads == nil {
				hub.reads = map[string]int{}
			}
			hub.reads[id]++
			return hub.letters[id], nil
		},
		Trace:   func(context.Context, string) ([]journey.Event, error) { return nil, nil },
		Consent: func(context.Context, string) (*letter.Consent, error) { return nil, nil },
		Publish: func(_ context.Context, l *letter.Letter) error {
			hub.mu.Lock()
			defer hub.mu.Unlock()
			if hub.refuse > 0 {
				hub.refuse--
				return errors.New("nats: no responders available for request")
			}
			if !slices.ContainsFunc(hub.receipts, func(x *letter.Letter) bool { return x.ID == l.ID }) {
				hub.receipts = append(hub.receipts, l) // the letter stream stores an id once
				hub.letters[l.ID] = l
			}
			return nil
		},
		Notice: func(_ context.Context, event, id, da, en string) error {
			hub.mu.Lock()
			defer hub.mu.Unlock()
			if strings.Contains(da+en, "2509479989") || strings.Contains(da+en, "Elmer") {
				t.Errorf("a notice names the child: %q %q", da, en)
			}
			if n := event + ":" + id; !slices.Contains(hub.notices, n) {
				hub.notices = append(hub.notices, n)
			}
			return nil
		},
		NoticeOn: func(e string) bool { return hub.noticeOn && e == EventUnanswered },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := c.reg.watch(ctx); err != nil {
		t.Fatal(err)
	}
	return c, reg
}

func newFixture(t *testing.T, edit func(*Options)) *fixture {
	t.Helper()
	return newFixtureTB(t, edit)
}

func newFixtureTB(t testing.TB, edit func(*Options)) *fixture {
	t.Helper()
	b := brokertest.Provisioned(t)
	f := &fixture{t: t, js: b.JS, clock: &testClock{t: time.Date(2026, 3, 1, 10, 0, 0, 0, cph)}, hub: &hubSide{letters: map[string]*letter.Letter{}}, audit: audit.New(b.JS)}
	f.c, f.reg = open(t, b.JS, f.clock, f.hub, newOptions(edit))
	return f
}

var (
	practiceAero = letter.Party{Role: letter.RoleGP, Name: "Lægehuset Ærø", GLN: "5790000000005", SOR: "543210987654321"}
	theCouncil   = letter.Party{Role: letter.RoleMunicipality, Name: "Samrådet for Børn og Unge", GLN: "5790001382445", SOR: "1144561000016002"}
)

// referral is a GP's referral about the test person with CPR number cpr
// (named Bruno Test Elmer whatever the number); with cpr "", about a child
// the letter names by no number: each such referral is another child (the
// register tells them apart by thread), for tests that seat many children.
func (f *fixture) referral(id string, at time.Time, cpr string) *letter.Letter {
	l := &letter.Letter{ID: id, Kind: letter.KindReferral, Format: "xdis91", Source: "medcom", ThreadID: "episode-" + id, Received: at.UTC(),
		Sender: practiceAero, Receivers: []letter.Party{theCouncil},
		Patient:  &letter.Patient{CPR: cpr, GivenName: "Bruno Test", FamilyName: "Elmer"},
		Consent:  &letter.Consent{GivenBy: "custody-holder", Form: "oral", Scopes: []letter.Scope{letter.ScopeMunicipality, letter.ScopeGP}},
		Original: letter.Original{Data: []byte("<x/>")}, Text: "Henvisning vedr. Bruno Test Elmer, 2509479989"}
	f.hub.mu.Lock()
	f.hub.letters[id] = l
	f.hub.mu.Unlock()
	return l
}

func (f *fixture) apply(c *Council, l *letter.Letter) {
	f.t.Helper()
	if err := c.Apply(context.Background(), l, 1); err != nil {
		f.t.Fatal(err)
	}
}

// seats lists each meeting's referrals' letter ids as the replica c sees
// them, once it sees want referrals seated (its copy follows the bucket).
func (f *fixture) seats(c *Council, want int) map[string][]string {
	f.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, n := map[string][]string{}, 0
		for _, m := range c.reg.storedMeetings() {
			for _, r := range m.Referrals {
				if r.Meeting != m.ID {
					f.t.Errorf("referral %s in meeting %s's record says meeting %q", r.LetterID, m.ID, r.Meeting)
				}
				out[m.ID] = append(out[m.ID], r.LetterID)
				n++
			}
		}
		if n >= want || time.Now().After(deadline) {
			return out
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestReferralsTakeTheNextMeetingWithRoomOnce(t *testing.T) {
	f := newFixture(t, func(k *Options) { k.Meetings.Cap = 2 })
	day := func(d int) time.Time { return time.Date(2026, 3, d, 9, 0, 0, 0, cph) }
	var refs []*letter.Letter
	for i := range 5 {
		refs = append(refs, f.referral(fmt.Sprintf("R%d", i+1), day(i+1), "")) // five children
	}
	for _, l := range refs {
		f.apply(f.c, l)
		f.apply(f.c, l) // read again (a redelivery): nothing changes
	}
	// After the March meeting: April is full, so May.
	late := f.referral("R6", time.Date(2026, 3, 10, 14, 0, 0, 0, cph), "")
	f.apply(f.c, late)
	want := map[string][]string{"2026-03-10": {"R1", "R2"}, "2026-04-14": {"R3", "R4"}, "2026-05-12": {"R5", "R6"}}
	if got := f.seats(f.c, 6); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("seats %v, want %v", got, want)
	}
	for _, k := range []string{"R1", "R4", "R6"} {
		r, _ := f.c.reg.find(tokenOf(k), "", "", day(31))
		if r.LetterID != k || r.GP.Name != "Lægehuset Ærø" || r.Consent == nil || !slices.Contains(r.Consent.Scopes, "gp") {
			t.Errorf("referral %s in the register: %+v", k, r)
		}
	}
	ms := f.c.Meetings(day(1), time.Date(2026, 6, 30, 0, 0, 0, 0, cph))
	if len(ms) != 4 || ms[0].ID != "2026-03-10" || ms[0].Referrals != 2 || ms[0].Room != 0 || ms[3].ID != "2026-06-09" || ms[3].Referrals != 0 || ms[3].Room != 2 {
		t.Errorf("meetings %+v", ms)
	}
	// A second replica started on the same bucket sees the same register.
	other, _ := open(t, f.js, f.clock, f.hub, newOptions(func(k *Options) { k.Meetings.Cap = 2 }))
	if got := f.seats(other, 6); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("another replica sees seats %v", got)
	}
}

// Two replicas reading the same referrals at once (a lease changing hands
// while the old holder is still at work): every referral is seated once
// and no meeting takes more than its cap.
// A fetch's worth of referrals is one write per meeting it fills.
func TestReferralsReadTogetherArePlacedTogether(t *testing.T) {
	f := newFixture(t, nil) // six a meeting
	ctx := context.Background()
	writes := func() uint64 {
		s, _ := f.js.Stream(ctx, "KV_samhub_council")
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.LastSeq
	}
	w0 := writes()
	var b pending
	for i := range 10 {
		if err := f.c.apply(ctx, f.referral(fmt.Sprintf("R%02d", i), f.clock.now(), ""), uint64(i), &b); err != nil {
			t.Fatal(err)
		}
	}
	if writes() != w0 {
		t.Fatalf("referrals written before the batch was flushed")
	}
	if err := f.c.flush(ctx, &b); err != nil {
		t.Fatal(err)
	}
	if got := writes() - w0; got != 2 {
		t.Errorf("%d writes for ten referrals in two meetings, want 2", got)
	}
	if got := f.seats(f.c, 10); len(got["2026-03-10"]) != 6 || len(got["2026-04-14"]) != 4 {
		t.Errorf("seats %v", got)
	}
	// A letter that follows one of them is applied after them.
	rec := &letter.Letter{ID: "D1", Kind: letter.KindRecommendation, Source: "casesys", InReplyTo: "R09", Received: f.clock.now().UTC()}
	f.referral("R10", f.clock.now(), "")
	if err := f.c.apply(ctx, f.hub.letters["R10"], 10, &b); err != nil {
		t.Fatal(err)
	}
	if err := f.c.apply(ctx, rec, 11, &b); err != nil {
		t.Fatal(err)
	}
	if r, ok := f.c.reg.referral(tokenOf("R10")); !ok || r.Meeting != "2026-04-14" {
		t.Errorf("the referral before the recommendation was not placed first: %+v", r)
	}
	if r, _ := f.c.reg.referral(tokenOf("R09")); !r.Answered() {
		t.Errorf("R09 has no recommendation")
	}
}

func TestTwoReplicasSeatEachReferralOnce(t *testing.T) {
	f := newFixture(t, func(k *Options) { k.Meetings.Cap = 3 })
	other, _ := open(t, f.js, f.clock, f.hub, newOptions(func(k *Options) { k.Meetings.Cap = 3 }))
	var refs []*letter.Letter
	for i := range 20 {
		refs = append(refs, f.referral(fmt.Sprintf("R%02d", i), time.Date(2026, 3, 1, 9, i, 0, 0, cph), "")) // twenty children
	}
	var wg sync.WaitGroup
	for _, c := range []*Council{f.c, other} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, l := range refs {
				if err := c.Apply(context.Background(), l, 1); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	seen := map[string]string{}
	for id, letters := range f.seats(f.c, 20) {
		if len(letters) > 3 {
			t.Errorf("meeting %s takes %d referrals, cap 3", id, len(letters))
		}
		for _, l := range letters {
			if m, dup := seen[l]; dup {
				t.Errorf("referral %s is seated at %s and %s", l, m, id)
			}
			seen[l] = id
		}
	}
	for _, l := range refs {
		r, ok := f.c.reg.referral(tokenOf(l.ID))
		if !ok || seen[l.ID] == "" || r.Meeting != seen[l.ID] {
			t.Errorf("referral %s: register says meeting %q, the meeting lists say %q", l.ID, r.Meeting, seen[l.ID])
		}
	}
	if len(seen) != 20 {
		t.Errorf("%d of 20 referrals seated", len(seen))
	}
}

func TestFollowingLettersLandOnTheirReferral(t *testing.T) {
	f := newFixture(t, func(k *Options) {
		k.Rejections = []RejectionRule{{Name: "bup", Match: route.Match{Sender: []string{"6071000016008"}}, Words: []string{"afvis"}}}
	})
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, cph)
	ref := f.referral("R1", at, "2509479989")
	f.apply(f.c, ref)
	bup := letter.Party{Role: letter.RoleRegion, Name: "Børne- og Ungdomspsykiatrien", SOR: "6071000016008"}
	for _, l := range []*letter.Letter{
		// The recommendation answers it (from the case system's outbox).
		{ID: "casesys:casesys:D1", Kind: letter.KindRecommendation, Source: "casesys", InReplyTo: "R1", ThreadID: "episode-R1", Received: at.Add(20 * 24 * time.Hour),
			Consent: &letter.Consent{GivenBy: "custody-holder", Form: "written", Scopes: []letter.Scope{letter.ScopeGP, letter.ScopeRegionPsychiatry}}},
		// The GP answers in the thread.
		{ID: "A1", Kind: letter.KindReply, Source: "medcom", ThreadID: "episode-R1", Received: at.Add(21 * 24 * time.Hour)},
		// Child psychiatry turns a referral down: no thread, the same child.
		{ID: "epj:1", Kind: letter.KindNote, Source: "epj", Sender: bup, Subject: "Afvisning af henvisning", Received: at.Add(22 * 24 * time.Hour),
			Patient: &letter.Patient{CPR: "2509479989"}},
		// Child psychiatry about another child: not the council's.
		{ID: "epj:2", Kind: letter.KindNote, Source: "epj", Sender: bup, Subject: "Notat", Received: at.Add(22 * 24 * time.Hour),
			Patient: &letter.Patient{CPR: "1509819996"}},
	} {
		f.apply(f.c, l)
		f.apply(f.c, l)
	}
	r, _ := f.c.reg.referral(tokenOf("R1"))
	ids := func(rs []Ref) (out []string) {
		for _, x := range rs {
			out = append(out, x.LetterID)
		}
		return out
	}
	if got := ids(r.Recommendations); fmt.Sprint(got) != "[casesys:casesys:D1]" {
		t.Errorf("recommendations %v", got)
	}
	if got := ids(r.Documents); fmt.Sprint(got) != "[A1 epj:1]" {
		t.Errorf("documents %v", got)
	}
	if got := ids(r.Rejections); fmt.Sprint(got) != "[epj:1]" {
		t.Errorf("rejections %v", got)
	}
	// The case system's newer statement of the consent is the one shown.
	if r.ConsentFrom != "casesys:casesys:D1" || r.Consent.Form != "written" || !slices.Contains(r.Consent.Scopes, "region_psychiatry") {
		t.Errorf("consent %+v from %s", r.Consent, r.ConsentFrom)
	}
	if x := f.c.reg.allRejections(); len(x) != 1 || x[0].Rule != "bup" || x[0].Referral != r.Key || x[0].Sender.SOR != "6071000016008" {
		t.Errorf("rejections in the register %+v", x)
	}
}

func TestReceiptOnceForARecentReferralWithAMeetingAhead(t *testing.T) {
	f := newFixture(t, receiptsOn)
	ref := f.referral("R1", f.clock.now(), "2509479989")
	f.apply(f.c, ref)
	f.apply(f.c, ref)
	// A referral stored weeks ago (a register built anew) gets none.
	f.apply(f.c, f.referral("R0", f.clock.now().Add(-20*24*time.Hour), "1509819996"))
	if len(f.hub.receipts) != 1 {
		t.Fatalf("%d receipts, want 1", len(f.hub.receipts))
	}
	rc := f.hub.receipts[0]
	want := "Henvisningen er modtaget og behandles på samrådsmødet tirsdag den 10. marts 2026 kl. 13.00.\n\nVenlig hilsen\nSamrådet for Børn og Unge\n"
	if rc.ID != ReceiptID("R1") || rc.Kind != letter.KindReply || rc.InReplyTo != "R1" || rc.ThreadID != "episode-R1" || rc.Text != want ||
		string(rc.Original.Data) != want || rc.Sender.GLN != theCouncil.GLN || rc.Sender.Role != letter.RoleMunicipality ||
		rc.Patient == nil || rc.Patient.CPR != "2509479989" || len(rc.Receivers) != 0 {
		t.Errorf("receipt %+v\ntext %q", rc, rc.Text)
	}
	if r, _ := f.c.reg.referral(tokenOf("R1")); r.Meeting != "2026-03-10" {
		t.Errorf("the register's referral: meeting %q", r.Meeting)
	}
	rt, ok := ReceiptRoute(f.c.cfg)
	if !ok || rt.To[0] != "gp" || *rt.RequireConsent || !slices.Equal(rt.Match.Source, []string{HubSource}) {
		t.Errorf("receipt route %+v", rt)
	}
}

func TestWatchFlagsOnceAndRemindsOnce(t *testing.T) {
	f := newFixture(t, nil)
	f.hub.noticeOn = true
	start := f.clock.now()
	f.apply(f.c, f.referral("R1", start, "2509479989"))
	f.apply(f.c, f.referral("R2", start, "1509819996"))
	f.apply(f.c, f.referral("R3", start.Add(-60*24*time.Hour), "2512489996")) // ran out long ago
	gauge := func() float64 { return gaugeValue(t, f.reg, "samhub_referrals_unanswered") }
	f.clock.set(start.Add(34 * 24 * time.Hour))
	if err := f.c.Watch(context.Background(), f.clock.now()); err != nil {
		t.Fatal(err)
	}
	if gauge() != 1 || len(f.hub.notices) != 0 {
		t.Errorf("before the watch ran out: gauge %v, notices %v", gauge(), f.hub.notices)
	}
	// R2's recommendation arrives in time.
	f.apply(f.c, &letter.Letter{ID: "D2", Kind: letter.KindRecommendation, Source: "casesys", InReplyTo: "R2", Received: f.clock.now().UTC()})
	f.clock.set(start.Add(36 * 24 * time.Hour))
	for range 3 {
		if err := f.c.Watch(context.Background(), f.clock.now()); err != nil {
			t.Fatal(err)
		}
	}
	if fmt.Sprint(f.hub.notices) != "[unanswered:R1]" {
		t.Errorf("notices %v, want one reminder for R1 (R3 ran out long ago: flagged, not mailed)", f.hub.notices)
	}
	if gauge() != 2 {
		t.Errorf("gauge %v, want 2 (R1 and R3)", gauge())
	}
	for id, flagged := range map[string]bool{"R1": true, "R2": false, "R3": true} {
		if r, _ := f.c.reg.referral(tokenOf(id)); r.Flagged.IsZero() == flagged {
			t.Errorf("%s flagged %v, want %v", id, r.Flagged, flagged)
		}
	}
	// Answered late: no longer counted, still shown as flagged.
	f.apply(f.c, &letter.Letter{ID: "D1", Kind: letter.KindRecommendation, Source: "casesys", InReplyTo: "R1", Received: f.clock.now().UTC()})
	if gauge() != 1 {
		t.Errorf("gauge %v after R1's recommendation, want 1", gauge())
	}
	if got := f.c.Referrals(ReferralFilter{State: "unanswered"}); len(got) != 1 || got[0].LetterID != "R3" || got[0].Flagged == nil {
		t.Errorf("unanswered referrals %+v", got)
	}
}

// gaugeValue reads a gauge from a registry as a scrape would.
func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func TestCoordinatorAddsAndMovesMeetings(t *testing.T) {
	f := newFixture(t, func(k *Options) { k.Meetings.Cap = 1 })
	who := Actor{Name: "koordinator", Role: "coordinator", Remote: "127.0.0.1"}
	ctx := context.Background()
	// 25 referrals with room for 24 (cap 1, two years): the last waits.
	for i := range 25 {
		f.apply(f.c, f.referral(fmt.Sprintf("R%02d", i), f.clock.now().Add(time.Duration(i)*time.Minute), ""))
	}
	if r, _ := f.c.reg.referral(tokenOf("R24")); r.Meeting != "" {
		t.Fatalf("R24 seated at %s; no meeting should have room", r.Meeting)
	}
	if _, err := f.c.AddMeeting(ctx, who, "2026-03-24 13:00", 0, ""); err != ErrReasonRequired {
		t.Errorf("add without a reason: %v", err)
	}
	if _, err := f.c.AddMeeting(ctx, who, "2026-03-10 15:00", 0, "ekstra"); err == nil || !strings.Contains(err.Error(), "2026-03-10") {
		t.Errorf("add on a rule meeting's day: %v", err)
	}
	if _, err := f.c.AddMeeting(ctx, who, "24/3", 0, "ekstra"); err == nil || !strings.Contains(err.Error(), "2026-03-24 13:00") {
		t.Errorf("add at an unreadable time: %v", err)
	}
	m, err := f.c.AddMeeting(ctx, who, "2026-03-24 13:00", 2, "Ekstra møde: mange henvisninger")
	if err != nil {
		t.Fatal(err)
	}
	if m.ID != "2026-03-24" || m.Origin != "added" || m.Cap != 2 || m.At.Format(time.RFC3339) != "2026-03-24T13:00:00+01:00" {
		t.Errorf("added %+v", m)
	}
	if err := f.c.seatWaiting(ctx); err != nil {
		t.Fatal(err)
	}
	if r, _ := f.c.reg.referral(tokenOf("R24")); r.Meeting != "2026-03-24" {
		t.Errorf("R24 waits at %q, want the added meeting", r.Meeting)
	}
	for _, w := range f.c.reg.storedRecords(prefixWaiting) {
		if len(w.Referrals) != 0 {
			t.Errorf("still waiting after it took a seat: %+v", w.Referrals)
		}
	}
	// Moving the March meeting keeps its referral.
	mv, err := f.c.MoveMeeting(ctx, who, "2026-03-10", "2026-03-12 09:00", "Lokalet er optaget")
	if err != nil {
		t.Fatal(err)
	}
	if mv.ID != "2026-03-10" || mv.MovedFrom == nil || mv.MovedFrom.Format(time.RFC3339) != "2026-03-10T13:00:00+01:00" || mv.At.Format(time.RFC3339) != "2026-03-12T09:00:00+01:00" || mv.Referrals != 1 {
		t.Errorf("moved %+v", mv)
	}
	if _, err := f.c.MoveMeeting(ctx, who, "2026-04-14", "2026-03-24 10:00", "samme dag"); err == nil || !strings.Contains(err.Error(), "2026-03-24") {
		t.Errorf("moving onto another meeting's day: %v", err)
	}
	if _, err := f.c.MoveMeeting(ctx, who, "2026-04-15", "2026-04-16 10:00", "ingen"); err != ErrNoMeeting {
		t.Errorf("moving a meeting that is not: %v", err)
	}
	recs, err := f.audit.Tail(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, r := range recs {
		actions = append(actions, r.Action+" "+r.Target+" "+r.Reason)
	}
	got := strings.Join(actions, "\n")
	for _, w := range []string{"meeting-add meeting:2026-03-24 at:2026-03-24T12:00:00Z cap:2 Ekstra møde", "meeting-move meeting:2026-03-10 from:2026-03-10T12:00:00Z to:2026-03-12T08:00:00Z Lokalet er optaget"} {
		if !strings.Contains(got, w) {
			t.Errorf("the audit log lacks %q:\n%s", w, got)
		}
	}
	if strings.Count(got, "meeting-") != 2 {
		t.Errorf("refused operations were audited:\n%s", got)
	}
}

func TestPruneForgetsWhatIsPastRetention(t *testing.T) {
	f := newFixture(t, nil)
	f.apply(f.c, f.referral("OLD", f.clock.now().Add(-800*24*time.Hour), "2509479989"))
	f.apply(f.c, f.referral("NEW", f.clock.now(), "2509479989"))
	n, err := f.c.Prune(context.Background(), f.clock.now())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := f.c.reg.referral(tokenOf("OLD")); ok || n != 1 { // its meeting, with its facts
		t.Errorf("pruned %d; OLD still registered: %v", n, ok)
	}
	if _, ok := f.c.reg.referral(tokenOf("NEW")); !ok {
		t.Errorf("NEW was pruned")
	}
}

func TestAgendaNamesTheChildAfterAnAuditedRead(t *testing.T) {
	f := newFixture(t, nil)
	f.apply(f.c, f.referral("R1", f.clock.now(), "2509479989"))
	ctx := context.Background()
	who := Actor{Name: "koordinator", Role: "coordinator"}
	v, err := f.c.MeetingView(ctx, "2026-03-10")
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Children) != 1 || v.Children[0].Name != "" || v.Children[0].Consent.Sectors["gp"] != "given" || v.Children[0].Consent.Sectors["region_psychiatry"] != "missing" {
		t.Errorf("meeting view %+v", v)
	}
	if _, err := f.c.Agenda(ctx, who, "2026-03-10", "", "csv"); err != ErrReasonRequired {
		t.Errorf("an export without a reason: %v", err)
	}
	a, err := f.c.Agenda(ctx, who, "2026-03-10", "Dagsorden til mødet", "csv")
	if err != nil {
		t.Fatal(err)
	}
	if a.Children[0].Name != "Bruno Test Elmer" {
		t.Errorf("agenda names %q", a.Children[0].Name)
	}
	var b strings.Builder
	if err := f.c.WriteCSV(&b, a); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b.String(), "\ufeffMøde;Barn;") || !strings.Contains(b.String(), "2026-03-10 13:00;Bruno Test Elmer;2026-03-01;Lægehuset Ærø;kommunen, egen læge;0;;nej;venter;R1") {
		t.Errorf("csv:\n%s", b.String())
	}
	recs, _ := f.audit.Tail(ctx, 5)
	if len(recs) != 1 || recs[0].Action != "agenda-export" || recs[0].Target != "meeting:2026-03-10 format:csv" || recs[0].Reason != "Dagsorden til mødet" {
		t.Errorf("audit %+v", recs)
	}
}

// A name that a spreadsheet would take for a formula is written as text.
func TestCSVCellsAreNeverFormulas(t *testing.T) {
	got := cells("=HYPERLINK(\"http://x\")", "+45", "-1", "@SUM(A1)", "\tx", "Lægehuset Ærø", "")
	want := []string{"'=HYPERLINK(\"http://x\")", "'+45", "'-1", "'@SUM(A1)", "'\tx", "Lægehuset Ærø", ""}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("cell %d: %q, want %q", i, got[i], want[i])
		}
	}
}

// A partial delivery lists who has the letter while the destination still
// waits: the custody holder who got Digital Post is not shown as unreached
// when the other one parks and is discarded.
func TestTrackListsAPartialDelivery(t *testing.T) {
	c := &Council{cfg: Options{Sectors: map[string]string{"parents": "parents"}}}
	at := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	var tr Tracked
	c.track(&tr, []journey.Event{
		{Step: journey.PartlyDelivered, Destination: "parents", To: "parents 1 of 2", Code: "delivered", At: at},
		{Step: journey.Parked, Destination: "parents", Code: "recipient_exempt", At: at},
		{Step: journey.Discarded, Destination: "parents", Reason: "sendt som fysisk brev", At: at.Add(time.Hour)},
	})
	if len(tr.Deliveries) != 1 || tr.Deliveries[0].To != "parents 1 of 2" || tr.Deliveries[0].Sector != "parents" {
		t.Errorf("deliveries %+v; want the partial one to parents 1 of 2", tr.Deliveries)
	}
	if len(tr.Waiting) != 1 || tr.Waiting[0].Step != journey.Discarded {
		t.Errorf("waiting %+v; want the destination's last step, discarded", tr.Waiting)
	}
}
