package config

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/samhub/samhub/pipeline/letter"
	"github.com/samhub/samhub/pipeline/route"
)

// The broker gets the sizes and modes the file names, in its own terms.
func TestBrokerOptionsFromTheFile(t *testing.T) {
	c, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	c.Streams.LettersMaxBytes, c.Streams.JourneyPersist = "3MB", "async"
	c.NATS.Embedded.MaxStore = "2GB"
	o, err := c.NATS.Broker()
	if err != nil {
		t.Fatal(err)
	}
	if o.Embedded.MaxStore != 2<<30 || o.Embedded.StoreDir != c.NATS.Embedded.StoreDir {
		t.Fatalf("embedded options %+v from %+v", o.Embedded, c.NATS.Embedded)
	}
	s := c.Streams.Broker()
	if s.LettersMaxBytes != 3<<20 || !s.JourneyAsync || s.DedupWindow != c.Streams.DedupWindow {
		t.Fatalf("streams %+v from %+v", s, c.Streams)
	}
	c.Streams.JourneyPersist = "sync"
	if c.Streams.Broker().JourneyAsync {
		t.Fatal("journey_persist sync gave an async journey")
	}
	c.NATS.Embedded.MaxStore = "lots"
	var ce *Error
	if _, err := c.NATS.Broker(); !errors.As(err, &ce) || ce.Key != "nats.embedded.max_store" {
		t.Fatalf("a bad max_store gave %v, want an error naming nats.embedded.max_store", err)
	}
}

// Every field routing decides with reaches the router.
func TestRouteOptionsCarryEveryRuleField(t *testing.T) {
	no := false
	routes := []Route{{Name: "discharge", Match: Match{Kind: []string{"discharge-note"}, Source: []string{"medcom"}, Category: []string{"c"},
		Sender: []string{"5790000120400"}, Receiver: []string{"role:gp"}, Format: []string{"xdis91"}}, To: []string{"gp"}, Anonymise: true, RequireConsent: &no}}
	dests := map[string]Destination{"gp": {Adapter: "medcom", Sector: "gp", Receiver: "5790000123456"}}
	recv := []Receiver{{Name: "Lægehuset", Role: "gp", GLN: "5790000123456", SOR: "1", Formats: []string{"xdis91"}}}
	o := RouteOptions(routes, dests, recv)
	r := o.Rules[0]
	m := r.Match
	if r.Name != "discharge" || r.To[0] != "gp" || !r.Anonymise || r.RequireConsent == nil || *r.RequireConsent ||
		m.Kind[0] != "discharge-note" || m.Source[0] != "medcom" || m.Category[0] != "c" || m.Sender[0] != "5790000120400" || m.Receiver[0] != "role:gp" || m.Format[0] != "xdis91" {
		t.Fatalf("rule %+v from %+v", r, routes[0])
	}
	if d := o.Destinations["gp"]; d.Sector != "gp" || d.Receiver != "5790000123456" {
		t.Fatalf("destination %+v", d)
	}
	if rc := o.Receivers[0]; rc.Name != "Lægehuset" || rc.Role != "gp" || rc.GLN != "5790000123456" || rc.SOR != "1" || rc.Formats[0] != "xdis91" {
		t.Fatalf("receiver %+v", rc)
	}
}

// The council block reaches the register whole: meetings, watch,
// retention, receipt, rejection rules, with the destinations' sectors.
func TestCouncilOptionsFromTheFile(t *testing.T) {
	c, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	c.NATS.Replicas = 3
	c.Destinations = map[string]Destination{"gp": {Adapter: "medcom", Sector: "gp"}}
	c.Council.Receipt = CouncilReceipt{Enabled: true, Destination: "gp", Template: "T", RequireConsent: true}
	c.Council.Rejections = []RejectionRule{{Name: "bup", Match: Match{Sender: []string{"6071000016008"}}, Words: []string{"afvis"}}}
	o := c.CouncilOptions()
	if !o.Enabled || o.Meetings.Rule != c.Council.Meetings.Rule || o.Meetings.Zone != c.Council.Meetings.Zone || o.Meetings.Cap != c.Council.Meetings.Cap || o.Meetings.CutoffDays != c.Council.Meetings.CutoffDays ||
		o.WatchDays != c.Council.WatchDays || o.RetentionDays != c.Council.RetentionDays || o.Replicas != 3 || o.Sectors["gp"] != "gp" {
		t.Fatalf("options %+v from %+v", o, c.Council)
	}
	if r := o.Receipt; !r.Enabled || r.Destination != "gp" || r.Template != "T" || !r.RequireConsent {
		t.Fatalf("receipt %+v", r)
	}
	if len(o.Rejections) != 1 || o.Rejections[0].Name != "bup" || o.Rejections[0].Match.Sender[0] != "6071000016008" || o.Rejections[0].Words[0] != "afvis" {
		t.Fatalf("rejections %+v", o.Rejections)
	}
}

