package fhirmsg

import (
	"errors"
	"strings"
)

// Issues are the OperationOutcome issues of a negative acknowledgement for
// err (Parse's or Validate's): one per problem, at most max, each with its
// text (an element path and what was expected, never a value) and, where
// the problem answers to one, its MedCom issue code.
func Issues(err error, max int) []Issue {
	var out []Issue
	var walk func(error)
	walk = func(e error) {
		if len(out) == max {
			return
		}
		var fe *FieldError
		switch {
		case joined(e) != nil:
			for _, x := range joined(e) {
				walk(x)
			}
		case errors.As(e, &fe):
			is := Issue{Severity: "error", Code: "invalid", Details: fe.Code, Text: fe.Error()}
			if fe.Code == IssueUnsupportedType {
				is.Code = "not-supported"
			}
			out = append(out, is)
		default:
			for _, l := range strings.Split(e.Error(), "\n") {
				if l = strings.TrimSpace(l); l != "" && len(out) < max {
					out = append(out, Issue{Severity: "error", Code: "invalid", Text: l})
				}
			}
		}
	}
	if err != nil {
		walk(err)
	}
	return out
}

func joined(e error) []error {
	if j, ok := e.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return nil
}
