package reliability

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/samhub/samhub/internal/config"
	"github.com/samhub/samhub/internal/failpoint"
	"github.com/samhub/samhub/internal/hubtest"
	"github.com/samhub/samhub/internal/logbuf"
	"github.com/samhub/samhub/pipeline/broker"
)

// batchBursts drops letters into in/ in bursts, so that one poll round
// takes many files and the hub stores them with one batch publish. Each
// burst of size new referrals also holds twins (an identical copy of one
// of its letters under another file name: a copy inside one batch) and
// resends (a letter of an earlier burst again with a new envelope id: a
// copy across batches). The ledger holds each letter once.
type batchBursts struct {
	w                      *oWorld
	tag                    string
	size, twins, resends   int
	sent, copies, droppedN int
	datas                  [][]byte
	// files: letters naming a file, each followed by the XBIN01 letter
	// carrying it; by letter id, the file's bytes.
	files      map[string][]byte
	stop, done chan struct{}
	err        error
}

func (w *oWorld) batchFeed(tag string, size, twins, resends int, every time.Duration) *batchBursts {
	b := &batchBursts{w: w, tag: tag, size: size, twins: twins, resends: resends, stop: make(chan struct{}), done: make(chan struct{}), files: map[string][]byte{}}
	r1XBIN01(w.t, tag, 0) // loads the template on the test goroutine
	r1Letter(w.t, tag, 0) // loads the template on the test goroutine
	go func() {
		defer close(b.done)
		for burst := 0; ; burst++ {
			if err := b.burst(burst); err != nil {
				b.err = err
				return
			}
			select {
			case <-b.stop:
				return
			case <-time.After(every):
			}
		}
	}()
	return b
}

func (b *batchBursts) burst(k int) error {
	lower := strings.ToLower(b.tag)
	first := len(b.datas)
	var drops [][2]any
	bins := 0 // XBIN01 letters: neither letters of the ledger nor copies
	for i := first; i < first+b.size; i++ {
		id, data := r1Letter(b.w.t, b.tag, i)
		var bin []byte
		if i%5 == 2 {
			// Every fifth letter names a file, carried by an XBIN01
			// letter dropped right after it.
			var file []byte
			bin, file = r1XBIN01(b.w.t, b.tag, i)
			data = r1WithBIN(data, b.tag, i, len(file))
			b.files[id] = file
		}
		b.w.Ledger.Add(id, data, destCase, destNotices)
		b.datas = append(b.datas, data)
		drops = append(drops, [2]any{fmt.Sprintf("%s-%07d.xml", lower, i), data})
		if bin != nil {
			drops = append(drops, [2]any{fmt.Sprintf("%s-%07d-xbin01.xml", lower, i), bin})
			bins++
		}
	}
	for j := 0; j < b.twins; j++ {
		i := first + j*b.size/max(b.twins, 1)
		drops = append(drops, [2]any{fmt.Sprintf("%s-%07d-twin.xml", lower, i), b.datas[i]})
	}
	for j := 0; j < b.resends && first > 0; j++ {
		i := (k*7919 + j*104729) % first
		drops = append(drops, [2]any{fmt.Sprintf("%s-%07d-resend%d.xml", lower, i, k), r1WithEnvelope(b.datas[i], fmt.Sprintf("%sR%010d", b.tag, k*100+j))})
	}
	for _, d := range drops {
		if err := r1DropErr(b.w.MedCom, d[0].(string), d[1].([]byte)); err != nil {
			return err
		}
	}
	b.sent += b.size
	b.copies += len(drops) - b.size - bins
	b.droppedN += len(drops)
	return nil
}

// Stop ends the feed; it returns letters and extra copies dropped.
func (b *batchBursts) Stop() (letters, copies, files int) {
	close(b.stop)
	<-b.done
	if b.err != nil {
		b.w.t.Fatalf("feed: %v", b.err)
	}
	return b.sent, b.copies, b.droppedN
}

// batchAcks checks the acknowledgements the GP systems' peer took from
// out/: per letter of the ledger, how many were acknowledged, how many
// got two different acknowledgement files, how many files carried
// different bytes under one name, and how many were negative.
func (w *oWorld) batchAcks() (acked, differing, bytesDiffer, negative int) {
	names := map[string]map[string]bool{}
	sums := map[string]map[string]bool{}
	for _, a := range w.Peer.Acks() {
		if names[a.Of] == nil {
			names[a.Of] = map[string]bool{}
		}
		names[a.Of][a.File] = true
		if sums[a.File] == nil {
			sums[a.File] = map[string]bool{}
		}
		sums[a.File][a.SHA256] = true
		if !a.Positive {
			negative++
		}
	}
	for _, id := range w.Ledger.IDs() {
		if n := len(names[id]); n > 0 {
			acked++
			if n > 1 {
				differing++
			}
		}
	}
	for _, s := range sums {
		if len(s) > 1 {
			bytesDiffer++
		}
	}
	return acked, differing, bytesDiffer, negative
}

