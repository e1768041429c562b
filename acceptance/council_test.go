package acceptance

// What the people and systems around the council do, in their words.

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-message/mail"

	casesyssim "github.com/samhub/samhub/internal/sim/casesys"
	epjsim "github.com/samhub/samhub/internal/sim/epj"
	"github.com/samhub/samhub/internal/sim/medcompeer"
	"github.com/samhub/samhub/pipeline/journey"
	"github.com/samhub/samhub/pipeline/letter"
	"github.com/samhub/samhub/pipeline/retryq"
)

// ---- the GP practices ----

// practice is a GP practice's system, sending through the peer.
type practice struct {
	w *world
	gp
}

func (w *world) gp(p gp) practice { return practice{w, p} }

// how a practice writes its letter.
var (
	xdis91Latin1 = medcompeer.Outgoing{Format: medcompeer.FormatXDIS91, Charset: medcompeer.CharsetLatin1}
	xdis91UTF8   = medcompeer.Outgoing{Format: medcompeer.FormatXDIS91, Charset: medcompeer.CharsetUTF8}
	fhirXML      = medcompeer.Outgoing{Format: medcompeer.FormatFHIRXML}
	fhirJSONVANS = medcompeer.Outgoing{Format: medcompeer.FormatFHIRJSON, Enveloped: true}
)

// Refers sends a referral for c to the council, written as how says.
func (p practice) Refers(c child, how medcompeer.Outgoing) medcompeer.Sent {
	p.w.t.Helper()
	o := how
	o.From, o.Patient = p.GLN, c.patient()
	o.Subject = "Henvisning til samråd – " + c.Given
	o.Text = fmt.Sprintf("Kære samråd\n%s har i et halvt år haft svært ved at sove og går ikke i skole.\nForældrene er bekymrede og ønsker hjælp.\nVenlig hilsen\n%s", c.Given, p.Name)
	if o.Format == medcompeer.FormatXDIS91 && o.Episode == "" {
		sum := sha256.Sum256([]byte(p.GLN + c.ID()))
		o.Episode = hex.EncodeToString(sum[:16]) // the practice's episode of care for this child
	}
	s, err := p.w.peer.Send(o)
	if err != nil {
		p.w.t.Fatalf("%s cannot send its referral: %v", p.Name, err)
	}
	return s
}

// Answers replies to a letter the practice received, in its thread.
func (p practice) Answers(l medcompeer.Letter, text string) medcompeer.Sent {
	p.w.t.Helper()
	how := fhirXML
	if l.Format == medcompeer.FormatXDIS91 {
		how = xdis91Latin1
	}
	how.From, how.ReplyTo, how.Patient, how.Text = p.GLN, &l, l.Patient, text
	s, err := p.w.peer.Send(how)
	if err != nil {
		p.w.t.Fatalf("%s cannot answer: %v", p.Name, err)
	}
	return s
}

// Received is what reached the practice so far.
func (p practice) Received() []medcompeer.Letter { return p.w.peer.Received(p.GLN) }

// Receives waits until n letters about c reached the practice and returns
// them. The hub's letter letterID is the one expected: should it park at
// the GP destination meanwhile, the wait ends with the reason the
// coordinator sees.
func (p practice) Receives(c child, letterID string, n int) []medcompeer.Letter {
	p.w.t.Helper()
	since := time.Now().Add(-time.Second)
	var got []medcompeer.Letter
	checked := time.Now()
	p.w.eventually(fmt.Sprintf("%d letter(s) about %s at %s", n, c.Name(), p.Name), func() bool {
		got = got[:0]
		for _, l := range p.w.peer.Letters() {
			switch {
			case l.Patient.Identifier() != c.ID():
			case l.Party == p.GLN:
				got = append(got, l)
			case p.w.mayReach(c, l.Party):
				// another practice that referred the child
			case l.At.After(since):
				p.w.t.Fatalf("waiting for letter %s about %s at %s: a letter about the child went to GLN %s (SOR %s) instead", letterID, c.Name(), p.Name, l.To.GLN, l.To.SOR)
			}
		}
		if len(got) >= n {
			return true
		}
		if time.Since(checked) > time.Second {
			checked = time.Now()
			for _, e := range p.w.coordinator().ParkedAt("gp", letterID) {
				if e.ParkedAt.After(since) {
					p.w.t.Fatalf("waiting for letter %s about %s at %s: it parked at the GP destination instead: %s: %s", letterID, c.Name(), p.Name, e.LastError.Code, e.LastError.Reason)
				}
			}
		}
		return false
	})
	return got
}

