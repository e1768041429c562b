package email

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"mime"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-message/charset"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/pipeline/letter"
)

// IMAPSource reads one mailbox over TLS and publishes each message as a
// letter. Build it with NewIMAPSource or through the registry (type "imap").
type IMAPSource struct {
	name  string
	log   *slog.Logger
	state adapters.StateStore
	now   func() time.Time
	cfg   imapConfig
	conn  *resolved

	uidValidity uint32        // of the selected mailbox; Run is single-threaded
	minBackoff  time.Duration // first wait before reconnecting
	progress    bool          // the current session moved a message
	health      atomic.Pointer[error]
	// fetchFailures counts failed downloads per message (UIDVALIDITY<<32 |
	// UID), so one message the server cannot serve does not block the
	// mailbox for ever. served counts the messages downloaded: a failure
	// counts against a message only when the server sent another one
	// since its last failure, so a server that fails every download for a
	// while (its storage away) sets no readable mail aside.
	fetchFailures map[uint64]*fetchTrouble
	served        uint64
	// spoolDir holds the files of large messages while they are parsed
	// and published (spool.go); dataDir is where it goes, "" for a
	// temporary directory of this process.
	spoolDir string
	dataDir  string
	// handBack is set when a drain examined input that may have cost far
	// more memory than it is long (a refused message) or was large.
	handBack bool
}

// maxFetchAttempts is how often a message's download may fail, each time
// after the server sent another message, before it is set aside in the
// error mailbox.
const maxFetchAttempts = 5

// fetchTrouble is what the source knows of a message whose download failed.
type fetchTrouble struct {
	failures int    // counted failures
	served   uint64 // IMAPSource.served at the last failure
}

var errNotConnected = errors.New("imap source has not connected yet")

// Ready reports whether the source is connected to its mailbox: nil while a
// session is up, otherwise the error that ended the last one.
func (s *IMAPSource) Ready(context.Context) error {
	if p := s.health.Load(); p != nil {
		return *p
	}
	return errNotConnected
}

func (s *IMAPSource) setHealth(err error) { s.health.Store(&err) }

// NewIMAPSource builds the "imap" source from its configuration block. It
// needs deps.State: the duplicate memory must survive restarts.
func NewIMAPSource(deps adapters.Deps, cfg map[string]any) (*IMAPSource, error) {
	var c imapConfig
	if err := decodeBlock("imap", cfg, &c); err != nil {
		return nil, err
	}
	return newIMAPSource(deps, c)
}

