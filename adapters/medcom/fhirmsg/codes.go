package fhirmsg

import "strings"

// Identifier systems and code systems MedCom uses (domain/medcom.md §0, §2).
const (
	nsFHIR  = "http://hl7.org/fhir"
	nsXHTML = "http://www.w3.org/1999/xhtml"

	sysSOR     = "urn:oid:1.2.208.176.1.1"
	sysGLN     = "https://www.gs1.org/gln"
	sysGLNOld  = "urn:oid:1.3.88" // 2021 mapping; accepted, never produced
	sysCPR     = "urn:oid:1.2.208.176.1.2"
	sysECPR    = "urn:oid:1.2.208.176.1.6"     // the eCPR arc; MedCom core 2.x's national E-CPR system itself
	sysXeCPR   = "urn:oid:1.2.208.176.1.6.1.1" // X-eCPR, the national eCPR service
	sysDeCPR   = "urn:oid:1.2.208.176.1.6.1.3" // D-eCPR; regional OIDs hang below it
	sysEvent   = "http://medcomfhir.dk/ig/terminology/CodeSystem/medcom-messaging-eventCodes"
	sysCat     = "http://medcomfhir.dk/ig/terminology/CodeSystem/medcom-careCommunication-categoryCodes"
	sysAct     = "http://medcomfhir.dk/ig/terminology/CodeSystem/medcom-messaging-activityCodes"
	sysDestUse = "http://medcomfhir.dk/ig/terminology/CodeSystem/medcom-messaging-destinationUse"
	sysAckErr  = "http://medcomfhir.dk/ig/terminology/CodeSystem/medcom-acknowledgement-error-codes"
	sysFHIROO  = "http://terminology.hl7.org/CodeSystem/operation-outcome"

	extDestUse      = "http://medcomfhir.dk/ig/messaging/StructureDefinition/medcom-messaging-destinationUseExtension"
	extDateTime     = "http://medcomfhir.dk/ig/core/StructureDefinition/medcom-core-datetime-extension"
	extIdentifier   = "http://medcomfhir.dk/ig/core/StructureDefinition/medcom-core-identifier-extension"
	extPractitioner = "http://medcomfhir.dk/ig/core/StructureDefinition/medcom-core-practitioner-extension"
	extContact      = "http://medcomfhir.dk/ig/core/StructureDefinition/medcom-core-contact-extension"
	extSender       = "http://medcomfhir.dk/ig/core/StructureDefinition/medcom-core-sender-extension"
	extAbsent       = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"

	profCCMessage   = "http://medcomfhir.dk/ig/carecommunication/StructureDefinition/medcom-careCommunication-message"
	profCCHeader    = "http://medcomfhir.dk/ig/carecommunication/StructureDefinition/medcom-careCommunication-messageHeader"
	profCCComm      = "http://medcomfhir.dk/ig/carecommunication/StructureDefinition/medcom-careCommunication-communication"
	profCCProv      = "http://medcomfhir.dk/ig/carecommunication/StructureDefinition/medcom-careCommunication-provenance"
	profAckMessage  = "http://medcomfhir.dk/ig/acknowledgement/StructureDefinition/medcom-messaging-acknowledgement"
	profAckHeader   = "http://medcomfhir.dk/ig/acknowledgement/StructureDefinition/medcom-messaging-acknowledgementHeader"
	profAckOutcome  = "http://medcomfhir.dk/ig/acknowledgement/StructureDefinition/medcom-acknowledgement-operationoutcome"
	profMsgProv     = "http://medcomfhir.dk/ig/messaging/StructureDefinition/medcom-messaging-provenance"
	profOrg         = "http://medcomfhir.dk/ig/messaging/StructureDefinition/medcom-messaging-organization"
	profPatient     = "http://medcomfhir.dk/ig/core/StructureDefinition/medcom-core-patient"
	profPractRole   = "http://medcomfhir.dk/ig/core/StructureDefinition/medcom-core-practitionerrole"
	profPractioner  = "http://medcomfhir.dk/ig/core/StructureDefinition/medcom-core-practitioner"
	ccDefinition    = "http://medcomfhir.dk/ig/messagedefinitions/MessageDefinition/MedComCareCommunicationMessageDefinition|5.0"
	ccDefinitionPfx = "http://medcomfhir.dk/ig/messagedefinitions/MessageDefinition/MedComCareCommunicationMessageDefinition|5."
	sorEndpoint     = "https://sor2.sum.dsdn.dk/#id="
)

