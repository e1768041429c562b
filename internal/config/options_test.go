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
