package digitalpost

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"path"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/beevik/etree"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/adapters/body"
	"github.com/samhub/samhub/pipeline/letter"
)

// Namespaces of a kombi_request.
const (
	nsMeMo       = "https://DigitalPost.dk/MeMo-1"
	nsFjernprint = "urn:oio:fjernprint:1.0.0"
	nsDkal       = "urn:oio:dkal:1.0.0"
)

// file is one file of a MeMo document, sent from its reader.
type file struct {
	format string // MIME type
	name   string
	open   letter.Opener
	size   int64
	what   string // "attachment 2", for errors
}

func textFile(name, text string) file {
	b := []byte(text)
	return file{format: "text/plain", name: name, size: int64(len(b)), what: "the letter's text",
		open: func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }}
}

// contents is what a letter sends: its main document and the additional
// ones, each one file.
type contents struct {
	main       file
	additional []file
}

// fileTypes are the attachment types sent, by what a council letter
// carries; Digital Post allows these ("Tilladte filtyper i Digital Post").
var fileTypes = map[string]string{"application/pdf": ".pdf", "text/plain": ".txt", "image/jpeg": ".jpg", "image/png": ".png"}

// documents picks what the custody holders get: the first PDF as the main
// document, else the letter's text; every other attachment and, beside a
// PDF, the text, as additional documents. The original (the outbox entry,
// a MedCom XML) is never sent. A type Digital Post does not take is a
// permanent error naming the type, not the file (a file name may name the
// child).
func documents(ctx context.Context, l *letter.Letter) (contents, error) {
	var c contents
	var pdfSeen bool
	var rest []file
	for i, at := range l.Attachments {
		mt, _, _ := mime.ParseMediaType(at.ContentType)
		if mt == "" || mt == "application/octet-stream" {
			mt = mime.TypeByExtension(strings.ToLower(path.Ext(at.Name)))
			mt, _, _ = mime.ParseMediaType(mt)
		}
		ext, ok := fileTypes[mt]
		if !ok {
			return c, adapters.Permanent("attachment_type", fmt.Sprintf("attachment %d is of type %q, which this adapter does not send by Digital Post (PDF, text, JPEG and PNG are sent); send the letter without it or as PDF", i+1, orNone(mt)), nil)
		}
		if at.Len() == 0 {
			return c, adapters.Permanent("attachment_empty", fmt.Sprintf("attachment %d is empty", i+1), nil)
		}
		// The checks read the part (a PDF's first bytes, a text whole)
		// before anything is sent; the message then reads it again.
		switch {
		case mt == "application/pdf":
			ok, err := hasPrefix(ctx, at.Open, []byte("%PDF-"))
			if err != nil {
				return c, adapters.PartUnreadable(err)
			}
			if !ok {
				return c, adapters.Permanent("attachment_not_pdf", fmt.Sprintf("attachment %d is declared a PDF but is none", i+1), nil)
			}
		case strings.HasPrefix(mt, "text/"):
			ok, err := validUTF8(ctx, at.Open)
			if err != nil {
				return c, adapters.PartUnreadable(err)
			}
			if !ok {
				return c, adapters.Permanent("attachment_charset", fmt.Sprintf("attachment %d is text that is not UTF-8", i+1), nil)
			}
		}
		f := file{format: mt, name: fileName(at.Name, fmt.Sprintf("bilag-%d%s", i+1, ext)), open: at.Open, size: at.Len(), what: fmt.Sprintf("attachment %d", i+1)}
		if mt == "application/pdf" && !pdfSeen {
			pdfSeen, c.main = true, f
			continue
		}
		rest = append(rest, f)
	}
	text := strings.TrimSpace(l.Text)
	switch {
	case pdfSeen && text != "":
		c.additional = append(c.additional, textFile("brev.txt", text+"\n"))
	case !pdfSeen && text != "":
		c.main = textFile("brev.txt", text+"\n")
	case !pdfSeen && len(rest) > 0:
		c.main, rest = rest[0], rest[1:]
	case !pdfSeen:
		return c, adapters.Permanent("empty_letter", "the letter has neither text nor a file to send", nil)
	}
	c.additional = append(c.additional, rest...)
	return c, nil
}

// hasPrefix reports whether a part starts with p.
func hasPrefix(ctx context.Context, open letter.Opener, p []byte) (bool, error) {
	r, err := open(ctx)
	if err != nil {
		return false, err
	}
	defer r.Close()
	head := make([]byte, len(p))
	n, err := io.ReadFull(r, head)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return false, err
	}
	return bytes.Equal(head[:n], p), nil
}

