package digitalpostsim_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	digitalpostsim "github.com/samhub/samhub/internal/sim/digitalpost"
	"github.com/samhub/samhub/internal/testpki"
)

const (
	brita = "1509819996" // Brita Test Berggren, a custody holder
	nancy = "2512489996" // Nancy Ann Test Berggren
	cvr   = "29189846"
)

func start(t *testing.T, dir string, cfg digitalpostsim.Config) (*digitalpostsim.Server, string) {
	t.Helper()
	cfg.DataDir, cfg.ClientID, cfg.ClientSecret = dir, "samhub", "s3cret"
	s, err := digitalpostsim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	base, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, base
}

func tokenFor(t *testing.T, hc *http.Client, base, scope string) (string, int) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/oauth2/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}.Encode()))
	req.SetBasicAuth("samhub", "s3cret")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct {
		AccessToken string `json:"access_token"`
	}
	b, _ := io.ReadAll(resp.Body)
	_ = jsonUnmarshal(b, &v)
	return v.AccessToken, resp.StatusCode
}

// memo is a kombi_request as the adapter writes one.
type memo struct {
	choice, uuid, cpr, label, ctype, content, extra, header string
}

func (m memo) xml() string {
	if m.choice == "" {
		m.choice = "Digital Post"
	}
	if m.label == "" {
		m.label = "Brev fra kommunen"
	}
	if m.ctype == "" {
		m.ctype = "text/plain"
	}
	if m.content == "" {
		m.content = "Samrådet anbefaler et forløb hos PPR."
	}
	header := m.header
	if header == "" {
		header = fmt.Sprintf(`<memo:messageType>DIGITALPOST</memo:messageType><memo:messageUUID>%s</memo:messageUUID><memo:label>%s</memo:label>`+
			`<memo:mandatory>false</memo:mandatory><memo:legalNotification>false</memo:legalNotification>`+
			`<memo:Sender><memo:senderID>%s</memo:senderID><memo:idType>CVR</memo:idType><memo:label>Samrådet</memo:label></memo:Sender>`+
			`<memo:Recipient><memo:recipientID>%s</memo:recipientID><memo:idType>CPR</memo:idType></memo:Recipient>`, m.uuid, m.label, cvr, m.cpr)
	}
	return fmt.Sprintf(`<kombi_request><KombiValgKode>%s</KombiValgKode>`+
		`<memo:Message xmlns:memo="https://DigitalPost.dk/MeMo-1" memoVersion="1.1" memoSchVersion="1.1.0">`+
		`<memo:MessageHeader>%s</memo:MessageHeader>`+
		`<memo:MessageBody><memo:createdDateTime>2026-03-01T10:00:00Z</memo:createdDateTime>`+
		`<memo:MainDocument><memo:File><memo:encodingFormat>%s</memo:encodingFormat><memo:filename>brev.txt</memo:filename>`+
		`<memo:language>da</memo:language><memo:content>%s</memo:content></memo:File></memo:MainDocument></memo:MessageBody>`+
		`</memo:Message>%s</kombi_request>`, m.choice, header, m.ctype, base64.StdEncoding.EncodeToString([]byte(m.content)), m.extra)
}

type answer struct {
	Result         bool   `xml:"Result"`
	TransmissionID string `xml:"TransmissionID"`
	Code           string `xml:"HovedoplysningerSvarREST>SvarReaktion>Fejl>FejlKode"`
	Text           string `xml:"HovedoplysningerSvarREST>SvarReaktion>Fejl>FejlTekst"`
	Advis          string `xml:"HovedoplysningerSvarREST>SvarReaktion>Advis>AdvisTekst"`
}

