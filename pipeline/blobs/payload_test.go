package blobs_test

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/samhub/samhub/pipeline/blobs"
	"github.com/samhub/samhub/pipeline/broker"
)

// On an external server with nats-server's default max_payload (1 MB), a
// chunk with its headers must still fit: a part is stored and read back
// whole, whatever chunk size the hub asks for.
func TestPartsFitADefaultServersMaxPayload(t *testing.T) {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(30 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if mp := nc.MaxPayload(); mp != 1<<20 {
		t.Fatalf("the server's max_payload is %d, want the default 1 MB", mp)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s := broker.Streams{LettersMaxBytes: 64 << 20, ParkedMaxBytes: 32 << 20, JourneyMaxBytes: 32 << 20, AuditMaxBytes: 32 << 20, MaxMsgSize: 1 << 20, BlobsMaxBytes: 256 << 20,
		LettersMaxAge: time.Hour, DedupWindow: 2 * time.Minute, JourneyMaxAge: time.Hour, AuditMaxAge: time.Hour}
	if err := broker.Provision(ctx, js, s, 1); err != nil {
		t.Fatal(err)
	}
	st, err := blobs.New(ctx, js, blobs.Options{}) // the default 1 MiB chunk
	if err != nil {
		t.Fatal(err)
	}
	part := random(t, 3<<20+5)
	name := "sha256-" + hexDigest(part)
	if _, err := st.PutFrom(ctx, name, int64(len(part)), func(context.Context) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(part)), nil
	}); err != nil {
		t.Fatalf("put a 3 MB part on a server with a 1 MB max_payload: %v", err)
	}
	r, err := st.Open(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, part) {
		t.Fatalf("read back %d bytes (%v), want the %d stored", len(got), err, len(part))
	}
}
