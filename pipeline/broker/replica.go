package broker

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// ReplicaFile is the file in the data directory that names this replica.
const ReplicaFile = "replica-id"

// Replica is this hub's name as a lease holder. It is made once per data
// directory (host-pid-random of the first start) and kept there, so a hub
// restarted after a crash recognises the leases its previous life held and
// takes them up at once instead of waiting up to LeaseTTL for them to
// expire. The file stays locked while the hub runs: two live processes on
// one data directory would otherwise share the name, and both would believe
// they hold a lease.
type Replica struct {
	ID string
	f  *os.File
}

// ClaimReplica reads (or makes) the replica name in dataDir and locks it
// for this process. It fails, naming the directory, when another live hub
// holds it.
func ClaimReplica(dataDir string) (*Replica, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data_dir: %w", err)
	}
	path := filepath.Join(dataDir, ReplicaFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data_dir: replica name: %w", err)
	}
	// flock, not fcntl: the lock belongs to this open file, so a second
	// hub in the same process is refused too, and the kernel drops it when
	// the process dies (kill -9 included).
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("data_dir %s is in use by another running samhub (%s is locked); each hub needs its own data directory", dataDir, path)
		}
		return nil, fmt.Errorf("data_dir: lock %s: %w", path, err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("data_dir: replica name: %w", err)
	}
	id := strings.TrimSpace(string(b))
	if id == "" || strings.ContainsAny(id, " \t\r\n") {
		host, _ := os.Hostname()
		suffix := make([]byte, 4)
		_, _ = rand.Read(suffix)
		id = fmt.Sprintf("%s-%d-%x", host, os.Getpid(), suffix)
		err := f.Truncate(0)
		if err == nil {
			_, err = f.WriteAt([]byte(id+"\n"), 0)
		}
		if err == nil {
			err = f.Sync()
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("data_dir: write replica name: %w", err)
		}
	}
	return &Replica{ID: id, f: f}, nil
}

// Release unlocks the name; the hub must have stopped using its leases.
func (r *Replica) Release() {
	if r != nil && r.f != nil {
		r.f.Close() // closing the file drops the flock
		r.f = nil
	}
}