func post(t *testing.T, hc *http.Client, base, tok, body string, hdr map[string]string) (int, answer) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+digitalpostsim.KombiPath, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/xml")
	req.Header.Set("X-TransaktionsId", "0b6e4f3c-9a3e-4c55-8d6e-7f1f1d0c2a11")
	req.Header.Set("X-TransaktionsTid", time.Now().UTC().Format(time.RFC3339))
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var a answer
	if err := xml.Unmarshal(b, &a); err != nil {
		t.Fatalf("answer is no kombi_response: %v: %s", err, b)
	}
	return resp.StatusCode, a
}

// A message is stored once under its UUID, survives a restart, and a
// repeat is counted and refused as received already (or accepted, when
// the simulator is told to); the same UUID for another citizen is a
// conflict.
func TestStoredOnceByUUIDAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	s, base := start(t, dir, digitalpostsim.Config{})
	hc := http.DefaultClient
	tok, _ := tokenFor(t, hc, base, digitalpostsim.EntityID)
	const id = "6f1c2b1e-3f7a-4c1d-9a55-0e8b7f3d2c10"
	st, a := post(t, hc, base, tok, memo{uuid: id, cpr: brita}.xml(), nil)
	if st != http.StatusOK || !a.Result || a.TransmissionID == "" || a.Advis != "received" {
		t.Fatalf("first message: %d %+v", st, a)
	}
	m, ok := s.Message(id)
	if !ok || m.RecipientCPR != brita || m.Channel != "digitalpost" || m.SenderCVR != cvr || s.Text(m) != "Samrådet anbefaler et forløb hos PPR." {
		t.Fatalf("stored message %+v (text %q)", m, s.Text(m))
	}
	s.Close()

	s, base = start(t, dir, digitalpostsim.Config{})
	st, a = post(t, hc, base, tok, memo{uuid: id, cpr: brita}.xml(), nil)
	if st != http.StatusUnauthorized {
		t.Fatalf("a token from before the restart: %d, want 401", st)
	}
	tok, _ = tokenFor(t, hc, base, digitalpostsim.EntityID)
	st, a = post(t, hc, base, tok, memo{uuid: id, cpr: brita}.xml(), nil)
	if st != http.StatusConflict || a.Result || a.Code != digitalpostsim.DuplicateMessage {
		t.Fatalf("a repeat: %d %+v, want 409 %s", st, a, digitalpostsim.DuplicateMessage)
	}
	st, a = post(t, hc, base, tok, memo{uuid: id, cpr: nancy}.xml(), nil)
	if st != http.StatusConflict || a.Code != digitalpostsim.UUIDConflict {
		t.Fatalf("the UUID for another citizen: %d %+v, want 409 %s", st, a, digitalpostsim.UUIDConflict)
	}
	if n := len(s.Messages()); n != 1 {
		t.Errorf("%d messages stored, want 1", n)
	}
	c := s.Counts()
	if got := c.Messages[id]; got.Stored != 1 || got.Repeats != 1 || got.Requests != 2 || got.Conflicts != 1 || len(c.Conflicts) != 1 {
		t.Errorf("counts %+v", c)
	}
	s.Close()

	s, base = start(t, dir, digitalpostsim.Config{AcceptRepeats: true})
	tok, _ = tokenFor(t, hc, base, digitalpostsim.EntityID)
	if st, a = post(t, hc, base, tok, memo{uuid: id, cpr: brita}.xml(), nil); st != http.StatusOK || !a.Result {
		t.Fatalf("a repeat with AcceptRepeats: %d %+v", st, a)
	}
	if m, _ := s.Message(id); m.Repeats != 2 || len(s.Messages()) != 1 {
		t.Errorf("after two repeats: %+v", m)
	}
}

