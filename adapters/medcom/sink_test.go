package medcom

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/adapters/medcom/fhirmsg"
	"github.com/samhub/samhub/adapters/medcom/oioxml"
	"github.com/samhub/samhub/adapters/medcom/xmlsafe"
	"github.com/samhub/samhub/pipeline/letter"
)

func outLetter() *letter.Letter {
	return &letter.Letter{
		ID:        "casesys:sag-4711:brev-3",
		Kind:      letter.KindReply,
		Source:    "casesys",
		Sender:    letter.Party{Role: "municipality", Name: "Samrådet Odense", GLN: "5790000000012", SOR: "123456789012345"},
		Receivers: []letter.Party{{Role: "gp", Name: "Lægehuset Ærø", GLN: "5790000000005", SOR: "543210987654321"}},
		To:        []letter.Party{{Role: "gp", Name: "Lægehuset Ærø", GLN: "5790000000005", SOR: "543210987654321"}},
		Patient:   &letter.Patient{CPR: "2509479989", GivenName: "Bruno Test", FamilyName: "Elmer"},
		Category:  "psychiatry-social-disability",
		Subject:   "Svar fra samrådet",
		Text:      "Kære læge\nSamrådet har behandlet henvisningen.",
		Original:  letter.Original{Data: []byte("{}"), ContentType: "application/json"},
	}
}

// xdisLetter is outLetter to a receiver that takes XDIS91 only.
func xdisLetter() *letter.Letter {
	l := outLetter()
	l.To[0].Accepts = []string{OutXDIS91}
	return l
}

func TestDeliverXDIS91IsIdempotent(t *testing.T) {
	e := newEnv(t)
	a := e.adapter(t, nil)
	ctx := context.Background()
	d, err := a.Deliver(ctx, xdisLetter())
	if err != nil {
		t.Fatal(err)
	}
	id := oioxml.StableID("casesys:sag-4711:brev-3")
	if d.RemoteID != "5790000000012#"+id || d.Existing {
		t.Fatalf("delivery %+v", d)
	}
	out := e.files(t, "out")
	if len(out) != 1 || out[0] != "xdis91-"+id+".xml" {
		t.Fatalf("out %v", out)
	}
	m := parseOut(t, e.read(t, "out", out[0]))
	ce := m.Letters[0]
	if ce.Identifier != id || ce.Sender.EAN != "5790000000012" || ce.Receiver.EAN != "5790000000005" || ce.Patient.CPR != "2509479989" ||
		ce.Subject != "Svar fra samrådet" || m.Envelope.AcknowledgementCode != oioxml.AckWanted {
		t.Errorf("letter %+v", ce)
	}
	// A restarted instance delivering the same letter finds the first delivery.
	d2, err := e.adapter(t, nil).Deliver(ctx, xdisLetter())
	if err != nil || !d2.Existing || d2.RemoteID != d.RemoteID {
		t.Fatalf("second delivery %+v %v", d2, err)
	}
	if got := e.files(t, "out"); len(got) != 1 {
		t.Errorf("out %v", got)
	}
}

func TestDeliverRefusesWhatXDIS91CannotCarry(t *testing.T) {
	e := newEnv(t)
	a := e.adapter(t, nil)
	l := xdisLetter()
	l.Text = "Hilsen 🙂 fra Bruno"
	_, err := a.Deliver(context.Background(), l)
	class, reason, code := adapters.Classify(err)
	if class != adapters.ClassPermanent || code != "medcom_cannot_build" || !strings.Contains(reason, "ClinicalInformation[1]/Text01: character U+1F642") {
		t.Fatalf("%v %q %q", class, reason, code)
	}
	if strings.Contains(reason, "Bruno") || strings.Contains(reason, "2509479989") {
		t.Errorf("reason carries personal data: %q", reason)
	}
	l = outLetter()
	l.Kind = letter.KindAcknowledgement
	if _, err := a.Deliver(context.Background(), l); !strings.Contains(err.Error(), "permanent") {
		t.Errorf("ack delivered: %v", err)
	}
	if got := e.files(t, "out"); len(got) != 0 {
		t.Errorf("out %v", got)
	}
}

// No receipt within ack_timeout: flagged on the gauge, resent with a new
// envelope id and the same letter id at most max_resends times; the late
// receipt is correlated, published with InReplyTo = the hub's letter id and
// clears the flag.
func TestMissingAckResendAndReceipt(t *testing.T) {
	e := newEnv(t)
	a := e.adapter(t, map[string]any{"ack_timeout": "30m"})
	ctx := context.Background()
	if _, err := a.Deliver(ctx, xdisLetter()); err != nil {
		t.Fatal(err)
	}
	first := e.files(t, "out")[0]

	e.clock.add(29 * time.Minute)
	if err := a.CheckAcks(ctx); err != nil {
		t.Fatal(err)
	}
	if g := e.gauge(t); g != 0 {
		t.Fatalf("gauge %v before the timeout", g)
	}
	for i := 1; i <= 3; i++ {
		e.clock.add(31 * time.Minute)
		if err := a.CheckAcks(ctx); err != nil {
			t.Fatal(err)
		}
		if g := e.gauge(t); g != 1 {
			t.Fatalf("gauge %v after %d timeouts", g, i)
		}
	}
	out := e.files(t, "out")
	id := oioxml.StableID("casesys:sag-4711:brev-3")
	if strings.Join(out, " ") != "xdis91-"+id+"-r1.xml xdis91-"+id+"-r2.xml xdis91-"+id+".xml" {
		t.Fatalf("out %v (want the first send and exactly 2 resends)", out)
	}
	envs := map[string]bool{}
	for _, f := range out {
		m := parseOut(t, e.read(t, "out", f))
		if m.Letters[0].Identifier != id {
			t.Errorf("%s: letter id changed", f)
		}
		envs[m.Envelope.Identifier] = true
	}
	if len(envs) != 3 {
		t.Errorf("envelope ids not new per transmission: %v", envs)
	}

	// The GP's system answers with a positive receipt.
	e.dropReceipt(t, first)
	pub := newPub()
	a.Poll(ctx, pub)
	if len(pub.letters) != 1 {
		t.Fatalf("published %v", pub.ids())
	}
	ack := pub.letters[0]
	if ack.Kind != letter.KindAcknowledgement || ack.InReplyTo != "casesys:sag-4711:brev-3" || ack.Meta["medcom_receipt_result"] != "positive" ||
		ack.Meta[MetaRef] != "5790000000012#"+id {
		t.Errorf("ack letter %+v", ack)
	}
	if got := e.files(t, "out"); len(got) != 3 {
		t.Errorf("a receipt was acknowledged: %v", got)
	}
	if err := a.CheckAcks(ctx); err != nil {
		t.Fatal(err)
	}
	if g := e.gauge(t); g != 0 {
		t.Errorf("gauge %v after the receipt", g)
	}
}

