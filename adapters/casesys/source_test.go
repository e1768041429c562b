package casesys

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/samhub/samhub/adapters"
	casesyssim "github.com/samhub/samhub/internal/sim/casesys"
	"github.com/samhub/samhub/pipeline/letter"
)

// recorder is a Publisher that keeps what it was given and, like the
// letter stream, refuses a second copy of a letter id (counted in again);
// failNext makes the next calls fail as a broker outage would.
type recorder struct {
	mu       sync.Mutex
	letters  []*letter.Letter
	again    int
	failNext int
	got      chan struct{}
}

func newRecorder() *recorder { return &recorder{got: make(chan struct{}, 100)} }

func (r *recorder) Publish(_ context.Context, l *letter.Letter) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failNext > 0 {
		r.failNext--
		return errors.New("broker unavailable")
	}
	for _, had := range r.letters {
		if had.ID == l.ID {
			r.again++
			return nil // stored before: the copy is dropped
		}
	}
	r.letters = append(r.letters, l)
	r.got <- struct{}{}
	return nil
}

func (r *recorder) ids() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, l := range r.letters {
		out = append(out, l.ID)
	}
	return out
}

var pdf = []byte("%PDF-1.4\n% Samhub test recommendation\n")

// seedOutbox makes a case (consent, contact person, MedCom referral) with
// two ready documents: one PDF with an attachment and one text only.
func seedOutbox(t *testing.T, sim *casesyssim.Server) (casesyssim.Case, []casesyssim.Document) {
	t.Helper()
	given := time.Date(2026, 10, 20, 8, 0, 0, 0, time.UTC)
	c, err := sim.SeedCase(casesyssim.Case{
		PrimaryParty:  casesyssim.Person{CPR: "1509819996", Name: "Brita Test Berggren"},
		Consent:       &casesyssim.Consent{GivenBy: "custody-holder", Form: "written", GivenAt: &given, Scopes: []string{"municipality", "gp", "parents"}},
		ContactPerson: &casesyssim.ContactPerson{Name: "Rådgiver Test", Email: "raadgiver.test@kommune.example"},
		Referral:      &casesyssim.Referral{ThreadID: "medcom:thread-1", LetterID: "medcom:SAMHUBLTR0002"},
	})
	if err != nil {
		t.Fatal(err)
	}
	d1, err := sim.SeedOutboxDocument(c.ID, casesyssim.SeedDocument{
		Title: "Anbefaling fra Samrådet", Text: "Samrådet anbefaler et forløb hos PPR.",
		Recipients: casesyssim.OutboxRecipients{
			GP:      &casesyssim.Organisation{Name: "Lægerne Test", GLN: "5790000121526"},
			Parents: []casesyssim.Parent{{Name: "Forælder Test", Email: "foraelder.test@example.org"}},
		},
		Files: []casesyssim.SeedFile{{Name: "anbefaling.pdf", ContentType: "application/pdf", Data: pdf}, {Name: "bilag.txt", ContentType: "text/plain; charset=utf-8", Data: []byte("bilag")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	d2, err := sim.SeedOutboxDocument(c.ID, casesyssim.SeedDocument{Title: "Svar til regionen", Kind: "reply", Text: "Kort svar.",
		Recipients: casesyssim.OutboxRecipients{Region: &casesyssim.Organisation{Name: "BUP Test", SOR: "123456789012345"}}})
	if err != nil {
		t.Fatal(err)
	}
	return c, []casesyssim.Document{d1, d2}
}

// outboxStatus counts the outbox documents still ready and those the hub
// accepted (whatever their recipients' statuses).
func outboxStatus(sim *casesyssim.Server) (ready, accepted int) {
	for _, d := range sim.Documents() {
		if d.Outbox == nil {
			continue
		}
		if d.Outbox.Status == casesyssim.OutboxReady {
			ready++
		} else {
			accepted++
		}
	}
	return
}

func TestOutboxBecomesLettersExactlyOnceAcrossRestart(t *testing.T) {
	e := startSim(t, nil)
	c, docs := seedOutbox(t, e.sim)
	state := newMapState()
	pub := newRecorder()
	ctx := context.Background()

	// 1. The broker is down: nothing is published, nothing marked.
	a1 := e.adapter(state, nil)
	pub.failNext = 1
	if err := a1.pollOnce(ctx, pub); err == nil {
		t.Fatal("want the publish error")
	}
	if ready, _ := outboxStatus(e.sim); ready != 2 || len(pub.ids()) != 0 {
		t.Fatalf("after broker outage: ready %d, published %v", ready, pub.ids())
	}

	// 2. Published (both documents, one round), but accepting fails: the
	// adapter "crashes" here.
	e.sim.InjectFailure(casesyssim.Fault{Route: "POST /outbox/{docId}/accept", Count: 1, Status: http.StatusServiceUnavailable, RetryAfter: time.Second})
	if err := a1.pollOnce(ctx, pub); err == nil {
		t.Fatal("want the accept error")
	}
	want := []string{"casesys:casesys:" + docs[0].ID, "casesys:casesys:" + docs[1].ID}
	if got := pub.ids(); !slices.Equal(got, want) {
		t.Fatalf("published %v, want %v", got, want)
	}
	if ready, _ := outboxStatus(e.sim); ready != 2 {
		t.Fatalf("ready %d after the failed accept, want 2", ready)
	}

	// 3. A new adapter instance finishes the job: it offers both letters
	// again, the broker drops the copies, and it accepts both.
	a2 := e.adapter(state, nil)
	if err := a2.pollOnce(ctx, pub); err != nil {
		t.Fatal(err)
	}
	if err := a2.pollOnce(ctx, pub); err != nil {
		t.Fatal(err)
	}
	if got := pub.ids(); !slices.Equal(got, want) || pub.again != 2 {
		t.Fatalf("stored %v (offered again %d), want %v once each, offered again 2", got, pub.again, want)
	}
	if ready, accepted := outboxStatus(e.sim); ready != 0 || accepted != 2 {
		t.Errorf("outbox ready %d accepted %d, want 0/2", ready, accepted)
	}
	if n := state.Keys(""); n != 0 {
		t.Errorf("state keys left behind: %v", state.Snapshot())
	}

	l := pub.letters[0]
	if err := l.Validate(); err != nil {
		t.Fatal(err)
	}
	if l.Kind != letter.KindRecommendation || l.Format != "casesys" || l.Source != "casesys" {
		t.Errorf("kind/format/source = %s/%s/%s", l.Kind, l.Format, l.Source)
	}
	if l.ThreadID != "medcom:thread-1" || l.InReplyTo != "medcom:SAMHUBLTR0002" {
		t.Errorf("thread %q in reply to %q", l.ThreadID, l.InReplyTo)
	}
	if l.Patient == nil || l.Patient.CPR != "1509819996" || l.Patient.FamilyName != "Berggren" {
		t.Errorf("patient = %+v", l.Patient)
	}
	now := time.Now()
	if l.Consent == nil || !l.Consent.Allows(letter.ScopeGP, now) || !l.Consent.Allows(letter.ScopeParents, now) || l.Consent.Allows(letter.ScopeRegionPsychiatry, now) {
		t.Errorf("consent = %+v", l.Consent)
	}
	if !bytes.Equal(l.Original.Data, pdf) || l.Original.ContentType != "application/pdf" || l.Original.Filename != "anbefaling.pdf" {
		t.Errorf("original = %s %s (%d bytes)", l.Original.Filename, l.Original.ContentType, len(l.Original.Data))
	}
	if len(l.Attachments) != 1 || string(l.Attachments[0].Data) != "bilag" {
		t.Errorf("attachments = %+v", l.Attachments)
	}
	roles := map[string]letter.Party{}
	for _, r := range l.Receivers {
		roles[r.Role] = r
	}
	if roles["gp"].GLN != "5790000121526" || roles["parents"].Email != "foraelder.test@example.org" || len(l.Receivers) != 2 {
		t.Errorf("receivers = %+v", l.Receivers)
	}
	if l.Sender.Role != "municipality" || l.Sender.Email != "raadgiver.test@kommune.example" {
		t.Errorf("sender = %+v", l.Sender)
	}
	if l.Meta[MetaCaseID] != c.ID || l.Text != "Samrådet anbefaler et forløb hos PPR." {
		t.Errorf("meta %v text %q", l.Meta, l.Text)
	}
	// The hub's notices reach the contact person; the sink knows its own document.
	if l.ContactEmail != "raadgiver.test@kommune.example" || l.SourceDocumentID == "" || l.ID != "casesys:"+l.Source+":"+l.SourceDocumentID {
		t.Errorf("contact %q, document %q (letter %s)", l.ContactEmail, l.SourceDocumentID, l.ID)
	}
	l2 := pub.letters[1]
	if l2.Kind != letter.KindReply || len(l2.Receivers) != 1 || l2.Receivers[0].Role != "region" || string(l2.Original.Data) != "Kort svar." {
		t.Errorf("second letter = %+v", l2)
	}

	// The published letter routed back to this case system is already there.
	d, err := a2.Deliver(ctx, l)
	if err != nil || !d.Existing || d.RemoteID != docs[0].ID {
		t.Errorf("delivering an outbox letter back: %+v %v", d, err)
	}
}

func TestOutboxWithFailingStateStoreStillPublishesAndAccepts(t *testing.T) {
	e := startSim(t, nil)
	seedOutbox(t, e.sim)
	state := newMapState()
	state.SetDown(errStoreDown)
	pub := newRecorder()
	a := e.adapter(state, nil)
	if err := a.pollOnce(context.Background(), pub); err != nil {
		t.Fatal(err)
	}
	if len(pub.ids()) != 2 {
		t.Errorf("published %v", pub.ids())
	}
	if ready, accepted := outboxStatus(e.sim); ready != 0 || accepted != 2 {
		t.Errorf("outbox ready %d accepted %d", ready, accepted)
	}
}

func TestRunPollsUntilCancelled(t *testing.T) {
	e := startSim(t, nil)
	seedOutbox(t, e.sim)
	a := e.adapter(nil, map[string]any{"poll_interval": "20ms"})
	pub := newRecorder()
	pub.failNext = 1 // the first poll fails; a later one succeeds
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, pub) }()
	<-pub.got
	<-pub.got
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run returned %v, want nil on cancel", err)
	}
	if len(pub.ids()) != 2 {
		t.Errorf("published %v", pub.ids())
	}
}

func TestRunDisabledWaitsForContext(t *testing.T) {
	e := startSim(t, nil)
	seedOutbox(t, e.sim)
	a := e.adapter(nil, map[string]any{"poll_interval": 0})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := a.Run(ctx, newRecorder()); err != nil {
		t.Fatal(err)
	}
	if ready, _ := outboxStatus(e.sim); ready != 2 {
		t.Error("a disabled source read the outbox")
	}
}

func TestReady(t *testing.T) {
	e := startSim(t, nil)
	a := e.adapter(nil, nil)
	if err := a.Ready(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.sim.Close()
	if err := a.Ready(context.Background()); err == nil {
		t.Fatal("Ready succeeded with the case system down")
	}
	var ae *adapters.Error
	if err := a.Ready(context.Background()); !errors.As(err, &ae) {
		t.Errorf("Ready error is not classified: %v", err)
	}
}

// TestAnUnreadableDocumentHoldsItsCaseOnly: a document that cannot make a
// letter stays in the outbox, the later documents of its case wait behind
// it (a case's letters keep their order), and other cases go on; before,
// one such document stopped the whole outbox.
func TestAnUnreadableDocumentHoldsItsCaseOnly(t *testing.T) {
	e := startSim(t, nil)
	_, docs := seedOutbox(t, e.sim) // docs[0] has files, docs[1] follows it in the same case
	other, err := e.sim.SeedCase(casesyssim.Case{PrimaryParty: casesyssim.Person{CPR: "0707614285", Name: "Ole Test Hansen"}})
	if err != nil {
		t.Fatal(err)
	}
	d3, err := e.sim.SeedOutboxDocument(other.ID, casesyssim.SeedDocument{Title: "Svar", Kind: "reply", Text: "Kort svar.",
		Recipients: casesyssim.OutboxRecipients{Region: &casesyssim.Organisation{Name: "BUP Test", SOR: "123456789012345"}}})
	if err != nil {
		t.Fatal(err)
	}
	// The first document's file answers 404 (gone), which no retry mends.
	e.sim.InjectFailure(casesyssim.Fault{Route: "GET /cases/{caseId}/documents/{docId}/files/{index}", Count: 1, Status: http.StatusNotFound})
	a := e.adapter(newMapState(), nil)
	pub := newRecorder()
	if err := a.pollOnce(context.Background(), pub); err != nil {
		t.Fatal(err)
	}
	if got := pub.ids(); !slices.Equal(got, []string{"casesys:casesys:" + d3.ID}) {
		t.Fatalf("published %v, want only the other case's document", got)
	}
	if docStatus(e, docs[0].ID) != casesyssim.OutboxReady || docStatus(e, docs[1].ID) != casesyssim.OutboxReady {
		t.Fatal("the unreadable document or the one behind it left the outbox")
	}
	// Mended: the next poll takes both, in order.
	if err := a.pollOnce(context.Background(), pub); err != nil {
		t.Fatal(err)
	}
	want := []string{"casesys:casesys:" + d3.ID, "casesys:casesys:" + docs[0].ID, "casesys:casesys:" + docs[1].ID}
	if got := pub.ids(); !slices.Equal(got, want) {
		t.Fatalf("published %v, want %v", got, want)
	}
}
