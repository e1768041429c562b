package digitalpostsim

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/beevik/etree"
)

// Namespaces of what a kombi_request carries.
const (
	NSMeMo       = "https://DigitalPost.dk/MeMo-1"
	NSFjernprint = "urn:oio:fjernprint:1.0.0"
	NSDkal       = "urn:oio:dkal:1.0.0"
)

// KombiValgKode values the service knows.
const (
	ChoiceDigitalPost = "Digital Post"
	ChoiceAutomatic   = "Automatisk Valg"
	ChoicePhysical    = "Fysisk Post"
	ChoiceNemSMS      = "NemSMS"
)

// AllowedTypes are the file types this simulator lets into a MeMo
// document: Digital Post allows a closed list ("Tilladte filtyper i
// Digital Post"); these are the common ones a council letter uses.
var AllowedTypes = []string{"application/pdf", "text/plain", "text/html", "image/jpeg", "image/png", "image/tiff"}

var (
	cprPattern  = regexp.MustCompile(`^[0-9]{10}$`)
	cvrPattern  = regexp.MustCompile(`^[0-9]{8}$`)
	uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	langPattern = regexp.MustCompile(`^[a-z]{2}$`)
)

// request is a kombi_request as read.
type request struct {
	choice   string
	msg      *Message
	docs     [][]decodedFile // main document first, then each additional document
	print    *PrintPart
	printPDF []byte
}

type decodedFile struct {
	File
	data []byte
}

// invalid is a refusal of the request's content: 400 with its field.
type invalid struct{ field, msg string }

func (e *invalid) Error() string { return e.field + ": " + e.msg }

func bad(field, format string, args ...any) *invalid {
	return &invalid{field, fmt.Sprintf(format, args...)}
}

// parseKombi reads and checks a kombi_request.
func parseKombi(body []byte) (*request, *invalid) {
	doc := etree.NewDocument()
	doc.ReadSettings = etree.ReadSettings{}
	if err := doc.ReadFromBytes(body); err != nil {
		return nil, bad("kombi_request", "not well-formed XML: %v", err)
	}
	root := doc.Root()
	if root == nil {
		return nil, bad("kombi_request", "the body is no XML document")
	}
	if root.Tag != "kombi_request" || root.Space != "" || root.NamespaceURI() != "" {
		return nil, bad("kombi_request", "the root element must be kombi_request (no namespace)")
	}
	rq := &request{}
	var memo, samling *etree.Element
	for _, c := range root.ChildElements() {
		switch {
		case c.Tag == "KombiValgKode" && c.Space == "":
			rq.choice = strings.TrimSpace(c.Text())
		case c.Tag == "Message" && c.NamespaceURI() == NSMeMo:
			memo = c
		case c.Tag == "ForsendelseISamling" && c.NamespaceURI() == NSFjernprint:
			samling = c
		default:
			return nil, bad("kombi_request", "unexpected element %s", c.FullTag())
		}
	}
	switch rq.choice {
	case ChoiceDigitalPost, ChoiceAutomatic:
	case ChoicePhysical, ChoiceNemSMS:
		return nil, bad("KombiValgKode", "%q is not served by this simulator (Digital Post and Automatisk Valg are)", rq.choice)
	case "":
		return nil, bad("KombiValgKode", "is required")
	default:
		return nil, bad("KombiValgKode", "%q is not one of Digital Post, Automatisk Valg, Fysisk Post, NemSMS", rq.choice)
	}
	if memo == nil {
		return nil, bad("Message", "a MeMo Message (namespace %s) is required", NSMeMo)
	}
	if err := parseMessage(memo, rq); err != nil {
		return nil, err
	}
	if samling != nil {
		if rq.choice != ChoiceAutomatic {
			return nil, bad("ForsendelseISamling", "is read only with Automatisk Valg")
		}
		if err := parsePrint(samling, rq); err != nil {
			return nil, err
		}
	}
	return rq, nil
}

