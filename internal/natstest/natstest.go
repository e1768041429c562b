// Package natstest starts real nats-server instances in process for tests
// that need an external NATS: one server, or a three-node JetStream
// cluster, each requiring the test user.
package natstest

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The test user every server started here requires.
const (
	User     = "samhub"
	Password = "external-test-secret"
)

// Start runs a JetStream server with o (a temporary store and a random
// port unless o names them) until the test ends.
func Start(t testing.TB, o *server.Options) *server.Server {
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

// WithAuth makes o require the test user.
func WithAuth(o *server.Options) *server.Options {
	o.Username, o.Password = User, Password
	return o
}

// AuthURL puts the test user into a server's client URL.
func AuthURL(u string) string {
	return strings.Replace(u, "://", "://"+User+":"+Password+"@", 1)
}

// StartCluster runs three JetStream nodes on loopback that require the
// test user, waits until the cluster places a replicated stream, and
// returns their client URLs (with the user), comma-separated as nats.url
// takes them.
func StartCluster(t testing.TB) string {
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
		o := WithAuth(&server.Options{ServerName: fmt.Sprintf("n%d", i+1), Host: "127.0.0.1",
			Cluster: server.ClusterOpts{Name: "samhub-test", Host: "127.0.0.1", Port: routes[i]}})
		for j := range 3 {
			if j != i {
				o.Routes = append(o.Routes, server.RoutesFromStr(fmt.Sprintf("nats-route://127.0.0.1:%d", routes[j]))...)
			}
		}
		urls = append(urls, AuthURL(Start(t, o).ClientURL()))
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
