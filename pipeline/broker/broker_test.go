package broker_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/pipeline/broker"
	"github.com/samhub/samhub/pipeline/broker/brokertest"
)

var (
	open    = brokertest.Open
	streams = brokertest.Streams
)

// The broker keeps the adapters' state without importing package adapters.
var _ adapters.StateStore = (*broker.StateStore)(nil)

func TestEmbeddedServerIsDurableAndPrivate(t *testing.T) {
	b := open(t)
	opts := b.Server.JetStreamConfig()
	if opts == nil || !opts.SyncAlways {
		t.Fatal("the embedded server must fsync every write (SyncAlways)")
	}
	if b.Server.Addr() != nil {
		t.Fatalf("the embedded server listens on %v; it must not open a TCP port by default", b.Server.Addr())
	}
	if err := b.Ready(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestProvisionRefusesUnsafeLetterStreams(t *testing.T) {
	cases := []struct {
		name string
		cfg  jetstream.StreamConfig
		want string
	}{
		{"memory", jetstream.StreamConfig{Storage: jetstream.MemoryStorage, Discard: jetstream.DiscardNew, MaxBytes: 1 << 20}, "memory storage"},
		{"discard old", jetstream.StreamConfig{Storage: jetstream.FileStorage, Discard: jetstream.DiscardOld, MaxBytes: 1 << 20}, "DiscardOld"},
		{"unlimited", jetstream.StreamConfig{Storage: jetstream.FileStorage, Discard: jetstream.DiscardNew}, "no size limit"},
		{"work queue", jetstream.StreamConfig{Storage: jetstream.FileStorage, Discard: jetstream.DiscardNew, MaxBytes: 1 << 20, Retention: jetstream.WorkQueuePolicy}, "work-queue"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := open(t)
			c.cfg.Name, c.cfg.Subjects = broker.StreamLetters, []string{"samhub.letters.>"}
			if _, err := b.JS.CreateStream(context.Background(), c.cfg); err != nil {
				t.Fatal(err)
			}
			err := broker.Provision(context.Background(), b.JS, streams(), 1)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), broker.StreamLetters) {
				t.Fatalf("got %v, want an error naming %s and %q", err, broker.StreamLetters, c.want)
			}
		})
	}
}

func TestProvisionIsRepeatable(t *testing.T) {
	b := open(t)
	for range 2 {
		if err := broker.Provision(context.Background(), b.JS, streams(), 1); err != nil {
			t.Fatal(err)
		}
	}
}

// Only the journey may trade its fsync per write for buffered writes; the
// letters, the retry queue and the audit log stay synced.
func TestOnlyTheJourneyPersistsAsync(t *testing.T) {
	b := open(t)
	ctx := context.Background()
	s := streams()
	s.JourneyAsync = true
	for range 2 { // the second run finds the streams made by the first
		if err := broker.Provision(ctx, b.JS, s, 1); err != nil {
			t.Fatal(err)
		}
	}
	for name, want := range map[string]jetstream.PersistModeType{broker.StreamJourney: jetstream.AsyncPersistMode,
		broker.StreamLetters: jetstream.DefaultPersistMode, broker.StreamParked: jetstream.DefaultPersistMode, broker.StreamAudit: jetstream.DefaultPersistMode} {
		st, err := b.JS.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.CachedInfo().Config.PersistMode; got != want {
			t.Errorf("stream %s persists %v, want %v", name, got, want)
		}
	}
}

// twoStateStores provisions a broker and opens the state of two adapter
// instances, medcom and casesys.
func twoStateStores(t testing.TB) (*broker.Broker, *broker.StateStore, *broker.StateStore) {
	t.Helper()
	b := open(t)
	ctx := context.Background()
	if err := broker.Provision(ctx, b.JS, streams(), 1); err != nil {
		t.Fatal(err)
	}
	a, err := broker.NewStateStore(ctx, b.JS, "medcom")
	if err != nil {
		t.Fatal(err)
	}
	other, err := broker.NewStateStore(ctx, b.JS, "casesys")
	if err != nil {
		t.Fatal(err)
	}
	return b, a, other
}

