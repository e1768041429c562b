package epj_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/adapters/epj"
	epjsim "github.com/samhub/samhub/internal/sim/epj"
	"github.com/samhub/samhub/pipeline/letter"
)

func (e *env) seedNote(n epjsim.Note) string {
	e.t.Helper()
	if n.RecipientSOR == "" {
		n.RecipientSOR = sorMuni
	}
	if n.SenderSOR == "" {
		n.SenderSOR = sorRegion
	}
	ref, err := e.sim.SeedNote(n)
	if err != nil {
		e.t.Fatal(err)
	}
	return ref
}

func sourceCfg(c *epj.Config) { c.PollInterval = time.Hour }

func TestSourceMapsNotesToLetters(t *testing.T) {
	e := newEnv(t, 0)
	e.seedPatient(epjsim.Patient{CPR: cprBruno, GivenName: "Bruno Test", FamilyName: "Elmer"})
	pdf := []byte("%PDF-1.4 epikrise")
	comm := e.seedNote(epjsim.Note{Type: "Communication", PatientCPR: cprBruno, SenderName: "Børne- og Ungdomspsykiatrien",
		Text: "Barnet er set i ambulatoriet.", InReplyTo: "rec-0001",
		Attachments: []epjsim.File{{Title: "notat.pdf", ContentType: "application/pdf", Data: pdf}}})
	doc := e.seedNote(epjsim.Note{Type: "DocumentReference", Discharge: true, PatientCPR: cprBruno, Text: "Udskrivningsnotat",
		Attachments: []epjsim.File{{Title: "epikrise.pdf", ContentType: "application/pdf", Data: pdf}}})
	e.seedNote(epjsim.Note{Type: "Communication", PatientCPR: cprBruno, RecipientSOR: "999999999999999", Text: "to someone else"})

	pub := &recPub{}
	if err := e.adapter(sourceCfg).Poll(context.Background(), pub); err != nil {
		t.Fatal(err)
	}
	if len(pub.letters) != 2 {
		t.Fatalf("published %v, want the two notes addressed to the municipality", pub.ids())
	}
	byID := map[string]*letter.Letter{}
	for _, l := range pub.letters {
		byID[l.ID] = l
	}
	c := byID["epj:epj-test:"+comm+"/1"]
	d := byID["epj:epj-test:"+doc+"/1"]
	if c == nil || d == nil {
		t.Fatalf("letter ids %v, want epj:epj-test:%s/1 and …%s/1", pub.ids(), comm, doc)
	}
	if c.Kind != letter.KindNote || d.Kind != letter.KindDischargeNote {
		t.Fatalf("kinds %s and %s, want note and discharge-note", c.Kind, d.Kind)
	}
	for _, l := range []*letter.Letter{c, d} {
		if l.Format != "fhir-r4" || l.Source != "epj-test" {
			t.Fatalf("%s: format %q source %q", l.ID, l.Format, l.Source)
		}
		if l.Patient == nil || l.Patient.CPR != cprBruno || l.Patient.FamilyName != "Elmer" {
			t.Fatalf("%s: patient not resolved from the referenced Patient", l.ID)
		}
		if l.Sender.Role != "region" || l.Sender.SOR != sorRegion {
			t.Fatalf("%s: sender %+v", l.ID, l.Sender)
		}
		if len(l.Attachments) != 1 || !bytes.Equal(l.Attachments[0].Data, pdf) {
			t.Fatalf("%s: attachments %+v", l.ID, l.Attachments)
		}
		var head struct {
			ResourceType string `json:"resourceType"`
			ID           string `json:"id"`
		}
		if err := json.Unmarshal(l.Original.Data, &head); err != nil || head.ResourceType+"/"+head.ID != l.Meta[epj.MetaFHIRResource] {
			t.Fatalf("%s: original is not the resource: %v %+v", l.ID, err, head)
		}
		if l.Original.SHA256 != letter.Digest(l.Original.Data) {
			t.Fatalf("%s: original digest", l.ID)
		}
	}
	if c.Text != "Barnet er set i ambulatoriet." || c.InReplyTo != "rec-0001" || c.Sender.Name != "Børne- og Ungdomspsykiatrien" {
		t.Fatalf("communication letter: text %q inReplyTo %q sender %+v", c.Text, c.InReplyTo, c.Sender)
	}
	if d.Text != "Udskrivningsnotat" {
		t.Fatalf("document letter text %q", d.Text)
	}
}