// Every setting the pipeline reads reaches it, sizes as byte counts.
func TestHubOptionsFromTheFile(t *testing.T) {
	c, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	c.DataDir, c.NATS.Replicas = "/srv/samhub", 3
	c.Pipeline.MaxAttempts, c.Pipeline.BackoffInitial, c.Pipeline.BackoffMax, c.Pipeline.SinkTimeout = 5, 2*time.Second, time.Minute, 10*time.Second
	c.Pipeline.MaxInFlight, c.Pipeline.AckWait, c.Pipeline.ShutdownGrace = 64, 7*time.Second, 9*time.Second
	c.Pipeline.InlineMaxBytes, c.Pipeline.BlobMemory, c.Pipeline.BlobGCInterval = "2MB", "16MB", 3*time.Hour
	c.Streams.BlobsGrace = 5 * time.Hour
	c.Adapters = map[string]map[string]any{"medcom": {"type": "medcom", "in_dir": "/in"}}
	c.Destinations = map[string]Destination{"gp": {Adapter: "medcom", Sector: "gp", MaxAttempts: 2, BackoffInitial: time.Second, BackoffMax: 2 * time.Second, SinkTimeout: 3 * time.Second, Receiver: "5790000123456"}}
	c.Notify = Notify{Destination: "notices", Recipients: []string{"k@x.example"}, On: []string{"parked"}, Kinds: []string{"referral"}, ConsoleURL: "https://x.example/console"}
	c.Routes = []Route{{Name: "to-gp", To: []string{"gp"}}}
	o := c.HubOptions()
	s := o.Settings
	if s.MaxAttempts != 5 || s.BackoffInitial != 2*time.Second || s.BackoffMax != time.Minute || s.SinkTimeout != 10*time.Second || s.MaxInFlight != 64 ||
		s.AckWait != 7*time.Second || s.ShutdownGrace != 9*time.Second || s.InlineMaxBytes != 2<<20 || s.BlobMemory != 16<<20 ||
		s.BlobGCInterval != 3*time.Hour || s.BlobsGrace != 5*time.Hour {
		t.Fatalf("settings %+v from %+v", s, c.Pipeline)
	}
	if d := o.Destinations["gp"]; d.Adapter != "medcom" || d.Sector != "gp" || d.MaxAttempts != 2 || d.BackoffInitial != time.Second || d.BackoffMax != 2*time.Second || d.SinkTimeout != 3*time.Second {
		t.Fatalf("destination %+v", d)
	}
	if n := o.Notify; n.Destination != "notices" || n.Recipients[0] != "k@x.example" || n.On[0] != "parked" || n.Kinds[0] != "referral" || n.ConsoleURL != "https://x.example/console" {
		t.Fatalf("notify %+v", n)
	}
	if o.DataDir != "/srv/samhub" || o.Replicas != 3 || o.Adapters["medcom"]["in_dir"] != "/in" || o.Streams != c.Streams.Broker() ||
		o.Route.Rules[0].Name != "to-gp" || o.Route.Destinations["gp"].Receiver != "5790000123456" || !o.Council.Enabled || o.Council.Replicas != 3 {
		t.Fatalf("options %+v", o)
	}
}

// The council shows the consent of a sector only where a route needs it;
// for each single route, that is where the router denies a letter the
// route sends when no consent is recorded.
func TestConsentSectorsAgreeWithTheRouter(t *testing.T) {
	yes, no := true, false
	dests := map[string]Destination{"casefile": {Adapter: "casesys", Sector: "municipality"}, "gp": {Adapter: "medcom", Sector: "gp"},
		"region": {Adapter: "epj", Sector: "region_psychiatry"}, "notices": {Adapter: "mail", Sector: "internal"}, "parents": {Adapter: "post", Sector: "parents"}}
	for _, rt := range []Route{
		{Name: "to-case", Match: Match{Kind: []string{"referral"}}, To: []string{"casefile"}},
		{Name: "to-case-with-consent", Match: Match{Kind: []string{"referral"}}, To: []string{"casefile"}, RequireConsent: &yes},
		{Name: "to-gp", Match: Match{Kind: []string{"recommendation"}}, To: []string{"gp"}},
		{Name: "discharge-to-gp", Match: Match{Kind: []string{"discharge-note"}}, To: []string{"gp"}, RequireConsent: &no},
		{Name: "to-region", Match: Match{Kind: []string{"recommendation"}}, To: []string{"region"}},
		{Name: "to-parents", Match: Match{Kind: []string{"recommendation"}}, To: []string{"parents"}},
		{Name: "notices", Match: Match{Kind: []string{"notification"}}, To: []string{"notices"}},
	} {
		c, err := Load("")
		if err != nil {
			t.Fatal(err)
		}
		c.Destinations, c.Routes = dests, []Route{rt}
		got := c.CouncilOptions().ConsentSectors
		r := route.New(RouteOptions(c.Routes, c.Destinations, nil))
		d := r.Decide(&letter.Letter{Kind: letter.Kind(rt.Match.Kind[0])}, rt.To[0], nil, time.Now())
		if sector := dests[rt.To[0]].Sector; (d.Verdict == route.Deny) != slices.Contains(got, sector) {
			t.Errorf("route %s: the router says %s (%s), the council's consent sectors are %v", rt.Name, d.Verdict, d.Reason, got)
		}
	}
	c, _ := Load("")
	c.Destinations, c.Routes = dests, nil
	c.Council.Receipt = CouncilReceipt{Enabled: true, Destination: "gp", RequireConsent: true}
	if got := c.CouncilOptions().ConsentSectors; !slices.Equal(got, []string{"gp"}) {
		t.Errorf("a receipt that checks consent: %v, want [gp]", got)
	}
}
