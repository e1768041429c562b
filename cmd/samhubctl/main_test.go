package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/samhub/samhub/internal/hubtest"
	"github.com/samhub/samhub/pipeline"
	"github.com/samhub/samhub/pipeline/retryq"
)

// ctl runs samhubctl in process against h with token and returns the exit
// code and what it printed.
func ctl(t *testing.T, h *hubtest.Hub, token string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := map[string]string{"SAMHUB_SERVER": h.BaseURL, "SAMHUB_TOKEN": token}
	code := run(context.Background(), args, &out, &errb, func(k string) string { return env[k] })
	return code, out.String(), errb.String()
}

// parkTwo parks two letters for the case system (it answers 400 to everything
// meanwhile) and returns their queue entries.
func parkTwo(t *testing.T, h *hubtest.Hub) []retryq.Entry {
	t.Helper()
	h.CaseSys.FailNext(1000, http.StatusBadRequest, 0)
	for _, f := range []string{"letter-utf8.xml", "letter-iso-8859-1.xml"} {
		data, err := os.ReadFile(filepath.Join("../../testdata/medcom/samhub", f))
		if err != nil {
			t.Fatal(err)
		}
		// Two children's threads: letters of one thread would wait behind
		// the first parked one (thread_held) instead of failing themselves.
		data = bytes.Replace(data, []byte("0f6c1e2d3a4b5c6d7e8f90a1b2c3d4e5"), []byte(fmt.Sprintf("%032x", len(f))), 1)
		h.Drop(f, data)
	}
	var got []retryq.Entry
	h.Eventually("two letters parked", func() bool {
		got, _ = h.App.Hub.Queue().List(context.Background(), retryq.Filter{})
		return len(got) >= 2
	})
	h.CaseSys.ResetFaults()
	return got
}

