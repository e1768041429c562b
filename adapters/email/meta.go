package email

// Letter.Meta keys of the letters this package makes: notes for whoever
// traces a letter, never read by the pipeline (see letter.Letter.Meta).
const (
	MetaMessageID = "email_message_id"  // the Message-ID header
	MetaInReplyTo = "email_in_reply_to" // the first In-Reply-To id
)
