package email

import (
	"bytes"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // registers x/text charsets with go-message
	"github.com/emersion/go-message/mail"

	"github.com/samhub/samhub/pipeline/letter"
)

// ParseError says why a message could not become a letter. Reason is plain
// language free of personal data; it is recorded and logged.
type ParseError struct {
	Field  string // e.g. "header", "header.From", "body.part[2]"
	Reason string
	Err    error
}

// Error names the field and the reason, and of the mail library's error
// only a known phrase: the library's errors quote the line they stumbled on
// ("malformed MIME header key: Vedrørende <child's name>, CPR …"), and
// this text goes into logs, the rejected-file list and acknowledgements.
func (e *ParseError) Error() string {
	if d := knownCause(e.Err); d != "" {
		return fmt.Sprintf("%s: %s (%s)", e.Field, e.Reason, d)
	}
	return e.Field + ": " + e.Reason
}

// causes are the phrases of Go's and go-message's MIME errors that say
// what went wrong without quoting the input; knownCause picks the first
// one the error contains.
var causes = []string{
	"malformed MIME header key",
	"malformed MIME header line",
	"malformed MIME header initial line",
	"message too large",
	"too many headers",
	"expecting a new Part",
	"NextPart: EOF",
	"unexpected EOF",
	"no boundary",
	"invalid media parameter",
	"no media type",
	"expected slash after first token",
	"expected token after slash",
	"unknown charset",
	"unhandled charset",
	"illegal base64 data",
	"quoted-printable",
	"invalid UTF-8",
	"missing @ in addr-spec",
	"no angle-addr",
	"expected single address",
	"no address",
	"invalid string",
}

func knownCause(err error) string {
	if err == nil {
		return ""
	}
	msg := err.Error()
	if strings.HasPrefix(msg, "letter.") {
		return msg // the letter's own checks name fields, never values
	}
	for _, c := range causes {
		if strings.Contains(msg, c) {
			return c
		}
	}
	return ""
}

func (e *ParseError) Unwrap() error { return e.Err }

// maxParts bounds the work a hostile message can cause.
const maxParts = 200

// dedupKey is the SHA-256 of the Message-ID and the hash of the raw bytes:
// the same message fetched twice gives the same key, a different message
// reusing a Message-ID does not. It is written in lower-case base32, whose
// only digits are 2–7, so a key can never look like a CPR number (a month
// needs a 0 or 1) and be redacted or flagged in logs.
func dedupKey(messageID string, raw []byte) string {
	return dedupKeyOf(messageID, letter.Digest(raw))
}

// dedupKeyOf is dedupKey given the hex SHA-256 of the raw bytes.
func dedupKeyOf(messageID, digest string) string {
	h := sha256.New()
	h.Write([]byte(messageID))
	h.Write([]byte{0})
	h.Write([]byte(digest))
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(h.Sum(nil)))
}

// maxMultiparts bounds multipart containers (nesting and siblings): a real
// letter has a handful, and deep nesting costs the reader time and memory.
const maxMultiparts = 20

// headerMessageID reads the Message-ID without failing on a malformed one.
func headerMessageID(raw []byte) string {
	return readMessageID(bytes.NewReader(raw))
}

// readMessageID reads the Message-ID from a message's header.
func readMessageID(r io.Reader) string {
	e, _ := message.Read(r)
	if e == nil {
		return ""
	}
	return messageIDOf(mail.Header{Header: e.Header})
}

func messageIDOf(h mail.Header) string {
	if id, err := h.MessageID(); err == nil && id != "" {
		return id
	}
	return strings.Trim(strings.TrimSpace(h.Get("Message-Id")), "<>")
}

// ParseMessage turns raw MIME bytes into a letter of source instance
// source. kindFor chooses the kind from the sender address and subject (nil
// means note). The letter keeps raw as its original.
func ParseMessage(source string, raw []byte, received time.Time, kindFor func(from, subject string) letter.Kind) (*letter.Letter, error) {
	return parse(source, input{raw: raw}, received, kindFor)
}

