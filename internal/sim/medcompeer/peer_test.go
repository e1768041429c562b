package medcompeer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/adapters/adaptertest"
	"github.com/samhub/samhub/adapters/medcom"
	"github.com/samhub/samhub/adapters/medcom/fhirmsg"
	"github.com/samhub/samhub/adapters/medcom/xmlsafe"
	"github.com/samhub/samhub/internal/sim/medcompeer"
	"github.com/samhub/samhub/pipeline/letter"
)

const xsdDir = "../../../testdata/medcom/oioxml/xsd-2006-07-01"

// The council (the hub) and two GP practices; all fictitious.
var (
	council = medcompeer.Org{Name: "Samrådet for Børn og Unge", GLN: "5790001382445", SOR: "1144561000016002", Municipality: "461"}
	gpAero  = medcompeer.Party{Name: "Lægehuset Ærø", Role: "gp", GLN: "5790000000005", SOR: "543210987654321", ProviderNumber: "123456"}
	gpOster = medcompeer.Party{Name: "Lægerne i Østergade", Role: "gp", GLN: "5790000000029", SOR: "543210987654338", ProviderNumber: "654321"}
	bruno   = letter.Patient{CPR: "2509479989", GivenName: "Bruno Test", FamilyName: "Elmer"}
)

// pub records what the hub's MedCom source publishes.
type pub struct {
	mu      sync.Mutex
	letters []*letter.Letter
}

func (p *pub) Publish(_ context.Context, l *letter.Letter) error {
	if err := l.Validate(); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.letters = append(p.letters, l)
	return nil
}

func (p *pub) all() []*letter.Letter {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*letter.Letter(nil), p.letters...)
}

type world struct {
	dir  string
	hub  *medcom.Adapter
	peer *medcompeer.Peer
	pub  *pub
}