// TestScenarioBatchKill: the MedCom source stores a poll round with one
// batch publish, each letter carrying its acknowledgement as checkpoint.
// The hub runs as a child process and is killed with SIGKILL at the
// points of that path, in rotation: a letter of the batch stored and the
// source not told (letter-stored), the batch stored and no
// acknowledgement written (medcom-published), the acknowledgements
// written and not synced (medcom-acks-written), synced and no file moved
// (medcom-stored). Letters arrive in bursts holding copies of a letter
// of the same burst (inside one batch) and of an earlier burst (across
// batches). Every letter must become one case document, every file must
// reach processed/ once, every copy must get the acknowledgement its
// first copy got, byte for byte, and none may be negative.
func TestScenarioBatchKill(t *testing.T) {
	t.Parallel()
	kills := size("BATCH_KILLS", 8, 24)
	seed := r1Seed()
	rng := r1Rand(seed)
	w := oNewWorld(t)
	cfg, url := w.Config(filepath.Join(w.Dir, "hub"), oHubOpts{AckWait: config.DefaultAckWait})
	points := []string{failpoint.LetterStored, failpoint.MedComPublished, failpoint.MedComAcksWritten, failpoint.MedComStored}
	feed := w.batchFeed("BAT", 24, 3, 3, 250*time.Millisecond)
	var lives oLives
	at := map[string]int{}
	for k := 0; k < kills; k++ {
		point := points[k%len(points)]
		hit := 1 + rng.IntN(3)
		if point == failpoint.LetterStored {
			hit = 1 + rng.IntN(40) // one per letter, not per round
		}
		hub := oStartHub(t, cfg, url, k, fmt.Sprintf("%s@%d", point, hit))
		if !hub.Wait(2 * time.Minute) {
			t.Fatalf("life %d: the hub did not reach %s@%d within 2 minutes", k, point, hit)
		}
		life := hub.Life()
		lives.Add(life)
		if life.KilledAt != point {
			b, _ := os.ReadFile(hub.Log)
			t.Fatalf("life %d armed at %s@%d ended with %s (killed at %q):\n%s", k, point, hit, life.Exit, life.KilledAt, r1Tail(b, 3000))
		}
		at[point]++
	}
	letters, copies, files := feed.Stop()
	withFiles := len(feed.files)
	hub := oStartHub(t, cfg, url, kills, "")
	liveness := time.Duration(letters/10+120) * time.Second
	w.WaitAll(t, liveness, true)
	r1Wait(t, liveness, "in/ and processing/ empty", func() bool {
		return r1Files(filepath.Join(w.MedCom, "in")) == 0 && r1Files(filepath.Join(w.MedCom, "processing")) == 0
	})
	r1Wait(t, 30*time.Second, "every acknowledgement taken", func() bool { return r1Files(filepath.Join(w.MedCom, "out")) == 0 })
	time.Sleep(2 * time.Second) // a straggling redelivery would show itself now
	parked := oParked(t, url)
	hub.Stop(syscall.SIGTERM)
	lives.Add(hub.Life())
	v := w.Verdict(parked)
	acked, differing, bytesDiffer, negative := w.batchAcks()
	_, processed := w.processed("bat-")
	filesMissing := w.filesMissing(feed.files)
	errored := r2Count(filepath.Join(w.MedCom, "error"), ".error.txt")
	var kinds []string
	for p, n := range at {
		kinds = append(kinds, fmt.Sprintf("%s:%d", p, n))
	}
	sort.Strings(kinds)
	report(t, "batchkill", append(append([]any{"letters", letters, "copies", copies, "files", files, "kills", kills, "lives", lives.Lives,
		"crashes", lives.Crashes, "panics", lives.Panics}, v.Figures()...),
		"processed_files", processed, "errored", errored, "acknowledged", acked, "ack_differing", differing, "ack_bytes_differing", bytesDiffer,
		"ack_negative", negative, "with_files", withFiles, "files_missing", filesMissing, "kill_points", strings.Join(kinds, ","), "seed", seed)...)
	// As in kill9: a kill may repeat the mails in flight (oMailInFlight);
	// nothing may be lost or delivered twice under another id.
	oRequire(t, v, oAllow{Repeats: map[string]int{destNotices: kills * oMailInFlight}})
	if lives.Crashes != 0 || lives.Panics != 0 {
		t.Errorf("%d of %d lives ended on their own, %d panics", lives.Crashes, lives.Lives, lives.Panics)
	}
	if processed != files || errored != 0 {
		t.Errorf("%d files in processed/ and %d in error/, want all %d processed", processed, errored, files)
	}
	if acked != letters || differing != 0 || bytesDiffer != 0 || negative != 0 {
		t.Errorf("acknowledgements: %d of %d letters acknowledged, %d with two different acknowledgements, %d names with differing bytes, %d negative",
			acked, letters, differing, bytesDiffer, negative)
	}
	if withFiles == 0 || filesMissing != 0 {
		t.Errorf("%d of %d letters naming a file were filed without it", filesMissing, withFiles)
	}
}

