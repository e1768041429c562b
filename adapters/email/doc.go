// Package email connects Samhub to mail servers: type "smtp" is a Sink that
// submits letters by SMTP, type "imap" is a Source that reads a mailbox.
//
// Email carries letters to professionals and the council's own staff only.
// The parents are citizens, whom a public authority writes to by Digital
// Post (adapters/digitalpost): configuration refuses an smtp destination in
// the parents sector, and the sink refuses a letter addressed to a custody
// holder and mails no custody holder named among a letter's receivers.
//
// Both sides speak TLS only (interfaces.md §3): implicit TLS or STARTTLS that
// must succeed, TLS 1.2 or newer, server certificates always verified (an
// extra CA bundle may be configured, verification may not be switched off).
//
// Outbound idempotency: each (letter, recipient) pair gets a deterministic
// Message-ID, and a sent marker is written to the state store after the server
// accepted the message, so a retried Deliver skips recipients already served
// and a resend that slips through is recognisable by its Message-ID. A
// recipient the server refuses (at RCPT or at the end of DATA) does not
// keep the letter from the others; a delivery that reached some returns
// adapters.Partial naming who has it, retryable if any refusal was
// temporary, else permanent.
//
// Inbound idempotency: a message's letter id is derived from its Message-ID
// and a hash of its bytes, a state record is written after Publish returned
// nil, and only then is the message moved to the processed mailbox. A
// restart between publish and move finds the record and just completes the
// move; a restart before the record was written publishes the same letter id
// again, which the broker deduplicates. The letter id is the mail's
// identity: two mails are one when their bytes are, whatever their
// Message-ID (which senders do not keep unique); a mail without one is
// known by its bytes alone. So a restored mailbox (a new UIDVALIDITY)
// brings back no letter twice, and a copy a mail server delivered again
// with other trace headers is another letter.
//
// A mail that cannot become a letter goes to the error mailbox unchanged,
// its reason recorded and logged and counted in
// samhub_letters_rejected_total (imap_source.go lists the codes): one the
// reader refuses, one over max_bytes (not downloaded), one the hub refuses
// for good (too large to store), and one whose download failed five times,
// the last four each after the server had sent another mail, so a server
// that fails every download for a while sets nothing aside. Without MOVE a mail is
// copied, and flagged and expunged only once the copy succeeded.
//
// Large messages (issue 21): the imap source reads a message of 1 MiB or
// more into a spool file as the server sends it (bounded by max_bytes), and
// the MIME reader decodes each attachment of 64 KiB or more into a spool
// file of its own, computing size and SHA-256 on the way (spool.go); the
// letter's original and those attachments are openers on the files, which
// the pipeline's ingest stores in the blob store chunk by chunk. The files
// are removed when the publish returns, stored or not, and a start removes
// what a killed process left. Smaller messages are read in memory, by the
// same reader (ParseMessage).
//
// Outbound error table:
//
//	SMTP 4xx, network errors, timeouts      retryable
//	SMTP 5xx                                permanent
//	no STARTTLS offered, TLS handshake or   permanent (the same server will
//	certificate verification failed          answer the same way)
//	recipient not on the allow-list         permanent, nothing is sent
//	addressed to a custody holder           permanent citizen_by_email
package email