// parseSpooled is ParseMessage for a message spooled to a file: the
// letter's original opens from the file, and attachments of spoolMinPart
// bytes or more are decoded into files of sp and open from there. The
// letter can be opened until sp is removed.
func parseSpooled(source string, m *spooledMessage, sp *spool, received time.Time, kindFor func(from, subject string) letter.Kind) (*letter.Letter, error) {
	return parse(source, input{file: m, spool: sp}, received, kindFor)
}

// input is a message in memory (raw) or spooled to a file.
type input struct {
	raw   []byte
	file  *spooledMessage
	spool *spool // where large attachments go; nil keeps them in memory
}

// parse is the one reader of both inputs.
func parse(source string, in input, received time.Time, kindFor func(from, subject string) letter.Kind) (*letter.Letter, error) {
	var (
		boundaries int
		digest     string
		body       io.Reader
		original   letter.Original
	)
	if in.file != nil {
		f, err := os.Open(in.file.path)
		if err != nil {
			return nil, &spoolError{err}
		}
		defer f.Close()
		boundaries, digest, body = in.file.boundaries, in.file.digest, f
		original = letter.Original{ContentType: "message/rfc822", SHA256: digest, Size: in.file.size}.WithOpener(openFile(in.file.path))
	} else {
		boundaries, digest, body = countBoundaries(in.raw), letter.Digest(in.raw), bytes.NewReader(in.raw)
		original = letter.Original{Data: in.raw, ContentType: "message/rfc822", SHA256: digest}
	}
	if boundaries > maxMultiparts {
		return nil, &ParseError{Field: "body", Reason: fmt.Sprintf("more than %d multipart containers (nested or side by side)", maxMultiparts)}
	}
	h, rest, err := readHeader(body)
	switch {
	case errors.Is(err, errHeaderTooLarge):
		return nil, &ParseError{Field: "header", Reason: fmt.Sprintf("the message header is larger than %d bytes", maxHeaderBytes)}
	case err != nil:
		return nil, &ParseError{Field: "header", Reason: "the message header could not be read", Err: err}
	}
	parts := newPartWalker(h, rest)

	// A malformed Message-ID is common in the wild and not fatal; it only
	// feeds the dedup key, together with the content hash.
	msgID := messageIDOf(h)
	from, err := h.AddressList("From")
	if err != nil {
		return nil, &ParseError{Field: "header.From", Reason: "expected a list of mail addresses", Err: err}
	}
	if len(from) == 0 {
		return nil, &ParseError{Field: "header.From", Reason: "expected a sender address, found none"}
	}
	subject, err := h.Subject()
	if err != nil && !message.IsUnknownCharset(err) {
		return nil, &ParseError{Field: "header.Subject", Reason: "the subject could not be decoded", Err: err}
	}

	l := &letter.Letter{
		ID:       "email:" + source + ":" + dedupKeyOf(msgID, digest),
		Format:   "email",
		Source:   source,
		Received: received,
		Sender:   letter.Party{Name: from[0].Name, Email: strings.ToLower(from[0].Address)},
		Subject:  subject,
		Original: original,
		Meta:     map[string]string{},
	}
	if kindFor != nil {
		l.Kind = kindFor(l.Sender.Email, subject)
	} else {
		l.Kind = letter.KindNote
	}
	if msgID != "" {
		l.Meta[MetaMessageID] = msgID
	}
	if irt, err := h.MsgIDList("In-Reply-To"); err == nil && len(irt) > 0 {
		l.Meta[MetaInReplyTo] = irt[0]
	}
	if d, err := h.Date(); err == nil {
		l.Sent = d
	}

	var plain, html []string
	for i := 0; ; i++ {
		if i >= maxParts {
			return nil, &ParseError{Field: "body", Reason: fmt.Sprintf("more than %d parts", maxParts)}
		}
		p, err := parts.next()
		if errors.Is(err, io.EOF) {
			break
		}
		field := fmt.Sprintf("body.part[%d]", i)
		if p == nil {
			if message.IsUnknownEncoding(err) {
				return nil, &ParseError{Field: field + ".Content-Transfer-Encoding", Reason: "expected 7bit, 8bit, binary, base64 or quoted-printable", Err: err}
			}
			return nil, &ParseError{Field: field, Reason: "the MIME structure is broken", Err: err}
		}
		switch ph := p.Header.(type) {
		case *mail.InlineHeader:
			ct, params, _ := ph.ContentType()
			if ct == "text/plain" || ct == "text/html" {
				// Text is read whole: the letter carries it. It is no
				// longer than the message, which max_bytes bounds.
				body, rerr := io.ReadAll(p.Body)
				if rerr != nil {
					return nil, &ParseError{Field: field, Reason: "the part could not be decoded", Err: rerr}
				}
				if !utf8.Valid(body) {
					return nil, &ParseError{Field: field, Reason: "the text is not valid in its declared charset (expected a known charset such as UTF-8 or ISO-8859-1)"}
				}
				if ct == "text/plain" {
					plain = append(plain, string(body))
				} else {
					html = append(html, string(body))
				}
				continue
			}
			a, perr := readPart(in.spool, inlineName(ph, i), fileType(ct, params), p.Body)
			if perr != nil {
				return nil, partError(field, perr)
			}
			l.Attachments = append(l.Attachments, a)
		case *mail.AttachmentHeader:
			ct, params, _ := ph.ContentType()
			name, _ := ph.Filename()
			if name == "" {
				name = fmt.Sprintf("bilag-%d", i)
			}
			a, perr := readPart(in.spool, name, fileType(ct, params), p.Body)
			if perr != nil {
				return nil, partError(field, perr)
			}
			l.Attachments = append(l.Attachments, a)
		}
	}
	switch {
	case len(plain) > 0:
		l.Text = strings.Join(plain, "\n")
	case len(html) > 0:
		parts := make([]string, len(html))
		for i, s := range html {
			parts[i] = htmlToText(s)
		}
		l.Text = strings.Join(parts, "\n")
	}
	l.Text = strings.ReplaceAll(l.Text, "\r\n", "\n")
	if err := l.Validate(); err != nil {
		return nil, &ParseError{Field: "letter", Reason: "the message did not give a valid letter", Err: err}
	}
	return l, nil
}

