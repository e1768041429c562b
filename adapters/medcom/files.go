package medcom

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/samhub/samhub/adapters/body"
)

// writeAtomic writes data as dir/name via a dotfile and a rename, so a
// reader of dir (the VANS client) never sees a half-written file, and makes
// it durable before it returns.
func writeAtomic(dir, name string, data []byte) error { return writeFile(dir, name, data, true) }

// writeFile is writeAtomic; without durable it leaves the fsyncs to the
// caller's syncFS for a whole poll round (two fsyncs per file were a third
// of the disk's flushes per letter).
func writeFile(dir, name string, data []byte, durable bool) error {
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	tmp := filepath.Join(dir, "."+name+"."+hex.EncodeToString(rnd[:])+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return err
	}
	if _, err = f.Write(data); err == nil && durable {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if !durable {
		return nil
	}
	return syncDir(dir)
}

// writeBody writes b to dir/name atomically and durably: staged under a
// hidden name, then put in place.
func writeBody(ctx context.Context, dir, name string, b *body.Body) error {
	tmp, err := stageBody(ctx, dir, name, b)
	if err != nil {
		return err
	}
	if err := putInPlace(dir, tmp, name); err != nil {
		_ = os.Remove(filepath.Join(dir, tmp))
		return err
	}
	return nil
}

// stageBody writes b, synced, to a hidden file in dir (a dot-file ending
// in .tmp, which no reader of the directory takes) and returns its name;
// a part that fails to read leaves no file.
func stageBody(ctx context.Context, dir, name string, b *body.Body) (string, error) {
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	tmp := "." + name + "." + hex.EncodeToString(rnd[:]) + ".tmp"
	f, err := os.OpenFile(filepath.Join(dir, tmp), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return "", err
	}
	if _, err = b.WriteTo(ctx, f); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(filepath.Join(dir, tmp))
		return "", err
	}
	return tmp, nil
}

// putInPlace renames the staged file tmp to name in dir, durably. When
// tmp is gone it returns an error matching fs.ErrNotExist.
func putInPlace(dir, tmp, name string) error {
	if err := os.Rename(filepath.Join(dir, tmp), filepath.Join(dir, name)); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir makes a rename durable; best effort where directories cannot be synced.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	_ = d.Sync() // some filesystems refuse fsync on directories; the rename itself is done
	return nil
}

// candidates lists the files in dir a writer has finished: no dotfiles, no
// *.tmp, no directories; sorted by name so processing order is stable.
func candidates(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || strings.HasPrefix(n, ".") || strings.HasSuffix(n, ".tmp") || !e.Type().IsRegular() {
			continue
		}
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}

// moveUnique renames src into dir, keeping its name unless that is taken.
func moveUnique(src, dir string) (string, error) {
	name := filepath.Base(src)
	dst := filepath.Join(dir, name)
	if _, err := os.Lstat(dst); err == nil {
		name = fmt.Sprintf("%s.%d", name, time.Now().UnixNano())
		dst = filepath.Join(dir, name)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if err := os.Rename(src, dst); err != nil {
		return "", err
	}
	return name, nil
}
