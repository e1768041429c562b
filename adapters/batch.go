package adapters

import (
	"context"

	"github.com/samhub/samhub/pipeline/letter"
)

// BatchPublisher is implemented by the Publisher the hub hands a source: a
// source that reads its input in rounds (the MedCom drop folder) hands the
// hub a round of letters at once and is told, letter by letter, what became
// of each. The hub commits a round together (one synced write for many
// letters), so a round costs about one durable round trip instead of one
// per letter. The models are Benthos's ReadBatch with its ack function and
// Watermill's Publish(...*Message).
//
// Each item may carry a checkpoint: opaque bytes the source wants stored
// with the letter (the MedCom source keeps the acknowledgement it sends for
// the letter there). When the hub holds the letter already, the result is
// Duplicate with the stored copy's checkpoint, so the source repeats
// exactly what it did the first time, from the stored letter alone.
//
// Results come in the order of items, one each. Letters are stored in the
// order given; a letter that fails for a retryable reason holds back the
// later letters of its thread in the same call (they fail too), so a
// thread's letters are never stored out of order. The acknowledgement rule
// of Source holds per letter: a source acknowledges an input only when
// every letter made from it is Stored or Duplicate.
type BatchPublisher interface {
	PublishBatch(ctx context.Context, items []Item) []Result
}

// Item is one letter of a round.
type Item struct {
	Letter *letter.Letter
	// Checkpoint is stored with the letter and given back on a duplicate;
	// at most MaxCheckpoint bytes. It must hold no personal data beyond
	// what the source sends back to the letter's sender anyway.
	Checkpoint []byte
}

// MaxCheckpoint bounds an item's checkpoint (it travels in a message
// header; the broker's headers are at most 64 KiB).
const MaxCheckpoint = 32 << 10

// Outcome is what became of one letter of a round.
type Outcome int

const (
	// Failed: not stored (Result.Err says why: Permanent, or retryable).
	Failed Outcome = iota
	// Stored: stored now.
	Stored
	// Duplicate: stored before; not routed again. Result.Checkpoint is
	// the stored copy's checkpoint (nil when it was stored without one).
	Duplicate
)

func (o Outcome) String() string {
	switch o {
	case Stored:
		return "stored"
	case Duplicate:
		return "duplicate"
	}
	return "failed"
}

// Result is the answer for one item.
type Result struct {
	Outcome    Outcome
	Checkpoint []byte // Duplicate: the stored copy's checkpoint
	Err        error  // Failed: classify with Classify
}

// PublishBatch hands items to pub: in one call when pub is a
// BatchPublisher, else one Publish per letter (such a publisher never
// answers Duplicate and keeps no checkpoint; a source that needs them must
// say what it does without).
func PublishBatch(ctx context.Context, pub Publisher, items []Item) []Result {
	if bp, ok := pub.(BatchPublisher); ok {
		return bp.PublishBatch(ctx, items)
	}
	res := make([]Result, len(items))
	blocked := map[string]error{}
	for i, it := range items {
		th := it.Letter.Thread()
		if err := blocked[th]; err != nil {
			res[i] = Result{Err: err}
			continue
		}
		if err := pub.Publish(ctx, it.Letter); err != nil {
			res[i] = Result{Err: err}
			if class, _, _ := Classify(err); class != ClassPermanent {
				blocked[th] = Retryable("held_behind_thread", "an earlier letter of its thread was not stored", err)
			}
			continue
		}
		res[i] = Result{Outcome: Stored}
	}
	return res
}