// memoChildren checks that every child of e is a memo: element, that the
// known ones come in the order given (MeMo's XSD sequences) and none twice
// unless repeatable, and returns them by name.
func memoChildren(e *etree.Element, path string, order []string, repeatable ...string) (map[string][]*etree.Element, *invalid) {
	out := map[string][]*etree.Element{}
	last := -1
	for _, c := range e.ChildElements() {
		if c.NamespaceURI() != NSMeMo {
			return nil, bad(path, "element %s is not in the MeMo namespace", c.FullTag())
		}
		if c.Space != "memo" {
			// Serviceplatformen reads MeMo elements by the prefix memo only.
			return nil, bad(path+"/"+c.Tag, "MeMo elements must carry the prefix memo (Serviceplatformen does not read a default namespace)")
		}
		i := slices.Index(order, c.Tag)
		if i < 0 {
			return nil, bad(path, "unknown element %s (this simulator knows %s)", c.Tag, strings.Join(order, ", "))
		}
		if i < last || (i == last && !slices.Contains(repeatable, c.Tag)) {
			return nil, bad(path+"/"+c.Tag, "out of order or repeated (MeMo's sequence is %s)", strings.Join(order, ", "))
		}
		last = i
		out[c.Tag] = append(out[c.Tag], c)
	}
	return out, nil
}

func text(m map[string][]*etree.Element, name string) string {
	if len(m[name]) == 0 {
		return ""
	}
	return strings.TrimSpace(m[name][0].Text())
}

var (
	messageOrder = []string{"MessageHeader", "MessageBody"}
	headerOrder  = []string{"messageType", "messageUUID", "messageID", "messageCode", "label", "notification", "additionalNotification",
		"reply", "replyByDateTime", "doNotDeliverUntilDate", "mandatory", "legalNotification", "postType", "Sender", "Recipient",
		"ContentData", "ForwardData", "ReplyData"}
	senderOrder    = []string{"senderID", "idType", "idTypeLabel", "label", "AttentionData", "ContactPoint", "Representative"}
	recipientOrder = []string{"recipientID", "idType", "idTypeLabel", "label", "AttentionData", "ContactPoint"}
	bodyOrder      = []string{"createdDateTime", "MainDocument", "AdditionalDocument", "TechnicalDocument"}
	documentOrder  = []string{"documentID", "label", "File", "Action"}
	fileOrder      = []string{"encodingFormat", "filename", "inLanguage", "language", "content"}
)

