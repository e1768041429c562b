package email

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// A large message is not held in memory: the IMAP source copies it to a
// file, and the parser decodes each large attachment into a file of its
// own, computing its size and SHA-256 on the way (issue 21). The letter's
// original and those attachments open from the files; the pipeline's
// ingest reads them into the blob store chunk by chunk. The files live
// until the publish returns and are removed then, and any left by a
// process that died are removed when the source starts.

// spoolPrefix starts the name of every file the source spools, so a start
// removes only its own leftovers.
const spoolPrefix = "spool-"

// spoolMinPart is the decoded size from which an attachment goes to a
// file; smaller ones are kept in memory (a letter's JSON carries them
// inline anyway).
const spoolMinPart = 64 << 10

// spool is the set of files one message was spooled into.
type spool struct {
	dir   string
	files []string
}

func newSpool(dir string) *spool { return &spool{dir: dir} }

// create makes a new file in the spool; remove deletes it with the rest.
func (s *spool) create(kind string) (*os.File, error) {
	f, err := os.CreateTemp(s.dir, spoolPrefix+kind+"-*")
	if err != nil {
		return nil, err
	}
	s.files = append(s.files, f.Name())
	return f, nil
}

// remove deletes every file of the spool. A letter that still names them
// can no longer be opened: call it once the publish has returned.
func (s *spool) remove() error {
	var errs []error
	for _, p := range s.files {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	s.files = nil
	return errors.Join(errs...)
}

// clearSpool removes the spool files a previous process left in dir.
func clearSpool(dir string) (int, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.HasPrefix(e.Name(), spoolPrefix) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// spooledMessage is a message copied to a file, with what the parser and
// the duplicate memory need of the whole computed while copying.
type spooledMessage struct {
	path       string
	size       int64
	digest     string // hex SHA-256 of the bytes
	boundaries int    // occurrences of "boundary=", any case
}

// errSpoolTooLarge is the error of spooling more than the allowed bytes.
var errSpoolTooLarge = errors.New("message larger than allowed")

// message copies r into a new spool file, reading at most max bytes: a
// longer r gives errSpoolTooLarge, with size the bytes read so far.
func (s *spool) message(r io.Reader, max int64) (*spooledMessage, error) {
	f, err := s.create("msg")
	if err != nil {
		return nil, &spoolError{err}
	}
	defer f.Close()
	h := sha256.New()
	var bc boundaryCounter
	w := &fileWriter{f: f}
	n, err := io.Copy(io.MultiWriter(w, h, &bc), io.LimitReader(r, max+1))
	m := &spooledMessage{path: f.Name(), size: n, digest: hex.EncodeToString(h.Sum(nil)), boundaries: bc.n}
	switch {
	case w.err != nil:
		return m, &spoolError{w.err}
	case err != nil:
		return m, err
	case n > max:
		return m, errSpoolTooLarge
	}
	if err := f.Close(); err != nil {
		return m, &spoolError{err}
	}
	return m, nil
}

// part decodes body into memory when it is small and into a spool file
// otherwise; size and SHA-256 are computed while copying. An error of the
// spool's own files is a *spoolError (the disk, not the message); any
// other is the body's.
func (s *spool) part(body io.Reader) (data []byte, path string, size int64, digest string, err error) {
	head, err := io.ReadAll(io.LimitReader(body, spoolMinPart))
	if err != nil {
		return nil, "", 0, "", err
	}
	if len(head) < spoolMinPart {
		return head, "", 0, "", nil
	}
	f, err := s.create("part")
	if err != nil {
		return nil, "", 0, "", &spoolError{err}
	}
	defer f.Close()
	h := sha256.New()
	w := &fileWriter{f: f}
	mw := io.MultiWriter(w, h)
	if _, err := mw.Write(head); err != nil {
		return nil, "", 0, "", &spoolError{err}
	}
	n, err := io.Copy(mw, body)
	if w.err != nil {
		return nil, "", 0, "", &spoolError{w.err}
	}
	if err != nil {
		return nil, "", 0, "", err
	}
	if err := f.Close(); err != nil {
		return nil, "", 0, "", &spoolError{err}
	}
	return nil, f.Name(), n + int64(len(head)), hex.EncodeToString(h.Sum(nil)), nil
}

// spoolError is a failure to write the spool: the message is not at
// fault, and it is tried again later.
type spoolError struct{ err error }

func (e *spoolError) Error() string { return "spool: " + e.err.Error() }
func (e *spoolError) Unwrap() error { return e.err }

// fileWriter keeps the file's write error apart from the reader's.
type fileWriter struct {
	f   *os.File
	err error
}

func (w *fileWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	if err != nil && w.err == nil {
		w.err = err
	}
	return n, err
}

// openFile is the letter.Opener of a spool file.
func openFile(path string) func(context.Context) (io.ReadCloser, error) {
	return func(ctx context.Context) (io.ReadCloser, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		f, err := os.Open(path)
		if err != nil {
			// The path names the spool, not the message; still, say only
			// what happened.
			return nil, fmt.Errorf("open spooled message part: %w", errors.Unwrap(err))
		}
		return f, nil
	}
}

// boundaryWord is what the parser counts to bound multipart containers
// before it reads the structure.
var boundaryWord = []byte("boundary=")

// boundaryCounter counts boundaryWord, in any ASCII case, in what is
// written to it, also across writes.
type boundaryCounter struct {
	n    int
	tail []byte // the last len(boundaryWord)-1 bytes, lower-cased
	buf  []byte // reused between writes
}

func (c *boundaryCounter) Write(p []byte) (int, error) {
	buf := append(append(c.buf[:0], c.tail...), p...)
	lowerASCII(buf[len(c.tail):])
	c.n += bytes.Count(buf, boundaryWord)
	keep := min(len(buf), len(boundaryWord)-1)
	c.tail = append(c.tail[:0], buf[len(buf)-keep:]...)
	c.buf = buf
	return len(p), nil
}

func lowerASCII(b []byte) {
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
}

// countBoundaries counts boundaryWord in raw, in any ASCII case.
func countBoundaries(raw []byte) int {
	var c boundaryCounter
	_, _ = c.Write(raw)
	return c.n
}
