//go:build !linux

package medcom

import (
	"context"
	"path/filepath"
	"strings"

	"github.com/fsnotify/fsnotify"
)

const inotifyRenames = false

// watchIn returns a channel that receives when a file may have arrived in
// dir, so a letter is picked up at once rather than at the next poll. It is
// a shortcut only: the poll interval still finds every file (network shares
// report no events). A nil channel (never ready) means no watch could be set
// up. fsnotify does not say whether a file was created or renamed into
// place, so on this system every file waits for the settle time.
func (a *Adapter) watchIn(ctx context.Context, dir string) <-chan struct{} {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		a.log.Info("medcom: no file notifications; polling only", "err", err)
		return nil
	}
	if err := w.Add(dir); err != nil {
		_ = w.Close()
		a.log.Info("medcom: no file notifications; polling only", "dir", dir, "err", err)
		return nil
	}
	wake := make(chan struct{}, 1)
	go func() {
		defer w.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				// A writer's dotfile or .tmp is not ready; its rename to
				// the final name arrives as a Create.
				name := filepath.Base(ev.Name)
				if !ev.Has(fsnotify.Create) || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".tmp") {
					continue
				}
				select {
				case wake <- struct{}{}:
				default: // a wake-up is already pending
				}
			case _, ok := <-w.Errors:
				if !ok {
					return
				}
				// Overflow: events were lost; wake up and list the directory.
				select {
				case wake <- struct{}{}:
				default:
				}
			}
		}
	}()
	return wake
}
