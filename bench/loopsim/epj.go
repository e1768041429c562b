package loopsim

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	epjsim "github.com/samhub/samhub/internal/sim/epj"
)

// EPJ answers the FHIR R4 calls the epj sink and source make: token,
// metadata, Patient/_search (every patient is known), conditional create of
// Communication (If-None-Exist on the letter identifier) and empty feeds.
type EPJ struct {
	URL     string
	Letters *Arrivals // by letter id
	Files   *Digests  // the attachments' data, decoded, by letter id
	srv     *http.Server
	mu      sync.Mutex
	ids     map[string]string // letter id -> Communication id
	seq     int
}

// StartEPJ listens on 127.0.0.1 at a random port.
func StartEPJ() (*EPJ, error) {
	e := &EPJ{Letters: newArrivals(), Files: newDigests(), ids: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth2/token", token)
	mux.HandleFunc("GET /metadata", func(w http.ResponseWriter, _ *http.Request) {
		writeFHIR(w, 200, `{"resourceType":"CapabilityStatement","status":"active","kind":"instance","fhirVersion":"4.0.1","format":["json"]}`)
	})
	mux.HandleFunc("POST /Patient/_search", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		writeFHIR(w, 200, `{"resourceType":"Bundle","type":"searchset","total":1,"entry":[{"resource":{"resourceType":"Patient","id":"pat-1"}}]}`)
	})
	mux.HandleFunc("POST /Communication", e.communication)
	mux.HandleFunc("GET /", func(w http.ResponseWriter, _ *http.Request) {
		writeFHIR(w, 200, `{"resourceType":"Bundle","type":"searchset","total":0,"entry":[]}`)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	e.URL = "http://" + ln.Addr().String()
	e.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = e.srv.Serve(ln) }()
	return e, nil
}

// Close stops the server.
func (e *EPJ) Close() error { return e.srv.Close() }

func writeFHIR(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/fhir+json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func (e *EPJ) communication(w http.ResponseWriter, r *http.Request) {
	sums, err := epjsim.DataDigests(r.Body)
	if err != nil {
		writeFHIR(w, 400, `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"structure"}]}`)
		return
	}
	q, err := url.ParseQuery(r.Header.Get("If-None-Exist"))
	letterID := ""
	if err == nil {
		letterID, _ = strings.CutPrefix(q.Get("identifier"), "urn:samhub:letter|")
	}
	if letterID == "" {
		writeFHIR(w, 400, `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"required","expression":["Communication.identifier"]}]}`)
		return
	}
	e.mu.Lock()
	id, existed := e.ids[letterID]
	if !existed {
		e.seq++
		id = fmt.Sprint(e.seq)
		e.ids[letterID] = id
	}
	e.mu.Unlock()
	e.Files.Set(letterID, sums)
	e.Letters.Mark(letterID)
	w.Header().Set("Location", e.URL+"/Communication/"+id+"/_history/1")
	status := 201
	if existed {
		status = 200
	}
	writeFHIR(w, status, `{"resourceType":"Communication","id":"`+id+`","status":"completed"}`)
}
