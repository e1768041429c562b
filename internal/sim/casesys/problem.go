package casesyssim

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
)

// ProblemTypePrefix starts every problem "type" URI; the last segment is
// the machine code, also given as the "code" member.
const ProblemTypePrefix = "urn:casesys:problem:"

// Problem is an RFC 9457 problem detail. It names fields, never their values.
type Problem struct {
	Type          string     `json:"type"`
	Title         string     `json:"title"`
	Status        int        `json:"status"`
	Detail        string     `json:"detail,omitempty"`
	Code          string     `json:"code"`
	CorrelationID string     `json:"correlationId"`
	Errors        []fieldErr `json:"errors,omitempty"`
	ExistingID    string     `json:"existingId,omitempty"`
}

type fieldErr struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func problem(status int, code, title, detail string, fields ...fieldErr) reply {
	cid := make([]byte, 8)
	rand.Read(cid)
	p := Problem{Type: ProblemTypePrefix + code, Title: title, Status: status, Detail: detail, Code: code, CorrelationID: hex.EncodeToString(cid), Errors: fields}
	b, _ := json.Marshal(p)
	return reply{status: status, contentType: "application/problem+json", body: b}
}

func jsonReply(status int, v any) reply {
	b, err := json.Marshal(v)
	if err != nil {
		return problem(http.StatusInternalServerError, "encoding-failed", "Answer could not be encoded", "")
	}
	return reply{status: status, contentType: "application/json", body: b}
}

func failureCode(status int) string {
	switch status {
	case http.StatusTooManyRequests:
		return "rate-limited"
	case http.StatusServiceUnavailable:
		return "maintenance"
	case http.StatusBadRequest:
		return "bad-request"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusUnprocessableEntity:
		return "validation-failed"
	default:
		return "server-error"
	}
}
