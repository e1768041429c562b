package medcom

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/adapters/medcom/fhirmsg"
	"github.com/samhub/samhub/adapters/medcom/oioxml"
	"github.com/samhub/samhub/adapters/medcom/xmlsafe"
	"github.com/samhub/samhub/internal/config"
	"github.com/samhub/samhub/internal/logbuf"
	"github.com/samhub/samhub/internal/seqtest"
	"github.com/samhub/samhub/pipeline"
	"github.com/samhub/samhub/pipeline/broker"
	"github.com/samhub/samhub/pipeline/letter"
)

// The sequence test drives the MedCom adapter, built by a real hub on
// embedded NATS JetStream (its intake stores the letters, its key-value
// bucket is the adapter's state, its stored letters the checkpoints), and
// a small model of what the adapter promises, with the same seeded random
// steps: XDIS91 and FHIR letters dropped (XML, JSON, in VANS envelopes),
// copies of them, letters under a known id with other content, envelopes
// of two letters, refused and hostile files, letters cut off in transit
// (answered with the syntax error code when their head came before the
// cut) and copies of those files, refused files put back, poll
// rounds, rounds while the hub stores nothing, restarts, crashes at the
// round's kill points (a panic in the publisher for medcom-claimed and
// medcom-published, processed/ unusable for medcom-stored), letters sent
// through the sink (some with the crash at medcom-out-written: the
// delivery's record removed, a restart, the delivery tried again) and
// delivered again, the receivers' acknowledgements of them (positive,
// negative, transient; twice, late, for a letter never sent) and the
// resend timer on the adapter's clock. The first copy of a
// letter in arrival order decides its answer. After every step:
//
//   - a letter first answered positively is stored once, one first
//     refused never, and nothing the source stored is stored twice;
//   - every copy of a letter is answered, every answer of a letter is the
//     first one byte for byte, and a refused letter's is negative; a file
//     that names no letter gets none;
//   - each dropped file is in exactly one of in/, processed/ and error/
//     (the refused ones byte for byte, with a note saying whether they
//     were answered), a round leaves nothing in in/ or processing/, and a
//     failed one nothing in processing/ and nothing stored;
//   - out/ holds exactly the answers, letters and resends the model
//     expects (the VANS client takes them after each step);
//   - the outbox holds exactly the sent letters without a final answer, a
//     refused one is marked refused and sent again under new ids by the
//     next delivery, the count of letters without an answer after
//     ack_timeout is the model's, and the receivers' answers are stored as
//     positive or negative as they were;
//   - nothing logged names the child or quotes a letter.
//
// SAMHUB_MEDCOM_SEQ_SEEDS and SAMHUB_MEDCOM_SEQ_STEPS run more (the
// default, 6 seeds of 50 steps, takes about 8 s on 2 cores);
// SAMHUB_MEDCOM_SEQ_SEED=N replays one seed.

const (
	seqGP       = "5790000000005" // the GP practice the inbound letters come from
	seqGPSOR    = "543210987654321"
	seqSelfGLN  = "5790000000012"
	seqSelfSOR  = "123456789012345"
	seqTimeout  = 30 * time.Minute // ack_timeout
	seqResends  = 2                // max_resends
	seqTestCPR  = "2509479989"     // a fictitious test person
	seqBadCPR   = "9999999999"     // no birth date: refused
	seqLetterTx = "Drengen sover dårligt"
)

// seqOp is one step, recorded so a failing sequence can be replayed and
// shrunk.
type seqOp struct {
	Kind string // new, copy, other, bad, pair, putback, poll, outage, restart, crash, send, redeliver, ack, resend
	In   int    // new, copy, other, bad(invalid), pair: the inbound letter
	FHIR bool   // new: a FHIR CareCommunication (else XDIS91)
	Enc  string // new, copy, other: a FHIR letter's form (xml, json, vans-xml, vans-json)
	// pair: an XDIS91 envelope of letter In (NewIn: a new one) and the
	// new letter In2, letter BadAt (1 or 2) refused, 0 none.
	In2, BadAt int
	NewIn      bool
	Bad        string // bad: invalid, charset, notxml, envelope
	Out        int    // send, redeliver, ack: the sent letter
	Ver        int    // ack: the version of the sent letter acknowledged (-1: one never sent)
	Ack        string // ack: positive, negative, transient
	Twice      bool   // ack: the same acknowledgement dropped twice
	Crash      string // crash: claimed, published, stored
	// broken: letter In (FHIR, Enc) cut off in transit: inside its
	// envelope's head, right after its head (sender, receiver, id), inside
	// the patient, or near its end; broken-copy: that file once more.
	Cut string
}

func (o seqOp) String() string {
	switch o.Kind {
	case "new":
		f := "XDIS91"
		if o.FHIR {
			f = "FHIR"
		}
		return fmt.Sprintf("new %s letter %d %s", f, o.In, o.Enc)
	case "pair":
		return fmt.Sprintf("an envelope of letter %d (new %v) and new letter %d, refused letter %d", o.In, o.NewIn, o.In2, o.BadAt)
	case "new-invalid":
		return fmt.Sprintf("refused letter %d under a new id", o.In)
	case "copy":
		return fmt.Sprintf("copy of letter %d %s", o.In, o.Enc)
	case "other":
		return fmt.Sprintf("letter %d's id with other content %s", o.In, o.Enc)
	case "broken":
		f := "XDIS91"
		if o.FHIR {
			f = "FHIR " + o.Enc
		}
		return fmt.Sprintf("new %s letter %d cut off (%s)", f, o.In, o.Cut)
	case "broken-copy":
		return fmt.Sprintf("copy of the cut-off file of letter %d", o.In)
	case "bad":
		if o.Bad == "invalid" {
			return fmt.Sprintf("refused letter under letter %d's id", o.In)
		}
		return "bad file: " + o.Bad
	case "crash":
		return "crash at " + o.Crash + ", restart"
	case "outage":
		return "a round while the hub stores nothing, then a round"
	case "putback":
		return fmt.Sprintf("the coordinator puts refused file %d back", o.In)
	case "send":
		if o.Crash != "" {
			return fmt.Sprintf("send letter %d, crash at medcom-out-written, restart, the hub delivers it again", o.Out)
		}
		return fmt.Sprintf("send letter %d", o.Out)
	case "redeliver":
		return fmt.Sprintf("deliver letter %d again", o.Out)
	case "ack":
		tw := ""
		if o.Twice {
			tw = ", twice"
		}
		return fmt.Sprintf("%s acknowledgement of sent letter %d version %d%s", o.Ack, o.Out, o.Ver, tw)
	}
	return o.Kind
}

// ---- the model ----

// mLetter is an inbound letter id (its duplicate key).
type mLetter struct {
	hubID    string
	fhir     bool
	copies   int  // files dropped with this id
	answered bool // the first answer is given
	negative bool
	ackName  string // the first answer, as first seen in out/
	ack      []byte
	// A letter cut off in transit: the file, and whether it can be
	// answered (its envelope or MessageHeader id, sender and receiver
	// come before the cut).
	broken       []byte
	brokenAnswer bool
}

