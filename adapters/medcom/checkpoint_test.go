package medcom

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/samhub/samhub/adapters/medcom/oioxml"
	"github.com/samhub/samhub/pipeline/letter"
)

// outOnce reads the single file in out/ and removes it (the VANS client
// took it).
func (e *env) outOnce(t *testing.T) []byte {
	t.Helper()
	out := e.files(t, "out")
	if len(out) != 1 {
		t.Fatalf("out %v, want one acknowledgement", out)
	}
	b := e.read(t, "out", out[0])
	if err := os.Remove(filepath.Join(e.dir, "out", out[0])); err != nil {
		t.Fatal(err)
	}
	return b
}

const utf8ID = "5790000000005#LTR00000000001"

// Two copies of a letter in one round (two envelopes): stored once, and
// both get the very same acknowledgement, with no lock and no record in
// the state store.
func TestTwoCopiesInOneRound(t *testing.T) {
	e := newEnv(t)
	a := e.adapter(t, nil)
	pub := newPub()
	data := readFile(t, "samhub/letter-utf8.xml")
	e.drop(t, "a.xml", data)
	e.drop(t, "b.xml", bytes.Replace(data, []byte("ENV00000000001"), []byte("ENV00000000077"), 1))
	if !a.Poll(context.Background(), pub) {
		t.Fatal("poll failed")
	}
	if got := pub.ids(); len(got) != 1 || got[0] != utf8ID {
		t.Fatalf("stored %v", got)
	}
	// Both receipts have one name (the receipt id is stable per letter):
	// the second write replaced the first with the same bytes.
	ack := e.outOnce(t)
	rec, ok := readCheckpoint(pub.checkpoints[utf8ID])
	if !ok {
		t.Fatal("the stored letter carries no checkpoint")
	}
	sameBytes(t, "acknowledgement and checkpoint", ack, rec.Ack)
	if got := e.files(t, "processed"); len(got) != 2 {
		t.Errorf("processed %v", got)
	}
	if n := e.state.Keys("in."); n != 0 {
		t.Errorf("state holds %d inbound records", n)
	}
}