func newIMAPSource(deps adapters.Deps, c imapConfig) (*IMAPSource, error) {
	r, err := c.check()
	if err != nil {
		return nil, err
	}
	if deps.State == nil {
		return nil, errors.New("imap source needs a state store for its duplicate memory")
	}
	s := &IMAPSource{name: deps.Name, log: deps.Logger, state: deps.State, now: deps.Now, cfg: c, conn: r, minBackoff: 500 * time.Millisecond, dataDir: deps.DataDir}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// Run polls (or IDLEs on) the mailbox until ctx ends, reconnecting with
// backoff whenever the connection or a publish fails.
func (s *IMAPSource) Run(ctx context.Context, pub adapters.Publisher) error {
	done, err := s.openSpool()
	if err != nil {
		return err
	}
	defer done()
	backoff := s.minBackoff
	for {
		start := time.Now()
		s.progress = false
		err := s.session(ctx, pub)
		if ctx.Err() != nil {
			s.setHealth(errors.New("imap source stopped"))
			return nil
		}
		s.setHealth(err)
		// A session that moved mail or lived long was healthy: start the
		// backoff again from the bottom. One that keeps failing early (server
		// down, broker down) waits longer each time.
		if s.progress || time.Since(start) > s.cfg.MaxBackoff {
			backoff = s.minBackoff
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		s.log.Warn("email: imap session ended, reconnecting", "err", err, "retry_in", wait)
		if !adapters.Sleep(ctx, wait) {
			return nil
		}
		backoff = min(backoff*2, s.cfg.MaxBackoff)
	}
}

// openSpool makes the spool directory and removes what a previous life
// left in it (a process killed between fetch and publish). Without a data
// directory the spool is a temporary directory, removed by done.
func (s *IMAPSource) openSpool() (done func(), err error) {
	if s.dataDir == "" {
		dir, err := os.MkdirTemp("", "samhub-imap-")
		if err != nil {
			return nil, fmt.Errorf("imap source: spool directory: %w", err)
		}
		s.spoolDir = dir
		return func() { _ = os.RemoveAll(dir) }, nil
	}
	s.spoolDir = filepath.Join(s.dataDir, "spool")
	if err := os.MkdirAll(s.spoolDir, 0o700); err != nil {
		return nil, fmt.Errorf("imap source: spool directory: %w", err)
	}
	n, err := clearSpool(s.spoolDir)
	if err != nil {
		return nil, fmt.Errorf("imap source: clear spool directory: %w", err)
	}
	if n > 0 {
		s.log.Info("email: removed spool files of an earlier run", "files", n)
	}
	return func() {}, nil
}

// session runs one connection until it fails or ctx ends.
func (s *IMAPSource) session(ctx context.Context, pub adapters.Publisher) error {
	news := make(chan struct{}, 1)
	c, err := s.dial(news)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer func() {
		stop()
		c.Close()
	}()
	if err := c.Login(s.conn.username, s.conn.password).Wait(); err != nil {
		return fmt.Errorf("login: %w", err)
	}
	for _, mb := range []string{s.cfg.ProcessedMailbox, s.cfg.ErrorMailbox} {
		if err := ensureMailbox(c, mb); err != nil {
			return err
		}
	}
	sel, err := c.Select(s.cfg.Mailbox, nil).Wait()
	if err != nil {
		return fmt.Errorf("select mailbox: %w", err)
	}
	s.uidValidity = sel.UIDValidity
	s.setHealth(nil)
	caps := c.Caps()
	canIdle := caps.Has(imap.CapIdle) || caps.Has(imap.CapIMAP4rev2)
	for {
		if err := s.drain(ctx, c, pub); err != nil {
			return err
		}
		if err := s.wait(ctx, c, canIdle, news); err != nil {
			return err
		}
	}
}

func (s *IMAPSource) dial(news chan struct{}) (*imapclient.Client, error) {
	opts := &imapclient.Options{
		TLSConfig:   s.conn.tls.Clone(),
		Dialer:      &net.Dialer{Timeout: s.cfg.Timeout},
		WordDecoder: &mime.WordDecoder{CharsetReader: charset.Reader},
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					select {
					case news <- struct{}{}:
					default:
					}
				}
			},
		},
	}
	var (
		c   *imapclient.Client
		err error
	)
	if s.conn.mode == modeImplicit {
		c, err = imapclient.DialTLS(s.conn.addr, opts)
	} else {
		// Fails unless the server accepts STARTTLS and the handshake
		// succeeds; there is no fallback to clear text.
		c, err = imapclient.DialStartTLS(s.conn.addr, opts)
	}
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	return c, nil
}

// ensureMailbox creates a mailbox unless it exists.
func ensureMailbox(c *imapclient.Client, name string) error {
	if _, err := c.Status(name, &imap.StatusOptions{NumMessages: true}).Wait(); err == nil {
		return nil
	}
	if err := c.Create(name, nil).Wait(); err != nil {
		var ie *imap.Error
		if errors.As(err, &ie) && ie.Code == imap.ResponseCodeAlreadyExists {
			return nil
		}
		return fmt.Errorf("create mailbox %q: %w", name, err)
	}
	return nil
}

// wait blocks until the server reports new mail, the poll interval passes,
// the connection drops or ctx ends.
func (s *IMAPSource) wait(ctx context.Context, c *imapclient.Client, canIdle bool, news chan struct{}) error {
	t := time.NewTimer(s.cfg.PollInterval)
	defer t.Stop()
	if !canIdle {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.Closed():
			return errors.New("connection closed")
		case <-t.C:
			return nil
		}
	}
	idle, err := c.Idle()
	if err != nil {
		return fmt.Errorf("idle: %w", err)
	}
	select {
	case <-ctx.Done():
	case <-c.Closed():
	case <-t.C:
	case <-news:
	}
	if err := idle.Close(); err != nil {
		return fmt.Errorf("idle: %w", err)
	}
	if err := idle.Wait(); err != nil {
		return fmt.Errorf("idle: %w", err)
	}
	return ctx.Err()
}

// drain handles every message in the mailbox, oldest first.
func (s *IMAPSource) drain(ctx context.Context, c *imapclient.Client, pub adapters.Publisher) error {
	// \Deleted ones are left over from a COPY fallback whose EXPUNGE failed:
	// they were copied already.
	data, err := c.UIDSearch(&imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagDeleted}}, nil).Wait()
	if err != nil {
		return fmt.Errorf("search mailbox: %w", err)
	}
	defer func() {
		if s.handBack {
			// As the MedCom source does after a large round (issue 19): a
			// hostile message's parse is garbage now, and the runtime would
			// keep its memory for minutes in an idle hub; hand it back at
			// once, for one collection. Refusals are rare, so it costs
			// nothing in normal running.
			s.handBack = false
			adapters.HandBackMemory()
		}
	}()
	// Messages whose download failed go last: a message that breaks the
	// connection each time would otherwise keep the others from being
	// read, and their downloads tell the source whether the server can
	// send anything at all.
	uids := data.AllUIDs()
	slices.SortStableFunc(uids, func(a, b imap.UID) int {
		return cmp.Compare(s.troubled(a), s.troubled(b))
	})
	for _, uid := range uids {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := s.handle(ctx, c, uid, pub); err != nil {
			return err
		}
	}
	return nil
}

