package email

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"

	"github.com/samhub/samhub/adapters/body"
	"github.com/samhub/samhub/pipeline/letter"
)

// Ref is the short, non-personal reference of a letter used in subjects, e.g.
// "SAM-3F9A01BC". It is derived from the letter id so the console can show
// the same reference. Eight hex digits can never form a CPR-like digit run.
func Ref(letterID string) string {
	s := sha256.Sum256([]byte(letterID))
	return "SAM-" + strings.ToUpper(hex.EncodeToString(s[:4]))
}

// recipientHash identifies one (letter, recipient) delivery. Base32 rather
// than hex: a hex string often holds ten digits in a row, which looks like a
// CPR number to people and to data-loss scanners.
func recipientHash(letterID, rcpt string) string {
	s := sha256.Sum256([]byte(letterID + "\x00" + strings.ToLower(rcpt)))
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(s[:16]))
}

// MessageID is the deterministic Message-ID (without angle brackets) used
// for letter letterID sent to rcpt from the domain of from.
func MessageID(letterID, rcpt, from string) string {
	domain := "samhub.invalid"
	if at := strings.LastIndexByte(from, '@'); at >= 0 && at < len(from)-1 {
		domain = strings.ToLower(from[at+1:])
	}
	return recipientHash(letterID, rcpt) + "@" + domain
}

// outgoing is what one email needs.
type outgoing struct {
	from, to  string
	subject   string
	messageID string
	date      time.Time
	letter    *letter.Letter
}

// writeMessage writes the MIME message: the letter text as the first part,
// a text rendering of the whole letter as letter.txt, then the attachments.
// The multipart boundary is set by us: go-message's random hex boundary
// often holds ten digits in a row, which header scanners take for a CPR.
//
// Attachments are written from their readers as the message goes out (the
// caller's w is the SMTP DATA stream). A part that fails to read returns a
// *body.PartError: the message is then incomplete and must not be ended.
func writeMessage(ctx context.Context, w io.Writer, o outgoing) error {
	var h mail.Header
	h.SetAddressList("From", []*mail.Address{{Address: o.from}})
	h.SetAddressList("To", []*mail.Address{{Address: o.to}})
	h.SetSubject(o.subject)
	h.SetDate(o.date)
	h.SetMessageID(o.messageID)
	if o.letter.Kind == letter.KindNotification {
		h.Set("Auto-Submitted", "auto-generated")
	}
	boundary := "samhub-" + strings.SplitN(o.messageID, "@", 2)[0]
	h.SetContentType("multipart/mixed", map[string]string{"boundary": boundary})

	mw, err := message.CreateWriter(w, h.Header)
	if err != nil {
		return fmt.Errorf("write mail header: %w", err)
	}
	var th message.Header
	th.SetContentType("text/plain", map[string]string{"charset": "utf-8"})
	th.Set("Content-Disposition", "inline")
	th.Set("Content-Transfer-Encoding", "quoted-printable")
	body := o.letter.Text
	if strings.TrimSpace(body) == "" {
		body = "Brevet er vedhæftet som letter.txt."
	}
	if err := writePart(mw, th, []byte(crlf(body))); err != nil {
		return fmt.Errorf("write text part: %w", err)
	}

	if o.letter.Kind != letter.KindNotification {
		text := []byte(crlf(renderLetter(o.letter)))
		if err := writeAttachment(ctx, mw, "letter.txt", "text/plain; charset=utf-8", "the letter's rendering", openBytes(text), int64(len(text))); err != nil {
			return err
		}
	}
	for i, a := range o.letter.Attachments {
		if err := writeAttachment(ctx, mw, a.Name, a.ContentType, fmt.Sprintf("attachment %d", i+1), a.Open, a.Len()); err != nil {
			return err
		}
	}
	if err := mw.Close(); err != nil {
		return fmt.Errorf("finish message: %w", err)
	}
	return nil
}

func writePart(mw *message.Writer, h message.Header, data []byte) error {
	pw, err := mw.CreatePart(h)
	if err != nil {
		return err
	}
	if _, err := pw.Write(data); err != nil {
		return err
	}
	return pw.Close()
}

func writeAttachment(ctx context.Context, mw *message.Writer, name, contentType, what string, open letter.Opener, size int64) error {
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	if name == "" {
		name = "bilag"
	}
	ah := mail.AttachmentHeader{}
	ah.Set("Content-Type", contentType)
	ah.SetFilename(name)
	ah.Set("Content-Transfer-Encoding", "base64")
	pw, err := mw.CreatePart(ah.Header)
	if err != nil {
		return fmt.Errorf("write attachment: %w", err)
	}
	// go-message encodes base64 in lines as it is written.
	var b body.Body
	b.Part(what, open, size, body.Raw)
	if _, err := b.WriteTo(ctx, pw); err != nil {
		var pe *body.PartError
		if errors.As(err, &pe) {
			return err
		}
		return fmt.Errorf("write attachment: %w", err)
	}
	if err := pw.Close(); err != nil {
		return fmt.Errorf("write attachment: %w", err)
	}
	return nil
}

func openBytes(b []byte) letter.Opener {
	return func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
}

// crlf normalises line ends; quoted-printable keeps bare LFs otherwise.
func crlf(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.ReplaceAll(s, "\n", "\r\n")
}

// renderLetter is the letter as plain text for the letter.txt attachment.
// It goes only into the TLS-protected body, never into headers.
func renderLetter(l *letter.Letter) string {
	var b strings.Builder
	line := func(label, value string) {
		if value != "" {
			fmt.Fprintf(&b, "%s: %s\n", label, value)
		}
	}
	b.WriteString("Brev fra Samrådet for børn og unge\n\n")
	line("Reference", Ref(l.ID))
	line("Type", string(l.Kind))
	line("Emne", l.Subject)
	line("Afsender", partyText(l.Sender))
	if !l.Sent.IsZero() {
		line("Sendt", l.Sent.Format("2006-01-02 15:04"))
	}
	if p := l.Patient; p != nil {
		if p.Pseudonym != "" {
			line("Barn", p.Pseudonym)
		} else {
			line("Barn", strings.TrimSpace(p.GivenName+" "+p.FamilyName))
			line("CPR", p.Identifier())
		}
	}
	b.WriteString("\n")
	b.WriteString(l.Text)
	if !strings.HasSuffix(l.Text, "\n") {
		b.WriteString("\n")
	}
	if len(l.Attachments) > 0 {
		b.WriteString("\nBilag:\n")
		for _, a := range l.Attachments {
			fmt.Fprintf(&b, "- %s\n", a.Name)
		}
	}
	return b.String()
}

func partyText(p letter.Party) string {
	parts := make([]string, 0, 3)
	for _, s := range []string{p.Name, p.Unit, p.Role} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, ", ")
}
