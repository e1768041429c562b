package casesyssim

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"
)

func seedFourRecipients(t *testing.T, h *harness) Document {
	t.Helper()
	c, err := h.sim.SeedCase(Case{PrimaryParty: Person{CPR: "1509819996", Name: "Brita Test Berggren"}})
	if err != nil {
		t.Fatal(err)
	}
	d, err := h.sim.SeedOutboxDocument(c.ID, SeedDocument{Title: "Anbefaling", Text: "Testtekst.", Recipients: OutboxRecipients{
		GP:      &Organisation{Name: "Lægerne Test", GLN: "5790000121526"},
		Parents: []Parent{{Name: "Forælder Et", Email: "et@example.org"}, {Name: "Forælder To", Email: "to@example.org"}},
		Region:  &Organisation{Name: "BUP Test", SOR: "6071000016008"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func (h *harness) report(docID, key, status string, at time.Time, idem string) answer {
	h.t.Helper()
	return h.postJSON("/outbox/"+docID+"/recipients", map[string]any{"key": key, "status": status, "code": "test_" + status, "reason": "Testårsag", "destination": "dest-" + key, "at": at}, idem)
}

func statusOf(t *testing.T, a answer) (string, map[string]string) {
	t.Helper()
	if a.status != 200 {
		t.Fatalf("report: %d %s", a.status, a.body)
	}
	var it OutboxItem
	a.json(t, &it)
	per := map[string]string{}
	for _, r := range it.RecipientStatus {
		per[r.Key] = r.Status
	}
	return it.Status, per
}

func listed(t *testing.T, h *harness, status string) []string {
	t.Helper()
	r := h.do("GET", "/outbox?status="+status, "", nil, "")
	var list struct{ Results []OutboxItem }
	r.json(t, &list)
	var ids []string
	for _, it := range list.Results {
		ids = append(ids, it.DocumentID)
	}
	return ids
}

// TestOutboxStatusFollowsEveryRecipient walks one document through the
// recipients' reports and checks the derived document status at each step.
func TestOutboxStatusFollowsEveryRecipient(t *testing.T) {
	h := newHarness(t, nil)
	d := seedFourRecipients(t, h)
	if d.Outbox.Status != OutboxReady || len(d.Outbox.RecipientStatus) != 4 {
		t.Fatalf("seeded: %+v", d.Outbox)
	}
	keys := []string{}
	for _, r := range d.Outbox.RecipientStatus {
		keys = append(keys, r.Key)
	}
	if !slices.Equal(keys, []string{"gp", "parent-1", "parent-2", "region"}) {
		t.Errorf("keys = %v", keys)
	}
	t0 := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)

	// A report before the accept accepts the document (the hub had it).
	doc, per := statusOf(t, h.report(d.ID, "gp", "sent", t0, "r1"))
	if doc != OutboxWaiting || per["gp"] != "sent" || per["region"] != "pending" {
		t.Errorf("after gp sent: %s %v", doc, per)
	}
	if ids := listed(t, h, "ready"); len(ids) != 0 {
		t.Errorf("still listed as ready: %v", ids)
	}
	if ids := listed(t, h, "waiting"); !slices.Equal(ids, []string{d.ID}) {
		t.Errorf("waiting list = %v", ids)
	}
	if doc, _ := statusOf(t, h.report(d.ID, "parent-1", "failed", t0.Add(time.Second), "r2")); doc != OutboxFailed {
		t.Errorf("a failed recipient: %s", doc)
	}
	// An older report changes nothing.
	if doc, per := statusOf(t, h.report(d.ID, "parent-1", "waiting", t0, "r3")); doc != OutboxFailed || per["parent-1"] != "failed" {
		t.Errorf("older report applied: %s %v", doc, per)
	}
	if doc, _ := statusOf(t, h.report(d.ID, "parent-1", "sent", t0.Add(2*time.Second), "r4")); doc != OutboxWaiting {
		t.Errorf("after the retry succeeded: %s", doc)
	}
	statusOf(t, h.report(d.ID, "parent-2", "not_sent", t0.Add(3*time.Second), "r5"))
	if doc, _ := statusOf(t, h.report(d.ID, "region", "sent", t0.Add(4*time.Second), "r6")); doc != OutboxPartlySent {
		t.Errorf("every recipient settled, one not sent: %s", doc)
	}
	doc, _ = statusOf(t, h.report(d.ID, "parent-2", "sent", t0.Add(5*time.Second), "r7"))
	it, _ := h.sim.OutboxItem(d.ID)
	if doc != OutboxSent || it.SentAt == nil || it.AcceptedAt == nil {
		t.Errorf("all sent: %s %+v", doc, it)
	}
	e := it.RecipientStatus[3]
	if e.Code != "test_sent" || e.Reason != "Testårsag" || e.Destination != "dest-region" || !e.At.Equal(t0.Add(4*time.Second)) || e.Recipient.SOR != "6071000016008" || e.Recipient.Role != "region" {
		t.Errorf("region entry = %+v", e)
	}

	for _, tc := range []struct {
		name   string
		body   map[string]any
		status int
		field  string
	}{
		{"unknown key", map[string]any{"key": "school", "status": "sent", "at": t0}, 422, "key"},
		{"bad status", map[string]any{"key": "gp", "status": "delivered", "at": t0}, 422, "status"},
		{"no time", map[string]any{"key": "gp", "status": "sent"}, 422, "at"},
	} {
		r := h.postJSON("/outbox/"+d.ID+"/recipients", tc.body, "bad-"+tc.name)
		var p Problem
		r.json(t, &p)
		if r.status != tc.status || len(p.Errors) == 0 || p.Errors[0].Field != tc.field {
			t.Errorf("%s: %d %s", tc.name, r.status, r.body)
		}
	}
	if r := h.report("DOK-404", "gp", "sent", t0, "r404"); r.status != 404 {
		t.Errorf("unknown document: %d", r.status)
	}

	// Statuses survive a restart; GET /outbox/{docId} and the admin view agree.
	h.restart()
	h.token = h.fetchToken("")
	r := h.do("GET", "/outbox/"+d.ID, "", nil, "")
	var got OutboxItem
	r.json(t, &got)
	if got.Status != OutboxSent || len(got.RecipientStatus) != 4 || got.RecipientStatus[1].Status != RecipientSent {
		t.Errorf("after restart: %s", r.body)
	}
	g, _ := http.Get(h.base + "/_sim/outbox")
	var all struct{ Results []OutboxItem }
	json.NewDecoder(g.Body).Decode(&all)
	g.Body.Close()
	if len(all.Results) != 1 || all.Results[0].Status != OutboxSent {
		t.Errorf("/_sim/outbox = %+v", all.Results)
	}
}

func TestDeriveOutboxStatus(t *testing.T) {
	now := time.Now()
	mk := func(accepted bool, st ...string) *OutboxState {
		o := &OutboxState{}
		if accepted {
			o.AcceptedAt = &now
		}
		for _, s := range st {
			o.RecipientStatus = append(o.RecipientStatus, RecipientStatus{Status: s})
		}
		return o
	}
	for _, tc := range []struct {
		o    *OutboxState
		want string
	}{
		{mk(false, "sent"), OutboxReady},
		{mk(true), OutboxAccepted},
		{mk(true, "pending", "pending"), OutboxAccepted},
		{mk(true, "sent", "pending"), OutboxWaiting},
		{mk(true, "waiting", "sent"), OutboxWaiting},
		{mk(true, "failed", "waiting", "sent"), OutboxFailed},
		{mk(true, "sent", "sent"), OutboxSent},
		{mk(true, "sent", "not_sent"), OutboxPartlySent},
		{mk(true, "not_sent", "not_sent"), OutboxNotSent},
	} {
		if got := Derive(tc.o); got != tc.want {
			t.Errorf("%+v: %s, want %s", tc.o.RecipientStatus, got, tc.want)
		}
	}
}

// TestOldSentOutboxIsUpgraded: a document an earlier simulator marked
// "sent" as soon as the hub took it is, honestly, only accepted.
func TestOldSentOutboxIsUpgraded(t *testing.T) {
	sent := time.Now().UTC()
	o := &OutboxState{Status: "sent", SentAt: &sent, Recipients: OutboxRecipients{GP: &Organisation{GLN: "5790000121526"}}}
	upgradeOutbox(o)
	if o.Status != OutboxAccepted || o.AcceptedAt == nil || o.SentAt != nil || len(o.RecipientStatus) != 1 || o.Recipients.GP.Key != "gp" {
		t.Errorf("upgraded = %+v", o)
	}
}

func TestSeedOutboxRecipientKeys(t *testing.T) {
	h := newHarness(t, nil)
	c, _ := h.sim.SeedCase(Case{PrimaryParty: Person{CPR: "1509819996"}})
	if _, err := h.sim.SeedOutboxDocument(c.ID, SeedDocument{Title: "t", Recipients: OutboxRecipients{GP: &Organisation{Key: "x"}, Region: &Organisation{Key: "x"}}}); err == nil {
		t.Error("two recipients with one key were accepted")
	}
	r := OutboxRecipients{GP: &Organisation{Name: "Lægerne Test"}}
	d, err := h.sim.SeedOutboxDocument(c.ID, SeedDocument{Title: "t", Recipients: r})
	if err != nil {
		t.Fatal(err)
	}
	if r.GP.Key != "" || d.Outbox.Recipients.GP.Key != "gp" {
		t.Errorf("keys: caller's %q, stored %q", r.GP.Key, d.Outbox.Recipients.GP.Key)
	}
}
