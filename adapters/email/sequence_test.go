package email

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-smtp"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/adapters/email/mailtest"
	"github.com/samhub/samhub/internal/config"
	"github.com/samhub/samhub/internal/logbuf"
	"github.com/samhub/samhub/internal/seqtest"
	"github.com/samhub/samhub/pipeline"
	"github.com/samhub/samhub/pipeline/broker"
	"github.com/samhub/samhub/pipeline/letter"
)

// The sequence test drives the IMAP source against the in-process IMAP
// server (TLS, MOVE or the COPY fallback) and a real hub on embedded NATS
// JetStream (its intake stores the letters, its key-value bucket is the
// source's state), next to a small model of the mailbox, with seeded
// random steps: mails delivered (plain, multipart with an attachment,
// Latin-1, a large one that is spooled, without Message-ID, an exact copy
// of an earlier mail, an earlier Message-ID with other content or from
// another sender, malformed, over max_bytes, too large for the hub to
// store), polls, polls while the server drops the connection before or
// after a command (FETCH, MOVE, COPY, STORE, EXPUNGE, SEARCH, SELECT) or
// refuses one for a while, rounds while the hub stores nothing, crashes
// after the hub stored a letter and after the record was written, the
// source restarted, a person deleting, moving, flagging \Deleted or
// marking seen a mail in the inbox, and the inbox restored (a new
// UIDVALIDITY: every mail gets a new UID, mails taken before come back
// beside those not yet read). After every step:
//
//   - every readable mail the model has taken is stored in the hub once,
//     by its bytes (a copy byte for byte is the same mail; the same
//     Message-ID with other bytes is another), and nothing else is stored;
//   - the inbox holds exactly the mails the model has not taken; every
//     mail in the processed mailbox is stored, and every one the model
//     took is there; the error mailbox holds exactly the unreadable ones,
//     byte for byte, none of them stored, and the hub counted each in
//     samhub_letters_rejected_total;
//   - nothing logged names the child or quotes a letter.
//
// SAMHUB_EMAIL_SEQ_SEEDS and SAMHUB_EMAIL_SEQ_STEPS run more (the
// default, 8 seeds of 50 steps, takes 6-9 s on 2 cores; every third seed
// runs against a server without MOVE); SAMHUB_EMAIL_SEQ_SEED=N replays one
// seed. The SMTP test below takes the same variables.

const (
	seqSource  = "mail-in"
	seqCPR     = "2509479989" // a fictitious test person
	seqChild   = "Bruno Berggren"
	seqText    = "Drengen sover dårligt og græder om natten"
	seqMaxMail = 1536 << 10 // the source's max_bytes
	seqArchive = "Arkiv"    // where a person moves a mail
)

// seqOp is one step.
type seqOp struct {
	Kind  string // mail, poll, fault, outage, crash, restart, human, restore
	Mail  string // mail: plain, multipart, latin1, large, nomsgid, copy, samemsgid, othersender, bad, nofrom, oversize, toolarge
	Of    int    // mail copy/samemsgid/othersender: the earlier mail; human: which inbox mail (modulo)
	Cmd   string // fault: the command
	Fault mailtest.Fault
	N     int    // fault: how many commands meet it; restore: taken mails brought back
	Crash string // crash: published, recorded
	Human string // human: delete, move, seen, flagdeleted
}

func (o seqOp) String() string {
	switch o.Kind {
	case "mail":
		if o.Mail == "copy" || o.Mail == "samemsgid" || o.Mail == "othersender" {
			return fmt.Sprintf("mail %s of mail %d", o.Mail, o.Of)
		}
		return "mail " + o.Mail
	case "fault":
		return fmt.Sprintf("poll while the server's next %d %s meet %s", o.N, o.Cmd, faultName(o.Fault))
	case "crash":
		return "poll with a crash after the letter was " + o.Crash + ", restart"
	case "human":
		return fmt.Sprintf("a person %s inbox mail #%d", o.Human, o.Of)
	case "restore":
		return fmt.Sprintf("the inbox restored (new UIDVALIDITY) with %d taken mails back", o.N)
	case "outage":
		return "a poll while the hub stores nothing"
	}
	return o.Kind
}

func faultName(f mailtest.Fault) string {
	return map[mailtest.Fault]string{mailtest.Refuse: "NO", mailtest.Drop: "a drop", mailtest.DropAfter: "a drop after the command ran"}[f]
}

// ---- the model ----

// mContent is one distinct mail, by its bytes.
type mContent struct {
	raw      []byte
	kind     string
	readable bool // becomes a letter the hub stores
	stored   bool // the hub stored it
	recorded bool // the source's record of it is written
	rejected bool // went to the error mailbox (its record says so)
}

// mCopy is one message in a mailbox: a copy of a content.
type mCopy struct {
	c       int
	deleted bool // a person flagged it \Deleted without expunging
}

type seqModel struct {
	contents []*mContent
	inbox    []mCopy
	// processed and errors are the contents each mailbox holds.
	processed, errors map[int]bool
	rejects           int // moves to the error mailbox
}

// oversize says whether the source refuses c without reading it.
func (m *seqModel) oversize(c int) bool { return len(m.contents[c].raw) > seqMaxMail }

// takeOne is what the source does with inbox copy i when nothing fails.
func (m *seqModel) takeOne(i int) {
	c := m.contents[m.inbox[i].c]
	switch {
	case m.oversize(m.inbox[i].c):
		m.errors[m.inbox[i].c] = true
		m.rejects++
	case c.recorded && !c.rejected:
		m.processed[m.inbox[i].c] = true
	case c.recorded:
		m.errors[m.inbox[i].c] = true
	case c.readable:
		c.stored, c.recorded = true, true
		m.processed[m.inbox[i].c] = true
	default:
		c.recorded, c.rejected = true, true
		m.errors[m.inbox[i].c] = true
		m.rejects++
	}
}

// poll takes the inbox, oldest first, up to (not including) the first
// copy stop says the source stops at; it returns that copy's index, or -1.
func (m *seqModel) poll(stop func(i int) bool) int {
	var left []mCopy
	at := -1
	for i, cp := range m.inbox {
		if cp.deleted || at >= 0 {
			left = append(left, cp)
			continue
		}
		if stop != nil && stop(i) {
			at = len(left)
			left = append(left, cp)
			continue
		}
		m.takeOne(i)
	}
	m.inbox = left
	return at
}

