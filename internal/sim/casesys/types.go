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
	ClosedAt        *time.Time     `json:"closedAt,omitempty"`
	Consent         *Consent       `json:"consent,omitempty"`
	ContactPerson   *ContactPerson `json:"contactPerson,omitempty"`
	Referral        *Referral      `json:"referral,omitempty"`
}

// Person is the child a case is about.
type Person struct {
	CPR  string `json:"cpr"`
	Name string `json:"name,omitempty"`
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

// Party is a sender or recipient named in document metadata.
type Party struct {
	Role  string `json:"role,omitempty"`
	Name  string `json:"name,omitempty"`
	GLN   string `json:"gln,omitempty"`
	SOR   string `json:"sor,omitempty"`
	Unit  string `json:"unit,omitempty"`
	Email string `json:"email,omitempty"`
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
	Status     string           `json:"status"` // ready, sent
	Kind       string           `json:"kind,omitempty"`
	Text       string           `json:"text,omitempty"`
	Recipients OutboxRecipients `json:"recipients"`
	ReadyAt    time.Time        `json:"readyAt"`
	SentAt     *time.Time       `json:"sentAt,omitempty"`
}

// OutboxRecipients says where the council wants a document sent.
type OutboxRecipients struct {
	GP      *Organisation `json:"gp,omitempty"`
	Parents []Parent      `json:"parents,omitempty"`
	Region  *Organisation `json:"region,omitempty"`
}

// Organisation is a GP practice or a regional department.
type Organisation struct {
	Name string `json:"name,omitempty"`
	GLN  string `json:"gln,omitempty"`
	SOR  string `json:"sor,omitempty"`
}

// Parent is a custody holder who receives the recommendation.
type Parent struct {
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
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
	SentAt     *time.Time       `json:"sentAt,omitempty"`
	Recipients OutboxRecipients `json:"recipients"`
	Referral   *Referral        `json:"referral,omitempty"`
	Files      []OutboxFile     `json:"files"`
}

// OutboxFile points at a file to download.
type OutboxFile struct {
	FileInfo
	Href string `json:"href"`
}

// Request is one request the simulator answered, for test assertions.
// URI is the request URI exactly as received (path and query).
type Request struct {
	Method   string    `json:"method"`
	URI      string    `json:"uri"`
	Route    string    `json:"route"`  // the mux pattern, e.g. "POST /cases/{caseId}/documents"
	Status   int       `json:"status"` // 0 when the response was dropped on purpose
	Replayed bool      `json:"replayed,omitempty"`
	At       time.Time `json:"at"`
}
