// Package state names the outcomes and the scanned entries of the
// adapters' durable key/value state (adapters.StateStore), so that its
// implementation in the broker and the adapters that use it agree on them
// without importing each other.
package state

import "errors"

var (
	// ErrNotFound: the key has no value.
	ErrNotFound = errors.New("state: key not found")
	// ErrExists: a create found the key already set.
	ErrExists = errors.New("state: key exists")
	// ErrConflict: an update's revision is not the key's.
	ErrConflict = errors.New("state: revision conflict")
)

// Entry is one key with its value and revision, as a scan of a prefix
// returns it.
type Entry struct {
	Key      string
	Value    []byte
	Revision uint64
}