// mFile is a dropped file.
type mFile struct {
	name    string
	data    []byte
	letters []int  // the inbound letters it carries
	valid   bool   // a letter the hub stores (or a receipt)
	answer  bool   // owes an answer (a letter whose id can be read)
	where   string // in, processed, error
	// A receiver's acknowledgement of a sent letter.
	receipt            bool
	out, ver           int
	ackKind, ackLetter string // positive/negative/transient; the stored acknowledgement letter's id
}

// mSent is a letter the hub sent.
type mSent struct {
	id       string
	fhir     bool
	format   string // OutXDIS91, OutFHIRXML, OutFHIRJSON
	version  int
	refused  bool // the receiver refused the current version
	pending  bool // in the outbox
	first    time.Time
	last     time.Time
	resends  int
	versions map[int][]byte // the first file of each version, as sent
}

type seqModel struct {
	now     time.Time
	letters []*mLetter
	files   []*mFile
	sent    []*mSent
	// What the step must leave in out/: answers by inbound letter, and
	// letter files by name.
	wantAcks map[int]bool
	wantOut  map[string]bool
	acks     map[string]bool // stored acknowledgement letters: id -> positive
}

// handle is a round over every file waiting in in/, in arrival order.
func (m *seqModel) handle() {
	for _, f := range m.files {
		if f.where != "in" {
			continue
		}
		switch {
		case f.receipt:
			f.where = "processed"
			m.acks[f.ackLetter] = f.ackKind == "positive"
			s := m.sent[f.out]
			if !s.pending || s.version != f.ver {
				continue // not ours, settled before, or an earlier version's
			}
			switch f.ackKind {
			case "positive":
				s.pending = false
			case "negative":
				s.pending, s.refused = false, true
			case "transient":
				s.last = time.Time{}
			}
		case len(f.letters) > 0:
			for _, i := range f.letters {
				l := m.letters[i]
				if !l.answered {
					l.answered, l.negative = true, !f.valid
				}
				m.wantAcks[i] = true
			}
			f.where = "processed"
			if !f.valid {
				f.where = "error"
			}
		default:
			f.where = "error"
		}
	}
}

// check is the acknowledgement check: flags and resends.
func (m *seqModel) check() {
	for _, s := range m.sent {
		if !s.pending || m.now.Sub(s.first) < seqTimeout {
			continue
		}
		if s.resends < seqResends && m.now.Sub(s.last) >= seqTimeout {
			s.resends++
			s.last = m.now
			m.wantOut[sentName(s, s.resends)] = true
		}
	}
}

func (m *seqModel) missing() int {
	n := 0
	for _, s := range m.sent {
		if s.pending && m.now.Sub(s.first) >= seqTimeout {
			n++
		}
	}
	return n
}

// base is the id the MedCom ids of version v derive from (sink.go's build).
func (s *mSent) base() string {
	if s.version > 0 {
		return fmt.Sprintf("%s|v%d", s.id, s.version)
	}
	return s.id
}

// sentName is the file transmission n of s's current version is written to.
func sentName(s *mSent, n int) string {
	if s.fhir {
		ext := ".xml"
		if s.format == OutFHIRJSON {
			ext = ".json"
		}
		return "fhir-" + uuid.NewSHA1(uuid.NameSpaceOID, []byte(fmt.Sprintf("samhub|bundle|%s|%d", s.base(), n))).String() + ext
	}
	suffix := ""
	if n > 0 {
		suffix = fmt.Sprintf("-r%d", n)
	}
	return "xdis91-" + oioxml.StableID(s.base()) + suffix + ".xml"
}

// ---- the hub ----

// seqHub is a hub on embedded NATS whose MedCom adapter the test drives
// itself: the hub is built, never run, so no loop of its own takes files.
type seqHub struct {
	t     testing.TB
	cfg   *config.Config
	log   *logbuf.Buffer
	clock *clock
	b     *broker.Broker
	h     *pipeline.Hub
	a     *Adapter
	reg   *prometheus.Registry
}

func newSeqHub(t testing.TB, dir string, clk *clock, log *logbuf.Buffer) *seqHub {
	cfg, err := config.Load("")
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.NATS.Embedded.StoreDir = filepath.Join(dir, "jetstream")
	cfg.Adapters = map[string]map[string]any{
		"medcom": {"type": "medcom", "dir": filepath.Join(dir, "medcom"), "ack_timeout": seqTimeout.String(), "max_resends": seqResends,
			"poll_interval": "20ms", "self": map[string]any{"gln": seqSelfGLN, "sor": seqSelfSOR, "name": "Samrådet Odense"}},
	}
	cfg.Destinations = map[string]config.Destination{"gp": {Adapter: "medcom", Sector: "gp"}}
	cfg.Routes = []config.Route{{Name: "recommendation-to-gp", Match: config.Match{Kind: []string{"recommendation"}}, To: []string{"gp"}}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s := &seqHub{t: t, cfg: cfg, log: log, clock: clk}
	s.start()
	return s
}

func (s *seqHub) start() {
	logger := slog.New(slog.NewJSONHandler(s.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	bo, err := s.cfg.NATS.Broker()
	if err != nil {
		s.t.Fatal(err)
	}
	if s.b, err = broker.Open(context.Background(), bo, logger); err != nil {
		s.t.Fatal(err)
	}
	o := s.cfg.HubOptions()
	s.reg = prometheus.NewRegistry()
	o.Broker, o.Logger, o.Now, o.Registry = s.b, logger, s.clock.now, s.reg
	if s.h, err = pipeline.New(context.Background(), o); err != nil {
		s.b.Close()
		s.t.Fatal(err)
	}
	s.a = s.h.Sink("gp").(*Adapter)
}

func (s *seqHub) stop() {
	if s.b != nil {
		s.b.Close()
		s.b = nil
	}
}

// run runs the adapter's source as the hub does until in/ and
// processing/ are empty, then stops it.
func (s *seqHub) run(pub adapters.Publisher) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.a.Run(ctx, pub) }()
	for deadline := time.Now().Add(20 * time.Second); len(names(s.t, s.a.in)) > 0 || len(names(s.t, s.a.processing)) > 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			s.t.Fatalf("the source left %v in in/ and %v in processing/", names(s.t, s.a.in), names(s.t, s.a.processing))
		}
	}
	cancel()
	if err := <-done; err != nil {
		s.t.Fatal(err)
	}
}

// crashing is the hub's publisher with the process dying at a kill point
// of the round: before the letters are stored (medcom-claimed) or after
// (medcom-published). A panic stands for the kill: nothing after it runs.
type crashing struct {
	adapters.Publisher
	after bool
}

type seqCrash struct{}

func (c crashing) PublishBatch(ctx context.Context, items []adapters.Item) []adapters.Result {
	if c.after {
		adapters.PublishBatch(ctx, c.Publisher, items)
	}
	panic(seqCrash{})
}

