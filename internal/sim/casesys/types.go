package casesyssim

import "time"

// Case is one case in the simulated case system. The JSON shape is the one
// schemas/casesys/openapi.yaml documents as Case.
type Case struct {
	ID              string         `json:"id"`
	ExternalID      string         `json:"externalId,omitempty"`
	CaseType        string         `json:"caseType"`
	Title           string         `json:"title"`
	KLE             string         `json:"kle,omitempty"`
	PrimaryParty    Person         `json:"primaryParty"`
	ResponsibleUnit string         `json:"responsibleUnit,omitempty"`
	Status          string         `json:"status"` // open, closed
	Version         int            `json:"version"`
	CreatedAt       time.Time      `json:"createdAt"`
	UpdatedAt       *time.Time     `json:"updatedAt,omitempty"`
	ClosedAt        *time.Time     `json:"closedAt,omitempty"`
	Consent         *Consent       `json:"consent,omitempty"`
	ContactPerson   *ContactPerson `json:"contactPerson,omitempty"`
	Referral        *Referral      `json:"referral,omitempty"`
}

// Person is the child a case is about: a CPR, or a replacement id
// (X-eCPR, a region's D-eCPR, OIOXML's AlternativeIdentifier) for a child
// who has none yet, or both once the CPR is known. Name is the full name
// as a caseworker sees it; GivenName (all given and middle names) and
// FamilyName keep the parts when the sender gave them, so a letter built
// from the case names the child exactly as the referral did.
type Person struct {
	CPR               string `json:"cpr,omitempty"`
	ReplacementID     string `json:"replacementId,omitempty"`
	ReplacementSystem string `json:"replacementSystem,omitempty"` // e.g. urn:oid:1.2.208.176.1.6.1.1 (X-eCPR)
	Name              string `json:"name,omitempty"`
	GivenName         string `json:"givenName,omitempty"`
	FamilyName        string `json:"familyName,omitempty"`
}

// Consent is what the council recorded about sharing (interfaces.md §5.4).
type Consent struct {
	GivenBy            string     `json:"givenBy,omitempty"`
	Form               string     `json:"form,omitempty"`
	GivenAt            *time.Time `json:"givenAt,omitempty"`
	Scopes             []string   `json:"scopes"`
	YoungPersonRefused bool       `json:"youngPersonRefused"`
	WithdrawnAt        *time.Time `json:"withdrawnAt,omitempty"`
}

// ContactPerson is the caseworker parents and GPs may contact.
type ContactPerson struct {
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
}

// Referral links a case to the MedCom referral it came from.
type Referral struct {
	ThreadID string `json:"threadId,omitempty"`
	LetterID string `json:"letterId,omitempty"`
}

// Party is a sender or recipient named in document metadata, and the
// recipient of an outbox status.
type Party struct {
	Role         string `json:"role,omitempty"`
	Name         string `json:"name,omitempty"`
	GLN          string `json:"gln,omitempty"`
	SOR          string `json:"sor,omitempty"`
	Municipality string `json:"municipality,omitempty"`
	Unit         string `json:"unit,omitempty"`
	Email        string `json:"email,omitempty"`
}

// FileInfo describes one stored file of a document; the bytes live in the
// data directory under files/<sha256>.
type FileInfo struct {
	Name        string `json:"name"`
	ContentType string `json:"contentType"`
	SHA256      string `json:"sha256"`
	Size        int64  `json:"size"`
}

// LetterRef names the hub letter a document was made from.
type LetterRef struct {
	ID        string `json:"id,omitempty"`
	Kind      string `json:"kind,omitempty"`
	ThreadID  string `json:"threadId,omitempty"`
	InReplyTo string `json:"inReplyTo,omitempty"`
}

// Document is a journalised document on a case.
type Document struct {
	ID           string     `json:"id"`
	CaseID       string     `json:"caseId"`
	ExternalID   string     `json:"externalId,omitempty"`
	Title        string     `json:"title"`
	Direction    string     `json:"direction"` // incoming, outgoing, internal
	DocumentDate time.Time  `json:"documentDate"`
	Sender       *Party     `json:"sender,omitempty"`
	Recipients   []Party    `json:"recipients,omitempty"`
	Letter       *LetterRef `json:"letter,omitempty"`
	Files        []FileInfo `json:"files"`
	Journalised  bool       `json:"journalised"`
	CreatedAt    time.Time  `json:"createdAt"`
	// Outbox is set on documents the council marked ready to send.
	Outbox *OutboxState `json:"outbox,omitempty"`
}

// OutboxState is the sending state of a document in the outbox.
type OutboxState struct {
	// Status is ready until the hub accepts the document, then derived
	// from the recipients' statuses (see Derive).
	Status     string           `json:"status"`
	Kind       string           `json:"kind,omitempty"`
	Text       string           `json:"text,omitempty"`
	Recipients OutboxRecipients `json:"recipients"`
	ReadyAt    time.Time        `json:"readyAt"`
	AcceptedAt *time.Time       `json:"acceptedAt,omitempty"`
	// SentAt is when the last recipient was reported sent.
	SentAt          *time.Time        `json:"sentAt,omitempty"`
	RecipientStatus []RecipientStatus `json:"recipientStatus"`
}