func parseMessage(m *etree.Element, rq *request) *invalid {
	if m.Space != "memo" {
		return bad("Message", "MeMo elements must carry the prefix memo (Serviceplatformen does not read a default namespace)")
	}
	if v := m.SelectAttrValue("memoVersion", ""); v != "1.1" {
		return bad("Message@memoVersion", "must be 1.1 (got %q)", v)
	}
	if m.SelectAttrValue("memoSchVersion", "") == "" {
		return bad("Message@memoSchVersion", "is required, e.g. 1.1.0")
	}
	parts, err := memoChildren(m, "Message", messageOrder)
	if err != nil {
		return err
	}
	if len(parts["MessageHeader"]) == 0 || len(parts["MessageBody"]) == 0 {
		return bad("Message", "MessageHeader and MessageBody are required")
	}
	h, err := memoChildren(parts["MessageHeader"][0], "MessageHeader", headerOrder)
	if err != nil {
		return err
	}
	msg := &Message{KombiValgKode: rq.choice}
	if t := text(h, "messageType"); t != "DIGITALPOST" {
		return bad("MessageHeader/messageType", "must be DIGITALPOST for a letter (got %q)", t)
	}
	msg.UUID = strings.ToLower(text(h, "messageUUID"))
	if !uuidPattern.MatchString(msg.UUID) {
		return bad("MessageHeader/messageUUID", "must be a UUID")
	}
	msg.Label = text(h, "label")
	if msg.Label == "" || utf8.RuneCountInString(msg.Label) > 256 {
		return bad("MessageHeader/label", "is required, at most 256 characters")
	}
	var ok bool
	if msg.Mandatory, ok = boolean(text(h, "mandatory")); !ok {
		return bad("MessageHeader/mandatory", "must be true or false")
	}
	if msg.LegalNotification, ok = boolean(text(h, "legalNotification")); !ok {
		return bad("MessageHeader/legalNotification", "must be true or false")
	}
	if len(h["Sender"]) == 0 || len(h["Recipient"]) == 0 {
		return bad("MessageHeader", "Sender and Recipient are required")
	}
	snd, err := memoChildren(h["Sender"][0], "Sender", senderOrder)
	if err != nil {
		return err
	}
	if text(snd, "idType") != "CVR" || !cvrPattern.MatchString(text(snd, "senderID")) {
		return bad("MessageHeader/Sender", "a public sender is senderID: its CVR number (8 digits) with idType CVR")
	}
	if msg.SenderLabel = text(snd, "label"); msg.SenderLabel == "" {
		return bad("MessageHeader/Sender/label", "is required: the sender's name the citizen sees")
	}
	msg.SenderCVR = text(snd, "senderID")
	rcp, err := memoChildren(h["Recipient"][0], "Recipient", recipientOrder)
	if err != nil {
		return err
	}
	if text(rcp, "idType") != "CPR" || !cprPattern.MatchString(text(rcp, "recipientID")) {
		return bad("MessageHeader/Recipient", "a citizen is recipientID: a CPR number (10 digits) with idType CPR")
	}
	msg.RecipientCPR = text(rcp, "recipientID")

	b, err := memoChildren(parts["MessageBody"][0], "MessageBody", bodyOrder, "AdditionalDocument")
	if err != nil {
		return err
	}
	created, perr := time.Parse(time.RFC3339, text(b, "createdDateTime"))
	if perr != nil {
		return bad("MessageBody/createdDateTime", "must be a date-time such as 2026-03-01T10:00:00Z")
	}
	msg.Created = created.UTC()
	if len(b["MainDocument"]) != 1 {
		return bad("MessageBody/MainDocument", "exactly one is required")
	}
	for i, d := range append(b["MainDocument"], b["AdditionalDocument"]...) {
		path := "MessageBody/MainDocument"
		if i > 0 {
			path = fmt.Sprintf("MessageBody/AdditionalDocument[%d]", i)
		}
		files, err := parseDocument(d, path)
		if err != nil {
			return err
		}
		rq.docs = append(rq.docs, files)
	}
	rq.msg = msg
	return nil
}

