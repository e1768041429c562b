package logging

import "context"

// CorrelationKey is the attribute key the Handler gives the correlation id.
const CorrelationKey = "correlation_id"

type correlationKey struct{}

// WithCorrelation returns ctx carrying id, which every record logged with
// that context (InfoContext, ErrorContext, …) through a Handler carries as
// correlation_id. The id should be a letter id or request id, never personal data.
func WithCorrelation(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, correlationKey{}, id)
}

// CorrelationID returns the id set by WithCorrelation, or "".
func CorrelationID(ctx context.Context) string {
	if ctx == nil {
		return ""
	}
	id, _ := ctx.Value(correlationKey{}).(string)
	return id
}
