// Package medcompeer plays the other side of the hub's MedCom drop folder:
// the GP systems and the region's MedCom endpoint, behind their VANS
// clients. Tests and demos use it to see what a receiver would get.
//
// Like a VANS client it takes every file the hub writes to <dir>/out/
// (reads it, then removes it) and writes what its parties send into
// <dir>/in/ under a temporary name, then renames it into place.
//
// Each letter taken is checked against the standard with the repository's
// own readers and validators (oioxml for XDIS91 and the XCTL receipts,
// fhirmsg for CareCommunication, Acknowledgement and the VANSEnvelope) and,
// for XDIS91, with xmllint against MedCom's XSD (Config.XSDDir). It is
// recorded with what a receiver sees (format, MedCom ids, thread and reply
// references, patient, sender, and the receiver it is addressed to) under
// the party that has that address, and answered as that party's system
// would: an XCTL03 PositiveReceipt or XCTL02 NegativeReceipt for XDIS91, a
// FHIR Acknowledgement (ok or fatal-error) for a CareCommunication, in a
// VANSEnvelope when the letter came in one. A letter that fails the
// standard is recorded with its problems and answered negatively; a letter
// no party of the peer is addressed by is recorded as undeliverable and not
// answered. Answers can be changed per party and per letter (SetAnswer,
// AnswerNext), e.g. to make one GP refuse one letter.
//
// The peer also sends as a GP would (Send): a new letter (a referral) or a
// reply in the thread of a letter it received, as XDIS91 in ISO-8859-1 or
// UTF-8, or as a CareCommunication in FHIR XML or JSON, bare or in a
// VANSEnvelope. The hub's acknowledgements of those letters are recorded
// (Acks, AckFor) and checked like letters.
//
// Handler serves a read-only view of the records for demos:
//
//	GET /_sim/letters   letters received, per party   {"results":[Letter…]}
//	GET /_sim/acks      acknowledgements from the hub {"results":[Ack…]}
//	GET /_sim/sent      letters the peer sent         {"results":[Sent…]}
//
// The records hold patient identifiers and letter text as a receiver
// would: the peer writes no log, and the view is for fictitious test data.
package medcompeer
