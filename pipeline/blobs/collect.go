package blobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Collect deletes the blobs last dated before cutoff that keep does not
// name, and returns how many it deleted.
//
// The hub calls it with cutoff = now − letters_max_age − blobs_grace and
// keep = the blobs parked letters name. A blob is dated when stored and
// re-dated when a later letter reuses it (Put) or a parked letter is
// replayed (Touch), so every letter still on the letter stream was stored
// after its blobs' date minus at most TouchAfter, which the grace exceeds.
//
// Each candidate is looked up again just before it is deleted, so a blob
// re-dated since the listing stays. What remains is the moment between
// that look-up and the delete: a letter reusing the blob in exactly that
// moment would later park with blob_missing (visible to the coordinator),
// never deliver wrong bytes.
func (s *Store) Collect(ctx context.Context, cutoff time.Time, keep map[string]bool) (int, error) {
	list, err := s.obs.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("blob store: list: %w", err)
	}
	deleted := 0
	for _, info := range list {
		if keep[info.Name] || !info.ModTime.Before(cutoff) {
			continue
		}
		cur, err := s.obs.GetInfo(ctx, info.Name)
		if errors.Is(err, jetstream.ErrObjectNotFound) {
			continue
		}
		if err != nil {
			return deleted, fmt.Errorf("blob store: %w", err)
		}
		if !cur.ModTime.Before(cutoff) {
			continue
		}
		if err := s.obs.Delete(ctx, info.Name); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
			return deleted, fmt.Errorf("blob store: delete: %w", err)
		}
		deleted++
	}
	return deleted, nil
}
