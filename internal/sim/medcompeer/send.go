package medcompeer

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"

	"github.com/google/uuid"
	"golang.org/x/text/encoding/charmap"

	"github.com/samhub/samhub/adapters/medcom/fhirmsg"
	"github.com/samhub/samhub/adapters/medcom/oioxml"
	"github.com/samhub/samhub/pipeline/letter"
)

// Charsets an XDIS91 letter can be written in.
const (
	CharsetLatin1 = "ISO-8859-1"
	CharsetUTF8   = "UTF-8"
)

// Outgoing is a letter a party of the peer sends to the hub.
type Outgoing struct {
	From      string // GLN of the sending party (one of Config.Parties)
	To        *Org   // default Config.Council
	Format    string // FormatXDIS91, FormatFHIRXML or FormatFHIRJSON
	Charset   string // XDIS91 only: CharsetLatin1 (default) or CharsetUTF8
	Enveloped bool   // FHIR only: in a VANSEnvelope
	Patient   letter.Patient
	// FamilyNameUnknown writes the FHIR patient's family name as absent,
	// with the data-absent-reason extension MedCom's patient profile
	// allows (a newly arrived child); Patient.FamilyName is then ignored.
	FamilyNameUnknown bool
	Category          string // FHIR; default regarding-referral (a reply: the answered letter's)
	Subject, Text     string
	Priority          string // FHIR routine or asap (only with regarding-referral)
	// ReplyTo answers a letter the peer received, in its thread: the same
	// episode of care (XDIS91), or a reply-message in the same thread
	// naming the answered MessageHeader (FHIR).
	ReplyTo *Letter
	// LetterID is the XDIS91 Letter/Identifier (≤ 14 characters) or the
	// FHIR MessageHeader.id; made up when empty.
	LetterID string
	// Episode is the XDIS91 EpisodeOfCareIdentifier of a new letter.
	Episode string
	// Files are files sent with the letter: in a FHIR letter as its
	// attachments; with XDIS91 named in BIN references and carried by an
	// XBIN01 letter dropped right after the letter (Sent.Binary).
	Files []letter.Attachment
	// LoseBinary builds the XBIN01 letter but never drops it: a sending
	// system that loses it on the way.
	LoseBinary bool
	// Invalid sends a FHIR letter its builder would refuse (a receiver's
	// identifier of the wrong form, say): the hub's reader decides.
	Invalid bool
	// Edit changes a FHIR letter's bytes after they are built, before any
	// envelope: a vendor's mistake no builder makes (with Invalid).
	Edit func(data []byte) []byte
	// EditBinary changes the XBIN01 letter's bytes after they are built:
	// a file damaged on the way.
	EditBinary func(data []byte) []byte
}

var jsonFamily = regexp.MustCompile(`"family":\s*"` + absentPlaceholder + `"`)

const (
	absentPlaceholder = "ZZABSENTFAMILYZZ"
	dataAbsentURL     = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
)

// Send builds o as the party's system would, drops it into in/ and
// returns what was sent; Sent.ID is how the hub names the letter.
func (p *Peer) Send(o Outgoing) (Sent, error) {
	party, ok := p.parties[o.From]
	if !ok {
		return Sent{}, fmt.Errorf("medcompeer: Outgoing.From: %q is not a party of this peer", o.From)
	}
	if o.ReplyTo != nil && o.ReplyTo.reply == nil {
		return Sent{}, errNoReply
	}
	to := p.cfg.Council
	switch {
	case o.To != nil:
		to = *o.To
	case o.ReplyTo != nil:
		to = o.ReplyTo.From // a reply goes back to who wrote
	}
	var s Sent
	var err error
	switch o.Format {
	case FormatXDIS91:
		s, err = p.buildXDIS91(o, party, to)
	case FormatFHIRXML, FormatFHIRJSON:
		s, err = p.buildFHIR(o, party, to)
	default:
		return Sent{}, fmt.Errorf("medcompeer: Outgoing.Format: must be %s, %s or %s", FormatXDIS91, FormatFHIRXML, FormatFHIRJSON)
	}
	if err != nil {
		return Sent{}, err
	}
	s.At, s.From, s.To, s.Format = p.cfg.Now(), party.org(), to, o.Format
	if err := p.drop(s.File, s.Data); err != nil {
		return Sent{}, fmt.Errorf("medcompeer: drop %s: %w", s.File, err)
	}
	if s.Binary != nil && !o.LoseBinary {
		if err := p.drop(s.Binary.File, s.Binary.Data); err != nil {
			return Sent{}, fmt.Errorf("medcompeer: drop %s: %w", s.Binary.File, err)
		}
	}
	p.mu.Lock()
	p.sent = append(p.sent, s)
	p.mu.Unlock()
	return s, nil
}

