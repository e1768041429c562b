package letter_test

import (
	"os"
	"testing"
	"time"

	"github.com/samhub/samhub/adapters/medcom/oioxml"
	"github.com/samhub/samhub/adapters/medcom/xmlsafe"
	"github.com/samhub/samhub/pipeline/letter"
)

// tenK is the ~10 KB XDIS91 test letter as the MedCom adapter hands it to
// the pipeline.
func tenK(b *testing.B) *letter.Letter {
	data, err := os.ReadFile("../../testdata/medcom/samhub/letter-10k.xml")
	if err != nil {
		b.Fatal(err)
	}
	m, err := oioxml.Parse(data, xmlsafe.DefaultLimits())
	if err != nil {
		b.Fatal(err)
	}
	ls := m.ToLetters(oioxml.Input{Source: "medcom", Data: data, Filename: "letter-10k.xml", Received: time.Now()})
	if len(ls) != 1 {
		b.Fatalf("%d letters", len(ls))
	}
	ls[0].Original.SHA256 = letter.Digest(data)
	return ls[0]
}

// Validate runs once per letter at ingest.
func BenchmarkValidate(b *testing.B) {
	l := tenK(b)
	b.ReportAllocs()
	for b.Loop() {
		if err := l.Validate(); err != nil {
			b.Fatal(err)
		}
	}
}

// Marshal runs once per letter at ingest; Unmarshal once per destination.
func BenchmarkMarshal(b *testing.B) {
	l := tenK(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := letter.Marshal(l); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnmarshal(b *testing.B) {
	raw, err := letter.Marshal(tenK(b))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := letter.Unmarshal(raw); err != nil {
			b.Fatal(err)
		}
	}
}
