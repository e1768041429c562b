package email

import (
	"io"
	"testing"
)

func BenchmarkParseMessage(b *testing.B) {
	raw := readFixture(b, "danish-attachment.eml")
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := ParseMessage("bench", raw, received, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWriteMessage(b *testing.B) {
	l := testLetter()
	o := outgoing{from: "samraad@kommune.example.dk", to: parentAddr, subject: "Nyt brev", messageID: MessageID(l.ID, parentAddr, "x@kommune.example.dk"), date: received, letter: l}
	for b.Loop() {
		if err := writeMessage(io.Discard, o); err != nil {
			b.Fatal(err)
		}
	}
}
