package broker_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/internal/natstest"
	"github.com/samhub/samhub/internal/testpki"
	"github.com/samhub/samhub/internal/tlsconf"
	"github.com/samhub/samhub/pipeline/broker"
)

// Real nats-server instances in process stand in for an external NATS.

const (
	natsUser     = natstest.User
	natsPassword = natstest.Password
)

var (
	startNATS = natstest.Start
	withAuth  = natstest.WithAuth
	authURL   = natstest.AuthURL
)

func openExternal(t *testing.T, cfg broker.Options) (*broker.Broker, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := broker.Open(ctx, cfg, slog.New(slog.DiscardHandler))
	if err == nil {
		t.Cleanup(b.Close)
	}
	return b, err
}

// wantRefusal checks err is a configuration error naming key and saying why.
func wantRefusal(t *testing.T, err error, key, why string) {
	t.Helper()
	var ce *broker.SettingError
	if !errors.As(err, &ce) || ce.Key != key || !strings.Contains(err.Error(), why) {
		t.Fatalf("got %v, want a refusal naming %s and %q", err, key, why)
	}
}

func TestExternalNATSWithoutAuthenticationIsRefused(t *testing.T) {
	srv := startNATS(t, &server.Options{Host: "127.0.0.1"})
	_, err := openExternal(t, broker.Options{URL: srv.ClientURL(), Replicas: 1})
	wantRefusal(t, err, "nats.url", "without authentication")
}

func TestExternalNATSOnLoopbackWithAuthentication(t *testing.T) {
	srv := startNATS(t, withAuth(&server.Options{Host: "127.0.0.1"}))
	b, err := openExternal(t, broker.Options{URL: authURL(srv.ClientURL()), Replicas: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := broker.Provision(context.Background(), b.JS, streams(), 1); err != nil {
		t.Fatal(err)
	}
}

// hostAddress is an address of this machine beyond loopback.
func hostAddress(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
			return n.IP.String()
		}
	}
	t.Skip("this machine has no address beyond loopback to reach a server on")
	return ""
}

