package email

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/url"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/charset"
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
	h = message.Header{Header: h.Header.Copy()} // the original bytes stay as they are
	for _, k := range []string{"Content-Type", "Content-Disposition"} {
		if v := h.Get(k); v != "" {
			if u := paramsInUTF8(v); u != v {
				h.Set(k, u)
			}
		}
	}
	t, _, _ = h.ContentType()
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

// extFirst is the first (or only) section of an RFC 2231 extended
// parameter: name*=charset'lang'value or name*0*=charset'lang'value.
var extFirst = regexp.MustCompile(`^(\s*)([A-Za-z0-9!#$&+.^_` + "`" + `|~-]+)\*(0\*)?=([^'"]*)'([^'"]*)'(.*)$`)

// paramsInUTF8 rewrites the RFC 2231 parameters of a Content-Type or
// Content-Disposition value that are in a charset other than UTF-8
// (filename*=iso-8859-1'da'%E6%F8%E5.pdf, as older mail clients write a Danish
// file name) into UTF-8: Go's mime.ParseMediaType decodes only UTF-8 and
// US-ASCII and drops the others, so the attachment lost its name. A value
// it cannot convert is left as it was.
func paramsInUTF8(v string) string {
	if !strings.Contains(v, "*=") {
		return v
	}
	segs := strings.Split(v, ";")
	changed := false
	for i, s := range segs {
		m := extFirst.FindStringSubmatch(s)
		if m == nil {
			continue
		}
		cs := strings.ToLower(strings.TrimSpace(m[4]))
		if cs == "" || cs == "utf-8" || cs == "us-ascii" {
			continue
		}
		first, ok := toUTF8Pct(cs, m[6])
		if !ok {
			continue
		}
		if m[3] == "" {
			segs[i] = m[1] + m[2] + "*=utf-8''" + first
			changed = true
			continue
		}
		// Continuations: name*1*=…, name*2*=… carry bytes in the same
		// charset (name*1="…" plain text stays as it is).
		prefix := strings.ToLower(m[2]) + "*"
		rest := map[int]string{}
		good := true
		for j := i + 1; j < len(segs) && good; j++ {
			t := strings.TrimLeft(segs[j], " \t\r\n")
			k, val, found := strings.Cut(t, "=")
			if !found || !strings.HasPrefix(strings.ToLower(k), prefix) || !strings.HasSuffix(k, "*") {
				continue
			}
			if rest[j], good = toUTF8Pct(cs, val); good {
				rest[j] = segs[j][:len(segs[j])-len(t)] + k + "=" + rest[j]
			}
		}
		if !good {
			continue
		}
		segs[i] = m[1] + m[2] + "*0*=utf-8''" + first
		for j, s := range rest {
			segs[j] = s
		}
		changed = true
	}
	if !changed {
		return v
	}
	return strings.Join(segs, ";")
}

// toUTF8Pct decodes an RFC 2231 percent-encoded value in charset cs and
// encodes it again as UTF-8.
func toUTF8Pct(cs, v string) (string, bool) {
	raw, err := url.PathUnescape(strings.TrimSpace(v))
	if err != nil {
		return "", false
	}
	r, err := charset.Reader(cs, strings.NewReader(raw))
	if err != nil {
		return "", false
	}
	b, err := io.ReadAll(r)
	if err != nil || !utf8.Valid(b) {
		return "", false
	}
	var out strings.Builder
	for _, c := range b {
		if c < utf8.RuneSelf && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$&+-.^_`|~", c) >= 0) {
			out.WriteByte(c)
			continue
		}
		fmt.Fprintf(&out, "%%%02X", c)
	}
	return out.String(), true
}
