// Package letter holds Samhub's canonical Letter: what every source produces
// and every sink consumes. It knows no protocol and no broker.
package letter

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// Kind says what a letter is in the council's workflow; routing rules match on it.
type Kind string

const (
	KindReferral        Kind = "referral"
	KindReply           Kind = "reply"
	KindRecommendation  Kind = "recommendation"
	KindAcknowledgement Kind = "acknowledgement"
	KindDischargeNote   Kind = "discharge-note"
	KindNote            Kind = "note"
	KindNotification    Kind = "notification" // hub-made, carries no personal data
)

// Kinds lists every valid Kind, for configuration checks.
var Kinds = []Kind{KindReferral, KindReply, KindRecommendation, KindAcknowledgement, KindDischargeNote, KindNote, KindNotification}

// Scope names a destination sector a consent may cover (interfaces.md §5.4).
type Scope string

const (
	ScopeMunicipality     Scope = "municipality"
	ScopeGP               Scope = "gp"
	ScopeParents          Scope = "parents"
	ScopeRegionPsychiatry Scope = "region_psychiatry"
	ScopeSchoolPPR        Scope = "school_ppr"
)

// Scopes lists every valid Scope.
var Scopes = []Scope{ScopeMunicipality, ScopeGP, ScopeParents, ScopeRegionPsychiatry, ScopeSchoolPPR}

// Letter is one message on its way through the hub. Original always keeps the
// bytes exactly as received; the other fields are what the source could read.
type Letter struct {
	ID        string    `json:"id"` // stable, source-unique: MedCom letter id, MessageHeader.id, Message-ID hash…
	Kind      Kind      `json:"kind"`
	Format    string    `json:"format"` // e.g. "xdis91", "fhir-carecommunication", "email", "casesys", "fhir-r4"
	Source    string    `json:"source"` // adapter instance name
	ThreadID  string    `json:"threadId,omitempty"`
	InReplyTo string    `json:"inReplyTo,omitempty"` // letter id this answers
	Received  time.Time `json:"received"`
	Sent      time.Time `json:"sent,omitempty"`
	Sender    Party     `json:"sender"`
	// Receivers are the parties the letter names as its recipients (the
	// document's own recipient list). Routes deliver only to receivers it
	// names (pipeline/route), never to more.
	Receivers []Party `json:"receivers,omitempty"`
	// To is who one delivery goes to: the addressee(s) the pipeline
	// resolved for the destination from the routing decision (the named
	// receiver of that sector, the referring GP of the thread, the receiver
	// directory). It is set only on the copy a sink gets; sinks address
	// exactly these parties and never pick one from Receivers.
	To          []Party      `json:"to,omitempty"`
	Patient     *Patient     `json:"patient,omitempty"`
	Consent     *Consent     `json:"consent,omitempty"`
	Category    string       `json:"category,omitempty"` // MedCom category code
	Topic       string       `json:"topic,omitempty"`
	Priority    string       `json:"priority,omitempty"`
	Subject     string       `json:"subject,omitempty"`
	Text        string       `json:"text,omitempty"`
	Attachments []Attachment `json:"attachments,omitempty"`
	Original    Original     `json:"original"`
	// ContactEmail is the address of the case's contact person (a
	// caseworker), who also gets the hub's notices about the letter
	// ("answered", "parked"). Set by the case-system source.
	ContactEmail string `json:"contactEmail,omitempty"`
	// SourceDocumentID is the id of the letter's document in the system
	// it came from (the case system's document id), so that system's own
	// sink recognises the letter as already there.
	SourceDocumentID string `json:"sourceDocumentId,omitempty"`
	// CopyOf is the id of the letter this one copies for a party the
	// original did not reach: the council's recommendation for another GP
	// who referred the same child (pipeline/council). Such a copy goes only
	// to destinations of its receivers' sector (pipeline/route); the
	// original went everywhere else.
	CopyOf string `json:"copyOf,omitempty"`
	// Anonymised: this copy was anonymised for its destination
	// (pipeline/route.Anonymise); Patient then holds only a pseudonym.
	Anonymised bool `json:"anonymised,omitempty"`
	// Meta holds the writing adapter's own notes, free of personal data
	// (a MedCom envelope id, a case id, an e-mail Message-ID), for that
	// adapter and for people tracing a letter. The pipeline never reads
	// it; what the pipeline or another adapter needs is a typed field
	// above. Keys are snake_case with the writer's prefix (medcom_,
	// email_, epj_, casesys_, council_) and named as constants in the
	// writing package; keys of letters stored before are renamed when a
	// letter is decoded (metaAliases).
	Meta map[string]string `json:"meta,omitempty"`
	// Ack is set on an acknowledgement: how the receiver answered the
	// letter it acknowledges (InReplyTo).
	Ack *Ack `json:"ack,omitempty"`
}

