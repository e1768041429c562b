package httpapi_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/samhub/samhub/internal/httpapi"
	"github.com/samhub/samhub/internal/hubtest"
	"github.com/samhub/samhub/internal/logging"
	"github.com/samhub/samhub/pipeline"
	"github.com/samhub/samhub/pipeline/audit"
	"github.com/samhub/samhub/pipeline/council"
	"github.com/samhub/samhub/pipeline/retryq"
)

// The fictitious test children the fixtures name, and a line of the
// fixture letter's text: none of them may reach the audit log.
var (
	testChildren = [][3]string{{"2509479989", "Elmer", "Bruno Test"}, {"1509819996", "Berggren", "Brita Test"}, {"2512489996", "Berggren", "Nancy Ann Test"}}
	letterText   = "Drengen går i 3. klasse"
	// replacementCPR is a replacement CPR number a coordinator types.
	replacementCPR = "0703921VJ4"
)

// typedCPRs are the forms of a CPR number the reasons of the audit tests
// carry, one after another: each must be kept out of the log.
var typedCPRs = []string{"2509479989", "250947-9989", "250947 9989", replacementCPR}

// personal reports what of the test children's data s holds: a CPR
// number in any of the ways it is written, a surname, the letter's text.
// (Known values, not a pattern: a hex token may hold ten digits.)
func personal(s string) []string {
	var found []string
	for _, c := range testChildren {
		for _, v := range []string{c[0], c[0][:6] + "-" + c[0][6:], c[0][:6] + " " + c[0][6:], c[1]} {
			if strings.Contains(s, v) {
				found = append(found, v)
			}
		}
	}
	if strings.Contains(strings.ToUpper(s), replacementCPR) {
		found = append(found, replacementCPR)
	}
	if strings.Contains(s, letterText) {
		found = append(found, letterText)
	}
	return found
}

// glob matches s against a pattern whose * stands for any text (a target
// with an id the hub makes).
func glob(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for i, p := range parts[1:] {
		if i == len(parts)-2 {
			return strings.HasSuffix(s, p)
		}
		j := strings.Index(s, p)
		if j < 0 {
			return false
		}
		s = s[j+len(p):]
	}
	return s == ""
}

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

// variant is the fixture letter for child c as letter n of its own thread.
func variant(t *testing.T, c [3]string, n int) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("../../testdata/medcom/samhub", "letter-utf8.xml"))
	if err != nil {
		t.Fatal(err)
	}
	d := bytes.Replace(data, []byte("<CivilRegistrationNumber>2509479989<"), []byte("<CivilRegistrationNumber>"+c[0]+"<"), 1)
	d = bytes.Replace(d, []byte("<PersonSurnameName>Elmer<"), []byte("<PersonSurnameName>"+c[1]+"<"), 1)
	d = bytes.Replace(d, []byte("<PersonGivenName>Bruno Test<"), []byte("<PersonGivenName>"+c[2]+"<"), 1)
	d = bytes.Replace(d, []byte("LTR00000000001"), []byte(fmt.Sprintf("LTR%011d", n)), 1)
	d = bytes.Replace(d, []byte("ENV00000000001"), []byte(fmt.Sprintf("ENV%011d", n)), 1)
	return bytes.Replace(d, []byte("0f6c1e2d3a4b5c6d7e8f90a1b2c3d4e5"), []byte(fmt.Sprintf("%032x", n)), 1)
}

func letterID(n int) string { return fmt.Sprintf("5790000000005#LTR%011d", n) }