// ---- the hub ----

type seqHub struct {
	t   testing.TB
	cfg *config.Config
	log *slog.Logger
	b   *broker.Broker
	h   *pipeline.Hub
	reg *prometheus.Registry
}

func newSeqHub(t testing.TB, dir string, log *slog.Logger) *seqHub {
	cfg, err := config.Load("")
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.NATS.Embedded.StoreDir = filepath.Join(dir, "jetstream")
	// Small, so a mail with a long text is too large for the hub to store
	// while the source can read it.
	cfg.Streams.MaxMsgSize = "256KB"
	cfg.Pipeline.InlineMaxBytes = "128KB"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	h := &seqHub{t: t, cfg: cfg, log: log}
	bo, err := cfg.NATS.Broker()
	if err != nil {
		t.Fatal(err)
	}
	if h.b, err = broker.Open(context.Background(), bo, log); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.b.Close)
	o := cfg.HubOptions()
	h.reg = prometheus.NewRegistry()
	o.Broker, o.Logger, o.Registry = h.b, log, h.reg
	if h.h, err = pipeline.New(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	return h
}

// rejected is samhub_letters_rejected_total for the source, all codes.
func (h *seqHub) rejected() float64 {
	mfs, err := h.reg.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != "samhub_letters_rejected_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "source" && lp.GetValue() == seqSource {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return n
}

// stored maps the SHA-256 of each stored letter's original to how many
// letters of the source carry it.
func (h *seqHub) stored(ctx context.Context) map[string]int {
	st, err := h.h.JetStream().Stream(ctx, broker.StreamLetters)
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(broker.SubjLetters+".in."+seqSource+".>"))
	if err != nil {
		h.t.Fatal(err)
	}
	out := map[string]int{}
	for subj, n := range info.State.Subjects {
		raw, err := st.GetLastMsgForSubject(ctx, subj)
		if err != nil {
			h.t.Fatal(err)
		}
		l, err := letter.Unmarshal(raw.Data)
		if err != nil {
			h.t.Fatal(err)
		}
		out[l.Original.SHA256] += int(n)
	}
	return out
}

// ---- publishers and state standing for failures ----

// seqPub is the hub's publisher with the failures a step asks for.
type seqPub struct {
	adapters.Publisher
	down     bool               // the hub stores nothing: a retryable error
	crash    context.CancelFunc // set: the process dies once the letter is stored
	attempts atomic.Int32
	crashed  atomic.Bool
}

func (p *seqPub) Publish(ctx context.Context, l *letter.Letter) error {
	p.attempts.Add(1)
	if p.down {
		return adapters.Retryable("broker_unavailable", "the letter stream takes no write", errors.New("nats: timeout"))
	}
	err := p.Publisher.Publish(ctx, l)
	if p.crash != nil && err == nil && p.crashed.CompareAndSwap(false, true) {
		// Nothing after the kill runs: the error keeps the source from
		// its record and move, and the cancel ends Run.
		p.crash()
		return errors.New("killed")
	}
	return err
}

func (p *seqPub) Rejected(code string) { p.Publisher.(adapters.InputReporter).Rejected(code) }
func (p *seqPub) Duplicate()           { p.Publisher.(adapters.InputReporter).Duplicate() }

// seqState is the source's state store, which can make the process die
// right after a published record is written.
type seqState struct {
	adapters.StateStore
	mu      sync.Mutex
	crash   context.CancelFunc
	crashed bool
}

func (s *seqState) Put(ctx context.Context, key string, v []byte) (uint64, error) {
	rev, err := s.StateStore.Put(ctx, key, v)
	s.mu.Lock()
	defer s.mu.Unlock()
	var r record
	if err == nil && s.crash != nil && !s.crashed && json.Unmarshal(v, &r) == nil && r.Status == statusPublished {
		s.crashed = true
		s.crash()
		return rev, errors.New("killed")
	}
	return rev, err
}

// ---- the run ----

type seqRun struct {
	t      testing.TB
	ctx    context.Context
	ca     *mailtest.CA
	srv    *mailtest.IMAPServer
	noMove bool
	logs   *logbuf.Buffer
	log    *slog.Logger
	hub    *seqHub
	state  adapters.StateStore
	dir    string
	src    *IMAPSource
	m      *seqModel
	failed bool
	msgs   []string
}

func (s *seqRun) fail(format string, args ...any) {
	s.failed = true
	s.msgs = append(s.msgs, fmt.Sprintf(format, args...))
}

