package oauthtoken

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2/clientcredentials"
)

func TestRenewsBeforeExpiryAndAfterForget(t *testing.T) {
	var issued atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := issued.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"t%d","token_type":"Bearer","expires_in":5}`, n)
	}))
	defer srv.Close()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	c := New(&clientcredentials.Config{ClientID: "a", ClientSecret: "b", TokenURL: srv.URL}, srv.Client(), func() time.Time { return now })
	ctx := context.Background()
	t1, err := c.Token(ctx)
	if err != nil || t1.AccessToken != "t1" {
		t.Fatalf("first token: %v %v", t1, err)
	}
	now = now.Add(4 * time.Second) // before 5 s − 0.5 s
	if t2, _ := c.Token(ctx); t2.AccessToken != "t1" {
		t.Fatalf("renewed too early: %s", t2.AccessToken)
	}
	now = now.Add(600 * time.Millisecond) // inside the last tenth of the lifetime
	t3, _ := c.Token(ctx)
	if t3.AccessToken != "t2" {
		t.Fatalf("not renewed in the last tenth of the lifetime: %s", t3.AccessToken)
	}
	c.Forget(t1) // an old token: the current one stays
	if t4, _ := c.Token(ctx); t4.AccessToken != "t2" {
		t.Fatalf("forgetting a replaced token dropped the current one: %s", t4.AccessToken)
	}
	c.Forget(t3) // refused with 401: fetch a new one
	if t5, _ := c.Token(ctx); t5.AccessToken != "t3" {
		t.Fatalf("a refused token was reused: %s", t5.AccessToken)
	}
	if issued.Load() != 3 {
		t.Fatalf("%d tokens issued, want 3", issued.Load())
	}
}
