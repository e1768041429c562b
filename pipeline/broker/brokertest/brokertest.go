// Package brokertest starts the hub's embedded JetStream server for tests:
// the real server with the hub's settings (SyncAlways, file store,
// encryption) in a temporary directory.
package brokertest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/samhub/samhub/pipeline/broker"
)

// Open starts an embedded server, closed when the test ends.
func Open(t testing.TB) *broker.Broker {
	t.Helper()
	b, err := broker.Open(context.Background(), broker.Options{Embedded: broker.EmbeddedOptions{StoreDir: t.TempDir(), MaxStore: 1 << 30, Cipher: "chacha"}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// Streams are stream sizes small enough for a test's store.
func Streams() broker.Streams {
	return broker.Streams{LettersMaxBytes: 64 << 20, ParkedMaxBytes: 32 << 20, JourneyMaxBytes: 32 << 20, AuditMaxBytes: 32 << 20, MaxMsgSize: 8 << 20,
		LettersMaxAge: time.Hour, DedupWindow: 2 * time.Minute, JourneyMaxAge: time.Hour, AuditMaxAge: time.Hour}
}

// Provisioned is Open with the hub's streams and buckets made.
func Provisioned(t testing.TB) *broker.Broker {
	t.Helper()
	b := Open(t)
	if err := broker.Provision(context.Background(), b.JS, Streams(), 1); err != nil {
		t.Fatal(err)
	}
	return b
}