// Document statuses of an outbox entry. Ready is the council's; the rest
// are derived from the recipients' statuses once the hub took it.
const (
	OutboxReady      = "ready"       // marked ready to send; the hub has not taken it yet
	OutboxAccepted   = "accepted"    // the hub took it; no recipient has a status yet
	OutboxWaiting    = "waiting"     // some recipient is waiting or has no status yet, none failed
	OutboxFailed     = "failed"      // some recipient failed: a coordinator must act
	OutboxSent       = "sent"        // every recipient was sent the document
	OutboxPartlySent = "partly-sent" // every recipient is settled; some sent, some not sent
	OutboxNotSent    = "not-sent"    // every recipient is settled and none was sent
)

// Recipient statuses, as the hub reports them; pending until it does.
const (
	RecipientPending = "pending"
	RecipientSent    = "sent"
	RecipientWaiting = "waiting"
	RecipientFailed  = "failed"
	RecipientNotSent = "not_sent"
)

// OutboxStatuses lists every document status GET /outbox?status= takes.
var OutboxStatuses = []string{OutboxReady, OutboxAccepted, OutboxWaiting, OutboxFailed, OutboxSent, OutboxPartlySent, OutboxNotSent}

// RecipientStatus is the fate of one recipient of an outbox document.
type RecipientStatus struct {
	Key         string     `json:"key"` // the recipient's key in the document's recipients
	Recipient   Party      `json:"recipient"`
	Status      string     `json:"status"`         // pending, sent, waiting, failed, not_sent
	Code        string     `json:"code,omitempty"` // the hub's machine code, e.g. consent_missing
	Reason      string     `json:"reason,omitempty"`
	Destination string     `json:"destination,omitempty"` // the hub's destination serving the recipient
	At          *time.Time `json:"at,omitempty"`          // when the hub saw this status
}

// OutboxRecipients says where the council wants a document sent. Each
// recipient has a key, unique within the document and stable, by which
// the hub reports its status.
type OutboxRecipients struct {
	GP      *Organisation `json:"gp,omitempty"`
	Parents []Parent      `json:"parents,omitempty"`
	Region  *Organisation `json:"region,omitempty"`
}

// Organisation is a GP practice or a regional department.
type Organisation struct {
	Key  string `json:"key,omitempty"`
	Name string `json:"name,omitempty"`
	GLN  string `json:"gln,omitempty"`
	SOR  string `json:"sor,omitempty"`
}

// Parent is a custody holder who receives the recommendation. CPR is how
// Digital Post reaches them; the recipients' statuses never repeat it.
type Parent struct {
	Key   string `json:"key,omitempty"`
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
	CPR   string `json:"cpr,omitempty"`
}

// JournalNote is a short note on a case.
type JournalNote struct {
	ID          string    `json:"id"`
	CaseID      string    `json:"caseId"`
	ExternalID  string    `json:"externalId,omitempty"`
	Title       string    `json:"title"`
	Text        string    `json:"text"`
	ContactTime time.Time `json:"contactTime"`
	CreatedAt   time.Time `json:"createdAt"`
}

// OutboxItem is what GET /outbox lists.
type OutboxItem struct {
	DocumentID string           `json:"documentId"`
	CaseID     string           `json:"caseId"`
	Status     string           `json:"status"`
	Kind       string           `json:"kind,omitempty"`
	Title      string           `json:"title"`
	Text       string           `json:"text"`
	ReadyAt    time.Time        `json:"readyAt"`
	AcceptedAt *time.Time       `json:"acceptedAt,omitempty"`
	SentAt     *time.Time       `json:"sentAt,omitempty"`
	Recipients OutboxRecipients `json:"recipients"`
	// RecipientStatus has one entry per recipient, in the order gp,
	// parents, region.
	RecipientStatus []RecipientStatus `json:"recipientStatus"`
	Referral        *Referral         `json:"referral,omitempty"`
	Files           []OutboxFile      `json:"files"`
}

// OutboxFile points at a file to download.
type OutboxFile struct {
	FileInfo
	Href string `json:"href"`
}

// Request is one request the simulator answered, for test assertions.
// URI is the request URI exactly as received (path and query).
type Request struct {
	Method   string `json:"method"`
	URI      string `json:"uri"`
	Route    string `json:"route"`  // the mux pattern, e.g. "POST /cases/{caseId}/documents"
	Status   int    `json:"status"` // 0 when the response was dropped on purpose
	Replayed bool   `json:"replayed,omitempty"`
	// IdempotencyKey and ExternalID are what a write request carried (the
	// externalId of the object it creates), so a test can see a second
	// delivery of the same letter.
	IdempotencyKey string    `json:"idempotencyKey,omitempty"`
	ExternalID     string    `json:"externalId,omitempty"`
	At             time.Time `json:"at"`
}

// Count is how often one idempotency key or externalId was seen.
type Count struct {
	// Requests counts the write requests that carried it: replays,
	// refusals and answers dropped on purpose included. Kept in memory
	// since the simulator started.
	Requests int `json:"requests"`
	// Created counts the objects it made. For an Idempotency-Key: answers
	// that created something, not replays (in memory). For an externalId:
	// the objects stored with it now (from the persisted state, so a
	// restart does not reset it); 2 or more is a double delivery.
	Created int `json:"created"`
}

// Counts is what GET /_sim/counts shows.
type Counts struct {
	IdempotencyKeys map[string]Count `json:"idempotencyKeys"`
	ExternalIDs     map[string]Count `json:"externalIds"`
	// Duplicates lists the externalIds that more than one stored object
	// carries, sorted: empty unless something was delivered twice.
	Duplicates []string `json:"duplicates"`
}
