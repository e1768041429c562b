package oioxml

import (
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/samhub/samhub/pipeline/letter"
)

// Format is letter.Letter.Format for XDIS91 letters; BinaryFormat for
// XBIN01 letters that travel on their own; ReceiptFormat for receipts.
const (
	Format        = "xdis91"
	BinaryFormat  = "xbin01"
	ReceiptFormat = "oioxml-receipt"
)

// LetterID is the hub's id for an OIOXML letter: sender GLN and letter id
// joined by "#", MedCom's own reference form "[lokationsnummer]#[brevid]".
// Letter ids are unique per sender only, so the GLN keeps senders apart.
func LetterID(senderEAN, letterID string) string { return senderEAN + "#" + letterID }

// Input describes where an Emessage came from.
type Input struct {
	Source   string // adapter instance name
	Data     []byte // the file exactly as received
	Filename string
	Received time.Time
	// Object, when set, gives the bytes of the object a BIN reference of
	// ce names, when they arrived (in an XBIN01 letter); nil leaves the
	// reference a note that the file did not come (missingObject).
	Object func(ce *ClinicalEmail, ref *BinObject) []byte
	// SkipBinary, when set, leaves out the XBIN01 letters it reports: their
	// objects travel in the letters that name them.
	SkipBinary func(b *BinaryLetter) bool
}

// ToLetters maps every letter and every receipted letter of m.
func (m *Emessage) ToLetters(in Input) []*letter.Letter {
	var out []*letter.Letter
	for _, ce := range m.Letters {
		out = append(out, m.Letter(ce, in))
	}
	for _, b := range m.Binaries {
		if in.SkipBinary == nil || !in.SkipBinary(b) {
			out = append(out, m.Binary(b, in))
		}
	}
	for _, rc := range m.Receipts {
		out = append(out, m.ReceiptLetters(rc, in)...)
	}
	return out
}

// Letter maps one XDIS91 letter.
//
// Kind: XDIS91 has no reply or referral marker (StatusCode is only nytbrev or
// rettetbrev, and there is no in-reply-to, medcom.md §5.4). In this council
// general practices refer cases, so a new letter (nytbrev) from a practice
// (IdentifierCode ydernummer) is a referral; every other letter, and every
// correction (rettetbrev), is a note. KindReply is never produced from XDIS91;
// the pipeline may reclassify by thread. The status code is kept in Meta.
func (m *Emessage) Letter(ce *ClinicalEmail, in Input) *letter.Letter {
	kind := letter.KindNote
	if ce.StatusCode == "nytbrev" && ce.Sender.IdentifierCode == "ydernummer" {
		kind = letter.KindReferral
	}
	sent := ce.Authorisation
	if sent.IsZero() {
		sent = m.Envelope.Sent
	}
	l := &letter.Letter{
		ID:        LetterID(ce.Sender.EAN, ce.Identifier),
		Kind:      kind,
		Format:    Format,
		Source:    in.Source,
		ThreadID:  threadID(ce.EpisodeOfCareIdentifier),
		Received:  in.Received,
		Sent:      sent,
		Sender:    ce.Sender.toParty(),
		Receivers: []letter.Party{ce.Receiver.toParty()},
		Patient:   ce.Patient.toPatient(),
		Priority:  priorityToFHIR[ce.Priority],
		Subject:   ce.Subject,
		Text:      strings.Join(ce.Texts, "\n\n"),
		Original:  original(in, m.Charset),
		Meta:      m.meta(ce),
	}
	if ce.EpisodeOfCareIdentifier != "" {
		l.Meta[MetaEpisodeOfCareID] = ce.EpisodeOfCareIdentifier
	}
	if ce.Patient.CPR == "0000000000" {
		l.Meta[MetaCPRUnknown] = "true"
	}
	for i, ref := range ce.References {
		switch {
		case ref.URL != "":
			l.Attachments = append(l.Attachments, letter.NewAttachment(ref.Description, "text/uri-list", []byte(ref.URL)))
		case ref.BIN != nil:
			name, ct := fileName(ref.Description, ref.BIN.ExtensionCode), objectMIME(ref.BIN.ExtensionCode)
			if data := objectData(in, ce, ref.BIN); data != nil {
				l.Attachments = append(l.Attachments, letter.NewAttachment(name, ct, data))
			} else {
				// Not arrived: a note in its place says so, rather than an
				// attachment without bytes, which no destination can take.
				l.Attachments = append(l.Attachments, missingObject(name, ref.BIN))
			}
			l.Meta[MetaBINPrefix+strconv.Itoa(i+1)] = ref.BIN.Identifier
		case ref.SUP:
			l.Meta[MetaSUPPrefix+strconv.Itoa(i+1)] = "true"
		}
	}
	return l
}