func (c crashing) Rejected(code string) { c.Publisher.(adapters.InputReporter).Rejected(code) }
func (c crashing) Duplicate()           { c.Publisher.(adapters.InputReporter).Duplicate() }

// down is the hub's publisher while its letter stream takes no write: every
// letter fails with a reason that may pass.
type down struct{ adapters.Publisher }

func (d down) PublishBatch(_ context.Context, items []adapters.Item) []adapters.Result {
	res := make([]adapters.Result, len(items))
	for i := range res {
		res[i].Err = adapters.Retryable("broker_unavailable", "the letter stream takes no write", fmt.Errorf("nats: timeout"))
	}
	return res
}

func (d down) Rejected(code string) { d.Publisher.(adapters.InputReporter).Rejected(code) }
func (d down) Duplicate()           { d.Publisher.(adapters.InputReporter).Duplicate() }

func names(t testing.TB, dir string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".") && e.Type().IsRegular() {
			out = append(out, e.Name())
		}
	}
	return out
}

// ---- the run ----

type seqRun struct {
	t      testing.TB
	dir    string
	clock  *clock
	log    *logbuf.Buffer
	hub    *seqHub
	m      *seqModel
	n      int // files dropped
	ctx    context.Context
	failed bool
	msgs   []string
	// scratch sends letters the adapter under test never sent, for
	// acknowledgements of unknown letters.
	scratch *Adapter
}

func (s *seqRun) fail(format string, args ...any) {
	s.failed = true
	s.msgs = append(s.msgs, fmt.Sprintf(format, args...))
}

func newSeqRun(t testing.TB) *seqRun {
	dir := t.TempDir()
	clk := &clock{t: time.Date(2026, 3, 4, 9, 0, 0, 0, time.UTC)}
	s := &seqRun{t: t, dir: dir, clock: clk, log: &logbuf.Buffer{}, ctx: context.Background(),
		m: &seqModel{now: clk.now(), acks: map[string]bool{}}}
	// What is logged through the default logger is read too.
	was := slog.Default()
	slog.SetDefault(slog.New(slog.NewJSONHandler(s.log, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { slog.SetDefault(was) })
	s.hub = newSeqHub(t, dir, clk, s.log)
	t.Cleanup(func() { s.hub.stop() })
	e := &env{dir: t.TempDir(), state: newState(), clock: clk, reg: prometheus.NewRegistry(), letters: &hubLetters{}}
	s.scratch = e.adapter(t.(*testing.T), nil)
	return s
}

// drop writes a file into in/ as a VANS client does, under a name that
// sorts in arrival order.
func (s *seqRun) drop(f *mFile) {
	s.n++
	f.name = fmt.Sprintf("%04d.xml", s.n)
	f.where = "in"
	in := filepath.Join(s.dir, "medcom", "in")
	tmp := filepath.Join(in, "."+f.name+".tmp")
	if err := os.WriteFile(tmp, f.data, 0o600); err != nil {
		s.t.Fatal(err)
	}
	old := time.Now().Add(-time.Minute) // finished a while ago: taken at once
	if err := os.Chtimes(tmp, old, old); err != nil {
		s.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(in, f.name)); err != nil {
		s.t.Fatal(err)
	}
	s.m.files = append(s.m.files, f)
}

// xdis91 is inbound letter i as XDIS91, in envelope env, with variant
// content (0 is the letter's own).
func xdis91(t testing.TB, i, env, variant int) []byte {
	b := readFile(t, "samhub/letter-utf8.xml")
	b = bytes.Replace(b, []byte("LTR00000000001"), fmt.Appendf(nil, "LTR%011d", i), 1)
	b = bytes.Replace(b, []byte("ENV00000000001"), fmt.Appendf(nil, "ENV%05d%06d", i, env), 1)
	if variant > 0 {
		b = bytes.Replace(b, []byte("svært ved at sove"), fmt.Appendf(nil, "svært ved at sove (version %d)", variant), 1)
	}
	return b
}

// fhirIn is inbound letter i as a FHIR CareCommunication from the GP, in
// bundle env (a new Bundle.id for each copy, as MedCom's copies have).
func fhirIn(t testing.TB, i, env, variant int, now time.Time, enc, cpr string) []byte {
	text := seqLetterTx + fmt.Sprintf(" og er bekymret (brev %d)", i)
	if variant > 0 {
		text += fmt.Sprintf(" (version %d)", variant)
	}
	l := &letter.Letter{ID: fmt.Sprintf("gp:%d", i), Kind: letter.KindReferral,
		Patient:  &letter.Patient{CPR: seqTestCPR, GivenName: "Bruno Test", FamilyName: "Elmer"},
		Category: "psychiatry-social-disability", Subject: "Henvisning", Text: text}
	encoding := fhirmsg.EncodingXML
	if strings.HasSuffix(enc, "json") {
		encoding = fhirmsg.EncodingJSON
	}
	body, _, err := fhirmsg.WriteCareCommunication(l, fhirmsg.BuildOptions{Encoding: encoding, Mode: fhirmsg.ModeNew, Now: now,
		Self:     fhirmsg.Organization{Name: "Lægehuset Ærø", SOR: seqGPSOR, GLN: seqGP},
		To:       fhirmsg.Organization{Name: "Samrådet Odense", SOR: seqSelfSOR, GLN: seqSelfGLN},
		HeaderID: fhirHeader(i),
		BundleID: uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "seq|bundle|%d|%d", i, env)).String()})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := body.WriteTo(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	// The builder refuses a bad CPR number; a sender's system did not.
	msg := bytes.ReplaceAll(buf.Bytes(), []byte(seqTestCPR), []byte(cpr))
	if !strings.HasPrefix(enc, "vans") {
		return msg
	}
	b, err := fhirmsg.BuildVANSEnvelope(msg, fhirmsg.Envelope{
		EnvelopeID: uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "seq|envelope|%d|%d", i, env)).String(),
		MessageID:  fhirHeader(i), FromGLN: seqGP, ToGLN: seqSelfGLN, Encoding: encoding,
		Name: "MCM:FDIS91#psychiatry-social-disability", Version: "5.0", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func fhirHeader(i int) string {
	return uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "seq|header|%d", i)).String()
}

// inbound is the file of a copy of letter i.
func (s *seqRun) inbound(i, variant int, enc string) []byte {
	l := s.m.letters[i]
	l.copies++
	if l.fhir {
		return fhirIn(s.t, i, l.copies, variant, s.clock.now(), enc, seqTestCPR)
	}
	return xdis91(s.t, i, l.copies, variant)
}

