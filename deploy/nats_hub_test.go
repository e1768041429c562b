package deploy

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	neturl "net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/samhub/samhub/internal/config"
	"github.com/samhub/samhub/internal/console"
	"github.com/samhub/samhub/internal/hubtest"
	"github.com/samhub/samhub/internal/natstest"
	"github.com/samhub/samhub/pipeline/broker"
)

// shippedNode starts one node with the shipped configuration's accounts
// and users (the cluster, TLS and listeners taken out, on loopback) and
// returns its URL and the hub user's key.
func shippedNode(t *testing.T) (string, nkeys.KeyPair) {
	t.Helper()
	url, users := shippedNodeUsers(t)
	return url, users["NATS_HUB_NKEY"]
}

// shippedNodeUsers is shippedNode with every service user's key, by the
// environment variable that holds its public key.
func shippedNodeUsers(t *testing.T) (string, map[string]nkeys.KeyPair) {
	t.Helper()
	dir, users := shippedConfigs(t)
	o, err := server.ProcessConfigFile(filepath.Join(dir, "nats-1.conf"))
	if err != nil {
		t.Fatal(err)
	}
	o.Cluster, o.Routes, o.RoutesStr = server.ClusterOpts{}, nil, ""
	o.TLS, o.TLSConfig, o.TLSVerify = false, nil, false
	o.Host, o.Port, o.HTTPHost, o.HTTPPort = "127.0.0.1", -1, "", 0
	return natstest.Start(t, o).ClientURL(), users
}

// connectAs connects to url as the user with key kp.
func connectAs(t *testing.T, url string, kp nkeys.KeyPair, opts ...nats.Option) jetstream.JetStream {
	t.Helper()
	pub, _ := kp.PublicKey()
	nc, err := nats.Connect(url, append(opts, nats.Nkey(pub, kp.Sign))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	return js
}

// provisionAsTheHub provisions the hub's streams and buckets on a
// shippedNode as the hub's NKey user.
func provisionAsTheHub(t *testing.T, ctx context.Context) jetstream.JetStream {
	t.Helper()
	url, hubKey := shippedNode(t)
	hubPub, _ := hubKey.PublicKey()
	nc, err := nats.Connect(url, nats.Nkey(hubPub, hubKey.Sign))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	err = broker.Provision(ctx, js, broker.Streams{LettersMaxBytes: 64 << 20, LettersMaxAge: time.Hour, DedupWindow: time.Minute,
		ParkedMaxBytes: 64 << 20, JourneyMaxBytes: 64 << 20, JourneyMaxAge: time.Hour, AuditMaxBytes: 64 << 20, AuditMaxAge: time.Hour,
		MaxMsgSize: 1 << 20, BlobsMaxBytes: 64 << 20}, 1)
	if err != nil {
		t.Fatalf("provision as the hub: %v", err)
	}
	return js
}

// TestTheHubCanUseEveryBucketUnderTheShippedPermissions does, as the
// hub's NKey user under the shipped configuration, what the hub does:
// provision its streams and buckets, then write, read and delete in every
// key-value bucket and the object store. A bucket the hub's
// permissions leave out fails here, not in a municipality's cluster (the
// council register and the console's sessions did).
func TestTheHubCanUseEveryBucketUnderTheShippedPermissions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	js := provisionAsTheHub(t, ctx)
	buckets := 0
	for name := range js.KeyValueStoreNames(ctx).Name() {
		buckets++
		kv, err := js.KeyValue(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		// Each call its own deadline: a publish the server refuses is
		// never answered.
		op := func(what string, f func(context.Context) error) {
			c, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if err := f(c); err != nil {
				t.Errorf("bucket %s: %s as the hub: %v", name, what, err)
			}
		}
		op("put", func(c context.Context) error { _, err := kv.Put(c, "probe", []byte("1")); return err })
		op("get", func(c context.Context) error { _, err := kv.Get(c, "probe"); return err })
		op("delete", func(c context.Context) error { return kv.Delete(c, "probe") })
	}
	if buckets < 5 {
		t.Errorf("%d key-value buckets provisioned, want every one the hub uses", buckets)
	}
	st, err := broker.NewStateStore(ctx, js, "medcom")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Put(ctx, "pending.x", []byte("1")); err != nil {
		t.Errorf("state put: %v", err)
	}
	if _, err := st.Scan(ctx, "pending."); err != nil {
		t.Errorf("state scan: %v", err)
	}
	if err := st.Delete(ctx, "pending.x"); err != nil {
		t.Errorf("state delete (a purge of the key's subject): %v", err)
	}
	obj, err := js.ObjectStore(ctx, broker.BucketBlobs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := obj.PutBytes(ctx, "probe", []byte("blob")); err != nil {
		t.Errorf("object store put as the hub: %v", err)
	}
}

// TestTheBackupTakesEveryStreamThatKeepsData: the snapshot loop in
// docs/operations.md names every stream the hub provisions but those that
// hold only what a restart makes again (leases, console sessions). It left
// out the council's register (meetings and referrals' facts, kept for a
// year and more).
func TestTheBackupTakesEveryStreamThatKeepsData(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	js := provisionAsTheHub(t, ctx)
	doc, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)for s in (.*?); do`).FindSubmatch(doc)
	if m == nil {
		t.Fatal("docs/operations.md: no snapshot loop (for s in …; do)")
	}
	backed := map[string]bool{}
	for _, f := range strings.Fields(strings.ReplaceAll(string(m[1]), "\\", " ")) {
		backed[f] = true
	}
	transient := map[string]bool{"KV_" + broker.BucketLeases: true, "KV_" + broker.BucketSessions: true}
	for name := range js.StreamNames(ctx).Name() {
		if !backed[name] && !transient[name] {
			t.Errorf("docs/operations.md: the backup does not take stream %s", name)
		}
		delete(backed, name)
	}
	for name := range backed {
		t.Errorf("docs/operations.md: the backup names %s, which the hub does not make", name)
	}
}

// TestTheHubRunsUnderTheShippedPermissions runs the hub itself on a
// shippedNode as the hub's NKey user: a MedCom referral reaches the case
// system and the council's register, and a coordinator logs in to the
// console (a session in its bucket).
func TestTheHubRunsUnderTheShippedPermissions(t *testing.T) {
	url, hubKey := shippedNode(t)
	seed, err := hubKey.Seed()
	if err != nil {
		t.Fatal(err)
	}
	seedFile := filepath.Join(t.TempDir(), "hub.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	h := hubtest.Start(t, hubtest.WithConfig(func(c *config.Config) {
		c.NATS.URL, c.NATS.NKeyFile, c.NATS.Replicas = url, seedFile, 1
	}), func(h *hubtest.Hub) { hubtest.WithMount(console.Mount(h.Config.Console))(h) }) // as cmd/samhub mounts it
	letter, err := os.ReadFile("../testdata/medcom/samhub/letter-utf8.xml")
	if err != nil {
		t.Fatal(err)
	}
	h.Drop("referral.xml", letter)
	h.Eventually("the referral in the case system", func() bool { return len(h.CaseSys.Documents()) == 1 })

	ctx := context.Background()
	register, err := h.App.Broker.JS.Stream(ctx, "KV_"+broker.BucketCouncil)
	if err != nil {
		t.Fatal(err)
	}
	h.Eventually("the referral in the council's register", func() bool {
		info, err := register.Info(ctx)
		return err == nil && info.State.Msgs > 0
	})

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(h.BaseURL + "/console/login")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`name="token" value="([^"]+)"`).FindSubmatch(page)
	if m == nil {
		t.Fatal("the login page has no token field")
	}
	resp, err = c.PostForm(h.BaseURL+"/console/login", neturl.Values{"token": {string(m[1])}, "user": {"koordinator"}, "password": {hubtest.CoordinatorPassword}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("the coordinator's login: status %d, want 303 (a session stored)", resp.StatusCode)
	}
}

