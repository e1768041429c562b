package medcompeer

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/beevik/etree"
	"github.com/google/uuid"

	"github.com/samhub/samhub/adapters/medcom/fhirmsg"
	"github.com/samhub/samhub/adapters/medcom/oioxml"
	"github.com/samhub/samhub/adapters/medcom/xmlsafe"
)

// Formats of letters and acknowledgements.
const (
	FormatXDIS91   = "xdis91"
	FormatFHIRXML  = "fhir-xml"
	FormatFHIRJSON = "fhir-json"
	FormatXCTL     = "xctl"
	FormatXBIN01   = "xbin01"
)

// replyData is what answering a received letter needs.
type replyData struct {
	em  *oioxml.Emessage
	ce  *oioxml.ClinicalEmail
	msg *fhirmsg.Message
}

// rootName is the name of data's root element, "{" for JSON, or "" when
// neither can be seen.
func rootName(data []byte) string {
	body := bytes.TrimLeft(bytes.TrimPrefix(data, []byte{0xEF, 0xBB, 0xBF}), " \t\r\n")
	if len(body) > 0 && body[0] == '{' {
		return "{"
	}
	dec := xml.NewDecoder(bytes.NewReader(body))
	dec.CharsetReader = func(_ string, r io.Reader) (io.Reader, error) { return r, nil } // the root's ASCII name is all that is read
	for range 16 {
		tok, err := dec.RawToken()
		if err != nil {
			return ""
		}
		if se, ok := tok.(xml.StartElement); ok {
			return se.Name.Local
		}
	}
	return ""
}

// take examines one file from out/, records it and answers it.
func (p *Peer) take(name string, data []byte) {
	p.mu.Lock()
	first := len(p.acks)
	p.mu.Unlock()
	defer func() {
		sum := sha256.Sum256(data)
		p.mu.Lock()
		for i := first; i < len(p.acks); i++ {
			p.acks[i].SHA256 = hex.EncodeToString(sum[:])
		}
		p.mu.Unlock()
	}()
	switch rootName(data) {
	case "Emessage":
		p.takeOIOXML(name, data)
	case "{", "Bundle", "VANSEnvelope":
		p.takeFHIR(name, data)
	default:
		p.record(&Letter{File: name, At: p.cfg.Now(), Raw: data, Problems: []string{"file: neither an OIOXML Emessage nor a FHIR message (XML, JSON or in a VANSEnvelope)"}})
	}
}

