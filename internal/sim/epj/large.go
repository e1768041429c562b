package epjsim

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sync"
)

// DefaultMaxBody caps a request body, as a gateway's request limit does:
// larger bodies are answered 413 (HTTP Content Too Large, OperationOutcome
// too-long) without being stored. 64 MiB; FHIR servers set their own
// (HAPI FHIR leaves it to the servlet container, cloud FHIR services cap
// a request at a few MB), so a region that takes large attachments raises
// it, and simulators.epj.max_upload with it.
const DefaultMaxBody = 64 << 20

// liftMin is the length from which an attachment's data is kept in a file
// of its own under blobs/ rather than in its resource: the simulator holds
// its resources in memory, and a 100 MB attachment would make it hold
// hundreds of megabytes.
const liftMin = 256 << 10

const blobsDir = "blobs"

// blobRef is what stands for a data value kept in a file: "simblob:" and
// the SHA-256 of its base64 text.
var blobRef = regexp.MustCompile(`"data":"simblob:([0-9a-f]{64})"`)

// liftData copies the JSON in r to out, writing every "data" string of at
// least liftMin bytes to the blobs directory and "simblob:<sha256>" in its
// place. It reads r once, holding at most liftMin of a value.
func (s *Server) liftData(r io.Reader, out *bytes.Buffer) error {
	br := bufio.NewReaderSize(r, 64<<10)
	return eachData(br, func(b []byte) { out.Write(b) }, func() error { return s.liftValue(br, out) })
}

// eachData reads the JSON in br and calls value at each "data":"…" string,
// with br at the value's first byte; value reads up to and including its
// closing quote. echo, when not nil, gets every byte read outside values.
// The hub's encoder writes "data":"…" without spaces or escapes.
//
// It reads from quote to quote (ReadSlice), not byte by byte: the key is
// then three pieces in a row, one ending in a quote, `data"` and `:"`.
// Byte by byte it was a few per cent of the bench's CPU.
func eachData(br *bufio.Reader, echo func([]byte), value func() error) error {
	quoted := false // the last piece ended in a quote
	named := false  // … and the one before was the opening quote of "data"
	for {
		piece, err := br.ReadSlice('"')
		if echo != nil && len(piece) > 0 {
			echo(piece)
		}
		switch {
		case errors.Is(err, io.EOF):
			return nil
		case errors.Is(err, bufio.ErrBufferFull):
			quoted, named = false, false
			continue
		case err != nil:
			return err
		}
		switch {
		case named && string(piece) == `:"`:
			quoted, named = false, false
			if err := value(); err != nil {
				return err
			}
		case quoted && string(piece) == `data"`:
			named = true
		default:
			quoted, named = true, false
		}
	}
}

// liftValue reads one string value up to and including its closing quote.
// A data value is base64, which has neither quotes nor escapes, so the
// value ends at the next quote; it is read from quote to quote (ReadSlice),
// as eachData reads, not byte by byte.
func (s *Server) liftValue(br *bufio.Reader, out *bytes.Buffer) error {
	var head []byte
	for len(head) < liftMin {
		piece, err := br.ReadSlice('"')
		if err == nil { // piece ends in the closing quote
			out.Write(head)
			out.Write(piece)
			return nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return err
		}
		head = append(head, piece...)
	}
	dir := filepath.Join(s.cfg.DataDir, blobsDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".lift-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	w := io.MultiWriter(tmp, h)
	w.Write(head)
	for {
		chunk, err := br.ReadSlice('"')
		if len(chunk) > 0 && chunk[len(chunk)-1] == '"' {
			w.Write(chunk[:len(chunk)-1])
			break
		}
		w.Write(chunk)
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			tmp.Close()
			return err
		}
	}
	// Synced before its name appears; the save of the resource naming it
	// syncs the directory.
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if err := os.Rename(tmp.Name(), filepath.Join(dir, sum+".b64")); err != nil {
		return err
	}
	s.st.blobsRenamed.Store(true)
	fmt.Fprintf(out, "simblob:%s\"", sum)
	return nil
}