// TestOnlyTheAdminCanDeleteAStreamForARestore: a restore from snapshots
// starts by deleting the damaged stream (docs/operations.md, "Restore").
// The shipped users had none that could: the hub's, the operators' and
// the backup user's requests to delete went unanswered. The admin user
// can; it cannot read a letter.
func TestOnlyTheAdminCanDeleteAStreamForARestore(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	url, users := shippedNodeUsers(t)
	hub := connectAs(t, url, users["NATS_HUB_NKEY"])
	err := broker.Provision(ctx, hub, broker.Streams{LettersMaxBytes: 64 << 20, LettersMaxAge: time.Hour, DedupWindow: time.Minute,
		ParkedMaxBytes: 64 << 20, JourneyMaxBytes: 64 << 20, JourneyMaxAge: time.Hour, AuditMaxBytes: 64 << 20, AuditMaxAge: time.Hour,
		MaxMsgSize: 1 << 20, BlobsMaxBytes: 64 << 20}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hub.Publish(ctx, "samhub.letters.in.medcom.x", []byte("letter")); err != nil {
		t.Fatal(err)
	}
	try := func(who string, js jetstream.JetStream, f func(context.Context, jetstream.JetStream) error) error {
		c, cancel := context.WithTimeout(ctx, 2*time.Second) // a refused request is never answered
		defer cancel()
		err := f(c, js)
		t.Logf("%s: %v", who, err)
		return err
	}
	del := func(c context.Context, js jetstream.JetStream) error { return js.DeleteStream(c, broker.StreamParked) }
	for _, u := range []struct{ who, env, inbox string }{{"hub", "NATS_HUB_NKEY", ""}, {"ops", "NATS_OPS_NKEY", "_INBOX_ops"}, {"backup", "NATS_BACKUP_NKEY", "_INBOX_backup"}} {
		var opts []nats.Option
		if u.inbox != "" {
			opts = append(opts, nats.CustomInboxPrefix(u.inbox))
		}
		if try(u.who, connectAs(t, url, users[u.env], opts...), del) == nil {
			t.Errorf("the %s user deleted a stream", u.who)
		}
	}
	admin := connectAs(t, url, users["NATS_ADMIN_NKEY"], nats.CustomInboxPrefix("_INBOX_admin"))
	if err := try("admin", admin, del); err != nil {
		t.Errorf("the admin user cannot delete a stream: %v", err)
	}
	read := func(c context.Context, js jetstream.JetStream) error {
		st, err := js.Stream(c, broker.StreamLetters)
		if err != nil {
			return err
		}
		_, err = st.GetMsg(c, 1)
		return err
	}
	if try("admin read", admin, read) == nil {
		t.Error("the admin user read a letter")
	}
}