func newSeqRun(t testing.TB, noMove bool) *seqRun {
	dir := t.TempDir()
	s := &seqRun{t: t, ctx: context.Background(), noMove: noMove, logs: &logbuf.Buffer{}, dir: dir,
		m: &seqModel{processed: map[int]bool{}, errors: map[int]bool{}}}
	s.log = slog.New(slog.NewJSONHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	// What is logged through the default logger is read too.
	was := slog.Default()
	slog.SetDefault(s.log)
	t.Cleanup(func() { slog.SetDefault(was) })
	s.ca = mailtest.NewCA(t)
	s.srv = mailtest.StartIMAP(t, s.ca, mailtest.IMAPOptions{Mode: mailtest.IMAPImplicit, NoMove: noMove})
	s.hub = newSeqHub(t, dir, s.log)
	st, err := broker.NewStateStore(s.ctx, s.hub.h.JetStream(), seqSource)
	if err != nil {
		t.Fatal(err)
	}
	s.state = st
	s.restart()
	return s
}

// restart builds the source anew, as a restarted process does: what it
// kept in memory is gone, its state and spool directory stay.
func (s *seqRun) restart() {
	cfg := map[string]any{
		"host": s.srv.Host, "port": s.srv.Port, "tls": "implicit", "ca_file": s.ca.PEMFile,
		"username": s.srv.Username, "password": s.srv.Password,
		"poll_interval": "20ms", "timeout": "10s", "max_bytes": seqMaxMail, "max_backoff": "50ms",
	}
	deps := adapters.Deps{Name: seqSource, Logger: s.log.With("adapter", seqSource), State: s.state,
		DataDir: filepath.Join(s.dir, "adapter"), Now: time.Now}
	src, err := NewIMAPSource(deps, cfg)
	if err != nil {
		s.t.Fatal(err)
	}
	src.minBackoff = 5 * time.Millisecond
	s.src = src
}

// runUntil runs the source until settled says the mailbox is as the model
// expects (or the source ends by itself: a crash), then stops it.
func (s *seqRun) runUntil(pub adapters.Publisher, state adapters.StateStore, settled func() bool) {
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	if st, ok := state.(*seqState); ok && st.crash != nil {
		st.crash = cancel
	}
	if p, ok := pub.(*seqPub); ok && p.crash != nil {
		p.crash = cancel
	}
	src := s.src
	src.state = state
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, pub) }()
	// A guard against a hang, not a measurement: a settled mailbox takes
	// well under a second.
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-done:
			if err != nil {
				s.t.Fatal(err)
			}
			src.state = s.state
			return
		default:
		}
		if settled() {
			break
		}
		if time.Now().After(deadline) {
			s.fail("the mailbox did not settle: inbox %d, processed %d, error %d; the model %d, %d, %d",
				s.srv.Count(s.t, inbox), s.srv.Count(s.t, processed), s.srv.Count(s.t, errorBox),
				s.liveInbox(), len(s.m.processed), len(s.m.errors))
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		s.t.Fatal(err)
	}
	src.state = s.state
}

// liveInbox counts the inbox copies the model has not flagged \Deleted.
func (s *seqRun) liveInbox() int {
	n := 0
	for _, cp := range s.m.inbox {
		if !cp.deleted {
			n++
		}
	}
	return n
}

// counted says whether the server's mailboxes have the model's sizes
// (processed and error at least: the COPY fallback may leave two copies).
func (s *seqRun) counted() bool {
	return s.srv.Count(s.t, inbox) == s.liveInbox() &&
		s.srv.Count(s.t, processed) >= len(s.m.processed) && s.srv.Count(s.t, errorBox) >= len(s.m.errors)
}

func (s *seqRun) pub() *seqPub { return &seqPub{Publisher: s.hub.h.Publisher(seqSource)} }

func (s *seqRun) poll() {
	s.m.poll(nil)
	s.runUntil(s.pub(), s.state, s.counted)
}

// blocking says whether the source stops at inbox copy i when the hub
// stores nothing: a readable mail it has no record of.
func (s *seqRun) blocking(i int) bool {
	c := s.m.contents[s.m.inbox[i].c]
	return !s.m.oversize(s.m.inbox[i].c) && !c.recorded && (c.readable || c.toolarge())
}

// toolarge: the hub refuses the letter for good.
func (c *mContent) toolarge() bool { return c.kind == "toolarge" }

func (s *seqRun) step(op seqOp) {
	switch op.Kind {
	case "mail":
		s.mail(op)
	case "poll":
		s.poll()
	case "fault":
		s.srv.FailNext(op.Cmd, slices.Repeat([]mailtest.Fault{op.Fault}, op.N)...)
		s.poll()
		s.srv.ClearFaults()
	case "outage":
		p := s.pub()
		p.down = true
		at := s.m.poll(s.blocking)
		s.runUntil(p, s.state, func() bool { return s.counted() && (at < 0 || p.attempts.Load() > 0) })
	case "crash":
		s.crash(op.Crash)
	case "restart":
		s.restart()
	case "human":
		s.human(op)
	case "restore":
		s.restore(op.N)
	}
	s.check(op)
}

// crash polls until the process dies after the hub stored a letter
// (published) or after its record was written (recorded), and restarts.
func (s *seqRun) crash(point string) {
	p, st := s.pub(), &seqState{StateStore: s.state}
	at := s.m.poll(func(i int) bool {
		c := s.m.contents[s.m.inbox[i].c]
		return s.blocking(i) && !c.toolarge()
	})
	if at >= 0 {
		c := s.m.contents[s.m.inbox[at].c]
		c.stored = true
		if point == "published" {
			p.crash = func() {}
		} else {
			c.recorded = true
			st.crash = func() {}
		}
	}
	settled := s.counted
	if at >= 0 {
		// The mailbox looks as expected before the source starts: only
		// the kill ends this run.
		settled = func() bool { return false }
	}
	s.runUntil(p, st, settled)
	if at >= 0 && !p.crashed.Load() && !st.crashed {
		s.fail("the source never reached the kill point")
	}
	s.restart()
}

// human acts on the inbox as a person in a mail client would, through
// the server.
func (s *seqRun) human(op seqOp) {
	var live []int
	for i, cp := range s.m.inbox {
		if !cp.deleted {
			live = append(live, i)
		}
	}
	if len(live) == 0 {
		return
	}
	i := live[op.Of%len(live)]
	raw := s.m.contents[s.m.inbox[i].c].raw
	c := s.srv.Client(s.t)
	defer c.Close()
	if _, err := c.Select(inbox, nil).Wait(); err != nil {
		s.t.Fatal(err)
	}
	uid := findUID(s.t, c, raw, s.m.inbox, i, s.m.contents)
	set := imap.UIDSetNum(uid)
	switch op.Human {
	case "delete":
		if err := c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}, Silent: true}, nil).Close(); err != nil {
			s.t.Fatal(err)
		}
		if err := c.UIDExpunge(set).Close(); err != nil {
			s.t.Fatal(err)
		}
		s.m.inbox = slices.Delete(s.m.inbox, i, i+1)
	case "move":
		if err := ensureMailbox(c, seqArchive); err != nil {
			s.t.Fatal(err)
		}
		if _, err := c.Move(set, seqArchive).Wait(); err != nil {
			s.t.Fatal(err)
		}
		s.m.inbox = slices.Delete(s.m.inbox, i, i+1)
	case "seen", "flagdeleted":
		f := imap.FlagSeen
		if op.Human == "flagdeleted" {
			f = imap.FlagDeleted
			s.m.inbox[i].deleted = true
		}
		if err := c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{f}, Silent: true}, nil).Close(); err != nil {
			s.t.Fatal(err)
		}
	}
}

