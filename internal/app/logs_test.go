package app_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/samhub/samhub/internal/hubtest"
	"github.com/samhub/samhub/internal/logbuf"
	"github.com/samhub/samhub/internal/logging"
)

// topKeys returns a JSON object's top-level keys in order, repeats included.
func topKeys(line []byte) ([]string, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	var keys []string
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return nil, err
		}
		keys = append(keys, k.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

// A letter's trip through the hub, logged as in production (JSON through
// the redacting handler): every line naming the letter carries its id as
// correlation_id, an API request's lines its request id, no line repeats
// a key, and no line carries the child's CPR number.
func TestLogLinesCarryCorrelationIDs(t *testing.T) {
	var logs logbuf.Buffer
	h := hubtest.Start(t, func(h *hubtest.Hub) { h.Log = logging.New(&logs, slog.LevelDebug, "json") })
	data, err := os.ReadFile("../../testdata/medcom/samhub/letter-utf8.xml")
	if err != nil {
		t.Fatal(err)
	}
	h.Drop("letter-utf8.xml", data)
	h.Eventually("the journal note in the case system", func() bool { return len(h.CaseSys.JournalNotes()) >= 1 })

	req, _ := http.NewRequest(http.MethodGet, h.BaseURL+"/api/v1/queue/999999", nil)
	req.Header.Set("Authorization", "Bearer "+hubtest.CoordinatorToken)
	req.Header.Set("X-Request-Id", "trace-4711")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("X-Request-Id"); got != "trace-4711" {
		t.Errorf("X-Request-Id answered %q, want the caller's", got)
	}
	h.Stop()

	perLetter := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	for sc.Scan() {
		line := sc.Bytes()
		n++
		keys, err := topKeys(line)
		if err != nil {
			t.Fatalf("not a JSON line: %v: %s", err, line)
		}
		seen := map[string]bool{}
		for _, k := range keys {
			if seen[k] {
				t.Errorf("key %q repeated: %s", k, line)
			}
			seen[k] = true
		}
		if logging.ContainsCPR(string(line)) {
			t.Errorf("a CPR number in the log: %s", line)
		}
		var m struct {
			Msg         string         `json:"msg"`
			Letter      map[string]any `json:"letter"`
			LetterID    string         `json:"letter_id"`
			Correlation string         `json:"correlation_id"`
		}
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatal(err)
		}
		id := m.LetterID
		if m.Letter != nil {
			id = fmt.Sprint(m.Letter["id"])
		}
		if id != "" {
			if m.Correlation != id {
				t.Errorf("line about letter %s has correlation_id %q: %s", id, m.Correlation, line)
			}
			perLetter[id]++
		}
	}
	if n == 0 {
		t.Fatal("no log lines")
	}
	if len(perLetter) == 0 {
		t.Fatal("no line named the letter")
	}
	for id, c := range perLetter {
		if c < 3 {
			t.Errorf("letter %s: %d lines, want its receipt, store and delivery at least", id, c)
		}
	}
}
