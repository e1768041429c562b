package httpapi

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/samhub/samhub/internal/logging"
)

// Every line logged while serving a request carries the request's id, the
// one the caller sees in X-Request-Id; a caller's id is kept only when it
// is a plain short token.
func TestRequestIDOnEveryLine(t *testing.T) {
	var buf bytes.Buffer
	s := New(nil, NewUsers(nil), prometheus.NewRegistry(), logging.New(&buf, slog.LevelInfo, "json"))
	s.Mux().HandleFunc("GET /x", func(w http.ResponseWriter, r *http.Request) { s.log.InfoContext(r.Context(), "handled") })
	for _, c := range []struct{ sent, want string }{
		{"", "req-"},
		{"trace-4711", "trace-4711"},
		{"2509479989", "req-"},
		{"has space", "req-"},
		{strings.Repeat("a", 65), "req-"},
	} {
		buf.Reset()
		req := httptest.NewRequest(http.MethodGet, "/x", nil)
		if c.sent != "" {
			req.Header.Set("X-Request-Id", c.sent)
		}
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		id := w.Header().Get("X-Request-Id")
		if !strings.HasPrefix(id, c.want) {
			t.Errorf("sent %q: id %q, want %q…", c.sent, id, c.want)
		}
		var line map[string]any
		if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
			t.Fatalf("%v: %s", err, &buf)
		}
		if line[logging.CorrelationKey] != id {
			t.Errorf("sent %q: the line's correlation_id is %v, the answer's X-Request-Id %q", c.sent, line[logging.CorrelationKey], id)
		}
	}
}