// Ack is a receiver's answer to a letter the hub sent.
type Ack struct {
	Positive bool `json:"positive"`
	// Code is the format's own result: positive, negative, vans-negative
	// (XCTL receipts); ok, transient-error, fatal-error (FHIR).
	Code string `json:"code"`
	// Transient: the receiver will take the letter once its own trouble is
	// over (FHIR transient-error); the sender resends, nobody need act.
	Transient bool `json:"transient,omitempty"`
	// Reason is the receiver's error codes, free of personal data.
	Reason string `json:"reason,omitempty"`
}

// Roles a Party may have; a destination's sector serves one of them
// (pipeline/route.SectorRoles).
const (
	RoleGP           = "gp"
	RoleMunicipality = "municipality"
	RoleRegion       = "region"
	RoleParents      = "parents"
	RoleHospital     = "hospital"
	RoleSchool       = "school"
	RoleCoordinator  = "coordinator"
)

// Party is a sender or receiver. Any identifier may be empty; sinks use the
// ones their system knows.
//
// A citizen (a custody holder, role parents) carries a CPR number, by which
// Digital Post reaches them. It is personal data like the patient's: a
// Party logs only its role and organisation identifiers (LogValue), and
// what the hub keeps about recipients outside the letter (status reports,
// the retry queue, metrics, the journey) never holds it.
type Party struct {
	Role         string `json:"role,omitempty"` // gp, municipality, region, parents, hospital, coordinator
	Name         string `json:"name,omitempty"`
	GLN          string `json:"gln,omitempty"` // EAN location number
	SOR          string `json:"sor,omitempty"`
	Municipality string `json:"municipality,omitempty"` // kommunenummer
	Unit         string `json:"unit,omitempty"`         // organisational unit, e.g. PPR
	Email        string `json:"email,omitempty"`
	// CPR is a citizen's CPR number (10 digits); organisations have none.
	CPR string `json:"cpr,omitempty"`
	// Accepts lists the MedCom formats the party takes, most preferred
	// first ("fhir-xml", "fhir-json", "xdis91"), from the receiver
	// directory in configuration. Empty: the sink's default for its role.
	Accepts []string `json:"accepts,omitempty"`
}

// LogValue keeps a party's name, address and CPR number out of logs
// whatever a caller passes to slog: only its role and the organisation
// identifiers (GLN, SOR), which are no personal data, are shown.
func (p Party) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("role", p.Role)}
	if p.GLN != "" {
		attrs = append(attrs, slog.String("gln", p.GLN))
	}
	if p.SOR != "" {
		attrs = append(attrs, slog.String("sor", p.SOR))
	}
	return slog.GroupValue(attrs...)
}

// SamePerson reports whether p and q name the same party: equal role and
// identifiers (CPR, GLN, SOR, email) and name. The receiver directory's
// formats (Accepts) do not count.
func (p Party) SamePerson(q Party) bool {
	return p.Role == q.Role && p.CPR == q.CPR && p.GLN == q.GLN && p.SOR == q.SOR && p.Email == q.Email && p.Name == q.Name
}

// Patient is the child the letter is about.
type Patient struct {
	CPR           string `json:"cpr,omitempty"`
	ReplacementID string `json:"replacementId,omitempty"` // X-eCPR / D-eCPR / OIOXML AlternativeIdentifier
	// ReplacementSystem is the identifier system of ReplacementID (e.g. the
	// X-eCPR OID urn:oid:1.2.208.176.1.6.1.1 or a regional D-eCPR OID).
	ReplacementSystem string `json:"replacementSystem,omitempty"`
	GivenName         string `json:"givenName,omitempty"`
	FamilyName        string `json:"familyName,omitempty"`
	Address           string `json:"address,omitempty"`
	Pseudonym         string `json:"pseudonym,omitempty"` // set when the letter was anonymised
}

