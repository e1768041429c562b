package email

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/adapters/email/mailtest"
	"github.com/samhub/samhub/internal/logbuf"
	"github.com/samhub/samhub/pipeline/letter"
)

// largeMessage is a mail with a short text and an attachment of n random
// bytes in base64, and the attachment's SHA-256.
func largeMessage(n int, seed uint64) (raw []byte, digest string) {
	att := make([]byte, n)
	r := rand.New(rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}))
	for i := range att {
		att[i] = byte(r.Uint32())
	}
	sum := sha256.Sum256(att)
	var b bytes.Buffer
	b.Grow(n/3*4 + n/57*2 + 1024)
	fmt.Fprintf(&b, "From: Læge Hansen <laege@klinik.example.dk>\r\nTo: samraad@kommune.example.dk\r\nSubject: Udredning %d\r\n", seed)
	fmt.Fprintf(&b, "Message-ID: <large-%d@klinik.example.dk>\r\nDate: Mon, 02 Jun 2025 09:00:00 +0200\r\nMIME-Version: 1.0\r\n", seed)
	b.WriteString("Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n")
	b.WriteString("--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSe vedhæftede udredning.\r\n")
	b.WriteString("--b1\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"udredning.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	enc := make([]byte, base64.StdEncoding.EncodedLen(57))
	for i := 0; i < n; i += 57 {
		chunk := att[i:min(i+57, n)]
		base64.StdEncoding.Encode(enc, chunk)
		b.Write(enc[:base64.StdEncoding.EncodedLen(len(chunk))])
		b.WriteString("\r\n")
	}
	b.WriteString("--b1--\r\n")
	return b.Bytes(), hex.EncodeToString(sum[:])
}

// readingPublisher reads every part of a letter while Publish runs, as the
// pipeline's ingest does when it stores parts in the blob store, and keeps
// what it read: each part's digest and length, and the spool files there
// were meanwhile.
type readingPublisher struct {
	spoolDir string
	mu       sync.Mutex
	got      []readLetter
}

type readLetter struct {
	id             string
	text           string
	originalSHA    string
	originalLen    int64
	streamedOrig   bool
	attachments    []readAttachment
	spoolFilesSeen int
}

type readAttachment struct {
	name, sha string
	n         int64
	streamed  bool
	claimed   string // the digest the letter claims
}

func (p *readingPublisher) Publish(ctx context.Context, l *letter.Letter) error {
	rl := readLetter{id: l.ID, text: l.Text, streamedOrig: l.Original.Streamed()}
	var err error
	if rl.originalSHA, rl.originalLen, err = digestOf(ctx, l.Original.Open); err != nil {
		return err
	}
	if rl.originalSHA != l.Original.SHA256 || rl.originalLen != l.Original.Len() {
		return fmt.Errorf("original: read %d bytes %s, letter says %d %s", rl.originalLen, rl.originalSHA, l.Original.Len(), l.Original.SHA256)
	}
	for _, a := range l.Attachments {
		sum, n, err := digestOf(ctx, a.Open)
		if err != nil {
			return err
		}
		rl.attachments = append(rl.attachments, readAttachment{name: a.Name, sha: sum, n: n, streamed: a.Streamed(), claimed: a.SHA256})
	}
	if entries, err := os.ReadDir(p.spoolDir); err == nil {
		rl.spoolFilesSeen = len(entries)
	}
	p.mu.Lock()
	p.got = append(p.got, rl)
	p.mu.Unlock()
	return nil
}

func (p *readingPublisher) letters() []readLetter {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]readLetter(nil), p.got...)
}

func digestOf(ctx context.Context, open letter.Opener) (string, int64, error) {
	r, err := open(ctx)
	if err != nil {
		return "", 0, err
	}
	defer r.Close()
	h := sha256.New()
	n, err := io.Copy(h, r)
	return hex.EncodeToString(h.Sum(nil)), n, err
}