// RefusesNext makes the practice's system answer its next letter with a
// negative acknowledgement.
func (p practice) RefusesNext(reason string) {
	p.w.peer.AnswerNext(p.GLN, medcompeer.Answer{Refuse: true, Reason: reason})
}

// AckOf waits for the hub's acknowledgement of a letter the practice sent.
func (p practice) AckOf(s medcompeer.Sent) medcompeer.Ack {
	p.w.t.Helper()
	var a medcompeer.Ack
	p.w.eventually("the hub's acknowledgement of "+s.ID, func() bool {
		var ok bool
		a, ok = p.w.peer.AckFor(s.ID)
		return ok
	})
	return a
}

// ---- the case system ----

// caseSystem is the municipality's case system (the simulator's own view).
type caseSystem struct{ w *world }

func (w *world) caseSystem() caseSystem { return caseSystem{w} }

// Knows gives c an open case, as one opened before the referral, with the
// consent the parents gave (scopes), and returns its id.
func (cs caseSystem) Knows(c child, scopes ...letter.Scope) string {
	cs.w.t.Helper()
	person := casesyssim.Person{CPR: c.CPR, Name: c.Name()}
	if c.CPR == "" {
		person.ReplacementID = c.ReplacementID // a child without a CPR number yet
	}
	cc := casesyssim.Case{Title: "Samråd", PrimaryParty: person,
		ContactPerson: &casesyssim.ContactPerson{Name: "Sagsbehandler Test", Email: "sagsbehandler@samraad.example"}}
	if len(scopes) > 0 {
		at := time.Now().Add(-24 * time.Hour).UTC()
		cc.Consent = &casesyssim.Consent{GivenBy: "custody-holder", Form: "written", GivenAt: &at}
		for _, s := range scopes {
			cc.Consent.Scopes = append(cc.Consent.Scopes, string(s))
		}
	}
	got, err := cs.w.cases.SeedCase(cc)
	if err != nil {
		cs.w.t.Fatal(err)
	}
	return got.ID
}

// CasesOf lists c's cases.
func (cs caseSystem) CasesOf(c child) []casesyssim.Case {
	var out []casesyssim.Case
	for _, k := range cs.w.cases.Cases() {
		if k.PrimaryParty.CPR == c.ID() || c.CPR == "" && k.PrimaryParty.ReplacementID == c.ID() {
			out = append(out, k)
		}
	}
	return out
}

// CaseOf waits for c's one case and returns it.
func (cs caseSystem) CaseOf(c child) casesyssim.Case {
	cs.w.t.Helper()
	cs.w.eventually("a case for "+c.Name(), func() bool { return len(cs.CasesOf(c)) > 0 })
	got := cs.CasesOf(c)
	if len(got) != 1 {
		cs.w.t.Errorf("%s has %d cases, want exactly one", c.Name(), len(got))
	}
	return got[0]
}

// DocumentsFor lists the documents made from the hub letter id.
func (cs caseSystem) DocumentsFor(letterID string) []casesyssim.Document {
	var out []casesyssim.Document
	for _, d := range cs.w.cases.Documents() {
		if d.Letter != nil && d.Letter.ID == letterID {
			out = append(out, d)
		}
	}
	return out
}

// Files waits until the letter is a document in the case system and
// returns it; more than one document for a letter is an error.
func (cs caseSystem) Files(letterID string) casesyssim.Document {
	cs.w.t.Helper()
	cs.w.eventually("letter "+letterID+" as a document in the case system", func() bool { return len(cs.DocumentsFor(letterID)) > 0 })
	docs := cs.DocumentsFor(letterID)
	if len(docs) != 1 {
		cs.w.t.Errorf("letter %s is %d documents in the case system, want exactly one", letterID, len(docs))
	}
	return docs[0]
}

// HoldsOriginal reports whether the document keeps the bytes as sent.
func (cs caseSystem) HoldsOriginal(d casesyssim.Document, data []byte) bool {
	sum := sha256.Sum256(data)
	for _, f := range d.Files {
		if f.SHA256 == hex.EncodeToString(sum[:]) {
			return true
		}
	}
	return false
}

// ---- the council ----

// recipients are whom the council's document names.
type recipients struct {
	GP      *gp
	GPName  string // a GP named without any address (the coordinator forgot it)
	Region  bool
	Parents bool // the parents, named with an email address only
	// Custody are the custody holders, named by CPR (Digital Post).
	Custody []custodyHolder
}

// custodyHolder is a parent as the case system names one: a name and the
// CPR number Digital Post reaches them by.
type custodyHolder struct{ Name, CPR string }

// council is the council writing on a case.
type council struct{ w *world }