// findUID finds the UID of inbox copy i: the k-th message with its bytes,
// k counting the earlier copies of the same content.
func findUID(t testing.TB, c *imapclient.Client, raw []byte, box []mCopy, i int, contents []*mContent) imap.UID {
	t.Helper()
	k := 0
	for _, cp := range box[:i] {
		if bytes.Equal(contents[cp.c].raw, raw) {
			k++
		}
	}
	sd, err := c.UIDSearch(&imap.SearchCriteria{}, nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	section := &imap.FetchItemBodySection{Peek: true}
	for _, uid := range sd.AllUIDs() {
		msgs, err := c.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{section}}).Collect()
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) == 1 && bytes.Equal(msgs[0].FindBodySection(section), raw) {
			if k == 0 {
				return uid
			}
			k--
		}
	}
	t.Fatal("the inbox lacks a mail the model has there")
	return 0
}

// restore recreates the inbox, as a restore from a backup does: a new
// UIDVALIDITY, the mails that were there back under new UIDs, and n mails
// the source had taken back as well (the backup is older than their move).
func (s *seqRun) restore(n int) {
	s.srv.Recreate(s.t, inbox)
	var back []mCopy
	for _, cp := range s.m.inbox {
		if !cp.deleted { // a mail flagged \Deleted is not restored
			back = append(back, cp)
		}
	}
	var taken []int
	for c := range s.m.contents {
		if s.m.processed[c] || s.m.errors[c] {
			taken = append(taken, c)
		}
	}
	for k := 0; k < n && len(taken) > 0; k++ {
		c := taken[(k*7)%len(taken)]
		back = slices.Insert(back, min(k, len(back)), mCopy{c: c})
	}
	for _, cp := range back {
		s.srv.Append(s.t, inbox, s.m.contents[cp.c].raw)
	}
	s.m.inbox = back
}

// ---- mails ----

func (s *seqRun) mail(op seqOp) {
	n := len(s.m.contents)
	var raw []byte
	readable := true
	switch op.Mail {
	case "copy":
		if op.Of >= n {
			return
		}
		s.m.inbox = append(s.m.inbox, mCopy{c: op.Of})
		s.srv.Append(s.t, inbox, s.m.contents[op.Of].raw)
		return
	case "samemsgid", "othersender":
		if op.Of >= n {
			return
		}
		from := "PPR Odense <ppr@odense.example.dk>"
		if op.Mail == "othersender" {
			from = "Sundhedsplejen <sp@aarhus.example.dk>"
		}
		id := msgIDOf(s.m.contents[op.Of].raw)
		if id == "" {
			id = fmt.Sprintf("<seq-%d@example.dk>", op.Of)
		}
		raw = plainMail(n, from, id, "utf-8", "8bit", seqText+fmt.Sprintf(" (nyt brev %d)", n))
	case "plain":
		raw = plainMail(n, "PPR Odense <ppr@odense.example.dk>", fmt.Sprintf("<seq-%d@example.dk>", n), "utf-8", "8bit", seqText)
	case "nomsgid":
		raw = plainMail(n, "PPR Odense <ppr@odense.example.dk>", "", "utf-8", "8bit", seqText)
	case "latin1":
		raw = plainMail(n, "Skolen <skole@odense.example.dk>", fmt.Sprintf("<seq-%d@example.dk>", n), "iso-8859-1", "quoted-printable",
			"Drengen sover d=E5rligt og gr=E6der om natten, CPR "+seqCPR)
	case "multipart":
		raw = multipartMail(n, 3<<10, false)
	case "large":
		raw = multipartMail(n, 1100<<10, false) // spooled: 1 MiB or more
	case "oversize":
		raw = multipartMail(n, seqMaxMail, false)
		readable = false
	case "bad":
		raw = multipartMail(n, 2<<10, true)
		readable = false
	case "nofrom":
		raw = fmt.Appendf(nil, "To: samraad@kommune.example.dk\r\nSubject: Brev %d\r\nMessage-ID: <seq-%d@example.dk>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s, CPR %s\r\n", n, n, seqText, seqCPR)
		readable = false
	case "toolarge":
		// Its text alone is over the hub's largest letter.
		raw = plainMail(n, "PPR Odense <ppr@odense.example.dk>", fmt.Sprintf("<seq-%d@example.dk>", n), "utf-8", "8bit",
			strings.Repeat(seqText+" CPR "+seqCPR+".\r\n", 300<<10/60))
		readable = false
	}
	s.m.contents = append(s.m.contents, &mContent{raw: raw, kind: op.Mail, readable: readable})
	s.m.inbox = append(s.m.inbox, mCopy{c: n})
	s.srv.Append(s.t, inbox, raw)
}

func msgIDOf(raw []byte) string {
	for _, ln := range strings.Split(string(raw[:bytes.Index(raw, []byte("\r\n\r\n"))]), "\r\n") {
		if v, ok := strings.CutPrefix(ln, "Message-ID: "); ok {
			return v
		}
	}
	return ""
}

func plainMail(n int, from, msgID, charset, cte, text string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: %s\r\nTo: samraad@kommune.example.dk\r\nSubject: Vedr. %s\r\nDate: Mon, 02 Jun 2025 10:%02d:00 +0200\r\n", from, seqChild, n%60)
	if msgID != "" {
		fmt.Fprintf(&b, "Message-ID: %s\r\n", msgID)
	}
	fmt.Fprintf(&b, "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=%s\r\nContent-Transfer-Encoding: %s\r\n\r\n%s\r\nCPR %s\r\nBrev nr. %d\r\n", charset, cte, text, seqCPR, n)
	return b.Bytes()
}