// patientIDShape is a CPR number (ten digits, optional dash after six) or a
// replacement CPR such as X-eCPR or OIOXML's AlternativeIdentifier (ten
// characters: six digits, then four letters or digits). Modulus 11 is
// deliberately not required: valid CPR numbers issued since 2007 fail it.
var patientIDShape = regexp.MustCompile(`^\d{6}-?[0-9A-Za-z]{4}$`)

// NormalisePatientID returns a CPR or replacement CPR typed by a person as
// the registers key it (no dash, upper case), and false when it does not
// have that shape: a digit too few must not record a consent for nobody.
func NormalisePatientID(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if !patientIDShape.MatchString(s) {
		return "", false
	}
	return strings.ToUpper(strings.ReplaceAll(s, "-", "")), true
}

// Identifier returns the CPR or, failing that, the replacement id.
func (p *Patient) Identifier() string {
	if p == nil {
		return ""
	}
	if p.CPR != "" {
		return p.CPR
	}
	return p.ReplacementID
}

// LogValue keeps patients out of logs whatever a caller passes to slog.
func (p *Patient) LogValue() slog.Value { return slog.StringValue("[patient redacted]") }

// Consent records who agreed to share the letter with which sectors.
//
// Its times are omitzero: omitempty never omits a time.Time, and a
// consent never withdrawn would read "withdrawn in year 1".
type Consent struct {
	GivenBy string    `json:"givenBy,omitempty"` // "custody-holder", "young-person", …
	Form    string    `json:"form,omitempty"`    // oral, written
	GivenAt time.Time `json:"givenAt,omitzero"`
	Scopes  []Scope   `json:"scopes,omitempty"`
	// YoungPersonRefused is a refusal by a young person of 15–17; it overrides
	// the custody holders' consent for health-data routes.
	YoungPersonRefused bool      `json:"youngPersonRefused,omitempty"`
	WithdrawnAt        time.Time `json:"withdrawnAt,omitzero"`
}

// Allows reports whether the consent covers scope at time now.
func (c *Consent) Allows(scope Scope, now time.Time) bool {
	if c == nil {
		return false
	}
	if !c.WithdrawnAt.IsZero() && !now.Before(c.WithdrawnAt) {
		return false
	}
	if c.YoungPersonRefused && scope != ScopeMunicipality {
		return false
	}
	for _, s := range c.Scopes {
		if s == scope {
			return true
		}
	}
	return false
}

// Attachment is a file carried by the letter. Its bytes are either inline
// (Data, for small parts) or something to open (Open): a large part is
// never held whole. A stored letter names such a part by Ref (a blob in
// the hub's blob store); the pipeline hands a sink letters whose parts
// open from there, and every Open starts at the first byte again, so a
// retried delivery re-opens instead of keeping a copy.
type Attachment struct {
	Name        string `json:"name"`
	ContentType string `json:"contentType"`
	Data        []byte `json:"data,omitempty"`
	SHA256      string `json:"sha256,omitempty"`
	Size        int64  `json:"size"`
	// Ref names the blob holding the bytes when the pipeline moved them
	// out of the message.
	Ref  string `json:"ref,omitempty"`
	open Opener
}

// Original is the input exactly as received: inline (Data) when small,
// otherwise opened like an Attachment.
type Original struct {
	Data        []byte `json:"data,omitempty"`
	ContentType string `json:"contentType"`
	Charset     string `json:"charset,omitempty"`
	Filename    string `json:"filename,omitempty"`
	SHA256      string `json:"sha256,omitempty"`
	// Size is the length of the bytes; set for an original that is not
	// inline (with Data it is len(Data)).
	Size int64  `json:"size,omitempty"`
	Ref  string `json:"ref,omitempty"` // see Attachment.Ref
	open Opener
}

// Opener opens a part's bytes from the first byte. Each call gives a new
// reader; the caller closes it. A reader may fail part way (a store that
// stops answering, content that does not match its digest): whoever sends
// from it must then send nothing (no half document), and the delivery is
// tried again later with a new Open.
type Opener func(ctx context.Context) (io.ReadCloser, error)

// ErrNotOpenable is the error of Open on a part that is neither inline nor
// bound to a store (a stored letter's Ref read without the pipeline).
var ErrNotOpenable = errors.New("letter part is not inline and has nothing to open it from")

