package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/samhub/samhub/internal/httpapi"
	"github.com/samhub/samhub/internal/hubtest"
	"github.com/samhub/samhub/internal/logging"
	"github.com/samhub/samhub/pipeline"
	"github.com/samhub/samhub/pipeline/audit"
	"github.com/samhub/samhub/pipeline/retryq"
)

// apiCall is one request of an audit case, and what the audit log must
// say after it.
type apiCall struct {
	name   string
	token  string // default: the coordinator's
	path   string // the route's path with its ids; {bulk} is filled in when called
	body   any
	header map[string]string
	status int
	// want are the records the call leaves, in order (patterns for
	// target and result); none for a read without personal data or a
	// dry run.
	want []audit.Record
	// refused: the call is refused, and may instead leave records ending
	// with one that says so (a put-back refused by its source).
	refused bool
	// then runs after the call, with its answer.
	then func(t *testing.T, body []byte)
}

// auditedWant is a record of the coordinator's.
func auditedWant(action, target, reason, result string) audit.Record {
	return audit.Record{Actor: "koordinator", Role: httpapi.RoleCoordinator, Action: action, Target: target, Reason: reason, Result: result}
}

// apiFixture is what the audit cases act on.
type apiFixture struct {
	h        *hubtest.Hub
	parked   []retryq.Entry // standalone parked letters, one per case that uses one
	held     pipeline.Hold  // a thread held behind a parked letter
	heldSeq  uint64         // the parked letter waiting behind it
	refs     []string       // referral letter ids, seated in meeting next
	next     string         // the meeting the referrals sit in
	other    string         // a meeting ahead with room
	full     string         // a meeting ahead with no room
	empty    string         // an added meeting that seats nobody
	stored   string         // a letter stored and delivered
	bulkDone string         // a bulk replay that has ended
	env      map[string]string
}