// multipartMail has a text and a PDF of about size bytes (base64); a
// broken one ends inside its attachment.
func multipartMail(n, size int, broken bool) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: Psykiatrien <bup@regionsyd.example.dk>\r\nTo: samraad@kommune.example.dk\r\nSubject: Epikrise\r\nMessage-ID: <seq-%d@regionsyd.example.dk>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n", n, n)
	fmt.Fprintf(&b, "--b%d\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n%s, CPR %s (%d)\r\n", n, seqText, seqCPR, n)
	fmt.Fprintf(&b, "--b%d\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"epikrise-%d.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n", n, n)
	line := strings.Repeat("JVBERi0xLjQK", 6) + "\r\n"
	for b.Len() < size {
		b.WriteString(line)
	}
	if broken {
		b.WriteString("!!!! not base64 !!!!\r\n")
		return b.Bytes()
	}
	fmt.Fprintf(&b, "--b%d--\r\n", n)
	return b.Bytes()
}

// ---- the checks ----

func (s *seqRun) check(op seqOp) {
	m := s.m
	stored := s.hub.stored(s.ctx)
	want := map[string]int{}
	for i, c := range m.contents {
		if c.stored {
			want[letter.Digest(c.raw)] = 1
		}
		if c.stored && !c.readable {
			s.fail("%s: the model stored unreadable mail %d", op, i)
		}
	}
	for d, n := range stored {
		if want[d] != n {
			s.fail("%s: a mail is stored %d times; the model %d (%s)", op, n, want[d], s.which(d))
		}
	}
	for d := range want {
		if stored[d] == 0 {
			s.fail("%s: a mail is not stored; the model has it stored (%s)", op, s.which(d))
		}
	}

	// The inbox: exactly the model's copies, in order. Without MOVE, a
	// copy the source flagged \Deleted and could not expunge may stay; it
	// is in processed or error already.
	var got [][]byte
	for _, msg := range s.list(inbox) {
		if msg.deleted && s.noMove {
			if c := s.contentOf(msg.raw); c >= 0 && (m.processed[c] || m.errors[c]) && !s.deletedInModel(c) {
				continue
			}
		}
		got = append(got, msg.raw)
	}
	var wantIn [][]byte
	for _, cp := range m.inbox {
		wantIn = append(wantIn, m.contents[cp.c].raw)
	}
	if !slices.EqualFunc(got, wantIn, bytes.Equal) {
		s.fail("%s: the inbox holds %s; the model %s", op, s.names(got), s.names(wantIn))
	}
	for box, want := range map[string]map[int]bool{processed: m.processed, errorBox: m.errors} {
		have := map[int]bool{}
		for _, msg := range s.list(box) {
			r := msg.raw
			c := s.contentOf(r)
			if c < 0 {
				s.fail("%s: %s holds a message the test never delivered", op, box)
				continue
			}
			have[c] = true
			if box == processed && stored[letter.Digest(r)] == 0 {
				s.fail("%s: mail %d is in %s but not stored", op, c, box)
			}
			if box == errorBox && stored[letter.Digest(r)] > 0 {
				s.fail("%s: mail %d is in %s and stored", op, c, box)
			}
		}
		for c := range want {
			if !have[c] {
				s.fail("%s: mail %d (%s) is not in %s", op, c, m.contents[c].kind, box)
			}
		}
		for c := range have {
			if !want[c] {
				s.fail("%s: mail %d (%s) is in %s; the model does not have it there", op, c, m.contents[c].kind, box)
			}
		}
	}
	// Each mail set aside is counted, once, where the operators' alert
	// looks (the source counts its own refusals, the hub a letter it
	// would not store).
	if n := s.hub.rejected(); n != float64(m.rejects) {
		s.fail("%s: samhub_letters_rejected_total{source=%q} is %v; %d mails went to the error mailbox", op, seqSource, n, m.rejects)
	}
	log := s.logs.String()
	for _, pd := range []string{seqCPR, "Bruno", "Berggren", "Drengen", "græder", "sover d"} {
		if i := strings.Index(log, pd); i >= 0 {
			line := log[strings.LastIndex(log[:i], "\n")+1:]
			if j := strings.IndexByte(line, '\n'); j >= 0 {
				line = line[:j]
			}
			s.fail("%s: the log holds %q: %s", op, pd, line)
		}
	}
}

func (s *seqRun) deletedInModel(c int) bool {
	for _, cp := range s.m.inbox {
		if cp.c == c && cp.deleted {
			return true
		}
	}
	return false
}

type listed struct {
	raw     []byte
	deleted bool
}

// list reads box as a mail client does: every message, in UID order, with
// its \Deleted flag.
func (s *seqRun) list(box string) []listed {
	c := s.srv.Client(s.t)
	defer c.Close()
	sel, err := c.Select(box, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		if _, serr := s.srv.Status(box); serr != nil {
			return nil // not made yet: the source makes it when it first connects
		}
		s.t.Fatal(err)
	}
	if sel.NumMessages == 0 {
		return nil
	}
	section := &imap.FetchItemBodySection{Peek: true}
	var all imap.SeqSet
	all.AddRange(1, sel.NumMessages)
	msgs, err := c.Fetch(all, &imap.FetchOptions{Flags: true, BodySection: []*imap.FetchItemBodySection{section}}).Collect()
	if err != nil {
		s.t.Fatal(err)
	}
	out := make([]listed, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, listed{raw: m.FindBodySection(section), deleted: slices.Contains(m.Flags, imap.FlagDeleted)})
	}
	return out
}

func (s *seqRun) contentOf(raw []byte) int {
	for i, c := range s.m.contents {
		if bytes.Equal(c.raw, raw) {
			return i
		}
	}
	return -1
}

func (s *seqRun) which(digest string) string {
	for i, c := range s.m.contents {
		if letter.Digest(c.raw) == digest {
			return fmt.Sprintf("mail %d, %s", i, c.kind)
		}
	}
	return "a mail the test never delivered"
}

func (s *seqRun) names(raws [][]byte) string {
	var out []string
	for _, r := range raws {
		out = append(out, strconv.Itoa(s.contentOf(r)))
	}
	return "[" + strings.Join(out, " ") + "]"
}

// ---- the generator ----

type seqGen struct {
	rnd   *rand.Rand
	mails int
}

