package mailtest

import (
	"bytes"
	"crypto/tls"
	"net"
	"strconv"
	"sync"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

// IMAPMode says how an IMAP test server offers TLS.
type IMAPMode int

const (
	IMAPImplicit IMAPMode = iota // TLS from the first byte (port 993 style)
	IMAPStartTLS                 // clear text until STARTTLS (port 143 style)
	IMAPNoTLS                    // clear text only: STARTTLS is refused
)

// IMAPOptions configures StartIMAP.
type IMAPOptions struct {
	Mode IMAPMode
	TLS  *tls.Config // overrides the CA's server configuration
	// Username and Password of the one user; defaults "samhub"/"secret".
	Username, Password string
	// NoMove hides the MOVE capability, so clients fall back to COPY.
	NoMove bool
}

// IMAPServer is a running in-memory IMAP server with one user and INBOX.
type IMAPServer struct {
	Host     string
	Port     int
	Addr     string
	Username string
	Password string

	ca   *CA
	user *imapmemserver.User
	srv  *imapserver.Server

	mu        sync.Mutex
	conns     map[*imapserver.Conn]bool
	dropFetch int // close the connection on this many upcoming body fetches
	fetches   int
	logins    int
	faults    map[string][]Fault // by command: what the next ones meet
	broken    map[imap.UID]bool  // body fetches of these close the connection
}

// BreakFetchOf makes every FETCH of uid's content (in any mailbox) close
// the connection, as a server does that crashes on one damaged message.
func (s *IMAPServer) BreakFetchOf(uid imap.UID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.broken == nil {
		s.broken = map[imap.UID]bool{}
	}
	s.broken[uid] = true
}

// Fault is what the server does to a command a test picked (FailNext).
type Fault int

const (
	// Refuse answers NO and does nothing, as a server whose storage is
	// unavailable for a while.
	Refuse Fault = iota + 1
	// Drop closes the connection instead of running the command.
	Drop
	// DropAfter runs the command and closes the connection before the
	// answer: the client cannot tell whether it happened.
	DropAfter
)

// Commands FailNext can pick. FETCH counts only fetches of message
// content, as DropNextBodyFetches does.
const (
	CmdFetch   = "FETCH"
	CmdMove    = "MOVE"
	CmdCopy    = "COPY"
	CmdStore   = "STORE"
	CmdExpunge = "EXPUNGE"
	CmdSearch  = "SEARCH"
	CmdSelect  = "SELECT"
)

// FailNext makes the next commands cmd (one of the Cmd constants) meet
// the faults given, one each, in order.
func (s *IMAPServer) FailNext(cmd string, faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.faults == nil {
		s.faults = map[string][]Fault{}
	}
	s.faults[cmd] = append(s.faults[cmd], faults...)
}

// PendingFaults counts the faults FailNext set that no command met yet.
func (s *IMAPServer) PendingFaults() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, f := range s.faults {
		n += len(f)
	}
	return n
}

// ClearFaults forgets the faults no command met.
func (s *IMAPServer) ClearFaults() {
	s.mu.Lock()
	s.faults = nil
	s.mu.Unlock()
}