// Beyond loopback the connection must be TLS: plaintext is refused even
// with authentication (the password would cross the network in the
// clear); TLS with authentication is accepted.
func TestExternalNATSBeyondLoopbackNeedsTLS(t *testing.T) {
	host := hostAddress(t)
	plain := startNATS(t, withAuth(&server.Options{Host: host}))
	_, err := openExternal(t, broker.Options{URL: authURL(plain.ClientURL()), Replicas: 1})
	wantRefusal(t, err, "nats.tls", "plaintext")

	ca, err := testpki.New("nats test CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue("nats", []string{host}, x509.ExtKeyUsageServerAuth)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, ca.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	o := withAuth(&server.Options{Host: host, TLS: true, TLSConfig: &tls.Config{Certificates: []tls.Certificate{leaf.TLS}, MinVersion: tls.VersionTLS12}})
	secure := startNATS(t, o)
	url := fmt.Sprintf("tls://%s:%s@%s", natsUser, natsPassword, secure.Addr().String())
	if _, err := openExternal(t, broker.Options{URL: url, Replicas: 1, TLS: tlsconf.Files{CAFile: caFile}}); err != nil {
		t.Fatalf("TLS with authentication beyond loopback: %v", err)
	}
}

func startCluster(t *testing.T) string { return natstest.StartCluster(t) }

// On a cluster, letters are kept on three nodes: nats.replicas 1 is
// refused, and streams that exist with other replicas or on memory are
// refused with the setting named.
func TestExternalClusterNeedsReplicatedFileStreams(t *testing.T) {
	urls := startCluster(t)
	_, err := openExternal(t, broker.Options{URL: urls, Replicas: 1})
	wantRefusal(t, err, "nats.replicas", "cluster")

	b, err := openExternal(t, broker.Options{URL: urls, Replicas: 3})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// A journey stream someone made with one replica.
	if _, err := b.JS.CreateStream(ctx, jetstream.StreamConfig{Name: broker.StreamJourney, Subjects: []string{broker.SubjJourney + ".>"}, Storage: jetstream.FileStorage, Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	err = broker.Provision(ctx, b.JS, streams(), 3)
	wantRefusal(t, err, "nats.replicas", broker.StreamJourney)
	if err := b.JS.DeleteStream(ctx, broker.StreamJourney); err != nil {
		t.Fatal(err)
	}
	// The state bucket's stream on memory.
	if _, err := b.JS.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: broker.BucketState, Storage: jetstream.MemoryStorage, Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	err = broker.Provision(ctx, b.JS, streams(), 3)
	if err == nil || !strings.Contains(err.Error(), "KV_"+broker.BucketState) || !strings.Contains(err.Error(), "memory storage") {
		t.Fatalf("got %v, want a refusal naming KV_%s and memory storage", err, broker.BucketState)
	}
	if err := b.JS.DeleteKeyValue(ctx, broker.BucketState); err != nil {
		t.Fatal(err)
	}
	if err := broker.Provision(ctx, b.JS, streams(), 3); err != nil {
		t.Fatalf("as configured: %v", err)
	}
	st, err := b.JS.Stream(ctx, broker.StreamLetters)
	if err != nil {
		t.Fatal(err)
	}
	if c := st.CachedInfo().Config; c.Replicas != 3 || c.Storage != jetstream.FileStorage {
		t.Fatalf("letter stream made with %d replicas on %v", c.Replicas, c.Storage)
	}
}

// A server that never lets the hub in is reported with its reason, not as
// a server that does not answer.
func TestExternalNATSWrongCredentialsAreReported(t *testing.T) {
	srv := startNATS(t, withAuth(&server.Options{Host: "127.0.0.1"}))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	url := strings.Replace(srv.ClientURL(), "://", "://"+natsUser+":wrong@", 1)
	b, err := broker.Open(ctx, broker.Options{URL: url, Replicas: 1}, slog.New(slog.DiscardHandler))
	if err == nil {
		b.Close()
		t.Fatal("started with wrong credentials")
	}
	wantRefusal(t, err, "nats.url", "Authorization Violation")
	if strings.Contains(err.Error(), "wrong") {
		t.Errorf("the password is in the message: %v", err)
	}
}

// On a cluster the state bucket has three replicas, and the server reports
// a revision conflict with another error code (10164, not 10071): an
// adapter must still see ErrConflict and ErrExists, or it takes a lost race
// for a failure (the MedCom sink's outbox update once parked a GP letter so).
func TestStateStoreConflictsOnACluster(t *testing.T) {
	b, err := openExternal(t, broker.Options{URL: startCluster(t), Replicas: 3})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := broker.Provision(ctx, b.JS, streams(), 3); err != nil {
		t.Fatal(err)
	}
	st, err := broker.NewStateStore(ctx, b.JS, "medcom")
	if err != nil {
		t.Fatal(err)
	}
	rev, err := st.Create(ctx, "outbox", []byte("1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Create(ctx, "outbox", []byte("2")); !errors.Is(err, adapters.ErrExists) {
		t.Fatalf("second create: %v, want ErrExists", err)
	}
	// Writers racing on one revision, as the MedCom sink's deliveries do:
	// one wins, every other one is told of a conflict. The server answers
	// 10164 to a write racing one still in flight on the same subject.
	for round := range 20 {
		const writers = 8
		errs := make(chan error, writers)
		for w := range writers {
			go func() {
				_, err := st.Update(ctx, "outbox", []byte(fmt.Sprint(round, w)), rev)
				errs <- err
			}()
		}
		won := 0
		for range writers {
			err := <-errs
			switch {
			case err == nil:
				won++
			case !errors.Is(err, adapters.ErrConflict):
				t.Fatalf("round %d: a lost race gave %v, want ErrConflict", round, err)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d writers won, want 1", round, won)
		}
		_, rev, err = st.Get(ctx, "outbox")
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.Update(ctx, "outbox", []byte("3"), rev-1); !errors.Is(err, adapters.ErrConflict) {
		t.Fatalf("stale update: %v, want ErrConflict", err)
	}
	// A deleted key (a purge of its subject on the replicated bucket)
	// conflicts with its old revision, is gone from a scan, and can be
	// created again.
	if err := st.Delete(ctx, "outbox"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Update(ctx, "outbox", []byte("4"), rev); !errors.Is(err, adapters.ErrConflict) {
		t.Fatalf("update of a deleted key: %v, want ErrConflict", err)
	}
	for _, k := range []string{"pending.a", "pending.b"} {
		if _, err := st.Create(ctx, k, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	// A purge adds no sequence, so a scan whose consumer sits on a
	// replica that has not applied it yet can still list the key for a
	// moment (CI run 58); the next scan does not. The MedCom outbox, the
	// one reader, meets such a key as one deleted during its scan.
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := st.Scan(ctx, "")
		if err == nil && len(got) == 2 && got[0].Key != "outbox" && got[1].Key != "outbox" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("scan on the cluster: %v %v, want the two pending keys", got, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := st.Create(ctx, "outbox", []byte("5")); err != nil {
		t.Fatalf("create after delete: %v", err)
	}
}
