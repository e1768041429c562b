package medcom

import (
	"strings"
	"testing"
)

func TestIsFHIRReadsOnlyTheRootName(t *testing.T) {
	for in, want := range map[string]bool{
		`{"resourceType":"Bundle"}`: true,
		"\ufeff  <?xml version=\"1.0\"?>\n<!-- x --><Bundle xmlns=\"http://hl7.org/fhir\">": true,
		`<fhir:Bundle xmlns:fhir="http://hl7.org/fhir"/>`:                                   true,
		`<VANSEnvelope xmlns="urn:oio:medcom:vans-envelope:1.0.4">`:                         true,
		`<Emessage xmlns="x">`:                         false,
		`<!DOCTYPE Bundle [<!ENTITY a "b">]><Bundle/>`: false,
		`<!-- not closed <Bundle/>`:                    false,
		"":                                             false,
	} {
		if got := isFHIR([]byte(in)); got != want {
			t.Errorf("isFHIR(%.50q) = %v, want %v", in, got, want)
		}
	}
	// A start tag of a million attributes is not read to find its name.
	var b strings.Builder
	b.WriteString(`<Bundle xmlns="http://hl7.org/fhir"`)
	for range 1_000_000 {
		b.WriteString(` a="1"`)
	}
	data := []byte(b.String())
	allocs := testing.AllocsPerRun(5, func() { isFHIR(data) })
	if allocs > 0 || !isFHIR(data) {
		t.Errorf("a million attributes: %v allocations", allocs)
	}
}