func (w *world) council() council { return council{w} }

// Recommends puts the council's recommendation for c on the outbox of c's
// case, naming to, and returns the hub's letter id for it.
func (co council) Recommends(c child, to recipients, text string) string {
	co.w.t.Helper()
	k := co.w.caseSystem().CaseOf(c)
	var r casesyssim.OutboxRecipients
	if to.GP != nil {
		r.GP = &casesyssim.Organisation{Name: to.GP.Name, GLN: to.GP.GLN, SOR: to.GP.SOR}
	}
	if to.GPName != "" {
		r.GP = &casesyssim.Organisation{Name: to.GPName}
	}
	if to.Region {
		r.Region = &casesyssim.Organisation{Name: childPsychiatry.Name, SOR: childPsychiatry.SOR}
	}
	if to.Parents {
		r.Parents = []casesyssim.Parent{{Name: "Forælder Test " + c.Family, Email: parentsEmail}}
	}
	for _, p := range to.Custody {
		r.Parents = append(r.Parents, casesyssim.Parent{Name: p.Name, CPR: p.CPR})
	}
	d, err := co.w.cases.SeedOutboxDocument(k.ID, casesyssim.SeedDocument{Title: "Samrådets anbefaling", Text: text, Recipients: r})
	if err != nil {
		co.w.t.Fatal(err)
	}
	return "casesys:casesys:" + d.ID
}

// cprShaped is a birth date and four digits: no status text may carry one.
var cprShaped = regexp.MustCompile(`\b[0-3][0-9][01][0-9]{3}-?[0-9]{4}\b`)

// Outbox is what the case system's outbox shows of a recommendation the
// council put there: the document's status and each recipient's (by key:
// gp, parent-1, region).
func (cs caseSystem) Outbox(letterID string) (string, map[string]casesyssim.RecipientStatus) {
	cs.w.t.Helper()
	it, ok := cs.w.cases.OutboxItem(strings.TrimPrefix(letterID, "casesys:casesys:"))
	if !ok {
		cs.w.t.Fatalf("no outbox document for %s", letterID)
	}
	per := map[string]casesyssim.RecipientStatus{}
	for _, r := range it.RecipientStatus {
		per[r.Key] = r
	}
	return it.Status, per
}

