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
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/samhub/samhub/internal/config"
	"github.com/samhub/samhub/internal/testpki"
	"github.com/samhub/samhub/pipeline/broker"
)

// Real nats-server instances in process stand in for an external NATS.

const (
	natsUser     = "samhub"
	natsPassword = "external-test-secret"
)

func startNATS(t *testing.T, o *server.Options) *server.Server {
	t.Helper()
	o.JetStream, o.NoSigs, o.NoLog = true, true, true
	if o.StoreDir == "" {
		o.StoreDir = t.TempDir()
	}
	if o.Port == 0 {
		o.Port = -1
	}
	srv, err := server.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	return srv
}

func withAuth(o *server.Options) *server.Options {
	o.Username, o.Password = natsUser, natsPassword
	return o
}

// authURL puts the test user into a server's client URL.
func authURL(u string) string {
	return strings.Replace(u, "://", "://"+natsUser+":"+natsPassword+"@", 1)
}

func openExternal(t *testing.T, cfg config.NATS) (*broker.Broker, error) {
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
	var ce *config.Error
	if !errors.As(err, &ce) || ce.Key != key || !strings.Contains(err.Error(), why) {
		t.Fatalf("got %v, want a refusal naming %s and %q", err, key, why)
	}
}

func TestExternalNATSWithoutAuthenticationIsRefused(t *testing.T) {
	srv := startNATS(t, &server.Options{Host: "127.0.0.1"})
	_, err := openExternal(t, config.NATS{URL: srv.ClientURL(), Replicas: 1})
	wantRefusal(t, err, "nats.url", "without authentication")
}

func TestExternalNATSOnLoopbackWithAuthentication(t *testing.T) {
	srv := startNATS(t, withAuth(&server.Options{Host: "127.0.0.1"}))
	b, err := openExternal(t, config.NATS{URL: authURL(srv.ClientURL()), Replicas: 1})
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
	_, err := openExternal(t, config.NATS{URL: authURL(plain.ClientURL()), Replicas: 1})
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
	if _, err := openExternal(t, config.NATS{URL: url, Replicas: 1, TLS: config.TLS{CAFile: caFile}}); err != nil {
		t.Fatalf("TLS with authentication beyond loopback: %v", err)
	}
}

// startCluster runs three JetStream nodes with authentication and returns
// their client URLs (with the test user).
func startCluster(t *testing.T) string {
	t.Helper()
	free := func() int {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}
	routes := []int{free(), free(), free()}
	var urls []string
	for i := range 3 {
		o := withAuth(&server.Options{ServerName: fmt.Sprintf("n%d", i+1), Host: "127.0.0.1",
			Cluster: server.ClusterOpts{Name: "samhub-test", Host: "127.0.0.1", Port: routes[i]}})
		for j := range 3 {
			if j != i {
				o.Routes = append(o.Routes, server.RoutesFromStr(fmt.Sprintf("nats-route://127.0.0.1:%d", routes[j]))...)
			}
		}
		urls = append(urls, authURL(startNATS(t, o).ClientURL()))
	}
	all := strings.Join(urls, ",")
	nc, err := nats.Connect(all)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "PROBE", Subjects: []string{"probe"}, Replicas: 3, Storage: jetstream.FileStorage})
		if err == nil {
			err = js.DeleteStream(ctx, "PROBE")
		}
		cancel()
		if err == nil {
			return all
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cluster did not elect a JetStream leader: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// On a cluster, letters are kept on three nodes: nats.replicas 1 is
// refused, and streams that exist with other replicas or on memory are
// refused with the setting named.
func TestExternalClusterNeedsReplicatedFileStreams(t *testing.T) {
	urls := startCluster(t)
	_, err := openExternal(t, config.NATS{URL: urls, Replicas: 1})
	wantRefusal(t, err, "nats.replicas", "cluster")

	b, err := openExternal(t, config.NATS{URL: urls, Replicas: 3})
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
	b, err := broker.Open(ctx, config.NATS{URL: url, Replicas: 1}, slog.New(slog.DiscardHandler))
	if err == nil {
		b.Close()
		t.Fatal("started with wrong credentials")
	}
	wantRefusal(t, err, "nats.url", "Authorization Violation")
	if strings.Contains(err.Error(), "wrong") {
		t.Errorf("the password is in the message: %v", err)
	}
}
