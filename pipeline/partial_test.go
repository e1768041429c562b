package pipeline_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/internal/config"
	"github.com/samhub/samhub/pipeline"
	"github.com/samhub/samhub/pipeline/journey"
	"github.com/samhub/samhub/pipeline/letter"
	"github.com/samhub/samhub/pipeline/retryq"
)

// post is a real in-process Sink that sends one message per addressee, as
// Digital Post does to each custody holder: idempotent per addressee, and
// an addressee it cannot reach (exempt) fails permanently while the others
// get the letter.
type post struct {
	mu     sync.Mutex
	exempt map[string]bool
	got    map[string]int // letter id + CPR → messages stored
}

func (p *post) Deliver(_ context.Context, l *letter.Letter) (adapters.Delivery, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var done, failed []letter.Party
	for _, to := range l.To {
		if p.exempt[to.CPR] {
			failed = append(failed, to)
			continue
		}
		p.got[l.ID+"/"+to.CPR]++
		done = append(done, to)
	}
	if len(failed) > 0 {
		err := adapters.Permanent("recipient_exempt", fmt.Sprintf("%d of %d custody holders are exempt from Digital Post", len(failed), len(l.To)), nil)
		if len(done) > 0 {
			return adapters.Delivery{}, &adapters.Partial{Delivered: done, Failed: failed, Err: err}
		}
		return adapters.Delivery{}, err
	}
	return adapters.Delivery{RemoteID: "msg-" + l.ID}, nil
}

var posts = map[string]*post{}

func init() {
	adapters.RegisterSink("test-post", adapters.Spec{Citizens: true}, func(d adapters.Deps, _ struct{}) (adapters.Sink, error) {
		regMu.Lock()
		defer regMu.Unlock()
		return posts[d.Name], nil
	})
}

// latestFor is the last state reported for the custody holder with cpr.
func (f *feed) latestFor(letterID, cpr string) (adapters.RecipientStatus, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.reports) - 1; i >= 0; i-- {
		if r := f.reports[i]; r.LetterID == letterID && r.Recipient.CPR == cpr {
			return r, true
		}
	}
	return adapters.RecipientStatus{}, false
}

// A letter to two custody holders of whom one is exempt from Digital
// Post: the source hears "sent" for the one who got it and "failed" for
// the other, the letter parks once, and discarding it (the coordinator
// sent a paper letter) leaves the first one's "sent" standing.
func TestPartialDeliveryReportsEachAddressee(t *testing.T) {
	const brita, nancy = "1509819996", "2512489996"
	p := &post{exempt: map[string]bool{nancy: true}, got: map[string]int{}}
	e := newEnvWith(t, func(cfg *config.Config, n int) {
		name := fmt.Sprintf("post%d", n)
		regMu.Lock()
		posts[name] = p
		regMu.Unlock()
		cfg.Adapters[name] = map[string]any{"type": "test-post"}
		cfg.Destinations["parents"] = config.Destination{Adapter: name, Sector: "parents"}
		cfg.Routes = append(cfg.Routes, config.Route{Name: "recommendations-to-parents", Match: config.Match{Kind: []string{"recommendation"}}, To: []string{"parents"}})
	})
	ctx := context.Background()
	l := mkLetter("R-partial", letter.KindRecommendation, "")
	l.Receivers = []letter.Party{
		{Role: letter.RoleParents, Name: "Brita Test Berggren", CPR: brita},
		{Role: letter.RoleParents, Name: "Nancy Ann Test Berggren", CPR: nancy},
	}
	l.Consent = &letter.Consent{GivenBy: "custody-holder", Form: "written", GivenAt: time.Now().Add(-time.Hour), Scopes: []letter.Scope{letter.ScopeParents}}
	e.feed.ch <- l

	var parked []retryq.Entry
	eventually(t, "the letter parked at the parents' destination", func() bool {
		parked, _ = e.hub.Queue().List(ctx, retryq.Filter{Destination: "parents"})
		return len(parked) == 1
	})
	if got := parked[0].LastError.Code; got != "recipient_exempt" {
		t.Errorf("parked with code %q, want recipient_exempt", got)
	}
	if !slices.Equal(parked[0].DeliveredTo, []int{0}) {
		t.Errorf("the parked entry names the recipients reached as %v, want [0] (the first custody holder)", parked[0].DeliveredTo)
	}
	states := func() (string, string) {
		a, _ := e.feed.latestFor(l.ID, brita)
		b, _ := e.feed.latestFor(l.ID, nancy)
		return string(a.State), string(b.State)
	}
	eventually(t, "a status for each custody holder", func() bool { a, b := states(); return a != "" && b != "" })
	if a, b := states(); a != "sent" || b != "failed" {
		t.Fatalf("custody holders reported %s and %s, want sent and failed", a, b)
	}
	// The journey says who has it (the coordinator's trace and the
	// council's register read it), by place, not by name or CPR number.
	tr, err := e.hub.TraceLetter(ctx, l.ID)
	if err != nil {
		t.Fatal(err)
	}
	var partly []journey.Event
	for _, s := range tr.Steps {
		if s.Step == journey.PartlyDelivered {
			partly = append(partly, s)
		}
		if b, _ := json.Marshal(s); strings.Contains(string(b), brita) || strings.Contains(string(b), "Brita") {
			t.Errorf("a journey step names the custody holder: %s", b)
		}
	}
	if len(partly) != 1 || partly[0].Destination != "parents" || partly[0].To != "parents 1 of 2" {
		t.Errorf("partial delivery steps %+v; want one at parents to parents 1 of 2", partly)
	}
	if err := e.hub.Discard(ctx, pipeline.Actor{Name: "k", Role: "coordinator"}, parked[0].Seq, "sendt som brev"); err != nil {
		t.Fatal(err)
	}
	if a, b := states(); a != "sent" || b != "failed" {
		t.Errorf("after the discard the custody holders are %s and %s, want sent (she has the letter) and failed", a, b)
	}
	if r, _ := e.feed.latestFor(l.ID, nancy); r.Code != "discarded" {
		t.Errorf("the exempt custody holder's last report has code %q, want discarded", r.Code)
	}
	e.feed.mu.Lock()
	for _, r := range e.feed.reports {
		if r.LetterID == l.ID && r.Recipient.CPR == brita && r.State != adapters.StateSent {
			t.Errorf("the custody holder who got the letter was reported %s (%s)", r.State, r.Code)
		}
	}
	e.feed.mu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := p.got[l.ID+"/"+brita]; n != 1 {
		t.Errorf("the custody holder got %d messages, want 1", n)
	}
}
