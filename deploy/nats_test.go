package deploy

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/samhub/samhub/internal/testpki"
)

// testJSKey stands in for the at-rest key the servers read from NATS_JS_KEY.
const testJSKey = "test-only-key-0123456789abcdef0123456789abcdef"

// natsUsers are the env vars holding each service's public NKey.
var natsUsers = []string{"NATS_HUB_NKEY", "NATS_OPS_NKEY", "NATS_BACKUP_NKEY", "NATS_ADMIN_NKEY", "NATS_SYS_NKEY"}

// TestNATSClusterConfig parses every node's configuration with nats-server's
// own parser and checks the settings Samhub's promises depend on. The files
// are copied to a temporary folder with only the certificate and store paths
// pointed there, because the parser loads the certificates it names.
func TestNATSClusterConfig(t *testing.T) {
	confs, err := filepath.Glob("nats/*.conf")
	if err != nil || len(confs) != 3 {
		t.Fatalf("want nats-1.conf..nats-3.conf, found %v (%v)", confs, err)
	}
	dir, users := shippedConfigs(t)
	keys := map[string]string{}
	for env, kp := range users {
		keys[env], _ = kp.PublicKey()
	}

	for i, conf := range confs {
		t.Run(filepath.Base(conf), func(t *testing.T) {
			o, err := server.ProcessConfigFile(filepath.Join(dir, filepath.Base(conf)))
			if err != nil {
				t.Fatalf("nats-server rejects %s: %v", conf, err)
			}
			checkNATSOptions(t, o, i+1, keys)
		})
	}
}

// shippedConfigs copies deploy/nats into a temporary folder with the
// certificate and store paths pointed there (the parser loads the
// certificates it names), sets the environment the configuration reads (a
// new NKey per service user, the at-rest key), and returns the folder and
// the users' keys by environment variable.
func shippedConfigs(t *testing.T) (string, map[string]nkeys.KeyPair) {
	t.Helper()
	users := map[string]nkeys.KeyPair{}
	for _, env := range natsUsers {
		kp, err := nkeys.CreateUser()
		if err != nil {
			t.Fatal(err)
		}
		pub, _ := kp.PublicKey()
		t.Setenv(env, pub)
		users[env] = kp
	}
	t.Setenv("NATS_JS_KEY", testJSKey)
	dir := t.TempDir()
	tlsDir := filepath.Join(dir, "tls")
	writeTestCerts(t, tlsDir)
	files, _ := filepath.Glob("nats/*")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		s := strings.ReplaceAll(string(b), "/etc/nats/tls/", tlsDir+"/")
		s = strings.ReplaceAll(s, "/var/lib/nats/jetstream", filepath.Join(dir, "js"))
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir, users
}