func largeSource(t testing.TB, srv *mailtest.IMAPServer, ca *mailtest.CA, dataDir string, maxBytes int64) *IMAPSource {
	t.Helper()
	cfg := imapCfg(srv, ca, "implicit")
	cfg["max_bytes"] = maxBytes
	deps := testDeps("mail-in", newMemState())
	deps.DataDir = dataDir
	s, err := NewIMAPSource(deps, cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.minBackoff = 10 * time.Millisecond
	return s
}

func spoolFiles(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// Issue 21: a mail with a 20 MB attachment is spooled to a file as it is
// downloaded, its attachment decoded into a file of its own, and the
// letter's parts open from the files with the right digests; the files
// are gone once the publish has returned.
func TestIMAPLargeAttachmentIsStreamedThroughSpoolFiles(t *testing.T) {
	ca := mailtest.NewCA(t)
	srv := mailtest.StartIMAP(t, ca, mailtest.IMAPOptions{Mode: mailtest.IMAPImplicit})
	raw, attSHA := largeMessage(20<<20, 1)
	rawSHA := letter.Digest(raw)
	srv.Append(t, inbox, raw)
	small := readFixture(t, "danish-attachment.eml")
	srv.Append(t, inbox, small)
	rawLen := int64(len(raw))
	raw = nil

	dataDir := t.TempDir()
	spoolDir := filepath.Join(dataDir, "spool")
	pub := &readingPublisher{spoolDir: spoolDir}
	start(t, largeSource(t, srv, ca, dataDir, 64<<20), pub)
	waitFor(t, "both messages processed", func() bool { return srv.Count(t, processed) == 2 })

	got := pub.letters()
	if len(got) != 2 {
		t.Fatalf("published %d letters, want 2", len(got))
	}
	large := got[0]
	if !large.streamedOrig || large.originalSHA != rawSHA || large.originalLen != rawLen {
		t.Errorf("original: streamed %v, %d bytes, digest match %v; want streamed, %d bytes, the message's digest",
			large.streamedOrig, large.originalLen, large.originalSHA == rawSHA, rawLen)
	}
	if len(large.attachments) != 1 {
		t.Fatalf("large letter has %d attachments, want 1", len(large.attachments))
	}
	a := large.attachments[0]
	if a.name != "udredning.pdf" || !a.streamed || a.n != 20<<20 || a.sha != attSHA || a.claimed != attSHA {
		t.Errorf("attachment %q streamed %v, %d bytes, digest read ok %v, claimed ok %v; want udredning.pdf streamed, %d bytes, right digest",
			a.name, a.streamed, a.n, a.sha == attSHA, a.claimed == attSHA, 20<<20)
	}
	if large.text != "Se vedhæftede udredning." {
		t.Errorf("text = %q", large.text)
	}
	if large.spoolFilesSeen != 2 {
		t.Errorf("%d spool files during the publish, want 2 (the message and its attachment)", large.spoolFilesSeen)
	}
	// The small message stays in memory: no spool file.
	if got[1].streamedOrig || got[1].spoolFilesSeen != 0 {
		t.Errorf("small message: streamed original %v, %d spool files; want in memory", got[1].streamedOrig, got[1].spoolFilesSeen)
	}
	if left := spoolFiles(t, spoolDir); len(left) != 0 {
		t.Errorf("spool files left after the publish: %v", left)
	}
}

// The spool files are removed when the publish fails too, and the message
// stays in the inbox for the next try.
func TestIMAPLargeMessageSpoolRemovedWhenPublishFails(t *testing.T) {
	ca := mailtest.NewCA(t)
	srv := mailtest.StartIMAP(t, ca, mailtest.IMAPOptions{Mode: mailtest.IMAPImplicit})
	raw, _ := largeMessage(2<<20, 2)
	srv.Append(t, inbox, raw)
	dataDir := t.TempDir()
	spoolDir := filepath.Join(dataDir, "spool")
	pub := newRecPublisher()
	pub.setFail(adapters.Retryable("broker_down", "the broker is down", nil))
	var sawSpool atomic.Bool
	src := largeSource(t, srv, ca, dataDir, 64<<20)
	stop := start(t, src, &hookPublisher{inner: pub, before: func() {
		if entries, err := os.ReadDir(spoolDir); err == nil && len(entries) == 2 {
			sawSpool.Store(true)
		}
	}})
	waitFor(t, "publish tried twice", func() bool { return pub.callCount() >= 2 })
	_ = stop()
	if !sawSpool.Load() {
		t.Error("the message and its attachment were not spooled during the publish")
	}
	if left := spoolFiles(t, spoolDir); len(left) != 0 {
		t.Errorf("spool files left after failed publishes: %v", left)
	}
	if srv.Count(t, inbox) != 1 || srv.Count(t, processed) != 0 {
		t.Error("the message left the inbox although its publish failed")
	}
}

type hookPublisher struct {
	inner  adapters.Publisher
	before func()
}

func (h *hookPublisher) Publish(ctx context.Context, l *letter.Letter) error {
	h.before()
	return h.inner.Publish(ctx, l)
}

// A start removes the spool files a killed process left, and nothing else.
func TestIMAPStartRemovesLeftoverSpoolFiles(t *testing.T) {
	ca := mailtest.NewCA(t)
	srv := mailtest.StartIMAP(t, ca, mailtest.IMAPOptions{Mode: mailtest.IMAPImplicit})
	dataDir := t.TempDir()
	spoolDir := filepath.Join(dataDir, "spool")
	if err := os.MkdirAll(spoolDir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"spool-msg-123", "spool-part-456", "keep.txt"} {
		if err := os.WriteFile(filepath.Join(spoolDir, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	src := largeSource(t, srv, ca, dataDir, 64<<20)
	start(t, src, newRecPublisher())
	waitFor(t, "source connected", func() bool { return src.Ready(context.Background()) == nil })
	if left := spoolFiles(t, spoolDir); len(left) != 1 || left[0] != "keep.txt" {
		t.Errorf("spool dir after start = %v, want only keep.txt", left)
	}
}

// A large message over max_bytes is refused unread, naming the setting.
func TestIMAPLargeOversizeNamesMaxBytes(t *testing.T) {
	ca := mailtest.NewCA(t)
	srv := mailtest.StartIMAP(t, ca, mailtest.IMAPOptions{Mode: mailtest.IMAPImplicit})
	raw, _ := largeMessage(3<<20, 3)
	srv.Append(t, inbox, raw)
	dataDir := t.TempDir()
	state := newMemState()
	cfg := imapCfg(srv, ca, "implicit")
	cfg["max_bytes"] = 2 << 20
	deps := testDeps("mail-in", state)
	deps.DataDir = dataDir
	src, err := NewIMAPSource(deps, cfg)
	if err != nil {
		t.Fatal(err)
	}
	pub := newRecPublisher()
	start(t, src, pub)
	waitFor(t, "oversize message moved", func() bool { return srv.Count(t, errorBox) == 1 })
	if pub.callCount() != 0 {
		t.Error("an oversize message was published")
	}
	want := fmt.Sprintf("the message is %d bytes, more than adapters.mail-in.max_bytes (%d)", len(raw), 2<<20)
	if r := rejectReasons(t, state); len(r) != 1 || r[0] != want {
		t.Errorf("reasons = %q, want %q", r, want)
	}
	if f := srv.BodyFetches(); f != 0 {
		t.Errorf("the oversize body was fetched %d times, want 0", f)
	}
	if left := spoolFiles(t, filepath.Join(dataDir, "spool")); len(left) != 0 {
		t.Errorf("spool files: %v", left)
	}
}

// The spooled reader and the in-memory one give the same letter: id,
// text, original digest and attachment digests.
func TestParseSpooledMatchesParseMessage(t *testing.T) {
	raw, attSHA := largeMessage(300<<10, 4)
	mem, err := ParseMessage("in", raw, received, nil)
	if err != nil {
		t.Fatal(err)
	}
	sp := newSpool(t.TempDir())
	defer sp.remove()
	m, err := sp.message(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if m.boundaries != countBoundaries(raw) || m.boundaries != 1 {
		t.Errorf("boundaries counted while spooling = %d, want %d", m.boundaries, countBoundaries(raw))
	}
	fl, err := parseSpooled("in", m, sp, received, nil)
	if err != nil {
		t.Fatal(err)
	}
	if fl.ID != mem.ID || fl.Text != mem.Text || fl.Subject != mem.Subject || fl.Original.SHA256 != mem.Original.SHA256 || fl.Original.Len() != int64(len(raw)) {
		t.Errorf("spooled letter differs from the in-memory one: id %v text %v subject %v original %v",
			fl.ID == mem.ID, fl.Text == mem.Text, fl.Subject == mem.Subject, fl.Original.SHA256 == mem.Original.SHA256)
	}
	if len(fl.Attachments) != 1 || !fl.Attachments[0].Streamed() || fl.Attachments[0].SHA256 != attSHA || mem.Attachments[0].SHA256 != attSHA {
		t.Fatalf("attachments: %d, want one streamed with the right digest", len(fl.Attachments))
	}
	b, err := letter.ReadAll(context.Background(), fl.Attachments[0].Open)
	if err != nil || !bytes.Equal(b, mem.Attachments[0].Data) {
		t.Errorf("the spooled attachment does not read back as the decoded one (err %v)", err)
	}
	if len(sp.files) != 2 {
		t.Errorf("%d spool files, want 2", len(sp.files))
	}
	// Over the limit: the spool says so, with the bytes read.
	if _, err := newSpool(t.TempDir()).message(bytes.NewReader(raw), 1000); err != errSpoolTooLarge {
		t.Errorf("spooling past max: err = %v, want errSpoolTooLarge", err)
	}
}

func TestBoundaryCounterAcrossWrites(t *testing.T) {
	text := []byte("x BOUNDARY=a\r\n boundary=b Boundary= no-bound ary= bOuNdArY=")
	want := 4
	for split := 1; split < len(text); split++ {
		var c boundaryCounter
		for i := 0; i < len(text); i += split {
			_, _ = c.Write(text[i:min(i+split, len(text))])
		}
		if c.n != want {
			t.Fatalf("writes of %d bytes: counted %d, want %d", split, c.n, want)
		}
	}
	if n := bytes.Count(bytes.ToLower(text), boundaryWord); n != want || countBoundaries(text) != want {
		t.Fatalf("bytes.Count = %d, countBoundaries = %d, want %d", n, countBoundaries(text), want)
	}
}

// heapSampler records the peak of live heap objects while it runs, read
// from runtime/metrics (no stop-the-world) every millisecond. A sample can
// miss a short peak; the total allocated is reported beside it as an upper
// bound.
type heapSampler struct {
	stop chan struct{}
	done chan struct{}
	peak atomic.Uint64
}

func startHeapSampler() *heapSampler {
	s := &heapSampler{stop: make(chan struct{}), done: make(chan struct{})}
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	go func() {
		defer close(s.done)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(sample)
			if v := sample[0].Value.Uint64(); v > s.peak.Load() {
				s.peak.Store(v)
			}
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *heapSampler) Stop() uint64 {
	close(s.stop)
	<-s.done
	return s.peak.Load()
}

func heapObjects() uint64 {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(sample)
	return sample[0].Value.Uint64()
}

// BenchmarkIMAPLargeAttachment fetches, spools, parses and publishes (the
// publisher reading every part, as the ingest does) mails with a 20 MB
// attachment, and reports the peak growth of the live heap against the
// attachment's size (peak-heap-growth/attachment, sampled every
// millisecond, so a short peak may be missed) and the bytes allocated per
// mail against it (allocated/attachment, exact, and an upper bound of the
// growth). The IMAP server runs in a child process (this test binary,
// TestHelperIMAPServerProcess), so its copy of the mailbox and of each
// response is not counted.
//
//	go test ./adapters/email -run '^$' -bench IMAPLargeAttachment -benchtime 3x
func BenchmarkIMAPLargeAttachment(b *testing.B) {
	const attSize = 20 << 20
	srv := startServerProcess(b, attSize, b.N)
	dataDir := b.TempDir()
	pub := &readingPublisher{spoolDir: filepath.Join(dataDir, "spool")}
	cfg := map[string]any{"host": srv.Host, "port": srv.Port, "tls": "implicit", "ca_file": srv.CA,
		"username": srv.Username, "password": srv.Password, "poll_interval": "100ms", "timeout": "30s", "max_bytes": 64 << 20}
	deps := testDeps("mail-in", newMemState())
	deps.DataDir = dataDir
	src, err := NewIMAPSource(deps, cfg)
	if err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	runtime.GC()
	base := heapObjects()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	allocBase := ms.TotalAlloc
	sampler := startHeapSampler()
	b.ResetTimer()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, pub) }()
	for deadline := time.Now().Add(5 * time.Minute); len(pub.letters()) < b.N; {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d large messages published", len(pub.letters()), b.N)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done

	b.StopTimer()
	peak := sampler.Stop()
	runtime.ReadMemStats(&ms)
	for i, l := range pub.letters() {
		if len(l.attachments) != 1 || l.attachments[0].sha != srv.Digests[i] || l.attachments[0].n != attSize {
			b.Fatalf("message %d: the attachment did not arrive with its digest", i)
		}
	}
	growth := float64(0)
	if peak > base {
		growth = float64(peak - base)
	}
	b.ReportMetric(growth/attSize, "peak-heap-growth/attachment")
	b.ReportMetric(float64(ms.TotalAlloc-allocBase)/float64(b.N)/attSize, "allocated/attachment")
	if growth >= attSize {
		b.Errorf("peak heap growth is %.2f× the attachment; the message should not be held whole", growth/attSize)
	}
}

// serverProcess is an IMAP server in a child process.
type serverProcess struct {
	Host, Username, Password, CA string
	Port                         int
	Digests                      []string // of each message's attachment, in mailbox order
}

const serverProcessEnv = "SAMHUB_EMAIL_TEST_IMAP_SERVER"

// startServerProcess runs TestHelperIMAPServerProcess in a child process
// with n messages of an attachment of size bytes in its INBOX; it stops
// when b ends.
func startServerProcess(b *testing.B, size, n int) *serverProcess {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperIMAPServerProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d,%d", serverProcessEnv, size, n))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	})
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), "server "); ok {
			var p serverProcess
			if err := json.Unmarshal([]byte(line), &p); err != nil {
				b.Fatal(err)
			}
			go func() { _, _ = io.Copy(io.Discard, stdout) }()
			return &p
		}
	}
	b.Fatalf("the IMAP server process did not start: %v", sc.Err())
	return nil
}

// TestHelperIMAPServerProcess is not a test: it is the child process of
// startServerProcess, and returns at once unless started as one.
func TestHelperIMAPServerProcess(t *testing.T) {
	spec := os.Getenv(serverProcessEnv)
	if spec == "" {
		return
	}
	var size, n int
	if _, err := fmt.Sscanf(spec, "%d,%d", &size, &n); err != nil {
		t.Fatal(err)
	}
	ca := mailtest.NewCA(t)
	srv := mailtest.StartIMAP(t, ca, mailtest.IMAPOptions{Mode: mailtest.IMAPImplicit})
	p := serverProcess{Host: srv.Host, Port: srv.Port, Username: srv.Username, Password: srv.Password, CA: ca.PEMFile}
	for i := range n {
		raw, sum := largeMessage(size, uint64(100+i))
		srv.Append(t, inbox, raw)
		p.Digests = append(p.Digests, sum)
	}
	line, _ := json.Marshal(p)
	fmt.Printf("server %s\n", line)
	_, _ = io.Copy(io.Discard, os.Stdin) // until the benchmark ends
}

// A spool that cannot be written (disk full, directory gone) is the
// disk's fault, not the message's: the message stays in the inbox however
// often it fails, is never counted as undownloadable and set aside, and
// goes through once the spool works again.
func TestIMAPSpoolFailureKeepsMessageInInbox(t *testing.T) {
	ca := mailtest.NewCA(t)
	srv := mailtest.StartIMAP(t, ca, mailtest.IMAPOptions{Mode: mailtest.IMAPImplicit})
	raw, attSHA := largeMessage(2<<20, 5)
	dataDir := t.TempDir()
	spoolDir := filepath.Join(dataDir, "spool")
	logs := &logbuf.Buffer{}
	cfg := imapCfg(srv, ca, "implicit")
	cfg["max_bytes"] = 64 << 20
	cfg["max_backoff"] = "100ms"
	deps := testDeps("mail-in", newMemState())
	deps.DataDir = dataDir
	deps.Logger = slog.New(slog.NewTextHandler(logs, nil))
	src, err := NewIMAPSource(deps, cfg)
	if err != nil {
		t.Fatal(err)
	}
	src.minBackoff = 10 * time.Millisecond
	pub := &readingPublisher{spoolDir: spoolDir}
	start(t, src, pub)
	waitFor(t, "source connected", func() bool { return src.Ready(context.Background()) == nil })
	// The spool directory was made at start; a file in its place makes
	// every spool write fail.
	if err := os.Remove(spoolDir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(spoolDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	srv.Append(t, inbox, raw)
	waitFor(t, "more failed tries than a message may fail to download", func() bool {
		n := 0
		for _, line := range strings.Split(logs.String(), "\n") {
			if strings.Contains(line, "session ended") && strings.Contains(line, "fetch message: spool:") {
				n++
			}
		}
		return n > maxFetchAttempts+1 || srv.Count(t, errorBox) > 0
	})
	if srv.Count(t, errorBox) != 0 || srv.Count(t, inbox) != 1 || len(pub.letters()) != 0 {
		t.Fatalf("after spool failures: %d in the error mailbox, %d in the inbox, %d published; want 0, 1, 0",
			srv.Count(t, errorBox), srv.Count(t, inbox), len(pub.letters()))
	}
	if err := os.Remove(spoolDir); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(spoolDir, 0o700); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the message processed once the spool works", func() bool { return srv.Count(t, processed) == 1 })
	if got := pub.letters(); len(got) != 1 || got[0].attachments[0].sha != attSHA {
		t.Error("the attachment did not arrive with its digest")
	}
}
