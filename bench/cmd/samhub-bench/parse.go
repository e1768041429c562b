package main

import (
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/samhub/samhub/adapters/medcom/oioxml"
	"github.com/samhub/samhub/adapters/medcom/xmlsafe"
)

// parseSpeed compares what the MedCom adapter and the pipeline do with a
// 10 KB letter (safe parse, XDIS91 checks, mapping to a letter, letter
// validation) with a bare etree read of the same bytes, in this run.
type parseSpeed struct {
	ParseValidateUS float64 `json:"parse_validate_us"`
	EtreeReadUS     float64 `json:"etree_read_us"`
	Ratio           float64 `json:"ratio"` // etree time ÷ parse+validate time: the share of bare read speed reached
}

func measureParse(data []byte) parseSpeed {
	lim := xmlsafe.DefaultLimits()
	full := testing.Benchmark(func(b *testing.B) {
		for b.Loop() {
			m, err := oioxml.Parse(data, lim)
			if err != nil {
				b.Fatal(err)
			}
			for _, l := range m.ToLetters(oioxml.Input{Source: "medcom", Data: data, Received: time.Now()}) {
				if err := l.Validate(); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	bare := testing.Benchmark(func(b *testing.B) {
		for b.Loop() {
			if err := etree.NewDocument().ReadFromBytes(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	p := parseSpeed{ParseValidateUS: float64(full.NsPerOp()) / 1000, EtreeReadUS: float64(bare.NsPerOp()) / 1000}
	if full.NsPerOp() > 0 {
		p.Ratio = float64(bare.NsPerOp()) / float64(full.NsPerOp())
	}
	return p
}
