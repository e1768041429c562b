package adapters

import (
	"context"
	"time"

	"github.com/samhub/samhub/internal/clock"
)

// Sleep waits d or until ctx ends, and reports whether the whole d passed
// (clock.Sleep, which the broker uses too).
func Sleep(ctx context.Context, d time.Duration) bool { return clock.Sleep(ctx, d) }
