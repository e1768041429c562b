package pipeline

import (
	"bytes"
	"sync"

	"github.com/samhub/samhub/pipeline/letter"
)

// decoded shares one decode of a stored letter among the destinations'
// handlers: every destination reads every letter of the stream, and
// decoding (JSON with the original bytes in base64) was the largest CPU
// cost per letter after TLS in the benchmark's profile. Letters handed out
// are shared and therefore read-only; the handler gives sinks a copy.
//
// An entry is dropped once every destination took it, and the cache never
// holds more than max entries (a destination far behind the others decodes
// for itself). The stored bytes are compared, so a hit is always the same
// letter whatever the sequence numbers do.
type decoded struct {
	mu      sync.Mutex
	readers int // destinations reading the letter stream
	max     int
	entries map[uint64]*decodedEntry
	order   []uint64 // insertion order, for the bound
}

type decodedEntry struct {
	raw   []byte
	l     *letter.Letter
	taken int
}

func newDecoded(readers, max int) *decoded {
	return &decoded{readers: readers, max: max, entries: map[uint64]*decodedEntry{}}
}

// get returns the letter stored at seq with bytes raw.
func (d *decoded) get(seq uint64, raw []byte) (*letter.Letter, error) {
	if d == nil || d.readers < 2 || seq == 0 {
		return letter.Unmarshal(raw)
	}
	d.mu.Lock()
	if e, ok := d.entries[seq]; ok && bytes.Equal(e.raw, raw) {
		e.taken++
		if e.taken >= d.readers {
			delete(d.entries, seq)
		}
		d.mu.Unlock()
		return e.l, nil
	}
	d.mu.Unlock()
	l, err := letter.Unmarshal(raw)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.entries[seq]; !ok {
		d.entries[seq] = &decodedEntry{raw: raw, l: l, taken: 1}
		d.order = append(d.order, seq)
		for len(d.entries) > d.max && len(d.order) > 0 {
			delete(d.entries, d.order[0])
			d.order = d.order[1:]
		}
		if len(d.order) > 4*d.max {
			// Drop the sequences of entries already taken by everyone.
			kept := d.order[:0]
			for _, s := range d.order {
				if _, ok := d.entries[s]; ok {
					kept = append(kept, s)
				}
			}
			d.order = kept
		}
	}
	return l, nil
}