// partError is the error of an attachment that could not be read: the
// message's fault, unless the spool could not be written.
func partError(field string, err error) error {
	var se *spoolError
	if errors.As(err, &se) {
		return se
	}
	return &ParseError{Field: field, Reason: "the part could not be decoded", Err: err}
}

// readPart decodes an attachment's body: into memory without a spool, or
// when it is small; otherwise into a spool file the attachment opens.
func readPart(sp *spool, name, ct string, body io.Reader) (letter.Attachment, error) {
	if sp == nil {
		data, err := io.ReadAll(body)
		if err != nil {
			return letter.Attachment{}, err
		}
		return letter.NewAttachment(name, ct, data), nil
	}
	data, path, size, digest, err := sp.part(body)
	if err != nil {
		return letter.Attachment{}, err
	}
	if path == "" {
		return letter.NewAttachment(name, ct, data), nil
	}
	return letter.StreamedAttachment(name, ct, size, digest, openFile(path)), nil
}

func inlineName(h *mail.InlineHeader, i int) string {
	if _, params, err := h.ContentDisposition(); err == nil && params["filename"] != "" {
		return params["filename"]
	}
	if _, params, err := h.ContentType(); err == nil && params["name"] != "" {
		return params["name"]
	}
	return fmt.Sprintf("del-%d", i)
}