// A letter stored before checkpoints existed has its record in the state
// store only: a copy of it is still recognised (and not offered to the
// hub), gets the recorded acknowledgement, and a reply to it is still
// addressed from the record.
func TestLetterStoredBeforeCheckpointsStillAnswered(t *testing.T) {
	e := newEnv(t)
	a := e.adapter(t, nil)
	pub := newPub()
	e.letters.use(pub)
	old := []byte("<old receipt bytes/>")
	rec := inRecord{HubID: utf8ID, Format: oioxml.Format, AckName: "xctl03-OLD.xml", Ack: old, At: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
		SenderEAN: "5790000000005", SenderIdentifier: "200106", SenderIdentifierCode: "ydernummer", SenderName: "Lægehuset før"}
	b, _ := json.Marshal(rec)
	if _, err := e.state.Create(context.Background(), stateKey("in", utf8ID), b); err != nil {
		t.Fatal(err)
	}
	e.drop(t, "a.xml", readFile(t, "samhub/letter-utf8.xml"))
	a.Poll(context.Background(), pub)
	if len(pub.letters) != 0 || pub.duplicates != 1 {
		t.Fatalf("stored %v, %d duplicates reported; want none stored, one duplicate", pub.ids(), pub.duplicates)
	}
	if got := e.files(t, "out"); len(got) != 1 || got[0] != "xctl03-OLD.xml" {
		t.Fatalf("out %v", got)
	}
	sameBytes(t, "recorded acknowledgement", e.read(t, "out", "xctl03-OLD.xml"), old)

	l := xdisLetter()
	l.InReplyTo = utf8ID
	l.To = []letter.Party{{GLN: "5790000000005", Accepts: []string{OutXDIS91}}}
	if _, err := a.Deliver(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	for _, name := range e.files(t, "out") {
		if name == "xctl03-OLD.xml" {
			continue
		}
		ce := parseOut(t, e.read(t, "out", name)).Letters[0]
		if ce.Receiver.Identifier != "200106" || ce.Receiver.IdentifierCode != "ydernummer" {
			t.Errorf("reply not addressed from the old record: %+v", ce.Receiver)
		}
	}
}

// A letter the hub holds under this key's letter id but whose stored
// checkpoint answers another key (a new envelope for the same letter, or
// a letter stored by something that kept no checkpoint) gets an answer of
// its own, kept in the state store, and a copy of it gets that again.
func TestDuplicateUnderAnotherKeyAnswersItsOwnEnvelope(t *testing.T) {
	e := newEnv(t)
	a := e.adapter(t, nil)
	pub := newPub()
	other := inRecord{Key: stateKey("in", "another-envelope"), HubID: utf8ID, AckName: "xctl03-OTHER.xml", Ack: []byte("<other/>")}
	cp, _ := json.Marshal(other)
	pub.checkpoints[utf8ID] = cp // stored before, answering another key
	data := readFile(t, "samhub/letter-utf8.xml")
	e.drop(t, "a.xml", data)
	a.Poll(context.Background(), pub)
	if len(pub.letters) != 0 || pub.duplicates != 1 {
		t.Fatalf("stored %v, %d duplicates", pub.ids(), pub.duplicates)
	}
	first := e.outOnce(t)
	rc := parseOut(t, first).Receipts[0]
	if rc.Type != oioxml.PositiveReceipt || rc.OriginalLetters[0].Identifier != "LTR00000000001" {
		t.Fatalf("receipt %+v: want this letter's own positive receipt", rc)
	}
	if n := e.state.Keys("in."); n != 1 {
		t.Fatalf("state holds %d records; want this key's answer kept", n)
	}
	e.clock.add(3600e9)
	e.drop(t, "b.xml", bytes.Replace(data, []byte("ENV00000000001"), []byte("ENV00000000078"), 1))
	a.Poll(context.Background(), pub)
	sameBytes(t, "repeated own answer", e.outOnce(t), first)
}

// A letter refused before (a negative receipt, kept in the state store)
// that comes again valid under the same letter id is a copy: MedCom wants
// the same answer, and nothing is stored.
func TestValidCopyOfARefusedLetterGetsTheSameRefusal(t *testing.T) {
	e := newEnv(t)
	a := e.adapter(t, nil)
	pub := newPub()
	good := readFile(t, "samhub/letter-utf8.xml")
	bad := bytes.Replace(good, []byte("<StatusCode>nytbrev"), []byte("<StatusCode>annulleretbrev"), 1)
	// In one round: the refused copy first, then the valid one.
	e.drop(t, "a.xml", bad)
	e.drop(t, "b.xml", bytes.Replace(good, []byte("ENV00000000001"), []byte("ENV00000000079"), 1))
	a.Poll(context.Background(), pub)
	refusal := e.outOnce(t)
	if rc := parseOut(t, refusal).Receipts[0]; rc.Type != oioxml.NegativeReceipt {
		t.Fatalf("receipt %+v", rc)
	}
	// In a later round.
	e.clock.add(60e9)
	e.drop(t, "c.xml", good)
	a.Poll(context.Background(), pub)
	sameBytes(t, "the refusal again", e.outOnce(t), refusal)
	if len(pub.letters) != 0 {
		t.Errorf("stored %v", pub.ids())
	}
}

// A refused copy of a letter the hub holds gets the answer stored with
// it: in the same round (the valid copy first) and in a later one (read
// from the hub's stored letter).
func TestRefusedCopyOfAStoredLetterGetsItsAnswer(t *testing.T) {
	e := newEnv(t)
	a := e.adapter(t, nil)
	pub := newPub()
	e.letters.use(pub)
	good := readFile(t, "samhub/letter-utf8.xml")
	bad := bytes.Replace(good, []byte("<StatusCode>nytbrev"), []byte("<StatusCode>annulleretbrev"), 1)
	e.drop(t, "a.xml", good)
	e.drop(t, "b.xml", bytes.Replace(bad, []byte("ENV00000000001"), []byte("ENV00000000080"), 1))
	a.Poll(context.Background(), pub)
	first := e.outOnce(t)
	if rc := parseOut(t, first).Receipts[0]; rc.Type != oioxml.PositiveReceipt {
		t.Fatalf("receipt %+v", rc)
	}
	e.clock.add(60e9)
	e.drop(t, "c.xml", bad)
	a.Poll(context.Background(), pub)
	sameBytes(t, "the stored answer again", e.outOnce(t), first)
	if got := pub.ids(); len(got) != 1 {
		t.Errorf("stored %v", got)
	}
	if n := e.state.Keys("in."); n != 0 {
		t.Errorf("state holds %d inbound records", n)
	}
}

// TestARefusedEnvelopeAnsweredLateStillRefusesItsNewLetter: in one round,
// a copy of letter 1, then an envelope of letter 1 and a new letter 2
// whose CPR number is refused, then letter 2 again, valid. The envelope
// came first, so letter 2's first answer is its refusal and the valid
// copy gets that refusal again. The envelope's answer waited for letter
// 1's storing, and letter 2 was stored from the later copy: the refused
// envelope got a positive receipt for letter 2.
func TestARefusedEnvelopeAnsweredLateStillRefusesItsNewLetter(t *testing.T) {
	e := newEnv(t)
	a := e.adapter(t, nil)
	pub := newPub()
	e.letters.use(pub)
	e.drop(t, "1.xml", xdis91(t, 1, 1, 0))
	e.drop(t, "2.xml", envelope(t, []int{1, 2}, 2, 2))
	e.drop(t, "3.xml", xdis91(t, 2, 3, 0))
	a.Poll(context.Background(), pub)
	if got := pub.ids(); len(got) != 1 || got[0] != oioxml.LetterID(seqGP, "LTR00000000001") {
		t.Errorf("stored %v, want letter 1 only", got)
	}
	var answers [][]byte
	for _, name := range e.files(t, "out") {
		m := parseOut(t, e.read(t, "out", name))
		rc := m.Receipts[0]
		if rc.OriginalLetters[0].Identifier != "LTR00000000002" {
			continue
		}
		if rc.Type != oioxml.NegativeReceipt {
			t.Errorf("letter 2 answered with %s (%s), want its refusal", rc.Type, name)
		}
		answers = append(answers, e.read(t, "out", name))
	}
	if len(answers) != 1 {
		t.Errorf("letter 2 has %d answers in out/, want one (both copies answered alike)", len(answers))
	}
	if got := e.files(t, "error"); !slices.Equal(got, []string{"2.xml", "2.xml.error.txt"}) {
		t.Errorf("error/ %v, want the envelope", got)
	}
	if got := e.files(t, "processed"); !slices.Equal(got, []string{"1.xml", "3.xml"}) {
		t.Errorf("processed/ %v", got)
	}
}

// TestARefusedCopyWaitsForTheValidCopyTheHubCouldNotStore: a letter, then
// a refused copy of it under the same id, in a round the hub stores
// nothing in. The letter goes back to in/ and so does its copy, which is
// answered after it: the next round stores the letter and both copies get
// its positive receipt. The copy used to be refused at once: the letter
// that came first was then answered with that refusal and never stored.
func TestARefusedCopyWaitsForTheValidCopyTheHubCouldNotStore(t *testing.T) {
	e := newEnv(t)
	a := e.adapter(t, nil)
	pub := newPub()
	e.letters.use(pub)
	e.drop(t, "1.xml", xdis91(t, 1, 1, 0))
	e.drop(t, "2.xml", bytes.Replace(xdis91(t, 1, 2, 0), []byte(seqTestCPR), []byte(seqBadCPR), 1))
	pub.setFailAfter(0) // the hub's letter stream takes no write
	a.Poll(context.Background(), pub)
	if got := e.files(t, "in"); !slices.Equal(got, []string{"1.xml", "2.xml"}) {
		t.Errorf("in/ %v after the failed round, want both files back", got)
	}
	if got := e.files(t, "out"); len(got) != 0 {
		t.Errorf("out/ %v after the failed round, want no answer yet", got)
	}
	pub.setFailAfter(-1)
	a.Poll(context.Background(), pub)
	if got := pub.ids(); len(got) != 1 || got[0] != oioxml.LetterID(seqGP, "LTR00000000001") {
		t.Errorf("stored %v, want the letter", got)
	}
	out := e.files(t, "out")
	if len(out) != 1 || parseOut(t, e.read(t, "out", out[0])).Receipts[0].Type != oioxml.PositiveReceipt {
		t.Errorf("out/ %v, want the letter's positive receipt (the same for both copies)", out)
	}
	if got := e.files(t, "error"); !slices.Equal(got, []string{"2.xml", "2.xml.error.txt"}) {
		t.Errorf("error/ %v, want the refused copy", got)
	}
}