func (g *seqGen) next(noMove bool) seqOp {
	r := g.rnd.IntN(100)
	switch {
	case r < 30 || g.mails == 0 && r < 50:
		kinds := []string{"plain", "plain", "multipart", "multipart", "latin1", "nomsgid", "nomsgid", "bad", "nofrom", "toolarge", "large", "oversize"}
		if g.mails > 0 {
			kinds = append(kinds, "copy", "copy", "samemsgid", "othersender")
		}
		op := seqOp{Kind: "mail", Mail: kinds[g.rnd.IntN(len(kinds))]}
		if op.Mail == "large" || op.Mail == "oversize" {
			if g.rnd.IntN(3) > 0 { // rare: they cost time
				op.Mail = "plain"
			}
		}
		if op.Mail == "copy" || op.Mail == "samemsgid" || op.Mail == "othersender" {
			op.Of = g.rnd.IntN(g.mails)
			if op.Mail == "copy" {
				return op
			}
		}
		g.mails++
		return op
	case r < 50:
		return seqOp{Kind: "poll"}
	case r < 68:
		cmds := []string{mailtest.CmdFetch, mailtest.CmdFetch, mailtest.CmdMove, mailtest.CmdSearch, mailtest.CmdSelect}
		if noMove {
			cmds = []string{mailtest.CmdFetch, mailtest.CmdFetch, mailtest.CmdCopy, mailtest.CmdStore, mailtest.CmdExpunge, mailtest.CmdSearch, mailtest.CmdSelect}
		}
		op := seqOp{Kind: "fault", Cmd: cmds[g.rnd.IntN(len(cmds))]}
		op.Fault = []mailtest.Fault{mailtest.Refuse, mailtest.Drop, mailtest.DropAfter}[g.rnd.IntN(3)]
		op.N = 1 + g.rnd.IntN(3)
		if op.Fault == mailtest.Refuse {
			op.N = 1 + g.rnd.IntN(8) // a while: more than maxFetchAttempts at times
		}
		return op
	case r < 74:
		return seqOp{Kind: "outage"}
	case r < 80:
		return seqOp{Kind: "crash", Crash: []string{"published", "recorded"}[g.rnd.IntN(2)]}
	case r < 84:
		return seqOp{Kind: "restart"}
	case r < 95:
		return seqOp{Kind: "human", Of: g.rnd.IntN(10), Human: []string{"delete", "move", "seen", "seen", "flagdeleted"}[g.rnd.IntN(5)]}
	default:
		return seqOp{Kind: "restore", N: g.rnd.IntN(4)}
	}
}

func seqPlan(seed uint64, steps int) (ops []seqOp, noMove bool) {
	g := &seqGen{rnd: rand.New(rand.NewPCG(seed, seed^0xe3a11))}
	noMove = seed%3 == 0 // every third seed runs against a server without MOVE
	for range steps {
		ops = append(ops, g.next(noMove))
	}
	return ops, noMove
}

// replay runs ops against a fresh server and hub, then a last poll; the
// failures, or nil.
func replay(t testing.TB, ops []seqOp, noMove bool) []string {
	s := newSeqRun(t, noMove)
	all := append(slices.Clone(ops), seqOp{Kind: "poll"})
	for i, op := range all {
		s.step(op)
		if s.failed {
			return append([]string{fmt.Sprintf("step %d of %d", i+1, len(all))}, s.msgs...)
		}
	}
	return nil
}

func TestEmailSequences(t *testing.T) {
	var noMove bool // the seed's server lacks MOVE
	seqtest.Test[seqOp]{
		Plan: func(seed uint64, steps int) ([]seqOp, string) {
			var ops []seqOp
			ops, noMove = seqPlan(seed, steps)
			return ops, fmt.Sprintf("MOVE %v", !noMove)
		},
		Replay: func(t *testing.T, ops []seqOp) []string { return replay(t, ops, noMove) },
		Budget: 40,
	}.Run(t, seqtest.FromEnv("SAMHUB_EMAIL_SEQ", 8, 50))
}

// ---- the SMTP sink ----

// The SMTP sequence test drives the sink against the in-process SMTP
// server (implicit TLS, login, a pool of kept sessions) with the pipeline's
// part played by the test: a letter whose delivery failed for a reason
// that may pass is delivered again later, one refused for good is parked
// and may be replayed by an operator, and one delivered may come again (a
// redelivery after a lost acknowledgement). Steps: new letters to one to
// three recipients (an address twice, in other case, at times), the
// server answering a recipient's RCPT or its message with 4xx or 5xx until
// told otherwise, the connection dropped in the middle of DATA or after
// the server stored the message and before its answer, the kept sessions
// dropped, and the sink restarted. After every step the server holds, for
// each letter and recipient, exactly the mails the model expects (one once
// the server accepted it; a second only after an answer was lost, as
// docs/operations.md says), each under the letter's Message-ID for that
// recipient; Deliver's answer is the model's (nothing, a Partial naming
// who has it, retryable when any refusal was temporary, else permanent);
// and nothing logged names the child or quotes the letter. Its sequences
// are cheap: by default it runs 40 seeds of 50 steps (under a second).

var seqRcpts = []string{"a@kommune.example.dk", "b@kommune.example.dk", "c@kommune.example.dk", "d@kommune.example.dk"}

type smtpOp struct {
	Kind    string // letter, deliver, replay, again, verdict, lose, dropdata, drop, restart
	Letter  int    // deliver, replay, again: which (modulo those eligible)
	Rcpts   []int  // letter: indexes into seqRcpts; a negative one is the address upper-cased
	Rcpt    int    // verdict
	Verdict string // verdict: "", 451, 550, data451, data554
}

func (o smtpOp) String() string {
	switch o.Kind {
	case "letter":
		return fmt.Sprintf("letter to %v", o.Rcpts)
	case "verdict":
		if o.Verdict == "" {
			return fmt.Sprintf("the server takes %s again", seqRcpts[o.Rcpt])
		}
		return fmt.Sprintf("the server answers %s with %s", seqRcpts[o.Rcpt], o.Verdict)
	case "deliver", "replay", "again":
		return fmt.Sprintf("%s pending/parked/done letter #%d", o.Kind, o.Letter)
	}
	return o.Kind
}