// troubled is 1 for a message whose download failed, else 0.
func (s *IMAPSource) troubled(uid imap.UID) int {
	if s.fetchFailures[uint64(s.uidValidity)<<32|uint64(uid)] != nil {
		return 1
	}
	return 0
}

// fetchFailed notes a failed download of the message at pos. The first
// failure counts; a later one only when the server sent another message
// since the one before, which shows the trouble is this message's.
func (s *IMAPSource) fetchFailed(pos uint64) {
	if s.fetchFailures == nil {
		s.fetchFailures = map[uint64]*fetchTrouble{}
	}
	f := s.fetchFailures[pos]
	switch {
	case f == nil:
		s.fetchFailures[pos] = &fetchTrouble{failures: 1, served: s.served}
	case s.served > f.served:
		f.failures++
		f.served = s.served
	}
}

// handBackAfter is the message size after which a drain hands memory back.
const handBackAfter = 16 << 20

// record is what the state store remembers about one message.
type record struct {
	Status string    `json:"status"` // published or rejected
	Letter string    `json:"letter,omitempty"`
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
}

const (
	statusPublished = "published"
	statusRejected  = "rejected"
)

var keyUnsafe = regexp.MustCompile(`[^A-Za-z0-9_=.-]`)

func (s *IMAPSource) stateKey(key string) string {
	return "imap." + keyUnsafe.ReplaceAllString(s.name, "_") + "." + key
}

func (s *IMAPSource) getRecord(ctx context.Context, key string) (*record, error) {
	v, _, err := s.state.Get(ctx, s.stateKey(key))
	if errors.Is(err, adapters.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	var r record
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, nil // unreadable memory: treat as new; the letter id dedups
	}
	return &r, nil
}

func (s *IMAPSource) putRecord(ctx context.Context, key string, r record) error {
	r.At = s.now()
	v, _ := json.Marshal(r)
	if _, err := s.state.Put(ctx, s.stateKey(key), v); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	return nil
}