// filesMissing counts the letters of files (letter id → the file's bytes)
// whose case document does not hold the file.
func (w *oWorld) filesMissing(files map[string][]byte) int {
	want := map[string]string{}
	for id, b := range files {
		sum := sha256.Sum256(b)
		want[id] = hex.EncodeToString(sum[:])
	}
	found := map[string]bool{}
	for _, d := range w.Case.Documents() {
		if d.Letter == nil || want[d.Letter.ID] == "" {
			continue
		}
		for _, f := range d.Files {
			if f.SHA256 == want[d.Letter.ID] {
				found[d.Letter.ID] = true
			}
		}
	}
	return len(want) - len(found)
}

// TestScenarioBatchRefused: the letter stream refuses the hub's batches
// (its max_bytes reached while bursts keep arriving, copies inside and
// across bursts among them): the hub stores what fits letter by letter,
// puts the rest back into in/ and, once the stream takes letters again,
// stores them. Nothing is lost or stored twice, nothing goes to error/,
// and every copy gets its first acknowledgement byte for byte.
func TestScenarioBatchRefused(t *testing.T) {
	t.Parallel()
	bursts := size("BATCHREFUSED_BURSTS", 12, 60)
	log := &logbuf.Buffer{}
	h := hubtest.Start(t, hubtest.WithLog(log))
	receipts := r1CollectReceipts(h.MedComDir)
	ledger := oNewLedger()
	ctx := context.Background()
	st, err := h.App.Broker.JS.Stream(ctx, broker.StreamLetters)
	if err != nil {
		t.Fatal(err)
	}
	drop := func(name string, data []byte) { h.Drop(name, data) }
	var datas [][]byte
	copies := 0
	burst := func(k int) {
		first := len(datas)
		for i := first; i < first+20; i++ {
			id, data := r1Letter(t, "BRF", i)
			ledger.Add(id, data, "casefile")
			datas = append(datas, data)
			drop(fmt.Sprintf("brf-%07d.xml", i), data)
		}
		drop(fmt.Sprintf("brf-%07d-twin.xml", first+5), datas[first+5]) // inside the batch
		copies++
		if first > 0 {
			i := (k * 7919) % first
			drop(fmt.Sprintf("brf-%07d-resend%d.xml", i, k), r1WithEnvelope(datas[i], fmt.Sprintf("BRFR%010d", k))) // across batches
			copies++
		}
	}
	// A first burst goes in while the stream has room.
	burst(0)
	r1Wait(t, 60*time.Second, "the first burst stored", func() bool { return r1Delivered(ledger, h.CaseSys) >= 20 })
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	full := info.Config
	limit := full
	limit.MaxBytes = int64(info.State.Bytes) + 5*int64(info.State.Bytes)/int64(max(info.State.Msgs, 1)) // room for about five more letters
	if _, err := h.App.Broker.JS.UpdateStream(ctx, limit); err != nil {
		t.Fatal(err)
	}
	for k := 1; k < bursts; k++ {
		burst(k)
		time.Sleep(100 * time.Millisecond)
	}
	// The stream refuses; the hub keeps the files and tries again.
	r1Wait(t, 60*time.Second, "the stream full and files waiting in in/", func() bool {
		i, err := st.Info(ctx)
		return err == nil && i.State.Bytes+uint64(limit.MaxBytes)/uint64(max(i.State.Msgs, 1)) > uint64(limit.MaxBytes) && r1Files(filepath.Join(h.MedComDir, "in")) > 0
	})
	refusedAt := r1Delivered(ledger, h.CaseSys)
	if _, err := h.App.Broker.JS.UpdateStream(ctx, full); err != nil {
		t.Fatal(err)
	}
	n := len(datas)
	files := n + copies
	r1Wait(t, time.Duration(n/5+120)*time.Second, "every letter delivered", func() bool { return r1Delivered(ledger, h.CaseSys) >= n })
	r1Wait(t, 120*time.Second, "every file processed", func() bool {
		return r1Files(filepath.Join(h.MedComDir, "processed")) >= files
	})
	time.Sleep(500 * time.Millisecond) // a second document would show itself now
	v := r1CaseVerdict(ledger, h.CaseSys, r1Parked(t, h))
	names, ackFiles, mismatched := receipts.Stop()
	errored := r1Files(filepath.Join(h.MedComDir, "error"))
	report(t, "batchrefused", "letters", n, "copies", copies, "delivered_while_full", refusedAt, "documents_once", v.Once(), "duplicates", v.Dup(),
		"lost", v.Lost(), "stray", len(v.Stray), "receipts", names, "receipt_files", ackFiles, "receipt_mismatch", mismatched, "errored", errored)
	oRequire(t, v, oAllow{})
	if refusedAt >= n {
		t.Errorf("all %d letters were stored while the stream was full: the scenario did not make the stream refuse", n)
	}
	if names != n || mismatched != 0 {
		t.Errorf("acknowledgements: %d names for %d letters, %d names with differing content", names, n, mismatched)
	}
	if errored != 0 {
		t.Errorf("%d files went to error/", errored)
	}
	if leak := r1PII.FindString(log.String()); leak != "" {
		t.Errorf("the hub's log carries personal data: %q", leak)
	}
}
