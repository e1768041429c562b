package epj_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/samhub/samhub/adapters/epj"
)

// A gateway that ignores _sort hands the feed a note older than one it
// handed before in the same poll. Such a note is still published: it used
// to fall behind the cursor, which had moved past it, and was never read.
// A note listed twice is published once.
func TestSourceReadsAnUnsortedFeedWhole(t *testing.T) {
	e := newEnv(t, 0)
	body, err := os.ReadFile(filepath.Join(goldenDir, "region-communication.json"))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2025, 3, 10, 13, 30, 0, 0, time.UTC)
	var refs []string
	for i := range 3 {
		ref, err := e.sim.SeedResource("Communication", body, t0.Add(time.Duration(i)*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		refs = append(refs, ref)
	}
	target, _ := url.Parse(e.base)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Forward; a Communication search comes back newest first, with
		// the newest listed once more at the end.
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, target.String()+r.URL.RequestURI(), r.Body)
		req.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var b map[string]any
		if r.Method == http.MethodGet && r.URL.Path == "/Communication" && json.Unmarshal(raw, &b) == nil {
			if entries, ok := b["entry"].([]any); ok && len(entries) > 0 {
				slices.Reverse(entries)
				b["entry"] = append(entries, entries[0])
			}
			raw, _ = json.Marshal(b)
		}
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.WriteHeader(resp.StatusCode)
		w.Write(raw)
	}))
	defer srv.Close()
	a := e.adapter(func(c *epj.Config) {
		sourceCfg(c)
		c.URL, c.TokenURL = srv.URL, srv.URL+"/oauth2/token"
	})
	pub := &recPub{}
	if err := a.Poll(context.Background(), pub); err != nil {
		t.Fatal(err)
	}
	got := pub.ids()
	slices.Sort(got)
	var want []string
	for _, ref := range refs {
		want = append(want, "epj:epj-test:"+ref+"/1")
	}
	if !slices.Equal(got, want) {
		t.Fatalf("published %v, want each of %v once", got, want)
	}
	// The cursor stands after the newest: the next poll publishes nothing.
	if err := a.Poll(context.Background(), pub); err != nil {
		t.Fatal(err)
	}
	if n := len(pub.ids()); n != 3 {
		t.Fatalf("a second poll published again: %v", strings.Join(pub.ids(), " "))
	}
}
