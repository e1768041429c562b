// Package fhir holds hand-written FHIR R4 types: only the elements the epj
// adapter reads or writes. Elements not listed are ignored on input and
// never sent. The epj package doc says why no generated model is used.
package fhir

import "encoding/json"

// Identifier systems (Danish FHIR; dk-core and MedCom).
const (
	SystemCPR      = "urn:oid:1.2.208.176.1.2"
	SystemXeCPR    = "urn:oid:1.2.208.176.1.6.1.1"
	SystemECPRStem = "urn:oid:1.2.208.176.1.6." // X-eCPR and the regional D-eCPR systems
	SystemSOR      = "urn:oid:1.2.208.176.1.1"
	SystemGLN      = "https://www.gs1.org/gln"
	SystemGLNOld   = "urn:oid:1.3.88" // the 2021 OIOXML mapping's EAN system; accepted on input
	SystemLetter   = "urn:samhub:letter"
	SystemKind     = "urn:samhub:letter-kind"
	SystemLOINC    = "http://loinc.org"
	LOINCDischarge = "18842-5"
	ContentType    = "application/fhir+json; fhirVersion=4.0"
)

type Identifier struct {
	Use    string `json:"use,omitempty"`
	System string `json:"system,omitempty"`
	Value  string `json:"value,omitempty"`
}

type Reference struct {
	Reference  string      `json:"reference,omitempty"`
	Identifier *Identifier `json:"identifier,omitempty"`
	Display    string      `json:"display,omitempty"`
}

type Coding struct {
	System  string `json:"system,omitempty"`
	Code    string `json:"code,omitempty"`
	Display string `json:"display,omitempty"`
}

type CodeableConcept struct {
	Coding []Coding `json:"coding,omitempty"`
	Text   string   `json:"text,omitempty"`
}

// Attachment is FHIR's Attachment; base64Binary data maps onto []byte,
// which encoding/json already encodes as standard padded base64.
type Attachment struct {
	ContentType string `json:"contentType,omitempty"`
	Data        []byte `json:"data,omitempty"`
	URL         string `json:"url,omitempty"`
	Size        int64  `json:"size,omitempty"`
	Title       string `json:"title,omitempty"`
}

type Meta struct {
	VersionID   string `json:"versionId,omitempty"`
	LastUpdated string `json:"lastUpdated,omitempty"`
}

type HumanName struct {
	Use    string   `json:"use,omitempty"`
	Family string   `json:"family,omitempty"`
	Given  []string `json:"given,omitempty"`
}

type Organization struct {
	ResourceType string       `json:"resourceType"`
	ID           string       `json:"id,omitempty"`
	Identifier   []Identifier `json:"identifier,omitempty"`
	Name         string       `json:"name,omitempty"`
}

type Patient struct {
	ResourceType        string       `json:"resourceType"`
	ID                  string       `json:"id,omitempty"`
	Identifier          []Identifier `json:"identifier,omitempty"`
	Name                []HumanName  `json:"name,omitempty"`
	GeneralPractitioner []Reference  `json:"generalPractitioner,omitempty"`
}

// CommunicationPayload holds exactly one content[x] choice.
type CommunicationPayload struct {
	ContentString     string      `json:"contentString,omitempty"`
	ContentAttachment *Attachment `json:"contentAttachment,omitempty"`
	ContentReference  *Reference  `json:"contentReference,omitempty"`
}

type Communication struct {
	ResourceType string                 `json:"resourceType"`
	ID           string                 `json:"id,omitempty"`
	Meta         *Meta                  `json:"meta,omitempty"`
	Contained    []Organization         `json:"contained,omitempty"`
	Identifier   []Identifier           `json:"identifier,omitempty"`
	InResponseTo []Reference            `json:"inResponseTo,omitempty"`
	Status       string                 `json:"status"`
	Category     []CodeableConcept      `json:"category,omitempty"`
	Priority     string                 `json:"priority,omitempty"`
	Subject      *Reference             `json:"subject,omitempty"`
	Topic        *CodeableConcept       `json:"topic,omitempty"`
	Sent         string                 `json:"sent,omitempty"`
	Recipient    []Reference            `json:"recipient,omitempty"`
	Sender       *Reference             `json:"sender,omitempty"`
	Payload      []CommunicationPayload `json:"payload,omitempty"`
}

type DocumentReferenceContent struct {
	Attachment Attachment `json:"attachment"`
}

type DocumentReferenceContext struct {
	Related []Reference `json:"related,omitempty"`
}

type DocumentReference struct {
	ResourceType string                     `json:"resourceType"`
	ID           string                     `json:"id,omitempty"`
	Meta         *Meta                      `json:"meta,omitempty"`
	Contained    []Organization             `json:"contained,omitempty"`
	Status       string                     `json:"status"`
	Type         *CodeableConcept           `json:"type,omitempty"`
	Subject      *Reference                 `json:"subject,omitempty"`
	Date         string                     `json:"date,omitempty"`
	Author       []Reference                `json:"author,omitempty"`
	Custodian    *Reference                 `json:"custodian,omitempty"`
	Description  string                     `json:"description,omitempty"`
	Content      []DocumentReferenceContent `json:"content"`
	Context      *DocumentReferenceContext  `json:"context,omitempty"`
}

type BundleLink struct {
	Relation string `json:"relation"`
	URL      string `json:"url"`
}

// BundleEntry keeps the resource as raw bytes: a source letter's Original
// is the resource exactly as the gateway sent it.
type BundleEntry struct {
	FullURL  string          `json:"fullUrl,omitempty"`
	Resource json.RawMessage `json:"resource,omitempty"`
}

type Bundle struct {
	ResourceType string        `json:"resourceType"`
	Type         string        `json:"type"`
	Total        *int          `json:"total,omitempty"`
	Link         []BundleLink  `json:"link,omitempty"`
	Entry        []BundleEntry `json:"entry,omitempty"`
}

// OperationOutcomeIssue leaves out diagnostics and details on purpose:
// their free text may echo the values sent (a CPR), so they are never read.
type OperationOutcomeIssue struct {
	Severity   string   `json:"severity"`
	Code       string   `json:"code"`
	Expression []string `json:"expression,omitempty"`
}

type OperationOutcome struct {
	ResourceType string                  `json:"resourceType"`
	Issue        []OperationOutcomeIssue `json:"issue"`
}

type CapabilityStatement struct {
	ResourceType string `json:"resourceType"`
	FHIRVersion  string `json:"fhirVersion"`
}

// ResourceHead is what every resource in the feed must carry.
type ResourceHead struct {
	ResourceType string `json:"resourceType"`
	ID           string `json:"id"`
	Meta         *Meta  `json:"meta"`
}
