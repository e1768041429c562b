package reliability

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/samhub/samhub/internal/config"
	"github.com/samhub/samhub/internal/hubtest"
	"github.com/samhub/samhub/pipeline/broker"
)

// TestScenarioCluster is S2 and the scale-out test of issue 9.
//
// First a single external NATS server is stopped under a hub: while it is
// down the MedCom files stay in in/ (never acknowledged, never in
// processed/), and after it comes back on the same store they flow.
//
// Then a 3-node JetStream cluster runs in process (R3 streams, SyncAlways,
// routes through proxies the test can cut) with two hubs sharing one MedCom
// folder and one case system: hub A in process, hub B as a child process.
// Mid-run a NATS node is shut down and restarted, hub A is stopped
// gracefully and started again, one node is cut off from the other two (a
// partition) and healed, and hub B is killed with SIGKILL. Every letter
// must become exactly one document, every file must be processed once, and
// the MedCom folder's lease must pass between the hubs.
func TestScenarioCluster(t *testing.T) {
	restart := r1NATSRestart(t)
	c := r1ClusterRun(t)
	report(t, "cluster", "restart_letters", restart.letters, "restart_held_while_down", restart.held,
		"restart_files_put_back", restart.retried, "restart_lost", restart.lost, "restart_duplicates", restart.dup,
		"letters", c.letters, "hubs", 2, "nodes", 3, "node_restarts", 1, "partitions", c.partitions, "hub_stops", 1, "hub_kills", 1,
		"delivered_by_hub_b", c.deliveredByB, "lease_holders", c.holders, "lease_handovers", c.handovers, "lost", c.lost, "duplicates", c.dup, "processed_files", c.processed,
		"seed", c.seed)
}

type r1RestartFigures struct{ letters, held, lost, dup, retried int }

func r1NATSRestart(t *testing.T) (f r1RestartFigures) {
	m := size("CLUSTER_RESTART_LETTERS", 50, 500)
	opts := &server.Options{ServerName: "single", Host: "127.0.0.1", Port: r1FreePort(t), JetStream: true,
		StoreDir: filepath.Join(t.TempDir(), "js"), SyncAlways: true, JetStreamMaxStore: 4 << 30, JetStreamMaxMemory: 64 << 20,
		MaxPayload: 64 << 20, NoSigs: true}
	srv := r1StartNATS(t, opts)
	url := r1AuthURL(srv.ClientURL())
	log := &r1Log{}
	h := hubtest.Start(t, hubtest.WithLog(log), hubtest.WithConfig(func(c *config.Config) { c.NATS.URL, c.NATS.Replicas = url, 1 }))
	ledger := oNewLedger()
	for i := 0; i < m; i++ {
		id, data := r1Letter(t, "RST", i)
		ledger.Add(id, data, "casefile")
		h.Drop(fmt.Sprintf("rst-%07d.xml", i), data)
	}
	r1Wait(t, time.Duration(m/10+60)*time.Second, "first batch delivered", func() bool { return r1Delivered(ledger, h.CaseSys) >= m })

	srv.Shutdown()
	srv.WaitForShutdown()
	for i := m; i < 2*m; i++ {
		id, data := r1Letter(t, "RST", i)
		ledger.Add(id, data, "casefile")
		h.Drop(fmt.Sprintf("rst-%07d.xml", i), data)
	}
	// The source claims a file, cannot reach NATS (duplicate check or
	// publish) and puts the file back.
	r1Wait(t, 60*time.Second, "the hub to try a letter while NATS is down", func() bool { return log.Count("medcom: file will be retried") > 0 })
	time.Sleep(time.Second) // give a wrong acknowledgement time to happen
	f.held = r1Files(filepath.Join(h.MedComDir, "in")) + r1Files(filepath.Join(h.MedComDir, "processing"))
	processed := r1Files(filepath.Join(h.MedComDir, "processed"))
	f.retried = log.Count("medcom: file will be retried")
	if f.held != m || processed != m {
		t.Errorf("while NATS was down: %d files held in in/ or processing/, %d in processed/; want %d and %d", f.held, processed, m, m)
	}

	srv = r1StartNATS(t, opts)
	r1Wait(t, time.Duration(m/10+90)*time.Second, "second batch delivered after NATS came back", func() bool { return r1Delivered(ledger, h.CaseSys) >= 2*m })
	time.Sleep(500 * time.Millisecond)
	tally := r1CaseVerdict(ledger, h.CaseSys, r1Parked(t, h))
	f.letters, f.lost, f.dup = 2*m, tally.Lost(), tally.Dup()
	if tally.Once() != 2*m || len(tally.Stray) != 0 {
		t.Errorf("NATS restart: %s", tally)
	}
	h.Stop()
	return f
}

