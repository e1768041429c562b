// Package logging builds Samhub's slog loggers: JSON or text output through a
// Handler that strips CPR numbers and personal fields whatever the caller
// passes, and adds a correlation id from the context.
package logging

import (
	"io"
	"log/slog"
)

// New returns a logger writing records at level or above to w, as JSON when
// format is "json" (or empty, or unknown: JSON is the production default) and
// as logfmt-style text when format is "text", with personal data redacted.
func New(w io.Writer, level slog.Level, format string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	var next slog.Handler
	if format == "text" {
		next = slog.NewTextHandler(w, opts)
	} else {
		next = slog.NewJSONHandler(w, opts)
	}
	return slog.New(NewHandler(next, HandlerOptions{}))
}