func parseDocument(d *etree.Element, path string) ([]decodedFile, *invalid) {
	parts, err := memoChildren(d, path, documentOrder, "File", "Action")
	if err != nil {
		return nil, err
	}
	if len(parts["File"]) == 0 {
		return nil, bad(path, "needs at least one File")
	}
	var out []decodedFile
	for i, f := range parts["File"] {
		fp := fmt.Sprintf("%s/File[%d]", path, i)
		fs, err := memoChildren(f, fp, fileOrder)
		if err != nil {
			return nil, err
		}
		df := decodedFile{File: File{EncodingFormat: text(fs, "encodingFormat"), Filename: text(fs, "filename"), Language: text(fs, "language")}}
		mt, _, _ := strings.Cut(df.EncodingFormat, ";")
		if !slices.Contains(AllowedTypes, strings.TrimSpace(strings.ToLower(mt))) {
			return nil, bad(fp+"/encodingFormat", "%q is not a file type Digital Post allows (%s)", df.EncodingFormat, strings.Join(AllowedTypes, ", "))
		}
		if df.Filename == "" || utf8.RuneCountInString(df.Filename) > 255 || strings.ContainsAny(df.Filename, `/\`) {
			return nil, bad(fp+"/filename", "is required: a file name without a path, at most 255 characters")
		}
		if !langPattern.MatchString(df.Language) {
			return nil, bad(fp+"/language", "must be a two-letter language code such as da")
		}
		data, derr := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(text(fs, "content")), ""))
		if derr != nil || len(data) == 0 {
			return nil, bad(fp+"/content", "must be the file's bytes in base64, not empty")
		}
		if strings.EqualFold(strings.TrimSpace(mt), "application/pdf") && !bytes.HasPrefix(data, []byte("%PDF-")) {
			return nil, bad(fp+"/content", "is declared application/pdf but is no PDF")
		}
		if strings.HasPrefix(strings.ToLower(mt), "text/") && !utf8.Valid(data) {
			return nil, bad(fp+"/content", "a text file must be UTF-8")
		}
		df.data, df.Size = data, len(data)
		out = append(out, df)
	}
	return out, nil
}

// parsePrint reads the ForsendelseI of Automatisk Valg: what the print
// service prints for a citizen exempt from Digital Post.
func parsePrint(samling *etree.Element, rq *request) *invalid {
	var fi *etree.Element
	for _, c := range samling.ChildElements() {
		if c.Tag == "ForsendelseI" && c.NamespaceURI() == NSFjernprint {
			fi = c
		}
	}
	if fi == nil {
		return bad("ForsendelseISamling", "a ForsendelseI is required")
	}
	p := &PrintPart{}
	var format, content string
	for _, c := range fi.ChildElements() {
		switch ns := c.NamespaceURI(); {
		case ns == NSFjernprint && c.Tag == "AfsendelseIdentifikator":
			p.AfsendelseID = strings.TrimSpace(c.Text())
		case ns == NSFjernprint && c.Tag == "ForsendelseTypeIdentifikator":
			p.ForsendelseTyp = strings.TrimSpace(c.Text())
		case ns == NSFjernprint && c.Tag == "ForsendelseModtager":
			for _, m := range c.ChildElements() {
				if m.Tag == "AfsendelseModtager" && m.NamespaceURI() == NSDkal {
					for _, id := range m.ChildElements() {
						if id.Tag == "CPRnummerIdentifikator" {
							p.RecipientCPR = strings.TrimSpace(id.Text())
						}
					}
				}
			}
		case ns == NSDkal && c.Tag == "FilformatNavn":
			format = strings.TrimSpace(c.Text())
		case ns == NSDkal && c.Tag == "MeddelelseIndholdData":
			content = c.Text()
		case ns == NSFjernprint && c.Tag == "DokumentParametre":
			for _, d := range c.ChildElements() {
				if d.Tag == "TitelTekst" {
					p.Title = strings.TrimSpace(d.Text())
				}
			}
		}
	}
	switch {
	case !uuidPattern.MatchString(p.AfsendelseID):
		return bad("ForsendelseI/AfsendelseIdentifikator", "must be a UUID")
	case p.ForsendelseTyp == "" || strings.Trim(p.ForsendelseTyp, "0123456789") != "":
		return bad("ForsendelseI/ForsendelseTypeIdentifikator", "must be the number agreed with KOMBIT")
	case p.RecipientCPR != rq.msg.RecipientCPR:
		return bad("ForsendelseI/ForsendelseModtager", "must name the MeMo's recipient by CPRnummerIdentifikator")
	case format != "PDF":
		return bad("ForsendelseI/FilformatNavn", "the print service prints PDF only")
	case p.Title == "":
		return bad("ForsendelseI/DokumentParametre/TitelTekst", "is required")
	}
	data, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(content), ""))
	if err != nil || !bytes.HasPrefix(data, []byte("%PDF-")) {
		return bad("ForsendelseI/MeddelelseIndholdData", "must be a PDF in base64")
	}
	p.Size = len(data)
	rq.print, rq.printPDF = p, data
	return nil
}

func boolean(s string) (bool, bool) {
	switch s {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}
