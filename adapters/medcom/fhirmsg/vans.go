package fhirmsg

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/samhub/samhub/adapters/medcom/partscan"
	"github.com/samhub/samhub/adapters/medcom/xmlsafe"
)

// vansNS is the VANSEnvelope namespace in the only schema seen (an unofficial
// copy, domain/medcom.md §3.1); any namespace is accepted when reading.
const vansNS = "urn:oio:medcom:vans-envelope:1.0.4"

func fromVANS(root *etree.Element, lim xmlsafe.Limits, parts *partscan.Doc) (*Message, error) {
	child := func(e *etree.Element, name string) *etree.Element {
		if e == nil {
			return nil
		}
		for _, c := range e.ChildElements() {
			if c.Tag == name {
				return c
			}
		}
		return nil
	}
	text := func(e *etree.Element) string {
		if e == nil {
			return ""
		}
		return strings.TrimSpace(xmlsafe.Text(e))
	}
	info := &VANSInfo{
		EnvelopeID: text(child(root, "EnvelopeIdentifier")),
		FromVANS:   text(child(root, "SenderID")),
		ToVANS:     text(child(root, "ReceiverID")),
	}
	partial := &Message{VANS: info}
	msg := child(root, "Message")
	if msg == nil {
		if child(root, "Receipt") != nil {
			return partial, errors.New("VANSEnvelope: carries a VANS Receipt, not a Message")
		}
		return partial, errors.New("VANSEnvelope.Message: must be present")
	}
	if info.EnvelopeID == "" {
		return partial, errors.New("VANSEnvelope.EnvelopeIdentifier: must be present")
	}
	if tr := child(child(msg, "MetaInformation"), "Transport"); tr != nil {
		for _, st := range tr.ChildElements() {
			if st.Tag == "ServiceTag" && st.SelectAttrValue("name", "") == "MCM:MIME" {
				info.MIME = text(st)
			}
		}
	}
	switch info.MIME {
	case MIMEXML, MIMEJSON, "":
	default:
		return partial, fmt.Errorf("VANSEnvelope.Message.MetaInformation.Transport.ServiceTag(MCM:MIME): must be %s or %s", MIMEXML, MIMEJSON)
	}
	data := text(child(msg, "Data"))
	if data == "" {
		return partial, errors.New("VANSEnvelope.Message.Data: must hold the base64 FHIR message")
	}
	declared := text(child(child(child(msg, "MetaInformation"), "Document"), "SizeInBytes"))
	var m *Message
	var err error
	if p := parts.Part(data); p != nil && p.Envelope {
		// Lifted out and scanned as it was decoded: the message is the
		// scanned one, its own attachments parts of the input in turn.
		if p.Bad != nil || p.Nested == nil {
			return partial, errors.New("VANSEnvelope.Message.Data: must be base64")
		}
		if err := checkSizeInBytes(declared, p.Encoded, p.Size); err != nil {
			return partial, err
		}
		m, err = parse(p.Nested.Data, scannedLimits(p.Nested, lim), 1, p.Nested)
	} else {
		payload, derr := decodeBase64(data)
		if derr != nil {
			return partial, errors.New("VANSEnvelope.Message.Data: must be base64")
		}
		encoded := len(data) - strings.Count(data, "\n") - strings.Count(data, "\r") - strings.Count(data, " ") - strings.Count(data, "\t")
		if err := checkSizeInBytes(declared, int64(encoded), int64(len(payload))); err != nil {
			return partial, err
		}
		m, err = parse(payload, lim, 1, nil)
	}
	if err != nil {
		return partial, fmt.Errorf("VANSEnvelope.Message.Data: %w", err)
	}
	switch {
	case info.MIME == MIMEXML && m.Encoding != EncodingXML, info.MIME == MIMEJSON && m.Encoding != EncodingJSON:
		return partial, fmt.Errorf("VANSEnvelope.Message.Data: is FHIR %s but MCM:MIME says %s", strings.ToUpper(m.Encoding), info.MIME)
	}
	m.VANS = info
	return m, nil
}

