package email

import (
	"bytes"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
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
	h := sha256.New()
	h.Write([]byte(messageID))
	h.Write([]byte{0})
	h.Write([]byte(letter.Digest(raw)))
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(h.Sum(nil)))
}

// maxMultiparts bounds multipart containers (nesting and siblings): a real
// letter has a handful, and deep nesting costs the reader time and memory.
const maxMultiparts = 20

// headerMessageID reads the Message-ID without failing on a malformed one.
func headerMessageID(raw []byte) string {
	e, _ := message.Read(bytes.NewReader(raw))
	if e == nil {
		return ""
	}
	h := mail.Header{Header: e.Header}
	if id, err := h.MessageID(); err == nil && id != "" {
		return id
	}
	return strings.Trim(strings.TrimSpace(h.Get("Message-Id")), "<>")
}

// ParseMessage turns raw MIME bytes into a letter of source instance
// source. kindFor chooses the kind from the sender address and subject (nil
// means note). The letter keeps raw as its original.
func ParseMessage(source string, raw []byte, received time.Time, kindFor func(from, subject string) letter.Kind) (*letter.Letter, error) {
	if n := bytes.Count(bytes.ToLower(raw), []byte("boundary=")); n > maxMultiparts {
		return nil, &ParseError{Field: "body", Reason: fmt.Sprintf("more than %d multipart containers (nested or side by side)", maxMultiparts)}
	}
	mr, err := mail.CreateReader(bytes.NewReader(raw))
	if mr == nil {
		if message.IsUnknownEncoding(err) {
			return nil, &ParseError{Field: "header.Content-Transfer-Encoding", Reason: "expected 7bit, 8bit, binary, base64 or quoted-printable", Err: err}
		}
		return nil, &ParseError{Field: "header", Reason: "the message header could not be read", Err: err}
	}
	defer mr.Close()
	h := mr.Header

	// A malformed Message-ID is common in the wild and not fatal; it only
	// feeds the dedup key, together with the content hash.
	msgID := headerMessageID(raw)
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
		ID:       "email:" + source + ":" + dedupKey(msgID, raw),
		Format:   "email",
		Source:   source,
		Received: received,
		Sender:   letter.Party{Name: from[0].Name, Email: strings.ToLower(from[0].Address)},
		Subject:  subject,
		Original: letter.Original{Data: raw, ContentType: "message/rfc822", SHA256: letter.Digest(raw)},
		Meta:     map[string]string{},
	}
	if kindFor != nil {
		l.Kind = kindFor(l.Sender.Email, subject)
	} else {
		l.Kind = letter.KindNote
	}
	if msgID != "" {
		l.Meta["message-id"] = msgID
	}
	if irt, err := h.MsgIDList("In-Reply-To"); err == nil && len(irt) > 0 {
		l.Meta["in-reply-to"] = irt[0]
	}
	if d, err := h.Date(); err == nil {
		l.Sent = d
	}

	var plain, html []string
	for i := 0; ; i++ {
		if i >= maxParts {
			return nil, &ParseError{Field: "body", Reason: fmt.Sprintf("more than %d parts", maxParts)}
		}
		p, err := mr.NextPart()
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
		body, rerr := io.ReadAll(p.Body)
		if rerr != nil {
			return nil, &ParseError{Field: field, Reason: "the part could not be decoded", Err: rerr}
		}
		switch ph := p.Header.(type) {
		case *mail.InlineHeader:
			ct, _, _ := ph.ContentType()
			if (ct == "text/plain" || ct == "text/html") && !utf8.Valid(body) {
				return nil, &ParseError{Field: field, Reason: "the text is not valid in its declared charset (expected a known charset such as UTF-8 or ISO-8859-1)"}
			}
			switch ct {
			case "text/plain":
				plain = append(plain, string(body))
				continue
			case "text/html":
				html = append(html, string(body))
				continue
			}
			name := inlineName(ph, i)
			l.Attachments = append(l.Attachments, letter.NewAttachment(name, ct, body))
		case *mail.AttachmentHeader:
			ct, _, _ := ph.ContentType()
			name, _ := ph.Filename()
			if name == "" {
				name = fmt.Sprintf("bilag-%d", i)
			}
			l.Attachments = append(l.Attachments, letter.NewAttachment(name, ct, body))
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

func inlineName(h *mail.InlineHeader, i int) string {
	if _, params, err := h.ContentDisposition(); err == nil && params["filename"] != "" {
		return params["filename"]
	}
	if _, params, err := h.ContentType(); err == nil && params["name"] != "" {
		return params["name"]
	}
	return fmt.Sprintf("del-%d", i)
}
