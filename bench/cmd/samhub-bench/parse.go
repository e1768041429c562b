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

// parseRounds alternates the two measurements, and each keeps its fastest
// round: on a shared machine the two halves of one pair can run at
// different speeds (seen: 80 % in one run, 83–84 % in others), and a
// slowdown only ever adds time, so the fastest round is the code's cost.
const parseRounds = 5

func measureParse(data []byte) parseSpeed {
	lim := xmlsafe.DefaultLimits()
	full := func(b *testing.B) {
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
	}
	bare := func(b *testing.B) {
		for b.Loop() {
			if err := etree.NewDocument().ReadFromBytes(data); err != nil {
				b.Fatal(err)
			}
		}
	}
	var fullNs, bareNs int64
	for range parseRounds {
		if ns := testing.Benchmark(full).NsPerOp(); fullNs == 0 || ns < fullNs {
			fullNs = ns
		}
		if ns := testing.Benchmark(bare).NsPerOp(); bareNs == 0 || ns < bareNs {
			bareNs = ns
		}
	}
	p := parseSpeed{ParseValidateUS: float64(fullNs) / 1000, EtreeReadUS: float64(bareNs) / 1000}
	if fullNs > 0 {
		p.Ratio = float64(bareNs) / float64(fullNs)
	}
	return p
}