func errLines(err error) []string {
	if err == nil {
		return nil
	}
	var out []string
	for _, l := range strings.Split(err.Error(), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

func (p *Peer) takeOIOXML(name string, data []byte) {
	now := p.cfg.Now()
	m, err := oioxml.Parse(data, p.lim)
	if m == nil {
		p.record(&Letter{File: name, At: now, Format: FormatXDIS91, Raw: data, Problems: append([]string{"not readable as OIOXML"}, errLines(err)...)})
		return
	}
	problems := errLines(err)
	for _, rc := range m.Receipts {
		p.recordReceipt(name, rc, problems)
	}
	for _, b := range m.Binaries {
		p.takeBinary(name, m, b, problems)
	}
	for _, ce := range m.Letters {
		hl := m.Letter(ce, oioxml.Input{Source: "medcompeer", Data: data, Filename: name})
		l := &Letter{
			File: name, At: now, Format: FormatXDIS91, Charset: m.Charset, Raw: data,
			Kind:       hl.Kind,
			ID:         oioxml.LetterID(ce.Sender.EAN, ce.Identifier),
			EnvelopeID: m.Envelope.Identifier, Thread: ce.EpisodeOfCareIdentifier,
			Subject: ce.Subject, Text: strings.Join(ce.Texts, "\n\n"),
			From: xdisOrg(ce.Sender), To: xdisOrg(ce.Receiver),
			Patient:  *hl.Patient,
			Problems: append([]string(nil), problems...),
			reply:    &replyData{em: m, ce: ce},
		}
		if m.Charset == "" {
			l.Charset = "UTF-8"
		}
		for _, ref := range ce.References {
			if ref.BIN != nil {
				l.Files = append(l.Files, ref.BIN.Identifier)
			}
		}
		l.Problems = append(l.Problems, p.checkXSD(data, ce.Index)...)
		party, perr := p.partyOf(l.To)
		l.Problems = append(l.Problems, perr...)
		l.Party = party.GLN
		// Answered before it is recorded, so a test that sees the letter
		// sees its answer too. VANS would bounce a letter to a receiver
		// not played here: no answer.
		if party.GLN != "" {
			p.answerOIOXML(l, m, ce, party)
		}
		p.record(l)
	}
}

// takeBinary keeps the files of an XBIN01 letter for the letter naming
// them (FilesOf) and receipts it as a receiving system does.
func (p *Peer) takeBinary(name string, m *oioxml.Emessage, b *oioxml.BinaryLetter, problems []string) {
	p.mu.Lock()
	if p.objects == nil {
		p.objects = map[string][]byte{}
	}
	for _, o := range b.Objects {
		p.objects[b.Sender.EAN+"#"+o.Identifier] = o.Data
	}
	p.mu.Unlock()
	party, _ := p.partyOf(xdisOrg(b.Receiver))
	if party.GLN == "" || (len(problems) == 0 && !m.Envelope.WantsPositiveReceipt()) {
		return
	}
	opt := oioxml.ReceiptOptions{Type: oioxml.PositiveReceipt, SelfEAN: party.GLN, Letters: []*oioxml.ClinicalEmail{b.ReceiptView()}, Now: p.cfg.Now()}
	if len(problems) > 0 {
		opt.Type, opt.RefuseCode, opt.RefuseText = oioxml.NegativeReceipt, oioxml.RefuseSyntax, "Bilaget overholder ikke standarden"
	}
	if err := p.sendReceipt(m, opt); err != nil {
		p.fail(fmt.Errorf("receipt for %s: %w", name, err))
	}
}

// sendReceipt builds a receipt and drops it for the hub.
func (p *Peer) sendReceipt(m *oioxml.Emessage, opt oioxml.ReceiptOptions) error {
	data, err := oioxml.BuildReceipt(m, opt)
	if err != nil {
		return err
	}
	return p.drop(strings.ToLower(map[string]string{oioxml.PositiveReceipt: "xctl03", oioxml.NegativeReceipt: "xctl02"}[opt.Type])+"-"+oioxml.NewID()+".xml", data)
}

// FilesOf gives the bytes of the files an XDIS91 letter names, by object
// id, as far as their XBIN01 letter arrived.
func (p *Peer) FilesOf(l Letter) map[string][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string][]byte{}
	for _, id := range l.Files {
		if b, ok := p.objects[l.From.GLN+"#"+id]; ok {
			out[id] = b
		}
	}
	return out
}

func xdisOrg(pa oioxml.Party) Org {
	o := Org{Name: pa.OrganisationName, GLN: pa.EAN}
	switch pa.IdentifierCode {
	case "sorkode":
		o.SOR = pa.Identifier
	case "kommunenummer":
		o.Municipality = pa.Identifier
	}
	return o
}

func (p *Peer) recordReceipt(name string, rc *oioxml.Receipt, problems []string) {
	a := Ack{File: name, At: p.cfg.Now(), Format: FormatXCTL, Positive: rc.Positive(), Code: rc.Type,
		From: Org{GLN: rc.SenderEAN}, To: Org{GLN: rc.ReceiverEAN}, Problems: problems}
	if len(rc.OriginalLetters) == 0 {
		a.Of = "envelope:" + rc.OriginalEnvelopeIdentifier
		p.addAck(a)
		return
	}
	for _, o := range rc.OriginalLetters {
		b := a
		b.Of = oioxml.LetterID(rc.OriginalSenderEAN, o.Identifier)
		p.addAck(b)
	}
}

func (p *Peer) addAck(a Ack) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.acks = append(p.acks, a)
}

