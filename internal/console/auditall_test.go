package console_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/samhub/samhub/internal/console"
	"github.com/samhub/samhub/internal/hubtest"
	"github.com/samhub/samhub/internal/logging"
	"github.com/samhub/samhub/pipeline"
	"github.com/samhub/samhub/pipeline/audit"
	"github.com/samhub/samhub/pipeline/retryq"
)

// childLetter is hubtest.ChildLetter, failing t.
func childLetter(t *testing.T, c hubtest.Child, n int) []byte {
	t.Helper()
	b, err := hubtest.ChildLetter(c, n)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// formCall is one request of a console audit case.
type formCall struct {
	name string
	// do picks the client and the form (a GET when nil form); the default
	// client is the coordinator's, with its CSRF token added.
	do     func(t *testing.T) (*http.Client, url.Values)
	path   string
	status int
	want   []audit.Record // the records it leaves, in order; none: it reads nothing personal
	// refused: it may instead leave records ending with one that says so.
	refused bool
	then    func(t *testing.T)
}

func coordinatorWant(action, target, reason, result string) audit.Record {
	return audit.Record{Actor: "koordinator", Role: "coordinator", Action: action, Target: target, Reason: reason, Result: result}
}

// TestEveryFormIsAudited walks the console's own routes: each needs its
// case here, so a form added without one fails. Every form post that
// changes something or shows personal data must leave exactly the
// records its case names (who, role, action, target, reason with a typed
// CPR masked, result), with Danish words for its action and result on the
// auditor's page; refusals (bad input, not found, conflict, wrong role)
// leave none or end with one saying refused or denied; a page that leaves
// no record shows no personal data, and no record holds any.
func TestEveryFormIsAudited(t *testing.T) {
	h := startHub(t)
	ctx := context.Background()
	hub := h.App.Hub
	k := hub.Council()

	// Three children referred, seated in the next meeting; meetings ahead
	// with room, full, and empty. Parked letters: a thread held behind its
	// first letter, and three letters of their own threads. A file set
	// aside, to put back.
	seats := h.SeatChildren()
	refs, next, other := seats.Refs, seats.Next, seats.Other
	parking := h.ParkWithHold(3)
	held, own := parking.Held, parking.Own
	h.SetAside("early.xml", childLetter(t, hubtest.Children[1], 800))

	clients, csrfs := map[string]*http.Client{}, map[string]string{}
	for role, u := range map[string][2]string{"coordinator": {"koordinator", hubtest.CoordinatorPassword}, "operations": {"drift", hubtest.OperationsPassword}, "auditor": {"revisor", hubtest.AuditorPassword}} {
		clients[role], csrfs[role] = login(t, h, u[0], u[1])
	}
	as := func(role string, v url.Values) func(*testing.T) (*http.Client, url.Values) {
		return func(*testing.T) (*http.Client, url.Values) {
			if v != nil {
				v.Set("csrf", csrfs[role])
			}
			return clients[role], v
		}
	}
	coord := func(kv ...string) func(*testing.T) (*http.Client, url.Values) {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		return as("coordinator", v)
	}
	n := 0
	reason := func(what string) string {
		n++
		return what + ", barnet " + hubtest.TypedCPRs[n%len(hubtest.TypedCPRs)]
	}
	redacted := func(what string) string { return what + ", barnet [CPR]" }
	parkedTarget := func(e retryq.Entry) string {
		return fmt.Sprintf("parked:%d letter:%s destination:%s", e.Seq, e.LetterID, e.Destination)
	}
	at := func(id string) string {
		m, _ := k.Meeting(id)
		return m.At.UTC().Format(time.RFC3339)
	}
	moveTo := time.Date(2099, 5, 6, 9, 0, 0, 0, k.Rule().Loc)
	for moveTo.Weekday() != time.Wednesday {
		moveTo = moveTo.AddDate(0, 0, 1)
	}
	nextAt := at(next)
	child := hubtest.Children[1].CPR
	patient := "patient:" + retryq.PatientToken(child)
	bulkKey := pipeline.NewRequestID()
	page := func(role, path string, status int) []formCall {
		return []formCall{{name: "page", do: as(role, nil), path: path, status: status}}
	}
	loginForm := func(user, pw string) func(*testing.T) (*http.Client, url.Values) {
		return func(t *testing.T) (*http.Client, url.Values) {
			c := client(t)
			_, p := get(t, c, h.BaseURL+"/console/login")
			m := tokenRe.FindStringSubmatch(p)
			if m == nil {
				t.Fatal("login page has no token field")
			}
			return c, url.Values{"token": {m[1]}, "user": {user}, "password": {pw}}
		}
	}
	meeting := "/console/meetings/" + next
	cases := map[string][]formCall{
		"GET /console/static/":            {{name: "page", do: func(t *testing.T) (*http.Client, url.Values) { return client(t), nil }, path: "/console/static/console.css", status: 200}},
		"GET /console/login":              {{name: "page", do: func(t *testing.T) (*http.Client, url.Values) { return client(t), nil }, path: "/console/login", status: 200}},
		"GET /console/{$}":                page("coordinator", "/console/", http.StatusSeeOther),
		"GET /console/overview":           page("coordinator", "/console/overview", 200),
		"GET /console/queue":              page("coordinator", "/console/queue", 200),
		"GET /console/queue/replay":       page("coordinator", "/console/queue/replay", 200),
		"GET /console/queue/replays/{id}": page("coordinator", "/console/queue/replays/no-such-replay", 404),
		"GET /console/queue/release":      page("coordinator", "/console/queue/release?"+url.Values{"destination": {held.Destination}, "thread": {held.Thread}}.Encode(), 200),
		"GET /console/letters/{id}":       page("coordinator", "/console/letters/"+url.PathEscape(refs[0]), 200),
		"GET /console/search":             page("coordinator", "/console/search?by=thread&q="+url.QueryEscape(refs[0]), 200),
		"GET /console/consents":           page("coordinator", "/console/consents", 200),
		"GET /console/audit":              page("auditor", "/console/audit", 200),
		"GET /console/meetings":           page("coordinator", "/console/meetings", 200),
		"GET /console/meetings/{id}":      page("coordinator", meeting, 200),
		"GET /console/kpi":                page("coordinator", "/console/kpi", 200),
		"GET /console/rejected":           page("coordinator", "/console/rejected", 200),
		"/console/":                       page("coordinator", "/console/no-such-page", 404),

		"POST /console/login": {
			{name: "wrong password", do: loginForm("koordinator", "forkert"), path: "/console/login", status: http.StatusUnauthorized, refused: true},
			{name: "login", do: loginForm("koordinator", hubtest.CoordinatorPassword), path: "/console/login", status: http.StatusSeeOther,
				want: []audit.Record{coordinatorWant("login", "console", "console login", "ok")}},
		},
		"POST /console/logout": {
			{name: "logout", do: func(t *testing.T) (*http.Client, url.Values) {
				c, csrf := login(t, h, "koordinator", hubtest.CoordinatorPassword)
				return c, url.Values{"csrf": {csrf}}
			}, path: "/console/logout", status: http.StatusSeeOther, want: []audit.Record{coordinatorWant("logout", "console", "", "ok")}},
		},
		"POST /console/queue": {
			{name: "no reason", do: coord("seq", strconv.FormatUint(own[0].Seq, 10), "action", "replay"), path: "/console/queue", status: http.StatusSeeOther, refused: true},
			{name: "unknown", do: coord("seq", "999999", "action", "discard", "reason", "x"), path: "/console/queue", status: http.StatusSeeOther, refused: true},
			{name: "held behind its thread", do: coord("seq", strconv.FormatUint(parkedSeqOtherThan(t, h, held), 10), "action", "replay", "reason", "x"), path: "/console/queue", status: http.StatusSeeOther, refused: true},
			{name: "replay", do: coord("seq", strconv.FormatUint(own[0].Seq, 10), "action", "replay", "reason", reason("sagen er genåbnet")), path: "/console/queue", status: http.StatusSeeOther,
				want: []audit.Record{coordinatorWant("replay", parkedTarget(own[0]), redacted("sagen er genåbnet"), "ok")}},
			{name: "discard", do: coord("seq", strconv.FormatUint(own[1].Seq, 10), "action", "discard", "reason", reason("sendt på papir")), path: "/console/queue", status: http.StatusSeeOther,
				want: []audit.Record{coordinatorWant("discard", parkedTarget(own[1]), redacted("sendt på papir"), "ok")}},
		},
		"POST /console/queue/replay": {
			{name: "no reason", do: coord("threadToken", own[2].Thread, "upTo", strconv.FormatUint(own[2].Seq, 10), "request", pipeline.NewRequestID()), path: "/console/queue/replay", status: http.StatusBadRequest, refused: true},
			{name: "nothing matches", do: coord("destination", "nowhere", "upTo", strconv.FormatUint(own[2].Seq, 10), "request", pipeline.NewRequestID(), "reason", "x"), path: "/console/queue/replay", status: http.StatusSeeOther, refused: true},
			// Audited when it starts and when it ends: the call waits for the end.
			{name: "replay", do: coord("threadToken", own[2].Thread, "upTo", strconv.FormatUint(own[2].Seq, 10), "request", bulkKey, "reason", reason("driftsforstyrrelse")), path: "/console/queue/replay", status: http.StatusSeeOther,
				want: []audit.Record{coordinatorWant("replay-filter", "filter:* count:1 bulk:"+bulkKey, redacted("driftsforstyrrelse"), "started"),
					coordinatorWant("replay-filter", "filter:* count:1 bulk:"+bulkKey, redacted("driftsforstyrrelse"), "done: replayed 1 *")},
				then: func(t *testing.T) {
					h.Eventually("the bulk replay ended", func() bool {
						b, err := hub.BulkReplay(ctx, bulkKey)
						return err == nil && b.State != pipeline.BulkRunning
					})
				}},
		},
		"POST /console/queue/release": {
			{name: "no reason", do: coord("destination", held.Destination, "thread", held.Thread), path: "/console/queue/release", status: http.StatusBadRequest, refused: true},
			{name: "not held", do: coord("destination", held.Destination, "thread", "0000", "reason", "x"), path: "/console/queue/release", status: http.StatusSeeOther, refused: true},
			{name: "release", do: coord("destination", held.Destination, "thread", held.Thread, "reason", reason("brevet står alene")), path: "/console/queue/release", status: http.StatusSeeOther,
				want: []audit.Record{coordinatorWant("release-thread", fmt.Sprintf("thread:%s destination:%s waiting-for:%s", held.Thread, held.Destination, held.WaitsFor), redacted("brevet står alene"), "ok")}},
		},
		"POST /console/letters/{id}/content": {
			{name: "no reason", do: coord(), path: "/console/letters/" + url.PathEscape(refs[0]) + "/content", status: http.StatusBadRequest, refused: true},
			{name: "unknown", do: coord("reason", "x"), path: "/console/letters/no-such-letter/content", status: http.StatusNotFound, refused: true},
			{name: "show", do: coord("reason", reason("lægen spurgte")), path: "/console/letters/" + url.PathEscape(refs[0]) + "/content", status: 200,
				want: []audit.Record{coordinatorWant("show-content", "letter:"+refs[0], redacted("lægen spurgte"), "shown")}},
		},
		"POST /console/search/cpr": {
			{name: "not a CPR", do: coord("cpr", "12345", "reason", "x"), path: "/console/search/cpr", status: http.StatusBadRequest, refused: true},
			{name: "no reason", do: coord("cpr", child), path: "/console/search/cpr", status: http.StatusBadRequest, refused: true},
			{name: "search", do: coord("cpr", child, "reason", reason("familien ringede")), path: "/console/search/cpr", status: 200,
				want: []audit.Record{coordinatorWant("search-cpr", patient, redacted("familien ringede"), "searched")}},
		},
		"POST /console/consents": {
			{name: "not a CPR", do: coord("patient", "12345", "reason", "x", "scope", "gp"), path: "/console/consents", status: http.StatusBadRequest, refused: true},
			{name: "no reason", do: coord("patient", child, "scope", "gp"), path: "/console/consents", status: http.StatusBadRequest, refused: true},
			{name: "unknown scope", do: coord("patient", child, "reason", "x", "scope", "everyone"), path: "/console/consents", status: http.StatusBadRequest, refused: true},
			{name: "record", do: coord("patient", child, "reason", reason("skriftligt samtykke"), "scope", "gp", "scope", "municipality"), path: "/console/consents", status: http.StatusSeeOther,
				want: []audit.Record{coordinatorWant("consent-record", patient, redacted("skriftligt samtykke"), "recorded")}},
			{name: "withdraw", do: coord("patient", child, "reason", reason("forældrene trak det tilbage"), "withdraw", "on"), path: "/console/consents", status: http.StatusSeeOther,
				want: []audit.Record{coordinatorWant("consent-withdraw", patient, redacted("forældrene trak det tilbage"), "recorded")}},
		},
		"POST /console/meetings": {
			{name: "no reason", do: coord("at", "2099-01-20 10:00"), path: "/console/meetings", status: http.StatusBadRequest, refused: true},
			{name: "not a time", do: coord("at", "tomorrow", "reason", "x"), path: "/console/meetings", status: http.StatusBadRequest, refused: true},
			{name: "add", do: coord("at", "2099-01-20 10:00", "cap", "3", "reason", reason("ekstra møde")), path: "/console/meetings", status: http.StatusSeeOther,
				want: []audit.Record{coordinatorWant("meeting-add", "meeting:2099-01-20 at:2099-01-20T09:00:00Z cap:3", redacted("ekstra møde"), "ok")}},
			{name: "same day", do: coord("at", "2099-01-20 14:00", "reason", "x"), path: "/console/meetings", status: http.StatusBadRequest, refused: true},
		},
		"POST /console/meetings/{id}/move": {
			{name: "unknown", do: coord("at", "2099-02-01 10:00", "reason", "x"), path: "/console/meetings/2099-13-40/move", status: http.StatusNotFound, refused: true},
			{name: "no reason", do: coord("at", "2099-02-01 10:00"), path: meeting + "/move", status: http.StatusBadRequest, refused: true},
			{name: "onto another meeting's day", do: coord("at", "2099-03-04 14:00", "reason", "x"), path: meeting + "/move", status: http.StatusBadRequest, refused: true},
			{name: "move", do: coord("at", moveTo.Format("2006-01-02 15:04"), "reason", reason("lokalet er optaget")), path: meeting + "/move", status: http.StatusSeeOther,
				want: []audit.Record{coordinatorWant("meeting-move", fmt.Sprintf("meeting:%s from:%s to:%s", next, nextAt, moveTo.UTC().Format(time.RFC3339)), redacted("lokalet er optaget"), "ok")}},
		},
		"POST /console/meetings/{id}/seat": {
			{name: "unknown referral", do: coord("letter", "no-such-letter", "to", other, "reason", "x"), path: meeting + "/seat", status: http.StatusBadRequest, refused: true},
			{name: "no reason", do: coord("letter", refs[0], "to", other), path: meeting + "/seat", status: http.StatusBadRequest, refused: true},
			{name: "into a full meeting", do: coord("letter", refs[0], "to", seats.Full, "reason", "x"), path: meeting + "/seat", status: http.StatusBadRequest, refused: true},
			{name: "move", do: coord("letter", refs[0], "to", other, "reason", reason("sagen er ikke klar")), path: meeting + "/seat", status: http.StatusSeeOther,
				want: []audit.Record{coordinatorWant("referral-move", fmt.Sprintf("referral:%s from:%s to:%s", refs[0], next, other), redacted("sagen er ikke klar"), "ok")}},
		},
		"POST /console/meetings/{id}/cancel": {
			{name: "seats children", do: coord("reason", "x"), path: "/console/meetings/" + seats.Full + "/cancel", status: http.StatusBadRequest, refused: true},
			{name: "no reason", do: coord(), path: "/console/meetings/" + seats.Empty + "/cancel", status: http.StatusBadRequest, refused: true},
			{name: "cancel", do: coord("reason", reason("sommerferie")), path: "/console/meetings/" + seats.Empty + "/cancel", status: http.StatusSeeOther,
				want: []audit.Record{coordinatorWant("meeting-cancel", "meeting:"+seats.Empty+" at:"+at(seats.Empty), redacted("sommerferie"), "ok")}},
		},
		"POST /console/meetings/{id}/withdraw": {
			{name: "unknown", do: coord("letter", "no-such-letter", "reason", "x"), path: meeting + "/withdraw", status: http.StatusBadRequest, refused: true},
			{name: "no reason", do: coord("letter", refs[1]), path: meeting + "/withdraw", status: http.StatusBadRequest, refused: true},
			{name: "withdraw", do: coord("letter", refs[1], "reason", reason("henvist ved en fejl")), path: meeting + "/withdraw", status: http.StatusSeeOther,
				want: []audit.Record{coordinatorWant("referral-withdraw", fmt.Sprintf("referral:%s meeting:%s", refs[1], next), redacted("henvist ved en fejl"), "ok")}},
		},
		"POST /console/meetings/{id}/reinstate": {
			{name: "no reason", do: coord("letter", refs[1]), path: meeting + "/reinstate", status: http.StatusBadRequest, refused: true},
			{name: "into a full meeting", do: coord("letter", refs[1], "to", seats.Full, "reason", "x"), path: meeting + "/reinstate", status: http.StatusBadRequest, refused: true},
			{name: "reinstate", do: coord("letter", refs[1], "reason", reason("trukket tilbage ved en fejl")), path: meeting + "/reinstate", status: http.StatusSeeOther,
				want: []audit.Record{coordinatorWant("referral-reinstate", fmt.Sprintf("referral:%s meeting:%s", refs[1], next), redacted("trukket tilbage ved en fejl"), "ok")}},
		},
		"POST /console/meetings/{id}/agenda": {
			{name: "unknown", do: coord("format", "print", "reason", "x"), path: "/console/meetings/2099-13-40/agenda", status: http.StatusNotFound, refused: true},
			{name: "bad format", do: coord("format", "docx", "reason", "x"), path: meeting + "/agenda", status: http.StatusBadRequest, refused: true},
			{name: "no reason", do: coord("format", "print"), path: meeting + "/agenda", status: http.StatusBadRequest, refused: true},
			{name: "print", do: coord("format", "print", "reason", reason("forberedelse")), path: meeting + "/agenda", status: 200,
				want: []audit.Record{coordinatorWant("agenda-export", "meeting:"+next+" format:print", redacted("forberedelse"), "shown")}},
			{name: "pdf", do: coord("format", "pdf", "reason", reason("dagsorden")), path: meeting + "/agenda", status: 200,
				want: []audit.Record{coordinatorWant("agenda-export", "meeting:"+next+" format:pdf", redacted("dagsorden"), "shown")}},
			{name: "csv", do: coord("format", "csv", "reason", reason("regneark")), path: meeting + "/agenda", status: 200,
				want: []audit.Record{coordinatorWant("agenda-export", "meeting:"+next+" format:csv", redacted("regneark"), "shown")}},
		},
		"POST /console/rejected": {
			{name: "no reason", do: coord("file", "medcom/early.xml"), path: "/console/rejected", status: http.StatusSeeOther, refused: true},
			{name: "unknown file", do: coord("file", "medcom/no-such.xml", "reason", "x"), path: "/console/rejected", status: http.StatusSeeOther, refused: true},
			{name: "put back", do: coord("file", "medcom/early.xml", "reason", reason("filen er rettet")), path: "/console/rejected", status: http.StatusSeeOther,
				want: []audit.Record{coordinatorWant("put-back", "rejected:medcom:early.xml", redacted("filen er rettet"), "ok")}},
		},
	}

	patterns := console.Patterns()
	for p := range cases {
		if !strings.Contains("\n"+strings.Join(patterns, "\n")+"\n", "\n"+p+"\n") {
			t.Errorf("the audit cases name %s, which the console does not serve", p)
		}
	}
	for _, p := range patterns {
		calls, ok := cases[p]
		if !ok {
			t.Errorf("console route %s has no audit case: say what it records (or that it shows nothing personal)", p)
			continue
		}
		method, _, _ := strings.Cut(p, " ")
		audited := false
		for _, c := range calls {
			audited = audited || len(c.want) > 0
		}
		switch {
		case method == http.MethodPost && !audited:
			t.Errorf("%s: no call of its case is audited; every form that changes something or shows personal data is", p)
		case method != http.MethodPost && audited:
			t.Errorf("%s: a page that audits on GET; personal data is shown on a form post, with a reason", p)
		}
		if method == http.MethodPost && p != "POST /console/login" && p != "POST /console/logout" {
			// The valid call, by operations, which may not make it.
			last := calls[len(calls)-1]
			calls = append([]formCall{{name: "wrong role", path: last.path, status: http.StatusForbidden, refused: true,
				do: func(t *testing.T) (*http.Client, url.Values) {
					_, v := last.do(t)
					w := url.Values{}
					for k, vs := range v {
						w[k] = append([]string(nil), vs...)
					}
					w.Set("csrf", csrfs["operations"])
					return clients["operations"], w
				}}}, calls...)
		}
		for _, c := range calls {
			t.Run(p+"/"+c.name, func(t *testing.T) {
				cl, form := c.do(t)
				before := len(auditRecords(t, h))
				var st int
				var body string
				if form == nil {
					st, body = get(t, cl, h.BaseURL+c.path)
				} else {
					st, body, _ = post(t, cl, h.BaseURL+c.path, form)
				}
				if st != c.status {
					t.Fatalf("status %d, want %d:\n%.1500s", st, c.status, body)
				}
				if c.then != nil {
					c.then(t)
				}
				got := auditRecords(t, h)[before:]
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
						// The auditor reads it in Danish.
						if console.DanishAction(r.Action) == "" {
							t.Errorf("action %q has no Danish words (i18n.go a.action.%s)", r.Action, r.Action)
						}
						if d := console.DanishResult(r.Result); d == r.Result && r.Result != "ok" {
							t.Errorf("result %q has no Danish words (i18n.go a.result.…)", r.Result)
						}
					}
				case c.refused:
					if len(got) > 0 && got[len(got)-1].Result != "refused" && got[len(got)-1].Result != "denied" {
						t.Errorf("a refused form left records that do not say it was refused: %+v", got)
					}
				default:
					if len(got) > 0 {
						t.Errorf("a page that shows nothing personal left audit records: %+v", got)
					}
					if p := hubtest.PersonalData(body); len(p) > 0 {
						t.Errorf("a page shown without an audit record holds personal data %q", p)
					}
				}
			})
		}
	}
	for _, r := range auditRecords(t, h) {
		if p := hubtest.PersonalData(r.Actor + " " + r.Target + " " + r.Reason + " " + r.Result + " " + r.Remote); len(p) > 0 {
			t.Errorf("audit record holds personal data %q: %+v", p, r)
		}
	}
	for _, c := range hubtest.TypedCPRs {
		if !logging.ContainsCPR(c) {
			t.Errorf("%q is not taken for a CPR number: the reasons prove nothing about it", c)
		}
	}
}

// parkedSeqOtherThan is the parked letter waiting behind hold.
func parkedSeqOtherThan(t *testing.T, h *hubtest.Hub, hold pipeline.Hold) uint64 {
	t.Helper()
	es, err := h.App.Hub.Queue().List(context.Background(), retryq.Filter{Destination: hold.Destination, Thread: hold.Thread})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if e.LetterID != hold.WaitsFor {
			return e.Seq
		}
	}
	t.Fatal("no letter waits behind the hold")
	return 0
}
