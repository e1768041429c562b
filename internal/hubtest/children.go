package hubtest

import (
	"bytes"
	"fmt"
	"strings"
)

// Child is a fictitious child of the test letters (the domain brief's test
// persons): never a real person.
type Child struct{ CPR, Surname, Given string }

// Children are the fictitious children the audit tests refer to the
// council; the first is the one testdata/medcom/samhub/letter-utf8.xml
// names.
var Children = []Child{{"2509479989", "Elmer", "Bruno Test"}, {"1509819996", "Berggren", "Brita Test"}, {"2512489996", "Berggren", "Nancy Ann Test"}}

// ReplacementCPR is a replacement CPR number (X-eCPR) a coordinator may
// type into a reason.
const ReplacementCPR = "0703921VJ4"

// LetterText is a line of the fixture letter's text.
const LetterText = "Drengen går i 3. klasse"

// TypedCPRs are the ways a coordinator may type a CPR number into a
// reason: each must be kept out of the audit log.
var TypedCPRs = []string{"2509479989", "250947-9989", "250947 9989", ReplacementCPR}

// ChildLetter is the fixture referral for child c as letter n of a thread
// of its own (letter id 5790000000005#LTR<n>, see LetterID).
func ChildLetter(c Child, n int) ([]byte, error) {
	data, err := fixture("testdata/medcom/samhub/letter-utf8.xml")
	if err != nil {
		return nil, err
	}
	d := bytes.Replace(data, []byte("<CivilRegistrationNumber>2509479989<"), []byte("<CivilRegistrationNumber>"+c.CPR+"<"), 1)
	d = bytes.Replace(d, []byte("<PersonSurnameName>Elmer<"), []byte("<PersonSurnameName>"+c.Surname+"<"), 1)
	d = bytes.Replace(d, []byte("<PersonGivenName>Bruno Test<"), []byte("<PersonGivenName>"+c.Given+"<"), 1)
	d = bytes.Replace(d, []byte("LTR00000000001"), []byte(fmt.Sprintf("LTR%011d", n)), 1)
	d = bytes.Replace(d, []byte("ENV00000000001"), []byte(fmt.Sprintf("ENV%011d", n)), 1)
	return bytes.Replace(d, []byte("0f6c1e2d3a4b5c6d7e8f90a1b2c3d4e5"), []byte(fmt.Sprintf("%032x", n)), 1), nil
}

// LetterID is the id of ChildLetter's letter n.
func LetterID(n int) string { return fmt.Sprintf("5790000000005#LTR%011d", n) }

// PersonalData reports what of the test children's data s holds: a CPR
// number however written, a surname, a replacement CPR, the letter's text.
// (Known values, not a pattern: a hex token may hold ten digits.)
func PersonalData(s string) []string {
	var found []string
	for _, c := range Children {
		for _, v := range []string{c.CPR, c.CPR[:6] + "-" + c.CPR[6:], c.CPR[:6] + " " + c.CPR[6:], c.Surname} {
			if strings.Contains(s, v) {
				found = append(found, v)
			}
		}
	}
	if strings.Contains(strings.ToUpper(s), ReplacementCPR) {
		found = append(found, ReplacementCPR)
	}
	if strings.Contains(s, LetterText) {
		found = append(found, LetterText)
	}
	return found
}

// Glob matches s against a pattern whose * stands for any text (an audit
// record's target with an id the hub makes).
func Glob(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for i, p := range parts[1:] {
		if i == len(parts)-2 {
			return strings.HasSuffix(s, p)
		}
		j := strings.Index(s, p)
		if j < 0 {
			return false
		}
		s = s[j+len(p):]
	}
	return s == ""
}
