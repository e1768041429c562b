package reliability

import (
	"fmt"
	"testing"
	"time"

	"github.com/samhub/samhub/internal/hubtest"
	"github.com/samhub/samhub/internal/logbuf"
)

// TestScenarioDuplicate is S5: of the letters a GP system sends, a fifth
// arrive twice byte for byte and a fifth are resent twice with new envelope
// identifiers (MedCom's resend after 15 and 30 minutes). Each letter must
// become one case document, every copy must get the same acknowledgement,
// and the hub must count each extra copy as a duplicate.
func TestScenarioDuplicate(t *testing.T) {
	t.Parallel()
	n := size("DUPLICATE_LETTERS", 200, 3000)
	seed := r1Seed()
	rng := r1Rand(seed)
	log := &logbuf.Buffer{}
	h := hubtest.Start(t, hubtest.WithLog(log))
	receipts := r1CollectReceipts(h.MedComDir)
	ledger := oNewLedger()
	type copyOf struct {
		name string
		data []byte
	}
	var later []copyOf // copies sent after the originals, in random order
	identical, resent := 0, 0
	for i := 0; i < n; i++ {
		id, data := r1Letter(t, "DUP", i)
		ledger.Add(id, data, "casefile")
		h.Drop(fmt.Sprintf("dup-%07d.xml", i), data)
		switch r := rng.IntN(10); {
		case r < 2:
			later = append(later, copyOf{fmt.Sprintf("dup-%07d-again.xml", i), data})
			identical++
		case r < 4:
			for k := 1; k <= 2; k++ {
				later = append(later, copyOf{fmt.Sprintf("dup-%07d-resend%d.xml", i, k), r1WithEnvelope(data, fmt.Sprintf("DUPR%d%09d", k, i))})
				resent++
			}
		}
	}
	// Some copies arrive while the original is still in the hub, some long after.
	rng.Shuffle(len(later), func(i, j int) { later[i], later[j] = later[j], later[i] })
	for i, c := range later {
		h.Drop(c.name, c.data)
		if i%50 == 49 {
			time.Sleep(100 * time.Millisecond)
		}
	}
	copies := n + len(later)
	r1Wait(t, time.Duration(copies/10+60)*time.Second, "every copy processed", func() bool {
		return r1Files(h.MedComDir+"/processed") >= copies
	})
	r1Wait(t, time.Duration(n/10+60)*time.Second, "every letter delivered", func() bool { return r1Delivered(ledger, h.CaseSys) >= n })
	// The hub counts a delivery once it is done with the letter, so a
	// second document it files for one (the deliver-twice proof) is in the
	// case system by then; a fixed wait saw none on a loaded machine, where
	// the simulator files the letters' first documents before any second.
	r1Wait(t, time.Duration(n/10+60)*time.Second, "the hub done with every letter", func() bool {
		_, page := r1Get(t, h.BaseURL+"/metrics")
		return metricSum(page, `samhub_deliveries_total{destination="casefile"`) >= float64(n)
	})
	time.Sleep(500 * time.Millisecond) // a late redelivery would show itself now
	_, page := r1Get(t, h.BaseURL+"/metrics")
	dupMetric := metricSum(page, "samhub_letters_duplicate_total")
	dupLogged := len(log.Lines("duplicate letter"))
	names, files, mismatched := receipts.Stop()
	v := r1CaseVerdict(ledger, h.CaseSys, r1Parked(t, h))
	errored := r1Files(h.MedComDir + "/error")
	report(t, "duplicate", "letters", n, "copies", copies, "identical_copies", identical, "resends", resent,
		"documents_once", v.Once(), "duplicates", v.Dup(), "lost", v.Lost(), "stray", len(v.Stray), "receipts", names, "receipt_files", files,
		"receipt_mismatch", mismatched, "duplicates_logged", dupLogged, "duplicates_metric", dupMetric, "errored", errored, "seed", seed)
	oRequire(t, v, oAllow{})
	// A repeated acknowledgement replaces one the VANS client has not yet
	// fetched (same name, same bytes), so files may be fewer than copies.
	if names != n || mismatched != 0 {
		t.Errorf("acknowledgements: %d names for %d letters, %d names with differing content", names, n, mismatched)
	}
	if errored != 0 {
		t.Errorf("%d copies went to error/", errored)
	}
	if dupLogged != len(later) {
		t.Errorf("%d duplicates logged, want %d (one per extra copy)", dupLogged, len(later))
	}
	if dupMetric != float64(dupLogged) {
		t.Errorf("samhub_letters_duplicate_total is %v, but %d duplicates were logged", dupMetric, dupLogged)
	}
	if leak := r1PII.FindString(log.String()); leak != "" {
		t.Errorf("the hub's log carries personal data: %q", leak)
	}
}