// Client is a logged-in connection for a test acting as a person using the
// mailbox; the test closes it.
func (s *IMAPServer) Client(t testing.TB) *imapclient.Client {
	t.Helper()
	c, err := s.dialForTest(&imapclient.Options{TLSConfig: &tls.Config{RootCAs: s.ca.Pool, ServerName: "127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(s.Username, s.Password).Wait(); err != nil {
		c.Close()
		t.Fatal(err)
	}
	return c
}

// StartIMAP starts a server on 127.0.0.1 with a random port.
func StartIMAP(t testing.TB, ca *CA, opts IMAPOptions) *IMAPServer {
	t.Helper()
	if opts.Username == "" {
		opts.Username, opts.Password = "samhub", "secret"
	}
	s := &IMAPServer{ca: ca, Username: opts.Username, Password: opts.Password, conns: map[*imapserver.Conn]bool{}}
	mem := imapmemserver.New()
	s.user = imapmemserver.NewUser(opts.Username, opts.Password)
	if err := s.user.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	mem.AddUser(s.user)

	tlsCfg := opts.TLS
	if tlsCfg == nil {
		tlsCfg = ca.ServerTLS()
	}
	caps := imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapUIDPlus: {}, imap.CapNamespace: {}}
	if !opts.NoMove {
		caps[imap.CapMove] = struct{}{}
	}
	srvOpts := &imapserver.Options{
		Caps:   caps,
		Logger: quietLogger{},
		NewSession: func(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			s.mu.Lock()
			s.conns[c] = true
			s.mu.Unlock()
			inner := mem.NewSession().(imapserver.SessionIMAP4rev2)
			hs := &hookSession{SessionIMAP4rev2: inner, srv: s, conn: c}
			if opts.NoMove {
				return noMoveSession{hs}, nil, nil
			}
			return hs, nil, nil
		},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	switch opts.Mode {
	case IMAPImplicit:
		srvOpts.TLSConfig = tlsCfg
		ln = tls.NewListener(ln, tlsCfg)
	case IMAPStartTLS:
		srvOpts.TLSConfig = tlsCfg
	case IMAPNoTLS:
		srvOpts.InsecureAuth = true
	}
	s.srv = imapserver.New(srvOpts)
	s.Addr = ln.Addr().String()
	host, port, _ := net.SplitHostPort(s.Addr)
	s.Host = host
	s.Port, _ = strconv.Atoi(port)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = s.srv.Close()
		_ = ln.Close()
		<-done
	})
	return s
}

// Append stores a message in mailbox, as a mail server delivering it would.
func (s *IMAPServer) Append(t testing.TB, mailbox string, raw []byte) {
	t.Helper()
	if _, err := s.user.Append(mailbox, bytes.NewReader(raw), &imap.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
}

// Recreate deletes mailbox if it exists and creates it again, empty, with
// a new UIDVALIDITY, as a server does when a mailbox is restored or
// rebuilt; clients that kept it selected are disconnected.
func (s *IMAPServer) Recreate(t testing.TB, mailbox string) {
	t.Helper()
	s.DropConnections()
	if _, err := s.user.Status(mailbox, &imap.StatusOptions{}); err == nil {
		if err := s.user.Delete(mailbox); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.user.Create(mailbox, nil); err != nil {
		t.Fatal(err)
	}
}

// Count returns the number of messages in mailbox (0 if it does not exist),
// counting only those not flagged \Deleted.
func (s *IMAPServer) Count(t testing.TB, mailbox string) int {
	t.Helper()
	st, err := s.user.Status(mailbox, &imap.StatusOptions{NumMessages: true, NumDeleted: true})
	if err != nil {
		return 0
	}
	n := int(*st.NumMessages)
	if st.NumDeleted != nil {
		n -= int(*st.NumDeleted)
	}
	return n
}

// Messages returns the raw bytes of every message in mailbox, read through
// a real client connection.
func (s *IMAPServer) Messages(t testing.TB, mailbox string) [][]byte {
	t.Helper()
	opts := &imapclient.Options{TLSConfig: &tls.Config{RootCAs: s.ca.Pool, ServerName: "127.0.0.1"}}
	var (
		c   *imapclient.Client
		err error
	)
	if s.srv != nil {
		c, err = s.dialForTest(opts)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(s.Username, s.Password).Wait(); err != nil {
		t.Fatal(err)
	}
	sel, err := c.Select(mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if sel.NumMessages == 0 {
		return nil
	}
	section := &imap.FetchItemBodySection{Peek: true}
	msgs, err := c.Fetch(imap.SeqSetNum(seqRange(sel.NumMessages)...), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{section}}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]byte, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, m.FindBodySection(section))
	}
	return out
}

func seqRange(n uint32) []uint32 {
	out := make([]uint32, n)
	for i := range out {
		out[i] = uint32(i + 1)
	}
	return out
}

// dialForTest tries implicit TLS, then STARTTLS, then clear text, so
// Messages works whatever mode the server runs in.
func (s *IMAPServer) dialForTest(opts *imapclient.Options) (*imapclient.Client, error) {
	if c, err := imapclient.DialTLS(s.Addr, opts); err == nil {
		return c, nil
	}
	if c, err := imapclient.DialStartTLS(s.Addr, opts); err == nil {
		return c, nil
	}
	return imapclient.DialInsecure(s.Addr, opts)
}

// DropNextBodyFetches makes the next n FETCH commands that ask for message
// content close the connection instead of answering, like a server crash
// or a network cut in the middle of a download.
func (s *IMAPServer) DropNextBodyFetches(n int) {
	s.mu.Lock()
	s.dropFetch = n
	s.mu.Unlock()
}

// BodyFetches counts FETCH commands that asked for message content.
func (s *IMAPServer) BodyFetches() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetches
}