func newAPIFixture(t *testing.T) *apiFixture {
	h := hubtest.Start(t)
	f := &apiFixture{h: h, env: map[string]string{}}
	ctx := context.Background()
	hub := h.App.Hub
	k := hub.Council()
	// Three children referred to the council, seated in the next meeting.
	for i, c := range testChildren {
		h.Drop(fmt.Sprintf("ref-%d.xml", i), variant(t, c, 900+i))
		f.refs = append(f.refs, letterID(900+i))
	}
	h.Eventually("the referrals seated", func() bool {
		n := 0
		for _, r := range k.Referrals(council.ReferralFilter{}) {
			if r.Meeting != "" {
				n++
				f.next = r.Meeting
			}
		}
		return n == len(testChildren)
	})
	h.Eventually("the referrals filed", func() bool { return len(h.CaseSys.Documents()) >= len(testChildren) })
	f.stored = f.refs[0]
	// Meetings ahead: one with room, one full, one empty to cancel.
	setup := council.Actor{Name: "setup", Role: httpapi.RoleCoordinator}
	for _, m := range k.Meetings(time.Now(), time.Now().AddDate(1, 0, 0)) {
		if m.ID != f.next && !m.Past && m.Cancelled == nil && m.Room > 0 {
			f.other = m.ID
			break
		}
	}
	full, err := k.AddMeeting(ctx, setup, "2099-03-04 10:00", 1, "setup")
	if err != nil {
		t.Fatal(err)
	}
	f.full = full.ID
	if _, err := k.MoveReferral(ctx, setup, f.refs[2], f.full, "setup"); err != nil {
		t.Fatal(err)
	}
	empty, err := k.AddMeeting(ctx, setup, "2099-03-11 10:00", 0, "setup")
	if err != nil {
		t.Fatal(err)
	}
	f.empty = empty.ID
	if f.other == "" || f.next == "" {
		t.Fatalf("meetings: next %q, other %q", f.next, f.other)
	}

	// Parked letters: the case system refuses everything meanwhile.
	h.CaseSys.FailNext(100000, http.StatusBadRequest, 0)
	parked := func(n int) []retryq.Entry {
		var es []retryq.Entry
		h.Eventually(fmt.Sprintf("%d letters parked", n), func() bool {
			es, _ = hub.Queue().List(ctx, retryq.Filter{})
			return len(es) == n
		})
		return es
	}
	// A thread held behind its first letter: the fixture letter, then a
	// letter of its thread.
	for i, name := range []string{"letter-utf8.xml", "letter-iso-8859-1.xml"} {
		data, err := os.ReadFile(filepath.Join("../../testdata/medcom/samhub", name))
		if err != nil {
			t.Fatal(err)
		}
		h.Drop(name, data)
		parked(i + 1)
	}
	h.Eventually("a thread held", func() bool {
		hs := hub.Holds()
		if len(hs) == 1 {
			f.held = hs[0]
		}
		return len(hs) == 1
	})
	for _, e := range parked(2) {
		if e.LetterID != f.held.WaitsFor {
			f.heldSeq = e.Seq
		}
	}
	// Six letters of their own threads.
	for i := range 6 {
		h.Drop(fmt.Sprintf("own-%d.xml", i), variant(t, testChildren[i%3], 700+i))
	}
	for _, e := range parked(8) {
		if strings.Contains(e.LetterID, "LTR000000007") {
			f.parked = append(f.parked, e)
		}
	}
	h.CaseSys.ResetFaults()
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
	errDir := filepath.Join(h.MedComDir, "error")
	if err := os.WriteFile(filepath.Join(errDir, "early.xml"), variant(t, testChildren[1], 800), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(errDir, "early.xml.error.txt"), []byte("rejected: xml: no root element: input is not XML\n\ncode: syntax\nacknowledgement sent: no\n"), 0o600); err != nil {
		t.Fatal(err)
	}
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
		return what + ", barnet " + typedCPRs[n%len(typedCPRs)]
	}
	redacted := func(what string) string { return what + ", barnet [CPR]" }
	p := f.parked
	parkedTarget := func(e retryq.Entry) string {
		return fmt.Sprintf("parked:%d letter:%s destination:%s", e.Seq, e.LetterID, e.Destination)
	}
	child := testChildren[1][0]
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
						if r.Actor != w.Actor || r.Role != w.Role || r.Action != w.Action || !glob(w.Target, r.Target) || r.Reason != w.Reason || !glob(w.Result, r.Result) || r.Result == "" || r.At.IsZero() || r.Remote == "" {
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
						if p := personal(string(body)); len(p) > 0 {
							t.Errorf("an unaudited answer holds personal data %q:\n%.2000s", p, body)
						}
					}
				}
			})
		}
	}
	for _, r := range tail() {
		if p := personal(r.Actor + " " + r.Target + " " + r.Reason + " " + r.Result + " " + r.Remote); len(p) > 0 {
			t.Errorf("audit record holds personal data %q: %+v", p, r)
		}
	}
}

// The reasons' CPR forms are each one the hub masks, or the test would
// prove nothing about them.
func TestTypedCPRsAreCPRs(t *testing.T) {
	for _, c := range typedCPRs {
		if !logging.ContainsCPR(c) || len(personal(c)) == 0 {
			t.Errorf("%q is not taken for a CPR number", c)
		}
	}
}
