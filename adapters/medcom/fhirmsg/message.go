package fhirmsg

import (
	"fmt"
	"time"

	"github.com/samhub/samhub/adapters/medcom/partscan"
	"github.com/samhub/samhub/pipeline/letter"
)

// Organization is a MessageHeader sender or receiver.
type Organization struct{ Name, SOR, GLN string }

// Issue is one OperationOutcome.issue of an acknowledgement. Details is a
// MedCom/FHIR issue code (e.g. MSG_BAD_SYNTAX) or, read from an
// acknowledgement without one, its text; Text is the issue's text (free of
// personal data in what the hub writes).
type Issue struct{ Severity, Code, Details, Text string }

// Response is MessageHeader.response of an acknowledgement.
type Response struct {
	Code       string // ok | transient-error | fatal-error
	Identifier string // the acknowledged MessageHeader.id
	Issues     []Issue
}

// VANSInfo describes the VANSEnvelope a message came in.
type VANSInfo struct{ EnvelopeID, FromVANS, ToVANS, MIME string }

// Message is what Parse read from one MedCom FHIR message.
type Message struct {
	Event                     string // EventCareCommunication or EventAcknowledgement
	Encoding                  string // EncodingXML or EncodingJSON
	BundleID                  string
	HeaderID                  string // MessageHeader.id: the letter's identity for duplicates
	Sent                      time.Time
	Sender, Receiver          Organization
	Patient                   *letter.Patient
	Category, Topic, Priority string
	Text                      string // the message's text segments, see (*Message).Letter
	Attachments               []letter.Attachment
	ThreadID                  string // Communication.identifier (stays the same through a thread)
	PreviousHeaderID          string // from Provenance: the MessageHeader this one replies to/forwards ("GLN#letter" for OIOXML)
	Response                  *Response
	VANS                      *VANSInfo

	// What only Parse can know, for Validate, Letter and the builders.
	activity      string // own Provenance activity
	nameAbsent    string // data-absent-reason code given for the patient's family name
	recipientUnit string // Communication.recipient / sender extension: a CareTeam's name
	senderUnit    string
	paths         paths
	findings      []error // structure problems found while reading
	provs         []provenance
	own           *provenance
	segments      []segment
	episode       *episode
	attMissing    int           // attachment segments without data (earlier ones in a reply)
	parts         *partscan.Doc // the values a scan lifted out, nil for Parse
}

// paths are the FHIR element paths of the fields Validate checks, so that
// errors name where in the Bundle a value sits.
type paths struct {
	header, comm, patient, patientID, replacementID, sender, receiver string
	category, topic, priority, thread                                 string
}

func (p *paths) defaults() {
	set := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	set(&p.header, "Bundle.entry[0].resource(MessageHeader)")
	set(&p.comm, "Bundle.entry(Communication)")
	set(&p.patient, "Bundle.entry(Patient)")
	set(&p.patientID, p.patient+".identifier[0].value")
	set(&p.replacementID, p.patient+".identifier[0].value")
	set(&p.sender, p.header+".sender")
	set(&p.receiver, p.header+".destination[0].receiver")
	set(&p.category, p.comm+".category[0].coding[0].code")
	set(&p.topic, p.comm+".topic.text")
	set(&p.priority, p.comm+".priority")
	set(&p.thread, p.comm+".identifier[0].value")
}

type provenance struct {
	target, occurred, recorded, activity string
	agent                                *Organization
	entities                             []provEntity
}

type provEntity struct{ role, ref, ident string }

type segment struct {
	id, assignerSOR, time string
	text                  string
	att                   *segAttachment
	author                *author
}

type segAttachment struct {
	contentType, title, url, creation string
	data                              []byte
	part                              *partscan.Part // data lifted out by a scan, read from the input
}

type author struct {
	given                          []string
	family                         string
	roleSystem, roleCode, roleText string
	phone                          string
}

type episode struct{ system, value string }

// FieldError is one problem found in a message. Path is the FHIR element
// path; Msg says what was expected and never quotes the value. Code, when
// set, is the MedCom acknowledgement issue code the problem answers to
// (the value set of MedComAcknowledgementOperationOutcome's
// issue.details.coding), for the negative acknowledgement.
type FieldError struct{ Path, Msg, Code string }

func (e *FieldError) Error() string { return e.Path + ": " + e.Msg }

func ferr(path, format string, args ...any) *FieldError {
	return &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)}
}

// coded gives the finding its MedCom issue code.
func (e *FieldError) coded(code string) *FieldError {
	e.Code = code
	return e
}