// variant is hubtest.ChildLetter, failing t.
func variant(t *testing.T, c hubtest.Child, n int) []byte {
	t.Helper()
	b, err := hubtest.ChildLetter(c, n)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newAPIFixture(t *testing.T) *apiFixture {
	h := hubtest.Start(t)
	f := &apiFixture{h: h, env: map[string]string{}}
	ctx := context.Background()
	hub := h.App.Hub
	// Three children referred to the council, seated in the next meeting;
	// meetings ahead with room, full, and empty to cancel.
	seats := h.SeatChildren()
	f.refs, f.next, f.other, f.full, f.empty = seats.Refs, seats.Next, seats.Other, seats.Full, seats.Empty
	f.stored = f.refs[0]
	// Parked letters: a thread held behind its first letter, and six
	// letters of their own threads.
	parking := h.ParkWithHold(6)
	f.held, f.heldSeq, f.parked = parking.Held, parking.HeldSeq, parking.Own
	// A bulk replay that has ended, for the routes that show one.
	last := f.parked[len(f.parked)-1]
	f.parked = f.parked[:len(f.parked)-1]
	b, _, err := hub.StartBulkReplay(ctx, pipeline.Actor{Name: "setup", Role: httpapi.RoleCoordinator}, pipeline.NewRequestID(),
		retryq.Filter{Destination: last.Destination, Thread: last.Thread}, "setup")
	if err != nil {
		t.Fatal(err)
	}
	f.bulkDone = b.ID
	h.Eventually("the bulk replay ended", func() bool {
		b, err := hub.BulkReplay(ctx, f.bulkDone)
		return err == nil && b.State != pipeline.BulkRunning
	})
	// A file the MedCom source set aside, to put back.
	h.SetAside("early.xml", variant(t, hubtest.Children[1], 800))
	return f
}

// cases are the audit cases of every API route, keyed by the route as
// httpapi.Routes() lists it. Each reason carries a CPR number the way a
// coordinator might type it; the record must hold it as [CPR].
func (f *apiFixture) cases(t *testing.T) map[string][]apiCall {
	k := f.h.App.Hub.Council()
	n := 0
	reason := func(what string) string {
		n++
		return what + ", barnet " + hubtest.TypedCPRs[n%len(hubtest.TypedCPRs)]
	}
	redacted := func(what string) string { return what + ", barnet [CPR]" }
	p := f.parked
	parkedTarget := func(e retryq.Entry) string {
		return fmt.Sprintf("parked:%d letter:%s destination:%s", e.Seq, e.LetterID, e.Destination)
	}
	child := hubtest.Children[1].CPR
	patient := "patient:" + retryq.PatientToken(child)
	consent := map[string]any{"givenBy": "custody-holder", "form": "written", "scopes": []string{"municipality", "gp"}}
	at := func(id string) string {
		m, ok := k.Meeting(id)
		if !ok {
			t.Fatalf("no meeting %s", id)
		}
		return m.At.UTC().Format(time.RFC3339)
	}
	// A Wednesday: no meeting of the rule falls on it.
	moveTo := time.Date(2099, 5, 6, 9, 0, 0, 0, k.Rule().Loc)
	for moveTo.Weekday() != time.Wednesday {
		moveTo = moveTo.AddDate(0, 0, 1)
	}
	nextAt := at(f.next)
	var bulkKey = pipeline.NewRequestID()
	get := func(path string) []apiCall { return []apiCall{{name: "read", path: path, status: 200}} }
	return map[string][]apiCall{
		"GET /api/v1/whoami":                  get("/api/v1/whoami"),
		"GET /api/v1/stats":                   get("/api/v1/stats"),
		"GET /api/v1/queue":                   get("/api/v1/queue"),
		"GET /api/v1/queue/{seq}":             get(fmt.Sprintf("/api/v1/queue/%d", p[0].Seq)),
		"GET /api/v1/queue/bulk-replays":      get("/api/v1/queue/bulk-replays"),
		"GET /api/v1/queue/bulk-replays/{id}": get("/api/v1/queue/bulk-replays/" + f.bulkDone),
		"GET /api/v1/holds":                   get("/api/v1/holds"),
		"GET /api/v1/letters/{id}/trace":      get("/api/v1/letters/" + pathID(f.stored) + "/trace"),
		"GET /api/v1/audit":                   {{name: "read", token: hubtest.AuditorToken, path: "/api/v1/audit?n=1000", status: 200}},
		"GET /api/v1/rejected":                get("/api/v1/rejected"),
		"GET /api/v1/meetings":                get("/api/v1/meetings"),
		"GET /api/v1/meetings/{id}":           get("/api/v1/meetings/" + f.next),
		"GET /api/v1/referrals":               get("/api/v1/referrals"),
		"GET /api/v1/kpi":                     get("/api/v1/kpi"),

		"POST /api/v1/queue/{seq}/replay": {
			{name: "unknown", path: "/api/v1/queue/999999/replay", body: map[string]any{"reason": "x"}, status: 404, refused: true},
			{name: "held behind its thread", path: fmt.Sprintf("/api/v1/queue/%d/replay", f.heldSeq), body: map[string]any{"reason": "x"}, status: 409, refused: true},
			{name: "dry run", path: fmt.Sprintf("/api/v1/queue/%d/replay", p[0].Seq), body: map[string]any{"reason": "x", "dryRun": true}, status: 200},
			{name: "replay", path: fmt.Sprintf("/api/v1/queue/%d/replay", p[0].Seq), body: map[string]any{"reason": reason("sagen er genåbnet")}, status: 200,
				want: []audit.Record{auditedWant("replay", parkedTarget(p[0]), redacted("sagen er genåbnet"), "ok")}},
		},
		"POST /api/v1/queue/{seq}/discard": {
			{name: "no reason", path: fmt.Sprintf("/api/v1/queue/%d/discard", p[1].Seq), body: map[string]any{}, status: 400, refused: true},
			{name: "unknown", path: "/api/v1/queue/999999/discard", body: map[string]any{"reason": "x"}, status: 404, refused: true},
			{name: "discard", path: fmt.Sprintf("/api/v1/queue/%d/discard", p[1].Seq), body: map[string]any{"reason": reason("sendt på papir")}, status: 200,
				want: []audit.Record{auditedWant("discard", parkedTarget(p[1]), redacted("sendt på papir"), "ok")}},
		},
		"POST /api/v1/queue/replay": {
			{name: "all without a destination", path: "/api/v1/queue/replay", body: map[string]any{"all": true, "reason": "x"}, status: 400, refused: true},
			{name: "dry run", path: "/api/v1/queue/replay", body: map[string]any{"seqs": []uint64{p[2].Seq}, "dryRun": true, "reason": "x"}, status: 200},
			{name: "unknown", path: "/api/v1/queue/replay", body: map[string]any{"seqs": []uint64{999999}, "reason": "x"}, status: 200, refused: true},
			{name: "replay", path: "/api/v1/queue/replay", body: map[string]any{"seqs": []uint64{p[2].Seq}, "reason": reason("kommunen har åbent igen")}, status: 200,
				want: []audit.Record{auditedWant("replay", parkedTarget(p[2]), redacted("kommunen har åbent igen"), "ok")}},
		},
		"POST /api/v1/queue/search": {
			{name: "without a CPR", path: "/api/v1/queue/search", body: map[string]any{"filter": map[string]any{"destination": "casefile"}}, status: 200},
			{name: "CPR without a reason", path: "/api/v1/queue/search", body: map[string]any{"filter": map[string]any{"patient": child}}, status: 400, refused: true},
			{name: "not a CPR", path: "/api/v1/queue/search", body: map[string]any{"filter": map[string]any{"patient": "12345"}, "reason": "x"}, status: 400, refused: true},
			{name: "by CPR", path: "/api/v1/queue/search", body: map[string]any{"filter": map[string]any{"patient": child}, "reason": reason("familien ringede")}, status: 200,
				want: []audit.Record{auditedWant("search-cpr", patient, redacted("familien ringede"), "retry queue")}},
		},
		"POST /api/v1/queue/bulk-replays": {
			{name: "preview", path: "/api/v1/queue/bulk-replays", body: map[string]any{"filter": map[string]any{"destination": "casefile"}, "dryRun": true}, status: 200},
			{name: "preview by CPR", path: "/api/v1/queue/bulk-replays", body: map[string]any{"filter": map[string]any{"patient": child}, "dryRun": true, "reason": reason("forældrene spurgte")}, status: 200,
				want: []audit.Record{auditedWant("search-cpr", patient, redacted("forældrene spurgte"), "retry queue")}},
			{name: "no idempotency key", path: "/api/v1/queue/bulk-replays", body: map[string]any{"filter": map[string]any{"threadToken": p[3].Thread}, "reason": "x"}, status: 400, refused: true},
			{name: "nothing matches", path: "/api/v1/queue/bulk-replays", header: map[string]string{"Idempotency-Key": pipeline.NewRequestID()}, body: map[string]any{"filter": map[string]any{"destination": "nowhere"}, "reason": "x"}, status: 409, refused: true},
			{name: "no reason", path: "/api/v1/queue/bulk-replays", header: map[string]string{"Idempotency-Key": pipeline.NewRequestID()}, body: map[string]any{"filter": map[string]any{"threadToken": p[3].Thread}}, status: 400, refused: true},
			// Audited when it starts and when it ends (docs/architecture.md):
			// the call waits for the end.
			{name: "replay", path: "/api/v1/queue/bulk-replays", header: map[string]string{"Idempotency-Key": bulkKey}, body: map[string]any{"filter": map[string]any{"threadToken": p[3].Thread}, "reason": reason("driftsforstyrrelse")}, status: 202,
				want: []audit.Record{auditedWant("replay-filter", "filter:* count:1 bulk:"+bulkKey, redacted("driftsforstyrrelse"), "started"),
					auditedWant("replay-filter", "filter:* count:1 bulk:"+bulkKey, redacted("driftsforstyrrelse"), "done: replayed 1 *")},
				then: func(t *testing.T, _ []byte) {
					f.h.Eventually("the bulk replay ended", func() bool {
						b, err := f.h.App.Hub.BulkReplay(context.Background(), bulkKey)
						return err == nil && b.State != pipeline.BulkRunning
					})
				}},
			// The same key again answers with that replay and replays nothing.
			{name: "again", path: "/api/v1/queue/bulk-replays", header: map[string]string{"Idempotency-Key": bulkKey}, body: map[string]any{"filter": map[string]any{"threadToken": p[3].Thread}, "reason": "x"}, status: 200},
		},
		"POST /api/v1/holds/{destination}/{thread}/release": {
			{name: "no reason", path: "/api/v1/holds/casefile/" + f.held.Thread + "/release", body: map[string]any{}, status: 400, refused: true},
			{name: "not held", path: "/api/v1/holds/casefile/0000/release", body: map[string]any{"reason": "x"}, status: 404, refused: true},
			{name: "release", path: "/api/v1/holds/casefile/" + f.held.Thread + "/release", body: map[string]any{"reason": reason("brevet står alene")}, status: 200,
				want: []audit.Record{auditedWant("release-thread", fmt.Sprintf("thread:%s destination:casefile waiting-for:%s", f.held.Thread, f.held.WaitsFor), redacted("brevet står alene"), "ok")}},
		},
		"POST /api/v1/letters/{id}/content": {
			{name: "no reason", path: "/api/v1/letters/" + pathID(f.stored) + "/content", body: map[string]any{}, status: 400, refused: true},
			{name: "unknown", path: "/api/v1/letters/no-such-letter/content", body: map[string]any{"reason": "x"}, status: 404, refused: true},
			{name: "show", path: "/api/v1/letters/" + pathID(f.stored) + "/content", body: map[string]any{"reason": reason("lægen spurgte")}, status: 200,
				want: []audit.Record{auditedWant("show-content", "letter:"+f.stored, redacted("lægen spurgte"), "shown")}},
		},
		"POST /api/v1/consents": {
			{name: "not a CPR", path: "/api/v1/consents", body: map[string]any{"patient": "12345", "consent": consent, "reason": "x"}, status: 400, refused: true},
			{name: "no reason", path: "/api/v1/consents", body: map[string]any{"patient": child, "consent": consent}, status: 400, refused: true},
			{name: "unknown scope", path: "/api/v1/consents", body: map[string]any{"patient": child, "consent": map[string]any{"scopes": []string{"everyone"}}, "reason": "x"}, status: 400, refused: true},
			{name: "dated ahead", path: "/api/v1/consents", body: map[string]any{"patient": child, "consent": map[string]any{"givenAt": time.Now().Add(time.Hour), "scopes": []string{"gp"}}, "reason": "x"}, status: 400, refused: true},
			{name: "record", path: "/api/v1/consents", body: map[string]any{"patient": child, "consent": consent, "reason": reason("skriftligt samtykke")}, status: 200,
				want: []audit.Record{auditedWant("consent-record", patient, redacted("skriftligt samtykke"), "recorded")}},
		},
		"POST /api/v1/consents/lookup": {
			{name: "no reason", path: "/api/v1/consents/lookup", body: map[string]any{"patient": child}, status: 400, refused: true},
			{name: "lookup", path: "/api/v1/consents/lookup", body: map[string]any{"patient": child, "reason": reason("forældrene spurgte")}, status: 200,
				want: []audit.Record{auditedWant("consent-read", patient, redacted("forældrene spurgte"), "shown")}},
		},
		"POST /api/v1/consents/revoke": {
			{name: "no reason", path: "/api/v1/consents/revoke", body: map[string]any{"patient": child}, status: 400, refused: true},
			{name: "revoke", path: "/api/v1/consents/revoke", body: map[string]any{"patient": child, "reason": reason("forældrene trak det tilbage")}, status: 200,
				want: []audit.Record{auditedWant("consent-withdraw", patient, redacted("forældrene trak det tilbage"), "recorded")}},
		},
		"POST /api/v1/rejected/{source}/{id}/put-back": {
			{name: "unknown source", path: "/api/v1/rejected/nowhere/early.xml/put-back", body: map[string]any{"reason": "x"}, status: 404, refused: true},
			{name: "unknown file", path: "/api/v1/rejected/medcom/no-such.xml/put-back", body: map[string]any{"reason": "x"}, status: 404, refused: true},
			{name: "no reason", path: "/api/v1/rejected/medcom/early.xml/put-back", body: map[string]any{}, status: 400, refused: true},
			{name: "put back", path: "/api/v1/rejected/medcom/early.xml/put-back", body: map[string]any{"reason": reason("filen er rettet")}, status: 200,
				want: []audit.Record{auditedWant("put-back", "rejected:medcom:early.xml", redacted("filen er rettet"), "ok")}},
		},
		"POST /api/v1/meetings": {
			{name: "no reason", path: "/api/v1/meetings", body: map[string]any{"at": "2099-01-20 10:00"}, status: 400, refused: true},
			{name: "not a time", path: "/api/v1/meetings", body: map[string]any{"at": "tomorrow", "reason": "x"}, status: 400, refused: true},
			{name: "add", path: "/api/v1/meetings", body: map[string]any{"at": "2099-01-20 10:00", "cap": 3, "reason": reason("ekstra møde")}, status: 201,
				want: []audit.Record{auditedWant("meeting-add", "meeting:2099-01-20 at:2099-01-20T09:00:00Z cap:3", redacted("ekstra møde"), "ok")}},
			{name: "same day", path: "/api/v1/meetings", body: map[string]any{"at": "2099-01-20 14:00", "reason": "x"}, status: 409, refused: true},
		},
		"POST /api/v1/meetings/{id}/move": {
			{name: "unknown", path: "/api/v1/meetings/2099-13-40/move", body: map[string]any{"at": "2099-02-01 10:00", "reason": "x"}, status: 404, refused: true},
			{name: "no reason", path: "/api/v1/meetings/" + f.next + "/move", body: map[string]any{"at": "2099-02-01 10:00"}, status: 400, refused: true},
			{name: "onto another meeting's day", path: "/api/v1/meetings/" + f.next + "/move", body: map[string]any{"at": "2099-03-04 14:00", "reason": "x"}, status: 409, refused: true},
			{name: "move", path: "/api/v1/meetings/" + f.next + "/move", body: map[string]any{"at": moveTo.Format("2006-01-02 15:04"), "reason": reason("lokalet er optaget")}, status: 200,
				want: []audit.Record{auditedWant("meeting-move", fmt.Sprintf("meeting:%s from:%s to:%s", f.next, nextAt, moveTo.UTC().Format(time.RFC3339)), redacted("lokalet er optaget"), "ok")}},
		},
		"POST /api/v1/meetings/{id}/cancel": {
			{name: "seats children", path: "/api/v1/meetings/" + f.full + "/cancel", body: map[string]any{"reason": "x"}, status: 409, refused: true},
			{name: "no reason", path: "/api/v1/meetings/" + f.empty + "/cancel", body: map[string]any{}, status: 400, refused: true},
			{name: "cancel", path: "/api/v1/meetings/" + f.empty + "/cancel", body: map[string]any{"reason": reason("sommerferie")}, status: 200,
				want: []audit.Record{auditedWant("meeting-cancel", "meeting:"+f.empty+" at:"+at(f.empty), redacted("sommerferie"), "ok")}},
		},
		"POST /api/v1/meetings/{id}/agenda": {
			{name: "unknown", path: "/api/v1/meetings/2099-13-40/agenda", body: map[string]any{"reason": "x"}, status: 404, refused: true},
			{name: "bad format", path: "/api/v1/meetings/" + f.next + "/agenda", body: map[string]any{"reason": "x", "format": "pdf"}, status: 400, refused: true},
			{name: "export without a reason", path: "/api/v1/meetings/" + f.next + "/agenda", body: map[string]any{"format": "csv"}, status: 400, refused: true},
			{name: "read", path: "/api/v1/meetings/" + f.next + "/agenda", body: map[string]any{"reason": reason("forberedelse")}, status: 200,
				want: []audit.Record{auditedWant("agenda-read", "meeting:"+f.next, redacted("forberedelse"), "shown")}},
			{name: "export", path: "/api/v1/meetings/" + f.next + "/agenda", body: map[string]any{"format": "csv", "reason": reason("dagsorden")}, status: 200,
				want: []audit.Record{auditedWant("agenda-export", "meeting:"+f.next+" format:csv", redacted("dagsorden"), "shown")}},
		},
		"POST /api/v1/referrals/{id}/move": {
			{name: "unknown referral", path: "/api/v1/referrals/no-such-letter/move", body: map[string]any{"meeting": f.other, "reason": "x"}, status: 404, refused: true},
			{name: "unknown meeting", path: "/api/v1/referrals/" + pathID(f.refs[0]) + "/move", body: map[string]any{"meeting": "2099-13-40", "reason": "x"}, status: 404, refused: true},
			{name: "no reason", path: "/api/v1/referrals/" + pathID(f.refs[0]) + "/move", body: map[string]any{"meeting": f.other}, status: 400, refused: true},
			{name: "into a full meeting", path: "/api/v1/referrals/" + pathID(f.refs[0]) + "/move", body: map[string]any{"meeting": f.full, "reason": "x"}, status: 409, refused: true},
			{name: "move", path: "/api/v1/referrals/" + pathID(f.refs[0]) + "/move", body: map[string]any{"meeting": f.other, "reason": reason("sagen er ikke klar")}, status: 200,
				want: []audit.Record{auditedWant("referral-move", fmt.Sprintf("referral:%s from:%s to:%s", f.refs[0], f.next, f.other), redacted("sagen er ikke klar"), "ok")}},
		},
		"POST /api/v1/referrals/{id}/withdraw": {
			{name: "unknown", path: "/api/v1/referrals/no-such-letter/withdraw", body: map[string]any{"reason": "x"}, status: 404, refused: true},
			{name: "no reason", path: "/api/v1/referrals/" + pathID(f.refs[1]) + "/withdraw", body: map[string]any{}, status: 400, refused: true},
			{name: "withdraw", path: "/api/v1/referrals/" + pathID(f.refs[1]) + "/withdraw", body: map[string]any{"reason": reason("henvist ved en fejl")}, status: 200,
				want: []audit.Record{auditedWant("referral-withdraw", fmt.Sprintf("referral:%s meeting:%s", f.refs[1], f.next), redacted("henvist ved en fejl"), "ok")}},
		},
		"POST /api/v1/referrals/{id}/reinstate": {
			{name: "no reason", path: "/api/v1/referrals/" + pathID(f.refs[1]) + "/reinstate", body: map[string]any{}, status: 400, refused: true},
			{name: "into a full meeting", path: "/api/v1/referrals/" + pathID(f.refs[1]) + "/reinstate", body: map[string]any{"meeting": f.full, "reason": "x"}, status: 409, refused: true},
			{name: "reinstate", path: "/api/v1/referrals/" + pathID(f.refs[1]) + "/reinstate", body: map[string]any{"reason": reason("trukket tilbage ved en fejl")}, status: 200,
				want: []audit.Record{auditedWant("referral-reinstate", fmt.Sprintf("referral:%s meeting:%s", f.refs[1], f.next), redacted("trukket tilbage ved en fejl"), "ok")}},
		},
	}
}

// TestEveryRouteIsAudited walks the API's own route table: every route
// needs its case here, so a route added without one fails. Each
// state-changing route and each read of personal data is driven with a
// valid call that must leave exactly the records its case names (who,
// role, action, target, reason with any CPR masked, result); refused
// calls (bad input, not found, conflict, wrong role) must leave none, or
// end with one saying refused. A read that leaves no record must not
// answer with personal data; no record may hold a CPR number or the
// letter's text.
func TestEveryRouteIsAudited(t *testing.T) {
	f := newAPIFixture(t)
	cases := f.cases(t)
	ctx := context.Background()
	tail := func() []audit.Record {
		recs, err := f.h.App.Hub.Audit().Tail(ctx, 100000)
		if err != nil {
			t.Fatal(err)
		}
		return recs
	}
	routes := httpapi.Routes()
	for rt := range cases {
		if !strings.Contains(strings.Join(routes, "\n")+"\n", rt+"\n") {
			t.Errorf("the audit cases name %s, which httpapi.Routes() does not list", rt)
		}
	}
	for _, rt := range routes {
		calls, ok := cases[rt]
		if !ok {
			t.Errorf("route %s has no audit case: say what it records (or that it reads nothing personal)", rt)
			continue
		}
		method, _, _ := strings.Cut(rt, " ")
		audited := false
		for _, c := range calls {
			audited = audited || len(c.want) > 0
		}
		switch {
		case method == http.MethodGet && audited:
			t.Errorf("%s: a GET route that audits; personal data is read by POST, with the reason in the body", rt)
		case method != http.MethodGet && !audited:
			t.Errorf("%s: no call of its case is audited; every state-changing route and every read of personal data is", rt)
		}
		if method != http.MethodGet {
			// The valid call of the case, by a role that may not make it.
			wrong := calls[len(calls)-1]
			wrong.name, wrong.token, wrong.status, wrong.want, wrong.refused, wrong.then = "wrong role", hubtest.AuditorToken, http.StatusForbidden, nil, true, nil
			if rt == "POST /api/v1/queue/bulk-replays" {
				wrong.header = map[string]string{"Idempotency-Key": pipeline.NewRequestID()}
			}
			calls = append([]apiCall{wrong}, calls...)
		}
		for _, c := range calls {
			t.Run(rt+"/"+c.name, func(t *testing.T) {
				before := len(tail())
				tok := c.token
				if tok == "" {
					tok = hubtest.CoordinatorToken
				}
				st, body := callWith(t, f.h, tok, method, c.path, c.body, c.header)
				if st != c.status {
					t.Fatalf("status %d, want %d: %s", st, c.status, body)
				}
				if c.then != nil {
					c.then(t, body)
				}
				got := tail()[before:]
				switch {
				case len(c.want) > 0:
					if len(got) != len(c.want) {
						t.Fatalf("%d audit records, want %d: %+v", len(got), len(c.want), got)
					}
					for i, w := range c.want {
						r := got[i]
						if r.Actor != w.Actor || r.Role != w.Role || r.Action != w.Action || !hubtest.Glob(w.Target, r.Target) || r.Reason != w.Reason || !hubtest.Glob(w.Result, r.Result) || r.Result == "" || r.At.IsZero() || r.Remote == "" {
							t.Errorf("record %+v\nwant     %+v", r, w)
						}
					}
				case c.refused:
					if len(got) > 0 && got[len(got)-1].Result != "refused" {
						t.Errorf("a refused call left records that do not say it was refused: %+v", got)
					}
				default:
					if len(got) > 0 {
						t.Errorf("a call that reads nothing personal left audit records: %+v", got)
					}
					if st < 300 {
						if p := hubtest.PersonalData(string(body)); len(p) > 0 {
							t.Errorf("an unaudited answer holds personal data %q:\n%.2000s", p, body)
						}
					}
				}
			})
		}
	}
	for _, r := range tail() {
		if p := hubtest.PersonalData(r.Actor + " " + r.Target + " " + r.Reason + " " + r.Result + " " + r.Remote); len(p) > 0 {
			t.Errorf("audit record holds personal data %q: %+v", p, r)
		}
	}
}

// The reasons' CPR forms are each one the hub masks, or the test would
// prove nothing about them.
func TestTypedCPRsAreCPRs(t *testing.T) {
	for _, c := range hubtest.TypedCPRs {
		if !logging.ContainsCPR(c) || len(hubtest.PersonalData(c)) == 0 {
			t.Errorf("%q is not taken for a CPR number", c)
		}
	}
}