// OutboxShows waits until the outbox document of letterID has status doc
// and each named recipient the given status, and fails saying what it
// shows instead.
func (cs caseSystem) OutboxShows(letterID, doc string, recipients map[string]string) {
	cs.w.t.Helper()
	var got string
	var per map[string]casesyssim.RecipientStatus
	matches := func() bool {
		got, per = cs.Outbox(letterID)
		if got != doc || len(per) != len(recipients) {
			return false
		}
		for k, want := range recipients {
			if per[k].Status != want {
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(30 * time.Second)
	for !matches() {
		if time.Now().After(deadline) {
			var b strings.Builder
			for k, r := range per {
				fmt.Fprintf(&b, " %s=%s(%s)", k, r.Status, r.Code)
			}
			cs.w.t.Fatalf("the outbox shows %s as %q with%s; want %q with %v", letterID, got, b.String(), doc, recipients)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, r := range per {
		if r.Reason != "" && cprShaped.MatchString(r.Reason) {
			cs.w.t.Errorf("the outbox status of %s carries a CPR-shaped number: %q", r.Key, r.Reason)
		}
	}
}

// ---- the region ----

// region is child psychiatry's EPJ behind the regional FHIR gateway.
type region struct{ w *world }

func (w *world) region() region { return region{w} }

// Knows registers c as the region's patient, with the child's GP when
// given (Patient.generalPractitioner).
func (r region) Knows(c child, their *gp) {
	r.w.t.Helper()
	body := map[string]any{"resourceType": "Patient",
		"name": []any{map[string]any{"use": "official", "family": c.Family, "given": strings.Fields(c.Given)}}}
	if c.CPR != "" {
		body["identifier"] = []any{map[string]string{"system": epjsim.SystemCPR, "value": c.CPR}}
	} else {
		body["identifier"] = []any{map[string]string{"use": "temp", "system": epjsim.SystemXeCPR, "value": c.ReplacementID}}
	}
	if their != nil {
		body["generalPractitioner"] = []any{map[string]any{"identifier": map[string]string{"system": epjsim.SystemSOR, "value": their.SOR}, "display": their.Name}}
	}
	b, _ := json.Marshal(body)
	ref, err := r.w.epj.SeedResource("Patient", b, time.Time{})
	if err != nil {
		r.w.t.Fatal(err)
	}
	r.w.epjPatients[c.ID()] = strings.TrimPrefix(ref, "Patient/")
}

// SendsDischargeNote puts a discharge summary for c into the region's feed
// to the municipality, naming the child's GP (context.related, with the
// GP's SOR code), and returns the hub's letter id for it.
func (r region) SendsDischargeNote(c child, to gp, text string) string {
	r.w.t.Helper()
	pid, ok := r.w.epjPatients[c.ID()]
	if !ok {
		r.w.t.Fatalf("the region does not know %s", c.Name())
	}
	sor := func(v string) map[string]string { return map[string]string{"system": epjsim.SystemSOR, "value": v} }
	body := map[string]any{
		"resourceType": "DocumentReference", "status": "current",
		"contained":   []any{map[string]any{"resourceType": "Organization", "id": "sender", "identifier": []any{sor(childPsychiatry.SOR)}, "name": childPsychiatry.Name}},
		"type":        map[string]any{"coding": []any{map[string]string{"system": "http://loinc.org", "code": "18842-5", "display": "Discharge summary"}}},
		"subject":     map[string]string{"reference": "Patient/" + pid},
		"date":        time.Now().UTC().Format(time.RFC3339),
		"author":      []any{map[string]any{"reference": "#sender", "identifier": sor(childPsychiatry.SOR)}},
		"description": text,
		"content":     []any{map[string]any{"attachment": map[string]any{"contentType": "text/plain; charset=utf-8", "title": "Udskrivningsnotat", "data": base64.StdEncoding.EncodeToString([]byte(text))}}},
		"context": map[string]any{"related": []any{
			map[string]any{"identifier": sor(theCouncil.SOR), "display": theCouncil.Name},
			map[string]any{"identifier": sor(to.SOR), "display": to.Name},
		}},
	}
	b, _ := json.Marshal(body)
	ref, err := r.w.epj.SeedResource("DocumentReference", b, time.Time{})
	if err != nil {
		r.w.t.Fatal(err)
	}
	return "epj:epj:" + ref + "/1"
}

// CommunicationsFor are what the region filed for the hub's letter id.
func (r region) CommunicationsFor(letterID string) []map[string]any {
	var out []map[string]any
	for _, raw := range r.w.epj.CommunicationsFor(letterID) {
		var m map[string]any
		if json.Unmarshal(raw, &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// IsDown makes the region's gateway answer 503 to the next n deliveries
// (each starts with a patient search; the feed the hub polls stays up).
func (r region) IsDown(n int) {
	r.w.epj.FailNextOn("/Patient/_search", n, http.StatusServiceUnavailable, 0)
}

// ---- the coordinator, through samhubctl ----

type coordinator struct{ w *world }

func (w *world) coordinator() coordinator { return coordinator{w} }

// samhubctl runs the CLI as the user with token; it returns stdout and
// the exit code.
func (w *world) samhubctl(token string, args ...string) (string, int) {
	w.t.Helper()
	cmd := exec.Command(bins.samhubctl, args...)
	cmd.Env = append(os.Environ(), "SAMHUB_SERVER="+w.hub.url, "SAMHUB_TOKEN="+token)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		w.t.Fatalf("samhubctl: %v", err)
	}
	if code != 0 {
		return out.String() + errb.String(), code
	}
	return out.String(), 0
}

func (co coordinator) ctlJSON(v any, args ...string) {
	co.w.t.Helper()
	out, code := co.w.samhubctl(coordinatorToken, append(args, "-o", "json")...)
	if code != 0 {
		co.w.t.Fatalf("samhubctl %s: exit %d: %s", strings.Join(args, " "), code, out)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		co.w.t.Fatalf("samhubctl %s: %v in %q", strings.Join(args, " "), err, out)
	}
}

// Queue lists the retry queue as the coordinator sees it.
func (co coordinator) Queue() []retryq.Entry {
	co.w.t.Helper()
	var v struct{ Entries []retryq.Entry }
	co.ctlJSON(&v, "queue", "list")
	return v.Entries
}

// ParkedAt returns the queue's entries for letterID at dest.
func (co coordinator) ParkedAt(dest, letterID string) []retryq.Entry {
	var out []retryq.Entry
	for _, e := range co.Queue() {
		if e.Destination == dest && e.LetterID == letterID {
			out = append(out, e)
		}
	}
	return out
}

// FindsParked waits until letterID is parked at dest and returns the entry.
func (co coordinator) FindsParked(dest, letterID string) retryq.Entry {
	co.w.t.Helper()
	var e []retryq.Entry
	co.w.eventually(fmt.Sprintf("letter %s parked at %s", letterID, dest), func() bool {
		e = co.ParkedAt(dest, letterID)
		return len(e) > 0
	})
	return e[0]
}

// Replays sends a parked letter again.
func (co coordinator) Replays(e retryq.Entry, reason string) {
	co.w.t.Helper()
	if out, code := co.w.samhubctl(coordinatorToken, "queue", "replay", strconv.FormatUint(e.Seq, 10), "--reason", reason); code != 0 {
		co.w.t.Fatalf("samhubctl queue replay: exit %d: %s", code, out)
	}
}

// Discards removes a parked letter for good.
func (co coordinator) Discards(e retryq.Entry, reason string) {
	co.w.t.Helper()
	if out, code := co.w.samhubctl(coordinatorToken, "queue", "discard", strconv.FormatUint(e.Seq, 10), "--reason", reason); code != 0 {
		co.w.t.Fatalf("samhubctl queue discard: exit %d: %s", code, out)
	}
}

// trace is `samhubctl letter trace -o json`.
type trace struct {
	Letter *struct {
		ID, Kind, Format, Source, ThreadID string
	}
	Steps   []journey.Event
	Parked  []retryq.Entry
	Pending []string `json:"pendingDestinations"`
}

// Traces shows a letter's journey.
func (co coordinator) Traces(letterID string) trace {
	co.w.t.Helper()
	var t trace
	co.ctlJSON(&t, "letter", "trace", letterID)
	return t
}

// steps returns the trace's steps of one kind (at dest, when given).
func (t trace) steps(step, dest string) []journey.Event {
	var out []journey.Event
	for _, s := range t.Steps {
		if s.Step == step && (dest == "" || s.Destination == dest) {
			out = append(out, s)
		}
	}
	return out
}

// SeesAcknowledgement waits until the letter's journey shows the peer's
// acknowledgement and returns that step.
func (co coordinator) SeesAcknowledgement(letterID string) journey.Event {
	co.w.t.Helper()
	var got []journey.Event
	co.w.eventually("the peer's acknowledgement in the journey of "+letterID, func() bool {
		got = co.Traces(letterID).steps(journey.Acknowledged, "")
		return len(got) > 0
	})
	return got[len(got)-1]
}

// RecordsConsent records the custody holders' consent for c, through
// samhubctl consent record (issue 17). Where samhubctl cannot, the failure
// is reported and the consent recorded through the API as the console
// does, so the rest of the scenario still shows what it can.
func (co coordinator) RecordsConsent(c child, scopes ...letter.Scope) {
	co.w.t.Helper()
	var names []string
	for _, s := range scopes {
		names = append(names, string(s))
	}
	args := []string{"consent", "record", "--patient", c.ID(), "--scope", strings.Join(names, ","),
		"--given-by", "custody-holder", "--form", "written", "--reason", "Forældrene gav skriftligt samtykke på mødet"}
	out, code := co.w.samhubctl(coordinatorToken, args...)
	if code == 0 {
		return
	}
	co.w.t.Errorf("samhubctl %s: exit %d: %s (want the consent recorded and audited)", strings.Join(args[:2], " "), code, strings.TrimSpace(out))
	body, _ := json.Marshal(map[string]any{"patient": c.ID(), "reason": "samtykke (fallback through the API)",
		"consent": letter.Consent{GivenBy: "custody-holder", Form: "written", GivenAt: time.Now().UTC(), Scopes: scopes}})
	req, _ := http.NewRequest(http.MethodPost, co.w.hub.url+"/api/v1/consents", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+coordinatorToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		co.w.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		co.w.t.Fatalf("POST /api/v1/consents: %s", resp.Status)
	}
}

// ---- the coordinator's mailbox ----

// notices are the mails the hub sent the coordinator: subject and text,
// decoded as a mail reader would show them.
func (w *world) notices() []string {
	w.t.Helper()
	var out []string
	for _, m := range w.mail.Messages() {
		if !slices.Contains(m.To, coordinatorEmail) {
			continue
		}
		mr, err := mail.CreateReader(bytes.NewReader(m.Data))
		if err != nil {
			w.t.Fatalf("a notice is not a readable mail: %v", err)
		}
		subject, _ := mr.Header.Subject()
		text := []string{subject}
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				w.t.Fatalf("a notice's part is not readable: %v", err)
			}
			if h, ok := p.Header.(*mail.InlineHeader); ok {
				if ct, _, _ := h.ContentType(); ct == "text/plain" {
					b, _ := io.ReadAll(p.Body)
					text = append(text, string(b))
				}
			}
		}
		out = append(out, strings.Join(text, "\n"))
	}
	return out
}
