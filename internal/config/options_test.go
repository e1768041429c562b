package config

import (
	"errors"
	"testing"
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
	if !o.Enabled || o.Meetings.Rule != c.Council.Meetings.Rule || o.Meetings.Zone != c.Council.Meetings.Zone || o.Meetings.Cap != c.Council.Meetings.Cap ||
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