// envelope is an XDIS91 envelope of letters ids, the one at bad (1-based)
// with a CPR number that has no birth date.
func envelope(t testing.TB, ids []int, env, bad int) []byte {
	b := xdis91(t, ids[0], env, 0)
	start, end := bytes.Index(b, []byte("<ClinicalEmail>")), bytes.LastIndex(b, []byte("</ClinicalEmail>"))+len("</ClinicalEmail>")
	ce := b[start:end]
	var body []byte
	for k, id := range ids {
		c := bytes.Replace(ce, []byte(fmt.Sprintf("LTR%011d", ids[0])), fmt.Appendf(nil, "LTR%011d", id), 1)
		if k+1 == bad {
			c = bytes.Replace(c, []byte(seqTestCPR), []byte(seqBadCPR), 1)
		}
		body = append(append(body, c...), "\n  "...)
	}
	return slices.Concat(b[:start], body, b[end:])
}

func (s *seqRun) run(op seqOp) {
	m := s.m
	switch op.Kind {
	case "declare", "new":
		id := oioxml.LetterID(seqGP, fmt.Sprintf("LTR%011d", op.In))
		if op.FHIR {
			id = fhirHeader(op.In)
		}
		m.letters = append(m.letters, &mLetter{hubID: id, fhir: op.FHIR})
		if op.Kind == "declare" {
			return
		}
		s.drop(&mFile{data: s.inbound(op.In, 0, op.Enc), letters: []int{op.In}, valid: true, answer: true})
	case "copy":
		s.drop(&mFile{data: s.inbound(op.In, 0, op.Enc), letters: []int{op.In}, valid: true, answer: true})
	case "other":
		s.drop(&mFile{data: s.inbound(op.In, 1+s.n, op.Enc), letters: []int{op.In}, valid: true, answer: true})
	case "pair":
		for _, i := range []int{op.In, op.In2} {
			if i == len(m.letters) {
				m.letters = append(m.letters, &mLetter{hubID: oioxml.LetterID(seqGP, fmt.Sprintf("LTR%011d", i))})
			}
			m.letters[i].copies++
		}
		s.drop(&mFile{data: envelope(s.t, []int{op.In, op.In2}, 2000+s.n, op.BadAt), letters: []int{op.In, op.In2}, valid: op.BadAt == 0, answer: true})
	case "broken":
		id := oioxml.LetterID(seqGP, fmt.Sprintf("LTR%011d", op.In))
		if op.FHIR {
			id = fhirHeader(op.In)
		}
		l := &mLetter{hubID: id, fhir: op.FHIR}
		m.letters = append(m.letters, l)
		l.broken, l.brokenAnswer = s.brokenFile(op)
		s.dropBroken(op.In)
	case "broken-copy":
		s.dropBroken(op.In)
	case "bad":
		s.drop(s.badFile(op))
	case "poll":
		m.handle()
		s.hub.a.Poll(s.ctx, s.hub.h.Publisher("medcom"))
	case "restart":
		m.handle()
		s.restart()
	case "crash":
		m.handle()
		s.crash(op.Crash)
		s.restart()
	case "putback":
		s.putBack(op)
	case "outage":
		m.handle()
		before := s.storedSubjects()
		s.hub.a.Poll(s.ctx, down{s.hub.h.Publisher("medcom")})
		if after := s.storedSubjects(); after != before {
			s.fail("%s: %d letters stored while the hub stored nothing (%d before)", op, after, before)
		}
		if left := names(s.t, s.hub.a.processing); len(left) > 0 {
			s.fail("%s: processing/ holds %v after the failed round", op, left)
		}
		s.hub.a.Poll(s.ctx, s.hub.h.Publisher("medcom"))
	case "send":
		format := []string{OutXDIS91, OutFHIRXML, OutFHIRJSON}[op.Out%3]
		st := &mSent{id: fmt.Sprintf("casesys:sag-%d:brev-1", op.Out), fhir: format != OutXDIS91, format: format, versions: map[int][]byte{}}
		m.sent = append(m.sent, st)
		s.deliver(st, false)
		if op.Crash != "" && !s.failed {
			// medcom-out-written: the letter is in out/ and the outbox,
			// the delivery's record not yet written. The hub never heard
			// of the delivery and tries it again after the restart: it
			// must find the letter sent, not write it again.
			if err := s.hub.a.state.Delete(s.ctx, stateKey("out", st.id)); err != nil {
				s.t.Fatal(err)
			}
			m.handle()
			s.restart()
			s.deliver(st, true)
		}
	case "redeliver":
		s.deliver(m.sent[op.Out], true)
	case "ack":
		s.acknowledge(op)
	case "resend":
		s.clock.add(seqTimeout)
		m.now = s.clock.now()
		m.check()
		if err := s.hub.a.CheckAcks(s.ctx); err != nil {
			s.fail("%s: CheckAcks: %v", op, err)
		}
		if got, want := s.gauge(), m.missing(); got != float64(want) {
			s.fail("%s: %v letters counted without acknowledgement, the model %d", op, got, want)
		}
	}
}

// badFile is a refused or hostile file.
func (s *seqRun) badFile(op seqOp) *mFile {
	good := xdis91(s.t, 900000+s.n, 1, 0)
	switch op.Bad {
	case "invalid":
		// A letter under a known id (or a new one) whose CPR number has
		// no birth date: MedCom wants a negative receipt, or the first
		// answer again for a known letter.
		l := s.m.letters[op.In]
		var b []byte
		if l.fhir {
			b = fhirIn(s.t, op.In, 1000+s.n, 0, s.clock.now(), op.Enc, seqBadCPR)
		} else {
			b = bytes.Replace(xdis91(s.t, op.In, 1000+s.n, 0), []byte(seqTestCPR), []byte(seqBadCPR), 1)
		}
		l.copies++
		return &mFile{data: b, letters: []int{op.In}, answer: true}
	case "charset":
		// Declares UTF-16 over UTF-8 bytes: nothing can be read as declared.
		return &mFile{data: bytes.Replace(good, []byte(`encoding="UTF-8"`), []byte(`encoding="UTF-16"`), 1)}
	case "notxml":
		return &mFile{data: []byte("CPR " + seqTestCPR + "\nthis is no letter\n")}
	default: // envelope: a VANS envelope around nothing MedCom knows
		return &mFile{data: []byte(`<?xml version="1.0" encoding="UTF-8"?><VANSEnvelope xmlns="urn:vans"><Data>` + seqTestCPR + `</Data></VANSEnvelope>`)}
	}
}