func checkNATSOptions(t *testing.T, o *server.Options, node int, keys map[string]string) {
	if want := "nats-" + string(rune('0'+node)); o.ServerName != want {
		t.Errorf("server_name = %q, want %q", o.ServerName, want)
	}
	if !o.JetStream || !o.SyncAlways {
		t.Errorf("jetstream = %v, sync always = %v; both must be true", o.JetStream, o.SyncAlways)
	}
	if o.JetStreamMaxStore != 8<<30 {
		t.Errorf("max_file_store = %d, want 8GB", o.JetStreamMaxStore)
	}
	if o.JetStreamKey != testJSKey || o.JetStreamCipher != server.ChaCha {
		t.Errorf("at-rest encryption: key from env = %v, cipher = %v", o.JetStreamKey == testJSKey, o.JetStreamCipher)
	}
	if o.MaxPayload != 32<<20 {
		t.Errorf("max_payload = %d, want 32MB (samhub streams.max_msg_size)", o.MaxPayload)
	}
	if o.TLSConfig == nil || o.TLSConfig.ClientAuth != tls.RequireAndVerifyClientCert || o.TLSConfig.MinVersion < tls.VersionTLS12 {
		t.Errorf("client TLS must be on, verify clients, TLS ≥ 1.2")
	}
	if o.HTTPHost != "127.0.0.1" {
		t.Errorf("monitoring listens on %q, want loopback", o.HTTPHost)
	}
	c := o.Cluster
	if c.Name != "samhub" || c.TLSConfig == nil || c.TLSConfig.ClientAuth != tls.RequireAndVerifyClientCert {
		t.Errorf("cluster %q: routes must use mutual TLS", c.Name)
	}
	if c.PingInterval == 0 || c.PingInterval > 5*time.Second || c.MaxPingsOut == 0 || c.MaxPingsOut > 2 {
		t.Errorf("route pings every %v, %d outstanding: a hung node would hold up the other two for a minute", c.PingInterval, c.MaxPingsOut)
	}
	if len(o.Routes) != 3 {
		t.Errorf("routes = %d, want all 3 nodes", len(o.Routes))
	}
	if o.SystemAccount != "SYS" || o.NoAuthUser != "" || len(o.Users) != 0 {
		t.Errorf("system account %q, no_auth_user %q, %d password users: want SYS, none, none", o.SystemAccount, o.NoAuthUser, len(o.Users))
	}

	users := map[string]*server.NkeyUser{}
	for _, u := range o.Nkeys {
		users[u.Nkey] = u
	}
	for _, env := range natsUsers {
		if users[keys[env]] == nil {
			t.Errorf("no user with the NKey from %s", env)
		}
	}
	hub, ops, backup, admin := users[keys["NATS_HUB_NKEY"]], users[keys["NATS_OPS_NKEY"]], users[keys["NATS_BACKUP_NKEY"]], users[keys["NATS_ADMIN_NKEY"]]
	if hub == nil || ops == nil || backup == nil || admin == nil {
		return
	}
	for _, u := range []*server.NkeyUser{hub, ops, backup, admin} {
		if u.Account == nil || u.Account.Name != "SAMHUB" {
			t.Errorf("user %s is not in account SAMHUB", u.Nkey)
		}
	}
	tests := []struct {
		who     string
		u       *server.NkeyUser
		pub     bool // publish (else subscribe)
		subject string
		want    bool
	}{
		{"hub", hub, true, "samhub.letters.in.medcom.ab12", true},
		{"hub", hub, true, "$JS.API.STREAM.CREATE.SAMHUB_LETTERS", true},
		{"hub", hub, true, "$JS.API.CONSUMER.MSG.NEXT.SAMHUB_LETTERS.casesystem", true},
		{"hub", hub, true, "$JS.ACK.SAMHUB_LETTERS.casesystem.1.2.3.4.5", true},
		{"hub", hub, true, "$KV.samhub_state.medcom.cursor", true},
		{"hub", hub, true, "$JS.API.STREAM.DELETE.SAMHUB_LETTERS", false},
		{"hub", hub, true, "$JS.API.STREAM.SNAPSHOT.SAMHUB_LETTERS", false},
		{"hub", hub, true, "$KV.other_bucket.x", false},
		{"hub", hub, true, "other.subject", false},
		{"hub", hub, false, "_INBOX.abc", true},
		{"ops", ops, true, "$JS.API.STREAM.INFO.SAMHUB_LETTERS", true},
		{"ops", ops, true, "$JS.API.CONSUMER.INFO.SAMHUB_LETTERS.casesystem", true},
		{"ops", ops, true, "$JS.API.STREAM.MSG.GET.SAMHUB_LETTERS", false},
		{"ops", ops, true, "$JS.API.DIRECT.GET.SAMHUB_LETTERS", false},
		{"ops", ops, true, "$JS.API.CONSUMER.CREATE.SAMHUB_LETTERS", false},
		{"ops", ops, true, "samhub.letters.in.x.y", false},
		{"ops", ops, false, "_INBOX.hubreply", false},
		{"ops", ops, false, "_INBOX_ops.reply", true},
		{"ops", ops, false, "samhub.letters.in.x.y", false},
		{"backup", backup, true, "$JS.API.STREAM.SNAPSHOT.SAMHUB_LETTERS", true},
		{"backup", backup, true, "$JS.SNAPSHOT.ACK.SAMHUB_LETTERS.x", true},
		{"backup", backup, true, "$JS.API.STREAM.DELETE.SAMHUB_LETTERS", false},
		{"backup", backup, false, "_INBOX_backup.x", true},
		{"admin", admin, true, "$JS.API.STREAM.DELETE.SAMHUB_LETTERS", true},
		{"admin", admin, true, "$JS.API.STREAM.UPDATE.SAMHUB_LETTERS", true},
		{"admin", admin, true, "$JS.API.STREAM.PEER.REMOVE.SAMHUB_LETTERS", true},
		{"admin", admin, true, "$JS.API.STREAM.MSG.GET.SAMHUB_LETTERS", false},
		{"admin", admin, true, "$JS.API.DIRECT.GET.SAMHUB_LETTERS", false},
		{"admin", admin, true, "$JS.API.CONSUMER.CREATE.SAMHUB_LETTERS.x", false},
		{"admin", admin, true, "$JS.API.CONSUMER.DURABLE.CREATE.SAMHUB_LETTERS.x", false},
		{"admin", admin, true, "$JS.API.STREAM.SNAPSHOT.SAMHUB_LETTERS", false},
		{"admin", admin, true, "samhub.letters.in.x.y", false},
		{"admin", admin, false, "_INBOX_admin.x", true},
		{"admin", admin, false, "_INBOX.hubreply", false},
	}
	for _, tt := range tests {
		p := tt.u.Permissions
		if p == nil {
			t.Errorf("%s has no permissions: it could do anything", tt.who)
			continue
		}
		sp, verb := p.Subscribe, "subscribe to"
		if tt.pub {
			sp, verb = p.Publish, "publish to"
		}
		if got := permits(sp, tt.subject); got != tt.want {
			t.Errorf("%s may %s %s: %v, want %v", tt.who, verb, tt.subject, got, tt.want)
		}
	}
}

// permits applies NATS's rule: allowed if an allow filter matches (or there is
// no allow list) and no deny filter matches.
func permits(p *server.SubjectPermission, subject string) bool {
	if p == nil {
		return true
	}
	ok := len(p.Allow) == 0
	for _, f := range p.Allow {
		if server.SubjectMatchesFilter(subject, f) {
			ok = true
		}
	}
	for _, f := range p.Deny {
		if server.SubjectMatchesFilter(subject, f) {
			ok = false
		}
	}
	return ok
}

// writeTestCerts writes a throwaway CA and a node certificate where the
// configuration expects /etc/nats/tls.
func writeTestCerts(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	ca, err := testpki.New("samhub test CA")
	if err != nil {
		t.Fatal(err)
	}
	node, err := ca.Issue("nats", []string{"nats-1.samhub.internal", "nats-2.samhub.internal", "nats-3.samhub.internal"},
		x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"ca.pem": ca.PEM, "server.pem": node.CertPEM, "server-key.pem": node.KeyPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