// validUTF8 reads a part through and reports whether it is UTF-8, holding
// a block at a time.
func validUTF8(ctx context.Context, open letter.Opener) (bool, error) {
	r, err := open(ctx)
	if err != nil {
		return false, err
	}
	defer r.Close()
	buf := make([]byte, 32<<10)
	carry := 0 // bytes of a rune cut by the block's end, moved to the front
	for {
		n, err := r.Read(buf[carry:])
		n += carry
		end := n
		if !errors.Is(err, io.EOF) {
			// Hold back an incomplete rune at the end for the next block.
			for k := 1; k <= utf8.UTFMax && k <= n; k++ {
				if utf8.RuneStart(buf[n-k]) {
					if !utf8.FullRune(buf[n-k : n]) {
						end = n - k
					}
					break
				}
			}
		}
		if !utf8.Valid(buf[:end]) {
			return false, nil
		}
		carry = copy(buf, buf[end:n])
		if errors.Is(err, io.EOF) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
	}
}

// fileName keeps a file name without a path, or gives one.
func fileName(name, fallback string) string {
	name = strings.TrimSpace(path.Base(strings.ReplaceAll(name, `\`, "/")))
	if name == "" || name == "." || name == "/" || utf8.RuneCountInString(name) > 200 {
		return fallback
	}
	return name
}

func orNone(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// kombiRequest writes the request for one custody holder. The same letter
// to the same holder gives the same bytes (createdDateTime is the
// letter's), so a resend is a repeat of the same message.
func (a *Adapter) kombiRequest(l *letter.Letter, cpr, uuid string, c contents) (*body.Body, error) {
	var tp body.Template
	doc := etree.NewDocument()
	doc.CreateProcInst("xml", `version="1.0" encoding="UTF-8"`)
	root := doc.CreateElement("kombi_request")
	add(root, "KombiValgKode", kombiValgKode(a.cfg.Choice))
	msg := root.CreateElement("memo:Message")
	msg.CreateAttr("xmlns:memo", nsMeMo)
	msg.CreateAttr("memoVersion", "1.1")
	msg.CreateAttr("memoSchVersion", "1.1.0")

	h := msg.CreateElement("memo:MessageHeader")
	add(h, "memo:messageType", "DIGITALPOST")
	add(h, "memo:messageUUID", uuid)
	add(h, "memo:label", strings.TrimSpace(a.cfg.Label))
	add(h, "memo:mandatory", fmt.Sprint(a.cfg.Mandatory))
	add(h, "memo:legalNotification", fmt.Sprint(a.cfg.LegalNotification))
	snd := h.CreateElement("memo:Sender")
	add(snd, "memo:senderID", a.cfg.Sender.CVR)
	add(snd, "memo:idType", "CVR")
	add(snd, "memo:label", a.cfg.Sender.Name)
	rcp := h.CreateElement("memo:Recipient")
	add(rcp, "memo:recipientID", cpr)
	add(rcp, "memo:idType", "CPR")

	mb := msg.CreateElement("memo:MessageBody")
	created := l.Sent
	if created.IsZero() {
		created = l.Received
	}
	if created.IsZero() {
		created = a.now()
	}
	add(mb, "memo:createdDateTime", created.UTC().Truncate(time.Second).Format(time.RFC3339))
	a.document(mb.CreateElement("memo:MainDocument"), c.main, &tp)
	for _, f := range c.additional {
		a.document(mb.CreateElement("memo:AdditionalDocument"), f, &tp)
	}

	if a.cfg.Choice == choiceAutomatic && c.main.format == "application/pdf" {
		// For a citizen exempt from Digital Post the service prints this.
		s := root.CreateElement("fjernprint:ForsendelseISamling")
		s.CreateAttr("xmlns:fjernprint", nsFjernprint)
		s.CreateAttr("xmlns:dkal", nsDkal)
		fi := s.CreateElement("fjernprint:ForsendelseI")
		add(fi, "fjernprint:AfsendelseIdentifikator", uuid)
		add(fi, "fjernprint:ForsendelseTypeIdentifikator", a.cfg.Print.ForsendelseType)
		add(fi.CreateElement("fjernprint:ForsendelseModtager").CreateElement("dkal:AfsendelseModtager"), "dkal:CPRnummerIdentifikator", cpr)
		add(fi, "dkal:FilformatNavn", "PDF")
		add(fi, "dkal:MeddelelseIndholdData", b64(tp.Mark(c.main.what, c.main.open, c.main.size)))
		add(fi.CreateElement("fjernprint:DokumentParametre"), "fjernprint:TitelTekst", strings.TrimSpace(a.cfg.Label))
	}
	doc2, err := doc.WriteToBytes()
	if err != nil {
		return nil, err
	}
	return tp.Body(doc2)
}

// document writes one file; its content is a mark the body replaces with
// the file's bytes in base64 as the request goes out.
func (a *Adapter) document(d *etree.Element, f file, tp *body.Template) {
	fe := d.CreateElement("memo:File")
	add(fe, "memo:encodingFormat", f.format)
	add(fe, "memo:filename", f.name)
	add(fe, "memo:language", a.cfg.Language)
	add(fe, "memo:content", b64(tp.Mark(f.what, f.open, f.size)))
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func add(parent *etree.Element, tag, text string) *etree.Element {
	e := parent.CreateElement(tag)
	e.SetText(text)
	return e
}