// The external NATS servers of the suite require a user and password: the
// hub refuses one that lets clients in without authentication.
const (
	r1NATSUser     = "samhub"
	r1NATSPassword = "reliability-secret"
)

// r1AuthURL puts the suite's NATS user into client URLs (a comma list).
func r1AuthURL(urls string) string {
	return strings.ReplaceAll(urls, "nats://", "nats://"+r1NATSUser+":"+r1NATSPassword+"@")
}

// r1StartNATS starts a nats-server in process, with the suite's user, and
// shuts it down when the test ends.
func r1StartNATS(t testing.TB, o *server.Options) *server.Server {
	t.Helper()
	o = o.Clone()
	o.Username, o.Password = r1NATSUser, r1NATSPassword
	srv, err := server.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("SAMHUB_TEST_LOG") != "" {
		srv.ConfigureLogger()
	}
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		t.Fatalf("nats-server %s not ready", o.ServerName)
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	return srv
}

// r1Cluster is three JetStream nodes whose routes pass through proxies:
// proxy[i][j] carries the connections node i opens to node j.
type r1Cluster struct {
	opts  []*server.Options
	srv   []*server.Server
	proxy [3][3]*r1Proxy
	urls  string
}

func r1StartCluster(t *testing.T) *r1Cluster {
	c := &r1Cluster{}
	dir := t.TempDir()
	client := make([]int, 3)
	routePort := make([]int, 3)
	for i := range 3 {
		client[i], routePort[i] = r1FreePort(t), r1FreePort(t)
	}
	for i := range 3 {
		for j := range 3 {
			if i != j {
				c.proxy[i][j] = r1NewProxy(t, fmt.Sprintf("127.0.0.1:%d", routePort[j]))
			}
		}
	}
	var urls []string
	for i := range 3 {
		o := &server.Options{ServerName: fmt.Sprintf("n%d", i+1), Host: "127.0.0.1", Port: client[i], JetStream: true,
			StoreDir: filepath.Join(dir, fmt.Sprintf("n%d", i+1)), SyncAlways: true, JetStreamMaxStore: 4 << 30,
			JetStreamMaxMemory: 64 << 20, MaxPayload: 64 << 20, NoSigs: true,
			// Routes are only the configured ones, through the proxies: the
			// advertised address leads nowhere, so gossip cannot open a
			// direct route that a partition would not cut.
			Cluster: server.ClusterOpts{Name: "samhub-test", Host: "127.0.0.1", Port: routePort[i], Advertise: "127.0.0.1:1"}}
		for j := range 3 {
			if i != j {
				o.Routes = append(o.Routes, server.RoutesFromStr("nats-route://"+c.proxy[i][j].Addr())...)
			}
		}
		c.opts = append(c.opts, o)
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", client[i]))
	}
	c.urls = r1AuthURL(strings.Join(urls, ","))
	c.srv = make([]*server.Server, 3)
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() { defer wg.Done(); c.srv[i] = r1StartNATS(t, c.opts[i]) }()
	}
	wg.Wait()
	c.waitMeta(t)
	return c
}

