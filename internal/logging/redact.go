package logging

import "strings"

// The CPR scan is written by hand rather than as a regexp: RE2 has no
// look-around, so `\b\d{6}-?\d{4}\b` would miss a CPR glued to a letter or an
// underscore ("cpr_2509479989") and cannot check the date. One pass over the
// bytes with no allocation when nothing is found also keeps logging cheap.

// cprMark replaces a CPR or replacement CPR in redacted text.
const cprMark = "[CPR]"

// Redact returns s with every run that could be a CPR number replaced by
// "[CPR]": ten digits, or six and four digits separated by a hyphen or a
// space, whose first six digits are a plausible DDMMYY date; and replacement
// CPRs (X-eCPR/D-eCPR) such as 0703921VJ4: a DDMMYY date, a digit, two letters
// and a digit. Digits that are part of a longer digit run are left alone.
// Modulus 11 is deliberately not checked: valid CPRs need not pass it.
func Redact(s string) string {
	start, end := nextCPR(s, 0)
	if start < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	last := 0
	for start >= 0 {
		b.WriteString(s[last:start])
		b.WriteString(cprMark)
		last = end
		start, end = nextCPR(s, end)
	}
	b.WriteString(s[last:])
	return b.String()
}

// ContainsCPR reports whether s holds anything Redact would replace.
func ContainsCPR(s string) bool {
	start, _ := nextCPR(s, 0)
	return start >= 0
}

// nextCPR returns the byte range of the first CPR-like run in s at or after
// from, or -1, -1.
func nextCPR(s string, from int) (int, int) {
	i := from
	for i < len(s) {
		if !isDigit(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		if end := cprAt(s, i, j); end > 0 {
			return i, end
		}
		i = j
	}
	return -1, -1
}

// cprAt checks the maximal digit run s[i:j] and returns where the CPR that
// starts there ends, or 0 if none does.
func cprAt(s string, i, j int) int {
	run := j - i
	if run < 6 || run > 10 || !plausibleDate(s[i:i+6]) {
		return 0
	}
	switch run {
	case 10: // 2509479989
		return j
	case 7: // 0703921VJ4
		return replacementTail(s, j)
	case 6: // 250947-9989, 250947 9989, 070392-1VJ4
		if j >= len(s) || (s[j] != '-' && s[j] != ' ') {
			return 0
		}
		k := j + 1
		n := k
		for n < len(s) && isDigit(s[n]) {
			n++
		}
		switch n - k {
		case 4:
			return n
		case 1:
			return replacementTail(s, n)
		}
	}
	return 0
}

// replacementTail matches the "VJ4" of a replacement CPR starting at k and
// returns its end, or 0.
func replacementTail(s string, k int) int {
	if k+3 > len(s) || !isLetter(s[k]) || !isLetter(s[k+1]) || !isDigit(s[k+2]) {
		return 0
	}
	if k+3 < len(s) && (isLetter(s[k+3]) || isDigit(s[k+3])) {
		return 0
	}
	return k + 3
}

// daysIn is the longest day of each month in any year (February up to 29, as
// the OIOXML CPR schema allows; the century needs the seventh digit).
var daysIn = [13]int{0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}

// plausibleDate reports whether six ASCII digits read as DDMMYY.
func plausibleDate(d string) bool {
	day := int(d[0]-'0')*10 + int(d[1]-'0')
	month := int(d[2]-'0')*10 + int(d[3]-'0')
	return month >= 1 && month <= 12 && day >= 1 && day <= daysIn[month]
}

func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isLetter(c byte) bool { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') }
