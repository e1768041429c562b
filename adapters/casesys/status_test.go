package casesys

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/samhub/samhub/adapters"
	casesyssim "github.com/samhub/samhub/internal/sim/casesys"
	"github.com/samhub/samhub/pipeline/letter"
)

// flushStatuses writes every pending document's reports now, as the
// poll's catch-up has the flusher do, and returns the first failure.
func (a *Adapter) flushStatuses(ctx context.Context) error {
	docs, err := a.pendingList(ctx)
	if err != nil {
		return err
	}
	var first error
	for _, d := range docs {
		if err := a.flushDoc(ctx, d); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// flusherIdle reports that no background status write is running.
func (a *Adapter) flusherIdle() bool {
	a.flusher.mu.Lock()
	defer a.flusher.mu.Unlock()
	return !a.flusher.running
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// published runs one poll and returns the letter made from doc.
func published(t *testing.T, a *Adapter, doc casesyssim.Document) *letter.Letter {
	t.Helper()
	pub := newRecorder()
	if err := a.pollOnce(context.Background(), pub); err != nil {
		t.Fatal(err)
	}
	for _, l := range pub.letters {
		if l.SourceDocumentID == doc.ID {
			return l
		}
	}
	t.Fatalf("document %s was not published", doc.ID)
	return nil
}

func recipientStatus(e *env, docID, key string) casesyssim.RecipientStatus {
	it, _ := e.sim.OutboxItem(docID)
	for _, r := range it.RecipientStatus {
		if r.Key == key {
			return r
		}
	}
	return casesyssim.RecipientStatus{}
}

func docStatus(e *env, docID string) string {
	it, _ := e.sim.OutboxItem(docID)
	return it.Status
}

func report(l *letter.Letter, p letter.Party, st adapters.RecipientState, code string, at time.Time) adapters.RecipientStatus {
	return adapters.RecipientStatus{LetterID: l.ID, Destination: "dest-" + p.Role, Recipient: p, State: st, Code: code, Reason: "Årsag uden personoplysninger", At: at}
}

// TestOutboxIsToldEachRecipientsFate: the document is accepted when the
// hub has it, not sent; each recipient's report reaches the case system,
// and the document is sent only when every recipient is.
func TestOutboxIsToldEachRecipientsFate(t *testing.T) {
	e := startSim(t, nil)
	_, docs := seedOutbox(t, e.sim)
	a := e.adapter(nil, nil)
	l := published(t, a, docs[0])
	if st := docStatus(e, docs[0].ID); st != casesyssim.OutboxAccepted {
		t.Fatalf("after publishing: %s, want accepted (nothing delivered yet)", st)
	}
	gp, parent := l.Receivers[0], l.Receivers[1]
	ctx := context.Background()
	t0 := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)

	steps := []struct {
		who   letter.Party
		state adapters.RecipientState
		code  string
		key   string
		doc   string
	}{
		{gp, adapters.StateSent, "delivered", "gp", casesyssim.OutboxWaiting},
		{parent, adapters.StateNotSent, "no_destination", "parent-1", casesyssim.OutboxPartlySent},
		{parent, adapters.StateWaiting, "consent_missing", "parent-1", casesyssim.OutboxWaiting},
		{parent, adapters.StateFailed, "parked", "parent-1", casesyssim.OutboxFailed},
		{parent, adapters.StateSent, "delivered", "parent-1", casesyssim.OutboxSent},
	}
	for i, s := range steps {
		at := t0.Add(time.Duration(i) * time.Minute)
		if err := a.ReportStatus(ctx, report(l, s.who, s.state, s.code, at)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the "+s.key+" status "+string(s.state)+" in the case system", func() bool {
			r := recipientStatus(e, docs[0].ID, s.key)
			return r.Status == string(s.state) && r.At != nil && r.At.Equal(at)
		})
		if got := docStatus(e, docs[0].ID); got != s.doc {
			t.Errorf("step %d: document %s, want %s", i, got, s.doc)
		}
	}
	r := recipientStatus(e, docs[0].ID, "parent-1")
	if r.Code != "delivered" || r.Reason != "Årsag uden personoplysninger" || r.Destination != "dest-parents" || r.Recipient.Email != "foraelder.test@example.org" {
		t.Errorf("parent entry = %+v", r)
	}
	// Once written, nothing is pending.
	waitFor(t, "the pending list to empty", func() bool { return pendingDocs(t, a) == 0 })
}

func pendingDocs(t *testing.T, a *Adapter) int {
	t.Helper()
	b, _, err := a.st.Get(context.Background(), a.pendingKey())
	if err != nil {
		return 0
	}
	var docs []string
	if err := json.Unmarshal(b, &docs); err != nil {
		t.Fatal(err)
	}
	return len(docs)
}

// failedReport reports l's first recipient sent while the case system
// refuses status writes, and returns once the background write gave up:
// the report is pending and nothing is writing it. It returns the
// report's time. The refusal stays on.
func failedReport(t *testing.T, e *env, a *Adapter, l *letter.Letter) time.Time {
	t.Helper()
	e.sim.InjectFailure(casesyssim.Fault{Route: "POST /outbox/{docId}/recipients", Count: 1000, Status: http.StatusServiceUnavailable})
	at := time.Date(2026, 11, 3, 11, 0, 0, 0, time.UTC)
	if err := a.ReportStatus(context.Background(), report(l, l.Receivers[0], adapters.StateSent, "delivered", at)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the background write to fail", func() bool {
		return countRoute(e.sim.Requests(), "POST /outbox/{docId}/recipients") >= 1 && a.flusherIdle()
	})
	return at
}

