package adapters

import "context"

type firstTryKey struct{}

// WithFirstTry marks ctx as the hub's first try of a letter at a
// destination: the letter's first delivery from the stream, its first
// attempt, not a replay. No earlier try can then have left a copy at the
// receiver.
func WithFirstTry(ctx context.Context) context.Context {
	return context.WithValue(ctx, firstTryKey{}, true)
}

// FirstTry reports a first try (WithFirstTry). A sink that makes its
// delivery idempotent by looking for an earlier copy before it creates one
// may skip the look-up then: that is the one round trip its contract lets
// it save. Anything else (a retry, a redelivery after a crash, a replay)
// reports false, and the sink looks.
func FirstTry(ctx context.Context) bool {
	v, _ := ctx.Value(firstTryKey{}).(bool)
	return v
}