// brokenFile is letter op.In cut off at op.Cut, and whether MedCom's
// rule has it answered: a negative acknowledgement with the syntax error
// code when the envelope's or MessageHeader's id and the sender and
// receiver came before the cut. A bare FHIR Bundle names the sender's
// GLN only in its Organizations, after the patient; a VANSEnvelope's
// head names it.
func (s *seqRun) brokenFile(op seqOp) ([]byte, bool) {
	if !op.FHIR {
		b := xdis91(s.t, op.In, 1, 0)
		switch op.Cut {
		case "envelope":
			return cutAt(s.t, b, "<AcknowledgementCode>", 5), false
		case "head":
			return cutAt(s.t, b, "</Receiver>", len("</Receiver>")), true
		case "patient":
			return cutAt(s.t, b, "<CivilRegistrationNumber>", 4), true
		}
		return b[:len(b)-20], true
	}
	enc := strings.TrimPrefix(op.Enc, "vans-")
	msg := fhirIn(s.t, op.In, 1, 0, s.clock.now(), enc, seqTestCPR)
	vans := strings.HasPrefix(op.Enc, "vans")
	patient := bytes.Index(msg, []byte("<Patient"))
	if enc == "json" {
		patient = bytes.Index(msg, []byte(`"Patient"`))
	}
	var at int
	answer := true
	switch op.Cut {
	case "envelope":
		at, answer = bytes.Index(msg, []byte("destination")), false
	case "head":
		at, answer = patient, vans
	case "patient":
		at, answer = patient+12, vans
	default:
		at = len(msg) - 20
	}
	if !vans {
		return msg[:at], answer
	}
	return cutInData(s.t, fhirIn(s.t, op.In, 1, 0, s.clock.now(), op.Enc, seqTestCPR), msg, at), answer
}

// dropBroken drops letter i's cut-off file (again).
func (s *seqRun) dropBroken(i int) {
	l := s.m.letters[i]
	l.copies++
	f := &mFile{data: l.broken, answer: l.brokenAnswer}
	if l.brokenAnswer {
		f.letters = []int{i}
	}
	s.drop(f)
}

// putBack is the coordinator's put-back of the op.In-th file in error/
// (by the model's count): refused when the adapter answered a letter of
// it with a refusal (the state store holds it), else back in in/.
func (s *seqRun) putBack(op seqOp) {
	var refused []*mFile
	for _, f := range s.m.files {
		if f.where == "error" {
			refused = append(refused, f)
		}
	}
	if len(refused) == 0 {
		return
	}
	f := refused[op.In%len(refused)]
	answered := false
	for _, i := range f.letters {
		answered = answered || s.m.letters[i].negative
	}
	err := s.hub.a.PutBack(s.ctx, f.name)
	switch {
	case answered && !errors.Is(err, adapters.ErrAnswered):
		s.fail("%s (%s): %v; the model refuses it, a letter of it was answered with a refusal", op, f.name, err)
	case !answered && err != nil:
		s.fail("%s (%s): %v; the model puts it back", op, f.name, err)
	case !answered:
		f.where = "in"
	}
}

func (s *seqRun) restart() {
	s.hub.stop()
	s.hub.start()
	s.hub.run(s.hub.h.Publisher("medcom"))
	// Run checks the outbox after its first round, unless it was stopped
	// before; a check here makes sure one finished at the model's time (a
	// second at the same time changes nothing) before the gauge is read.
	s.m.check()
	if err := s.hub.a.CheckAcks(s.ctx); err != nil {
		s.fail("restart: CheckAcks: %v", err)
	}
	if got, want := s.gauge(), s.m.missing(); got != float64(want) {
		s.fail("restart: %v letters counted without acknowledgement, the model %d", got, want)
	}
}

// crash runs a round that dies at point; the files it claimed are left
// where the kill left them, for the restart to find.
func (s *seqRun) crash(point string) {
	pub := s.hub.h.Publisher("medcom")
	if point == "stored" {
		// medcom-stored: acknowledgements written and synced, no file
		// moved to processed/. processed/ is made a file for the round,
		// so each move fails where the kill would have stopped it.
		processed := filepath.Join(s.dir, "medcom", "processed")
		aside := processed + ".aside"
		if err := os.Rename(processed, aside); err != nil {
			s.t.Fatal(err)
		}
		if err := os.WriteFile(processed, nil, 0o600); err != nil {
			s.t.Fatal(err)
		}
		s.hub.a.Poll(s.ctx, pub)
		if err := os.Remove(processed); err != nil {
			s.t.Fatal(err)
		}
		if err := os.Rename(aside, processed); err != nil {
			s.t.Fatal(err)
		}
		return
	}
	crashed := false
	func() {
		defer func() {
			if r := recover(); r != nil {
				if _, ok := r.(seqCrash); !ok {
					panic(r)
				}
				crashed = true
			}
		}()
		s.hub.a.Poll(s.ctx, crashing{Publisher: pub, after: point == "published"})
	}()
	if !crashed && len(names(s.t, s.hub.a.processing)) > 0 {
		s.fail("crash at %s: the round did not reach its publish, yet left %v in processing/", point, names(s.t, s.hub.a.processing))
	}
}

func (s *seqRun) sentLetter(st *mSent) *letter.Letter {
	accepts := st.format
	return &letter.Letter{ID: st.id, Kind: letter.KindRecommendation, Source: "casesys",
		Sender:    letter.Party{Role: "municipality", Name: "Samrådet Odense", GLN: seqSelfGLN, SOR: seqSelfSOR},
		Receivers: []letter.Party{{Role: "gp", Name: "Lægehuset Ærø", GLN: seqGP, SOR: seqGPSOR}},
		To:        []letter.Party{{Role: "gp", Name: "Lægehuset Ærø", GLN: seqGP, SOR: seqGPSOR, Accepts: []string{accepts}}},
		Patient:   &letter.Patient{CPR: seqTestCPR, GivenName: "Bruno Test", FamilyName: "Elmer"},
		Category:  "psychiatry-social-disability", Subject: "Svar fra samrådet", Text: seqLetterTx + " – samrådets anbefaling",
		Original: letter.Original{Data: []byte("{}"), ContentType: "application/json"}}
}

// deliver is the hub's delivery of st (again: a replay).
func (s *seqRun) deliver(st *mSent, again bool) {
	d, err := s.hub.a.Deliver(s.ctx, s.sentLetter(st))
	if err != nil {
		s.fail("deliver %s: %v", st.id, err)
		return
	}
	if again && !st.refused {
		// Sent, or acknowledged: the first delivery is found.
		if !d.Existing {
			s.fail("deliver %s again: written again; the model finds the first delivery", st.id)
		}
		return
	}
	if again {
		st.version++ // refused: a new version under new ids
	}
	if d.Existing {
		s.fail("deliver %s: reported as delivered before; the model writes version %d", st.id, st.version)
	}
	st.refused, st.pending, st.first, st.last, st.resends = false, true, s.clock.now(), s.clock.now(), 0
	s.m.wantOut[sentName(st, 0)] = true
}

