package fhirmsg

import (
	"testing"

	"github.com/samhub/samhub/adapters/medcom/xmlsafe"
)

// The K/L receive tests are ~20 KB CareCommunications (~10 KB without narrative).
func benchParse(b *testing.B, name string) {
	data := readFile(b, name)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		m, err := Parse(data, xmlsafe.DefaultLimits())
		if err != nil {
			b.Fatal(err)
		}
		if err := Validate(m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseValidateJSON(b *testing.B) {
	benchParse(b, "Bundle-R-Tek-K-dublicate-5de12884-eae7-4fd3-ba4a-d8b56be4baff.json")
}

func BenchmarkParseValidateXML(b *testing.B) {
	benchParse(b, "Bundle-R-Tek-L-dublicate-fa97e431-332f-4605-ad37-c259dc2b8637.xml")
}
