package medcom

import (
	"errors"
	"io/fs"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// leaseProbe: writerCheck can tell whether a writer holds a file open.
const leaseProbe = true

// openForProbe opens a file for writerCheck. A variable so a test can make
// a file unreadable although the tests run as root.
var openForProbe = func(path string) (int, error) {
	return unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
}

// writerCheck takes and at once gives back a read lease on path: the kernel
// refuses it (EAGAIN) while any process has the file open for writing. A
// writer that opens the file in the microseconds the lease is held waits
// for its release, nothing more.
func writerCheck(path string) probe {
	fd, err := openForProbe(path)
	switch {
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
		return probeUnreadable
	case err != nil: // gone, or replaced by a link or something irregular
		return probeGone
	}
	defer unix.Close(fd)
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETLEASE, unix.F_RDLCK); err != nil {
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EBUSY) {
			return probeBusy
		}
		// EACCES (another owner, no CAP_LEASE), EINVAL (NFS, CIFS, FUSE, or
		// leases switched off in fs.leases-enable): no answer here.
		return probeUnknown
	}
	_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETLEASE, unix.F_UNLCK)
	return probeFree
}

// fileID is the inode number: a file replaced under the same name with the
// same size and time is still a new file.
func fileID(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}

// movedAt is when the file's inode last changed, which a rename does: when
// it came into the directory it is in. A handled file keeps the
// modification time its sender gave it.
func movedAt(fi fs.FileInfo) time.Time {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return time.Unix(st.Ctim.Sec, st.Ctim.Nsec)
	}
	return fi.ModTime()
}
