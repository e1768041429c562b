package medcom

import (
	"os"

	"golang.org/x/sys/unix"
)

// roundSync: on Linux a poll round writes its acknowledgements without
// fsyncs and makes them durable together with one syncfs(2) of the out
// directory's filesystem before any of the round's files moves on.
const roundSync = true

// syncFS flushes everything written to the filesystem holding dir. A
// variable so a test can make the disk fail.
var syncFS = func(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return unix.Syncfs(int(d.Fd()))
}