// handle takes one message from fetch to its final mailbox.
func (s *IMAPSource) handle(ctx context.Context, c *imapclient.Client, uid imap.UID, pub adapters.Publisher) error {
	set := imap.UIDSetNum(uid)
	sized, err := c.Fetch(set, &imap.FetchOptions{UID: true, RFC822Size: true}).Collect()
	if err != nil {
		return fmt.Errorf("fetch size: %w", err)
	}
	if len(sized) == 0 {
		return nil // expunged meanwhile
	}
	if sized[0].RFC822Size > s.cfg.MaxBytes {
		// Not fetched at all; the key names the mailbox position instead
		// of the content.
		key := fmt.Sprintf("oversize.%d.%d", s.uidValidity, uid)
		return s.reject(ctx, c, pub, set, key, rejection{code: codeTooLarge, reason: s.oversize(sized[0].RFC822Size)})
	}

	pos := uint64(s.uidValidity)<<32 | uint64(uid)
	if f := s.fetchFailures[pos]; f != nil && f.failures >= maxFetchAttempts {
		delete(s.fetchFailures, pos)
		key := fmt.Sprintf("unfetchable.%d.%d", s.uidValidity, uid)
		return s.reject(ctx, c, pub, set, key, rejection{code: codeUnfetchable, reason: fmt.Sprintf("the message could not be downloaded in %d attempts while the server sent other messages", maxFetchAttempts)})
	}
	// The spool's files (a large message and its large attachments) live
	// until the publish has returned, stored or not.
	sp := newSpool(s.spoolDir)
	defer func() {
		if err := sp.remove(); err != nil {
			s.log.Warn("email: spool files not removed", "err", err)
		}
	}()
	msg, err := s.fetch(c, set, sp)
	if err != nil {
		var se *spoolError
		if !errors.As(err, &se) {
			s.fetchFailed(pos)
		}
		return fmt.Errorf("fetch message: %w", err)
	}
	if msg == nil {
		return nil // expunged meanwhile
	}
	delete(s.fetchFailures, pos)
	s.served++
	if msg.size >= handBackAfter {
		s.handBack = true
	}
	if msg.size > s.cfg.MaxBytes {
		// The server announced less than it sent: the part read is
		// dropped, the key names the mailbox position.
		key := fmt.Sprintf("oversize.%d.%d", s.uidValidity, uid)
		return s.reject(ctx, c, pub, set, key, rejection{code: codeTooLarge, reason: s.oversize(msg.size)})
	}
	var key string
	if msg.file != nil {
		f, err := os.Open(msg.file.path)
		if err != nil {
			return fmt.Errorf("fetch message: %w", &spoolError{err})
		}
		key = dedupKeyOf(readMessageID(f), msg.file.digest)
		f.Close()
	} else {
		key = dedupKey(headerMessageID(msg.raw), msg.raw)
	}

	rec, err := s.getRecord(ctx, key)
	if err != nil {
		return err
	}
	if rec != nil {
		// Handled before; a restart came between the record and the move.
		dest := s.cfg.ProcessedMailbox
		if rec.Status == statusRejected {
			dest = s.cfg.ErrorMailbox
		}
		return s.move(c, set, dest)
	}

	var l *letter.Letter
	if msg.file != nil {
		l, err = parseSpooled(s.name, msg.file, sp, s.now(), s.cfg.kindFor)
	} else {
		l, err = ParseMessage(s.name, msg.raw, s.now(), s.cfg.kindFor)
	}
	if se := (*spoolError)(nil); errors.As(err, &se) {
		return fmt.Errorf("read message: %w", err) // the disk, not the message: tried again
	}
	if err != nil {
		r := rejection{code: codeSyntax, reason: "the message could not be read"}
		var pe *ParseError
		if errors.As(err, &pe) {
			// Field and Reason are fixed texts; pe.Err may quote the mail.
			r.reason = pe.Field + ": " + pe.Reason
			r.code = parseCode(pe)
		}
		return s.reject(ctx, c, pub, set, key, r)
	}
	if err := pub.Publish(ctx, l); err != nil {
		if class, reason, code := adapters.Classify(err); class == adapters.ClassPermanent {
			// The hub will never store this letter (too large even with
			// its parts apart): retrying it would hold up every mail
			// behind it for ever. The reason holds sizes and settings.
			// The hub counted it when it refused it.
			return s.reject(ctx, c, pub, set, key, rejection{code: code, reason: reason, counted: true})
		}
		return fmt.Errorf("publish: %w", err)
	}
	if err := s.putRecord(ctx, key, record{Status: statusPublished, Letter: l.ID}); err != nil {
		return err
	}
	s.log.Info("email: message published", slog.Any("letter", l))
	return s.move(c, set, s.cfg.ProcessedMailbox)
}

// streamFrom is the message size from which a message is spooled to a
// file and its large attachments decoded into files; a smaller one is
// read into memory.
const streamFrom = 1 << 20

// fetched is one downloaded message: in memory (raw) or spooled (file).
type fetched struct {
	raw  []byte
	file *spooledMessage
	size int64
}

// fetch downloads the message set names, reading the server's literal as
// it arrives: a small one into memory, a large one into a spool file,
// never more than max_bytes (+1, to see it is over). It returns nil when
// the server sent no such message (expunged meanwhile), and an error
// when the download failed or the server sent no body.
func (s *IMAPSource) fetch(c *imapclient.Client, set imap.UIDSet, sp *spool) (*fetched, error) {
	section := &imap.FetchItemBodySection{Peek: true}
	cmd := c.Fetch(set, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{section}})
	var (
		got     *fetched
		readErr error
		seen    bool
	)
	for m := cmd.Next(); m != nil && readErr == nil; m = cmd.Next() {
		seen = true
		for item := m.Next(); item != nil; item = m.Next() {
			bs, ok := item.(imapclient.FetchItemDataBodySection)
			if !ok || bs.Literal == nil || got != nil {
				continue // Next discards what is not read
			}
			got, readErr = s.readLiteral(bs.Literal, sp)
			if readErr != nil {
				break
			}
		}
	}
	// Close drains what is left of the response (a literal read only in
	// part, further messages) and gives the command's own error.
	closeErr := cmd.Close()
	switch {
	case readErr != nil:
		return nil, readErr
	case closeErr != nil:
		return nil, closeErr
	case !seen:
		return nil, nil
	case got == nil:
		return nil, errors.New("the server sent no body")
	}
	return got, nil
}