// The original must be the resource bytes exactly as the gateway sent them.
func TestSourceOriginalIsBytesAsReceived(t *testing.T) {
	e := newEnv(t, 0)
	e.seedPatient(epjsim.Patient{CPR: cprBruno, FamilyName: "Elmer"})
	ref := e.seedNote(epjsim.Note{Type: "Communication", PatientCPR: cprBruno, Text: "note"})
	pub := &recPub{}
	if err := e.adapter(sourceCfg).Poll(context.Background(), pub); err != nil {
		t.Fatal(err)
	}
	var stored []byte
	for _, c := range e.sim.Communications() {
		if strings.Contains(string(c), `"id":"`+strings.TrimPrefix(ref, "Communication/")+`"`) {
			stored = c
		}
	}
	if len(pub.letters) != 1 || !bytes.Equal(pub.letters[0].Original.Data, stored) {
		t.Fatalf("original differs from the stored resource:\n%s\n%s", pub.letters[0].Original.Data, stored)
	}
}

func TestSourceCursorAcrossRestarts(t *testing.T) {
	e := newEnv(t, 0)
	e.seedPatient(epjsim.Patient{CPR: cprBruno, FamilyName: "Elmer"})
	t0 := time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)
	t1 := t0.Add(time.Minute)
	e.seedNote(epjsim.Note{Type: "Communication", PatientCPR: cprBruno, Text: "early", LastUpdated: t0})
	// More notes share one instant than fit a page, so paging and ties are both exercised.
	for i := 0; i < 55; i++ {
		e.seedNote(epjsim.Note{Type: "Communication", PatientCPR: cprBruno, Text: "tie", LastUpdated: t1})
	}
	e.seedNote(epjsim.Note{Type: "DocumentReference", Discharge: true, PatientCPR: cprBruno, Text: "discharge", LastUpdated: t1})

	all := map[string]int{}
	collect := func(p *recPub) {
		for _, id := range p.ids() {
			all[id]++
		}
	}

	// The broker fails on the third letter: the Communication feed stops
	// there and its cursor holds only what was published; the
	// DocumentReference feed goes on by itself.
	pub := &recPub{failAt: 3}
	err := e.adapter(sourceCfg).Poll(context.Background(), pub)
	if err == nil || len(pub.letters) != 3 {
		t.Fatalf("poll with a failing broker: err %v, published %v, want an error and 2 Communications + 1 DocumentReference", err, pub.ids())
	}
	collect(pub)

	// A new adapter on the same state carries on where the first stopped.
	pub = &recPub{}
	if err := e.adapter(sourceCfg).Poll(context.Background(), pub); err != nil {
		t.Fatal(err)
	}
	collect(pub)
	if len(all) != 57 {
		t.Fatalf("%d distinct letters, want 57", len(all))
	}

	// Restart the gateway too; nothing is repeated.
	e.sim.Close()
	e.startSim(0)
	pub = &recPub{}
	if err := e.adapter(sourceCfg).Poll(context.Background(), pub); err != nil {
		t.Fatal(err)
	}
	if len(pub.letters) != 0 {
		t.Fatalf("after restarts published again: %v", pub.ids())
	}

	// New notes with the very instant the cursor stands on are still found, once.
	a := e.seedNote(epjsim.Note{Type: "Communication", PatientCPR: cprBruno, Text: "late tie 1", LastUpdated: t1})
	b := e.seedNote(epjsim.Note{Type: "Communication", PatientCPR: cprBruno, Text: "late tie 2", LastUpdated: t1})
	for i := 0; i < 2; i++ {
		pub = &recPub{}
		if err := e.adapter(sourceCfg).Poll(context.Background(), pub); err != nil {
			t.Fatal(err)
		}
		collect(pub)
	}
	for _, ref := range []string{a, b} {
		if all["epj:epj-test:"+ref+"/1"] != 1 {
			t.Fatalf("%s published %d times, want 1", ref, all["epj:epj-test:"+ref+"/1"])
		}
	}
	for id, n := range all {
		if n != 1 {
			t.Fatalf("%s published %d times", id, n)
		}
	}
	if len(all) != 59 {
		t.Fatalf("%d distinct letters, want 59", len(all))
	}
}

