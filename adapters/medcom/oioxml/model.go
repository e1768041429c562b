// Package oioxml reads, validates and writes MedCom's OIOXML correspondence
// letter XDIS91 (ClinicalEmail in an Emessage) and the OIOXML receipts
// XCTL01/02/03, and maps letters to and from letter.Letter.
//
// Go has no XSD validator, so the rules of MedCom's XSD set (2006/07/01 for
// XD9134L, 2005/08/07 for XD9133L and receipts) are written out by hand in
// parse.go; tests check the written output with xmllint against the real XSD.
package oioxml

import "time"

// Namespaces MedCom uses for XDIS91 and the receipts.
const (
	NS2006 = "http://rep.oio.dk/sundcom.dk/medcom.dk/xml/schemas/2006/07/01/" // XD9134L
	NS2005 = "http://rep.oio.dk/sundcom.dk/medcom.dk/xml/schemas/2005/08/07/" // XD9133L, XCTL01-03
)

// Version codes read and written here.
const (
	VersionXD9134L = "XD9134L"
	VersionXD9133L = "XD9133L"
	VersionXBIN01  = "XB0130X" // BinaryLetter
	VersionXCTL01  = "XC0130Q" // NegativeVansReceipt
	VersionXCTL02  = "XC0230Q" // NegativeReceipt
	VersionXCTL03  = "XC0330Q" // PositiveReceipt
)

// AcknowledgementCode values of Envelope/AcknowledgementCode.
const (
	AckWanted    = "pluspositivkvitt"  // the sender wants a PositiveReceipt
	AckNotWanted = "minuspositivkvitt" // only negative receipts
)

// Receipt element names.
const (
	NegativeVansReceipt = "NegativeVansReceipt"
	NegativeReceipt     = "NegativeReceipt"
	PositiveReceipt     = "PositiveReceipt"
)

// RefuseCode values for negative receipts.
const (
	RefuseUnspecified     = "ikke_specificeret"
	RefuseUnknownLocation = "ukendt_lokationsnummer"
	RefuseReceiverID      = "problem_med_modtagerID"
	RefuseVersion         = "problem_med_version"
	RefuseSyntax          = "syntaksfejl"
)

// Emessage is one OIOXML file: an envelope and its letters or receipts.
type Emessage struct {
	Namespace string
	Charset   string // as declared in the XML declaration; "" means UTF-8
	Envelope  Envelope
	Letters   []*ClinicalEmail
	Binaries  []*BinaryLetter
	Receipts  []*Receipt
	// Unread are the heads (id, version, sender and receiver EAN) of
	// letters of a type this hub does not read, for a negative receipt.
	Unread []*ClinicalEmail
}

// Envelope is Emessage/Envelope.
type Envelope struct {
	Sent                time.Time // local Danish time
	Identifier          string
	AcknowledgementCode string
}

// WantsPositiveReceipt reports whether the sender asked for a PositiveReceipt.
func (e Envelope) WantsPositiveReceipt() bool { return e.AcknowledgementCode == AckWanted }

// ClinicalEmail is one XDIS91 letter.
type ClinicalEmail struct {
	Index                   int // 1-based position among the Emessage's letters
	Identifier              string
	VersionCode             string
	StatisticalCode         string
	Authorisation           time.Time
	TypeCode                string
	StatusCode              string // nytbrev | rettetbrev
	EpisodeOfCareIdentifier string
	Sender                  Party
	Receiver                Party
	Patient                 Patient
	Priority                string // rutine | høj_prioritet | ""
	Subject                 string
	Texts                   []string // one plain text per ClinicalInformation/Text01
	References              []Reference
}

// Party is a Sender or Receiver block.
type Party struct {
	EAN                   string // EANIdentifier: GLN / lokationsnummer
	Identifier            string
	IdentifierCode        string // ydernummer, kommunenummer, sorkode, …
	OrganisationName      string
	DepartmentName        string
	UnitName              string
	StreetName            string
	SuburbName            string
	DistrictName          string
	PostCode              string
	Telephone             string
	MedicalSpecialityCode string
}

// Patient is the Patient block. Exactly one of CPR and AlternativeID is set
// (CPR may be "0000000000": required but unknown).
type Patient struct {
	CPR                     string
	AlternativeID           string
	Surname                 string
	GivenName               string
	StreetName              string
	SuburbName              string
	DistrictName            string
	PostCode                string
	Occupancy               string
	EpisodeOfCareStatusCode string
}

// Reference is one Reference block: a URL, a SUP flag or a BIN object.
type Reference struct {
	Description string
	URL         string
	SUP         bool
	BIN         *BinObject
}

// BinObject describes a binary object that travels separately (BIN01).
type BinObject struct {
	Identifier, ObjectCode, ExtensionCode string
	Size                                  int64
}

// BinaryLetter is one XBIN01 letter: the binary objects that XDIS91
// letters name in BIN references. MedCom sends them in an Emessage of their
// own (the 2006/07/01 letter group has no BinaryLetter), so a letter and
// its files arrive as two files, each with its own receipt.
type BinaryLetter struct {
	Index           int // 1-based position among the Emessage's binary letters
	Identifier      string
	VersionCode     string
	StatisticalCode string
	Authorisation   time.Time // zero when not sent
	StatusCode      string    // nytbrev | rettetbrev
	Sender          Party
	Receiver        Party
	// Patient, or SystemInformation for objects about no patient.
	Patient           Patient
	SystemInformation bool
	Objects           []BinaryObject
}

// BinaryObject is one file of a BinaryLetter, decoded.
type BinaryObject struct {
	BinObject
	Data []byte
}

// ReceiptView is b as a receipt names it: its identifier, version, status
// and parties. BuildReceipt receipts letters of either kind through it.
func (b *BinaryLetter) ReceiptView() *ClinicalEmail {
	return &ClinicalEmail{Index: b.Index, Identifier: b.Identifier, VersionCode: b.VersionCode, StatusCode: b.StatusCode, Sender: b.Sender, Receiver: b.Receiver}
}

// Receipt is an XCTL01/02/03 receipt.
type Receipt struct {
	Index           int
	Type            string // NegativeVansReceipt | NegativeReceipt | PositiveReceipt
	Identifier      string
	VersionCode     string
	StatisticalCode string
	SenderEAN       string // who sends the receipt
	ReceiverEAN     string // the original sender

	OriginalEnvelopeIdentifier string
	OriginalSenderEAN          string
	OriginalReceiverEAN        string
	RefuseCode                 string // envelope level
	RefuseText                 string
	OriginalLetters            []OriginalLetter
}

// Positive reports whether the receipt confirms receipt.
func (r *Receipt) Positive() bool { return r.Type == PositiveReceipt }

// OriginalLetter is one receipted letter.
type OriginalLetter struct {
	Identifier  string
	VersionCode string
	RefuseCode  string
	RefuseText  string
}
