package logging

import "testing"

func TestRedact(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain CPR", "2509479989", "[CPR]"},
		{"hyphenated CPR", "cpr 250947-9989 found", "cpr [CPR] found"},
		{"space separated CPR", "250947 9989", "[CPR]"},
		{"glued to letters", "patient2509479989x", "patient[CPR]x"},
		{"glued to underscore", "cpr_1509819996", "cpr_[CPR]"},
		{"in a URL path", "/cases/2512489996/letters", "/cases/[CPR]/letters"},
		{"two CPRs", "2509479989 and 1509819996", "[CPR] and [CPR]"},
		{"X-eCPR", "replacement 0703921VJ4.", "replacement [CPR]."},
		{"X-eCPR hyphenated", "070392-1VJ4", "[CPR]"},
		{"D-eCPR lower case", "1206550vk9", "[CPR]"},
		{"29 February", "2902001234", "[CPR]"},
		{"eleven digits", "25094799891", "25094799891"},
		{"nine digits", "250947998", "250947998"},
		{"part of a longer run", "12509479989", "12509479989"},
		{"impossible month", "2513479989", "2513479989"},
		{"day zero", "0009479989", "0009479989"},
		{"31 April", "3104479989", "3104479989"},
		{"30 February", "3002479989", "3002479989"},
		{"unknown CPR", "0000000000", "0000000000"},
		{"SOR id", "265161000016000", "265161000016000"},
		{"GLN", "5790000123456", "5790000123456"},
		{"phone number", "+45 12 34 56 78", "+45 12 34 56 78"},
		{"six digits and five", "250947-99891", "250947-99891"},
		{"eCPR followed by more", "0703921VJ4X", "0703921VJ4X"},
		{"timestamp", "2026-03-15T12:00:00Z", "2026-03-15T12:00:00Z"},
		{"uuid", "c9c2b2f6-0807-11ed-861d-0242ac120002", "c9c2b2f6-0807-11ed-861d-0242ac120002"},
		{"empty", "", ""},
		{"non-ASCII around", "Brita Test Berggren, CPR: 1509819996 – Æblevej", "Brita Test Berggren, CPR: [CPR] – Æblevej"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Redact(tt.in); got != tt.want {
				t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if got, want := ContainsCPR(tt.in), tt.in != tt.want; got != want {
				t.Errorf("ContainsCPR(%q) = %v, want %v", tt.in, got, want)
			}
		})
	}
}

func TestRedactLeavesCleanStringUntouched(t *testing.T) {
	// Redact must not allocate a copy when there is nothing to remove: it is
	// on the path of every log record.
	s := "delivered letter 3f2a to casesystem-1 after 3 attempts"
	if n := testing.AllocsPerRun(100, func() { _ = Redact(s) }); n != 0 {
		t.Errorf("Redact of clean text allocated %v times, want 0", n)
	}
}

func FuzzRedact(f *testing.F) {
	for _, s := range []string{"2509479989", "250947-9989", "0703921VJ4", "070392-1VJ4", "x1509819996y", "0000000000", "250947 99"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := Redact(s)
		if ContainsCPR(out) {
			t.Errorf("Redact(%q) = %q still contains a CPR", s, out)
		}
		if !ContainsCPR(s) && out != s {
			t.Errorf("Redact changed %q to %q though ContainsCPR is false", s, out)
		}
	})
}