// A reply to an inbound XDIS91 letter goes back to its sender with the
// identifiers and episode of care it came with.
func TestReplyToInboundXDIS91(t *testing.T) {
	e := newEnv(t)
	a := e.adapter(t, nil)
	ctx := context.Background()
	pub := newPub()
	e.letters.use(pub) // the hub that stored the letter
	e.drop(t, "in.xml", readFile(t, "oioxml/DIS91_2.xml"))
	a.Poll(ctx, pub)
	if n := e.state.Keys("in."); n != 0 {
		t.Fatalf("the state store holds %d inbound records: the reply must be addressed from the stored letter", n)
	}
	l := xdisLetter()
	l.InReplyTo = pub.letters[0].ID
	l.Receivers = []letter.Party{{GLN: "5790000121526"}}
	l.To = []letter.Party{{GLN: "5790000121526", Accepts: []string{OutXDIS91}}}
	if _, err := a.Deliver(ctx, l); err != nil {
		t.Fatal(err)
	}
	out := e.files(t, "out")
	ce := parseOut(t, e.read(t, "out", out[0])).Letters[0]
	if ce.Receiver.IdentifierCode != "ydernummer" || ce.Receiver.Identifier != "200106" || ce.Receiver.OrganisationName != "FYS-KLINIKKEN" ||
		ce.EpisodeOfCareIdentifier != "65528acda12c4d85b7016f4b12eec2bc" {
		t.Errorf("reply %+v", ce)
	}
}

// A reply carries the episode-of-care id of the letter it answers (MedCom:
// "replies shall include it"), in whichever format each of them travels:
// FHIR's hyphenated UUID in an Encounter, XDIS91's 32 hex digits in
// Letter/EpisodeOfCareIdentifier.
func TestRepliesCarryTheEpisodeOfCareAcrossFormats(t *testing.T) {
	cases := []struct {
		in, format, episode, system string
	}{
		{"fhir/samhub/all-optional.json", OutFHIRXML, "0f6c1e2d-3a4b-5c6d-7e8f-90a1b2c3d4e5", "https://sor2.sum.dsdn.dk/#id=441211000016000"},
		{"fhir/samhub/all-optional.json", OutXDIS91, "0f6c1e2d3a4b5c6d7e8f90a1b2c3d4e5", ""},
		// XDIS91 names no issuer: its sender, the reply's receiver, issued it.
		{"oioxml/DIS91_2.xml", OutFHIRJSON, "65528acd-a12c-4d85-b701-6f4b12eec2bc", "https://sor2.sum.dsdn.dk/#id=441211000016099"},
		{"oioxml/DIS91_2.xml", OutXDIS91, "65528acda12c4d85b7016f4b12eec2bc", ""},
	}
	for _, c := range cases {
		t.Run(c.in+" answered as "+c.format, func(t *testing.T) {
			e := newEnv(t)
			a := e.adapter(t, nil)
			ctx := context.Background()
			pub := newPub()
			e.letters.use(pub)
			e.drop(t, "in.x", readFile(t, c.in))
			a.Poll(ctx, pub)
			if len(pub.letters) != 1 {
				t.Fatalf("published %v, error/ %v", pub.ids(), e.files(t, "error"))
			}
			acks := e.files(t, "out")
			l := outLetter()
			l.InReplyTo = pub.letters[0].ID
			to := pub.letters[0].Sender
			if to.SOR == "" {
				to.SOR = "441211000016099" // from the receiver directory
			}
			to.Accepts = []string{c.format}
			l.To = []letter.Party{to}
			if _, err := a.Deliver(ctx, l); err != nil {
				t.Fatal(err)
			}
			var data []byte
			for _, f := range e.files(t, "out") {
				if !slices.Contains(acks, f) {
					data = e.read(t, "out", f)
				}
			}
			if c.format == OutXDIS91 {
				if got := parseOut(t, data).Letters[0].EpisodeOfCareIdentifier; got != c.episode {
					t.Fatalf("XDIS91 episode %q, want %q", got, c.episode)
				}
				return
			}
			m, err := fhirmsg.Parse(data, xmlsafe.DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}
			if err := fhirmsg.Validate(m); err != nil {
				t.Fatal(err)
			}
			ep := m.EpisodeOfCare()
			if ep == nil || ep.Value != c.episode || ep.System != c.system {
				t.Fatalf("episode of care %+v, want %s|%s", ep, c.system, c.episode)
			}
		})
	}
}

// FHIR's priorities urgent and stat (an EPJ letter's) are MedCom's asap in
// a CareCommunication, as they are høj_prioritet in XDIS91: the letter is
// written, not refused for a code MedCom does not take.
func TestUrgentPriorityIsWrittenAsASAP(t *testing.T) {
	e := newEnv(t)
	a := e.adapter(t, nil)
	for i, p := range []string{"urgent", "stat"} {
		l := outLetter()
		l.ID = fmt.Sprintf("epj:note-%d", i)
		l.Category, l.Priority = "regarding-referral", p
		if _, err := a.Deliver(context.Background(), l); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
	}
	for _, f := range e.files(t, "out") {
		m, err := fhirmsg.Parse(e.read(t, "out", f), xmlsafe.DefaultLimits())
		if err != nil {
			t.Fatal(err)
		}
		if m.Priority != "asap" {
			t.Errorf("%s: priority %q, want asap", f, m.Priority)
		}
	}
}