func TestSourceSkipsNothingOnGatewayFailure(t *testing.T) {
	e := newEnv(t, 0)
	e.seedPatient(epjsim.Patient{CPR: cprBruno, FamilyName: "Elmer"})
	e.seedNote(epjsim.Note{Type: "Communication", PatientCPR: cprBruno, Text: "one"})
	a := e.adapter(sourceCfg)
	// The patient read fails: the letter is not published and the cursor stays.
	e.sim.FailNextOn("/Patient/1", 1, 503, 0)
	pub := &recPub{}
	err := a.Poll(context.Background(), pub)
	classified(t, err, adapters.ClassRetryable, "http_503")
	if len(pub.letters) != 0 {
		t.Fatalf("published %v despite the failure", pub.ids())
	}
	if err := a.Poll(context.Background(), pub); err != nil || len(pub.letters) != 1 {
		t.Fatalf("second poll: %v, %v", err, pub.ids())
	}
}

func TestRunPollsUntilCancelled(t *testing.T) {
	e := newEnv(t, 0)
	e.seedPatient(epjsim.Patient{CPR: cprBruno, FamilyName: "Elmer"})
	e.seedNote(epjsim.Note{Type: "Communication", PatientCPR: cprBruno, Text: "first"})
	a := e.adapter(func(c *epj.Config) { c.PollInterval = 10 * time.Millisecond })
	pub := &recPub{notify: make(chan struct{}, 10)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, pub) }()
	<-pub.notify
	// Seeded while Run is going: a later tick picks it up.
	e.seedNote(epjsim.Note{Type: "Communication", PatientCPR: cprBruno, Text: "second"})
	<-pub.notify
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run returned %v after cancel, want nil", err)
	}
	if ids := pub.ids(); len(ids) != 2 || ids[0] == ids[1] {
		t.Fatalf("published %v", ids)
	}
}