func TestCLIAgainstRunningHub(t *testing.T) {
	h := hubtest.Start(t)
	entries := parkTwo(t, h)
	first, second := entries[0], entries[1]
	seq1, seq2 := strconv.FormatUint(first.Seq, 10), strconv.FormatUint(second.Seq, 10)
	coord := hubtest.CoordinatorToken

	t.Run("whoami", func(t *testing.T) {
		code, out, _ := ctl(t, h, coord, "whoami")
		if code != 0 || !strings.Contains(out, "koordinator (coordinator)") {
			t.Fatalf("code %d, out %q", code, out)
		}
	})

	t.Run("queue list table", func(t *testing.T) {
		code, out, errs := ctl(t, h, coord, "queue", "list")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		mustHave(t, out, "ID", "DESTINATION", "CODE", seq1, seq2, first.LetterID, "casefile", "bad_request")
	})

	t.Run("queue list json parses", func(t *testing.T) {
		code, out, errs := ctl(t, h, coord, "queue", "list", "-o", "json", "--destination", "casefile", "--code", "bad_request")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		var v struct{ Entries []retryq.Entry }
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatalf("-o json is not JSON: %v\n%s", err, out)
		}
		if len(v.Entries) != 2 || v.Entries[0].Seq != first.Seq {
			t.Fatalf("entries %+v", v.Entries)
		}
		code, out, _ = ctl(t, h, coord, "queue", "list", "-o", "json", "--code", "consent_missing")
		if code != 0 || !strings.Contains(out, `"entries": []`) {
			t.Fatalf("filter by another code: exit %d, %s", code, out)
		}
	})

	t.Run("queue stats", func(t *testing.T) {
		code, out, _ := ctl(t, h, hubtest.OperationsToken, "queue", "stats")
		if code != 0 || !strings.Contains(out, "casefile") || !strings.Contains(out, "  2  ") {
			t.Fatalf("exit %d:\n%s", code, out)
		}
	})

	t.Run("queue show", func(t *testing.T) {
		code, out, _ := ctl(t, h, coord, "queue", "show", "P"+seq1)
		if code != 0 {
			t.Fatalf("exit %d", code)
		}
		mustHave(t, out, "Letter:", first.LetterID, "Last error:", "HTTP 400")
		if strings.Contains(out, "2509479989") {
			t.Error("queue show printed a CPR number")
		}
	})

	t.Run("exit codes", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			token string
			args  []string
			want  int
		}{
			{"unknown parked id", coord, []string{"queue", "show", "999999"}, exitNotFound},
			{"unknown letter", coord, []string{"letter", "trace", "no-such-letter"}, exitNotFound},
			{"discard unknown", coord, []string{"queue", "discard", "999999", "--reason", "test"}, exitNotFound},
			{"coordinator reads audit", coord, []string{"audit", "tail"}, exitAuth},
			{"operations lists queue", hubtest.OperationsToken, []string{"queue", "list"}, exitAuth},
			{"auditor replays", hubtest.AuditorToken, []string{"queue", "replay", seq1, "--reason", "x"}, exitAuth},
			{"wrong token", "not-a-token", []string{"queue", "list"}, exitAuth},
			{"no token", "", []string{"queue", "list"}, exitAuth},
			{"bad id", coord, []string{"queue", "show", "abc"}, exitUsage},
			{"replay without reason", coord, []string{"queue", "replay", seq1}, exitUsage},
			{"discard without reason", coord, []string{"queue", "discard", seq1}, exitUsage},
			{"unknown command", coord, []string{"queue", "frobnicate"}, exitUsage},
			{"bad output", coord, []string{"queue", "list", "-o", "yaml"}, exitUsage},
			{"all without destination", coord, []string{"queue", "replay", "--all", "--reason", "x"}, exitUsage},
		} {
			code, _, errs := ctl(t, h, tc.token, tc.args...)
			if code != tc.want {
				t.Errorf("%s: exit %d, want %d (%s)", tc.name, code, tc.want, strings.TrimSpace(errs))
			}
			if code != 0 && strings.TrimSpace(errs) == "" {
				t.Errorf("%s: no error message", tc.name)
			}
		}
		// The hub is down: exit 4.
		var out, errb bytes.Buffer
		env := map[string]string{"SAMHUB_TOKEN": coord}
		if code := run(context.Background(), []string{"--server", "http://127.0.0.1:1", "queue", "list"}, &out, &errb, func(k string) string { return env[k] }); code != exitServer {
			t.Errorf("unreachable hub: exit %d, want %d", code, exitServer)
		}
	})

	t.Run("token file", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(f, []byte(hubtest.AuditorToken+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		code, out, errs := ctl(t, h, "", "--token-file", f, "whoami")
		if code != 0 || !strings.Contains(out, "revisor") {
			t.Fatalf("exit %d %q %s", code, out, errs)
		}
	})

	t.Run("replay dry run changes nothing", func(t *testing.T) {
		code, out, _ := ctl(t, h, coord, "queue", "replay", seq1, "--dry-run")
		if code != 0 || !strings.Contains(out, "would deliver to casefile") {
			t.Fatalf("exit %d: %s", code, out)
		}
		if _, _, err := h.App.Hub.Queue().Get(context.Background(), first.Seq); err != nil {
			t.Fatal("dry run removed the entry")
		}
	})

	t.Run("replay delivers and trace shows it", func(t *testing.T) {
		code, out, errs := ctl(t, h, coord, "queue", "replay", seq1, "--reason", "case system fixed")
		if code != 0 || !strings.Contains(out, "replayed to casefile") {
			t.Fatalf("exit %d: %s %s", code, out, errs)
		}
		h.Eventually("the replayed letter delivered", func() bool {
			_, out, _ := ctl(t, h, coord, "letter", "trace", first.LetterID)
			return strings.Contains(out, "delivered")
		})
		_, out, _ = ctl(t, h, coord, "letter", "trace", first.LetterID)
		mustHave(t, out, "Letter "+first.LetterID, "TIME", "received", "parked", "replayed", "delivered", "casefile", "koordinator")
		code, out, _ = ctl(t, h, coord, "letter", "trace", first.LetterID, "-o", "json")
		var tr struct {
			Steps []struct{ Step, Destination string }
		}
		if code != 0 || json.Unmarshal([]byte(out), &tr) != nil || len(tr.Steps) < 3 {
			t.Fatalf("trace -o json: exit %d\n%s", code, out)
		}
		// A second replay of the same id: it is no longer parked.
		if code, _, _ := ctl(t, h, coord, "queue", "replay", seq1, "--reason", "again"); code != exitNotFound {
			t.Errorf("second replay: exit %d, want %d", code, exitNotFound)
		}
	})

	t.Run("discard", func(t *testing.T) {
		code, out, _ := ctl(t, h, coord, "queue", "discard", seq2, "--reason", "sender will resend")
		if code != 0 || !strings.Contains(out, "Discarded "+seq2) {
			t.Fatalf("exit %d: %s", code, out)
		}
		code, out, _ = ctl(t, h, coord, "queue", "list")
		if code != 0 || !strings.Contains(out, "No parked letters.") {
			t.Fatalf("queue not empty after replay and discard: %s", out)
		}
	})

	t.Run("audit tail", func(t *testing.T) {
		code, out, _ := ctl(t, h, hubtest.AuditorToken, "audit", "tail", "-n", "50")
		if code != 0 {
			t.Fatalf("exit %d", code)
		}
		mustHave(t, out, "ACTION", "replay", "case system fixed", "discard", "sender will resend", "koordinator")
		code, out, _ = ctl(t, h, hubtest.AuditorToken, "audit", "tail", "-o", "json")
		var v struct {
			Records []struct{ Actor, Action, Reason string }
		}
		if code != 0 || json.Unmarshal([]byte(out), &v) != nil || len(v.Records) < 2 {
			t.Fatalf("audit tail -o json: exit %d\n%s", code, out)
		}
	})
}

