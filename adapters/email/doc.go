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
// again, which the broker deduplicates.
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
