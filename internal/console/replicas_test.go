package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/samhub/samhub/internal/config"
	"github.com/samhub/samhub/internal/hubtest"
	"github.com/samhub/samhub/internal/natstest"
)

// Two hub replicas against one NATS cluster, as the Kubernetes manifest
// runs them: a console session started on one is served by the other, a
// message flashed by one is shown by the other, and a logout on one ends
// the session on both.
func TestConsoleSessionIsServedByEveryReplica(t *testing.T) {
	urls := natstest.StartCluster(t)
	cluster := hubtest.WithConfig(func(c *config.Config) { c.NATS.URL, c.NATS.Replicas = urls, 3 })
	a := startHub(t, cluster)
	b := startHub(t, cluster)

	// The cookie jar sends the session cookie to both (cookies know no port).
	c, csrf := login(t, a, "koordinator", hubtest.CoordinatorPassword)
	st, page := get(t, c, b.BaseURL+"/console/queue")
	if st != http.StatusOK || !strings.Contains(page, "koordinator") {
		t.Fatalf("replica b does not know the session started on a: status %d", st)
	}
	// An action on b leaves its message in the session; a shows it.
	st, _, _ = post(t, c, b.BaseURL+"/console/queue", url.Values{"csrf": {csrf}, "action": {"replay"}, "reason": {"test"}})
	if st != http.StatusSeeOther {
		t.Fatalf("action on b: status %d", st)
	}
	_, page = get(t, c, a.BaseURL+"/console/queue")
	if !strings.Contains(page, `class="flash`) {
		t.Fatal("the message flashed by replica b was not shown by replica a")
	}
	// A logout on a ends the session on b.
	if st, _, _ := post(t, c, a.BaseURL+"/console/logout", url.Values{"csrf": {csrf}}); st != http.StatusSeeOther {
		t.Fatalf("logout on a: status %d", st)
	}
	if st, _ := get(t, c, b.BaseURL+"/console/queue"); st != http.StatusSeeOther {
		t.Fatalf("replica b still serves a session logged out on a: status %d", st)
	}
}