// A citizen exempt from Digital Post: refused with Digital Post only;
// with Automatisk Valg and a printable PDF, printed.
func TestExemptCitizen(t *testing.T) {
	s, base := start(t, t.TempDir(), digitalpostsim.Config{Exempt: []string{nancy}})
	tok, _ := tokenFor(t, http.DefaultClient, base, digitalpostsim.EntityID)
	st, a := post(t, http.DefaultClient, base, tok, memo{uuid: "0d9b8a6e-1c2f-4e3a-8b7c-6d5e4f3a2b10", cpr: nancy}.xml(), nil)
	if st != http.StatusBadRequest || a.Code != digitalpostsim.RecipientExempt || strings.Contains(a.Text, nancy) {
		t.Fatalf("Digital Post to an exempt citizen: %d %+v", st, a)
	}
	pdf := "%PDF-1.4 anbefaling"
	print := fmt.Sprintf(`<fp:ForsendelseISamling xmlns:fp="urn:oio:fjernprint:1.0.0" xmlns:dkal="urn:oio:dkal:1.0.0"><fp:ForsendelseI>`+
		`<fp:AfsendelseIdentifikator>0d9b8a6e-1c2f-4e3a-8b7c-6d5e4f3a2b11</fp:AfsendelseIdentifikator><fp:ForsendelseTypeIdentifikator>1234</fp:ForsendelseTypeIdentifikator>`+
		`<fp:ForsendelseModtager><dkal:AfsendelseModtager><dkal:CPRnummerIdentifikator>%s</dkal:CPRnummerIdentifikator></dkal:AfsendelseModtager></fp:ForsendelseModtager>`+
		`<dkal:FilformatNavn>PDF</dkal:FilformatNavn><dkal:MeddelelseIndholdData>%s</dkal:MeddelelseIndholdData>`+
		`<fp:DokumentParametre><fp:TitelTekst>Brev fra kommunen</fp:TitelTekst></fp:DokumentParametre></fp:ForsendelseI></fp:ForsendelseISamling>`,
		nancy, base64.StdEncoding.EncodeToString([]byte(pdf)))
	auto := memo{choice: "Automatisk Valg", uuid: "0d9b8a6e-1c2f-4e3a-8b7c-6d5e4f3a2b11", cpr: nancy, ctype: "application/pdf", content: pdf, extra: print}
	if st, a = post(t, http.DefaultClient, base, tok, auto.xml(), nil); st != http.StatusOK || !a.Result {
		t.Fatalf("Automatisk Valg with a printable PDF: %d %+v", st, a)
	}
	if m, _ := s.Message(auto.uuid); m.Channel != "print" || m.Print == nil || m.Print.RecipientCPR != nancy {
		t.Errorf("printed message %+v", m)
	}
	auto.uuid, auto.extra, auto.ctype, auto.content = "0d9b8a6e-1c2f-4e3a-8b7c-6d5e4f3a2b12", "", "", ""
	if st, a = post(t, http.DefaultClient, base, tok, auto.xml(), nil); st != http.StatusBadRequest || a.Code != digitalpostsim.RecipientExempt {
		t.Errorf("Automatisk Valg with nothing to print: %d %+v", st, a)
	}
	s.SetExempt(nancy, false)
	if st, _ = post(t, http.DefaultClient, base, tok, memo{uuid: "0d9b8a6e-1c2f-4e3a-8b7c-6d5e4f3a2b13", cpr: nancy}.xml(), nil); st != http.StatusOK {
		t.Errorf("no longer exempt: %d", st)
	}
}