// NewAttachment fills size and digest.
func NewAttachment(name, contentType string, data []byte) Attachment {
	return Attachment{Name: name, ContentType: contentType, Data: data, Size: int64(len(data)), SHA256: Digest(data)}
}

// StreamedAttachment is an attachment that is opened rather than held:
// size and digest are those of the bytes open gives.
func StreamedAttachment(name, contentType string, size int64, sha256 string, open Opener) Attachment {
	return Attachment{Name: name, ContentType: contentType, Size: size, SHA256: sha256, open: open}
}

// Open returns a reader over the attachment's bytes.
func (a Attachment) Open(ctx context.Context) (io.ReadCloser, error) {
	return openPart(ctx, a.Data, a.Ref, a.open)
}

// Len is the number of bytes Open gives.
func (a Attachment) Len() int64 {
	if a.Data != nil {
		return int64(len(a.Data))
	}
	return a.Size
}

// Inline reports whether the bytes are in Data.
func (a Attachment) Inline() bool { return a.Data != nil }

// Streamed reports whether the bytes are to be opened from a source or
// store rather than held in Data.
func (a Attachment) Streamed() bool { return a.Data == nil && a.open != nil }

// WithOpener returns a with its bytes to be opened by open, Data dropped.
func (a Attachment) WithOpener(open Opener) Attachment {
	a.Data, a.open = nil, open
	return a
}

// Open returns a reader over the original's bytes.
func (o Original) Open(ctx context.Context) (io.ReadCloser, error) {
	return openPart(ctx, o.Data, o.Ref, o.open)
}

// Len is the number of bytes Open gives.
func (o Original) Len() int64 {
	if o.Data != nil {
		return int64(len(o.Data))
	}
	return o.Size
}

// Inline reports whether the bytes are in Data.
func (o Original) Inline() bool { return o.Data != nil }

// Streamed reports whether the bytes are to be opened rather than held.
func (o Original) Streamed() bool { return o.Data == nil && o.open != nil }

// WithOpener returns o with its bytes to be opened by open, Data dropped.
func (o Original) WithOpener(open Opener) Original {
	o.Data, o.open = nil, open
	return o
}

func openPart(ctx context.Context, data []byte, ref string, open Opener) (io.ReadCloser, error) {
	switch {
	case data != nil:
		return io.NopCloser(bytes.NewReader(data)), nil
	case open != nil:
		return open(ctx)
	case ref != "":
		return nil, ErrNotOpenable
	}
	return io.NopCloser(bytes.NewReader(nil)), nil // an empty part
}

// ReadAll reads a part whole: for parts known to be small (a text
// attachment being checked) and for tests. Large parts are sent from
// Open's reader instead.
func ReadAll(ctx context.Context, open func(context.Context) (io.ReadCloser, error)) ([]byte, error) {
	r, err := open(ctx)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// Digest is the hex SHA-256 of b.
func Digest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// LogValue lets a whole letter be logged safely: only ids and routing facts,
// never the patient, names, subject or text.
func (l *Letter) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("id", l.ID),
		slog.String("kind", string(l.Kind)),
		slog.String("format", l.Format),
		slog.String("source", l.Source),
		slog.String("thread", l.ThreadID),
	)
}

// Validate checks what every letter must carry before it enters the pipeline.
func (l *Letter) Validate() error {
	var errs []error
	if l.ID == "" {
		errs = append(errs, errors.New("letter.id: must not be empty"))
	}
	if len(l.ID) > 200 {
		errs = append(errs, errors.New("letter.id: must be at most 200 characters"))
	}
	if !validKind(l.Kind) {
		errs = append(errs, fmt.Errorf("letter.kind: must be one of %v", Kinds))
	}
	if l.Source == "" {
		errs = append(errs, errors.New("letter.source: must not be empty"))
	}
	if l.Original.Data == nil && !l.Original.Streamed() && l.Original.Ref == "" && l.Kind != KindNotification {
		errs = append(errs, errors.New("letter.original: the original bytes must be kept"))
	}
	return errors.Join(errs...)
}

func validKind(k Kind) bool {
	for _, v := range Kinds {
		if v == k {
			return true
		}
	}
	return false
}