// fileName is a BIN reference's description with the object's extension,
// unless it ends with it already, or the extension is MedCom's catch-all
// "bin" and the description names one (a file MedCom's list has no code
// for, such as report.docx, keeps its name).
func fileName(desc, ext string) string {
	lower := strings.ToLower(desc)
	if strings.HasSuffix(lower, "."+ext) || (ext == "bin" && path.Ext(lower) != "") {
		return desc
	}
	return desc + "." + ext
}

// MissingObjectType is the media type of the note standing in for a file a
// letter names that did not come with it.
const MissingObjectType = "text/plain; charset=utf-8"

func missingObject(name string, b *BinObject) letter.Attachment {
	note := fmt.Sprintf("Brevet nævner bilaget %q (objekt-id %s, %d bytes), men bilaget kom ikke med brevet.\n"+
		"MedCom sender det i en XBIN01-meddelelse for sig. Kommer den senere, arkiveres bilaget som et dokument for sig.\n", name, b.Identifier, b.Size)
	return letter.NewAttachment(name+" (mangler).txt", MissingObjectType, []byte(note))
}

// meta is what the adapter notes of a letter (XDIS91, or XBIN01 through
// its ReceiptView).
func (m *Emessage) meta(ce *ClinicalEmail) map[string]string {
	return map[string]string{
		MetaEnvelopeID:  m.Envelope.Identifier,
		MetaLetterID:    ce.Identifier,
		MetaLetterIndex: strconv.Itoa(ce.Index),
		MetaSenderEAN:   ce.Sender.EAN,
		MetaReceiverEAN: ce.Receiver.EAN,
		MetaSenderID:    ce.Sender.IdentifierCode + ":" + ce.Sender.Identifier,
		MetaReceiverID:  ce.Receiver.IdentifierCode + ":" + ce.Receiver.Identifier,
		MetaVersion:     ce.VersionCode,
		MetaStatus:      ce.StatusCode,
		MetaAckCode:     m.Envelope.AcknowledgementCode,
	}
}

func objectMIME(ext string) string {
	if ct := extensionMIME[ext]; ct != "" {
		return ct
	}
	return "application/octet-stream"
}

func objectData(in Input, ce *ClinicalEmail, ref *BinObject) []byte {
	if in.Object == nil {
		return nil
	}
	return in.Object(ce, ref)
}

// Binary maps an XBIN01 letter whose objects arrived without the letter
// that names them (or after it): a note to the same receiver about the
// same patient, its objects as attachments, so no file is lost. It is
// never a referral, whatever its sender: it says nothing of its own.
func (m *Emessage) Binary(b *BinaryLetter, in Input) *letter.Letter {
	sent := b.Authorisation
	if sent.IsZero() {
		sent = m.Envelope.Sent
	}
	l := &letter.Letter{
		ID:        LetterID(b.Sender.EAN, b.Identifier),
		Kind:      letter.KindNote,
		Format:    BinaryFormat,
		Source:    in.Source,
		Received:  in.Received,
		Sent:      sent,
		Sender:    b.Sender.toParty(),
		Receivers: []letter.Party{b.Receiver.toParty()},
		Subject:   "Bilag",
		Text:      fmt.Sprintf("%d bilag sendt som XBIN01 uden det brev, der nævner dem. Brevet nævner hvert bilag ved dets objekt-id.", len(b.Objects)),
		Original:  original(in, m.Charset),
		Meta:      m.meta(b.ReceiptView()),
	}
	if !b.SystemInformation {
		l.Patient = b.Patient.toPatient()
		if b.Patient.CPR == "0000000000" {
			l.Meta[MetaCPRUnknown] = "true"
		}
	}
	for i, o := range b.Objects {
		name := fmt.Sprintf("bilag-%d.%s", i+1, o.ExtensionCode)
		l.Attachments = append(l.Attachments, letter.NewAttachment(name, objectMIME(o.ExtensionCode), o.Data))
		l.Meta[MetaObjectPrefix+strconv.Itoa(i+1)] = o.Identifier
	}
	return l
}

