package fhirmsg

import (
	"errors"
	"slices"
	"strings"
	"time"
)

// Validate checks a message against the MedCom rules that matter to a
// receiver (domain/medcom.md §2.8, §2.9, §4). The result is nil or an
// errors.Join of *FieldError, each naming the FHIR element path and what was
// expected, never the value found.
func Validate(m *Message) error {
	if m == nil {
		return errors.New("message: nil")
	}
	errs := append([]error(nil), m.findings...)
	add := func(path, format string, args ...any) { errs = append(errs, ferr(path, format, args...)) }
	p := m.paths
	p.defaults()
	parsed := m.paths.header != ""

	if !parsed {
		if m.BundleID == "" {
			add("Bundle.id", "must be present")
		}
		if m.HeaderID == "" {
			add(p.header+".id", "must be present")
		}
		checkOrg(add, p.sender, m.Sender)
		checkOrg(add, p.receiver, m.Receiver)
	}
	switch m.Event {
	case EventCareCommunication:
		validateCareCommunication(m, p, parsed, add)
	case EventAcknowledgement:
		validateAck(m, p, add)
	case "":
		if !parsed {
			add(p.header+".eventCoding.code", "must be present")
		}
	default:
		errs = append(errs, ferr(p.header+".eventCoding.code", "must be %s or %s", EventCareCommunication, EventAcknowledgement).coded(IssueUnsupportedType))
	}
	return errors.Join(errs...)
}

func checkOrg(add func(string, string, ...any), path string, o Organization) {
	if o.SOR == "" {
		add(path, "must be an Organization with a SOR id (system %s)", sysSOR)
	}
	if o.GLN == "" {
		add(path, "must be an Organization with a GLN (system %s)", sysGLN)
	}
}

func validateCareCommunication(m *Message, p paths, parsed bool, add func(string, string, ...any)) {
	if !parsed {
		if m.ThreadID == "" {
			add(p.thread, "must be present (the thread id, urn:uuid:…)")
		}
		if m.Patient == nil {
			add("Bundle.entry", "must hold exactly one Patient (none found)")
		}
	}
	for _, c := range codeProblems(m.Category, m.Topic, m.Priority) {
		path := map[string]string{"category": p.category, "topic": p.topic, "priority": p.priority}[c.field]
		add(path, "%s", c.msg)
	}
	if pat := m.Patient; pat != nil {
		// Both are checked when both are given (MedCom's receive test CPR-1
		// sends a CPR number and an X-eCPR): each is a key to the child.
		if pat.CPR != "" {
			if msg := checkCPR(pat.CPR); msg != "" {
				add(p.patientID, "%s", msg)
			}
		}
		if pat.ReplacementID != "" {
			if msg := checkReplacement(pat.ReplacementSystem, pat.ReplacementID); msg != "" {
				add(p.replacementID, "%s", msg)
			}
		}
		if pat.CPR == "" && pat.ReplacementID == "" && !parsed { // Parse reported it already
			add(p.patientID, "must hold a CPR or replacement CPR")
		}
	}
}

func validateAck(m *Message, p paths, add func(string, string, ...any)) {
	r := m.Response
	if r == nil {
		if m.paths.header == "" {
			add(p.header+".response", "must be present in an acknowledgement")
		}
		return
	}
	switch r.Code {
	case AckOK, AckTransientError, AckFatalError:
	default:
		add(p.header+".response.code", "must be ok, transient-error or fatal-error")
	}
	if r.Identifier == "" {
		add(p.header+".response.identifier", "must be the acknowledged MessageHeader.id")
	}
	if r.Code != AckOK && len(r.Issues) == 0 {
		add(p.header+".response.details", "must reference an OperationOutcome when the code is not ok")
	}
}

// checkCPR wants 10 digits whose first six are a real date once the century
// is taken from the 7th digit (domain/medcom.md §4). Modulus 11 is not
// checked: CPR numbers without it have been issued since 2007, and MedCom's
// own test persons fail it.
func checkCPR(v string) string {
	if len(v) != 10 || !allDigits(v) {
		return "must be 10 digits DDMMYYSSSS"
	}
	dd, mm, yy := atoi2(v[0:2]), atoi2(v[2:4]), atoi2(v[4:6])
	d7 := int(v[6] - '0')
	var century int
	switch {
	case d7 <= 3:
		century = 1900
	case d7 == 4 || d7 == 9:
		if yy <= 36 {
			century = 2000
		} else {
			century = 1900
		}
	default: // 5–8
		switch {
		case yy <= 57:
			century = 2000
		default:
			century = 1800
		}
	}
	if !realDate(century+yy, mm, dd) {
		return "must start with a real birth date DDMMYY"
	}
	return ""
}

// checkReplacement checks a replacement CPR of the given identifier system.
// X-eCPR and D-eCPR (and, for callers that name no system, either): 10
// letters and digits starting with a birth day and month, with at least one
// letter so it cannot be taken for a CPR number. DK-core's invariants for
// both are stricter (the 7th character and where the letters sit differ by
// issuer); a receiver does not need them to know the child, and refusing a
// child's letter over them would help no one. Other systems of the eCPR arc
// (MedCom core 2.x's E-CPR; the CPR office recommends raising the birth day
// by 60, all digits) need 1 to 10 letters and digits, the profiles' limit.
func checkReplacement(system, v string) string {
	letters := 0
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c >= '0' && c <= '9':
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
			letters++
		default:
			return "must be a replacement CPR of letters A-Z and digits only"
		}
	}
	switch {
	case system != "" && replacementRank(system) == 0:
		return "must be a CPR number (" + sysCPR + ") or a replacement CPR of the eCPR systems (" + sysECPR + "…)"
	case system != "" && system != sysXeCPR && !dECPRSystems[system]:
		if len(v) > 10 {
			return "must be a replacement CPR of 1 to 10 characters"
		}
		return ""
	}
	if len(v) != 10 {
		return "must be a replacement CPR of 10 characters"
	}
	if letters == 0 {
		return "must contain a letter (a replacement CPR, not a CPR number)"
	}
	if !allDigits(v[:4]) || !realDate(2000, atoi2(v[2:4]), atoi2(v[0:2])) {
		return "must start with a day and month DDMM"
	}
	return ""
}

func atoi2(s string) int { return int(s[0]-'0')*10 + int(s[1]-'0') }

func realDate(y, m, d int) bool {
	if m < 1 || m > 12 || d < 1 {
		return false
	}
	t := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
	return t.Day() == d && int(t.Month()) == m
}

type codeProblem struct{ field, msg string }

// codeProblems checks category, topic and priority (invariants
// careCommunication-5 and -6 and the category code list).
func codeProblems(category, topic, priority string) []codeProblem {
	var out []codeProblem
	switch {
	case category == "":
		out = append(out, codeProblem{"category", "must be present: one code from " + sysCat})
	case !slices.Contains(Categories, category):
		out = append(out, codeProblem{"category", "must be a code from MedCom's category list (" + sysCat + ")"})
	}
	if category == "other" && strings.TrimSpace(topic) == "" {
		out = append(out, codeProblem{"topic", "must be present when the category is other"})
	}
	if priority != "" {
		if category != "regarding-referral" {
			out = append(out, codeProblem{"priority", "is only allowed when the category is regarding-referral"})
		} else if priority != "routine" && priority != "asap" {
			out = append(out, codeProblem{"priority", "must be routine or asap"})
		}
	}
	return out
}
