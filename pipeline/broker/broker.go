// Package broker gives the hub its NATS JetStream: an embedded nats-server
// (the default, in process, file storage, fsync on every write) or a
// connection to an external cluster, plus the streams and buckets the hub
// owns, created or checked at start.
package broker

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/crypto/bcrypt"

	secrets "github.com/samhub/samhub/internal/secret"
	"github.com/samhub/samhub/internal/tlsconf"
)

// Broker is a live connection to JetStream and, when embedded, the server.
type Broker struct {
	// Server is the embedded server (nil when external). The store
	// supervisor replaces it when it restarts the server after a store
	// fault; the connection follows by itself.
	Server *server.Server
	Conn   *nats.Conn
	JS     jetstream.JetStream
	log    *slog.Logger

	fault     *storeFault      // embedded only: store write errors the server reported
	sup       *storeSupervisor // embedded only: restarts the server after one
	restartMu sync.Mutex
	onRestart []func()
}

// externalPing is how often the hub pings an external NATS server; two
// unanswered pings in a row end the connection.
const externalPing = 5 * time.Second

// Open starts the embedded server or connects to cfg.URL.
func Open(ctx context.Context, cfg Options, log *slog.Logger) (*Broker, error) {
	b := &Broker{log: log}
	var emb *Embedded
	var slot *serverSlot
	opts := []nats.Option{
		nats.Name("samhub"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) { log.Info("nats reconnected") }),
	}
	url := cfg.URL
	if url == "" {
		b.fault = &storeFault{}
		var err error
		emb, err = startEmbedded(cfg.Embedded, log, b.fault, nil)
		if err != nil {
			return nil, err
		}
		b.Server = emb.Server
		slot = &serverSlot{srv: emb.Server}
		opts = append(opts, nats.InProcessServer(slot), nats.UserInfo(emb.user, emb.password))
	} else {
		tlsOpts, err := clientTLS(cfg.TLS)
		if err != nil {
			return nil, err
		}
		opts = append(opts, tlsOpts...)
		if cfg.CredsFile != "" {
			opts = append(opts, nats.UserCredentials(cfg.CredsFile))
		}
		if cfg.NKeyFile != "" {
			o, err := nats.NkeyOptionFromSeed(cfg.NKeyFile)
			if err != nil {
				return nil, fmt.Errorf("nats.nkey_file: %w", err)
			}
			opts = append(opts, o)
		}
		// A server that hangs (stopped, frozen VM, a network that drops
		// without a reset) keeps the connection open: with the client's
		// default pings (2 min, 2 outstanding) the hub waited minutes on
		// it while the other two nodes served. Ping often enough to move
		// to another node within seconds.
		opts = append(opts, nats.RetryOnFailedConnect(true), nats.PingInterval(externalPing), nats.MaxPingsOutstanding(2))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("connect to NATS: %w", err)
	}
	b.Conn = nc
	if url != "" {
		if err := checkExternal(ctx, nc, cfg); err != nil {
			b.Close()
			return nil, err
		}
	}
	js, err := jetstream.New(nc)
	if err != nil {
		b.Close()
		return nil, err
	}
	b.JS = js
	if emb != nil {
		b.sup = &storeSupervisor{slot: slot, cfg: cfg.Embedded, creds: emb, fault: b.fault, log: log.With("component", "store"),
			onRestart: b.restarted, free: freeBytes, stop: make(chan struct{}), done: make(chan struct{})}
		go b.sup.run()
	}
	return b, nil
}

// OnStoreRestart registers f to run after the embedded server was
// restarted following a store fault (see recover.go).
func (b *Broker) OnStoreRestart(f func()) {
	b.restartMu.Lock()
	defer b.restartMu.Unlock()
	b.onRestart = append(b.onRestart, f)
}

func (b *Broker) restarted(srv *server.Server) {
	b.restartMu.Lock()
	b.Server = srv
	fs := append([]func(){}, b.onRestart...)
	b.restartMu.Unlock()
	for _, f := range fs {
		f()
	}
}

// ToolsUser is the embedded server's user for other processes (backups,
// the nats CLI, benchmarks) when nats.embedded.listen is set.
const ToolsUser = "samhub-tools"

// Embedded is a running in-process nats-server. It requires a user and a
// password on every connection, both made at start: the hub's own
// in-process connection has one that never leaves memory, and when the
// server listens on TCP, other processes use ToolsUser with a password
// written to nats.embedded.tools_password_file (mode 0600). An
// unauthenticated client can read nothing.
type Embedded struct {
	*server.Server
	user, password string
	ToolsPassword  string // empty unless listening
}

// Connect opens an in-process connection with the hub's credentials.
func (e *Embedded) Connect(opts ...nats.Option) (*nats.Conn, error) {
	return nats.Connect("", append([]nats.Option{nats.InProcessServer(e.Server), nats.UserInfo(e.user, e.password)}, opts...)...)
}

