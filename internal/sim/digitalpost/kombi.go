package digitalpostsim

import (
	"crypto/rand"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"
)

// Refusal codes (FejlKode) this simulator answers with. The real service's
// codes are not in the public sources read for it; see the package doc.
const (
	InvalidRequest   = "UGYLDIG_FORESPOERGSEL"        // 400: headers or kombi_request not as required
	RecipientExempt  = "MODTAGER_FRITAGET"            // 400: Digital Post only, to a citizen exempt from it
	DuplicateMessage = "MEDDELELSE_ALLEREDE_MODTAGET" // 409: this messageUUID is stored already
	UUIDConflict     = "MEDDELELSE_UUID_KONFLIKT"     // 409: this messageUUID is stored for another message
	Unavailable      = "SERVICE_UTILGAENGELIG"        // 5xx: the simulated outage
	NotAuthorised    = "ADGANG_NAEGTET"               // 401: no valid token for the service
)

// handleKombi takes one kombi_request.
func (s *Server) handleKombi(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	delay := s.faults.delay
	s.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	if !s.authorised(r) {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		refuse(w, http.StatusUnauthorized, NotAuthorised, "missing, unknown or expired token for "+EntityID)
		return
	}
	s.mu.Lock()
	f := &s.faults
	var fail, refuseNow bool
	status, after, code, refuseStatus := f.failStatus, f.retryAfter, f.refuseCode, f.refuseHTTP
	if f.failCount > 0 {
		f.failCount--
		fail = true
	} else if f.refuseCount > 0 {
		f.refuseCount--
		refuseNow = true
	}
	s.mu.Unlock()
	if fail {
		if after > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int((after+time.Second-1)/time.Second)))
		}
		refuse(w, status, Unavailable, "simulated failure")
		return
	}
	if refuseNow {
		refuse(w, refuseStatus, code, "simulated refusal")
		return
	}

	// The transaction headers come before the body is read.
	tid := r.Header.Get("X-TransaktionsId")
	if !uuidPattern.MatchString(tid) {
		refuse(w, http.StatusBadRequest, InvalidRequest, "X-TransaktionsId: a UUID is required")
		return
	}
	if _, err := time.Parse(time.RFC3339, r.Header.Get("X-TransaktionsTid")); err != nil {
		refuse(w, http.StatusBadRequest, InvalidRequest, "X-TransaktionsTid: a date-time such as 2026-03-01T10:00:00Z is required")
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/xml" {
		refuse(w, http.StatusUnsupportedMediaType, InvalidRequest, "Content-Type: must be application/xml")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			refuse(w, http.StatusRequestEntityTooLarge, InvalidRequest, fmt.Sprintf("the request exceeds %d bytes", s.cfg.MaxBytes))
		}
		return
	}
	rq, inv := parseKombi(body)
	if inv != nil {
		refuse(w, http.StatusBadRequest, InvalidRequest, inv.Error())
		return
	}
	w.Header().Set(hdrMessageUUID, rq.msg.UUID)
	status, code, text := s.take(rq, tid)
	if status != http.StatusOK {
		refuse(w, status, code, text)
		return
	}
	s.mu.Lock()
	m := *s.st.Messages[rq.msg.UUID]
	s.mu.Unlock()
	answer(w, m.TransmissionID, m.UUID)
}

// take stores the request's message, or says why not.
func (s *Server) take(rq *request, tid string) (int, string, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.counts[rq.msg.UUID]
	if c == nil {
		c = &Count{}
		s.counts[rq.msg.UUID] = c
	}
	c.Requests++
	if old, ok := s.st.Messages[rq.msg.UUID]; ok {
		if old.RecipientCPR != rq.msg.RecipientCPR || old.SenderCVR != rq.msg.SenderCVR || len(rq.docs) == 0 || len(old.MainDocument) == 0 ||
			old.MainDocument[0].SHA256 != digest(rq.docs[0][0].data) {
			c.Conflicts++
			return http.StatusConflict, UUIDConflict, "messageUUID is stored already for another message"
		}
		old.Repeats++
		if err := s.saveLocked(); err != nil {
			return http.StatusInternalServerError, Unavailable, "the simulator could not save"
		}
		if s.cfg.AcceptRepeats {
			return http.StatusOK, "", ""
		}
		return http.StatusConflict, DuplicateMessage, "messageUUID is received already"
	}
	channel := "digitalpost"
	if s.exempt[rq.msg.RecipientCPR] {
		if rq.choice != ChoiceAutomatic || rq.print == nil {
			return http.StatusBadRequest, RecipientExempt, "the recipient is exempt from Digital Post"
		}
		channel = "print"
	}
	m := rq.msg
	m.TransactionID, m.Channel, m.ReceivedAt, m.TransmissionID = tid, channel, time.Now().UTC(), newUUID()
	for i, files := range rq.docs {
		var doc []File
		for _, f := range files {
			sum, err := s.putFile(f.data)
			if err != nil {
				return http.StatusInternalServerError, Unavailable, "the simulator could not save"
			}
			f.SHA256 = sum
			doc = append(doc, f.File)
		}
		if i == 0 {
			m.MainDocument = doc
		} else {
			m.Additional = append(m.Additional, doc)
		}
	}
	if rq.print != nil {
		sum, err := s.putFile(rq.printPDF)
		if err != nil {
			return http.StatusInternalServerError, Unavailable, "the simulator could not save"
		}
		rq.print.SHA256 = sum
		m.Print = rq.print
	}
	s.st.Messages[m.UUID] = m
	s.st.Order = append(s.st.Order, m.UUID)
	if err := s.saveLocked(); err != nil {
		delete(s.st.Messages, m.UUID)
		s.st.Order = s.st.Order[:len(s.st.Order)-1]
		return http.StatusInternalServerError, Unavailable, "the simulator could not save"
	}
	c.Stored = 1
	s.log.Info("digital post message stored", "message_uuid", m.UUID, "channel", channel)
	return http.StatusOK, "", ""
}

// kombiResponse is the service's answer.
type kombiResponse struct {
	XMLName        xml.Name `xml:"kombi_response"`
	Result         bool     `xml:"Result"`
	TransmissionID string   `xml:"TransmissionID,omitempty"`
	Svar           svar     `xml:"HovedoplysningerSvarREST"`
}

type svar struct {
	Reaktion reaktion `xml:"SvarReaktion"`
}

type reaktion struct {
	Advis *advis `xml:"Advis,omitempty"`
	Fejl  *fejl  `xml:"Fejl,omitempty"`
}

type advis struct {
	AdvisID    string `xml:"AdvisId"`
	AdvisTekst string `xml:"AdvisTekst"`
}

type fejl struct {
	FejlKode  string `xml:"FejlKode"`
	FejlTekst string `xml:"FejlTekst"`
}

func answer(w http.ResponseWriter, transmission, uuid string) {
	writeXML(w, http.StatusOK, kombiResponse{Result: true, TransmissionID: transmission, Svar: svar{reaktion{Advis: &advis{AdvisID: uuid, AdvisTekst: "received"}}}})
}

// refuse answers a refusal: Result false with the code and a text (which
// never echoes the request's values).
func refuse(w http.ResponseWriter, status int, code, text string) {
	writeXML(w, status, kombiResponse{Result: false, Svar: svar{reaktion{Fejl: &fejl{FejlKode: code, FejlTekst: text}}}})
}

func writeXML(w http.ResponseWriter, status int, v any) {
	b, _ := xml.Marshal(v)
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	w.WriteHeader(status)
	w.Write([]byte(xml.Header))
	w.Write(b)
}

func newUUID() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