// waitMeta waits until the cluster can place an R3 stream (a meta leader
// is elected and knows all three peers).
func (c *r1Cluster) waitMeta(t testing.TB) {
	t.Helper()
	nc, err := nats.Connect(c.urls)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	r1Wait(t, 60*time.Second, "a JetStream meta leader with three peers", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "R1_PROBE", Subjects: []string{"r1probe"}, Replicas: 3, Storage: jetstream.FileStorage}); err != nil {
			return false
		}
		return js.DeleteStream(ctx, "R1_PROBE") == nil
	})
}

// Partition cuts node i off from the other two (on) or heals it (off).
func (c *r1Cluster) Partition(i int, on bool) {
	for j := range 3 {
		if j != i {
			c.proxy[i][j].Block(on)
			c.proxy[j][i].Block(on)
		}
	}
}

type r1ClusterFigures struct {
	letters, lost, dup, processed, partitions, handovers, holders, deliveredByB int
	seed                                                                        uint64
}

func r1ClusterRun(t *testing.T) (f r1ClusterFigures) {
	n := size("CLUSTER_LETTERS", 300, 3000)
	f.seed = r1Seed()
	rng := r1Rand(f.seed)
	f.letters = n
	cl := r1StartCluster(t)
	h := hubtest.Start(t, hubtest.WithConfig(func(c *config.Config) { c.NATS.URL, c.NATS.Replicas = cl.urls, 3 }))
	bin := hubtest.BuildSamhub(t)
	caseURL, _ := h.Config.Adapters["casesys"]["url"].(string)
	dirB := filepath.Join(t.TempDir(), "hub-b")
	cfgB := r1WriteChildConfig(t, r1ChildConfig{Dir: dirB, MedComDir: h.MedComDir, CaseURL: caseURL, NATSURL: cl.urls})
	hubB := r1StartChild(t, bin, cfgB, 0)

	// Watch the MedCom folder's lease from outside the hubs.
	leases := r1WatchLease(t, cl.urls, "source.medcom")
	ledger := oNewLedger()
	// The last tenth is sent after hub B's kill, so hub A must take the
	// lease over to receive it.
	tail := n - n/10
	feed := r1Feed(t, ledger, h.MedComDir, "CLU", 0, tail, 10, 40*time.Millisecond)
	delivered := func() int { return r1Delivered(ledger, h.CaseSys) }
	liveness := time.Duration(n/5+120) * time.Second
	at := func(frac float64, what string) {
		target := int(frac*float64(n)) + rng.IntN(n/20+1)
		r1Wait(t, liveness, fmt.Sprintf("%d letters delivered before %s", target, what), func() bool { return delivered() >= target })
	}

	at(0.15, "stopping a NATS node")
	victim := rng.IntN(3)
	cl.srv[victim].Shutdown()
	cl.srv[victim].WaitForShutdown()
	at(0.30, "restarting the NATS node")
	cl.srv[victim] = r1StartNATS(t, cl.opts[victim])

	// Holder names are host-pid-random; hub A runs in this process.
	holderA := fmt.Sprintf("%s-%d-", r1Hostname(), os.Getpid())
	at(0.45, "stopping hub A")
	h.Stop()
	r1Wait(t, 2*broker.LeaseTTL+30*time.Second, "hub B to take the MedCom lease over from the stopped hub A", func() bool {
		hld := leases.Holder()
		return hld != "" && !strings.HasPrefix(hld, holderA)
	})
	at(0.55, "the partition")
	cut := rng.IntN(3)
	routes := cl.srv[cut].NumRoutes()
	cl.Partition(cut, true)
	r1Wait(t, 30*time.Second, "the partitioned node to lose its routes", func() bool { return cl.srv[cut].NumRoutes() == 0 })
	f.partitions++
	time.Sleep(3 * time.Second) // the minority node cannot store; the majority goes on
	cl.Partition(cut, false)
	r1Wait(t, 60*time.Second, "the partition to heal", func() bool { return cl.srv[cut].NumRoutes() >= routes })
	h.Restart()

	at(0.75, "killing hub B")
	feed.Wait()
	hubB.Kill()
	r1Wait(t, 2*broker.LeaseTTL+30*time.Second, "hub A to take the MedCom lease over from the killed hub B", func() bool { return strings.HasPrefix(leases.Holder(), holderA) })
	r1Feed(t, ledger, h.MedComDir, "CLU", tail, n, 10, 40*time.Millisecond).Wait()
	r1Wait(t, liveness, "every letter delivered", func() bool { return delivered() >= n })
	r1Wait(t, liveness, "in/ and processing/ empty", func() bool {
		return r1Files(filepath.Join(h.MedComDir, "in")) == 0 && r1Files(filepath.Join(h.MedComDir, "processing")) == 0
	})
	time.Sleep(time.Second) // a late redelivery would show itself now
	parked := r1Parked(t, h)
	tally := r1CaseVerdict(ledger, h.CaseSys, parked)
	f.lost, f.dup = tally.Lost(), tally.Dup()
	f.processed = r1Files(filepath.Join(h.MedComDir, "processed"))
	history := leases.Stop()
	seen := map[string]bool{}
	prev := ""
	for _, holder := range history {
		if holder == "" {
			continue
		}
		// A holder is host-pid-random: a restarted hub in the same process
		// is the same hub.
		if i := strings.LastIndex(holder, "-"); i > 0 {
			holder = holder[:i]
		}
		seen[holder] = true
		if prev != "" && holder != prev {
			f.handovers++
		}
		prev = holder
	}
	f.holders = len(seen)
	f.deliveredByB = r1LogLines(dirB, `"msg":"letter delivered"`)
	if tally.Once() != n || tally.Dup() != 0 || len(tally.Stray) != 0 || len(parked) != 0 {
		t.Errorf("oracle: %s parked=%d (lost %v, duplicated %v)", tally, len(parked), r1First(tally.LostIDs()), r1First(tally.DupIDs()))
	}
	if f.deliveredByB == 0 || f.deliveredByB == n {
		t.Errorf("hub B delivered %d of %d letters: the hubs did not share the work", f.deliveredByB, n)
	}
	if f.processed != n {
		t.Errorf("%d files in processed/, want %d (each file once)", f.processed, n)
	}
	// Hub A held the lease first; its graceful stop hands it to B, B's kill
	// hands it back once the lease expires.
	if f.holders != 2 || f.handovers < 2 {
		t.Errorf("lease history %v: want both hubs to have held the MedCom lease, one at a time", history)
	}
	return f
}

