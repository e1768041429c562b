//go:build !linux

package medcom

import (
	"errors"
	"io/fs"
	"os"
	"time"
)

const leaseProbe = false

// openForProbe checks that a file can be opened for reading. A variable so
// a test can make a file unreadable.
var openForProbe = func(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return -1, err
	}
	return 0, f.Close()
}

// writerCheck cannot tell whether a writer holds a file open on this
// system: files are taken on the settle time alone.
func writerCheck(path string) probe {
	_, err := openForProbe(path)
	switch {
	case errors.Is(err, fs.ErrPermission):
		return probeUnreadable
	case err != nil:
		return probeGone
	}
	return probeUnknown
}

func fileID(fs.FileInfo) uint64 { return 0 }

// movedAt: without the inode's change time, the modification time.
func movedAt(fi fs.FileInfo) time.Time { return fi.ModTime() }