func fhirAdapter(t *testing.T, e *env, format string) *Adapter {
	return e.adapter(t, map[string]any{"out_format": format})
}

// FHIR input: published, acknowledged ok in the same encoding; the second
// copy of MedCom's duplicate pair (same MessageHeader.id, new Bundle.id, XML
// instead of JSON) gets the identical acknowledgement and is not published.
func TestInboundFHIRAndDuplicatePair(t *testing.T) {
	e := newEnv(t)
	a := fhirAdapter(t, e, OutFHIRJSON)
	ctx := context.Background()
	pub := newPub()
	e.drop(t, "k.json", readFile(t, "fhir/Bundle-R-Tek-K-dublicate-5de12884-eae7-4fd3-ba4a-d8b56be4baff.json"))
	a.Poll(ctx, pub)
	if len(pub.letters) != 1 || pub.letters[0].Format != fhirmsg.FormatCareCommunication {
		t.Fatalf("published %v %v", pub.ids(), e.files(t, "error"))
	}
	hid := pub.letters[0].ID
	out := e.files(t, "out")
	if len(out) != 1 || !strings.HasSuffix(out[0], ".json") {
		t.Fatalf("out %v", out)
	}
	first := e.read(t, "out", out[0])
	ack, err := fhirmsg.Parse(first, xmlsafe.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	// From the receiver K was addressed to (the Aabenraa GLN), not self.gln.
	if ack.Event != fhirmsg.EventAcknowledgement || ack.Response.Code != fhirmsg.AckOK || ack.Response.Identifier != hid || ack.Sender.GLN != "5790001353308" {
		t.Fatalf("ack %+v %+v", ack, ack.Response)
	}
	e.clock.add(time.Hour)
	e.drop(t, "l.xml", readFile(t, "fhir/Bundle-R-Tek-L-dublicate-fa97e431-332f-4605-ad37-c259dc2b8637.xml"))
	a.Poll(ctx, pub)
	if len(pub.letters) != 1 {
		t.Fatalf("duplicate published: %v", pub.ids())
	}
	out = e.files(t, "out")
	if len(out) != 1 {
		t.Fatalf("out %v", out)
	}
	sameBytes(t, "repeated FHIR acknowledgement", e.read(t, "out", out[0]), first)
}

func TestInboundFHIRInvalidGetsFatalError(t *testing.T) {
	e := newEnv(t)
	a := fhirAdapter(t, e, OutFHIRXML)
	pub := newPub()
	data := readFile(t, "fhir/Bundle-add5e7e2-0c0f-4a4a-bfff-f6f984fa7e3c.json")
	bad := []byte(strings.Replace(string(data), `"code" : "examination-results"`, `"code" : "no-such-category"`, 1))
	e.drop(t, "bad.json", bad)
	a.Poll(context.Background(), pub)
	if len(pub.letters) != 0 {
		t.Fatalf("published %v", pub.ids())
	}
	if len(e.files(t, "error")) != 2 {
		t.Fatalf("error/ %v", e.files(t, "error"))
	}
	out := e.files(t, "out")
	if len(out) != 1 {
		t.Fatalf("out %v", out)
	}
	ack, err := fhirmsg.Parse(e.read(t, "out", out[0]), xmlsafe.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if ack.Response.Code != fhirmsg.AckFatalError || len(ack.Response.Issues) == 0 || !strings.Contains(ack.Response.Issues[0].Details, "category") {
		t.Errorf("response %+v", ack.Response)
	}
	note := string(e.read(t, "error", "bad.json.error.txt"))
	if !strings.Contains(note, "category") || strings.Contains(note, "2509479989") {
		t.Errorf("note %q", note)
	}
}

// out_format fhir-json: CareCommunication written, resend keeps the
// MessageHeader.id with a new Bundle.id, and the receiver's ok ack clears it.
func TestDeliverFHIRResendAndAck(t *testing.T) {
	e := newEnv(t)
	a := fhirAdapter(t, e, OutFHIRJSON)
	ctx := context.Background()
	d, err := a.Deliver(ctx, outLetter())
	if err != nil {
		t.Fatal(err)
	}
	out := e.files(t, "out")
	if len(out) != 1 || !strings.HasSuffix(out[0], ".json") {
		t.Fatalf("out %v", out)
	}
	sent, err := fhirmsg.Parse(e.read(t, "out", out[0]), xmlsafe.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if err := fhirmsg.Validate(sent); err != nil {
		t.Fatal(err)
	}
	if sent.HeaderID != d.RemoteID || sent.Patient.CPR != "2509479989" || sent.Receiver.GLN != "5790000000005" {
		t.Errorf("sent %+v", sent)
	}
	e.clock.add(31 * time.Minute)
	if err := a.CheckAcks(ctx); err != nil {
		t.Fatal(err)
	}
	out = e.files(t, "out")
	if len(out) != 2 {
		t.Fatalf("out %v", out)
	}
	var resent *fhirmsg.Message
	for _, f := range out {
		m, err := fhirmsg.Parse(e.read(t, "out", f), xmlsafe.DefaultLimits())
		if err != nil {
			t.Fatal(err)
		}
		if m.BundleID != sent.BundleID {
			resent = m
		}
	}
	if resent == nil || resent.HeaderID != sent.HeaderID {
		t.Fatalf("resend %+v", resent)
	}
	receiver := fhirmsg.Organization{Name: "Lægehuset Ærø", GLN: "5790000000005", SOR: "543210987654321"}
	ackBytes, err := fhirmsg.BuildAcknowledgement(resent, fhirmsg.AckOK, nil, receiver, e.clock.now())
	if err != nil {
		t.Fatal(err)
	}
	pub := newPub()
	e.drop(t, "ack.json", ackBytes)
	a.Poll(ctx, pub)
	if len(pub.letters) != 1 || pub.letters[0].Kind != letter.KindAcknowledgement || pub.letters[0].InReplyTo != "casesys:sag-4711:brev-3" {
		t.Fatalf("published %+v", pub.letters)
	}
	if err := a.CheckAcks(ctx); err != nil {
		t.Fatal(err)
	}
	if g := e.gauge(t); g != 0 {
		t.Errorf("gauge %v", g)
	}
}

func TestCheckFHIR(t *testing.T) {
	res := Check(readFile(t, "fhir/Bundle-add5e7e2-0c0f-4a4a-bfff-f6f984fa7e3c.xml"), xmlsafe.DefaultLimits())
	if !res.Valid() || res.Format != fhirmsg.FormatCareCommunication || res.Ack == nil {
		t.Fatalf("%+v", res.Errors)
	}
	ack, err := fhirmsg.Parse(res.Ack, xmlsafe.DefaultLimits())
	if err != nil || ack.Response.Code != fhirmsg.AckOK {
		t.Errorf("ack %v %+v", err, ack)
	}
	res = Check(readFile(t, "fhir/Bundle-a8c041b8-c65a-4fde-a90f-962076918834.xml"), xmlsafe.DefaultLimits())
	if res.Format != fhirmsg.FormatAcknowledgement || res.Ack != nil {
		t.Errorf("ack input: %+v", res)
	}
}

// A CareCommunication inside a VANSEnvelope is answered inside one too.
func TestInboundVANSEnvelope(t *testing.T) {
	e := newEnv(t)
	a := fhirAdapter(t, e, OutFHIRXML)
	payload := readFile(t, "fhir/Bundle-add5e7e2-0c0f-4a4a-bfff-f6f984fa7e3c.xml")
	msg, err := fhirmsg.Parse(payload, xmlsafe.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	wrapped, err := fhirmsg.BuildVANSEnvelope(payload, fhirmsg.Envelope{EnvelopeID: "0b6f6c1e-0000-4000-8000-000000000001", MessageID: msg.HeaderID,
		FromGLN: msg.Sender.GLN, ToGLN: msg.Receiver.GLN, Encoding: fhirmsg.EncodingXML, Name: "MCM:FDIS91#examination-results", Version: "5.0", Now: e.clock.now()})
	if err != nil {
		t.Fatal(err)
	}
	pub := newPub()
	e.drop(t, "vans.xml", wrapped)
	a.Poll(context.Background(), pub)
	if len(pub.letters) != 1 || pub.letters[0].ID != msg.HeaderID || pub.letters[0].Meta[fhirmsg.MetaVANSEnvelopeID] == "" {
		t.Fatalf("published %+v, error/ %v", pub.ids(), e.files(t, "error"))
	}
	out := e.files(t, "out")
	if len(out) != 1 || !strings.HasSuffix(out[0], ".vans.xml") {
		t.Fatalf("out %v", out)
	}
	ack, err := fhirmsg.Parse(e.read(t, "out", out[0]), xmlsafe.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if ack.VANS == nil || ack.Response == nil || ack.Response.Identifier != msg.HeaderID || ack.Response.Code != fhirmsg.AckOK {
		t.Errorf("ack %+v", ack)
	}
}

// The receiver is the one the pipeline resolved, in the format it takes:
// never a party picked from the letter's own recipient list.
func TestDeliverAddressesTheResolvedReceiverInItsFormat(t *testing.T) {
	e := newEnv(t)
	a := e.adapter(t, nil) // out_format xdis91
	ctx := context.Background()
	cases := []struct {
		name    string
		to      letter.Party
		format  string
		ext     string
		gln     string
		refused string
	}{
		{"a GP outside the directory gets the CareCommunication", letter.Party{Role: "gp", GLN: "5790000000005", SOR: "543210987654321", Name: "Lægehuset Ærø"}, OutFHIRXML, ".xml", "5790000000005", ""},
		{"the directory says XDIS91", letter.Party{Role: "gp", GLN: "5790000000029", SOR: "543210987654329", Accepts: []string{OutXDIS91}}, OutXDIS91, ".xml", "5790000000029", ""},
		{"the directory's first format this adapter writes", letter.Party{Role: "region", GLN: "5790000000036", SOR: "6071000016008", Accepts: []string{"edifact", OutFHIRJSON}}, OutFHIRJSON, ".json", "5790000000036", ""},
		{"anyone else: out_format", letter.Party{Role: "hospital", GLN: "5790000000043", SOR: "6071000016015"}, OutXDIS91, ".xml", "5790000000043", ""},
		{"no identifier", letter.Party{Role: "gp", Name: "egen læge"}, "", "", "", "receiver_unresolved"},
		{"a format this adapter does not write", letter.Party{Role: "gp", GLN: "5790000000050", Accepts: []string{"edifact"}}, "", "", "", "receiver_format"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := outLetter()
			l.ID = fmt.Sprintf("casesys:sag-4711:brev-%d", 10+i)
			l.Receivers = []letter.Party{{Role: "gp", GLN: "5790000000098", SOR: "1"}} // never the receiver
			l.To = []letter.Party{c.to}
			before := e.files(t, "out")
			_, err := a.Deliver(ctx, l)
			if c.refused != "" {
				if _, _, code := adapters.Classify(err); code != c.refused {
					t.Fatalf("got %v, want %s", err, c.refused)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var file string
			for _, f := range e.files(t, "out") {
				if !slices.Contains(before, f) {
					file = f
				}
			}
			if !strings.HasSuffix(file, c.ext) || strings.HasPrefix(file, "xdis91-") != (c.format == OutXDIS91) {
				t.Fatalf("wrote %q, want format %s", file, c.format)
			}
			data := e.read(t, "out", file)
			if c.format == OutXDIS91 {
				if got := parseOut(t, data).Letters[0].Receiver.EAN; got != c.gln {
					t.Fatalf("XDIS91 addressed to %s, want %s", got, c.gln)
				}
				return
			}
			m, err := fhirmsg.Parse(data, xmlsafe.DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}
			if m.Receiver.GLN != c.gln {
				t.Fatalf("CareCommunication addressed to %s, want %s", m.Receiver.GLN, c.gln)
			}
		})
	}
	l := outLetter()
	l.ID = "casesys:sag-4711:two"
	l.To = append(l.To, letter.Party{Role: "gp", GLN: "5790000000029", SOR: "2"})
	if _, err := a.Deliver(ctx, l); err == nil {
		t.Fatal("a letter to two receivers was written as one MedCom letter")
	}
}

// A letter its receiver refused is sent again, when the coordinator replays
// it, as a new letter (new MedCom id: the receiver would answer its old id
// as a duplicate); a delivery before any refusal still finds the first.
func TestRefusedLetterIsSentAgainWithNewIDs(t *testing.T) {
	e := newEnv(t)
	a := e.adapter(t, nil)
	ctx := context.Background()
	d1, err := a.Deliver(ctx, xdisLetter())
	if err != nil {
		t.Fatal(err)
	}
	if d, err := a.Deliver(ctx, xdisLetter()); err != nil || !d.Existing {
		t.Fatalf("second delivery before a refusal: %+v %v", d, err)
	}
	sent := parseOut(t, e.read(t, "out", e.files(t, "out")[0]))
	refusal, err := oioxml.BuildReceipt(sent, oioxml.ReceiptOptions{Type: oioxml.NegativeReceipt, Letters: sent.Letters, RefuseCode: "problem_med_modtagerID", RefuseText: "ukendt modtager", Now: e.clock.now()})
	if err != nil {
		t.Fatal(err)
	}
	pub := newPub()
	e.drop(t, "afvisning.xml", refusal)
	a.Poll(ctx, pub)
	if len(pub.letters) != 1 || pub.letters[0].Ack == nil || pub.letters[0].Ack.Positive || pub.letters[0].InReplyTo != "casesys:sag-4711:brev-3" {
		t.Fatalf("refusal published as %+v", pub.letters)
	}
	for _, f := range e.files(t, "out") {
		_ = os.Remove(filepath.Join(e.dir, "out", f)) // the VANS client took them
	}
	d2, err := a.Deliver(ctx, xdisLetter())
	if err != nil || d2.Existing || d2.RemoteID == d1.RemoteID {
		t.Fatalf("delivery after the refusal: %+v %v (first %s)", d2, err, d1.RemoteID)
	}
	out := e.files(t, "out")
	if len(out) != 1 {
		t.Fatalf("out %v", out)
	}
	again := parseOut(t, e.read(t, "out", out[0])).Letters[0]
	if again.Identifier == sent.Letters[0].Identifier {
		t.Fatal("the letter was sent again under the id the receiver refused")
	}
	if d3, err := a.Deliver(ctx, xdisLetter()); err != nil || !d3.Existing || d3.RemoteID != d2.RemoteID {
		t.Fatalf("third delivery %+v %v", d3, err)
	}
}

// writeWatch checks, as a hookedState's hook, whenever the sink records a
// delivery (its "out" record, written once the file is in out/), that the
// outbox already names the letter: a receiver answering the moment the file
// appears must find it there (else its acknowledgement cannot be matched
// and the letter waits for ack_timeout).
type writeWatch struct {
	*memState
	t   *testing.T
	dir string
	n   int
}

func (w *writeWatch) check(key string) {
	if !strings.HasPrefix(key, "out.") { // stateKey("out", letter id)
		return
	}
	if entries, _ := os.ReadDir(filepath.Join(w.dir, "out")); len(entries) == 0 {
		return
	}
	w.n++
	if ob, err := w.memState.Scan(context.Background(), pendingPrefix); err != nil || len(ob) == 0 {
		w.t.Errorf("the letter's file is in out/ but the outbox does not name it yet (%v, %d entries)", err, len(ob))
	}
}

// hookedState calls onWrite before every write (Put, Create, Update).
type hookedState struct {
	*memState
	onWrite func(key string, v []byte)
}

func (h *hookedState) Put(ctx context.Context, key string, v []byte) (uint64, error) {
	h.onWrite(key, v)
	return h.memState.Put(ctx, key, v)
}

func (h *hookedState) Create(ctx context.Context, key string, v []byte) (uint64, error) {
	h.onWrite(key, v)
	return h.memState.Create(ctx, key, v)
}

func (h *hookedState) Update(ctx context.Context, key string, v []byte, rev uint64) (uint64, error) {
	h.onWrite(key, v)
	return h.memState.Update(ctx, key, v, rev)
}

func TestTheOutboxNamesALetterBeforeItsFileAppears(t *testing.T) {
	e := newEnv(t)
	w := &writeWatch{memState: e.state, t: t, dir: e.dir}
	a := e.adapterOn(t, &hookedState{memState: e.state, onWrite: func(key string, _ []byte) { w.check(key) }})
	if _, err := a.Deliver(context.Background(), xdisLetter()); err != nil {
		t.Fatal(err)
	}
	if w.n == 0 {
		t.Fatal("the delivery record was never written after the file: the check did not run")
	}
}

// trippingState fails one write to a key with the given prefix: after
// making it (landed: the answer was lost, as on a NATS timeout) or
// instead of it.
type trippingState struct {
	*memState
	prefix string
	landed bool
	armed  bool
}

var errAnswerLost = errors.New("nats: timeout")

func (s *trippingState) trip(key string, write func() (uint64, error)) (uint64, error) {
	if !s.armed || !strings.HasPrefix(key, s.prefix) {
		return write()
	}
	s.armed = false
	if s.landed {
		_, _ = write()
	}
	return 0, errAnswerLost
}

func (s *trippingState) Create(ctx context.Context, key string, v []byte) (uint64, error) {
	return s.trip(key, func() (uint64, error) { return s.memState.Create(ctx, key, v) })
}

func (s *trippingState) Update(ctx context.Context, key string, v []byte, rev uint64) (uint64, error) {
	return s.trip(key, func() (uint64, error) { return s.memState.Update(ctx, key, v, rev) })
}

func (e *env) adapterOn(t *testing.T, st adapters.StateStore) *Adapter {
	t.Helper()
	cfg := map[string]any{"dir": e.dir, "self": map[string]any{"gln": "5790000000012", "sor": "123456789012345", "name": "Samrådet Odense"}}
	inst, err := adapters.Build(TypeName, adapters.Deps{Name: "medcom", State: st, Metrics: e.reg, Now: e.clock.now, DataDir: filepath.Join(e.dir, "data"), Letters: e.letters}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return inst.(*Adapter)
}

// hidden lists the dot-files in out/ (letters staged, not yet in place).
func (e *env) hidden(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(e.dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, en := range ents {
		if strings.HasPrefix(en.Name(), ".") {
			out = append(out, en.Name())
		}
	}
	return out
}

// TestADeliveryTriedAgainNeverWritesTheLetterTwice: a try that failed
// after the letter was on its way is finished by the next try, which
// writes nothing of its own, so the GP gets the letter once (before, the
// next try wrote it again: a repeat under the same id; the cluster
// scenario saw 19 after a hub was cut from NATS).
func TestADeliveryTriedAgainNeverWritesTheLetterTwice(t *testing.T) {
	ctx := context.Background()

	t.Run("the outbox update landed but its answer was lost", func(t *testing.T) {
		e := newEnv(t)
		st := &trippingState{memState: e.state, prefix: pendingPrefix, landed: true, armed: true}
		if _, err := e.adapterOn(t, st).Deliver(ctx, xdisLetter()); err == nil {
			t.Fatal("want the lost answer's error")
		}
		if out := e.files(t, "out"); len(out) != 0 {
			t.Fatalf("out/ %v before the outbox answered", out)
		}
		d, err := e.adapterOn(t, st).Deliver(ctx, xdisLetter())
		if err != nil || d.Existing {
			t.Fatalf("second try: %+v %v, want it to put the first try's file in place", d, err)
		}
		if out, h := e.files(t, "out"), e.hidden(t); len(out) != 1 || len(h) != 0 {
			t.Fatalf("out/ %v, hidden %v; want the letter once, nothing left hidden", out, h)
		}
	})

	t.Run("the file went out, its record did not", func(t *testing.T) {
		e := newEnv(t)
		st := &trippingState{memState: e.state, prefix: "out.", armed: true}
		if _, err := e.adapterOn(t, st).Deliver(ctx, xdisLetter()); err == nil {
			t.Fatal("want the record's error")
		}
		out := e.files(t, "out")
		if len(out) != 1 {
			t.Fatalf("out/ %v, want the letter", out)
		}
		// The GP's VANS client takes it.
		if err := os.Rename(filepath.Join(e.dir, "out", out[0]), filepath.Join(e.dir, "taken")); err != nil {
			t.Fatal(err)
		}
		d, err := e.adapterOn(t, st).Deliver(ctx, xdisLetter())
		if err != nil || !d.Existing {
			t.Fatalf("second try: %+v %v, want the first one found", d, err)
		}
		if out, h := e.files(t, "out"), e.hidden(t); len(out) != 0 || len(h) != 0 {
			t.Fatalf("out/ %v, hidden %v: the letter was written again", out, h)
		}
		// And the record is there now: a third try reads it.
		if d, err := e.adapter(t, nil).Deliver(ctx, xdisLetter()); err != nil || !d.Existing {
			t.Fatalf("third try: %+v %v", d, err)
		}
	})

	t.Run("a failed outbox update leaves no letter behind", func(t *testing.T) {
		e := newEnv(t)
		st := &trippingState{memState: e.state, prefix: pendingPrefix, armed: true}
		if _, err := e.adapterOn(t, st).Deliver(ctx, xdisLetter()); err == nil {
			t.Fatal("want the outbox error")
		}
		d, err := e.adapterOn(t, st).Deliver(ctx, xdisLetter())
		if err != nil || d.Existing {
			t.Fatalf("second try: %+v %v", d, err)
		}
		if out, h := e.files(t, "out"), e.hidden(t); len(out) != 1 || len(h) != 0 {
			t.Fatalf("out/ %v, hidden %v; want the letter once and the first try's hidden file gone", out, h)
		}
	})
}

// TestWhatUnfinishedDeliveriesLeftIsSweptWhenNothingNamesIt: a letter
// staged by a try whose outbox entry never landed, its copy kept for
// resends and a crashed write's temp file are removed once an hour old, as
// nothing will ever read them (a letter parked and discarded is never tried
// again); a staged letter the outbox names, the copies of letters the
// outbox holds, fresh files and other programs' files stay.
func TestWhatUnfinishedDeliveriesLeftIsSweptWhenNothingNamesIt(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	named := func(id string) *letter.Letter {
		l := xdisLetter()
		l.ID = id
		return l
	}
	// Orphaned: the outbox update failed.
	if _, err := e.adapterOn(t, &trippingState{memState: e.state, prefix: pendingPrefix, armed: true}).Deliver(ctx, named("casesys:sag-1:brev-1")); err == nil {
		t.Fatal("want the outbox error")
	}
	orphans := e.hidden(t)
	if len(orphans) != 1 {
		t.Fatalf("hidden %v, want the orphaned letter", orphans)
	}
	// Named: the update landed, its answer was lost; the next try finishes it.
	if _, err := e.adapterOn(t, &trippingState{memState: e.state, prefix: pendingPrefix, armed: true, landed: true}).Deliver(ctx, named("casesys:sag-2:brev-1")); err == nil {
		t.Fatal("want the lost answer's error")
	}
	// Delivered.
	if _, err := e.adapter(t, nil).Deliver(ctx, named("casesys:sag-3:brev-1")); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(e.dir, "out")
	for _, n := range []string{".KVIT0001.xml.0123456789ab.tmp", ".vans-lock"} { // a crashed write's temp; the VANS client's own
		if err := os.WriteFile(filepath.Join(out, n), []byte("x"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	sent := filepath.Join(e.dir, ".samhub", "sent")
	// A copy an earlier version kept in the hub's data directory, of a
	// letter the outbox no longer holds.
	oldCopy := filepath.Join(e.dir, "data", "sent", filepath.Base(copyPath("", "casesys:sag-9:brev-1")))
	if err := os.MkdirAll(filepath.Dir(oldCopy), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(oldCopy, []byte("{}"), 0o640); err != nil {
		t.Fatal(err)
	}
	copies := func() []string {
		ents, _ := os.ReadDir(sent)
		var n []string
		for _, en := range ents {
			n = append(n, en.Name())
		}
		return n
	}
	if c := copies(); len(c) != 3 {
		t.Fatalf("copies %v, want one per letter", c)
	}
	hour := time.Now().Add(-orphanAfter - time.Minute)
	for _, dir := range []string{out, sent, filepath.Dir(oldCopy)} {
		ents, _ := os.ReadDir(dir)
		for _, en := range ents {
			if err := os.Chtimes(filepath.Join(dir, en.Name()), hour, hour); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Fresh, and orphaned too: stays until it is as old.
	if _, err := e.adapterOn(t, &trippingState{memState: e.state, prefix: pendingPrefix, armed: true}).Deliver(ctx, named("casesys:sag-4:brev-1")); err == nil {
		t.Fatal("want the outbox error")
	}

	a := e.adapter(t, nil)
	if err := a.CheckAcks(ctx); err != nil {
		t.Fatal(err)
	}
	h := e.hidden(t)
	if slices.Contains(h, orphans[0]) || slices.Contains(h, ".KVIT0001.xml.0123456789ab.tmp") {
		t.Errorf("hidden %v: the orphaned letter or the crashed write's temp file stayed", h)
	}
	if len(h) != 3 || !slices.Contains(h, ".vans-lock") {
		t.Errorf("hidden %v, want the named staged letter, the fresh one and .vans-lock", h)
	}
	keep := map[string]bool{}
	for _, id := range []string{"casesys:sag-2:brev-1", "casesys:sag-3:brev-1", "casesys:sag-4:brev-1"} {
		keep[filepath.Base(copyPath("", id))] = true
	}
	if c := copies(); len(c) != 3 || !keep[c[0]] || !keep[c[1]] || !keep[c[2]] {
		t.Errorf("copies %v, want those of the letters in the outbox and the fresh one", c)
	}
	if _, err := os.Stat(oldCopy); !os.IsNotExist(err) {
		t.Errorf("the earlier version's copy stayed: %v", err)
	}
	// What stayed was right to stay: the named letter's next try puts it in place.
	if d, err := a.Deliver(ctx, named("casesys:sag-2:brev-1")); err != nil || d.Existing {
		t.Fatalf("the named letter's next try: %+v %v", d, err)
	}
	// And the swept letter is not lost: its next try writes it afresh.
	if d, err := a.Deliver(ctx, named("casesys:sag-1:brev-1")); err != nil || d.Existing {
		t.Fatalf("the swept letter's next try: %+v %v", d, err)
	}
	if o := e.files(t, "out"); len(o) != 3 {
		t.Errorf("out/ %v, want the delivered letter and the two finished now", o)
	}
}

// TestAnyReplicaResendsWhatAnotherDelivered: replicas share the MedCom
// directory and the outbox, not their data directories. The one running
// the acknowledgement check resends a letter another replica delivered,
// and the acknowledgement it reads removes that letter's copy. (Copies
// were kept in each hub's data directory: the resend failed, and the copy
// stayed on the replica that delivered.)
func TestAnyReplicaResendsWhatAnotherDelivered(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	replica := func(data string) *Adapter {
		cfg := map[string]any{"dir": e.dir, "ack_timeout": "30m", "self": map[string]any{"gln": "5790000000012", "sor": "123456789012345", "name": "Samrådet Odense"}}
		inst, err := adapters.Build(TypeName, adapters.Deps{Name: "medcom", State: e.state, Now: e.clock.now, DataDir: filepath.Join(e.dir, data), Letters: e.letters}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return inst.(*Adapter)
	}
	delivering, checking := replica("hub-1"), replica("hub-2")
	l := xdisLetter()
	pdf := []byte("%PDF-1.7\nscannet journal, testperson\n")
	sum := sha256.Sum256(pdf)
	l.Attachments = []letter.Attachment{letter.StreamedAttachment("scan.pdf", "application/pdf", int64(len(pdf)), hex.EncodeToString(sum[:]),
		func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(pdf)), nil })}
	if _, err := delivering.Deliver(ctx, l); err != nil {
		t.Fatal(err)
	}
	// The copy keeps the letter whole, its file too: a resend writes the
	// XBIN01 letter carrying it again.
	if ents, _ := os.ReadDir(filepath.Join(e.dir, ".samhub", "sent")); len(ents) != 2 {
		t.Fatalf("copies %v, want the letter's and its attachment's", ents)
	}
	id := oioxml.StableID("casesys:sag-4711:brev-3")
	bin := oioxml.BinaryLetterID(id)
	sent := parseOut(t, e.read(t, "out", "xdis91-"+id+".xml"))
	e.clock.add(31 * time.Minute)
	if err := checking.CheckAcks(ctx); err != nil {
		t.Fatal(err)
	}
	if out := e.files(t, "out"); strings.Join(out, " ") != "xbin01-"+bin+"-r1.xml xbin01-"+bin+".xml xdis91-"+id+"-r1.xml xdis91-"+id+".xml" {
		t.Fatalf("out/ %v, want the letter and its XBIN01 letter, and their resend from the other replica", out)
	}
	for _, name := range []string{"xbin01-" + bin + ".xml", "xbin01-" + bin + "-r1.xml"} {
		m := parseOut(t, e.read(t, "out", name))
		if len(m.Binaries) != 1 || !bytes.Equal(m.Binaries[0].Objects[0].Data, pdf) {
			t.Errorf("%s does not carry the letter's PDF", name)
		}
	}
	receipt, err := oioxml.BuildReceipt(sent, oioxml.ReceiptOptions{Type: oioxml.PositiveReceipt, Letters: sent.Letters, Now: e.clock.now()})
	if err != nil {
		t.Fatal(err)
	}
	e.drop(t, "kvittering.xml", receipt)
	checking.Poll(ctx, newPub())
	if ents, err := os.ReadDir(filepath.Join(e.dir, ".samhub", "sent")); err != nil || len(ents) != 0 {
		t.Errorf("copies after the acknowledgement: %v (%v), want none", ents, err)
	}
}

// TestHandledFilesLeaveProcessedAfterProcessedMaxAge: a handled inbound
// file holds a child's letter, so it leaves processed/ once it has been
// there processed_max_age (0 keeps it); refused files in error/ stay for
// the coordinator.
func TestHandledFilesLeaveProcessedAfterProcessedMaxAge(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		age   string
		stays bool
	}{{"0s", true}, {"1h", true}, {"1ms", false}} {
		t.Run(tc.age, func(t *testing.T) {
			e := newEnv(t)
			a := e.adapter(t, map[string]any{"processed_max_age": tc.age})
			if want, _ := time.ParseDuration(tc.age); a.cfg.ProcessedMaxAge != want {
				t.Fatalf("processed_max_age %s read as %s", tc.age, a.cfg.ProcessedMaxAge)
			}
			e.drop(t, "in.xml", readFile(t, "oioxml/DIS91_2.xml"))
			e.drop(t, "bad.xml", []byte("<not a letter"))
			a.Poll(ctx, newPub())
			refused := e.files(t, "error")
			if p := e.files(t, "processed"); len(p) != 1 || len(refused) == 0 {
				t.Fatalf("processed/ %v, error/ %v: want the letter handled and the other refused", p, refused)
			}
			time.Sleep(5 * time.Millisecond)
			if err := a.CheckAcks(ctx); err != nil {
				t.Fatal(err)
			}
			if p := e.files(t, "processed"); (len(p) == 1) != tc.stays {
				t.Errorf("processed/ %v after the check, want the file kept: %v", p, tc.stays)
			}
			if got := e.files(t, "error"); !slices.Equal(got, refused) {
				t.Errorf("error/ %v, want %v untouched", got, refused)
			}
		})
	}
}

// Letters written by vendors' systems (testdata/medcom/fhir/verified) go
// through the drop folder as MedCom's examples do: each is published once
// and answered ok, in its own encoding, from the receiver it was addressed
// to; the 4.0-profile letter goes to error/ with a fatal-error answer that
// names the definition.
func TestVendorLettersThroughTheDropFolder(t *testing.T) {
	e := newEnv(t)
	a := fhirAdapter(t, e, OutFHIRXML)
	pub := newPub()
	files, _ := filepath.Glob(filepath.Join(testdata, "fhir", "verified", "*"))
	if len(files) < 7 {
		t.Fatalf("found %d vendor letters", len(files))
	}
	sent := map[string]*fhirmsg.Message{} // by MessageHeader id
	for _, f := range files {
		data := readFile(t, "fhir/verified/"+filepath.Base(f))
		e.drop(t, filepath.Base(f), data)
		if m, err := fhirmsg.Parse(data, xmlsafe.DefaultLimits()); err == nil && fhirmsg.Validate(m) == nil {
			sent[m.HeaderID] = m
		}
	}
	a.Poll(context.Background(), pub)
	if len(pub.letters) != len(files)-1 || len(sent) != len(files)-1 {
		t.Fatalf("published %d letters (%v) of %d valid files; error/ %v", len(pub.letters), pub.ids(), len(sent), e.files(t, "error"))
	}
	for _, l := range pub.letters {
		if sent[l.ID] == nil || l.Format != fhirmsg.FormatCareCommunication {
			t.Errorf("published %s (%s), not one of the vendors' letters", l.ID, l.Format)
		}
	}
	answered := map[string]bool{}
	var fatal int
	for _, name := range e.files(t, "out") {
		ack, err := fhirmsg.Parse(e.read(t, "out", name), xmlsafe.DefaultLimits())
		if err != nil || ack.Response == nil {
			t.Fatalf("out/%s: %v", name, err)
		}
		if ack.Response.Code == fhirmsg.AckFatalError {
			fatal++
			if len(ack.Response.Issues) == 0 || !strings.Contains(ack.Response.Issues[0].Details, "definition") {
				t.Errorf("the 4.0 letter's answer says %+v; want the definition named", ack.Response.Issues)
			}
			continue
		}
		m := sent[ack.Response.Identifier]
		switch {
		case ack.Response.Code != fhirmsg.AckOK || m == nil:
			t.Errorf("out/%s answers %s with %s", name, ack.Response.Identifier, ack.Response.Code)
		case ack.Sender.GLN != m.Receiver.GLN || ack.Receiver.GLN != m.Sender.GLN || ack.Encoding != m.Encoding:
			t.Errorf("the answer to %s goes from %s to %s in %s; want from %s to %s in %s", m.HeaderID, ack.Sender.GLN, ack.Receiver.GLN, ack.Encoding, m.Receiver.GLN, m.Sender.GLN, m.Encoding)
		default:
			answered[m.HeaderID] = true
		}
	}
	if len(answered) != len(sent) || fatal != 1 {
		t.Errorf("%d of %d letters answered ok, %d refusals; want all and one", len(answered), len(sent), fatal)
	}
	if errs := e.files(t, "error"); len(errs) != 2 || !slices.Contains(errs, "v4-Flow3-CareCommunication_Ex_to_OIOXML.xml") {
		t.Errorf("error/ holds %v; want the 4.0 letter and its note", errs)
	}
}
