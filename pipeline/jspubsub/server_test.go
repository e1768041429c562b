package jspubsub_test

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// broker is an in-process nats-server with JetStream that a test can
// restart on the same port and store directory.
type broker struct {
	t    testing.TB
	opts server.Options
	mu   sync.Mutex
	srv  *server.Server
}

func startBroker(t testing.TB) *broker {
	t.Helper()
	b := &broker{t: t, opts: server.Options{
		Host:       "127.0.0.1",
		Port:       -1,
		JetStream:  true,
		StoreDir:   t.TempDir(),
		SyncAlways: true,
		NoLog:      true,
		NoSigs:     true,
	}}
	b.start()
	// Later restarts reuse the port clients reconnect to.
	b.opts.Port = b.srv.Addr().(*net.TCPAddr).Port
	t.Cleanup(b.stop)
	return b
}

func (b *broker) start() {
	b.t.Helper()
	opts := b.opts
	srv, err := server.NewServer(&opts)
	if err != nil {
		b.t.Fatalf("new nats-server: %v", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		b.t.Fatal("nats-server not ready within 10s")
	}
	if c := srv.JetStreamConfig(); c == nil || !c.SyncAlways {
		b.t.Fatal("nats-server runs without JetStream sync_always")
	}
	b.mu.Lock()
	b.srv = srv
	b.mu.Unlock()
}

func (b *broker) stop() {
	b.mu.Lock()
	srv := b.srv
	b.mu.Unlock()
	srv.Shutdown()
	srv.WaitForShutdown()
}

// restart stops the server and starts a new one on the same port and store.
func (b *broker) restart() {
	b.stop()
	b.start()
}

func (b *broker) url() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.srv.ClientURL()
}

// connect returns a JetStream context on a connection closed at cleanup.
func (b *broker) connect(t testing.TB) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(b.url(),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(20*time.Millisecond),
		nats.Name(fmt.Sprintf("jspubsub-test-%s", t.Name())),
	)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return nc, js
}

// eventually retries check until it returns nil or the deadline passes, and
// fails with the last error.
func eventually(t testing.TB, within time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s: %v", within, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
