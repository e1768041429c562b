package fhirmsg

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/samhub/samhub/adapters/medcom/xmlsafe"
)

// fuzzLimits keep each fuzz input cheap.
var fuzzLimits = xmlsafe.Limits{MaxBytes: 1 << 20, MaxDepth: 64, MaxTokens: 100_000, MaxAttrLen: 1 << 20}

func seed(f *testing.F, pattern string) {
	files, _ := filepath.Glob(filepath.Join(testdata, pattern))
	for _, p := range files {
		f.Add(readFile(f, strings.TrimPrefix(p, testdata+"/")))
	}
}

// exercise runs everything a receiver does with an input; none may panic.
func exercise(t *testing.T, data []byte) {
	m, err := Parse(data, fuzzLimits)
	if err != nil {
		return
	}
	valid := Validate(m) == nil
	l := m.Letter("fuzz", data, "")
	if m.HeaderID != "" && m.Event == EventCareCommunication {
		self := Organization{Name: "x", SOR: "330461000016004", GLN: "5790001353308"}
		if valid && l.Patient != nil {
			// Whatever patient a valid letter carries, the hub's own letter
			// for it must read back valid, with the same patient.
			out, _, err := BuildCareCommunication(l, BuildOptions{Encoding: m.Encoding, Self: self, To: m.Sender, Mode: ModeNew, Now: fixedNow()})
			if err == nil {
				b, err := Parse(out, xmlsafe.DefaultLimits())
				if err != nil {
					t.Fatalf("built letter does not re-parse: %v", err)
				}
				if err := Validate(b); err != nil {
					t.Fatalf("built letter does not validate: %v", err)
				}
				if want := *l.Patient; want.CPR != "" && (b.Patient.CPR != want.CPR || b.Patient.FamilyName != want.FamilyName) ||
					want.CPR == "" && (b.Patient.ReplacementID != want.ReplacementID || b.Patient.ReplacementSystem != want.ReplacementSystem) {
					t.Fatalf("patient changed: %+v → %+v", want, b.Patient)
				}
			}
		}
		if out, err := BuildAcknowledgement(m, AckOK, nil, self, fixedNow()); err == nil {
			if _, err := Parse(out, xmlsafe.DefaultLimits()); err != nil {
				t.Fatalf("built acknowledgement does not re-parse: %v", err)
			}
		}
	}
}

func FuzzFHIRJSON(f *testing.F) {
	seed(f, "Bundle-*.json")
	seed(f, "samhub/*.json")
	seed(f, "verified/*.json")
	f.Add([]byte(`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"MessageHeader"}}]}`))
	f.Fuzz(exercise)
}

func FuzzFHIRXML(f *testing.F) {
	seed(f, "Bundle-*.xml")
	seed(f, "samhub/*.xml")
	seed(f, "verified/*.xml")
	f.Add([]byte(`<Bundle xmlns="http://hl7.org/fhir"><entry><resource><MessageHeader/></resource></entry></Bundle>`))
	f.Fuzz(exercise)
}

func FuzzVANSEnvelope(f *testing.F) {
	seed(f, "golden/vans-*.xml")
	f.Add([]byte(`<VANSEnvelope><EnvelopeIdentifier>e</EnvelopeIdentifier><Message><Data>e30=</Data></Message></VANSEnvelope>`))
	f.Fuzz(exercise)
}
