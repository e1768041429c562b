package hubtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/samhub/samhub/pipeline/broker"
	"github.com/samhub/samhub/pipeline/letter"
	"github.com/samhub/samhub/pipeline/retryq"
)

// parkSeq numbers the copies' letter-stream positions, which the queue's
// duplicate check keys on, far above what a test stores.
var parkSeq atomic.Uint64

func init() { parkSeq.Store(1 << 40) }

// ParkCopies parks n copies of a stored letter at dest with reason code,
// as the hub parks a letter (retryq.Park, the letter as stored in the
// body), each a letter of its own with its own id and thread. A replay
// delivers them like any parked letter. It is how a test gets a retry
// queue of thousands after an outage without making thousands of letters
// fail first. It returns the copies' ids in the order they were parked
// (32 are parked at a time, so the order is not the loop's).
func (h *Hub) ParkCopies(letterID, dest, code string, n int) []string {
	h.T.Helper()
	return h.ParkEditedCopies(letterID, dest, code, n, nil)
}

// ParkEditedCopies is ParkCopies with edit applied to each copy before it
// is parked (edit must keep its id and thread).
func (h *Hub) ParkEditedCopies(letterID, dest, code string, n int, edit func(*letter.Letter)) []string {
	h.T.Helper()
	ctx := context.Background()
	orig, _, err := h.App.Hub.StoredLetter(ctx, letterID)
	if err != nil {
		h.T.Fatalf("park copies of %s: %v", letterID, err)
	}
	prefix := "COPY-" + randomHex(4)
	reason := fmt.Sprintf("%s refused or did not answer (test copy, code %s)", dest, code)
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for range 32 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				c := *orig
				c.ID = fmt.Sprintf("%s-%05d", prefix, i)
				c.ThreadID = c.ID
				if edit != nil {
					edit(&c)
				}
				raw, err := letter.Marshal(&c)
				if err == nil {
					f := retryq.Failure{At: time.Now().UTC(), Class: "permanent", Code: code, Reason: reason}
					e := retryq.Entry{LetterID: c.ID, Destination: dest, Kind: string(c.Kind), Source: c.Source, Thread: broker.Token(c.Thread()),
						Attempts: 1, FirstError: f, LastError: f, LetterSeq: parkSeq.Add(1)}
					if id := c.Patient.Identifier(); id != "" {
						e.Patient = retryq.PatientToken(id)
					}
					err = h.App.Hub.Queue().Park(ctx, e, raw)
				}
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		h.T.Fatalf("park copies of %s: %v", letterID, firstErr)
	}
	var ids []string
	err = h.App.Hub.Queue().Each(ctx, retryq.Filter{Destination: dest, Code: code}, 0, func(e retryq.Entry) bool {
		if len(e.LetterID) > len(prefix) && e.LetterID[:len(prefix)] == prefix {
			ids = append(ids, e.LetterID)
		}
		return true
	})
	if err != nil || len(ids) != n {
		h.T.Fatalf("park copies of %s: %d of %d parked, %v", letterID, len(ids), n, err)
	}
	return ids
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
