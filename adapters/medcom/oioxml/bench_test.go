package oioxml

import (
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/samhub/samhub/adapters/medcom/xmlsafe"
)

// BenchmarkParseValidate10K is what the hub does with a ~10 KB XDIS91 letter
// (safe parse, XDIS91 checks, mapping, letter validation); issue 10 wants it
// at ≥ 80 % of the speed of BenchmarkEtreeRead10K (a bare etree read of the
// same bytes). Run both in one go:
//
//	go test -run '^$' -bench '10K$' -benchmem ./adapters/medcom/oioxml/
func BenchmarkParseValidate10K(b *testing.B) {
	data := read(b, "samhub/letter-10k.xml")
	lim := xmlsafe.DefaultLimits()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		m, err := Parse(data, lim)
		if err != nil {
			b.Fatal(err)
		}
		for _, l := range m.ToLetters(Input{Source: "medcom", Data: data, Received: time.Now()}) {
			if err := l.Validate(); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkEtreeRead10K(b *testing.B) {
	data := read(b, "samhub/letter-10k.xml")
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if err := etree.NewDocument().ReadFromBytes(data); err != nil {
			b.Fatal(err)
		}
	}
}
