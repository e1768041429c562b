// Package logbuf is a log buffer that tests read while the code under test
// writes it from other goroutines (a hub's logger, a child process's
// output).
package logbuf

import (
	"strings"
	"sync"
)

// Buffer collects what is written to it; safe for concurrent use.
type Buffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String is all written so far.
func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Lines are the lines written so far that contain sub.
func (l *Buffer) Lines(sub string) []string {
	var out []string
	for line := range strings.SplitSeq(l.String(), "\n") {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return out
}

// Count is how often sub was written so far.
func (l *Buffer) Count(sub string) int { return strings.Count(l.String(), sub) }
