package medcom_test

import (
	"testing"

	"github.com/samhub/samhub/adapters/medcom"
	"github.com/samhub/samhub/adapters/medcom/xmlsafe"
	"github.com/samhub/samhub/internal/hubtest"
)

// BenchmarkCheckRefused1MB measures the refusal of each hostile input of
// 1 MB as the drop folder examines it (issue 19's target: at most 50 ms).
func BenchmarkCheckRefused1MB(b *testing.B) {
	for _, kind := range hubtest.MedComBombs {
		data, err := hubtest.MedComBomb(kind, 1_000_000)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(kind, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if medcom.Check(data, xmlsafe.DefaultLimits()).Valid() {
					b.Fatal("accepted")
				}
			}
		})
	}
}