// Status reports on mailbox straight from the store.
func (s *IMAPServer) Status(mailbox string) (*imap.StatusData, error) {
	return s.user.Status(mailbox, &imap.StatusOptions{NumMessages: true, NumDeleted: true, UIDValidity: true})
}

// Logins counts successful and failed LOGIN commands.
func (s *IMAPServer) Logins() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logins
}

// DropConnections closes every client connection from the server side.
func (s *IMAPServer) DropConnections() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		_ = c.NetConn().Close()
		delete(s.conns, c)
	}
}

type hookSession struct {
	imapserver.SessionIMAP4rev2
	srv  *IMAPServer
	conn *imapserver.Conn
}

func (h *hookSession) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, options *imap.FetchOptions) error {
	if len(options.BodySection) > 0 || len(options.BinarySection) > 0 {
		h.srv.mu.Lock()
		h.srv.fetches++
		drop := h.srv.dropFetch > 0
		if drop {
			h.srv.dropFetch--
		}
		if uids, ok := numSet.(imap.UIDSet); ok {
			for uid := range h.srv.broken {
				drop = drop || uids.Contains(uid)
			}
		}
		h.srv.mu.Unlock()
		if drop {
			_ = h.conn.NetConn().Close()
			return &imap.Error{Type: imap.StatusResponseTypeBye, Text: "connection dropped by test"}
		}
		return h.run(CmdFetch, func() error { return h.SessionIMAP4rev2.Fetch(w, numSet, options) })
	}
	return h.SessionIMAP4rev2.Fetch(w, numSet, options)
}

// fault takes the next fault for cmd, if any.
func (h *hookSession) fault(cmd string) Fault {
	h.srv.mu.Lock()
	defer h.srv.mu.Unlock()
	fs := h.srv.faults[cmd]
	if len(fs) == 0 {
		return 0
	}
	h.srv.faults[cmd] = fs[1:]
	return fs[0]
}

// run runs do under the next fault for cmd.
func (h *hookSession) run(cmd string, do func() error) error {
	switch h.fault(cmd) {
	case Refuse:
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable, Text: "temporarily unavailable (test)"}
	case Drop:
		_ = h.conn.NetConn().Close()
		return &imap.Error{Type: imap.StatusResponseTypeBye, Text: "connection dropped by test"}
	case DropAfter:
		err := do()
		_ = h.conn.NetConn().Close()
		if err != nil {
			return err
		}
		return &imap.Error{Type: imap.StatusResponseTypeBye, Text: "connection dropped by test"}
	}
	return do()
}

func (h *hookSession) Move(w *imapserver.MoveWriter, numSet imap.NumSet, dest string) error {
	return h.run(CmdMove, func() error { return h.SessionIMAP4rev2.Move(w, numSet, dest) })
}

func (h *hookSession) Copy(numSet imap.NumSet, dest string) (*imap.CopyData, error) {
	var data *imap.CopyData
	err := h.run(CmdCopy, func() (err error) {
		data, err = h.SessionIMAP4rev2.Copy(numSet, dest)
		return err
	})
	return data, err
}

func (h *hookSession) Store(w *imapserver.FetchWriter, numSet imap.NumSet, flags *imap.StoreFlags, options *imap.StoreOptions) error {
	return h.run(CmdStore, func() error { return h.SessionIMAP4rev2.Store(w, numSet, flags, options) })
}

func (h *hookSession) Expunge(w *imapserver.ExpungeWriter, uids *imap.UIDSet) error {
	return h.run(CmdExpunge, func() error { return h.SessionIMAP4rev2.Expunge(w, uids) })
}