type smtpLetter struct {
	l      *letter.Letter
	rcpts  []string        // lower-cased, without repeats, in letter order
	sent   map[string]bool // the sink recorded it as sent
	got    map[string]int  // mails the server must hold
	status string          // pending, parked, done
}

type smtpRun struct {
	t       testing.TB
	ctx     context.Context
	ca      *mailtest.CA
	srv     *mailtest.SMTPServer
	state   *memState
	logs    *logbuf.Buffer
	sink    *SMTPSink
	letters []*smtpLetter
	mu      sync.Mutex
	verdict map[string]string
	oneShot string // lose or dropdata: the next message the server would take
	failed  bool
	msgs    []string
}

func (s *smtpRun) fail(format string, args ...any) {
	s.failed = true
	s.msgs = append(s.msgs, fmt.Sprintf(format, args...))
}

func newSMTPRun(t testing.TB) *smtpRun {
	s := &smtpRun{t: t, ctx: context.Background(), state: newMemState(), logs: &logbuf.Buffer{}, verdict: map[string]string{}}
	s.ca = mailtest.NewCA(t)
	s.srv = mailtest.StartSMTP(t, s.ca, mailtest.SMTPOptions{Mode: mailtest.SMTPImplicit, Username: "samhub", Password: "s3cret",
		RcptError: func(to string) error {
			s.mu.Lock()
			defer s.mu.Unlock()
			switch s.verdict[strings.ToLower(to)] {
			case "451":
				return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}
			case "550":
				return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
			}
			return nil
		},
		DataError: func(to []string) error {
			s.mu.Lock()
			defer s.mu.Unlock()
			for _, a := range to {
				switch s.verdict[strings.ToLower(a)] {
				case "data451":
					return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}
				case "data554":
					return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "refused"}
				}
			}
			return nil
		}})
	s.restart()
	return s
}

func (s *smtpRun) restart() {
	if s.sink != nil {
		s.sink.pool.close()
	}
	cfg := map[string]any{"host": s.srv.Host, "port": s.srv.Port, "tls": "implicit", "ca_file": s.ca.PEMFile,
		"username": "samhub", "password": "s3cret", "from": "samraad@kommune.example.dk",
		"allow": []any{"@kommune.example.dk"}, "timeout": "10s"}
	deps := testDeps("mail-out", s.state)
	deps.Logger = slog.New(slog.NewJSONHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	sink, err := NewSMTPSink(deps, cfg)
	if err != nil {
		s.t.Fatal(err)
	}
	s.sink = sink
	s.t.Cleanup(sink.pool.close)
}

func (s *smtpRun) newLetter(op smtpOp) {
	n := len(s.letters)
	l := testLetter()
	l.ID = fmt.Sprintf("medcom:xdis91:seq-%d", n)
	l.Receivers, l.To = nil, nil
	sl := &smtpLetter{l: l, sent: map[string]bool{}, got: map[string]int{}, status: "pending"}
	for k, i := range op.Rcpts {
		addr := seqRcpts[abs(i)]
		if i < 0 {
			addr = strings.ToUpper(addr)
		}
		role := []string{letter.RoleCoordinator, "school", letter.RoleMunicipality}[k%3]
		p := letter.Party{Role: role, Name: fmt.Sprintf("Modtager %d", k), Email: addr}
		l.Receivers = append(l.Receivers, p)
		l.To = append(l.To, p)
		if lc := strings.ToLower(addr); !slices.Contains(sl.rcpts, lc) {
			sl.rcpts = append(sl.rcpts, lc)
		}
	}
	s.letters = append(s.letters, sl)
}

func abs(i int) int {
	if i < 0 {
		return -i - 1
	}
	return i
}

// deliver delivers sl as the pipeline does, predicting what the server
// gets and what Deliver answers.
func (s *smtpRun) deliver(op smtpOp, sl *smtpLetter) {
	var pending []string
	for _, r := range sl.rcpts {
		if !sl.sent[r] {
			pending = append(pending, r)
		}
	}
	var failed []string
	retry, broken := false, false
	s.mu.Lock()
	for _, r := range pending {
		if broken {
			failed, retry = append(failed, r), true
			continue
		}
		switch s.verdict[r] {
		case "451", "data451":
			failed, retry = append(failed, r), true
		case "550", "data554":
			failed = append(failed, r)
		default:
			switch s.oneShot {
			case "lose":
				sl.got[r]++ // stored; the answer is lost, so not recorded
				failed, retry, broken = append(failed, r), true, true
			case "dropdata":
				failed, retry, broken = append(failed, r), true, true
			default:
				sl.got[r]++
				sl.sent[r] = true
			}
			s.oneShot = ""
		}
	}
	s.mu.Unlock()
	var wantDelivered []string
	for _, r := range sl.rcpts {
		if sl.sent[r] {
			wantDelivered = append(wantDelivered, r)
		}
	}

	d, err := s.sink.Deliver(s.ctx, sl.l)
	switch {
	case len(pending) == 0:
		if err != nil || !d.Existing {
			s.fail("%s: every recipient was served before; Deliver = %+v, %v, want Existing", op, d, err)
		}
	case len(failed) == 0:
		if err != nil || d.Existing {
			s.fail("%s: Deliver = %+v, %v; want sent", op, d, err)
		}
	default:
		class, _, _ := adapters.Classify(err)
		if want := map[bool]adapters.Class{true: adapters.ClassRetryable, false: adapters.ClassPermanent}[retry]; class != want {
			s.fail("%s: Deliver's error is %v (%v); the model %v", op, class, err, want)
		}
		var p *adapters.Partial
		switch {
		case len(wantDelivered) > 0 && !errors.As(err, &p):
			s.fail("%s: Deliver = %v, want a Partial naming %v", op, err, wantDelivered)
		case len(wantDelivered) == 0 && errors.As(err, &p):
			s.fail("%s: Deliver = a Partial (%v); nobody has the letter", op, err)
		case p != nil:
			// Who has it matters, not in which order they are named.
			if got := partyAddrs(p.Delivered); !sameSet(got, wantDelivered) {
				s.fail("%s: the Partial says %v have it; the model %v", op, got, wantDelivered)
			}
			if got := partyAddrs(p.Failed); !sameSet(got, failed) {
				s.fail("%s: the Partial says %v do not; the model %v", op, got, failed)
			}
		}
	}
	switch {
	case len(failed) == 0:
		sl.status = "done"
	case retry:
		sl.status = "pending"
	default:
		sl.status = "parked"
	}
}

func sameSet(a, b []string) bool {
	return slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b)))
}