// What the service checks on the way in: the token's service, the
// transaction headers, the content type and MeMo's structure.
func TestChecks(t *testing.T) {
	s, base := start(t, t.TempDir(), digitalpostsim.Config{})
	hc := http.DefaultClient
	if _, st := tokenFor(t, hc, base, "http://entityid.kombit.dk/service/postforespoerg/1"); st != http.StatusBadRequest {
		t.Errorf("a token for another service: %d, want 400 invalid_scope", st)
	}
	tok, _ := tokenFor(t, hc, base, digitalpostsim.EntityID)
	ok := memo{uuid: "7e3c1d2a-5b6f-4a8e-9c0d-1e2f3a4b5c60", cpr: brita}
	defaultNS := strings.NewReplacer("memo:", "", "xmlns:memo=", "xmlns=").Replace(ok.xml())
	for _, tc := range []struct {
		name string
		body string
		hdr  map[string]string
		want int
		in   string
	}{
		{"no transaction id", ok.xml(), map[string]string{"X-TransaktionsId": ""}, 400, "X-TransaktionsId"},
		{"transaction id not a UUID", ok.xml(), map[string]string{"X-TransaktionsId": "42"}, 400, "X-TransaktionsId"},
		{"no transaction time", ok.xml(), map[string]string{"X-TransaktionsTid": ""}, 400, "X-TransaktionsTid"},
		{"JSON", ok.xml(), map[string]string{"Content-Type": "application/json"}, 415, "Content-Type"},
		{"no token", ok.xml(), map[string]string{"Authorization": ""}, 401, "token"},
		{"not XML", "{}", nil, 400, "XML"},
		{"default namespace", defaultNS, nil, 400, "prefix memo"},
		{"unknown choice", memo{choice: "Brevdue", uuid: ok.uuid, cpr: brita}.xml(), nil, 400, "KombiValgKode"},
		{"recipient not a CPR", memo{uuid: ok.uuid, cpr: "12345"}.xml(), nil, 400, "Recipient"},
		{"no UUID", memo{uuid: "x", cpr: brita}.xml(), nil, 400, "messageUUID"},
		{"label too long", memo{uuid: ok.uuid, cpr: brita, label: strings.Repeat("a", 257)}.xml(), nil, 400, "label"},
		{"a file type Digital Post refuses", memo{uuid: ok.uuid, cpr: brita, ctype: "application/x-msdownload"}.xml(), nil, 400, "encodingFormat"},
		{"PDF that is none", memo{uuid: ok.uuid, cpr: brita, ctype: "application/pdf"}.xml(), nil, 400, "no PDF"},
		{"header out of order", memo{uuid: ok.uuid, cpr: brita, header: `<memo:messageUUID>` + ok.uuid + `</memo:messageUUID><memo:messageType>DIGITALPOST</memo:messageType>`}.xml(), nil, 400, "order"},
		{"print without Automatisk Valg", memo{uuid: ok.uuid, cpr: brita, extra: `<ForsendelseISamling xmlns="urn:oio:fjernprint:1.0.0"/>`}.xml(), nil, 400, "Automatisk Valg"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, a := post(t, hc, base, tok, tc.body, tc.hdr)
			if st != tc.want || a.Result || !strings.Contains(a.Text, tc.in) {
				t.Errorf("%d %+v, want %d naming %q", st, a, tc.want, tc.in)
			}
			if strings.Contains(a.Text, brita) {
				t.Errorf("a refusal echoes the CPR number: %q", a.Text)
			}
		})
	}
	if n := len(s.Messages()); n != 0 {
		t.Errorf("%d messages stored from refused requests", n)
	}
	if st, _ := post(t, hc, base, tok, ok.xml(), nil); st != http.StatusOK {
		t.Errorf("the well-formed message: %d", st)
	}
	for _, r := range s.Requests() {
		if strings.Contains(r.Path, brita) {
			t.Errorf("a request path carries a CPR number: %s", r.Path)
		}
	}
}

