// Package clock holds the pause every polling loop and back-off uses. It
// sits below adapters and pipeline so both can use it without importing
// each other.
package clock

import (
	"context"
	"time"
)

// Sleep waits d or until ctx ends, and reports whether the whole d passed.
// Polling loops and back-offs use it so a stopping hub never waits out a
// pause.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