// Thread is the ordering key: letters of one thread reach a destination in order.
func (l *Letter) Thread() string {
	if l.ThreadID != "" {
		return l.ThreadID
	}
	return l.ID
}

// Marshal encodes a letter for the broker.
func Marshal(l *Letter) ([]byte, error) { return json.Marshal(l) }

// Unmarshal decodes what Marshal wrote, this version or an earlier one:
// a letter stored before (in the letter stream, the retry queue) is
// brought up to date (upgrade). Every reader of stored letters decodes
// with it. (Not a json.Unmarshaler: one would scan each letter twice.)
//
// It decodes with the encoding/json v2 prototype (go-json-experiment), about
// three times faster than encoding/json on a 10 KB letter (49 against 129
// µs, BenchmarkUnmarshal) and every destination's handler decodes each
// letter; the options keep encoding/json's leniency (names in any case,
// invalid UTF-8 and repeated names accepted), so what encoding/json read,
// this reads alike (TestUnmarshalReadsAsEncodingJSON).
func Unmarshal(b []byte) (*Letter, error) {
	var l Letter
	if err := jsonv2.Unmarshal(b, &l, decodeOptions); err != nil {
		return nil, fmt.Errorf("decode letter: %w", err)
	}
	l.upgrade()
	return &l, nil
}

var decodeOptions = jsonv2.JoinOptions(jsonv2.MatchCaseInsensitiveNames(true), jsontext.AllowInvalidUTF8(true), jsontext.AllowDuplicateNames(true))

// metaFields are Meta keys of earlier versions that are typed fields now.
var metaFields = map[string]func(l *Letter, v string){
	"contactEmail":       func(l *Letter, v string) { l.ContactEmail = v },
	"casesys.documentId": func(l *Letter, v string) { l.SourceDocumentID = v },
	"anonymised":         func(l *Letter, v string) { l.Anonymised = v == "true" },
}

// metaAliases renames the Meta keys of earlier versions (four naming
// styles) to the adapters' present keys.
var metaAliases = map[string]string{
	// adapters/casesys
	"casesys.caseId": "casesys_case_id",
	// adapters/email
	"message-id":  "email_message_id",
	"in-reply-to": "email_in_reply_to",
	// adapters/epj
	"fhir_resource":      "epj_fhir_resource",
	"fhir_version":       "epj_fhir_version",
	"attachments_by_url": "epj_attachments_by_url",
	// pipeline/council
	"council.meeting":  "council_meeting",
	"council.referral": "council_referral",
}

// fhirMessageAliases are the old keys of adapters/medcom/fhirmsg, renamed
// on its letters only: a hub notice has a key "event" of its own.
var fhirMessageAliases = map[string]string{
	"bundleId":               "medcom_bundle_id",
	"encoding":               "medcom_encoding",
	"event":                  "medcom_event",
	"patientNameAbsent":      "medcom_patient_name_absent",
	"activity":               "medcom_activity",
	"attachmentsWithoutData": "medcom_attachments_without_data",
	"vansEnvelopeId":         "medcom_vans_envelope_id",
	"responseCode":           "medcom_response_code",
	"issues":                 "medcom_issues",
}

// upgrade moves what earlier versions kept in Meta into typed fields and
// renames old Meta keys. A typed field or a present key already set wins.
func (l *Letter) upgrade() {
	if len(l.Meta) == 0 {
		return
	}
	fhirMessage := l.Format == "fhir-carecommunication" || l.Format == "fhir-acknowledgement"
	for k, v := range l.Meta {
		if set, ok := metaFields[k]; ok {
			if !l.hasField(k) {
				set(l, v)
			}
			delete(l.Meta, k)
			continue
		}
		nk, ok := metaAliases[k]
		if !ok && fhirMessage {
			nk, ok = fhirMessageAliases[k]
		}
		if ok {
			if _, have := l.Meta[nk]; !have {
				l.Meta[nk] = v
			}
			delete(l.Meta, k)
		}
	}
	if len(l.Meta) == 0 {
		l.Meta = nil
	}
}

// hasField reports whether the typed field an old Meta key became is set.
func (l *Letter) hasField(oldKey string) bool {
	switch oldKey {
	case "contactEmail":
		return l.ContactEmail != ""
	case "casesys.documentId":
		return l.SourceDocumentID != ""
	case "anonymised":
		return l.Anonymised
	}
	return false
}