// TestStatusIsKeptWhileTheCaseSystemIsDown: ReportStatus returns once the
// report is in the state store; the poll has it written when the case system is
// back, also from a new adapter instance (a restarted hub).
func TestStatusIsKeptWhileTheCaseSystemIsDown(t *testing.T) {
	e := startSim(t, nil)
	_, docs := seedOutbox(t, e.sim)
	state := newMapState()
	a := e.adapter(state, map[string]any{"timeout": "2s"})
	l := published(t, a, docs[1]) // the region's reply
	at := failedReport(t, e, a, l)
	if got := recipientStatus(e, docs[1].ID, "region"); got.Status != casesyssim.RecipientPending {
		t.Fatalf("written while the case system refused: %+v", got)
	}
	if pendingDocs(t, a) != 1 {
		t.Fatal("the report is not pending")
	}
	// A failed poll keeps it; a new adapter on the same state store writes it.
	if err := a.flushStatuses(context.Background()); err == nil {
		t.Fatal("flush succeeded while the case system refused")
	}
	e.sim.ResetFaults()
	b := e.adapter(state, nil)
	if err := b.pollOnce(context.Background(), newRecorder()); err != nil {
		t.Fatal(err)
	}
	// The poll hands the pending reports to its flusher; it does not wait.
	waitFor(t, "the new adapter's flusher to write them", func() bool { return pendingDocs(t, b) == 0 && b.flusherIdle() })
	if got := recipientStatus(e, docs[1].ID, "region"); got.Status != casesyssim.RecipientSent || !got.At.Equal(at) {
		t.Errorf("after the case system came back: %+v", got)
	}
	if st := docStatus(e, docs[1].ID); st != casesyssim.OutboxSent {
		t.Errorf("document = %s", st)
	}
	if pendingDocs(t, b) != 0 {
		t.Error("still pending after the write")
	}
}

// TestASlowStatusWriteDoesNotHoldBackThePoll: recipient statuses are
// written in the background; a poll publishes and accepts the next
// document while a status write hangs in the case system. (Before, each
// poll first wrote every pending status: under load the outbox then
// published a recommendation every few hundred milliseconds while parked
// and retried letters piled up statuses; reliability's outage scenario saw
// recommendations stop for seconds while the mail server was down.)
func TestASlowStatusWriteDoesNotHoldBackThePoll(t *testing.T) {
	e := startSim(t, nil)
	c, docs := seedOutbox(t, e.sim)
	state := newMapState()
	a := e.adapter(state, map[string]any{"timeout": "30s"})
	l := published(t, a, docs[1])
	failedReport(t, e, a, l) // pending, nothing writing it
	e.sim.ResetFaults()
	// The case system is back but slow to take statuses.
	hang := 10 * time.Second
	e.sim.SetRouteDelay("POST /outbox/{docId}/recipients", hang)
	t.Cleanup(func() { e.sim.SetRouteDelay("POST /outbox/{docId}/recipients", 0) })
	d3, err := e.sim.SeedOutboxDocument(c.ID, casesyssim.SeedDocument{Title: "Referat", Text: "Kort referat.",
		Recipients: casesyssim.OutboxRecipients{Region: &casesyssim.Organisation{Name: "BUP Test", SOR: "123456789012345"}}})
	if err != nil {
		t.Fatal(err)
	}
	pub := newRecorder()
	if err := a.pollOnce(context.Background(), pub); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(pub.ids(), "casesys:casesys:"+d3.ID) || docStatus(e, d3.ID) != casesyssim.OutboxAccepted {
		t.Fatalf("the new document: published %v, status %s", pub.ids(), docStatus(e, d3.ID))
	}
	// The poll is done, and the status write it did not wait for is not.
	if got := recipientStatus(e, docs[1].ID, "region"); got.Status == casesyssim.RecipientSent {
		t.Fatalf("the status was written before the poll returned: %+v", got)
	}
	if pendingDocs(t, a) != 1 {
		t.Fatal("the report is not pending while its write hangs")
	}
	// The poll's catch-up handed it to the flusher, which writes it.
	waitFor(t, "the hanging write to land", func() bool { return recipientStatus(e, docs[1].ID, "region").Status == casesyssim.RecipientSent })
	waitFor(t, "the flusher to settle", func() bool { return pendingDocs(t, a) == 0 && a.flusherIdle() })
}

