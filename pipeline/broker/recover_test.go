package broker

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The supervisor restarts the embedded server after a store fault only once
// the store's filesystem has room, and the broker is not ready in between;
// the hub's connection follows to the new server. (The full-disk scenario in reliability/ fills a real
// filesystem; here the fault report and the free space are given.)
func TestStoreFaultRestartsTheServerOnceThereIsRoom(t *testing.T) {
	b, err := Open(context.Background(), Options{Embedded: EmbeddedOptions{StoreDir: t.TempDir(), MaxStore: 1 << 30, Cipher: "chacha"}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	b.sup.close() // the test drives the checks itself
	ctx := context.Background()
	st, err := b.JS.CreateStream(ctx, jetstream.StreamConfig{Name: "PROBE", Subjects: []string{"probe"}, Storage: jetstream.FileStorage, MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.JS.Publish(ctx, "probe", []byte("before")); err != nil {
		t.Fatal(err)
	}
	var room atomic.Uint64
	b.sup.free = func(string) (uint64, error) { return room.Load(), nil }
	var restarts atomic.Int32
	b.OnStoreRestart(func() { restarts.Add(1) })

	// What nats-server logs when a write hits a full disk.
	b.Server.Errorf("Filestore [PROBE] Critical write error: write /x/1.blk: no space left on device")
	if err := b.Ready(ctx); err == nil || !strings.Contains(err.Error(), "cannot be written") {
		t.Fatalf("ready with a faulted store: %v", err)
	}
	room.Store(StoreRoomNeeded - 1)
	b.sup.check()
	if restarts.Load() != 0 {
		t.Fatal("JetStream restarted while the filesystem had no room")
	}
	room.Store(StoreRoomNeeded)
	b.sup.check()
	if restarts.Load() != 1 {
		t.Fatalf("%d restarts once there was room, want 1", restarts.Load())
	}
	ready(t, b)
	// The streams were loaded again and take writes on the same connection.
	if _, err := b.JS.Publish(ctx, "probe", []byte("after")); err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 2 {
		t.Fatalf("%d messages in the stream after the restart, want 2", info.State.Msgs)
	}
	// A second fault right away waits out the gap between restarts.
	b.Server.Errorf("JetStream stream '$G > PROBE' critical write error: no space left on device")
	b.sup.check()
	if restarts.Load() != 1 {
		t.Fatalf("restarted again within %s", storeRestartGap)
	}
}

// JetStream switched off (nats-server does that on some write errors) is
// brought back as well.
func TestDisabledJetStreamIsStartedAgain(t *testing.T) {
	b, err := Open(context.Background(), Options{Embedded: EmbeddedOptions{StoreDir: t.TempDir(), MaxStore: 1 << 30, Cipher: "chacha"}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	b.sup.close()
	b.sup.free = func(string) (uint64, error) { return StoreRoomNeeded, nil }
	if err := b.Server.ShutdownJetStream(); err != nil {
		t.Fatal(err)
	}
	if err := b.Ready(context.Background()); err == nil {
		t.Fatal("ready without JetStream")
	}
	b.sup.check()
	ready(t, b)
}

// ready waits until the broker is ready (the connection reconnects to the
// restarted server within a few of its 250 ms reconnect waits).
func ready(t *testing.T, b *Broker) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := b.Ready(context.Background())
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready 30 s after the restart: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