// A hand-written fixture in the shapes a real gateway may use: the subject
// by identifier, the sender by the old EAN system with no SOR, several
// text parts, and one attachment by URL only.
func TestSourceReadsGatewayFixture(t *testing.T) {
	e := newEnv(t, 0)
	body, err := os.ReadFile(filepath.Join(goldenDir, "region-communication.json"))
	if err != nil {
		t.Fatal(err)
	}
	ref, err := e.sim.SeedResource("Communication", body, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	pub := &recPub{}
	if err := e.adapter(sourceCfg).Poll(context.Background(), pub); err != nil {
		t.Fatal(err)
	}
	if len(pub.letters) != 1 {
		t.Fatalf("published %v", pub.ids())
	}
	l := pub.letters[0]
	switch {
	case l.ID != "epj:epj-test:"+ref+"/1":
		t.Fatalf("id %q", l.ID)
	case l.Patient == nil || l.Patient.CPR != cprBrita:
		t.Fatal("patient not read from subject.identifier")
	case l.Sender.GLN != "5790001234567" || l.Sender.SOR != sorRegion || l.Sender.Name != "Børne- og Ungdomspsykiatrisk Ambulatorium":
		t.Fatalf("sender %+v (SOR falls back to the configured recipient)", l.Sender)
	case l.Text != "Brita Test Berggren er set til første samtale.\n\nNæste samtale om fire uger.":
		t.Fatalf("text %q", l.Text)
	case len(l.Attachments) != 1 || string(l.Attachments[0].Data) != "Notat" || l.Meta[epj.MetaAttachmentsByURL] != "1":
		t.Fatalf("attachments %+v meta %v", l.Attachments, l.Meta)
	case l.InReplyTo != "rec-0001" || l.Subject != "Status efter første samtale" || l.Priority != "routine":
		t.Fatalf("inReplyTo %q subject %q priority %q", l.InReplyTo, l.Subject, l.Priority)
	case !l.Sent.Equal(time.Date(2025, 3, 10, 13, 30, 0, 0, time.UTC)):
		t.Fatalf("sent %v", l.Sent)
	}
	// No read of the patient was needed: the subject carried the identifier.
	for _, r := range e.sim.Requests() {
		if strings.HasPrefix(r.URL, "/Patient/") {
			t.Fatalf("unexpected patient request %s", r.URL)
		}
	}
}

// A note names its other recipients: the child's GP a discharge letter is
// for, with the role gp when the region records that GP as the child's.
func TestSourceNamesTheNotesOtherRecipients(t *testing.T) {
	e := newEnv(t, 0)
	gp := epjsim.Organisation{SOR: "440001000016001", Name: "Lægerne i Østergade"}
	e.seedPatient(epjsim.Patient{CPR: cprBruno, GivenName: "Bruno Test", FamilyName: "Elmer", GP: &gp})
	named := e.seedNote(epjsim.Note{Type: "DocumentReference", Discharge: true, PatientCPR: cprBruno, Text: "Udskrivningsnotat", AlsoTo: []epjsim.Organisation{gp}})
	bare := e.seedNote(epjsim.Note{Type: "DocumentReference", Discharge: true, PatientCPR: cprBruno, Text: "Udskrivningsnotat 2"})
	other := e.seedNote(epjsim.Note{Type: "Communication", PatientCPR: cprBruno, Text: "til PPR", AlsoTo: []epjsim.Organisation{{SOR: "550001000016002", Name: "PPR"}}})
	note := e.seedNote(epjsim.Note{Type: "Communication", PatientCPR: cprBruno, Text: "notat"})
	pub := &recPub{}
	if err := e.adapter(sourceCfg).Poll(context.Background(), pub); err != nil {
		t.Fatal(err)
	}
	byID := map[string]*letter.Letter{}
	for _, l := range pub.letters {
		byID[l.ID] = l
	}
	others := func(ref string) []letter.Party {
		l := byID["epj:epj-test:"+ref+"/1"]
		if l == nil {
			t.Fatalf("%s not published (got %v)", ref, pub.ids())
		}
		if l.Receivers[0].Role != "municipality" {
			t.Fatalf("%s: first receiver %+v, want the municipality", ref, l.Receivers[0])
		}
		return l.Receivers[1:]
	}
	if got := others(named); len(got) != 1 || got[0].SOR != gp.SOR || got[0].Role != letter.RoleGP || got[0].Name != gp.Name {
		t.Errorf("discharge note naming the GP: %+v", got)
	}
	if got := others(bare); len(got) != 1 || got[0].SOR != gp.SOR || got[0].Role != letter.RoleGP {
		t.Errorf("discharge note naming nobody else goes to the child's GP: %+v", got)
	}
	if got := others(other); len(got) != 1 || got[0].SOR != "550001000016002" || got[0].Role != "" {
		t.Errorf("a note to PPR: %+v (its role is for the receiver directory to know)", got)
	}
	if got := others(note); len(got) != 0 {
		t.Errorf("a plain note is for the municipality only: %+v", got)
	}
}

// A gateway that names another host in its next-page links (behind a
// proxy, with its own base address set to an internal one) is not
// followed: the token goes nowhere the configuration did not name. The
// poll keeps the page it read and does not fail; each later poll reads on
// from the cursor, one page at a time, with one warning naming the host.
func TestSourceRefusesANextLinkToAnotherHost(t *testing.T) {
	e := newEnv(t, 0)
	e.seedPatient(epjsim.Patient{CPR: cprBruno, FamilyName: "Elmer"})
	var foreignCalls atomic.Int32
	foreign := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		foreignCalls.Add(1)
		http.Error(w, "not here", http.StatusTeapot)
	}))
	defer foreign.Close()
	foreignHost := strings.TrimPrefix(foreign.URL, "http://")
	e.sim.SetLinkBase(foreign.URL + "/fhir")
	t0 := time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)
	for i := range 120 {
		e.seedNote(epjsim.Note{Type: "Communication", PatientCPR: cprBruno, Text: "note", LastUpdated: t0.Add(time.Duration(i) * time.Second)})
	}
	a := e.adapter(sourceCfg)
	warnings := func() (lines []string) {
		for _, line := range strings.Split(e.logs.String(), "\n") {
			if strings.Contains(line, "next-page link") {
				lines = append(lines, line)
			}
		}
		return lines
	}
	all := map[string]int{}
	// A poll asks from the cursor's instant on, so each page after the
	// first starts with the note the cursor stands on.
	for poll, want := range []int{50, 49, 21, 0} {
		pub := &recPub{}
		if err := a.Poll(context.Background(), pub); err != nil {
			t.Fatalf("poll %d failed: %v", poll+1, err)
		}
		if len(pub.letters) != want {
			t.Fatalf("poll %d published %d, want %d", poll+1, len(pub.letters), want)
		}
		for _, id := range pub.ids() {
			all[id]++
		}
	}
	if len(all) != 120 {
		t.Fatalf("%d distinct letters, want 120", len(all))
	}
	for id, n := range all {
		if n != 1 {
			t.Fatalf("%s published %d times", id, n)
		}
	}
	// One warning a poll, as long as the gateway's links name the other
	// host, none saying the feed is stuck.
	lines := warnings()
	if len(lines) != 4 {
		t.Fatalf("%d warnings about the link, want one a poll:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	for _, line := range lines {
		if !strings.Contains(line, `"link_host":"`+foreignHost+`"`) || strings.Contains(line, "cannot go on") {
			t.Fatalf("warning %s: want it to name %s and the feed going on", line, foreignHost)
		}
	}
	if c := foreignCalls.Load(); c != 0 {
		t.Fatalf("the other host got %d requests", c)
	}
}