// TestOlderReportIsIgnored: reports from several destinations and
// replicas may arrive out of order; an older one never overwrites.
func TestOlderReportIsIgnored(t *testing.T) {
	e := startSim(t, nil)
	_, docs := seedOutbox(t, e.sim)
	a := e.adapter(nil, nil)
	l := published(t, a, docs[0])
	ctx := context.Background()
	t1 := time.Date(2026, 11, 3, 12, 0, 0, 0, time.UTC)
	if err := a.ReportStatus(ctx, report(l, l.Receivers[0], adapters.StateSent, "delivered", t1)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first report written", func() bool { return pendingDocs(t, a) == 0 && a.flusherIdle() })
	before := countRoute(e.sim.Requests(), "POST /outbox/{docId}/recipients")
	// Older, and the same again: kept report wins, nothing is written.
	for _, r := range []adapters.RecipientStatus{
		report(l, l.Receivers[0], adapters.StateWaiting, "retrying", t1.Add(-time.Minute)),
		report(l, l.Receivers[0], adapters.StateSent, "delivered", t1),
	} {
		if err := a.ReportStatus(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.flushStatuses(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the flusher to settle", a.flusherIdle)
	if n := countRoute(e.sim.Requests(), "POST /outbox/{docId}/recipients") - before; n != 0 {
		t.Errorf("%d writes for reports that change nothing", n)
	}
	if got := recipientStatus(e, docs[0].ID, "gp"); got.Status != casesyssim.RecipientSent {
		t.Errorf("gp = %+v", got)
	}
}

// TestReportMapsBackToTheRecipientItCameFrom: the pipeline may name the
// recipient with other details than the outbox had (the receiver
// directory's name for a GP); identifiers decide, and two parents sharing
// an address are told apart by name.
func TestReportMapsBackToTheRecipientItCameFrom(t *testing.T) {
	e := startSim(t, nil)
	c, err := e.sim.SeedCase(casesyssim.Case{PrimaryParty: casesyssim.Person{CPR: "1509819996", GivenName: "Brita Test", FamilyName: "Berggren"}})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := e.sim.SeedOutboxDocument(c.ID, casesyssim.SeedDocument{Title: "Anbefaling", Text: "Testtekst.", Recipients: casesyssim.OutboxRecipients{
		GP:      &casesyssim.Organisation{Name: "Lægerne Test", GLN: "5790000121526"},
		Parents: []casesyssim.Parent{{Name: "Forælder Et", Email: "familie.test@example.org"}, {Name: "Forælder To", Email: "Familie.Test@example.org"}},
		Region:  &casesyssim.Organisation{Name: "BUP Test", SOR: "6071000016008"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	a := e.adapter(nil, nil)
	l := published(t, a, doc)
	at := time.Date(2026, 11, 3, 13, 0, 0, 0, time.UTC)
	ctx := context.Background()
	for _, r := range []adapters.RecipientStatus{
		report(l, letter.Party{Role: "gp", GLN: "5790000121526", Name: "Lægehuset i registret", Accepts: []string{"fhir-xml"}}, adapters.StateSent, "delivered", at),
		report(l, l.Receivers[2], adapters.StateWaiting, "consent_missing", at), // Forælder To
		report(l, letter.Party{Role: "region", SOR: "6071000016008"}, adapters.StateFailed, "parked", at),
	} {
		if err := a.ReportStatus(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the reports written", func() bool { return pendingDocs(t, a) == 0 && a.flusherIdle() })
	it, _ := e.sim.OutboxItem(doc.ID)
	var got []string
	for _, r := range it.RecipientStatus {
		got = append(got, r.Key+"="+r.Status)
	}
	if want := []string{"gp=sent", "parent-1=pending", "parent-2=waiting", "region=failed"}; !slices.Equal(got, want) {
		t.Errorf("statuses = %v, want %v", got, want)
	}
}

// TestCustodyHoldersByCPR: Digital Post reaches parents by CPR. The
// outbox's parents' CPR numbers reach the letter's receivers, each
// report finds its own parent (two custody holders of one name and no
// address told apart by CPR), and what the adapter keeps holds the CPR
// only as a digest.
func TestCustodyHoldersByCPR(t *testing.T) {
	e := startSim(t, nil)
	c, err := e.sim.SeedCase(casesyssim.Case{PrimaryParty: casesyssim.Person{CPR: "2509479989", GivenName: "Bruno Test", FamilyName: "Elmer"}})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := e.sim.SeedOutboxDocument(c.ID, casesyssim.SeedDocument{Title: "Anbefaling", Text: "Testtekst.", Recipients: casesyssim.OutboxRecipients{
		Parents: []casesyssim.Parent{{Name: "Forælder Test Berggren", CPR: "1509819996"}, {Name: "Forælder Test Berggren", CPR: "2512489996"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.sim.SeedOutboxDocument(c.ID, casesyssim.SeedDocument{Title: "Forkert", Text: "x", Recipients: casesyssim.OutboxRecipients{
		Parents: []casesyssim.Parent{{Name: "Forælder", CPR: "250947-9989"}}}}); err == nil || !strings.Contains(err.Error(), "recipients.parents[0].cpr") {
		t.Errorf("a custody holder's CPR that is not 10 digits was taken: %v", err)
	}
	state := newMapState()
	a := e.adapter(state, nil)
	l := published(t, a, doc)
	if len(l.Receivers) != 2 || l.Receivers[0].CPR != "1509819996" || l.Receivers[1].CPR != "2512489996" || l.Receivers[1].Role != letter.RoleParents {
		t.Fatalf("receivers %+v: want both custody holders with their CPR", l.Receivers)
	}
	at := time.Now().UTC()
	if err := a.ReportStatus(context.Background(), report(l, l.Receivers[1], adapters.StateSent, "delivered", at)); err != nil {
		t.Fatal(err)
	}
	if err := a.ReportStatus(context.Background(), report(l, letter.Party{Role: letter.RoleParents, CPR: "1509819996"}, adapters.StateFailed, "recipient_exempt", at)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the reports written", func() bool { return pendingDocs(t, a) == 0 && a.flusherIdle() })
	it, _ := e.sim.OutboxItem(doc.ID)
	var got []string
	for _, r := range it.RecipientStatus {
		got = append(got, r.Key+"="+r.Status)
		if r.Recipient.Name == "" {
			t.Errorf("the outbox lost the recipient %s", r.Key)
		}
	}
	if want := []string{"parent-1=failed", "parent-2=sent"}; !slices.Equal(got, want) {
		t.Errorf("statuses = %v, want %v", got, want)
	}
	for k, v := range state.Snapshot() {
		if strings.Contains(string(v), "1509819996") || strings.Contains(string(v), "2512489996") {
			t.Errorf("state %s keeps a CPR number: %s", k, v)
		}
	}
}

func TestMatchRecipient(t *testing.T) {
	recips := []outboxRecipient{
		{"gp", letter.Party{Role: "gp", Name: "Lægerne Test", GLN: "5790000121526"}},
		{"parent-1", letter.Party{Role: "parents", Name: "Forælder Et", Email: "et@example.org"}},
		{"parent-2", letter.Party{Role: "parents", Name: "Forælder To", Email: "to@example.org"}},
		{"parent-3", letter.Party{Role: "parents", Name: "Forælder To", Email: "to@example.org"}},
		{"parent-4", letter.Party{Role: "parents", Name: "Forælder Fire", CPR: "1509819996"}},
	}
	for _, tc := range []struct {
		p    letter.Party
		want []string
	}{
		{letter.Party{Role: "gp", Name: "Lægerne Test", GLN: "5790000121526"}, []string{"gp"}},
		{letter.Party{Role: "gp", GLN: "5790000121526", SOR: "1234"}, []string{"gp"}},
		{letter.Party{Role: "gp", GLN: "5790000999999"}, []string{"gp"}}, // the document's only GP
		{letter.Party{Role: "parents", Email: "ET@example.org "}, []string{"parent-1"}},
		{letter.Party{Role: "parents", Name: "Forælder To", Email: "to@example.org"}, []string{"parent-2", "parent-3"}}, // the same address twice
		{letter.Party{Role: "parents", Email: "tre@example.org"}, nil},
		{letter.Party{Role: "parents", CPR: "1509819996"}, []string{"parent-4"}},
		{letter.Party{Role: "parents", Name: "Forælder Fire", CPR: "2512489996"}, nil}, // another CPR: not her
		{letter.Party{Role: "region", SOR: "6071000016008"}, nil},
	} {
		r := reportOf(adapters.RecipientStatus{Recipient: tc.p})
		if got := matchRecipient(r, recips); !slices.Equal(got, tc.want) {
			t.Errorf("%+v → %v, want %v", tc.p, got, tc.want)
		}
	}
}

func TestReportStatusChecksAndDurability(t *testing.T) {
	e := startSim(t, nil)
	_, docs := seedOutbox(t, e.sim)
	state := newMapState()
	a := e.adapter(state, nil)
	l := published(t, a, docs[0])
	ctx := context.Background()
	now := time.Now()
	// Not this source's letter: nothing kept.
	if err := a.ReportStatus(ctx, adapters.RecipientStatus{LetterID: "medcom:X", Recipient: l.Receivers[0], State: adapters.StateSent, At: now}); err != nil {
		t.Error(err)
	}
	if err := a.ReportStatus(ctx, adapters.RecipientStatus{LetterID: l.ID, Recipient: l.Receivers[0], State: "delivered", At: now}); err == nil {
		t.Error("an unknown state was accepted")
	}
	if err := a.ReportStatus(ctx, adapters.RecipientStatus{LetterID: l.ID, Recipient: l.Receivers[0], State: adapters.StateSent}); err == nil {
		t.Error("a report without a time was accepted")
	}
	if n := state.Keys("casesys.casesys.status"); n != 0 {
		t.Errorf("kept %d keys for refused reports", n)
	}
	// A store that is down cannot keep the report: the caller must retry.
	state.SetDown(errStoreDown)
	if err := a.ReportStatus(ctx, report(l, l.Receivers[0], adapters.StateSent, "delivered", now)); err == nil {
		t.Error("ReportStatus succeeded although nothing could keep the report")
	}
	state.SetDown(nil)
	// What is kept carries no email address or name.
	if err := a.ReportStatus(ctx, report(l, l.Receivers[1], adapters.StateWaiting, "consent_missing", now)); err != nil {
		t.Fatal(err)
	}
	for k, v := range state.Snapshot() {
		for _, personal := range []string{"foraelder.test@example.org", "Forælder Test", "1509819996", "Berggren"} {
			if strings.Contains(k, personal) || bytes.Contains(v, []byte(personal)) {
				t.Errorf("state %s holds %q", k, personal)
			}
		}
	}
}

// TestRefusedReportIsDroppedButAuthTroubleIsRetried: a report the case
// system will never take (422) is dropped with a warning; one that failed
// because the hub lacked the rights is written once it has them.
func TestRefusedReportIsDroppedButAuthTroubleIsRetried(t *testing.T) {
	e := startSim(t, nil)
	_, docs := seedOutbox(t, e.sim)
	a := e.adapter(nil, nil)
	l := published(t, a, docs[0])
	ctx := context.Background()
	at := time.Date(2026, 11, 3, 14, 0, 0, 0, time.UTC)

	e.sim.InjectFailure(casesyssim.Fault{Route: "POST /outbox/{docId}/recipients", Count: 1, Status: http.StatusUnprocessableEntity})
	if err := a.ReportStatus(ctx, report(l, l.Receivers[0], adapters.StateSent, "delivered", at)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the refused report dropped", func() bool { return a.flusherIdle() && pendingDocs(t, a) == 0 })
	if got := recipientStatus(e, docs[0].ID, "gp"); got.Status != casesyssim.RecipientPending {
		t.Errorf("gp = %+v", got)
	}

	// The client's rights in the case system are wrong (403) until an
	// administrator fixes them: retried, not dropped.
	e.sim.InjectFailure(casesyssim.Fault{Route: "POST /outbox/{docId}/recipients", Count: 1, Status: http.StatusForbidden})
	if err := a.ReportStatus(ctx, report(l, l.Receivers[1], adapters.StateWaiting, "consent_missing", at)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the background write to give up", a.flusherIdle)
	if pendingDocs(t, a) != 1 {
		t.Fatal("a report refused for the hub's rights was dropped")
	}
	if err := a.flushStatuses(ctx); err != nil {
		t.Fatal(err)
	}
	if got := recipientStatus(e, docs[0].ID, "parent-1"); got.Status != casesyssim.RecipientWaiting || got.Code != "consent_missing" {
		t.Errorf("parent = %+v", got)
	}
	if pendingDocs(t, a) != 0 {
		t.Error("still pending")
	}
}