// checkSizeInBytes holds Document/SizeInBytes (xs:int), when the sender
// gives it, to the message: the decoded message's length, or (read either
// way, as the schema does not say) the length of its base64 in Data.
func checkSizeInBytes(declared string, encoded, payload int64) error {
	if declared == "" {
		return nil
	}
	const path = "VANSEnvelope.Message.MetaInformation.Document.SizeInBytes"
	n, err := strconv.ParseInt(declared, 10, 32)
	if err != nil || n < 0 {
		return fmt.Errorf("%s: must be a number of bytes (xs:int, 0 to 2147483647)", path)
	}
	if n != payload && n != encoded {
		return fmt.Errorf("%s: declares %d bytes, but Data holds a message of %d bytes (%d in base64)", path, n, payload, encoded)
	}
	return nil
}

// Envelope is what BuildVANSEnvelope needs besides the payload.
type Envelope struct {
	EnvelopeID string // new UUID per transmission (also on resend)
	MessageID  string // MetaInformation/Identifier; new UUID per message, kept on resend
	FromGLN    string
	ToGLN      string
	Encoding   string // EncodingXML or EncodingJSON: the payload's
	Name       string // e.g. "MCM:FDIS91#other", "MCM:FCTL#ok"
	Version    string // "5.0" for CareCommunication, "2.0.0" for Acknowledgement
	Now        time.Time
}

// BuildVANSEnvelope wraps one FHIR message for VANS (domain/medcom.md §3.1).
// The element set follows the unofficial 1.0.4 schema; check it against
// MedCom's "Den gode VANSEnvelope" before production.
func BuildVANSEnvelope(payload []byte, env Envelope) ([]byte, error) {
	mime := MIMEXML
	switch env.Encoding {
	case EncodingXML:
	case EncodingJSON:
		mime = MIMEJSON
	default:
		return nil, fmt.Errorf("envelope encoding: must be %q or %q", EncodingXML, EncodingJSON)
	}
	for _, f := range []struct{ name, v string }{{"EnvelopeID", env.EnvelopeID}, {"MessageID", env.MessageID}, {"FromGLN", env.FromGLN}, {"ToGLN", env.ToGLN}, {"Name", env.Name}} {
		if f.v == "" {
			return nil, fmt.Errorf("envelope %s: must not be empty", f.name)
		}
	}
	doc := etree.NewDocument()
	doc.CreateProcInst("xml", `version="1.0" encoding="UTF-8"`)
	root := doc.CreateElement("VANSEnvelope")
	root.CreateAttr("xmlns", vansNS)
	id := func(parent *etree.Element, tag, v string) {
		e := parent.CreateElement(tag)
		e.CreateAttr("EndPointType", "EAN")
		e.SetText(v)
	}
	id(root, "SenderID", env.FromGLN)
	id(root, "ReceiverID", env.ToGLN)
	root.CreateElement("EnvelopeIdentifier").SetText(env.EnvelopeID)
	now := env.Now
	if now.IsZero() {
		now = time.Now()
	}
	root.CreateElement("SentDateTime").SetText(now.Format("2006-01-02T15:04:05"))
	msg := root.CreateElement("Message")
	meta := msg.CreateElement("MetaInformation")
	meta.CreateElement("Identifier").SetText(env.MessageID)
	doc2 := meta.CreateElement("Document")
	doc2.CreateElement("Format").SetText("HL7")
	doc2.CreateElement("Name").SetText(env.Name)
	if env.Version != "" {
		doc2.CreateElement("Version").SetText(env.Version)
	}
	doc2.CreateElement("SizeInBytes").SetText(strconv.Itoa(len(payload)))
	tr := meta.CreateElement("Transport")
	tr.CreateElement("Type").SetText("reliable")
	tr.CreateElement("TransformMessage").SetText("false")
	st := tr.CreateElement("ServiceTag")
	st.CreateAttr("name", "MCM:MIME")
	st.SetText(mime)
	msg.CreateElement("Data").SetText(base64Std(payload))
	doc.Indent(2)
	return doc.WriteToBytes()
}
