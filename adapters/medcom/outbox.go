package medcom

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/samhub/samhub/adapters"
)

// The outbox is the letters sent and awaiting their acknowledgement, one
// state key each (pendingKey), shared by every replica. Versions before
// kept it in one value (oldOutboxKey), rewritten whole by every delivery
// and acknowledgement: each cost grew with the letters awaiting an
// answer, and past about 4,000 of them (a letter never acknowledged stays)
// the value outgrew a NATS server's default 1 MB message limit, after
// which every MedCom delivery failed.
const (
	pendingPrefix = "pending."
	oldOutboxKey  = "outbox"
)

func pendingKey(ref string) string { return stateKey("pending", ref) }

// pendingEntry returns the outbox entry of MedCom reference ref and its
// revision; nil when there is none.
func (a *Adapter) pendingEntry(ctx context.Context, ref string) (*pending, uint64, error) {
	var p pending
	rev, found, err := getJSON(ctx, a.state, pendingKey(ref), &p)
	if err != nil || !found {
		return nil, 0, err
	}
	return &p, rev, nil
}

// addPending names a letter in the outbox. When an earlier try named it
// already, that entry is returned and nothing is written.
func (a *Adapter) addPending(ctx context.Context, p *pending) (earlier *pending, err error) {
	b, _ := json.Marshal(p) // strings, numbers and times: cannot fail
	for range 10 {
		if _, err := a.state.Create(ctx, pendingKey(p.Ref), b); !errors.Is(err, adapters.ErrExists) {
			return nil, err
		}
		q, _, err := a.pendingEntry(ctx, p.Ref)
		if err != nil || q != nil {
			return q, err
		}
		// Removed between the two calls: name it afresh.
	}
	return nil, errors.New("medcom: the outbox entry kept changing")
}

// changePending applies fn to ref's entry with optimistic concurrency.
// Nothing is written when there is no entry or fn returns false.
func (a *Adapter) changePending(ctx context.Context, ref string, fn func(*pending) bool) error {
	for range 10 {
		p, rev, err := a.pendingEntry(ctx, ref)
		if err != nil || p == nil || !fn(p) {
			return err
		}
		b, _ := json.Marshal(p)
		if _, err = a.state.Update(ctx, pendingKey(ref), b, rev); !errors.Is(err, adapters.ErrConflict) {
			return err
		}
	}
	return errors.New("medcom: the outbox entry kept changing")
}

// removePending takes ref's entry out of the outbox.
func (a *Adapter) removePending(ctx context.Context, ref string) error {
	return a.state.Delete(ctx, pendingKey(ref))
}

// outboxEntries reads the whole outbox, by reference, after moving what
// an earlier version left in its single value.
func (a *Adapter) outboxEntries(ctx context.Context) (map[string]*pending, error) {
	if err := a.moveOldOutbox(ctx); err != nil {
		return nil, err
	}
	entries, err := a.state.Scan(ctx, pendingPrefix)
	if err != nil {
		return nil, err
	}
	ob := make(map[string]*pending, len(entries))
	for _, e := range entries {
		var p pending
		if err := json.Unmarshal(e.Value, &p); err != nil || p.Ref == "" {
			a.log.Warn("medcom: unreadable outbox entry ignored", "key", e.Key)
			continue
		}
		ob[p.Ref] = &p
	}
	return ob, nil
}

// moveOldOutbox gives each entry of the single-value outbox of earlier
// versions a key of its own, and empties that value with a revision
// check, so an entry a replica of such a version adds meanwhile (a rolling
// upgrade) stays for the next check to move. An entry already moved keeps
// its own key's state.
func (a *Adapter) moveOldOutbox(ctx context.Context) error {
	for range 10 {
		old := map[string]*pending{}
		rev, found, err := getJSON(ctx, a.state, oldOutboxKey, &old)
		if err != nil || !found || len(old) == 0 {
			return err
		}
		for ref, p := range old {
			p.Ref = ref
			b, _ := json.Marshal(p)
			if _, err := a.state.Create(ctx, pendingKey(ref), b); err != nil && !errors.Is(err, adapters.ErrExists) {
				return err
			}
		}
		if _, err := a.state.Update(ctx, oldOutboxKey, []byte("{}"), rev); !errors.Is(err, adapters.ErrConflict) {
			if err == nil {
				a.log.Info("medcom: outbox entries moved to keys of their own", "entries", len(old))
			}
			return err
		}
	}
	return errors.New("medcom: the earlier version's outbox kept changing")
}

// checkTimeout bounds one outbox check (CheckAcks), which Run makes in
// the loop that takes letters in.
const checkTimeout = 30 * time.Second

// checkEvery is how often Run checks the outbox: a read of every entry,
// so not at every poll, yet often enough against ack_timeout that a
// letter is flagged and resent close to it.
func (a *Adapter) checkEvery() time.Duration {
	return min(max(a.cfg.AckTimeout/30, a.cfg.PollInterval), time.Minute)
}
