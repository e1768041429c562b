package epj_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/samhub/samhub/adapters/epj"
	epjsim "github.com/samhub/samhub/internal/sim/epj"
)

// lastFeedFrom is the _lastUpdated of the last Communication search.
func lastFeedFrom(t *testing.T, e *env) string {
	t.Helper()
	from := ""
	for _, r := range e.sim.Requests() {
		if u, err := url.Parse(r.URL); err == nil && u.Path == "/Communication" && r.Method == "GET" {
			from = u.Query().Get("_lastUpdated")
		}
	}
	return from
}

func pollN(t *testing.T, a *epj.Adapter) []string {
	t.Helper()
	pub := &recPub{}
	if err := a.Poll(context.Background(), pub); err != nil {
		t.Fatal(err)
	}
	return pub.ids()
}

// A note another server of the region stamped before the feed position,
// stored after a poll had passed that position, is read once: the feed
// reads feed_overlap before its position and knows what it read there.
// One stamped further back than the overlap is not read.
func TestSourceReadsANoteStampedBeforeItsPosition(t *testing.T) {
	e := newEnv(t, 0)
	e.seedPatient(epjsim.Patient{CPR: cprBruno, FamilyName: "Elmer"})
	now := time.Now().UTC().Truncate(time.Millisecond)
	first := e.seedNote(epjsim.Note{Type: "Communication", PatientCPR: cprBruno, Text: "first", LastUpdated: now})
	a := e.adapter(sourceCfg) // feed_overlap: 2m, the default
	if got := pollN(t, a); len(got) != 1 || got[0] != "epj:epj-test:"+first+"/1" {
		t.Fatalf("first poll %v", got)
	}
	skewed := e.seedNote(epjsim.Note{Type: "Communication", PatientCPR: cprBruno, Text: "stamped 30 s early", LastUpdated: now.Add(-30 * time.Second)})
	if got := pollN(t, a); len(got) != 1 || got[0] != "epj:epj-test:"+skewed+"/1" {
		t.Fatalf("after a note stamped before the position: %v, want it alone", got)
	}
	if want := "ge" + now.Add(-2*time.Minute).Format(time.RFC3339Nano); lastFeedFrom(t, e) != want {
		t.Fatalf("the feed was read from %s, want %s", lastFeedFrom(t, e), want)
	}
	if got := pollN(t, a); len(got) != 0 {
		t.Fatalf("the overlap published again: %v", got)
	}
	// A new adapter (a restart) knows the same from the stored cursor.
	if got := pollN(t, e.adapter(sourceCfg)); len(got) != 0 {
		t.Fatalf("after a restart the overlap published again: %v", got)
	}
	e.seedNote(epjsim.Note{Type: "Communication", PatientCPR: cprBruno, Text: "stamped 3 min early", LastUpdated: now.Add(-3 * time.Minute)})
	if got := pollN(t, a); len(got) != 0 {
		t.Fatalf("a note stamped further back than the overlap: %v (the overlap's bound)", got)
	}
	if !strings.Contains(e.logs.String(), "a note stamped before the feed position was read") {
		t.Fatal("the early note was not logged")
	}
}

// With feed_overlap 0 the feed reads from its position only, as before.
func TestSourceWithoutOverlap(t *testing.T) {
	e := newEnv(t, 0)
	e.seedPatient(epjsim.Patient{CPR: cprBruno, FamilyName: "Elmer"})
	now := time.Now().UTC().Truncate(time.Millisecond)
	e.seedNote(epjsim.Note{Type: "Communication", PatientCPR: cprBruno, Text: "first", LastUpdated: now})
	a := e.adapter(func(c *epj.Config) { sourceCfg(c); c.FeedOverlap = 0 })
	if got := pollN(t, a); len(got) != 1 {
		t.Fatalf("first poll %v", got)
	}
	e.seedNote(epjsim.Note{Type: "Communication", PatientCPR: cprBruno, Text: "stamped early", LastUpdated: now.Add(-30 * time.Second)})
	if got := pollN(t, a); len(got) != 0 {
		t.Fatalf("published %v without an overlap", got)
	}
	if want := "ge" + now.Format(time.RFC3339Nano); lastFeedFrom(t, e) != want {
		t.Fatalf("read from %s, want %s", lastFeedFrom(t, e), want)
	}
}

