package console_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/samhub/samhub/internal/config"
	"github.com/samhub/samhub/internal/hubtest"
	"github.com/samhub/samhub/internal/natstest"
	"github.com/samhub/samhub/pipeline/council"
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

// The council's pages agree across replicas: both show the figures of the
// register in the cluster, and a meeting moved on one is moved on the
// other.
func TestCouncilPagesAgreeAcrossReplicas(t *testing.T) {
	urls := natstest.StartCluster(t)
	cluster := hubtest.WithConfig(func(c *config.Config) { c.NATS.URL, c.NATS.Replicas = urls, 3 })
	a := startHub(t, cluster, councilConfig(35*24*time.Hour))
	b := startHub(t, cluster, councilConfig(35*24*time.Hour))
	perMonth, rejected := history(t, a)
	total := 0
	for _, n := range perMonth {
		total += n
	}
	c, csrf := login(t, a, "koordinator", hubtest.CoordinatorPassword)
	for _, h := range []*hubtest.Hub{a, b} {
		h.Eventually("the year's figures on "+h.BaseURL, func() bool {
			_, page := get(t, c, h.BaseURL+"/console/kpi")
			return strings.Contains(page, fmt.Sprintf(`id="kpi-referrals">%d<`, total)) && strings.Contains(page, fmt.Sprintf(`id="kpi-rejections">%d<`, rejected))
		})
	}
	// A meeting the year filled, moved on b, is moved on a.
	var meeting string
	for _, r := range a.App.Hub.Council().Referrals(council.ReferralFilter{}) {
		if r.Meeting != "" {
			meeting = r.Meeting
			break
		}
	}
	d, err := time.Parse(time.DateOnly, meeting)
	if err != nil {
		t.Fatalf("meeting %q: %v", meeting, err)
	}
	to := d.AddDate(0, 0, 1).Format("2006-01-02") + "T10:00"
	if st, _, _ := post(t, c, b.BaseURL+"/console/meetings/"+meeting+"/move", url.Values{"csrf": {csrf}, "at": {to}, "reason": {"flyttet på replika b"}}); st != http.StatusSeeOther {
		t.Fatalf("move on b: %d", st)
	}
	a.Eventually("the move seen on a", func() bool {
		_, page := get(t, c, a.BaseURL+"/console/meetings/"+meeting)
		return strings.Contains(page, `id="moved-from"`) && strings.Contains(page, ", 10:00")
	})
}