func (p *Peer) buildXDIS91(o Outgoing, party Party, to Org) (Sent, error) {
	if o.Enveloped {
		return Sent{}, fmt.Errorf("medcompeer: Outgoing.Enveloped: XDIS91 travels without a VANSEnvelope")
	}
	id := o.LetterID
	if id == "" {
		id = oioxml.NewID()
	}
	pat := o.Patient
	l := &letter.Letter{ID: id, Patient: &pat, Subject: o.Subject, Text: o.Text,
		Priority: o.Priority, Original: letter.Original{Data: []byte{}}, Attachments: o.Files}
	opt := oioxml.LetterOptions{Now: p.cfg.Now(), LetterID: id, EpisodeOfCareID: o.Episode}
	if o.ReplyTo != nil {
		if o.ReplyTo.reply.ce == nil {
			return Sent{}, fmt.Errorf("medcompeer: Outgoing.ReplyTo: an XDIS91 reply answers an XDIS91 letter")
		}
		opt = oioxml.ReplyOptions(o.ReplyTo.reply.ce)
		opt.Now, opt.LetterID = p.cfg.Now(), id
	} else {
		snd := oioxml.Party{EAN: party.GLN, Identifier: party.ProviderNumber, IdentifierCode: "ydernummer", OrganisationName: party.Name, MedicalSpecialityCode: "almen_medicin"}
		if party.ProviderNumber == "" {
			snd = oioxml.PartyFromLetter(letter.Party{Name: party.Name, GLN: party.GLN, SOR: party.SOR})
		}
		rcv := oioxml.PartyFromLetter(letter.Party{Name: to.Name, GLN: to.GLN, SOR: to.SOR, Municipality: to.Municipality})
		opt.Sender, opt.Receiver = &snd, &rcv
	}
	opt.Files = len(o.Files) > 0
	data, err := oioxml.BuildLetter(l, opt)
	if err != nil {
		return Sent{}, fmt.Errorf("medcompeer: build XDIS91: %w", err)
	}
	var bin *Sent
	if opt.Files {
		opt.EnvelopeID = oioxml.NewID()
		bd, err := oioxml.BuildBinaryLetter(l, opt)
		if err != nil {
			return Sent{}, fmt.Errorf("medcompeer: build XBIN01: %w", err)
		}
		if o.EditBinary != nil {
			bd = o.EditBinary(bd)
		}
		bid := oioxml.BinaryLetterID(id)
		bin = &Sent{ID: oioxml.LetterID(party.GLN, bid), File: "xbin01-" + bid + ".xml", Format: FormatXBIN01, Data: bd}
	}
	cs := CharsetLatin1
	if o.Charset == CharsetUTF8 {
		cs = CharsetUTF8
		utf, err := charmap.ISO8859_1.NewDecoder().Bytes(data)
		if err != nil {
			return Sent{}, err
		}
		data = bytes.Replace(utf, []byte(`encoding="ISO-8859-1"`), []byte(`encoding="UTF-8"`), 1)
	} else if o.Charset != "" && o.Charset != CharsetLatin1 {
		return Sent{}, fmt.Errorf("medcompeer: Outgoing.Charset: must be %s or %s", CharsetLatin1, CharsetUTF8)
	}
	m, err := oioxml.Parse(data, p.lim)
	if err != nil {
		return Sent{}, fmt.Errorf("medcompeer: the built XDIS91 does not read back: %w", err)
	}
	ce := m.Letters[0]
	return Sent{ID: oioxml.LetterID(ce.Sender.EAN, ce.Identifier), File: "xdis91-" + id + ".xml", Charset: cs, Thread: ce.EpisodeOfCareIdentifier, Data: data, Binary: bin}, nil
}

