package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"golang.org/x/sys/unix"
)

// When a write to the embedded server's store fails (a full disk: ENOSPC),
// nats-server marks the stream "critical write error" and refuses every
// later write to it for as long as it is loaded; a full disk can also shut
// JetStream down. Neither clears when space returns: a person had to
// restart the hub. The embedded broker therefore watches for that and,
// once the store's filesystem has room again, restarts the embedded server
// on the same store, as a restart of the hub would, while the hub runs on:
// its connection reconnects to the new server (serverSlot), its durable
// consumers keep their positions. (Re-enabling JetStream inside the
// running server, as nats-server's own reload does, races with API
// requests in flight inside nats-server.)
const (
	// storeCheckEvery is how often a faulted store is looked at.
	storeCheckEvery = 2 * time.Second
	// StoreRoomNeeded is the free space the store's filesystem must have
	// before JetStream is restarted: room for a few of the file store's
	// message blocks (up to 8 MiB each), so it does not fail again at once.
	StoreRoomNeeded = 32 << 20
	// storeRestartGap keeps restarts apart when space comes and goes.
	storeRestartGap = 10 * time.Second
)

// storeFault records that the embedded server reported a store write error.
type storeFault struct {
	at     atomic.Int64 // unix nanoseconds of the last report; 0 = none
	reason atomic.Value // string
}

func (f *storeFault) report(msg string) {
	if !isStoreFault(msg) {
		return
	}
	f.reason.Store(msg)
	f.at.Store(time.Now().UnixNano())
}

func (f *storeFault) clear() { f.at.Store(0) }

func (f *storeFault) active() (string, bool) {
	if f.at.Load() == 0 {
		return "", false
	}
	r, _ := f.reason.Load().(string)
	return r, true
}

// isStoreFault recognises nats-server's reports of a store it can no
// longer write (filestore, stream and consumer "critical write error") and
// of JetStream disabling itself (out of resources, permission denied).
func isStoreFault(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "critical write error") || strings.Contains(m, "will be disabled") ||
		strings.Contains(m, "disabling jetstream")
}

// serverSlot hands the hub's connection the embedded server running now;
// nats.go asks it again on every reconnect, so after a restart the
// connection finds the new server.
type serverSlot struct {
	mu  sync.RWMutex
	srv *server.Server
}

func (s *serverSlot) get() *server.Server {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.srv
}

func (s *serverSlot) set(srv *server.Server) {
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
}

// InProcessConn implements nats.InProcessConnProvider.
func (s *serverSlot) InProcessConn() (net.Conn, error) {
	srv := s.get()
	if srv == nil {
		return nil, errors.New("embedded NATS is restarting")
	}
	return srv.InProcessConn()
}

// storeSupervisor restarts the embedded server after a store fault once
// there is room again.
type storeSupervisor struct {
	slot  *serverSlot
	cfg   EmbeddedOptions
	creds *Embedded // the credentials the hub's connection uses, kept across restarts
	fault *storeFault
	log   *slog.Logger
	// onRestart runs with the new server after a restart.
	onRestart func(*server.Server)
	free      func(dir string) (uint64, error)

	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
	mu       sync.Mutex
	last     time.Time // last restart
	restarts int
	waiting  bool // a "waiting for space" line was logged
}

func (s *storeSupervisor) run() {
	defer close(s.done)
	t := time.NewTicker(storeCheckEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.check()
	}
}

// check restarts JetStream when the store faulted (or JetStream is off)
// and its filesystem has room.
func (s *storeSupervisor) check() {
	reason, faulted := s.fault.active()
	if !faulted && s.slot.get().JetStreamEnabled() {
		return
	}
	if !faulted {
		reason = "JetStream is not running"
	}
	free, err := s.free(s.cfg.StoreDir)
	if err != nil {
		s.log.Error("store fault: cannot read the store's free space", "dir", s.cfg.StoreDir, "err", err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if free < StoreRoomNeeded {
		if !s.waiting {
			s.waiting = true
			s.log.Warn("JetStream store cannot be written; waiting for free space to restart it", "dir", s.cfg.StoreDir,
				"free_bytes", free, "needed_bytes", StoreRoomNeeded, "reason", reason)
		}
		return
	}
	if time.Since(s.last) < storeRestartGap {
		return
	}
	s.last = time.Now()
	s.waiting = false
	srv, err := s.restart()
	if err != nil {
		s.log.Error("embedded NATS restart after a store fault failed; trying again", "err", err)
		return
	}
	s.restarts++
	s.log.Info("embedded NATS restarted after a store fault; streams loaded again", "free_bytes", free, "restarts", s.restarts)
	if s.onRestart != nil {
		s.onRestart(srv)
	}
}

// restart shuts the embedded server down and starts it again on the same
// store, options and credentials.
func (s *storeSupervisor) restart() (*server.Server, error) {
	// Cleared first: a fault reported while the streams load again counts.
	s.fault.clear()
	if old := s.slot.get(); old != nil {
		old.Shutdown()
		old.WaitForShutdown()
	}
	emb, err := startEmbedded(s.cfg, s.log, s.fault, s.creds)
	if err != nil {
		return nil, fmt.Errorf("start embedded NATS: %w", err)
	}
	s.slot.set(emb.Server)
	return emb.Server, nil
}

func (s *storeSupervisor) close() {
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.done
}

// freeBytes is the space an unprivileged writer can still use in dir.
func freeBytes(dir string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}
