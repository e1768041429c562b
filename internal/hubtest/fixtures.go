package hubtest

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/samhub/samhub/pipeline"
	"github.com/samhub/samhub/pipeline/council"
	"github.com/samhub/samhub/pipeline/retryq"
)

// Seating is the council as SeatChildren leaves it.
type Seating struct {
	Refs  []string // the Children's referrals (letters 900, 901, 902), in order
	Next  string   // the meeting that seats the first two
	Other string   // a meeting ahead with room
	Full  string   // a meeting ahead with no room: it seats the third child
	Empty string   // an added meeting that seats nobody
}

// SeatChildren refers the Children to the council, waits until they are
// seated and filed, and adds a full and an empty meeting: what the tests
// of the council's actions act on.
func (h *Hub) SeatChildren() Seating {
	h.T.Helper()
	ctx := context.Background()
	k := h.App.Hub.Council()
	var s Seating
	for i, c := range Children {
		b, err := ChildLetter(c, 900+i)
		if err != nil {
			h.T.Fatal(err)
		}
		h.Drop(fmt.Sprintf("ref-%d.xml", i), b)
		s.Refs = append(s.Refs, LetterID(900+i))
	}
	h.Eventually("the referrals seated", func() bool {
		n := 0
		for _, r := range k.Referrals(council.ReferralFilter{}) {
			if r.Meeting != "" {
				n, s.Next = n+1, r.Meeting
			}
		}
		return n == len(Children)
	})
	h.Eventually("the referrals filed", func() bool { return len(h.CaseSys.Documents()) >= len(Children) })
	for _, m := range k.Meetings(time.Now(), time.Now().AddDate(1, 0, 0)) {
		if m.ID != s.Next && !m.Past && m.Cancelled == nil && m.Room > 0 {
			s.Other = m.ID
			break
		}
	}
	setup := council.Actor{Name: "setup", Role: "coordinator"}
	full, err := k.AddMeeting(ctx, setup, "2099-03-04 10:00", 1, "setup")
	if err != nil {
		h.T.Fatal(err)
	}
	if _, err := k.MoveReferral(ctx, setup, s.Refs[2], full.ID, "setup"); err != nil {
		h.T.Fatal(err)
	}
	empty, err := k.AddMeeting(ctx, setup, "2099-03-11 10:00", 0, "setup")
	if err != nil {
		h.T.Fatal(err)
	}
	s.Full, s.Empty = full.ID, empty.ID
	if s.Other == "" || s.Next == "" {
		h.T.Fatalf("meetings: next %q, other %q", s.Next, s.Other)
	}
	return s
}

// Parking is the retry queue as ParkWithHold leaves it.
type Parking struct {
	Held    pipeline.Hold  // the fixture letter's thread, held behind it
	HeldSeq uint64         // the letter of that thread parked behind it
	Own     []retryq.Entry // letters of threads of their own (700, 701, …)
}

// ParkWithHold parks, while the case system refuses everything, the
// fixture letter with a letter of its thread held behind it, and own
// letters of threads of their own (the Children's in turn); then the case
// system answers again.
func (h *Hub) ParkWithHold(own int) Parking {
	h.T.Helper()
	ctx := context.Background()
	hub := h.App.Hub
	h.CaseSys.FailNext(100000, http.StatusBadRequest, 0)
	parked := func(n int) []retryq.Entry {
		var es []retryq.Entry
		h.Eventually(fmt.Sprintf("%d letters parked", n), func() bool {
			es, _ = hub.Queue().List(ctx, retryq.Filter{})
			return len(es) == n
		})
		return es
	}
	var p Parking
	for i, name := range []string{"letter-utf8.xml", "letter-iso-8859-1.xml"} {
		data, err := fixture(filepath.Join("testdata/medcom/samhub", name))
		if err != nil {
			h.T.Fatal(err)
		}
		h.Drop(name, data)
		parked(i + 1)
	}
	h.Eventually("a thread held", func() bool {
		hs := hub.Holds()
		if len(hs) == 1 {
			p.Held = hs[0]
		}
		return len(hs) == 1
	})
	for _, e := range parked(2) {
		if e.LetterID != p.Held.WaitsFor {
			p.HeldSeq = e.Seq
		}
	}
	for i := range own {
		b, err := ChildLetter(Children[i%len(Children)], 700+i)
		if err != nil {
			h.T.Fatal(err)
		}
		h.Drop(fmt.Sprintf("own-%d.xml", i), b)
	}
	for _, e := range parked(2 + own) {
		if strings.Contains(e.LetterID, "LTR000000007") {
			p.Own = append(p.Own, e)
		}
	}
	h.CaseSys.ResetFaults()
	return p
}

// SetAside puts data into the MedCom error/ folder as a file an older hub
// took half-written would have been left: refused as not XML, its sender
// never answered, so the coordinator may put it back.
func (h *Hub) SetAside(name string, data []byte) {
	h.T.Helper()
	dir := filepath.Join(h.MedComDir, "error")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		h.T.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
		h.T.Fatal(err)
	}
	note := "rejected (no acknowledgement could be addressed): xml: no root element: input is not XML\n\ncode: syntax\nacknowledgement sent: no\n"
	if err := os.WriteFile(filepath.Join(dir, name+".error.txt"), []byte(note), 0o600); err != nil {
		h.T.Fatal(err)
	}
}