// Events.
const (
	EventCareCommunication = "care-communication-message"
	EventAcknowledgement   = "acknowledgement-message"
)

// Acknowledgement response codes (MessageHeader.response.code).
const (
	AckOK             = "ok"
	AckTransientError = "transient-error"
	AckFatalError     = "fatal-error"
)

// Provenance activities and build modes.
const (
	ModeNew     = "new"
	ModeReply   = "reply"
	ModeForward = "forward"

	actNew     = "new-message"
	actReply   = "reply-message"
	actForward = "forward-message"
	actAck     = "acknowledgement"
)

// Encodings and MIME types (VANSEnvelope ServiceTag MCM:MIME).
const (
	EncodingXML  = "xml"
	EncodingJSON = "json"
	MIMEXML      = "application/fhir+xml"
	MIMEJSON     = "application/fhir+json"
)

// contentTypeLink marks a letter.Attachment that is a link: its data is the
// address (FHIR contentAttachment.url, XDIS91 Reference/URL).
const contentTypeLink = "text/uri-list"

// AttachmentTypes is MedCom's value set MedComCoreAttachmentMimeTypes
// (terminology 1.8.1), bound as required to a CareCommunication
// attachment's contentType: a file of another type cannot be sent in one.
var AttachmentTypes = []string{"application/pdf", "image/gif", "image/jpeg", "image/png", "image/tiff", "image/bmp"}

// Letter formats set by (*Message).Letter.
const (
	FormatCareCommunication = "fhir-carecommunication"
	FormatAcknowledgement   = "fhir-acknowledgement"
)

// Categories is MedCom's CareCommunication category code list v1.9.0
// (domain/medcom.md §5.2). MedCom warns it changes over time; callers may
// replace it at start-up from configuration before any message is handled.
var Categories = []string{
	"alcohol-and-drug-treatment", "assistive-devices", "carecoordination", "decease",
	"discharge", "examination-results", "healthcare", "home-care-assessment",
	"medicine", "nursing", "outpatient", "psychiatry-social-disability",
	"regarding-referral", "telemedicine", "training", "acute-ambulant",
	"extended-care-responsibility", "other",
}

// dECPRSystems are DK-core's D-eCPR OIDs (ValueSet DkCoreDeCPRValueSet).
var dECPRSystems = map[string]bool{
	sysDeCPR: true, sysDeCPR + ".177": true, sysDeCPR + ".179": true,
	sysDeCPR + ".181": true, sysDeCPR + ".183": true, sysDeCPR + ".187": true,
}

// replacementRank orders the replacement person identifiers ("erstatnings-
// CPR") a MedCom patient may carry when it has no CPR number, best first:
// DK-core's X-eCPR (national, unique across regions), MedCom core 2.x's
// national E-CPR (the eCPR arc itself), DK-core's regional D-eCPR value set,
// then any other system under the eCPR arc (a region's OID not yet in the
// value set). 0 means the system is not a replacement CPR. A patient with
// two (MedCom's receive test CPR-3) is known by the best one.
func replacementRank(system string) int {
	switch {
	case system == sysXeCPR:
		return 4
	case system == sysECPR:
		return 3
	case dECPRSystems[system]:
		return 2
	case strings.HasPrefix(system, sysECPR+"."):
		return 1
	}
	return 0
}

// Issue codes of a negative acknowledgement the hub writes, from the value
// set MedCom binds OperationOutcome.issue.details.coding to: FHIR's
// operation-outcome codes and MedCom's acknowledgement error codes.
const (
	IssueBadSyntax       = "MSG_BAD_SYNTAX"
	IssueBadFormat       = "MSG_BAD_FORMAT"
	IssueLocalFail       = "MSG_LOCAL_FAIL"
	IssueDatatype        = "MSG_Datatype_Wrong"
	IssueDamaged         = "MSG_Damaged_durin_transport" // MedCom's spelling
	IssueUnsupportedType = "MSG_RECEIVER_UNABLE_TO_RECEIVE_MSG_TYPE"
	IssueReceiverMissing = "MSG_Receiver_Identifier_MISSING"
)