// More notes at one instant than a page holds, behind a link that is not
// followed: the feed cannot pass them, and the warning says so rather
// than that it goes on.
func TestSourceSaysWhenARefusedLinkStopsTheFeed(t *testing.T) {
	e := newEnv(t, 0)
	e.seedPatient(epjsim.Patient{CPR: cprBruno, FamilyName: "Elmer"})
	e.sim.SetLinkBase("http://fhir-internal.region.example:8080/fhir")
	t1 := time.Date(2025, 3, 4, 10, 1, 0, 0, time.UTC)
	for range 55 {
		e.seedNote(epjsim.Note{Type: "Communication", PatientCPR: cprBruno, Text: "tie", LastUpdated: t1})
	}
	a := e.adapter(sourceCfg)
	for poll, want := range []int{50, 0} {
		pub := &recPub{}
		if err := a.Poll(context.Background(), pub); err != nil || len(pub.letters) != want {
			t.Fatalf("poll %d: %v, published %d, want %d", poll+1, err, len(pub.letters), want)
		}
	}
	if !strings.Contains(e.logs.String(), "no note before it was new: the feed cannot go on") {
		t.Fatalf("no warning that the feed is stuck:\n%s", e.logs.String())
	}
	// With the gateway's links right again, the rest is read.
	e.sim.SetLinkBase("")
	pub := &recPub{}
	if err := a.Poll(context.Background(), pub); err != nil || len(pub.letters) != 5 {
		t.Fatalf("after the fix: %v, published %d, want 5", err, len(pub.letters))
	}
}