// answerOIOXML sends the party's receipt for one XDIS91 letter: negative
// when the letter fails a check or the party refuses it, positive when the
// sender asked for positive receipts (pluspositivkvitt), else none.
func (p *Peer) answerOIOXML(l *Letter, m *oioxml.Emessage, ce *oioxml.ClinicalEmail, party Party) {
	opt := oioxml.ReceiptOptions{Type: oioxml.PositiveReceipt, SelfEAN: party.GLN, Letters: []*oioxml.ClinicalEmail{ce}, Now: p.cfg.Now()}
	switch a := p.answerFor(party.GLN); {
	case !l.Valid():
		opt.Type, opt.RefuseCode, opt.RefuseText = oioxml.NegativeReceipt, oioxml.RefuseSyntax, "Brevet overholder ikke standarden: "+strings.Join(l.Problems, "; ")
	case a.Silent:
		return
	case a.Refuse:
		opt.Type, opt.RefuseCode, opt.RefuseText = oioxml.NegativeReceipt, oioxml.RefuseUnspecified, a.Reason
	case !m.Envelope.WantsPositiveReceipt():
		return
	}
	if len([]rune(opt.RefuseText)) > 70*5 {
		opt.RefuseText = string([]rune(opt.RefuseText)[:70*5])
	}
	if err := p.sendReceipt(m, opt); err != nil {
		p.fail(fmt.Errorf("receipt for %s: %w", l.File, err))
		return
	}
	p.setAnswer(l, opt.Type == oioxml.PositiveReceipt)
}

func (p *Peer) setAnswer(l *Letter, positive bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	l.Answer = "negative"
	if positive {
		l.Answer = "positive"
	}
}

// checkXSD validates ClinicalEmail number index (1-based) of an Emessage
// against MedCom's XSD. Only the ClinicalEmail closure is vendored (the
// envelope's EMessage.xsd pulls in every 2006 letter type), as in the
// repository's own XSD tests.
func (p *Peer) checkXSD(data []byte, index int) []string {
	if p.xmllint == "" {
		return nil
	}
	doc, err := xmlsafe.Parse(data, p.lim)
	if err != nil {
		return []string{"xsd: " + err.Error()}
	}
	var ces []*etree.Element
	for _, el := range doc.Root().ChildElements() {
		if el.Tag == "ClinicalEmail" {
			ces = append(ces, el)
		}
	}
	if index < 1 || index > len(ces) {
		return []string{"xsd: ClinicalEmail not found"}
	}
	ce := ces[index-1].Copy()
	ce.CreateAttr("xmlns", oioxml.NS2006)
	out := etree.NewDocument()
	out.CreateProcInst("xml", `version="1.0" encoding="UTF-8"`)
	out.AddChild(ce)
	s, err := out.WriteToString()
	if err != nil {
		return []string{"xsd: " + err.Error()}
	}
	f, err := os.CreateTemp("", "medcompeer-*.xml")
	if err != nil {
		p.fail(err)
		return nil
	}
	defer os.Remove(f.Name())
	_, werr := f.WriteString(s)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		p.fail(werr)
		return nil
	}
	msg, err := exec.Command(p.xmllint, "--noout", "--nonet", "--schema", filepath.Join(p.cfg.XSDDir, "ClinicalEmail.xsd"), f.Name()).CombinedOutput()
	if err == nil {
		return nil
	}
	var probs []string
	for _, line := range strings.Split(string(msg), "\n") {
		// "file:LINE: element X: Schemas validity error : ..." without the temp file name
		if i := strings.Index(line, "element "); i >= 0 && strings.Contains(line, "validity error") {
			probs = append(probs, "xsd: "+strings.TrimSpace(line[i:]))
		}
	}
	if len(probs) == 0 {
		probs = []string{"xsd: xmllint refused the letter: " + strings.TrimSpace(strings.ReplaceAll(string(msg), f.Name(), "letter"))}
	}
	return probs
}

