package medcom

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/adapters/medcom/fhirmsg"
	"github.com/samhub/samhub/adapters/medcom/oioxml"
	"github.com/samhub/samhub/adapters/medcom/xmlsafe"
)

// Codes of rejected files (the code label of samhub_letters_rejected_total,
// the code line of <name>.error.txt): xmlsafe's reasons for input refused
// while reading, and three of the adapter's own.
const (
	codeTooLarge    = string(xmlsafe.ReasonTooLarge) // larger than max_bytes or a limit
	codeUnsupported = "unsupported"                  // well-formed, but not a type or version the hub reads
	codeInvalid     = "invalid"                      // breaks the standard's rules (element paths in the reason)
)

// RejectCodes lists the codes this source reports (adapters.RejectCodes).
func (a *Adapter) RejectCodes() []string {
	return []string{codeTooLarge, string(xmlsafe.ReasonDTD), string(xmlsafe.ReasonTooDeep), string(xmlsafe.ReasonTooMany),
		string(xmlsafe.ReasonAttrTooLong), string(xmlsafe.ReasonCharset), string(xmlsafe.ReasonSyntax), codeUnsupported, codeInvalid}
}

// rejectCode classifies why a file could not be accepted.
func rejectCode(err error) string {
	var xe *xmlsafe.Error
	switch {
	case errors.As(err, &xe):
		return string(xe.Reason)
	case oioxml.IsUnsupported(err):
		return codeUnsupported
	case errors.Is(err, fhirmsg.ErrNotUTF8):
		return string(xmlsafe.ReasonCharset)
	}
	return codeInvalid
}

// rejection is why a file goes to error/.
type rejection struct {
	code    string // bounded: RejectCodes, or the hub's code for a letter it would not store
	reason  string // free of personal data: element paths and rules, never values
	acked   bool   // an acknowledgement went out for a letter of the file
	counted bool   // the hub counted it already (it refused to store a letter)
}

// Lines of <name>.error.txt after the reason.
const (
	noteCode  = "code: "
	noteAcked = "acknowledgement sent: "
)

// reject moves processing/name byte-identical to error/ with a sibling
// <name>.error.txt holding the reason, and logs and counts it.
func (a *Adapter) reject(pub adapters.Publisher, name string, r rejection) error {
	moved, err := moveUnique(filepath.Join(a.processing, name), a.errDir)
	if err != nil {
		return err
	}
	acked := "no"
	if r.acked {
		acked = "yes"
	}
	note := fmt.Sprintf("%s\n\n%s%s\n%s%s\n", strings.TrimSpace(r.reason), noteCode, r.code, noteAcked, acked)
	if err := writeAtomic(a.errDir, moved+".error.txt", []byte(note)); err != nil {
		a.log.Error("medcom: cannot write error note", "file", moved, "err", err)
	}
	if rep, ok := pub.(adapters.InputReporter); ok && !r.counted {
		rep.Rejected(r.code)
	}
	a.log.Warn("medcom: file rejected", "file", moved, "code", r.code, "reason", summary(r.reason), "acknowledgement_sent", r.acked)
	return nil
}

// summary is the first line of a reason, for a log line of bounded length.
func summary(reason string) string {
	var lines []string
	for _, l := range strings.Split(reason, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		return ""
	}
	s := lines[0]
	if r := []rune(s); len(r) > 300 {
		s = string(r[:300]) + "…"
	}
	if len(lines) > 1 {
		s += fmt.Sprintf(" (and %d more)", len(lines)-1)
	}
	return s
}

// ListRejected lists the files in error/ with the reasons of their notes,
// newest first (adapters.RejectedInputs).
func (a *Adapter) ListRejected(_ context.Context, limit int) ([]adapters.RejectedInput, error) {
	entries, err := os.ReadDir(a.errDir)
	if err != nil {
		return nil, fmt.Errorf("medcom: list %s: %w", a.errDir, err)
	}
	var out []adapters.RejectedInput
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || !rejectedName(name) {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		item := adapters.RejectedInput{ID: name, Size: fi.Size(), At: fi.ModTime()}
		if nfi, err := os.Stat(filepath.Join(a.errDir, name+".error.txt")); err == nil {
			item.At = nfi.ModTime()
		}
		out = append(out, item)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].At.Equal(out[j].At) {
			return out[i].At.After(out[j].At)
		}
		return out[i].ID < out[j].ID
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	// Notes are read for the page shown only: error/ may hold years of files.
	for i := range out {
		out[i].Reason, out[i].Code, out[i].Answered = readNote(filepath.Join(a.errDir, out[i].ID+".error.txt"))
	}
	return out, nil
}

// rejectedName reports whether name in error/ is a rejected file (not its
// note, not a partial write).
func rejectedName(name string) bool {
	return name != "" && !strings.HasPrefix(name, ".") && !strings.HasSuffix(name, ".error.txt") &&
		!strings.ContainsAny(name, `/\`) && name != ".."
}

// readNote reads a <name>.error.txt: the reason, and the code and whether an
// acknowledgement was sent (notes written before those lines existed give
// "" and false).
func readNote(path string) (reason, code string, answered bool) {
	f, err := os.Open(path)
	if err != nil {
		return "", "", false
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, 64<<10))
	var keep []string
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		switch {
		case strings.HasPrefix(line, noteCode):
			code = strings.TrimSpace(strings.TrimPrefix(line, noteCode))
		case strings.HasPrefix(line, noteAcked):
			answered = strings.TrimSpace(strings.TrimPrefix(line, noteAcked)) == "yes"
		default:
			keep = append(keep, line)
		}
	}
	return strings.TrimSpace(strings.Join(keep, "\n")), code, answered
}

// PutBack moves error/id back into in/, where it is taken at once, and
// removes its note. A file any of whose letters the duplicate memory holds
// stays: the sender was answered, and a copy gets only that answer again
// (a valid letter among them would be taken as a copy and never routed).
func (a *Adapter) PutBack(ctx context.Context, id string) error {
	if !rejectedName(id) {
		return adapters.ErrUnknownInput
	}
	path := filepath.Join(a.errDir, id)
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return adapters.ErrUnknownInput
	}
	if fi.Size() <= a.cfg.MaxBytes {
		release := a.examining.acquire(min(fi.Size(), a.memBudget()))
		defer release()
		in, _, err := examineFile(path, a.lim)
		if err != nil {
			return fmt.Errorf("medcom: read %s: %w", id, err)
		}
		in.close()
		acks, _ := planAcks(in, a.cfg.Self, a.now())
		for _, p := range acks {
			if _, _, err := a.state.Get(ctx, p.key); err == nil {
				return adapters.ErrAnswered
			} else if !errors.Is(err, adapters.ErrNotFound) {
				return err
			}
		}
	}
	moved, err := moveUnique(path, a.in)
	if errors.Is(err, fs.ErrNotExist) {
		return adapters.ErrUnknownInput // someone else put it back meanwhile
	}
	if err != nil {
		return fmt.Errorf("medcom: put %s back: %w", id, err)
	}
	if err := os.Remove(path + ".error.txt"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		a.log.Warn("medcom: cannot remove the error note of a file put back", "file", id, "err", err)
	}
	a.log.Info("medcom: rejected file put back into in/", "file", id, "as", moved)
	return nil
}