// Faults: unavailable with Retry-After, refusing, slow, and a reply lost
// after the message was stored; over HTTP too.
func TestFaults(t *testing.T) {
	s, base := start(t, t.TempDir(), digitalpostsim.Config{})
	hc := &http.Client{Timeout: 5 * time.Second}
	tok, _ := tokenFor(t, hc, base, digitalpostsim.EntityID)
	simPost := func(path, body string) {
		resp, err := hc.Post(base+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("%s: %s", path, resp.Status)
		}
	}
	simPost("/_sim/fail", `{"count":1,"status":503,"retry_after":"2s"}`)
	req, _ := http.NewRequest(http.MethodPost, base+digitalpostsim.KombiPath, strings.NewReader(memo{uuid: "1e2d3c4b-5a69-4788-9766-554433221100", cpr: brita}.xml()))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "2" {
		t.Errorf("unavailable: %s Retry-After %q", resp.Status, resp.Header.Get("Retry-After"))
	}
	simPost("/_sim/refuse", `{"count":1,"code":"SOMETHING"}`)
	if st, a := post(t, hc, base, tok, memo{uuid: "1e2d3c4b-5a69-4788-9766-554433221100", cpr: brita}.xml(), nil); st != 400 || a.Code != "SOMETHING" {
		t.Errorf("refusing: %d %+v", st, a)
	}
	simPost("/_sim/drop", `{"count":1}`)
	req, _ = http.NewRequest(http.MethodPost, base+digitalpostsim.KombiPath, strings.NewReader(memo{uuid: "1e2d3c4b-5a69-4788-9766-554433221100", cpr: brita}.xml()))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/xml")
	req.Header.Set("X-TransaktionsId", "0b6e4f3c-9a3e-4c55-8d6e-7f1f1d0c2a12")
	req.Header.Set("X-TransaktionsTid", time.Now().UTC().Format(time.RFC3339))
	if resp, err := hc.Do(req); err == nil {
		resp.Body.Close()
		t.Errorf("a dropped reply arrived: %s", resp.Status)
	}
	if len(s.Messages()) != 1 {
		t.Errorf("the message whose reply was dropped is not stored")
	}
	simPost("/_sim/delay", `{"delay":"300ms"}`)
	began := time.Now()
	post(t, hc, base, tok, memo{uuid: "1e2d3c4b-5a69-4788-9766-554433221101", cpr: brita}.xml(), nil)
	if time.Since(began) < 300*time.Millisecond {
		t.Errorf("the slow service answered within %s", time.Since(began))
	}
	simPost("/_sim/exempt", `{"cpr":"`+nancy+`","exempt":true}`)
	if st, a := post(t, hc, base, tok, memo{uuid: "1e2d3c4b-5a69-4788-9766-554433221102", cpr: nancy}.xml(), nil); st != 400 || a.Code != digitalpostsim.RecipientExempt {
		t.Errorf("exempt over HTTP: %d %+v", st, a)
	}
	simPost("/_sim/reset", "")
	resp, err = hc.Get(base + "/_sim/messages/1e2d3c4b-5a69-4788-9766-554433221100")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "Samrådet anbefaler") {
		t.Errorf("GET /_sim/messages/{uuid}: %s", b)
	}
}

// With TLS the service wants the municipality's function certificate.
func TestClientCertificateRequired(t *testing.T) {
	ca, err := testpki.New("KOMBIT test CA")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.Issue("serviceplatformen", []string{"127.0.0.1"}, x509.ExtKeyUsageServerAuth)
	if err != nil {
		t.Fatal(err)
	}
	fn, err := ca.Issue("Samrådet FOCES", nil, x509.ExtKeyUsageClientAuth)
	if err != nil {
		t.Fatal(err)
	}
	_, base := start(t, t.TempDir(), digitalpostsim.Config{TLS: &tls.Config{Certificates: []tls.Certificate{srv.TLS}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool}})
	if !strings.HasPrefix(base, "https://") {
		t.Fatalf("base %s", base)
	}
	without := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool}}}
	if _, err := without.Post(base+"/oauth2/token", "application/x-www-form-urlencoded", strings.NewReader("grant_type=client_credentials")); err == nil {
		t.Error("a client without a certificate was served")
	}
	with := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool, Certificates: []tls.Certificate{fn.TLS}}}}
	if tok, st := tokenFor(t, with, base, digitalpostsim.EntityID); st != http.StatusOK || tok == "" {
		t.Errorf("with the function certificate: %d", st)
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