func (p *Peer) takeFHIR(name string, data []byte) {
	now := p.cfg.Now()
	m, err := fhirmsg.Parse(data, p.lim)
	if m == nil || (err != nil && m.HeaderID == "") {
		l := &Letter{File: name, At: now, Raw: data, Problems: append([]string{"not readable as a FHIR message"}, errLines(err)...)}
		if m != nil && m.VANS != nil {
			l.Enveloped = true
		}
		p.record(l)
		return
	}
	problems := errLines(err)
	if err == nil {
		problems = append(problems, errLines(fhirmsg.Validate(m))...)
	}
	format := FormatFHIRXML
	if m.Encoding == fhirmsg.EncodingJSON {
		format = FormatFHIRJSON
	}
	if m.VANS != nil && m.VANS.ToVANS != m.Receiver.GLN {
		problems = append(problems, fmt.Sprintf("VANSEnvelope.ReceiverID: %s is not the message's receiver GLN %s", m.VANS.ToVANS, m.Receiver.GLN))
	}
	if m.Event == fhirmsg.EventAcknowledgement {
		a := Ack{File: name, At: now, Format: format, Enveloped: m.VANS != nil, Problems: problems,
			From: Org{Name: m.Sender.Name, GLN: m.Sender.GLN, SOR: m.Sender.SOR}, To: Org{Name: m.Receiver.Name, GLN: m.Receiver.GLN, SOR: m.Receiver.SOR}}
		if r := m.Response; r != nil {
			a.Code, a.Of, a.Positive = r.Code, r.Identifier, r.Code == fhirmsg.AckOK
			for _, is := range r.Issues {
				code := ""
				if is.Details != is.Text {
					code = is.Details
				}
				a.Issues = append(a.Issues, code+": "+is.Text)
			}
		}
		p.addAck(a)
		return
	}
	ct := fhirmsg.MIMEXML
	if format == FormatFHIRJSON {
		ct = fhirmsg.MIMEJSON
	}
	hl := m.Letter("medcompeer", data, ct)
	l := &Letter{
		File: name, At: now, Format: format, Enveloped: m.VANS != nil, Raw: data,
		Kind: hl.Kind, ID: m.HeaderID, EnvelopeID: m.BundleID, Thread: m.ThreadID, InReplyTo: m.PreviousHeaderID,
		Category: m.Category, Subject: m.Topic, Text: m.Text,
		From:     Org{Name: m.Sender.Name, GLN: m.Sender.GLN, SOR: m.Sender.SOR},
		To:       Org{Name: m.Receiver.Name, GLN: m.Receiver.GLN, SOR: m.Receiver.SOR},
		Problems: problems,
		reply:    &replyData{msg: m},
	}
	if m.Patient != nil {
		l.Patient = *m.Patient
	}
	party, perr := p.partyOf(l.To)
	l.Problems = append(l.Problems, perr...)
	l.Party = party.GLN
	if party.GLN != "" {
		p.answerFHIR(l, m, party)
	}
	p.record(l)
}

// answerFHIR sends the party's Acknowledgement: fatal-error when the
// letter fails a check or the party refuses it, else ok; in a VANSEnvelope
// when the letter came in one.
func (p *Peer) answerFHIR(l *Letter, m *fhirmsg.Message, party Party) {
	code, issues := fhirmsg.AckOK, []fhirmsg.Issue(nil)
	switch a := p.answerFor(party.GLN); {
	case !l.Valid():
		code = fhirmsg.AckFatalError
		for _, pr := range l.Problems {
			issues = append(issues, fhirmsg.Issue{Severity: "error", Code: "invalid", Details: pr})
		}
	case a.Silent:
		return
	case a.Refuse:
		code, issues = fhirmsg.AckFatalError, []fhirmsg.Issue{{Severity: "error", Code: "processing", Details: a.Reason}}
	}
	self := fhirmsg.Organization{Name: party.Name, SOR: party.SOR, GLN: party.GLN}
	data, err := fhirmsg.BuildAcknowledgement(m, code, issues, self, p.cfg.Now())
	if err != nil {
		if l.Valid() {
			p.fail(fmt.Errorf("acknowledgement for %s: %w", l.File, err))
		}
		return // an invalid letter that cannot even be answered: recorded as such
	}
	ext := ".xml"
	if m.Encoding == fhirmsg.EncodingJSON {
		ext = ".json"
	}
	fname := "fhir-ack-" + uuid.NewString() + ext
	if m.VANS != nil {
		ack, err := fhirmsg.Parse(data, p.lim)
		if err != nil {
			p.fail(fmt.Errorf("acknowledgement for %s does not read back: %w", l.File, err))
			return
		}
		data, err = fhirmsg.BuildVANSEnvelope(data, fhirmsg.Envelope{EnvelopeID: uuid.NewString(), MessageID: ack.HeaderID,
			FromGLN: party.GLN, ToGLN: m.Sender.GLN, Encoding: m.Encoding, Name: "MCM:FCTL#" + code, Version: "2.0.0", Now: p.cfg.Now()})
		if err != nil {
			p.fail(fmt.Errorf("envelope for the acknowledgement of %s: %w", l.File, err))
			return
		}
		fname = strings.TrimSuffix(fname, ext) + ".vans.xml"
	}
	if err := p.drop(fname, data); err != nil {
		p.fail(err)
		return
	}
	p.setAnswer(l, code == fhirmsg.AckOK)
}

var errNoReply = errors.New("medcompeer: the letter cannot be answered (it was not readable)")
