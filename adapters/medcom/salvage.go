package medcom

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"

	"github.com/samhub/samhub/adapters/medcom/fhirmsg"
	"github.com/samhub/samhub/adapters/medcom/oioxml"
	"github.com/samhub/samhub/adapters/medcom/xmlsafe"
)

// A file that is not well-formed XML or JSON (cut off in transit, a stray
// byte) was read only as far as its fault. MedCom wants a negative
// acknowledgement with its syntax error code for it all the same
// (XCTL02 RefuseCode syntaksfejl; a FHIR Acknowledgement fatal-error with
// the issue MSG_BAD_SYNTAX), so that the sender's system shows the letter
// as failed and it is sent again, rather than waited for. What the answer
// needs is read from the bytes before the fault (xmlsafe.Error.Offset)
// by a head scan (xmlsafe.HeadXML, HeadJSON), which keeps identifiers
// only: the envelope's or MessageHeader's id, the sender's and receiver's
// GLN (EAN) and SOR numbers. Input refused for anything but its syntax
// (a DTD, a limit, its charset) is not scanned again, and gets no answer.
//
// Such an answer is kept under a key of its own (planAcks): a copy of the
// same broken file gets the same bytes, while the letter sent again whole
// is a letter like any other, stored and answered by its own receipt.

// salvage gives in, refused for its syntax and read too little to be
// answered, the head an answer needs, from data (the input as the
// parser read it; sum is the file's SHA-256 in hex, "" to take data's).
// It leaves in as it is when not all of that head could be read.
func salvage(in *inbound, data []byte, sum string, lim xmlsafe.Limits) {
	var xe *xmlsafe.Error
	if in.err == nil || !errors.As(in.err, &xe) || xe.Reason != xmlsafe.ReasonSyntax || in.addressable() {
		return
	}
	head := data[:min(max(xe.Offset, 0), len(data))]
	if in.fhir != nil && in.fhir.VANS != nil {
		// The envelope was read whole; its message is what broke, at an
		// offset of its own. The scan stops at that fault by itself.
		head = data
	}
	switch in.kind {
	case kindOIOXML:
		m := oioxml.Salvage(head, lim)
		if m == nil {
			return
		}
		in.oio = m
	case kindFHIR:
		m := fhirmsg.Salvage(head, lim)
		if m == nil || m.Event != fhirmsg.EventCareCommunication || m.Sender.SOR == "" || m.Sender.GLN == "" || m.Receiver.SOR == "" {
			return // an acknowledgement is never acknowledged; the rest cannot be addressed
		}
		in.fhir = m
	default:
		return
	}
	if sum == "" {
		s := sha256.Sum256(data)
		sum = hex.EncodeToString(s[:])
	}
	in.salvaged = sum
}