func TestStateStore(t *testing.T) {
	b, a, other := twoStateStores(t)
	ctx := context.Background()
	if _, _, err := a.Get(ctx, "k"); !errors.Is(err, adapters.ErrNotFound) {
		t.Fatalf("missing key: %v", err)
	}
	rev, err := a.Create(ctx, "k", []byte("1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Create(ctx, "k", []byte("2")); !errors.Is(err, adapters.ErrExists) {
		t.Fatalf("second create: %v", err)
	}
	if _, err := a.Update(ctx, "k", []byte("3"), rev+5); !errors.Is(err, adapters.ErrConflict) {
		t.Fatalf("stale update: %v", err)
	}
	if _, err := a.Update(ctx, "k", []byte("3"), rev); err != nil {
		t.Fatal(err)
	}
	if v, _, _ := a.Get(ctx, "k"); string(v) != "3" {
		t.Fatalf("value %q", v)
	}
	if _, _, err := other.Get(ctx, "k"); !errors.Is(err, adapters.ErrNotFound) {
		t.Fatal("adapters must not see each other's state")
	}
	if _, err := a.Put(ctx, "bad key", nil); err == nil {
		t.Fatal("a key with a space must be refused")
	}
	if err := a.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Get(ctx, "k"); !errors.Is(err, adapters.ErrNotFound) {
		t.Fatalf("deleted key: %v", err)
	}
	// A deleted key leaves nothing in the bucket (no marker kept for good).
	bucket, err := b.JS.Stream(ctx, "KV_"+broker.BucketState)
	if err != nil {
		t.Fatal(err)
	}
	if m, err := bucket.GetLastMsgForSubject(ctx, "$KV."+broker.BucketState+".medcom.k"); !errors.Is(err, jetstream.ErrMsgNotFound) {
		t.Errorf("the deleted key left %v (%v)", m, err)
	}
	if _, err := a.Update(ctx, "k", []byte("4"), rev+1); !errors.Is(err, adapters.ErrConflict) {
		t.Errorf("an update with the deleted key's revision: %v, want a conflict", err)
	}
	if _, err := a.Create(ctx, "k", []byte("5")); err != nil {
		t.Errorf("create after delete: %v", err)
	}
}

// Scan gives the last value of every key under a prefix, its own
// instance's only, and none of the deleted ones, whether purged or marked
// deleted (as earlier versions did), and leaves no consumer behind.
func TestStateStoreScan(t *testing.T) {
	b, a, other := twoStateStores(t)
	ctx := context.Background()
	if got, err := a.Scan(ctx, "pending."); err != nil || len(got) != 0 {
		t.Fatalf("empty scan: %v %v", got, err)
	}
	want := map[string]string{}
	for i := range 300 { // more than the watcher's buffer of 256
		k := fmt.Sprintf("pending.%03d", i)
		if _, err := a.Put(ctx, k, []byte("v1")); err != nil {
			t.Fatal(err)
		}
		want[k] = "v1"
	}
	rev, _ := a.Put(ctx, "pending.007", []byte("v2"))
	want["pending.007"] = "v2"
	_ = a.Delete(ctx, "pending.100")
	delete(want, "pending.100")
	kv, err := b.JS.KeyValue(ctx, broker.BucketState)
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(ctx, "medcom.pending.200"); err != nil { // a marker
		t.Fatal(err)
	}
	delete(want, "pending.200")
	_, _ = a.Put(ctx, "pendingx", []byte("not under the prefix"))
	_, _ = a.Put(ctx, "sent.1", []byte("not under the prefix"))
	_, _ = other.Put(ctx, "pending.999", []byte("another instance's"))

	got, err := a.Scan(ctx, "pending.")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for _, e := range got {
		seen[e.Key] = string(e.Value)
		if e.Key == "pending.007" && e.Revision != rev {
			t.Errorf("pending.007 at revision %d, want %d", e.Revision, rev)
		}
	}
	if !maps.Equal(seen, want) {
		t.Errorf("scan gave %d keys, want %d; missing or wrong: %v", len(seen), len(want), diffKeys(seen, want))
	}
	if all, err := a.Scan(ctx, ""); err != nil || len(all) != len(want)+2 {
		t.Errorf("scan of all keys: %d %v, want %d", len(all), err, len(want)+2)
	}
	for _, bad := range []string{"pending", "pend*.", "a >."} {
		if _, err := a.Scan(ctx, bad); err == nil {
			t.Errorf("prefix %q accepted", bad)
		}
	}
	st, err := b.JS.Stream(ctx, "KV_"+broker.BucketState)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := st.Info(ctx); err != nil || info.State.Consumers != 0 {
		t.Errorf("the bucket's stream has consumers after the scans: %v %v", info, err)
	}
}

func diffKeys(got, want map[string]string) []string {
	var d []string
	for k, v := range want {
		if got[k] != v {
			d = append(d, k)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			d = append(d, k)
		}
	}
	return d
}

func TestLeaseRunsASourceOnOneReplicaAtATime(t *testing.T) {
	b := open(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := broker.Provision(ctx, b.JS, streams(), 1); err != nil {
		t.Fatal(err)
	}
	running := make(chan string, 4)
	run := func(holder string) {
		go broker.RunLeased(ctx, b.JS, "inbox", holder, slog.New(slog.DiscardHandler), func(c context.Context) error {
			running <- holder
			<-c.Done()
			return nil
		})
	}
	run("replica-a")
	first := <-running
	run("replica-b")
	select {
	case second := <-running:
		t.Fatalf("%s started while %s held the lease", second, first)
	case <-time.After(2 * time.Second):
	}
}

// A restarted replica (same data directory) takes up the lease its previous
// life held at once; a second live hub cannot take the same name.
func TestReplicaNameIsKeptAndExclusive(t *testing.T) {
	dir := t.TempDir()
	r, err := broker.ClaimReplica(dir)
	if err != nil {
		t.Fatal(err)
	}
	if r.ID == "" {
		t.Fatal("empty replica name")
	}
	if _, err := broker.ClaimReplica(dir); err == nil || !strings.Contains(err.Error(), "in use by another running samhub") {
		t.Fatalf("a second claim on a live data directory: %v, want it refused", err)
	}
	r.Release()
	again, err := broker.ClaimReplica(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Release()
	if again.ID != r.ID {
		t.Fatalf("after a restart the replica is %q, was %q", again.ID, r.ID)
	}
	other, err := broker.ClaimReplica(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Release()
	if other.ID == r.ID {
		t.Fatal("two data directories got the same replica name")
	}
}

func TestRestartedReplicaTakesUpItsOwnLease(t *testing.T) {
	b := open(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := broker.Provision(ctx, b.JS, streams(), 1); err != nil {
		t.Fatal(err)
	}
	kv, err := b.JS.KeyValue(ctx, broker.BucketLeases)
	if err != nil {
		t.Fatal(err)
	}
	// The previous life of replica-a died holding the lease (kill -9: no
	// delete), and replica-b is waiting for it.
	if _, err := kv.Create(ctx, "source.inbox", []byte("replica-a")); err != nil {
		t.Fatal(err)
	}
	held := time.Now()
	running := make(chan string, 4)
	run := func(holder string) {
		go broker.RunLeased(ctx, b.JS, "inbox", holder, slog.New(slog.DiscardHandler), func(c context.Context) error {
			running <- holder
			<-c.Done()
			return nil
		})
	}
	run("replica-b")
	run("replica-a")
	select {
	case got := <-running:
		if got != "replica-a" {
			t.Fatalf("%s took the lease replica-a still held", got)
		}
		if since := time.Since(held); since >= broker.LeaseTTL {
			t.Fatalf("replica-a started after %s, only once its old lease had expired", since)
		}
	case <-time.After(broker.LeaseTTL):
		t.Fatal("replica-a did not take up its own lease")
	}
	// replica-b keeps waiting while replica-a renews.
	select {
	case got := <-running:
		t.Fatalf("%s started while replica-a held the lease", got)
	case <-time.After(broker.LeaseTTL + 2*time.Second):
	}
}

// The embedded server takes no client without credentials: the hub's own
// in-process connection has a password made at start, and when it listens
// on TCP, other processes use samhub-tools with the password written to
// tools_password_file.
func TestEmbeddedServerRequiresCredentials(t *testing.T) {
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	pwFile := filepath.Join(dir, "nats-tools.password")
	b, err := broker.Open(context.Background(), broker.Options{Embedded: broker.EmbeddedOptions{StoreDir: filepath.Join(dir, "js"), MaxStore: 1 << 30, Cipher: "chacha",
		Listen: addr, ToolsPasswordFile: pwFile}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := broker.Provision(context.Background(), b.JS, streams(), 1); err != nil {
		t.Fatal(err)
	}
	// No credentials, or wrong ones: refused.
	for name, opts := range map[string][]nats.Option{
		"none":       nil,
		"wrong":      {nats.UserInfo(broker.ToolsUser, "guess")},
		"hub's name": {nats.UserInfo("samhub", "")},
	} {
		if nc, err := nats.Connect("nats://"+addr, append(opts, nats.MaxReconnects(0))...); err == nil {
			nc.Close()
			t.Errorf("%s: connected without valid credentials", name)
		} else if !strings.Contains(strings.ToLower(err.Error()), "authorization") {
			t.Errorf("%s: %v, want an authorization violation", name, err)
		}
	}
	// The tools user, with the password from the file, reads the streams.
	fi, err := os.Stat(pwFile)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", pwFile, fi.Mode().Perm())
	}
	pw, _ := os.ReadFile(pwFile)
	nc, err := nats.Connect("nats://"+addr, nats.UserInfo(broker.ToolsUser, strings.TrimSpace(string(pw))))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if _, err := js.Stream(context.Background(), broker.StreamLetters); err != nil {
		t.Fatalf("tools user: %v", err)
	}
	// A restart makes a new password.
	b.Close()
	b2, err := broker.Open(context.Background(), broker.Options{Embedded: broker.EmbeddedOptions{StoreDir: filepath.Join(dir, "js"), MaxStore: 1 << 30, Cipher: "chacha",
		Listen: addr, ToolsPasswordFile: pwFile}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	if pw2, _ := os.ReadFile(pwFile); string(pw2) == string(pw) {
		t.Error("the tools password survived a restart")
	}
}

// A clean start says nothing alarming: the server holds bcrypt hashes, not
// passwords, and the payload limit the hub sets on purpose is no warning.
// The in-process connection still authenticates.
func TestEmbeddedStartsWithoutWarnings(t *testing.T) {
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	emb, err := broker.StartEmbedded(broker.EmbeddedOptions{StoreDir: t.TempDir(), Listen: "127.0.0.1:0"}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Server.Shutdown()
	nc, err := emb.Connect()
	if err != nil {
		t.Fatalf("the hub's own user is refused: %v", err)
	}
	nc.Close()
	if s := logs.String(); s != "" {
		t.Errorf("warnings at a clean start:\n%s", s)
	}
	if _, err := nats.Connect(emb.ClientURL(), nats.UserInfo("samhub", "a-guess")); err == nil {
		t.Fatal("a wrong password was let in")
	}
}