// A feed whose newest note is older than the overlap, by the gateway's
// own clock when a poll read everything, is read from its position alone:
// a quiet feed does not fetch its last notes, attachments and all, at
// every poll.
func TestSourceQuietFeedReadsFromItsPosition(t *testing.T) {
	e := newEnv(t, 0)
	e.seedPatient(epjsim.Patient{CPR: cprBruno, FamilyName: "Elmer"})
	t0 := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	e.seedNote(epjsim.Note{Type: "Communication", PatientCPR: cprBruno, Text: "an hour old", LastUpdated: t0})
	a := e.adapter(sourceCfg)
	if got := pollN(t, a); len(got) != 1 {
		t.Fatalf("first poll %v", got)
	}
	if got := pollN(t, a); len(got) != 0 {
		t.Fatalf("second poll %v", got)
	}
	if want := "ge" + t0.Format(time.RFC3339Nano); lastFeedFrom(t, e) != want {
		t.Fatalf("read from %s, want %s (no overlap once the gateway's clock is past it)", lastFeedFrom(t, e), want)
	}
	// A new note brings the overlap back until the gateway's clock is
	// feed_overlap past it.
	t1 := time.Now().UTC().Truncate(time.Millisecond)
	e.seedNote(epjsim.Note{Type: "Communication", PatientCPR: cprBruno, Text: "new", LastUpdated: t1})
	pollN(t, a)
	pollN(t, a)
	if want := "ge" + t1.Add(-2*time.Minute).Format(time.RFC3339Nano); lastFeedFrom(t, e) != want {
		t.Fatalf("read from %s, want %s", lastFeedFrom(t, e), want)
	}
}

// A cursor stored by a build without the overlap recorded its position's
// instant alone: the notes before it, which that build published, are not
// published again; the overlap grows from the position on.
func TestSourceCursorFromBeforeTheOverlap(t *testing.T) {
	e := newEnv(t, 0)
	e.seedPatient(epjsim.Patient{CPR: cprBruno, FamilyName: "Elmer"})
	now := time.Now().UTC().Truncate(time.Millisecond)
	e.seedNote(epjsim.Note{Type: "Communication", PatientCPR: cprBruno, Text: "read by the old build", LastUpdated: now.Add(-time.Minute)})
	at := e.seedNote(epjsim.Note{Type: "Communication", PatientCPR: cprBruno, Text: "read by the old build, at the position", LastUpdated: now})
	old := fmt.Sprintf(`{"at":%q,"seen":[%q]}`, now.Format(time.RFC3339Nano), strings.TrimPrefix(at, "Communication/")+"/1")
	if _, err := e.state.Put(context.Background(), "epj.epj-test.cursor.Communication", []byte(old)); err != nil {
		t.Fatal(err)
	}
	a := e.adapter(sourceCfg)
	if got := pollN(t, a); len(got) != 0 {
		t.Fatalf("published again what the old build read: %v", got)
	}
	later := e.seedNote(epjsim.Note{Type: "Communication", PatientCPR: cprBruno, Text: "new", LastUpdated: now.Add(time.Second)})
	early := e.seedNote(epjsim.Note{Type: "Communication", PatientCPR: cprBruno, Text: "stamped early", LastUpdated: now.Add(time.Second / 2)})
	got := pollN(t, a)
	if len(got) != 2 || !strings.Contains(strings.Join(got, " "), later) || !strings.Contains(strings.Join(got, " "), early) {
		t.Fatalf("published %v, want %s and %s", got, later, early)
	}
	if got := pollN(t, a); len(got) != 0 {
		t.Fatalf("published again %v", got)
	}
}
