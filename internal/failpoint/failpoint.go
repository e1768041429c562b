// Package failpoint lets the reliability suite break the hub on purpose: kill
// the process at the points where a crash is dangerous, and deliver every
// letter twice to prove that the suite's oracles see a second copy.
//
// The hooks are compiled in only with the build tag failpoints, which the
// reliability suite builds the hub with; every other build, the release
// build (-tags release) included, gets the no-op functions of off.go, which
// the compiler inlines away. In a failpoints build nothing happens either
// unless the environment variable SAMHUB_FAILPOINT names a point:
//
//	SAMHUB_FAILPOINT=medcom-stored       kill at the first hit of the point
//	SAMHUB_FAILPOINT=sink-done@7         kill at its seventh hit
//	SAMHUB_FAILPOINT=deliver-twice       deliver every letter a second time
//
// Several entries are separated by commas. SAMHUB_FAILPOINT_AFTER (a
// duration) makes hits of kill points count only from that long after the
// process started, so a life can first show that it recovered. A kill is SIGKILL to the process
// itself, after one line on stderr ("failpoint: killed at <point> (hit n)"),
// so nothing after the point runs: no deferred call, no flush, no ack.
package failpoint

// EnvVar arms failpoints in a failpoints build; EnvAfter delays kills.
const (
	EnvVar   = "SAMHUB_FAILPOINT"
	EnvAfter = "SAMHUB_FAILPOINT_AFTER"
)

// Kill points, in the order a letter passes them.
const (
	// MedComClaimed: a MedCom file moved from in/ to processing/, none of
	// its letters stored yet.
	MedComClaimed = "medcom-claimed"
	// LetterStored: JetStream stored a letter; the source has not heard so.
	LetterStored = "letter-stored"
	// MedComPublished: a MedCom round's letters stored (the intake
	// answered); no acknowledgement of the round written yet.
	MedComPublished = "medcom-published"
	// MedComAcksWritten: a MedCom round's acknowledgements written to
	// out/, not yet synced; no file moved to processed/.
	MedComAcksWritten = "medcom-acks-written"
	// MedComStored: a MedCom file's letters stored and its acknowledgements
	// written and synced; the file not yet moved to processed/.
	MedComStored = "medcom-stored"
	// OutboxPublished: a case-system outbox document stored as a letter,
	// not yet accepted in the case system.
	OutboxPublished = "outbox-published"
	// SinkDone: a sink delivered a letter; the pipeline has neither
	// recorded the delivery nor acknowledged the letter.
	SinkDone = "sink-done"
	// BeforeAck: a letter handled; its acknowledgement not yet sent to
	// JetStream.
	BeforeAck = "before-ack"
	// CaseDocumentAdded: the case system stored a letter's document; its
	// journal note is not added yet.
	CaseDocumentAdded = "casesys-document-added"
	// EPJCreated: the region's gateway created the letter's
	// Communication; its answer not yet read.
	EPJCreated = "epj-created"
	// MedComOutWritten: a letter written to the MedCom out folder; the
	// sink has not recorded it.
	MedComOutWritten = "medcom-out-written"
	// SMTPInData: an SMTP transaction in DATA: the server said go ahead,
	// no byte of the message sent yet.
	SMTPInData = "smtp-in-data"
	// SMTPSent: the mail server accepted a message; the sink has not
	// recorded it as sent.
	SMTPSent = "smtp-sent"
)

// KillPoints lists every kill point.
var KillPoints = []string{MedComClaimed, LetterStored, MedComPublished, MedComAcksWritten, MedComStored, OutboxPublished, SinkDone, BeforeAck,
	CaseDocumentAdded, EPJCreated, MedComOutWritten, SMTPInData, SMTPSent}

// Switches change what the hub does while armed.
const (
	// DeliverTwice: after every successful delivery the sink is called a
	// second time with a copy of the letter under a new id, so no
	// idempotency of the sink or the destination can hide it.
	DeliverTwice = "deliver-twice"
)

// Switches lists every switch.
var Switches = []string{DeliverTwice}