// partyAddrs are the parties' addresses, lower-cased, without repeats.
func partyAddrs(ps []letter.Party) []string {
	var out []string
	for _, p := range ps {
		if a := strings.ToLower(p.Email); !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

func (s *smtpRun) pick(status string, k int) *smtpLetter {
	var in []*smtpLetter
	for _, sl := range s.letters {
		if sl.status == status {
			in = append(in, sl)
		}
	}
	if len(in) == 0 {
		return nil
	}
	return in[k%len(in)]
}

func (s *smtpRun) step(op smtpOp) {
	switch op.Kind {
	case "letter":
		s.newLetter(op)
	case "deliver", "replay", "again":
		status := map[string]string{"deliver": "pending", "replay": "parked", "again": "done"}[op.Kind]
		if sl := s.pick(status, op.Letter); sl != nil {
			s.deliver(op, sl)
		}
	case "verdict":
		s.mu.Lock()
		s.verdict[seqRcpts[op.Rcpt]] = op.Verdict
		s.mu.Unlock()
	case "lose", "dropdata":
		if s.oneShot == "" {
			s.oneShot = op.Kind
			if op.Kind == "lose" {
				s.srv.LoseNextReply()
			} else {
				s.srv.DropNextData()
			}
		}
	case "drop":
		s.srv.DropConnections()
	case "restart":
		s.restart()
	}
	s.check(op)
}

func (s *smtpRun) check(op smtpOp) {
	got := map[string]int{}
	for _, m := range s.srv.Messages() {
		h, err := mailHeader(m.Data)
		if err != nil {
			s.fail("%s: the server holds a mail it cannot read: %v", op, err)
			continue
		}
		if len(m.To) != 1 {
			s.fail("%s: a mail went to %d recipients at once", op, len(m.To))
			continue
		}
		got[h+" "+strings.ToLower(m.To[0])]++
	}
	for i, sl := range s.letters {
		for _, r := range sl.rcpts {
			key := MessageID(sl.l.ID, r, "samraad@kommune.example.dk") + " " + r
			if got[key] != sl.got[r] {
				s.fail("%s: letter %d reached %s %d times; the model %d", op, i, r, got[key], sl.got[r])
			}
			delete(got, key)
		}
	}
	for k, n := range got {
		s.fail("%s: the server holds %d mails the model never sent (%s)", op, n, k)
	}
	log := s.logs.String()
	for _, pd := range []string{seqCPR, "Bruno", "Elmer", "henvisningen", "Kære"} {
		if strings.Contains(log, pd) {
			s.fail("%s: the log holds %q", op, pd)
		}
	}
}

// mailHeader is a mail's Message-ID, without angle brackets.
func mailHeader(raw []byte) (string, error) {
	e, err := message.Read(bytes.NewReader(raw))
	if err != nil {
		return "", err
	}
	return messageIDOf(mail.Header{Header: e.Header}), nil
}

func smtpPlan(seed uint64, steps int) []smtpOp {
	rnd := rand.New(rand.NewPCG(seed, seed^0x5e11d))
	var ops []smtpOp
	for range steps {
		r := rnd.IntN(100)
		switch {
		case r < 18:
			op := smtpOp{Kind: "letter"}
			for range 1 + rnd.IntN(3) {
				i := rnd.IntN(len(seqRcpts))
				if rnd.IntN(6) == 0 {
					i = -i - 1
				}
				op.Rcpts = append(op.Rcpts, i)
			}
			ops = append(ops, op)
		case r < 45:
			ops = append(ops, smtpOp{Kind: "deliver", Letter: rnd.IntN(10)})
		case r < 50:
			ops = append(ops, smtpOp{Kind: "replay", Letter: rnd.IntN(10)})
		case r < 55:
			ops = append(ops, smtpOp{Kind: "again", Letter: rnd.IntN(10)})
		case r < 75:
			v := []string{"", "", "451", "550", "data451", "data554"}[rnd.IntN(6)]
			ops = append(ops, smtpOp{Kind: "verdict", Rcpt: rnd.IntN(len(seqRcpts)), Verdict: v})
		case r < 83:
			ops = append(ops, smtpOp{Kind: "lose"})
		case r < 91:
			ops = append(ops, smtpOp{Kind: "dropdata"})
		case r < 96:
			ops = append(ops, smtpOp{Kind: "drop"})
		default:
			ops = append(ops, smtpOp{Kind: "restart"})
		}
	}
	return ops
}

// replaySMTP runs ops, then clears every verdict and delivers each pending
// letter until it settles: every letter is then delivered or parked.
func replaySMTP(t testing.TB, ops []smtpOp) []string {
	s := newSMTPRun(t)
	all := slices.Clone(ops)
	for i := range seqRcpts {
		all = append(all, smtpOp{Kind: "verdict", Rcpt: i})
	}
	for range 3 {
		for k := range 20 {
			all = append(all, smtpOp{Kind: "deliver", Letter: k})
		}
	}
	for i, op := range all {
		s.step(op)
		if s.failed {
			return append([]string{fmt.Sprintf("step %d of %d", i+1, len(all))}, s.msgs...)
		}
	}
	for i, sl := range s.letters {
		if sl.status == "pending" {
			s.fail("letter %d is still pending after every refusal ended", i)
		}
	}
	if s.failed {
		return s.msgs
	}
	return nil
}

func TestEmailSMTPSequences(t *testing.T) {
	seqtest.Test[smtpOp]{
		Plan:   func(seed uint64, steps int) ([]smtpOp, string) { return smtpPlan(seed, steps), "" },
		Replay: func(t *testing.T, ops []smtpOp) []string { return replaySMTP(t, ops) },
		Budget: 40,
	}.Run(t, seqtest.FromEnv("SAMHUB_EMAIL_SEQ", 40, 50))
}