func mustHave(t *testing.T, out string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(out, p) {
			t.Errorf("output lacks %q:\n%s", p, out)
		}
	}
}

func TestConsentListRecordRevoke(t *testing.T) {
	h := hubtest.Start(t)
	coord := hubtest.CoordinatorToken
	if code, _, errs := ctl(t, h, coord, "consent", "record", "--patient", "250947-9989", "--scope", "gp", "--form", "oral"); code != 1 || !strings.Contains(errs, "--reason") {
		t.Fatalf("record without a reason: exit %d %s", code, errs)
	}
	if code, _, errs := ctl(t, h, coord, "consent", "record", "--patient", "2509479989", "--scope", "gp,teacher", "--form", "oral", "--reason", "x"); code != 1 || !strings.Contains(errs, "teacher") {
		t.Fatalf("unknown scope: exit %d %s", code, errs)
	}
	code, out, errs := ctl(t, h, coord, "consent", "list", "--patient", "2509479989", "--reason", "before the meeting")
	if code != 0 || !strings.Contains(out, "No consent is recorded") {
		t.Fatalf("list before: exit %d %s %s", code, out, errs)
	}
	// Typed with a dash: the same child as the letters' 2509479989.
	if code, _, errs := ctl(t, h, coord, "consent", "record", "--patient", "250947-9989", "--scope", "gp,region_psychiatry", "--form", "written", "--reason", "the parents signed at the meeting"); code != 0 {
		t.Fatalf("record: exit %d %s", code, errs)
	}
	c, err := h.App.Hub.RecordedConsent(context.Background(), "2509479989")
	if err != nil || c == nil || !c.Allows("gp", time.Now()) || !c.Allows("region_psychiatry", time.Now()) || c.Allows("parents", time.Now()) {
		t.Fatalf("recorded consent %+v %v", c, err)
	}
	if code, _, errs := ctl(t, h, coord, "consent", "revoke", "--patient", "2509479989", "--reason", "the mother withdrew it by phone"); code != 0 {
		t.Fatalf("revoke: exit %d %s", code, errs)
	}
	c, _ = h.App.Hub.RecordedConsent(context.Background(), "2509479989")
	if c == nil || c.Allows("gp", time.Now()) || c.WithdrawnAt.IsZero() {
		t.Fatalf("after revoke %+v", c)
	}
	code, out, _ = ctl(t, h, coord, "consent", "list", "--patient", "2509479989", "--reason", "check")
	if code != 0 || strings.Count(out, "\n") != 3 || !strings.Contains(out, "gp,region_psychiatry") {
		t.Fatalf("list after: exit %d\n%s", code, out)
	}
	if strings.Contains(out, "2509479989") {
		t.Errorf("the listing repeats the CPR number:\n%s", out)
	}
	// In JSON a consent never withdrawn has no withdrawnAt (not year 1):
	// of the two records, only the revoked one carries it.
	code, out, _ = ctl(t, h, coord, "consent", "list", "--patient", "2509479989", "--reason", "check", "-o", "json")
	if code != 0 || strings.Count(out, `"withdrawnAt"`) != 1 || strings.Contains(out, "0001-01-01") {
		t.Errorf("list -o json: exit %d\n%s", code, out)
	}
	code, out, _ = ctl(t, h, hubtest.AuditorToken, "audit", "tail", "-n", "10")
	for _, want := range []string{"consent-read", "consent-record", "consent-withdraw", "the mother withdrew it by phone"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("audit lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "2509479989") {
		t.Errorf("the audit log names the CPR number:\n%s", out)
	}
	if code, _, _ := ctl(t, h, hubtest.OperationsToken, "consent", "list", "--patient", "2509479989", "--reason", "x"); code != 3 {
		t.Errorf("operations read consents: exit %d, want 3", code)
	}
}

// A thread held behind a parked letter is listed, and released by the
// coordinator with a reason.
func TestHeldThreadListedAndReleased(t *testing.T) {
	h := hubtest.Start(t)
	coord := hubtest.CoordinatorToken
	h.CaseSys.FailNext(1000, http.StatusBadRequest, 0)
	for _, f := range []string{"letter-utf8.xml", "letter-iso-8859-1.xml"} { // one child's thread
		data, err := os.ReadFile(filepath.Join("../../testdata/medcom/samhub", f))
		if err != nil {
			t.Fatal(err)
		}
		h.Drop(f, data)
		h.Eventually(f+" parked", func() bool {
			es, _ := h.App.Hub.Queue().List(context.Background(), retryq.Filter{})
			return len(es) == map[string]int{"letter-utf8.xml": 1, "letter-iso-8859-1.xml": 2}[f]
		})
	}
	h.CaseSys.ResetFaults()
	code, out, errs := ctl(t, h, coord, "queue", "held")
	if code != 0 || !strings.Contains(out, "casefile") || !strings.Contains(out, "5790000000005#LTR00000000001") {
		t.Fatalf("held: exit %d %s %s", code, out, errs)
	}
	thread := strings.Fields(strings.Split(out, "\n")[1])[1]
	if code, _, errs := ctl(t, h, coord, "queue", "release", "casefile", thread); code != 1 || !strings.Contains(errs, "--reason") {
		t.Fatalf("release without a reason: exit %d %s", code, errs)
	}
	if code, _, _ := ctl(t, h, coord, "queue", "release", "casefile", "0000", "--reason", "x"); code != 2 {
		t.Fatalf("release of an unknown thread: exit %d, want 2", code)
	}
	if code, out, errs := ctl(t, h, coord, "queue", "release", "casefile", thread, "--reason", "the second letter stands alone"); code != 0 {
		t.Fatalf("release: exit %d %s %s", code, out, errs)
	}
	h.Eventually("the held letter journalised", func() bool { return len(h.CaseSys.Documents()) == 1 })
	var es []retryq.Entry
	// The released letter leaves the queue just after its delivery.
	h.Eventually("only the first letter still parked", func() bool {
		es, _ = h.App.Hub.Queue().List(context.Background(), retryq.Filter{})
		return len(es) == 1
	})
	if es[0].LetterID != "5790000000005#LTR00000000001" {
		t.Fatalf("queue after the release: %+v", es)
	}
	// The hold is lifted once the last held letter is through.
	h.Eventually("no thread held after the release", func() bool {
		code, out, _ := ctl(t, h, coord, "queue", "held")
		return code == 0 && strings.Contains(out, "No thread is held")
	})
}

// storedFixture drops the fixture letter, waits until the case system has
// it and returns its id.
func storedFixture(t *testing.T, h *hubtest.Hub) string {
	t.Helper()
	data, err := os.ReadFile("../../testdata/medcom/samhub/letter-utf8.xml")
	if err != nil {
		t.Fatal(err)
	}
	h.Drop("letter-utf8.xml", data)
	var id string
	h.Eventually("the fixture delivered", func() bool {
		found, _ := h.App.Hub.FindLetters(context.Background(), pipeline.Query{PatientID: "2509479989"})
		if len(found) == 0 || len(h.CaseSys.Documents()) == 0 {
			return false
		}
		id = found[0].ID
		return true
	})
	return id
}

// After an outage: list a page of a long queue with filters, preview a
// replay by filter, replay it and follow it to the end.
func TestCLIQueueAtOutageScale(t *testing.T) {
	h := hubtest.Start(t)
	id := storedFixture(t, h)
	h.ParkCopies(id, "casefile", "unavailable", 300)
	h.ParkCopies(id, "casefile", "case_closed", 20)
	coord := hubtest.CoordinatorToken

	code, out, errs := ctl(t, h, coord, "queue", "list", "--filter", "destination=casefile,code=unavailable", "--page-size", "100", "--page", "3")
	if code != 0 || strings.Count(out, "COPY-") != 100 || !strings.Contains(out, "Entries 201–300 of 300 that match (page 3 of 3).") {
		t.Fatalf("page 3: exit %d %s\n%s", code, errs, out)
	}
	code, out, _ = ctl(t, h, coord, "queue", "list", "--filter", "code=case_closed", "--page-size", "15")
	if code != 0 || !strings.Contains(out, "Entries 1–15 of 20 that match (page 1 of 2). Next: --page 2 or --cursor ") {
		t.Fatalf("page 1 of case_closed: exit %d\n%s", code, out)
	}
	cursor := strings.TrimSpace(out[strings.LastIndex(out, "--cursor ")+len("--cursor "):])
	if code, out, _ = ctl(t, h, coord, "queue", "list", "--filter", "code=case_closed", "--cursor", cursor); code != 0 || strings.Count(out, "COPY-") != 5 {
		t.Fatalf("after the cursor: exit %d\n%s", code, out)
	}
	if code, out, _ = ctl(t, h, coord, "queue", "list", "--filter", "older-than=1h"); code != 0 || !strings.Contains(out, "No parked letters match parked-before=") {
		t.Fatalf("older than an hour: exit %d\n%s", code, out)
	}
	if code, _, errs = ctl(t, h, coord, "queue", "list", "--filter", "colour=red"); code != exitUsage || !strings.Contains(errs, `unknown key "colour"`) {
		t.Fatalf("an unknown key: exit %d %s", code, errs)
	}
	if code, _, errs = ctl(t, h, coord, "queue", "list", "--filter", "older-than=soon"); code != exitUsage || !strings.Contains(errs, "older-than") {
		t.Fatalf("a bad age: exit %d %s", code, errs)
	}
	if code, _, errs = ctl(t, h, coord, "queue", "list", "--filter", "patient=2509479989"); code != exitUsage || !strings.Contains(errs, "--reason") {
		t.Fatalf("by CPR without a reason: exit %d %s", code, errs)
	}
	code, out, errs = ctl(t, h, coord, "queue", "list", "--filter", "patient=250947-9989", "--reason", "the mother called", "--page-size", "1")
	if code != 0 || !strings.Contains(out, "of 320 that match") || strings.Contains(out, "2509479989") {
		t.Fatalf("by CPR: exit %d %s\n%s", code, errs, out)
	}

	code, out, errs = ctl(t, h, coord, "queue", "replay", "--filter", "code=unavailable", "--dry-run")
	if code != 0 {
		t.Fatalf("preview: exit %d %s", code, errs)
	}
	mustHave(t, out, "300 parked letters match code=unavailable", "casefile     300", "unavailable  300", "The first 10:", "--filter 'code=unavailable,up-to=")
	if left, _ := h.App.Hub.Queue().Count(context.Background(), retryq.Filter{}); left.Total != 320 {
		t.Fatalf("the preview changed the queue: %d left", left.Total)
	}
	for _, bad := range [][]string{
		{"queue", "replay", "--filter", "code=unavailable"},                           // no reason
		{"queue", "replay", "--filter", "", "--reason", "x"},                          // no condition
		{"queue", "replay", "1", "--filter", "code=unavailable", "--reason", "x"},     // both
		{"queue", "replay", "--filter", "all,code=unavailable", "--reason", "x"},      // all and a condition
		{"queue", "replay", "--all", "--filter", "code=unavailable", "--reason", "x"}, // both ways
	} {
		if code, _, errs := ctl(t, h, coord, bad...); code != exitUsage || strings.TrimSpace(errs) == "" {
			t.Errorf("%v: exit %d %s", bad, code, errs)
		}
	}

	code, out, errs = ctl(t, h, coord, "queue", "replay", "--filter", "code=unavailable", "--reason", "the case system is back")
	if code != 0 || !strings.Contains(out, "Done: 300 of 300 replayed") {
		t.Fatalf("replay: exit %d %s\n%s", code, errs, out)
	}
	h.Eventually("300 more documents", func() bool { return len(h.CaseSys.Documents()) == 301 })
	if code, out, _ = ctl(t, h, coord, "queue", "replay", "--filter", "code=unavailable", "--reason", "again"); code != 0 || !strings.Contains(out, "No parked letters match code=unavailable") {
		t.Fatalf("again: exit %d\n%s", code, out)
	}
	code, out, _ = ctl(t, h, coord, "queue", "bulk-replays")
	if code != 0 || !strings.Contains(out, "koordinator") || !strings.Contains(out, "done") {
		t.Fatalf("bulk-replays: exit %d\n%s", code, out)
	}
	bulkID := strings.Fields(strings.Split(out, "\n")[1])[0]
	code, out, _ = ctl(t, h, coord, "queue", "bulk-replays", bulkID, "-o", "json")
	var r struct {
		State    string
		Replayed int
	}
	if code != 0 || json.Unmarshal([]byte(out), &r) != nil || r.State != "done" || r.Replayed != 300 {
		t.Fatalf("bulk-replays %s -o json: exit %d\n%s", bulkID, code, out)
	}
	// --all --destination is a replay by filter: the 20 case_closed.
	code, out, errs = ctl(t, h, coord, "queue", "replay", "--all", "--destination", "casefile", "--reason", "case reopened", "--no-wait")
	if code != 0 || !strings.Contains(out, "20 parked letters matching destination=casefile") || !strings.Contains(out, "samhubctl queue bulk-replays ") {
		t.Fatalf("--all --no-wait: exit %d %s\n%s", code, errs, out)
	}
	h.Eventually("the queue empty", func() bool {
		c, _ := h.App.Hub.Queue().Count(context.Background(), retryq.Filter{})
		return c.Total == 0
	})
}

// A server that is not the hub (a simulator's port, a proxy's default page)
// answers 404 without a problem document: that is a wrong --server, not
// "no such id" (exit 2, which a script reads as a missing letter).
func TestWrongServerIsNotNotFound(t *testing.T) {
	other := httptest.NewServer(http.NotFoundHandler())
	defer other.Close()
	var out, errb bytes.Buffer
	env := map[string]string{"SAMHUB_SERVER": other.URL, "SAMHUB_TOKEN": "t"}
	code := run(context.Background(), []string{"queue", "show", "7"}, &out, &errb, func(k string) string { return env[k] })
	if code != exitServer || !strings.Contains(errb.String(), "not the Samhub API: check --server") {
		t.Fatalf("exit %d, %q", code, errb.String())
	}
	// The hub's own 404 stays "not found".
	h := hubtest.Start(t)
	if code, _, stderr := ctl(t, h, hubtest.CoordinatorToken, "queue", "show", "999"); code != exitNotFound || !strings.Contains(stderr, "no parked letter with that id") {
		t.Fatalf("hub's 404: exit %d, %q", code, stderr)
	}
}

func TestEmptyTokenFileIsNamed(t *testing.T) {
	f := filepath.Join(t.TempDir(), "token")
	os.WriteFile(f, []byte("\n"), 0o600)
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"--token-file", f, "whoami"}, &out, &errb, func(string) string { return "" })
	if code != exitAuth || !strings.Contains(errb.String(), "--token-file "+f+" is empty") {
		t.Fatalf("exit %d, %q", code, errb.String())
	}
}