// ToolsURL is the listener's URL with the tools user's credentials, for a
// process started by the same program (benchmarks); empty unless listening.
func (e *Embedded) ToolsURL() string {
	if e.ToolsPassword == "" || e.Server.Addr() == nil {
		return ""
	}
	u, err := url.Parse(e.ClientURL())
	if err != nil {
		return ""
	}
	u.User = url.UserPassword(ToolsUser, e.ToolsPassword)
	return u.String()
}

// StartEmbedded runs nats-server in process with JetStream on file storage
// and SyncAlways: a write is fsynced before it is acknowledged, so an
// acknowledged letter survives a power cut (reliability.md §1.4).
func StartEmbedded(e EmbeddedOptions, log *slog.Logger) (*Embedded, error) {
	return startEmbedded(e, log, nil, nil)
}

// startEmbedded starts the server; keep, when set, gives the credentials of
// an earlier start (a restart after a store fault), else new ones are made.
func startEmbedded(e EmbeddedOptions, log *slog.Logger, fault *storeFault, keep *Embedded) (*Embedded, error) {
	o := &server.Options{
		ServerName:         "samhub-embedded",
		JetStream:          true,
		StoreDir:           e.StoreDir,
		JetStreamMaxStore:  e.MaxStore,
		JetStreamMaxMemory: 64 << 20,
		SyncAlways:         true,
		DontListen:         true,
		NoSigs:             true,
		MaxPayload:         64 << 20,
		Host:               "127.0.0.1",
	}
	emb := &Embedded{user: "samhub", password: secret()}
	if keep != nil {
		emb.user, emb.password = keep.user, keep.password
	}
	o.Users = []*server.User{{Username: emb.user, Password: hashed(emb.password)}}
	if e.Listen != "" {
		host, port, err := net.SplitHostPort(e.Listen)
		if err != nil {
			return nil, fmt.Errorf("nats.embedded.listen: %w", err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("nats.embedded.listen: port: %w", err)
		}
		if p == 0 {
			// Port 0 is nats-server's "default" (4222), not the operating
			// system's "any free port" that :0 means everywhere else: two
			// hubs (or tests) asking for any port would both take 4222.
			p = server.RANDOM_PORT
		}
		o.DontListen, o.Host, o.Port = false, host, p
		emb.ToolsPassword = secret()
		if keep != nil && keep.ToolsPassword != "" {
			emb.ToolsPassword = keep.ToolsPassword
		}
		o.Users = append(o.Users, &server.User{Username: ToolsUser, Password: hashed(emb.ToolsPassword)})
		if e.ToolsPasswordFile != "" {
			if err := writeSecret(e.ToolsPasswordFile, emb.ToolsPassword); err != nil {
				return nil, fmt.Errorf("nats.embedded.tools_password_file: %w", err)
			}
		}
		if e.TLS.CertFile != "" {
			tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: e.TLS.CertFile, KeyFile: e.TLS.KeyFile, CaFile: e.TLS.CAFile, Verify: e.TLS.CAFile != ""})
			if err != nil {
				return nil, fmt.Errorf("nats.embedded.tls: %w", err)
			}
			o.TLSConfig, o.TLS = tc, true
		}
	}
	key, err := secrets.Read(e.KeyFile, e.KeyEnv)
	if err != nil {
		return nil, fmt.Errorf("nats.embedded.key_file/key_env: %w", err)
	}
	if key != "" {
		o.JetStreamKey = key
		o.JetStreamCipher = server.ChaCha
		if e.Cipher == "aes" {
			o.JetStreamCipher = server.AES
		}
	}
	if err := os.MkdirAll(e.StoreDir, 0o700); err != nil {
		return nil, fmt.Errorf("nats.embedded.store_dir: %w", err)
	}
	srv, err := server.NewServer(o)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	emb.Server = srv
	srv.SetLoggerV2(&natsLogger{log: log.With("component", "nats-server"), fault: fault}, false, false, false)
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("embedded NATS did not become ready in 30s")
	}
	if !srv.JetStreamEnabled() {
		srv.Shutdown()
		return nil, errors.New("embedded NATS started without JetStream (is the store directory writable?)")
	}
	if err := checkStoreOpened(srv, e.StoreDir); err != nil {
		srv.Shutdown()
		return nil, err
	}
	return emb, nil
}

// hashed is the server's copy of a password: a bcrypt hash, so the
// server holds no password in memory and does not warn "Plaintext
// passwords detected" at every start. The passwords are 256 random bits,
// so the lowest cost is enough and a connection pays about a millisecond.
func hashed(password string) string {
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		panic("broker: bcrypt: " + err.Error()) // only for passwords over 72 bytes
	}
	return string(h)
}