// r1LeaseWatch records the successive holders of a lease key ("" = free).
type r1LeaseWatch struct {
	mu      sync.Mutex
	history []string
	stop    chan struct{}
	done    chan struct{}
}

// r1WatchLease polls the lease bucket through its own connection; polling
// rather than a KV watcher keeps working across node restarts and
// partitions without extra code.
func r1WatchLease(t testing.TB, urls, key string) *r1LeaseWatch {
	t.Helper()
	nc, err := nats.Connect(urls, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	w := &r1LeaseWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		defer nc.Close()
		var kv jetstream.KeyValue
		for {
			select {
			case <-w.stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			if kv == nil {
				kv, _ = js.KeyValue(ctx, broker.BucketLeases)
			}
			holder, ok := "", kv != nil
			if kv != nil {
				e, err := kv.Get(ctx, key)
				switch {
				case err == nil:
					holder = string(e.Value())
				case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
				default:
					ok = false // not readable now (node down, partition): no observation
				}
			}
			cancel()
			if !ok {
				continue
			}
			w.mu.Lock()
			if len(w.history) == 0 || w.history[len(w.history)-1] != holder {
				w.history = append(w.history, holder)
			}
			w.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		select {
		case <-w.stop:
		default:
			w.Stop()
		}
	})
	return w
}

// Holder is the holder last seen ("" = free or not seen yet).
func (w *r1LeaseWatch) Holder() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.history) == 0 {
		return ""
	}
	return w.history[len(w.history)-1]
}

// r1Hostname is the host part of a replica's default lease holder name.
func r1Hostname() string {
	h, _ := os.Hostname()
	return h
}

func (w *r1LeaseWatch) Stop() []string {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.history...)
}
