package medcom

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// inotifyRenames: the watch tells a file renamed into in/ from one created there.
const inotifyRenames = true

// watchIn returns a channel that receives when a file may have arrived in
// dir or a writer closed one, so a letter is picked up at once rather than
// at the next poll, and marks names that arrived by rename (complete.go).
// It is a shortcut only: the poll interval still finds every file (network
// shares report no events, and the kernel drops events when its queue
// overflows: then renames wait for the settle time). A nil channel (never
// ready) means no watch could be set up.
//
// inotify is read directly because fsnotify reports a rename into the
// directory (IN_MOVED_TO) and a create (IN_CREATE) as the same Create event,
// and that difference is what says a file is complete.
func (a *Adapter) watchIn(ctx context.Context, dir string) <-chan struct{} {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		a.log.Info("medcom: no file notifications; polling only", "err", err)
		return nil
	}
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_CREATE|unix.IN_MOVED_TO|unix.IN_CLOSE_WRITE|unix.IN_ONLYDIR); err != nil {
		_ = unix.Close(fd)
		a.log.Info("medcom: no file notifications; polling only", "dir", dir, "err", err)
		return nil
	}
	// A non-blocking descriptor in an os.File uses the runtime's poller, so
	// Close ends a pending Read.
	f := os.NewFile(uintptr(fd), "inotify")
	go func() {
		<-ctx.Done()
		_ = f.Close()
	}()
	wake := make(chan struct{}, 1)
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := f.Read(buf)
			if err != nil {
				if !errors.Is(err, os.ErrClosed) && ctx.Err() == nil {
					a.log.Warn("medcom: file notifications stopped; polling only", "err", err)
				}
				return
			}
			if a.inotifyEvents(buf[:n]) {
				select {
				case wake <- struct{}{}:
				default: // a wake-up is already pending
				}
			}
		}
	}()
	return wake
}

// inotifyEvents records renames and creations from one read and reports
// whether the loop should look at the directory.
func (a *Adapter) inotifyEvents(b []byte) (wake bool) {
	const hdr = unix.SizeofInotifyEvent
	for len(b) >= hdr {
		ev := (*unix.InotifyEvent)(unsafe.Pointer(&b[0]))
		end := hdr + int(ev.Len)
		if end > len(b) {
			return true
		}
		name := string(bytes.TrimRight(b[hdr:end], "\x00"))
		b = b[end:]
		switch {
		case ev.Mask&unix.IN_Q_OVERFLOW != 0:
			wake = true // events were lost: list the directory
		case name == "" || ev.Mask&unix.IN_ISDIR != 0 || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".tmp"):
			// A partial file: its writer renames it when done.
		case ev.Mask&unix.IN_MOVED_TO != 0:
			a.arrivals.markRenamed(name, true)
			wake = true
		case ev.Mask&unix.IN_CREATE != 0:
			a.arrivals.markRenamed(name, false) // a new file under a name that may have been renamed in before
			wake = true
		case ev.Mask&unix.IN_CLOSE_WRITE != 0:
			wake = true
		}
	}
	return wake
}
