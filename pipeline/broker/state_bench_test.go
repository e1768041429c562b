package broker_test

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkStateStoreScan reads 3,000 keys under a prefix, as the MedCom
// acknowledgement check reads the letters awaiting an answer.
func BenchmarkStateStoreScan(b *testing.B) {
	_, st, _ := twoStateStores(b)
	ctx := context.Background()
	val := make([]byte, 258) // an outbox entry's size
	const keys = 3000
	for i := range keys {
		if _, err := st.Put(ctx, fmt.Sprintf("pending.%05d", i), val); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		got, err := st.Scan(ctx, "pending.")
		if err != nil || len(got) != keys {
			b.Fatalf("scan: %d entries, %v", len(got), err)
		}
	}
}
