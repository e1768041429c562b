package fhirmsg

import (
	"strconv"
	"strings"

	"github.com/samhub/samhub/pipeline/letter"
)

// Letter maps the message onto Samhub's canonical letter. source is the
// adapter instance name; original the bytes exactly as received (envelope
// included) and contentType their MIME type. Received is left for the caller
// to stamp. Kinds are chosen as described in the package documentation.
func (m *Message) Letter(source string, original []byte, contentType string) *letter.Letter {
	l := &letter.Letter{
		ID:        m.HeaderID,
		Kind:      m.kind(),
		Format:    FormatCareCommunication,
		Source:    source,
		ThreadID:  m.ThreadID,
		InReplyTo: m.PreviousHeaderID,
		Sent:      m.Sent,
		Sender:    party(m.Sender),
		Receivers: []letter.Party{party(m.Receiver)},
		Category:  m.Category,
		Topic:     m.Topic,
		Priority:  m.Priority,
		Subject:   m.Topic,
		Text:      m.Text,
		Original: letter.Original{
			Data:        original,
			ContentType: contentType,
			Charset:     "utf-8",
			SHA256:      letter.Digest(original),
		},
		Meta: map[string]string{MetaBundleID: m.BundleID, MetaEncoding: m.Encoding, MetaEvent: m.Event},
	}
	if m.Patient != nil {
		p := *m.Patient
		l.Patient = &p
		if m.nameAbsent != "" && isCode(m.nameAbsent) {
			// why the family name is empty (data-absent-reason code, e.g. "unknown")
			l.Meta[MetaPatientNameAbsent] = m.nameAbsent
		}
	}
	l.Sender.Unit = m.senderUnit
	l.Receivers[0].Unit = m.recipientUnit
	if m.episode != nil {
		l.Meta[MetaEpisodeOfCareID] = m.episode.value
	}
	if len(m.Attachments) > 0 {
		l.Attachments = append([]letter.Attachment(nil), m.Attachments...)
	}
	if m.activity != "" {
		l.Meta[MetaActivity] = m.activity
	}
	if m.attMissing > 0 {
		// earlier attachments a reply lists without their data
		l.Meta[MetaAttachmentsWithoutData] = strconv.Itoa(m.attMissing)
	}
	if m.VANS != nil {
		l.Meta[MetaVANSEnvelopeID] = m.VANS.EnvelopeID
	}
	if m.Event == EventAcknowledgement {
		l.Format = FormatAcknowledgement
		if r := m.Response; r != nil {
			l.InReplyTo = r.Identifier
			l.Meta[MetaResponseCode] = r.Code
			var codes []string
			for _, is := range r.Issues {
				if isCode(is.Details) { // free text from the other side stays out of Meta
					codes = append(codes, is.Details)
				}
			}
			if len(codes) > 0 {
				l.Meta[MetaIssues] = strings.Join(codes, ",")
			}
			l.Ack = &letter.Ack{Positive: r.Code == AckOK, Code: r.Code, Transient: r.Code == AckTransientError, Reason: strings.Join(codes, ",")}
		}
	}
	return l
}

// EpisodeOfCare is the episode-of-care id the message carries (its
// Communication's Encounter), nil when none.
func (m *Message) EpisodeOfCare() *EpisodeOfCare {
	if m.episode == nil {
		return nil
	}
	return &EpisodeOfCare{System: m.episode.system, Value: m.episode.value}
}

func (m *Message) kind() letter.Kind {
	switch {
	case m.Event == EventAcknowledgement:
		return letter.KindAcknowledgement
	case m.activity == actReply:
		return letter.KindReply
	case m.activity == actForward:
		return letter.KindNote
	case m.Category == "regarding-referral":
		return letter.KindReferral
	case m.Category == "discharge":
		return letter.KindDischargeNote
	}
	return letter.KindNote
}

func party(o Organization) letter.Party {
	return letter.Party{Name: o.Name, GLN: o.GLN, SOR: o.SOR}
}

func isCode(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}
