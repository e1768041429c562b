package medcom

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/samhub/samhub/adapters"
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