func (h *hookSession) Search(kind imapserver.NumKind, criteria *imap.SearchCriteria, options *imap.SearchOptions) (*imap.SearchData, error) {
	var data *imap.SearchData
	err := h.run(CmdSearch, func() (err error) {
		data, err = h.SessionIMAP4rev2.Search(kind, criteria, options)
		return err
	})
	return data, err
}

func (h *hookSession) Select(mailbox string, options *imap.SelectOptions) (*imap.SelectData, error) {
	var data *imap.SelectData
	err := h.run(CmdSelect, func() (err error) {
		data, err = h.SessionIMAP4rev2.Select(mailbox, options)
		return err
	})
	return data, err
}

func (h *hookSession) Login(username, password string) error {
	h.srv.mu.Lock()
	h.srv.logins++
	h.srv.mu.Unlock()
	return h.SessionIMAP4rev2.Login(username, password)
}

// Idle first reports what changed since the client's last command, as
// mail servers do when IDLE starts (Dovecot, for one). imapmemserver only
// reports changes made after IDLE began, so a message delivered between
// the client's last command and its IDLE waited for the next change: the
// IDLE test then timed out about once in 200 runs under load.
func (h *hookSession) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	if err := h.SessionIMAP4rev2.Poll(w, true); err != nil {
		return err
	}
	return h.SessionIMAP4rev2.Idle(w, stop)
}

func (h *hookSession) Close() error {
	h.srv.mu.Lock()
	delete(h.srv.conns, h.conn)
	h.srv.mu.Unlock()
	return h.SessionIMAP4rev2.Close()
}

// noMoveSession hides Move so the server cannot advertise or run MOVE.
type noMoveSession struct{ h *hookSession }

var _ imapserver.SessionNamespace = noMoveSession{}

func (n noMoveSession) Namespace() (*imap.NamespaceData, error) { return n.h.Namespace() }

func (n noMoveSession) Close() error                                 { return n.h.Close() }
func (n noMoveSession) Login(u, p string) error                      { return n.h.Login(u, p) }
func (n noMoveSession) Create(m string, o *imap.CreateOptions) error { return n.h.Create(m, o) }
func (n noMoveSession) Delete(m string) error                        { return n.h.Delete(m) }
func (n noMoveSession) Rename(m, nn string, o *imap.RenameOptions) error {
	return n.h.Rename(m, nn, o)
}
func (n noMoveSession) Subscribe(m string) error   { return n.h.Subscribe(m) }
func (n noMoveSession) Unsubscribe(m string) error { return n.h.Unsubscribe(m) }
func (n noMoveSession) Select(m string, o *imap.SelectOptions) (*imap.SelectData, error) {
	return n.h.Select(m, o)
}
func (n noMoveSession) List(w *imapserver.ListWriter, ref string, p []string, o *imap.ListOptions) error {
	return n.h.List(w, ref, p, o)
}
func (n noMoveSession) Status(m string, o *imap.StatusOptions) (*imap.StatusData, error) {
	return n.h.Status(m, o)
}
func (n noMoveSession) Append(m string, r imap.LiteralReader, o *imap.AppendOptions) (*imap.AppendData, error) {
	return n.h.Append(m, r, o)
}
func (n noMoveSession) Poll(w *imapserver.UpdateWriter, allowExpunge bool) error {
	return n.h.Poll(w, allowExpunge)
}
func (n noMoveSession) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	return n.h.Idle(w, stop)
}
func (n noMoveSession) Unselect() error { return n.h.Unselect() }
func (n noMoveSession) Expunge(w *imapserver.ExpungeWriter, uids *imap.UIDSet) error {
	return n.h.Expunge(w, uids)
}
func (n noMoveSession) Search(k imapserver.NumKind, c *imap.SearchCriteria, o *imap.SearchOptions) (*imap.SearchData, error) {
	return n.h.Search(k, c, o)
}
func (n noMoveSession) Fetch(w *imapserver.FetchWriter, s imap.NumSet, o *imap.FetchOptions) error {
	return n.h.Fetch(w, s, o)
}
func (n noMoveSession) Store(w *imapserver.FetchWriter, s imap.NumSet, f *imap.StoreFlags, o *imap.StoreOptions) error {
	return n.h.Store(w, s, f, o)
}
func (n noMoveSession) Copy(s imap.NumSet, dest string) (*imap.CopyData, error) {
	return n.h.Copy(s, dest)
}