// ReceiptLetters maps a receipt to one acknowledgement letter per receipted
// letter (or one for the whole envelope when it names none), with InReplyTo
// set to the acknowledged letter's id.
func (m *Emessage) ReceiptLetters(rc *Receipt, in Input) []*letter.Letter {
	result := map[string]string{PositiveReceipt: "positive", NegativeReceipt: "negative", NegativeVansReceipt: "vans-negative"}[rc.Type]
	base := func(id, inReplyTo, code, text string) *letter.Letter {
		l := &letter.Letter{
			ID:        id,
			Kind:      letter.KindAcknowledgement,
			Format:    ReceiptFormat,
			Source:    in.Source,
			InReplyTo: inReplyTo,
			Received:  in.Received,
			Sent:      m.Envelope.Sent,
			Sender:    letter.Party{GLN: rc.SenderEAN},
			Receivers: []letter.Party{{GLN: rc.ReceiverEAN}},
			Text:      text,
			Original:  original(in, m.Charset),
			Meta: map[string]string{
				MetaReceipt:            rc.Type,
				MetaReceiptResult:      result,
				MetaReceiptID:          rc.Identifier,
				MetaEnvelopeID:         m.Envelope.Identifier,
				MetaOriginalEnvelopeID: rc.OriginalEnvelopeIdentifier,
			},
		}
		if code != "" {
			l.Meta[MetaRefuseCode] = code
		}
		// The refusal's free text may quote the letter; only its code is
		// kept as the reason.
		l.Ack = &letter.Ack{Positive: rc.Positive(), Code: result, Reason: code}
		return l
	}
	if len(rc.OriginalLetters) == 0 {
		return []*letter.Letter{base(LetterID(rc.SenderEAN, rc.Identifier), "", rc.RefuseCode, rc.RefuseText)}
	}
	var out []*letter.Letter
	for _, o := range rc.OriginalLetters {
		code, text := o.RefuseCode, o.RefuseText
		if code == "" {
			code, text = rc.RefuseCode, rc.RefuseText
		}
		l := base(LetterID(rc.SenderEAN, rc.Identifier)+"/"+o.Identifier, LetterID(rc.OriginalSenderEAN, o.Identifier), code, text)
		l.Meta[MetaOriginalLetterID] = o.Identifier
		if o.VersionCode != "" {
			l.Meta[MetaOriginalVersion] = o.VersionCode
		}
		out = append(out, l)
	}
	return out
}

func original(in Input, charset string) letter.Original {
	if charset == "" {
		charset = "UTF-8"
	}
	return letter.Original{Data: in.Data, ContentType: "application/xml", Charset: charset, Filename: in.Filename, SHA256: letter.Digest(in.Data)}
}

var priorityToFHIR = map[string]string{"rutine": "routine", "høj_prioritet": "asap"}

// threadID writes a 32-hex episode-of-care id in the hyphenated UUID form
// FHIR uses for the same value (medcom.md §1.4), so both formats share a thread.
func threadID(episode string) string {
	e := strings.ToLower(episode)
	if len(e) == 32 && strings.Trim(e, "0123456789abcdef") == "" {
		return e[0:8] + "-" + e[8:12] + "-" + e[12:16] + "-" + e[16:20] + "-" + e[20:]
	}
	return episode
}

var roles = map[string]string{"ydernummer": "gp", "kommunenummer": "municipality", "sygehusafdelingsnummer": "hospital", "amt": "region"}

func (p Party) toParty() letter.Party {
	lp := letter.Party{Role: roles[p.IdentifierCode], Name: p.OrganisationName, GLN: p.EAN}
	switch p.IdentifierCode {
	case "sorkode":
		lp.SOR = p.Identifier
	case "kommunenummer":
		lp.Municipality = p.Identifier
	}
	lp.Unit = strings.Trim(p.DepartmentName+" / "+p.UnitName, " /")
	return lp
}

// toPatient maps the Patient block. XDIS91's AlternativeIdentifier names no
// issuer, so ReplacementSystem stays empty; a name sent as white space
// (unknown) stays empty.
func (p Patient) toPatient() *letter.Patient {
	lp := &letter.Patient{ReplacementID: p.AlternativeID, GivenName: p.GivenName, FamilyName: p.Surname}
	if p.CPR != "0000000000" {
		lp.CPR = p.CPR
	}
	var addr []string
	for _, s := range []string{p.StreetName, p.SuburbName, strings.TrimSpace(p.PostCode + " " + p.DistrictName)} {
		if s != "" {
			addr = append(addr, s)
		}
	}
	lp.Address = strings.Join(addr, ", ")
	return lp
}