// newWorld puts the hub's real MedCom adapter and a peer on one mailbox.
func newWorld(t *testing.T, outFormat string) *world {
	t.Helper()
	dir := t.TempDir()
	cfg := adapters.Defaults[medcom.Config]()
	cfg.Dir, cfg.OutFormat, cfg.Self = filepath.Join(dir, "mailbox"), outFormat, medcom.Self{GLN: council.GLN, SOR: council.SOR, Name: council.Name}
	cfg.SettleTime = 50 * time.Millisecond
	hub, err := medcom.New(adapters.Deps{Name: "medcom", State: adaptertest.NewState(), DataDir: filepath.Join(dir, "data")}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	peer, err := medcompeer.New(medcompeer.Config{Dir: filepath.Join(dir, "mailbox"), Council: council, Parties: []medcompeer.Party{gpAero, gpOster}, XSDDir: xsdDir})
	if err != nil {
		t.Fatal(err)
	}
	return &world{dir: dir, hub: hub, peer: peer, pub: &pub{}}
}

// hubSends delivers a letter from the council to gp through the adapter.
func (w *world) hubSends(t *testing.T, id string, gp medcompeer.Party, format string) *letter.Letter {
	t.Helper()
	to := letter.Party{Role: "gp", Name: gp.Name, GLN: gp.GLN, SOR: gp.SOR, Accepts: []string{format}}
	p := bruno
	l := &letter.Letter{ID: id, Kind: letter.KindRecommendation, Source: "casesys",
		Sender:    letter.Party{Role: "municipality", Name: council.Name, GLN: council.GLN, SOR: council.SOR},
		Receivers: []letter.Party{to}, To: []letter.Party{to}, Patient: &p,
		Category: "psychiatry-social-disability", Subject: "Samrådets anbefaling", Text: "Kære læge\nSamrådet anbefaler et forløb i PPR. Venlig hilsen Samrådet",
		Original: letter.Original{Data: []byte("anbefaling"), ContentType: "text/plain"}}
	if _, err := w.hub.Deliver(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	return l
}

// hubReads lets the hub's MedCom source take what the peer dropped. Poll
// called by itself has no directory watch to see the peer's renames, so a
// file is taken once it has been still for the settle time (50 ms here).
func (w *world) hubReads(t *testing.T) {
	t.Helper()
	in := filepath.Join(w.dir, "mailbox", "in")
	deadline := time.Now().Add(20 * time.Second)
	for {
		if !w.hub.Poll(context.Background(), w.pub) {
			t.Fatal("the hub's MedCom source put a file back")
		}
		es, _ := os.ReadDir(in)
		waiting := 0
		for _, e := range es {
			if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
				waiting++
			}
		}
		if waiting == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d files still in in/", waiting)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (w *world) published(kind letter.Kind) []*letter.Letter {
	var out []*letter.Letter
	for _, l := range w.pub.all() {
		if l.Kind == kind {
			out = append(out, l)
		}
	}
	return out
}

func TestPeerTakesTheHubsLettersChecksAndAcknowledgesThem(t *testing.T) {
	for _, format := range []string{medcompeer.FormatXDIS91, medcompeer.FormatFHIRXML, medcompeer.FormatFHIRJSON} {
		t.Run(format, func(t *testing.T) {
			w := newWorld(t, format)
			sent := w.hubSends(t, "casesys:casesys:DOK-1", gpAero, format)
			w.peer.Sweep()
			if left, _ := os.ReadDir(filepath.Join(w.dir, "mailbox", "out")); len(left) != 0 {
				t.Errorf("out/ still holds %d files: the peer must take what it reads", len(left))
			}
			got := w.peer.Received(gpAero.GLN)
			if len(got) != 1 {
				t.Fatalf("Lægehuset Ærø received %d letters, want 1 (all: %+v)", len(got), w.peer.Letters())
			}
			l := got[0]
			if !l.Valid() || l.Format != format || l.To.GLN != gpAero.GLN || l.From.GLN != council.GLN || l.Patient.CPR != sent.Patient.CPR || l.Answer != "positive" {
				t.Errorf("letter as received: %+v", l)
			}
			if format != medcompeer.FormatXDIS91 && (l.To.SOR != gpAero.SOR || l.Thread == "" || l.Category != "psychiatry-social-disability") {
				t.Errorf("FHIR letter as received: %+v", l)
			}
			if len(w.peer.Received(gpOster.GLN)) != 0 || len(w.peer.Undeliverable()) != 0 {
				t.Errorf("a letter reached someone else: %+v", w.peer.Letters())
			}
			// The hub reads the peer's acknowledgement and ties it to its letter.
			w.hubReads(t)
			acks := w.published(letter.KindAcknowledgement)
			if len(acks) != 1 || acks[0].InReplyTo != sent.ID {
				t.Fatalf("acknowledgements the hub read: %+v", acks)
			}
			if errs := w.peer.Errors(); len(errs) > 0 {
				t.Fatal(errs)
			}
		})
	}
}

func TestPeerRefusesOneLetterWhenToldTo(t *testing.T) {
	for _, format := range []string{medcompeer.FormatXDIS91, medcompeer.FormatFHIRXML} {
		t.Run(format, func(t *testing.T) {
			w := newWorld(t, format)
			w.peer.AnswerNext(gpAero.GLN, medcompeer.Answer{Refuse: true, Reason: "Patienten er ikke tilknyttet praksis"})
			first := w.hubSends(t, "casesys:casesys:DOK-1", gpAero, format)
			w.peer.Sweep()
			second := w.hubSends(t, "casesys:casesys:DOK-2", gpAero, format)
			w.peer.Sweep()
			got := w.peer.Received(gpAero.GLN)
			if len(got) != 2 || got[0].Answer != "negative" || got[1].Answer != "positive" {
				t.Fatalf("answers %+v", got)
			}
			if !got[0].Valid() {
				t.Errorf("a refused letter is still a valid letter: %v", got[0].Problems)
			}
			w.hubReads(t)
			acks := map[string]*letter.Letter{}
			for _, a := range w.published(letter.KindAcknowledgement) {
				acks[a.InReplyTo] = a
			}
			neg, pos := acks[first.ID], acks[second.ID]
			if neg == nil || pos == nil {
				t.Fatalf("acknowledgements by letter: %v", acks)
			}
			isNegative := func(a *letter.Letter) bool {
				return a.Meta["medcom_receipt_result"] == "negative" || a.Meta[fhirmsg.MetaResponseCode] == fhirmsg.AckFatalError
			}
			if !isNegative(neg) || isNegative(pos) {
				t.Errorf("first %v, second %v: want the first refused, the second accepted", neg.Meta, pos.Meta)
			}
		})
	}
}

func TestPeerRecordsInvalidAndMisaddressedLetters(t *testing.T) {
	w := newWorld(t, medcompeer.FormatXDIS91)
	out := filepath.Join(w.dir, "mailbox", "out")
	// A letter the hub must never write: a status code XDIS91 does not have.
	w.hubSends(t, "casesys:casesys:DOK-1", gpAero, medcompeer.FormatXDIS91)
	files, _ := os.ReadDir(out)
	if len(files) != 1 {
		t.Fatalf("out/ %v", files)
	}
	path := filepath.Join(out, files[0].Name())
	b, _ := os.ReadFile(path)
	bad := bytes.Replace(b, []byte("<StatusCode>nytbrev<"), []byte("<StatusCode>gammelt<"), 1)
	if bytes.Equal(b, bad) {
		t.Fatal("fixture: StatusCode not found in the built letter")
	}
	os.WriteFile(path, bad, 0o600)
	w.peer.Sweep()
	// And one to a practice this peer does not play.
	w.hubSends(t, "casesys:casesys:DOK-2", medcompeer.Party{Name: "Ukendt praksis", GLN: "5790000000999", SOR: "1"}, medcompeer.FormatXDIS91)
	w.peer.Sweep()

	inv := w.peer.Invalid()
	if len(inv) != 1 || inv[0].Answer != "negative" {
		t.Fatalf("invalid letters %+v", inv)
	}
	var xsd, reader bool
	for _, pr := range inv[0].Problems {
		xsd = xsd || strings.HasPrefix(pr, "xsd:")
		reader = reader || strings.Contains(pr, "Letter/StatusCode")
	}
	if !xsd || !reader {
		t.Errorf("problems %q: want both the reader's and the XSD's verdict", inv[0].Problems)
	}
	und := w.peer.Undeliverable()
	if len(und) != 1 || und[0].To.GLN != "5790000000999" || und[0].Answer != "" {
		t.Fatalf("undeliverable %+v", und)
	}
	w.hubReads(t)
	if acks := w.published(letter.KindAcknowledgement); len(acks) != 1 || acks[0].Meta["medcom_receipt_result"] != "negative" {
		t.Errorf("acknowledgements the hub read: %+v", acks)
	}
}

func TestPeerSendsAsAGPInEveryFormat(t *testing.T) {
	cases := []struct {
		name string
		o    medcompeer.Outgoing
	}{
		{"xdis91 iso-8859-1", medcompeer.Outgoing{Format: medcompeer.FormatXDIS91, Episode: "0f6c1e2d3a4b5c6d7e8f90a1b2c3d4e5"}},
		{"xdis91 utf-8", medcompeer.Outgoing{Format: medcompeer.FormatXDIS91, Charset: medcompeer.CharsetUTF8}},
		{"fhir xml", medcompeer.Outgoing{Format: medcompeer.FormatFHIRXML}},
		{"fhir json in a VANSEnvelope", medcompeer.Outgoing{Format: medcompeer.FormatFHIRJSON, Enveloped: true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t, medcompeer.FormatXDIS91)
			o := c.o
			o.From, o.Patient = gpAero.GLN, letter.Patient{CPR: "1509819996", GivenName: "Åse Test", FamilyName: "Kjærgård"}
			o.Subject, o.Text = "Henvisning til samråd – Åse", "Kære samråd\nÅse sover dårligt og græder i skolen.\nVenlig hilsen Lægehuset Ærø"
			s, err := w.peer.Send(o)
			if err != nil {
				t.Fatal(err)
			}
			if c.o.Format == medcompeer.FormatXDIS91 {
				want := `encoding="ISO-8859-1"`
				if c.o.Charset == medcompeer.CharsetUTF8 {
					want = `encoding="UTF-8"`
				}
				if !bytes.Contains(s.Data[:80], []byte(want)) {
					t.Errorf("declaration %.60q, want %s", s.Data, want)
				}
			}
			if r := medcom.Check(s.Data, xmlsafe.Limits{}); !r.Valid() {
				t.Fatalf("the hub's own check refuses what the peer sent: %v", r.Errors)
			}
			w.hubReads(t)
			got := w.published(letter.KindReferral)
			if len(got) != 1 || got[0].ID != s.ID || got[0].Sender.GLN != gpAero.GLN || got[0].Patient.CPR != "1509819996" ||
				got[0].Patient.FamilyName != "Kjærgård" || !strings.Contains(got[0].Text, "græder") {
				t.Fatalf("the hub read %+v, want the referral %s", got, s.ID)
			}
			w.peer.Sweep()
			ack, ok := w.peer.AckFor(s.ID)
			if !ok || !ack.Positive || len(ack.Problems) > 0 || ack.To.GLN != gpAero.GLN {
				t.Fatalf("the hub's acknowledgement %+v (found %v); all: %+v", ack, ok, w.peer.Acks())
			}
			if c.o.Enveloped != ack.Enveloped {
				t.Errorf("acknowledgement enveloped=%v, the letter %v", ack.Enveloped, c.o.Enveloped)
			}
		})
	}
}

func TestPeerRepliesInTheThread(t *testing.T) {
	w := newWorld(t, medcompeer.FormatFHIRXML)
	w.hubSends(t, "casesys:casesys:DOK-7", gpOster, medcompeer.FormatFHIRXML)
	w.peer.Sweep()
	got := w.peer.Received(gpOster.GLN)
	if len(got) != 1 {
		t.Fatalf("received %+v", w.peer.Letters())
	}
	rec := got[0]
	s, err := w.peer.Send(medcompeer.Outgoing{From: gpOster.GLN, Format: medcompeer.FormatFHIRXML, ReplyTo: &rec, Patient: rec.Patient,
		Text: "Tak for anbefalingen. Vi indkalder familien."})
	if err != nil {
		t.Fatal(err)
	}
	w.hubReads(t)
	replies := w.published(letter.KindReply)
	if len(replies) != 1 || replies[0].ID != s.ID || replies[0].ThreadID != rec.Thread || replies[0].InReplyTo != rec.ID {
		t.Fatalf("the hub read %+v; want a reply in thread %s to %s", replies, rec.Thread, rec.ID)
	}
	if s.To.GLN != council.GLN {
		t.Errorf("the reply went to %+v, want the council", s.To)
	}
}

func TestPeerWritesAnAbsentFamilyNameAsMedComAllows(t *testing.T) {
	for _, format := range []string{medcompeer.FormatFHIRJSON, medcompeer.FormatFHIRXML} {
		t.Run(format, func(t *testing.T) {
			w := newWorld(t, medcompeer.FormatXDIS91)
			s, err := w.peer.Send(medcompeer.Outgoing{From: gpOster.GLN, Format: format, FamilyNameUnknown: true,
				Patient: letter.Patient{ReplacementID: "0703921VJ4", GivenName: "Birgit"}, Text: "Nyankommet pige uden CPR."})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(s.Data, []byte("data-absent-reason")) || bytes.Contains(s.Data, []byte("ZZABSENT")) {
				t.Fatalf("the family name is not written as absent:\n%s", s.Data)
			}
			m, err := fhirmsg.Parse(s.Data, xmlsafe.DefaultLimits())
			if err != nil || m.Patient == nil || m.Patient.FamilyName != "" || m.Patient.ReplacementID != "0703921VJ4" {
				t.Fatalf("the letter does not read back as a child without a family name: %+v %v", m, err)
			}
		})
	}
}

func TestHandlerListsRecords(t *testing.T) {
	w := newWorld(t, medcompeer.FormatXDIS91)
	w.hubSends(t, "casesys:casesys:DOK-1", gpAero, medcompeer.FormatXDIS91)
	w.peer.Start()
	deadline := time.Now().Add(10 * time.Second)
	for len(w.peer.Letters()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := w.peer.Close(); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	w.peer.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/_sim/letters", nil))
	var v struct{ Results []medcompeer.Letter }
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil || len(v.Results) != 1 || v.Results[0].To.GLN != gpAero.GLN {
		t.Fatalf("%d %s %v", rec.Code, rec.Body, err)
	}
}

func TestNewRefusesAnXSDDirWithoutTheSchema(t *testing.T) {
	_, err := medcompeer.New(medcompeer.Config{Dir: t.TempDir(), XSDDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "ClinicalEmail.xsd") {
		t.Fatalf("err %v", err)
	}
}
