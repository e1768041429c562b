package medcom

import (
	"time"

	"github.com/samhub/samhub/adapters/medcom/fhirmsg"
	"github.com/samhub/samhub/adapters/medcom/oioxml"
	"github.com/samhub/samhub/adapters/medcom/xmlsafe"
)

// CheckResult is what `samhub validate [--ack] FILE` shows.
type CheckResult struct {
	Format string   // "xdis91", "xbin01", "oioxml-receipt", "fhir-carecommunication", "fhir-acknowledgement" or "" when unreadable
	Errors []string // "path: message", free of personal data; empty when valid
	Ack    []byte   // the acknowledgement the hub would send (the first, if several letters); nil when none is owed
	Acks   [][]byte // all of them: one per letter
}

// Valid reports whether the input passed every check.
func (r CheckResult) Valid() bool { return len(r.Errors) == 0 }

// Check parses and validates one MedCom file exactly as the adapter would,
// without touching any directory or state. Acknowledgements are sent in the
// name of the letter's receiver.
func Check(data []byte, limits xmlsafe.Limits) CheckResult {
	if limits.MaxBytes <= 0 {
		limits.MaxBytes = xmlsafe.DefaultLimits().MaxBytes
	}
	in := examine(data, limits)
	var res CheckResult
	switch {
	case in.salvaged != "":
		// Not well-formed: no format is told, though its answer is shown.
	case in.oio != nil && len(in.oio.Letters) > 0:
		res.Format = oioxml.Format
	case in.oio != nil && len(in.oio.Binaries) > 0:
		res.Format = oioxml.BinaryFormat
	case in.oio != nil:
		res.Format = oioxml.ReceiptFormat
	case in.fhir != nil && in.fhir.Event == fhirmsg.EventAcknowledgement:
		res.Format = fhirmsg.FormatAcknowledgement
	case in.fhir != nil:
		res.Format = fhirmsg.FormatCareCommunication
	}
	res.Errors = capLines(errLines(in.err))
	acks, err := planAcks(in, Self{}, time.Now())
	if err != nil {
		res.Errors = append(res.Errors, "acknowledgement: "+err.Error())
	}
	for _, p := range acks {
		if p.data != nil {
			res.Acks = append(res.Acks, p.data)
		}
	}
	if len(res.Acks) > 0 {
		res.Ack = res.Acks[0]
	}
	return res
}