// inline writes a stored resource as it was sent: the data values kept in
// files put back.
func (s *Server) inline(w io.Writer, js []byte) error {
	last := 0
	for _, m := range blobRef.FindAllSubmatchIndex(js, -1) {
		if _, err := w.Write(js[last : m[0]+len(`"data":"`)]); err != nil {
			return err
		}
		f, err := os.Open(filepath.Join(s.cfg.DataDir, blobsDir, string(js[m[2]:m[3]])+".b64"))
		if err != nil {
			return err
		}
		_, err = io.Copy(w, f)
		f.Close()
		if err != nil {
			return err
		}
		if _, err := w.Write([]byte(`"`)); err != nil {
			return err
		}
		last = m[1]
	}
	_, err := w.Write(js[last:])
	return err
}

// inlined is inline into memory: for the tests' inspection helpers.
func (s *Server) inlined(js []byte) []byte {
	if !blobRef.Match(js) {
		return js
	}
	var b bytes.Buffer
	if err := s.inline(&b, js); err != nil {
		return js
	}
	return b.Bytes()
}

// AttachmentDigests returns, for each Communication carrying letterID, the
// hex SHA-256 of each attachment's data (decoded), read from the stored
// resource without holding a large attachment whole.
func (s *Server) AttachmentDigests(letterID string) ([][]string, error) {
	s.mu.Lock()
	var recs [][]byte
	for _, rec := range s.st.ofType("Communication") {
		if matchToken(SystemLetter+"|"+letterID, viewOf(rec).Identifier) {
			recs = append(recs, rec.JSON)
		}
	}
	s.mu.Unlock()
	var out [][]string
	for _, js := range recs {
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(s.inline(pw, js)) }()
		sums, err := DataDigests(pr)
		pr.Close()
		if err != nil {
			return nil, err
		}
		out = append(out, sums)
	}
	return out, nil
}

// DataDigests reads a FHIR JSON resource as it streams in and returns the
// SHA-256 of each "data" value (base64, decoded on the way), never holding
// one. The bench's EPJ stand-in checks attachments with it too.
func DataDigests(r io.Reader) ([]string, error) {
	// The reader and the copy buffer are pooled: the bench's EPJ stand-in
	// reads every letter with this, and 96 KB of new buffers per request
	// were a tenth of all the bytes its process allocated.
	bufs := digestBufs.Get().(*digestBuf)
	defer digestBufs.Put(bufs)
	br := bufs.r
	br.Reset(r)
	defer br.Reset(nil)
	var sums []string
	err := eachData(br, nil, func() error {
		h := sha256.New()
		if _, err := io.CopyBuffer(h, base64.NewDecoder(base64.StdEncoding, &untilQuote{r: br}), bufs.copy); err != nil {
			return err
		}
		sums = append(sums, hex.EncodeToString(h.Sum(nil)))
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sums, nil
}

type digestBuf struct {
	r    *bufio.Reader
	copy []byte
}

var digestBufs = sync.Pool{New: func() any {
	return &digestBuf{r: bufio.NewReaderSize(nil, 64<<10), copy: make([]byte, 32<<10)}
}}

// untilQuote reads br up to a closing quote, which it consumes but does
// not return.
type untilQuote struct {
	r    *bufio.Reader
	done bool
}

func (u *untilQuote) Read(p []byte) (int, error) {
	if u.done {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	n := u.r.Buffered()
	if n == 0 {
		if _, err := u.r.Peek(1); err != nil {
			return 0, err
		}
		n = u.r.Buffered()
	}
	buf, _ := u.r.Peek(min(n, len(p)))
	if i := bytes.IndexByte(buf, '"'); i >= 0 {
		copy(p, buf[:i])
		_, _ = u.r.Discard(i + 1)
		u.done = true
		if i == 0 {
			return 0, io.EOF
		}
		return i, nil
	}
	c := copy(p, buf)
	_, _ = u.r.Discard(c)
	return c, nil
}
