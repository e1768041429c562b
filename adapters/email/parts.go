package email

import (
	"bufio"
	"errors"
	"io"
	"math"
	"mime"
	"strings"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

// maxHeaderBytes bounds the message header, as go-message's reader does.
const maxHeaderBytes = 1 << 20

var errHeaderTooLarge = errors.New("header too large")

// readHeader reads the message header from body and returns the reader of
// what follows it.
func readHeader(body io.Reader) (mail.Header, io.Reader, error) {
	lr := &headerLimit{r: body, n: maxHeaderBytes}
	br := bufio.NewReader(lr)
	h, err := textproto.ReadHeader(br)
	if err != nil {
		return mail.Header{}, nil, err
	}
	lr.n = math.MaxInt64
	return mail.Header{Header: message.Header{Header: h}}, br, nil
}

// headerLimit reads at most n bytes and then fails with errHeaderTooLarge:
// an io.LimitedReader's EOF would end the header quietly and drop the rest
// of the message.
type headerLimit struct {
	r io.Reader
	n int64
}

func (l *headerLimit) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errHeaderTooLarge
	}
	p = p[:min(int64(len(p)), l.n)]
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// partWalker hands out a message's leaf parts depth first, nested
// multiparts flattened and classed inline or attachment, as go-message's
// mail.Reader does, with one difference: mail.Reader converts every text/*
// part to UTF-8, attached files too, which changes their bytes (an attached
// ISO-8859-1 XML document then contradicts its own encoding declaration).
// Here every part has its transfer encoding undone, and only the text the
// letter carries is converted from its charset.
type partWalker struct {
	stack []*textproto.MultipartReader
	top   *message.Header // the message itself, until next has looked at it
	body  io.Reader       // the message's body, for top
}

func newPartWalker(h mail.Header, body io.Reader) *partWalker {
	return &partWalker{top: &h.Header, body: body}
}

// next returns the next leaf part, or io.EOF after the last. As with
// mail.Reader, a part's body must be read before the next call, and a part
// in an unknown transfer encoding is an error.
func (w *partWalker) next() (*mail.Part, error) {
	for {
		var (
			h    message.Header
			body io.Reader
		)
		switch {
		case w.top != nil:
			h, body = *w.top, w.body
			w.top = nil
		case len(w.stack) == 0:
			return nil, io.EOF
		default:
			p, err := w.stack[len(w.stack)-1].NextPart()
			if err == io.EOF {
				w.stack = w.stack[:len(w.stack)-1]
				continue
			}
			if err != nil {
				return nil, err
			}
			h, body = message.Header{Header: p.Header}, p
		}
		t, params, _ := h.ContentType()
		if strings.HasPrefix(t, "multipart/") {
			w.stack = append(w.stack, textproto.NewMultipartReader(body, params["boundary"]))
			continue
		}
		return leaf(h, t, body)
	}
}

// leaf decodes one non-multipart part.
func leaf(h message.Header, t string, body io.Reader) (*mail.Part, error) {
	disp, _, _ := h.ContentDisposition()
	inline := disp == "inline" || (disp != "attachment" && strings.HasPrefix(t, "text/"))
	var ph mail.PartHeader = &mail.AttachmentHeader{Header: h}
	if inline {
		ph = &mail.InlineHeader{Header: h}
	}
	decodeBy := h
	if !inline || (t != "text/plain" && t != "text/html") {
		// A file: only the transfer encoding is undone, so it keeps the
		// bytes its sender attached.
		var th textproto.Header
		if cte := h.Get("Content-Transfer-Encoding"); cte != "" {
			th.Set("Content-Transfer-Encoding", cte)
		}
		decodeBy = message.Header{Header: th}
	}
	e, err := message.New(decodeBy, body)
	if err != nil && message.IsUnknownEncoding(err) {
		return nil, err
	}
	// An unknown charset leaves the text as sent; the caller's UTF-8 check
	// then refuses it with a clear reason.
	return &mail.Part{Header: ph, Body: e.Body}, nil
}

// fileType is the media type an attachment is stored under: the type, and
// for text its charset, which its bytes (kept as sent) are in.
func fileType(t string, params map[string]string) string {
	if cs := params["charset"]; cs != "" && strings.HasPrefix(t, "text/") {
		if s := mime.FormatMediaType(t, map[string]string{"charset": cs}); s != "" {
			return s
		}
	}
	return t
}