// acknowledge drops the receiver's answer to version op.Ver of sent letter
// op.Out (or to a letter the adapter never sent).
func (s *seqRun) acknowledge(op seqOp) {
	st := s.m.sent[op.Out]
	sent := st.versions[op.Ver]
	if op.Ver < 0 || sent == nil {
		// A letter another hub sent: its answer names nothing in the outbox.
		l := s.sentLetter(st)
		l.ID = fmt.Sprintf("elsewhere:%d", s.n)
		if _, err := s.scratch.Deliver(s.ctx, l); err != nil {
			s.t.Fatal(err)
		}
		for _, n := range names(s.t, s.scratch.out) {
			sent = s.read(s.scratch.out, n)
			os.Remove(filepath.Join(s.scratch.out, n))
		}
	}
	var data []byte
	var ackLetter string
	if st.fhir {
		m, err := fhirmsg.Parse(sent, xmlsafe.DefaultLimits())
		if err != nil {
			s.t.Fatal(err)
		}
		code := map[string]string{"positive": fhirmsg.AckOK, "negative": fhirmsg.AckFatalError, "transient": fhirmsg.AckTransientError}[op.Ack]
		var issues []fhirmsg.Issue
		if op.Ack != "positive" {
			issues = fhirmsg.Issues(fmt.Errorf("ukendt modtager"), 5)
		}
		if data, err = fhirmsg.BuildAcknowledgement(m, code, issues, fhirmsg.Organization{Name: "Lægehuset Ærø", SOR: seqGPSOR, GLN: seqGP}, s.clock.now()); err != nil {
			s.t.Fatal(err)
		}
		ack, err := fhirmsg.Parse(data, xmlsafe.DefaultLimits())
		if err != nil {
			s.t.Fatal(err)
		}
		ackLetter = ack.HeaderID
	} else {
		m, err := oioxml.Parse(sent, xmlsafe.DefaultLimits())
		if err != nil {
			s.t.Fatal(err)
		}
		opt := oioxml.ReceiptOptions{Type: oioxml.PositiveReceipt, Letters: m.Letters, Now: s.clock.now(), EnvelopeID: oioxml.StableID(fmt.Sprint("seq|receipt|", s.n))}
		if op.Ack != "positive" {
			opt.Type, opt.RefuseCode, opt.RefuseText = oioxml.NegativeReceipt, "problem_med_modtagerID", "ukendt modtager"
		}
		if data, err = oioxml.BuildReceipt(m, opt); err != nil {
			s.t.Fatal(err)
		}
		rc, err := oioxml.Parse(data, xmlsafe.DefaultLimits())
		if err != nil {
			s.t.Fatal(err)
		}
		r := rc.Receipts[0]
		ackLetter = oioxml.LetterID(r.SenderEAN, r.Identifier) + "/" + r.OriginalLetters[0].Identifier
	}
	ver := op.Ver
	if op.Ver < 0 || st.versions[op.Ver] == nil {
		ver = -1
	}
	for range 1 + btoi(op.Twice) {
		s.drop(&mFile{data: data, valid: true, receipt: true, out: op.Out, ver: ver, ackKind: op.Ack, ackLetter: ackLetter})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (s *seqRun) read(dir, name string) []byte {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		s.t.Fatal(err)
	}
	return b
}

func (s *seqRun) gauge() float64 {
	mfs, err := s.hub.reg.Gather()
	if err != nil {
		s.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "samhub_medcom_acks_missing" {
			for _, m := range mf.GetMetric() {
				return m.GetGauge().GetValue()
			}
		}
	}
	s.t.Fatal("samhub_medcom_acks_missing not registered")
	return 0
}

// step runs op against the adapter and the model, and compares.
func (s *seqRun) step(op seqOp) {
	// Each step at its own instant: answers carry their time, so a copy
	// answered with new bytes would show.
	s.clock.add(time.Minute)
	s.m.now = s.clock.now()
	s.m.wantAcks, s.m.wantOut = map[int]bool{}, map[string]bool{}
	s.run(op)
	if s.failed {
		return
	}
	s.checkOut(op)
	s.checkFiles(op)
	s.checkStored(op)
	s.checkOutbox(op)
	s.checkLog(op)
}

// checkOut takes what out/ holds, as the VANS client does, and compares it
// with what the step owes.
func (s *seqRun) checkOut(op seqOp) {
	out := filepath.Join(s.dir, "medcom", "out")
	got := map[int]bool{}
	for _, name := range names(s.t, out) {
		data := s.read(out, name)
		if err := os.Remove(filepath.Join(out, name)); err != nil {
			s.t.Fatal(err)
		}
		if s.m.wantOut[name] {
			delete(s.m.wantOut, name)
			s.recordSent(name, data)
			continue
		}
		i, positive, ok := s.answerOf(name, data)
		if !ok {
			s.fail("%s: out/ holds %s, which the model does not expect", op, name)
			continue
		}
		l := s.m.letters[i]
		switch {
		case !s.m.wantAcks[i]:
			s.fail("%s: out/ holds an answer to letter %d (%s), which no file of the step carried", op, i, name)
		case got[i]:
			s.fail("%s: out/ holds two answers to letter %d", op, i)
		case l.ack == nil && positive == l.negative:
			s.fail("%s: letter %d's first answer %s is positive=%v; the model wants negative=%v", op, i, name, positive, l.negative)
		case l.ack != nil && (name != l.ackName || !bytes.Equal(data, l.ack)):
			s.fail("%s: letter %d answered with %s (%d bytes); its first answer was %s (%d bytes), and a copy must get the same bytes", op, i, name, len(data), l.ackName, len(l.ack))
		}
		got[i] = true
		if l.ack == nil {
			l.ackName, l.ack = name, data
		}
	}
	for i := range s.m.wantAcks {
		if !got[i] {
			s.fail("%s: letter %d's copy got no answer", op, i)
		}
	}
	for name := range s.m.wantOut {
		s.fail("%s: %s was not written to out/", op, name)
	}
}

// recordSent keeps the first file of each version of a sent letter, which
// the receiver's answers are built from.
func (s *seqRun) recordSent(name string, data []byte) {
	for _, st := range s.m.sent {
		if sentName(st, 0) == name && st.versions[st.version] == nil {
			st.versions[st.version] = data
		}
	}
}

// answerOf reads an answer in out/: the inbound letter it answers and
// whether it is positive.
func (s *seqRun) answerOf(name string, data []byte) (int, bool, bool) {
	var id string
	var positive bool
	switch {
	case strings.HasPrefix(name, "xctl0"):
		m, err := oioxml.Parse(data, xmlsafe.DefaultLimits())
		if err != nil || len(m.Receipts) != 1 || len(m.Receipts[0].OriginalLetters) != 1 {
			return 0, false, false
		}
		r := m.Receipts[0]
		id, positive = oioxml.LetterID(r.OriginalSenderEAN, r.OriginalLetters[0].Identifier), r.Positive()
	case strings.HasPrefix(name, "fhir-ack-"):
		m, err := fhirmsg.Parse(data, xmlsafe.DefaultLimits())
		if err != nil || m.Response == nil {
			return 0, false, false
		}
		id, positive = m.Response.Identifier, m.Response.Code == fhirmsg.AckOK
	default:
		return 0, false, false
	}
	for i, l := range s.m.letters {
		if l.hubID == id {
			return i, positive, true
		}
	}
	return 0, false, false
}

// checkFiles: every dropped file is where the model puts it, a refused one
// byte for byte with its note.
func (s *seqRun) checkFiles(op seqOp) {
	root := filepath.Join(s.dir, "medcom")
	for _, sub := range []string{"processing"} {
		if left := names(s.t, filepath.Join(root, sub)); len(left) > 0 {
			s.fail("%s: %s holds %v after the step", op, sub, left)
		}
	}
	present := map[string][]string{}
	for _, sub := range []string{"in", "processed", "error"} {
		for _, n := range names(s.t, filepath.Join(root, sub)) {
			if !strings.HasSuffix(n, ".error.txt") {
				present[n] = append(present[n], sub)
			}
		}
	}
	for _, f := range s.m.files {
		where := present[f.name]
		delete(present, f.name)
		if len(where) != 1 || where[0] != f.where {
			s.fail("%s: file %s is in %v; the model has it in %s", op, f.name, where, f.where)
			continue
		}
		if f.where == "error" {
			if got := s.read(filepath.Join(root, "error"), f.name); !bytes.Equal(got, f.data) {
				s.fail("%s: %s in error/ differs from the file dropped (%d vs %d bytes)", op, f.name, len(got), len(f.data))
			}
			note, err := os.ReadFile(filepath.Join(root, "error", f.name+".error.txt"))
			acked := "acknowledgement sent: no"
			if f.answer {
				acked = "acknowledgement sent: yes"
			}
			if err != nil || !strings.Contains(string(note), acked) {
				s.fail("%s: %s's note is %q (%v); want %q", op, f.name, note, err, acked)
			}
		}
	}
	for n, where := range present {
		s.fail("%s: %s in %v is no file the model dropped", op, n, where)
	}
}

// storedSubjects counts the letters the source stored.
func (s *seqRun) storedSubjects() int {
	st, err := s.hub.h.JetStream().Stream(s.ctx, broker.StreamLetters)
	if err != nil {
		s.t.Fatal(err)
	}
	info, err := st.Info(s.ctx, jetstream.WithSubjectFilter(broker.SubjLetters+".in.medcom.>"))
	if err != nil {
		s.t.Fatal(err)
	}
	return len(info.State.Subjects)
}

// checkStored: each letter the model answered positively is stored once,
// a refused one never, and every stored letter of the source once.
func (s *seqRun) checkStored(op seqOp) {
	st, err := s.hub.h.JetStream().Stream(s.ctx, broker.StreamLetters)
	if err != nil {
		s.t.Fatal(err)
	}
	info, err := st.Info(s.ctx, jetstream.WithSubjectFilter(broker.SubjLetters+".in.medcom.>"))
	if err != nil {
		s.t.Fatal(err)
	}
	subjects := info.State.Subjects
	for subj, n := range subjects {
		if n != 1 {
			s.fail("%s: %d letters stored under %s", op, n, subj)
		}
	}
	for i, l := range s.m.letters {
		want := 0
		if l.answered && !l.negative {
			want = 1
		}
		if n := subjects[broker.InSubject("medcom", l.hubID)]; n != uint64(want) {
			s.fail("%s: letter %d stored %d times; the model %d", op, i, n, want)
		}
	}
	for id, positive := range s.m.acks {
		l, _, err := s.hub.h.StoredLetter(s.ctx, id)
		switch {
		case err != nil:
			s.fail("%s: the receiver's answer %s is not stored: %v", op, id, err)
		case l.Ack == nil || l.Ack.Positive != positive:
			s.fail("%s: the receiver's answer %s is stored as %+v; it was positive=%v", op, id, l.Ack, positive)
		}
	}
}

// checkOutbox: the outbox holds exactly the sent letters without a final
// answer; a refused letter is marked so.
func (s *seqRun) checkOutbox(op seqOp) {
	ob, err := s.hub.a.outboxEntries(s.ctx)
	if err != nil {
		s.t.Fatal(err)
	}
	byID := map[string]*pending{}
	for _, p := range ob {
		if byID[p.HubID] != nil {
			s.fail("%s: two outbox entries for %s", op, p.HubID)
		}
		byID[p.HubID] = p
	}
	for i, st := range s.m.sent {
		p := byID[st.id]
		delete(byID, st.id)
		switch {
		case st.pending && p == nil:
			s.fail("%s: sent letter %d is not in the outbox; the model awaits its answer", op, i)
		case !st.pending && p != nil:
			s.fail("%s: sent letter %d is in the outbox (version %d); the model has it answered", op, i, p.Version)
		case p != nil && (p.Version != st.version || p.Resends != st.resends):
			s.fail("%s: sent letter %d's outbox entry: version %d, %d resends; the model %d, %d", op, i, p.Version, p.Resends, st.version, st.resends)
		}
		var rec outRecord
		if _, found, err := getJSON(s.ctx, s.hub.a.state, stateKey("out", st.id), &rec); err != nil || !found {
			s.fail("%s: sent letter %d has no delivery record (%v)", op, i, err)
		} else if rec.Refused != st.refused || rec.Version != st.version {
			s.fail("%s: sent letter %d's record: refused %v version %d; the model %v %d", op, i, rec.Refused, rec.Version, st.refused, st.version)
		}
	}
	for id := range byID {
		s.fail("%s: the outbox holds %s, which the model never sent", op, id)
	}
}

// checkLog: no line logged names the child or quotes a letter.
func (s *seqRun) checkLog(op seqOp) {
	log := s.log.String()
	for _, pd := range []string{seqTestCPR, "Elmer", "Bruno", "Drengen", "sove", seqLetterTx, "anbefaling"} {
		if i := strings.Index(log, pd); i >= 0 {
			line := log[strings.LastIndex(log[:i], "\n")+1:]
			if j := strings.IndexByte(line, '\n'); j >= 0 {
				line = line[:j]
			}
			s.fail("%s: the log holds %q: %s", op, pd, line)
		}
	}
}

// ---- the generator ----

type seqGen struct {
	rnd     *rand.Rand
	letters int
	fhir    []bool
	broken  map[int]bool // letters only ever sent cut off: never copied whole
	sent    int
	vers    []int // versions the generator knows were written (an upper bound)
}

// pick is a letter that was sent whole; false when there is none.
func (g *seqGen) pick() (int, bool) {
	var whole []int
	for i := range g.letters {
		if !g.broken[i] {
			whole = append(whole, i)
		}
	}
	if len(whole) == 0 {
		return 0, false
	}
	return whole[g.rnd.IntN(len(whole))], true
}

func (g *seqGen) enc() string {
	return []string{"xml", "json", "vans-xml", "vans-json"}[g.rnd.IntN(4)]
}

func (g *seqGen) next() seqOp {
	r := g.rnd.IntN(100)
	switch {
	case r < 14 || g.letters == 0 && r < 40:
		op := seqOp{Kind: "new", In: g.letters, FHIR: g.rnd.IntN(2) == 0, Enc: g.enc()}
		g.letters++
		g.fhir = append(g.fhir, op.FHIR)
		return op
	case r < 27:
		i, ok := g.pick()
		if !ok {
			return seqOp{Kind: "poll"}
		}
		if r < 23 {
			return seqOp{Kind: "copy", In: i, Enc: g.enc()}
		}
		return seqOp{Kind: "other", In: i, Enc: g.enc()}
	case r < 30:
		// Two XDIS91 letters in one envelope: a known one (when there is
		// one) or a new one, and a new one; sometimes one refused.
		op := seqOp{Kind: "pair", BadAt: []int{0, 0, 1, 2}[g.rnd.IntN(4)]}
		var known []int
		for i, f := range g.fhir {
			if !f && !g.broken[i] {
				known = append(known, i)
			}
		}
		if len(known) == 0 || g.rnd.IntN(2) == 0 {
			op.In, op.NewIn = g.letters, true
			g.letters++
			g.fhir = append(g.fhir, false)
		} else {
			op.In = known[g.rnd.IntN(len(known))]
		}
		op.In2 = g.letters
		g.letters++
		g.fhir = append(g.fhir, false)
		return op
	case r < 36 && g.rnd.IntN(3) == 0:
		return seqOp{Kind: "putback", In: g.rnd.IntN(1000)}
	case r < 37:
		bad := []string{"invalid", "truncated", "truncated", "charset", "notxml", "envelope"}[g.rnd.IntN(6)]
		switch bad {
		case "invalid":
			// Under a new letter's id or a known one's.
			i, known := g.pick()
			if !known || g.rnd.IntN(2) == 0 {
				g.letters++
				g.fhir = append(g.fhir, g.rnd.IntN(2) == 0)
				return seqOp{Kind: "new-invalid", In: g.letters - 1, FHIR: g.fhir[g.letters-1], Enc: g.enc()}
			}
			return seqOp{Kind: "bad", Bad: bad, In: i, Enc: g.enc()}
		case "truncated":
			// A new letter cut off in transit, or that file once more.
			var cut []int
			for i := range g.letters {
				if g.broken[i] {
					cut = append(cut, i)
				}
			}
			if len(cut) > 0 && g.rnd.IntN(2) == 0 {
				return seqOp{Kind: "broken-copy", In: cut[g.rnd.IntN(len(cut))]}
			}
			op := seqOp{Kind: "broken", In: g.letters, FHIR: g.rnd.IntN(2) == 0, Enc: g.enc(),
				Cut: []string{"envelope", "head", "patient", "end"}[g.rnd.IntN(4)]}
			if g.broken == nil {
				g.broken = map[int]bool{}
			}
			g.broken[op.In] = true
			g.letters++
			g.fhir = append(g.fhir, op.FHIR)
			return op
		}
		return seqOp{Kind: "bad", Bad: bad}
	case r < 55:
		return seqOp{Kind: "poll"}
	case r < 57:
		return seqOp{Kind: "restart"}
	case r < 59:
		return seqOp{Kind: "outage"}
	case r < 63:
		return seqOp{Kind: "crash", Crash: []string{"claimed", "published", "stored"}[g.rnd.IntN(3)]}
	case r < 72:
		g.sent++
		g.vers = append(g.vers, 0)
		op := seqOp{Kind: "send", Out: g.sent - 1}
		if g.rnd.IntN(6) == 0 {
			op.Crash = "out-written"
		}
		return op
	case r < 75 && g.sent > 0:
		i := g.rnd.IntN(g.sent)
		g.vers[i]++
		return seqOp{Kind: "redeliver", Out: i}
	case r < 91 && g.sent > 0:
		i := g.rnd.IntN(g.sent)
		op := seqOp{Kind: "ack", Out: i, Ver: g.rnd.IntN(g.vers[i] + 1), Twice: g.rnd.IntN(4) == 0,
			Ack: []string{"positive", "positive", "negative", "transient"}[g.rnd.IntN(4)]}
		if g.rnd.IntN(8) == 0 {
			op.Ver = -1
		}
		if op.Ack == "transient" && i%3 == 0 {
			op.Ack = "negative" // XCTL has no transient answer; letters 0, 3, 6, … go as XDIS91
		}
		return op
	case r < 100 && g.sent > 0:
		return seqOp{Kind: "resend"}
	}
	return seqOp{Kind: "poll"}
}

func seqPlan(seed uint64, steps int) []seqOp {
	g := &seqGen{rnd: rand.New(rand.NewPCG(seed, seed^0x3ed1c0))}
	var ops []seqOp
	for range steps {
		ops = append(ops, g.next())
	}
	return ops
}

// replay runs ops on a fresh hub, then a last poll and restart; the
// failures, or nil.
func replay(t testing.TB, ops []seqOp) []string {
	s := newSeqRun(t)
	all := append(slices.Clone(ops), seqOp{Kind: "poll"}, seqOp{Kind: "restart"})
	for i, op := range all {
		if op.Kind == "new-invalid" {
			// A refused letter under a new id: the model learns the id.
			s.run(seqOp{Kind: "declare", In: op.In, FHIR: op.FHIR})
			op = seqOp{Kind: "bad", Bad: "invalid", In: op.In, Enc: op.Enc}
		}
		s.step(op)
		if s.failed {
			return append([]string{fmt.Sprintf("step %d of %d", i+1, len(all))}, s.msgs...)
		}
	}
	return nil
}

// consistent reports whether every step names letters made before it, in
// order (a shrunk sequence must keep the generator's numbering).
func consistent(ops []seqOp) bool {
	letters, sent := 0, 0
	broken := map[int]bool{}
	for _, op := range ops {
		switch op.Kind {
		case "new", "new-invalid":
			if op.In != letters {
				return false
			}
			letters++
		case "broken":
			if op.In != letters {
				return false
			}
			broken[op.In] = true
			letters++
		case "broken-copy":
			if !broken[op.In] {
				return false
			}
		case "copy", "other":
			if op.In >= letters || broken[op.In] {
				return false
			}
		case "pair":
			if op.NewIn {
				if op.In != letters {
					return false
				}
				letters++
			} else if op.In >= letters || broken[op.In] {
				return false
			}
			if op.In2 != letters {
				return false
			}
			letters++
		case "bad":
			if op.Bad == "invalid" && (op.In >= letters || broken[op.In]) {
				return false
			}
		case "send":
			if op.Out != sent {
				return false
			}
			sent++
		case "redeliver", "ack":
			if op.Out >= sent {
				return false
			}
		}
	}
	return true
}

func TestMedComSequences(t *testing.T) {
	seqtest.Test[seqOp]{
		Plan:   func(seed uint64, steps int) ([]seqOp, string) { return seqPlan(seed, steps), "" },
		Replay: func(t *testing.T, ops []seqOp) []string { return replay(t, ops) },
		// Steps naming letters that a shorter sequence no longer makes
		// would be skipped by the run.
		Valid:  consistent,
		Budget: 60,
	}.Run(t, seqtest.FromEnv("SAMHUB_MEDCOM_SEQ", 6, 50))
}
