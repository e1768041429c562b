package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/samhub/samhub/internal/hubtest"
	"github.com/samhub/samhub/pipeline/audit"
	"github.com/samhub/samhub/pipeline/broker"
	"github.com/samhub/samhub/pipeline/retryq"
)

func call(t *testing.T, h *hubtest.Hub, token, method, path string, body any) (int, []byte) {
	t.Helper()
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	req, err := http.NewRequest(method, h.BaseURL+path, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out bytes.Buffer
	_, _ = out.ReadFrom(resp.Body)
	return resp.StatusCode, out.Bytes()
}

// TestEveryActionIsAudited drives each human action through the API and
// checks that the audit log names who did it and why.
func TestEveryActionIsAudited(t *testing.T) {
	h := hubtest.Start(t)
	h.CaseSys.FailNext(1000, http.StatusBadRequest, 0)
	for _, f := range []string{"letter-utf8.xml", "letter-windows-1252.xml"} {
		data, err := os.ReadFile(filepath.Join("../../testdata/medcom/samhub", f))
		if err != nil {
			t.Fatal(err)
		}
		h.Drop(f, data)
	}
	var parked []retryq.Entry
	h.Eventually("two letters parked", func() bool {
		parked, _ = h.App.Hub.Queue().List(context.Background(), retryq.Filter{})
		return len(parked) >= 2
	})
	h.CaseSys.ResetFaults()
	tok := hubtest.CoordinatorToken

	if st, b := call(t, h, tok, "POST", fmt.Sprintf("/api/v1/queue/%d/replay", parked[0].Seq), map[string]any{"reason": "audit test replay"}); st != 200 {
		t.Fatalf("replay: %d %s", st, b)
	}
	if st, b := call(t, h, tok, "POST", fmt.Sprintf("/api/v1/queue/%d/discard", parked[1].Seq), map[string]any{"reason": "audit test discard"}); st != 200 {
		t.Fatalf("discard: %d %s", st, b)
	}
	// A discard without a reason is refused and leaves no record.
	if st, _ := call(t, h, tok, "POST", fmt.Sprintf("/api/v1/queue/%d/discard", parked[1].Seq), map[string]any{"reason": ""}); st != 400 && st != 404 {
		t.Errorf("discard without reason: %d", st)
	}
	// Showing content needs a reason; then it is audited.
	if st, _ := call(t, h, tok, "POST", "/api/v1/letters/"+pathID(parked[0].LetterID)+"/content", map[string]any{}); st != 400 {
		t.Errorf("show content without reason: %d, want 400", st)
	}
	st, b := call(t, h, tok, "POST", "/api/v1/letters/"+pathID(parked[0].LetterID)+"/content", map[string]any{"reason": "audit test show"})
	if st != 200 || !strings.Contains(string(b), "2509479989") {
		t.Fatalf("show content: %d", st)
	}
	// A CPR number typed into the reason is kept out of the audit log, as
	// the console does.
	if st, _ := call(t, h, tok, "POST", "/api/v1/letters/"+pathID(parked[0].LetterID)+"/content", map[string]any{"reason": "mother of 250947-9989 called"}); st != 200 {
		t.Fatalf("show content with a CPR in the reason: %d", st)
	}
	consent := map[string]any{"patient": "2509479989", "consent": map[string]any{"givenBy": "custody-holder", "form": "written", "scopes": []string{"municipality", "gp"}}, "reason": "audit test consent"}
	if st, b := call(t, h, tok, "POST", "/api/v1/consents", consent); st != 200 {
		t.Fatalf("consent: %d %s", st, b)
	}

	st, b = call(t, h, hubtest.AuditorToken, "GET", "/api/v1/audit?n=100", nil)
	if st != 200 {
		t.Fatalf("audit tail: %d", st)
	}
	var v struct{ Records []audit.Record }
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	want := []struct{ action, reason, target string }{
		{"replay", "audit test replay", fmt.Sprintf("parked:%d", parked[0].Seq)},
		{"discard", "audit test discard", fmt.Sprintf("parked:%d", parked[1].Seq)},
		{"show-content", "audit test show", "letter:" + parked[0].LetterID},
		{"consent-record", "audit test consent", "patient:" + broker.Token("patient:2509479989")},
	}
	for _, w := range want {
		found := false
		for _, r := range v.Records {
			if r.Action == w.action && r.Actor == "koordinator" && r.Role == "coordinator" && r.Reason == w.reason && strings.Contains(r.Target, w.target) && !r.At.IsZero() {
				found = true
			}
		}
		if !found {
			t.Errorf("no audit record for %s by koordinator with reason %q and target %q in %+v", w.action, w.reason, w.target, v.Records)
		}
	}
	discards := 0
	for _, r := range v.Records {
		if r.Action == "discard" {
			discards++
		}
		// The auditor's page says what came of each view, as for the console's.
		if r.Action == "show-content" && r.Result != "shown" {
			t.Errorf("show-content record without its result: %+v", r)
		}
		if strings.Contains(r.Target+r.Reason, "2509479989") || strings.Contains(r.Target+r.Reason, "250947-9989") {
			t.Errorf("audit record holds a CPR number: %+v", r)
		}
	}
	if discards != 1 {
		t.Errorf("%d discard records, want 1 (the refused discard must leave none)", discards)
	}
}

func pathID(id string) string { return strings.ReplaceAll(id, "#", "%23") }

// TestTwoDiscardsAtOnceLeaveOneDone: two coordinators discard the same
// parked letter at the same moment. Each request is audited before the
// letter is removed, so both are; the one that finds the letter gone must
// say so in the log, or the log holds two discards of one letter.
func TestTwoDiscardsAtOnceLeaveOneDone(t *testing.T) {
	h := hubtest.Start(t)
	h.CaseSys.FailNext(1000, http.StatusBadRequest, 0)
	data, err := os.ReadFile("../../testdata/medcom/samhub/letter-utf8.xml")
	if err != nil {
		t.Fatal(err)
	}
	h.Drop("letter.xml", data)
	var parked []retryq.Entry
	h.Eventually("the letter parked", func() bool {
		parked, _ = h.App.Hub.Queue().List(context.Background(), retryq.Filter{})
		return len(parked) == 1
	})
	h.ParkCopies(parked[0].LetterID, parked[0].Destination, "400", 15)
	parked, err = h.App.Hub.Queue().List(context.Background(), retryq.Filter{})
	if err != nil || len(parked) != 16 {
		t.Fatalf("%d parked (%v), want 16", len(parked), err)
	}
	for _, e := range parked {
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				call(t, h, hubtest.CoordinatorToken, "POST", fmt.Sprintf("/api/v1/queue/%d/discard", e.Seq), map[string]any{"reason": "two at once"})
			})
		}
		wg.Wait()
	}
	st, b := call(t, h, hubtest.AuditorToken, "GET", "/api/v1/audit?n=1000", nil)
	if st != 200 {
		t.Fatalf("audit tail: %d", st)
	}
	var v struct{ Records []audit.Record }
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	done, refused := map[string]int{}, 0
	for _, r := range v.Records {
		if r.Action != "discard" {
			continue
		}
		seq := strings.Fields(r.Target)[0]
		switch r.Result {
		case "ok":
			done[seq]++
		case "refused":
			done[seq]--
			refused++
		default:
			t.Errorf("discard record with result %q: %+v", r.Result, r)
		}
	}
	for _, e := range parked {
		if n := done[fmt.Sprintf("parked:%d", e.Seq)]; n != 1 {
			t.Errorf("parked:%d: the log holds %d discards done, want 1", e.Seq, n)
		}
	}
	t.Logf("%d of %d second discards found the letter gone after their record", refused, len(parked))
}