// secret is 256 random bits, URL-safe.
func secret() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("broker: crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// writeSecret replaces path with value, readable by the hub's user only.
func writeSecret(path, value string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(value+"\n"), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// externalWait is how long the start waits for an external NATS to answer.
const externalWait = time.Minute

// checkExternal refuses an external NATS that would keep letters where
// others can read them: one that lets clients in without authentication,
// one reached in plaintext beyond loopback, or a cluster with unreplicated
// streams (nats.replicas 1). Stream storage and replicas are checked when
// the streams are provisioned.
func checkExternal(ctx context.Context, nc *nats.Conn, cfg Options) error {
	ctx, cancel := context.WithTimeout(ctx, externalWait)
	defer cancel()
	for !nc.IsConnected() {
		select {
		case <-ctx.Done():
			msg := fmt.Sprintf("no NATS server at %s answered within %s", redactURLs(cfg.URL), externalWait)
			if err := nc.LastError(); err != nil {
				msg += " (last error: " + err.Error() + ")" // e.g. an authorization violation
			}
			return &SettingError{Key: "nats.url", Msg: msg}
		case <-time.After(50 * time.Millisecond):
		}
	}
	server := nc.ConnectedAddr()
	if !nc.AuthRequired() {
		return &SettingError{Key: "nats.url", Msg: fmt.Sprintf("the NATS server at %s lets clients in without authentication, so anyone who reaches it can read every letter; require authentication on the server (a user or NKey per service, see deploy/nats) and give the hub's in nats.nkey_file or nats.creds_file", server)}
	}
	if _, err := nc.TLSConnectionState(); err != nil {
		if host, _, _ := net.SplitHostPort(server); !isLoopback(host) {
			return &SettingError{Key: "nats.tls", Msg: fmt.Sprintf("the connection to the NATS server at %s is plaintext; beyond loopback it must use TLS (tls:// URLs and nats.tls.ca_file)", server)}
		}
	}
	if cluster := nc.ConnectedClusterName(); cluster != "" && cfg.Replicas < 3 {
		return &SettingError{Key: "nats.replicas", Msg: fmt.Sprintf("is %d, but NATS is the cluster %q: each letter would be kept on %d node(s) only; set 3", cfg.Replicas, cluster, cfg.Replicas)}
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// redactURLs hides passwords in a NATS URL list.
func redactURLs(list string) string {
	var out []string
	for _, s := range strings.Split(list, ",") {
		if u, err := url.Parse(strings.TrimSpace(s)); err == nil {
			out = append(out, u.Redacted())
		}
	}
	return strings.Join(out, ",")
}

func clientTLS(t tlsconf.Files) ([]nats.Option, error) {
	tc, err := tlsconf.Config(t, "nats.tls.")
	var te *tlsconf.Error
	if errors.As(err, &te) {
		return nil, &SettingError{Key: te.Key, Msg: te.Msg}
	}
	if err != nil || tc == nil {
		return nil, err
	}
	return []nats.Option{nats.Secure(tc)}, nil
}

// Ready reports whether NATS is connected and JetStream answers.
func (b *Broker) Ready(ctx context.Context) error {
	if b.Conn == nil || !b.Conn.IsConnected() {
		return errors.New("NATS is not connected")
	}
	if b.fault != nil {
		if reason, ok := b.fault.active(); ok {
			return fmt.Errorf("the JetStream store cannot be written (%s); JetStream restarts once its filesystem has %d MiB free", reason, StoreRoomNeeded>>20)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := b.JS.AccountInfo(ctx); err != nil {
		return fmt.Errorf("JetStream not usable: %w", err)
	}
	return nil
}

// Close drains the connection (in-flight acks reach the server) and stops
// the embedded server.
func (b *Broker) Close() {
	if b.sup != nil {
		b.sup.close()
	}
	if b.Conn != nil {
		// Flush is a round trip: the server has processed every ack and nak
		// sent so far before the embedded server is shut down.
		_ = b.Conn.FlushTimeout(5 * time.Second)
		_ = b.Conn.Drain()
		deadline := time.Now().Add(5 * time.Second)
		for !b.Conn.IsClosed() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		b.Conn.Close()
	}
	if b.sup != nil {
		if srv := b.sup.slot.get(); srv != nil {
			srv.Shutdown()
			srv.WaitForShutdown()
		}
	} else if b.Server != nil {
		b.Server.Shutdown()
		b.Server.WaitForShutdown()
	}
}

// natsLogger sends nats-server's log into slog; its traces stay off. The
// server reports store write errors only in its log, so warnings and
// errors are also shown to the store supervisor.
type natsLogger struct {
	log   *slog.Logger
	fault *storeFault
}

func (l *natsLogger) Noticef(f string, v ...any) { l.log.Debug(fmt.Sprintf(f, v...)) }
func (l *natsLogger) Warnf(f string, v ...any) {
	msg := fmt.Sprintf(f, v...)
	if strings.HasPrefix(msg, "Maximum payloads over") {
		// The hub sets it on purpose (a letter up to streams.max_msg_size
		// travels whole); said at every start, it only alarms.
		l.log.Debug(msg)
		return
	}
	l.log.Warn(l.seen(msg))
}
func (l *natsLogger) Fatalf(f string, v ...any) { l.log.Error(l.seen(fmt.Sprintf(f, v...))) }
func (l *natsLogger) Errorf(f string, v ...any) { l.log.Error(l.seen(fmt.Sprintf(f, v...))) }

func (l *natsLogger) seen(msg string) string {
	if l.fault != nil {
		l.fault.report(msg)
	}
	return msg
}
func (l *natsLogger) Debugf(f string, v ...any) {}
func (l *natsLogger) Tracef(f string, v ...any) {}
