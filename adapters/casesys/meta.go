package casesys

// MetaCaseID is the Letter.Meta key of the case a letter from the case
// system's outbox belongs to: a note for whoever traces the letter (see
// letter.Letter.Meta). The document id and the contact person's address
// are typed letter fields (SourceDocumentID, ContactEmail).
const MetaCaseID = "casesys_case_id"