// readLiteral reads a body literal, at most max_bytes of it.
func (s *IMAPSource) readLiteral(lit imap.LiteralReader, sp *spool) (*fetched, error) {
	size := lit.Size()
	if size > s.cfg.MaxBytes {
		return &fetched{size: size}, nil // not read: refused as oversize
	}
	if size < streamFrom {
		raw, err := io.ReadAll(io.LimitReader(lit, s.cfg.MaxBytes+1))
		if err != nil {
			return nil, err
		}
		return &fetched{raw: raw, size: int64(len(raw))}, nil
	}
	m, err := sp.message(lit, s.cfg.MaxBytes)
	switch {
	case errors.Is(err, errSpoolTooLarge):
		return &fetched{size: m.size}, nil
	case err != nil:
		return nil, err
	}
	return &fetched{file: m, size: m.size}, nil
}

// Codes of the mails the source sets aside, as counted in
// samhub_letters_rejected_total{source,code}.
const (
	codeTooLarge    = "too_large"   // over max_bytes: not downloaded
	codeUnfetchable = "unfetchable" // the server could not send it
	codeSyntax      = "syntax"      // the header or MIME structure is broken
	codeCharset     = "charset"     // a text not valid in its charset
	codeInvalid     = "invalid"     // readable, but no letter (no sender, say)
)

// RejectCodes lists the codes this source reports (adapters.RejectCodes),
// besides the hub's own for a letter it refuses to store.
func (s *IMAPSource) RejectCodes() []string {
	return []string{codeTooLarge, codeUnfetchable, codeSyntax, codeCharset, codeInvalid}
}

// parseCode is the code of a message the reader refused.
func parseCode(pe *ParseError) string {
	switch {
	case strings.Contains(pe.Reason, "charset"):
		return codeCharset
	case pe.Field == "letter" || strings.HasPrefix(pe.Field, "header."):
		return codeInvalid
	}
	return codeSyntax
}

// rejection is why a message goes to the error mailbox.
type rejection struct {
	code    string // bounded: RejectCodes, or the hub's code for a letter it refused
	reason  string // free of personal data
	counted bool   // the hub counted it already (it refused to store the letter)
}

// reject records why a message could not be taken in, moves it to the
// error mailbox, and logs and counts it (the SamhubInputRejected alert
// reads the count). It is never deleted. A message whose rejection was
// recorded before (a move that failed) is not counted again.
func (s *IMAPSource) reject(ctx context.Context, c *imapclient.Client, pub adapters.Publisher, set imap.UIDSet, key string, r rejection) error {
	s.handBack = true
	prev, err := s.getRecord(ctx, key)
	if err != nil {
		return err
	}
	if prev == nil || prev.Status != statusRejected {
		if err := s.putRecord(ctx, key, record{Status: statusRejected, Reason: r.reason}); err != nil {
			return err
		}
		if rep, ok := pub.(adapters.InputReporter); ok && !r.counted {
			rep.Rejected(r.code)
		}
		s.log.Warn("email: message moved to the error mailbox", "code", r.code, "reason", r.reason, "key", key)
	}
	return s.move(c, set, s.cfg.ErrorMailbox)
}

// move uses MOVE, or COPY + \Deleted + EXPUNGE where the server lacks
// MOVE. The fallback is our own: imapclient's sends the three commands at
// once, so a COPY the server refuses (a full mailbox, its storage away)
// was followed by the STORE and EXPUNGE all the same, and the message was
// deleted with no copy anywhere. Here each waits for the one before.
func (s *IMAPSource) move(c *imapclient.Client, set imap.UIDSet, dest string) error {
	if c.Caps().Has(imap.CapMove) {
		if _, err := c.Move(set, dest).Wait(); err != nil {
			return fmt.Errorf("move message: %w", err)
		}
		s.progress = true
		return nil
	}
	if _, err := c.Copy(set, dest).Wait(); err != nil {
		return fmt.Errorf("copy message: %w", err)
	}
	deleted := &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}
	if err := c.Store(set, deleted, nil).Close(); err != nil {
		return fmt.Errorf("flag copied message: %w", err)
	}
	// Without UIDPLUS only a plain EXPUNGE exists, which also removes
	// what a person flagged \Deleted, as any mail client's would.
	var err error
	if c.Caps().Has(imap.CapUIDPlus) {
		err = c.UIDExpunge(set).Close()
	} else {
		err = c.Expunge().Close()
	}
	if err != nil {
		return fmt.Errorf("expunge copied message: %w", err)
	}
	s.progress = true
	return nil
}

var (
	_ adapters.Source      = (*IMAPSource)(nil)
	_ adapters.Readiness   = (*IMAPSource)(nil)
	_ adapters.RejectCodes = (*IMAPSource)(nil)
)
