package partscan

import (
	"encoding/base64"
	"fmt"
	"io"
)

// Source is bytes that can be read again from any offset: a file, or the
// decoded content of a base64 value inside another source (a VANSEnvelope's
// Data). Nothing of it is held in memory.
type Source interface {
	// Open returns a reader from byte off to the end.
	Open(off int64) (io.ReadCloser, error)
}

// File is a Source over an open file (any io.ReaderAt) of size bytes. The
// file may be moved or renamed meanwhile; it must not be changed.
func File(r io.ReaderAt, size int64) Source { return fileSource{r, size} }

type fileSource struct {
	r    io.ReaderAt
	size int64
}

func (f fileSource) Open(off int64) (io.ReadCloser, error) {
	if off > f.size {
		return nil, fmt.Errorf("partscan: offset %d beyond the end (%d)", off, f.size)
	}
	return io.NopCloser(io.NewSectionReader(f.r, off, f.size-off)), nil
}

// Decoded is a Source of the bytes the base64 in src[off:off+n] stands
// for (white space skipped, as MedCom's producers wrap lines). Opening it
// at k decodes from the start and skips k bytes: a second read of a
// nested value is rare (a value given up on after its first 64 KiB).
func Decoded(src Source, off, n int64) Source { return decoded{src, off, n} }

type decoded struct {
	src    Source
	off, n int64
}

func (d decoded) Open(off int64) (io.ReadCloser, error) {
	r, err := d.src.Open(d.off)
	if err != nil {
		return nil, err
	}
	dec := readCloser{Reader: base64.NewDecoder(base64.StdEncoding, &noSpace{r: io.LimitReader(r, d.n)}), Closer: r}
	if off > 0 {
		if _, err := io.CopyN(io.Discard, dec, off); err != nil {
			r.Close()
			return nil, err
		}
	}
	return dec, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// noSpace drops spaces and tabs (the base64 decoder skips \r and \n
// itself).
type noSpace struct{ r io.Reader }

func (n *noSpace) Read(p []byte) (int, error) {
	for {
		k, err := n.r.Read(p)
		j := 0
		for _, c := range p[:k] {
			if c != ' ' && c != '\t' {
				p[j] = c
				j++
			}
		}
		if j > 0 || err != nil {
			return j, err
		}
	}
}