func (p *Peer) buildFHIR(o Outgoing, party Party, to Org) (Sent, error) {
	enc, ext := fhirmsg.EncodingXML, ".xml"
	if o.Format == FormatFHIRJSON {
		enc, ext = fhirmsg.EncodingJSON, ".json"
	}
	pat := o.Patient
	if o.FamilyNameUnknown {
		pat.FamilyName = absentPlaceholder
	}
	l := &letter.Letter{Patient: &pat, Category: o.Category, Topic: o.Subject, Text: o.Text, Priority: o.Priority, Attachments: o.Files}
	opt := fhirmsg.BuildOptions{
		Encoding: enc, Mode: fhirmsg.ModeNew, Now: p.cfg.Now(),
		Self:     fhirmsg.Organization{Name: party.Name, SOR: party.SOR, GLN: party.GLN},
		To:       fhirmsg.Organization{Name: to.Name, SOR: to.SOR, GLN: to.GLN},
		HeaderID: o.LetterID, BundleID: uuid.NewString(),
		Author: fhirmsg.Author{FamilyName: party.Name, Role: "Læge"},
	}
	if opt.HeaderID == "" {
		opt.HeaderID = uuid.NewString()
	}
	if o.ReplyTo != nil {
		prev := o.ReplyTo.reply.msg
		if prev == nil {
			return Sent{}, fmt.Errorf("medcompeer: Outgoing.ReplyTo: a FHIR reply answers a FHIR letter")
		}
		opt.Mode, opt.Previous = fhirmsg.ModeReply, prev
		if l.Category == "" {
			l.Category = prev.Category
		}
	}
	if l.Category == "" {
		l.Category = "regarding-referral"
	}
	data, hid, err := fhirmsg.BuildCareCommunication(l, opt)
	if err != nil {
		return Sent{}, fmt.Errorf("medcompeer: build CareCommunication: %w", err)
	}
	if o.FamilyNameUnknown {
		data = absentFamily(data, enc)
	}
	if o.Edit != nil {
		data = o.Edit(data)
	}
	file := "fhir-" + opt.BundleID + ext
	if o.Enveloped {
		data, err = fhirmsg.BuildVANSEnvelope(data, fhirmsg.Envelope{EnvelopeID: uuid.NewString(), MessageID: uuid.NewString(),
			FromGLN: party.GLN, ToGLN: to.GLN, Encoding: enc, Name: "MCM:FDIS91#" + l.Category, Version: "5.0", Now: p.cfg.Now()})
		if err != nil {
			return Sent{}, fmt.Errorf("medcompeer: VANSEnvelope: %w", err)
		}
		file = "fhir-" + opt.BundleID + ".vans.xml"
	}
	m, err := fhirmsg.Parse(data, p.lim)
	if err != nil {
		return Sent{}, fmt.Errorf("medcompeer: the built CareCommunication does not read back: %w", err)
	}
	if !o.FamilyNameUnknown && !o.Invalid {
		// A letter with an absent family name, or one meant to be wrong,
		// is what is being tested: the hub's reader decides, not the peer.
		if err := fhirmsg.Validate(m); err != nil {
			return Sent{}, fmt.Errorf("medcompeer: the built CareCommunication fails validation: %w", err)
		}
	}
	return Sent{ID: hid, File: file, Enveloped: o.Enveloped, Thread: m.ThreadID, Data: data}, nil
}

// absentFamily replaces the placeholder family name with FHIR's
// data-absent-reason extension (the primitive's extension: "_family" in
// JSON, an extension inside <family> in XML), and drops it from the
// narrative.
func absentFamily(data []byte, enc string) []byte {
	s := string(data)
	if enc == fhirmsg.EncodingJSON {
		s = jsonFamily.ReplaceAllLiteralString(s, `"_family": {"extension": [{"url": "`+dataAbsentURL+`", "valueCode": "unknown"}]}`)
	} else {
		s = strings.Replace(s, `<family value="`+absentPlaceholder+`"></family>`, `<family><extension url="`+dataAbsentURL+`"><valueCode value="unknown"></valueCode></extension></family>`, 1)
		s = strings.Replace(s, `<family value="`+absentPlaceholder+`"/>`, `<family><extension url="`+dataAbsentURL+`"><valueCode value="unknown"/></extension></family>`, 1)
	}
	return []byte(strings.ReplaceAll(s, " "+absentPlaceholder, ""))
}
