package retryq_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/samhub/samhub/pipeline/broker"
	"github.com/samhub/samhub/pipeline/broker/brokertest"
	"github.com/samhub/samhub/pipeline/retryq"
)

var open = brokertest.Provisioned

// parkLegacy stores an entry under a subject an earlier build used.
func parkLegacy(t testing.TB, js jetstream.JetStream, subject string, e retryq.Entry) {
	t.Helper()
	meta, _ := json.Marshal(e)
	old := nats.NewMsg(subject)
	old.Header.Set("Samhub-Parked", string(meta))
	old.Data = []byte(`{"id":"` + e.LetterID + `"}`)
	if _, err := js.PublishMsg(context.Background(), old); err != nil {
		t.Fatal(err)
	}
}

func entry(dest, id string, seq uint64) retryq.Entry {
	return retryq.Entry{LetterID: id, Destination: dest, Kind: "referral", Source: "medcom", LetterSeq: seq,
		LastError: retryq.Failure{Class: "permanent", Code: "refused", Reason: "the case system refused the letter"}}
}

// The queue keeps one subject per destination and reason, however many
// letters are parked, and still reads letters parked under the subjects of
// earlier builds.
func TestQueueKeepsFewSubjects(t *testing.T) {
	b := open(t)
	ctx := context.Background()
	q := retryq.New(b.JS)
	for i := range 50 {
		dest := []string{"casefile", "region"}[i%2]
		if err := q.Park(ctx, entry(dest, "L"+string(rune('A'+i%26))+string(rune('a'+i/26)), uint64(i+1)), []byte(`{"id":"x"}`)); err != nil {
			t.Fatal(err)
		}
	}
	// The same letter-stream message parked again (a crash between park
	// and ack) is not a second entry.
	if err := q.Park(ctx, entry("casefile", "LAa", 1), []byte(`{"id":"x"}`)); err != nil {
		t.Fatal(err)
	}
	// One letter as an earlier build parked it.
	parkLegacy(t, b.JS, broker.SubjParked+".casefile."+broker.Token("OLD"), entry("casefile", "OLD", 999))

	st, err := b.JS.Stream(ctx, broker.StreamParked)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(broker.SubjParked+".>"))
	if err != nil {
		t.Fatal(err)
	}
	if len(info.State.Subjects) != 3 || info.State.Msgs != 51 || info.State.Subjects["samhub.parked.casefile.code.refused"] != 25 {
		t.Fatalf("stream holds %d messages under %d subjects %v; want 51 under casefile's and region's code subject and the old letter's", info.State.Msgs, len(info.State.Subjects), info.State.Subjects)
	}

	list, err := q.List(ctx, retryq.Filter{Destination: "casefile"})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 26 || list[len(list)-1].LetterID != "OLD" {
		t.Fatalf("casefile lists %d entries (last %q); want 25 new and the old one", len(list), list[len(list)-1].LetterID)
	}
	if first, err := q.List(ctx, retryq.Filter{Destination: "region", Limit: 5}); err != nil || len(first) != 5 {
		t.Fatalf("a limited list gave %d entries, %v", len(first), err)
	}
	stats, err := q.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, s := range stats {
		got[s.Destination] = s.Count
		if s.Oldest.IsZero() {
			t.Errorf("%s: no age of the oldest parked letter", s.Destination)
		}
	}
	if len(got) != 2 || got["casefile"] != 26 || got["region"] != 25 {
		t.Fatalf("stats %v; want casefile 26, region 25", got)
	}
	e, data, err := q.Get(ctx, list[0].Seq)
	if err != nil || e.LetterID != list[0].LetterID || string(data) != `{"id":"x"}` {
		t.Fatalf("get: %+v %q %v", e, data, err)
	}
	if err := q.Remove(ctx, list[0].Seq); err != nil {
		t.Fatal(err)
	}
	if _, _, err := q.Get(ctx, list[0].Seq); err != retryq.ErrNotParked {
		t.Fatalf("a removed entry: %v, want ErrNotParked", err)
	}
}

func TestSearchByPatientAndThreadKeepsOnlyMatches(t *testing.T) {
	b := open(t)
	ctx := context.Background()
	q := retryq.New(b.JS)
	bruno, brita := retryq.PatientToken("250947-9989"), retryq.PatientToken("1509819996")
	if bruno != retryq.PatientToken("2509479989") {
		t.Fatal("the token must not depend on the dash")
	}
	for i := range 30 {
		e := entry("casefile", "L"+string(rune('A'+i)), uint64(i+1))
		e.Patient, e.Thread = brita, "t-other"
		if i%10 == 0 {
			e.Patient, e.Thread = bruno, "t-bruno"
		}
		if i == 29 {
			e.Patient = "" // parked by an earlier build
		}
		if err := q.Park(ctx, e, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	byPatient, err := q.List(ctx, retryq.Filter{Patient: bruno})
	if err != nil || len(byPatient) != 3 {
		t.Fatalf("by patient: %d entries, %v; want 3", len(byPatient), err)
	}
	withUnknown, _ := q.List(ctx, retryq.Filter{Patient: bruno, WithUnknownPatient: true})
	if len(withUnknown) != 4 || withUnknown[3].Patient != "" {
		t.Fatalf("with unknown patients: %d entries; want Bruno's 3 and the one without a token", len(withUnknown))
	}
	byThread, _ := q.List(ctx, retryq.Filter{Thread: "t-bruno", Limit: 2})
	if len(byThread) != 2 || byThread[0].Thread != "t-bruno" || byThread[1].Thread != "t-bruno" {
		t.Fatalf("by thread with limit 2: %+v", byThread)
	}
}

// An entry removed by someone else meanwhile (a thread's release took the
// held letter a bulk replay was replaying) is not parked: the server
// refuses its deletion as "message deletion unsuccessful" (10057, no
// message found), not as a missing message, and a replay that was stored
// was counted failed.
func TestRemovingAnEntryTwiceSaysItIsNotParked(t *testing.T) {
	b := open(t)
	ctx := context.Background()
	q := retryq.New(b.JS)
	if err := q.Park(ctx, entry("casefile", "L1", 7), []byte(`{"id":"L1"}`)); err != nil {
		t.Fatal(err)
	}
	list, err := q.List(ctx, retryq.Filter{})
	if err != nil || len(list) != 1 {
		t.Fatalf("list: %v %+v", err, list)
	}
	if err := q.Remove(ctx, list[0].Seq); err != nil {
		t.Fatal(err)
	}
	if err := q.Remove(ctx, list[0].Seq); !errors.Is(err, retryq.ErrNotParked) {
		t.Fatalf("removing a removed entry: %v, want ErrNotParked", err)
	}
}
