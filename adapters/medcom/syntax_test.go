package medcom

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/samhub/samhub/adapters/medcom/fhirmsg"
	"github.com/samhub/samhub/adapters/medcom/oioxml"
)

// cutAt is data up to the first occurrence of mark, plus extra bytes.
func cutAt(t testing.TB, data []byte, mark string, extra int) []byte {
	t.Helper()
	i := bytes.Index(data, []byte(mark))
	if i < 0 {
		t.Fatalf("%q not in the letter", mark)
	}
	return append([]byte(nil), data[:i+extra]...)
}

// cutInData is vans, the VANSEnvelope of msg, cut where its Data's
// base64 reaches byte at of msg.
func cutInData(t testing.TB, vans, msg []byte, at int) []byte {
	t.Helper()
	start := bytes.Index(vans, []byte("<Data>")) + len("<Data>")
	b64 := base64.StdEncoding.EncodeToString(msg[:at])
	n := 0
	for i := start; i < len(vans); i++ {
		if c := vans[i]; c != '\n' && c != '\r' && c != ' ' && c != '\t' {
			n++
		}
		if n == len(b64) {
			return append([]byte(nil), vans[:i+1]...)
		}
	}
	t.Fatal("the cut is beyond the envelope's Data")
	return nil
}

// brokenRound drops data into a fresh adapter, runs a round, and returns
// what out/ holds and the note beside the file in error/.
func brokenRound(t *testing.T, e *env, a *Adapter, name string, data []byte) (out [][]byte, note string) {
	t.Helper()
	pub := newPub()
	e.drop(t, name, data)
	a.Poll(context.Background(), pub)
	if len(pub.letters) != 0 {
		t.Fatalf("a broken file published %v", pub.ids())
	}
	if got := e.read(t, "error", name); !bytes.Equal(got, data) {
		t.Fatalf("error/%s differs from the file dropped", name)
	}
	for _, f := range e.files(t, "out") {
		out = append(out, e.read(t, "out", f))
	}
	e.clearOut(t)
	return out, string(e.read(t, "error", name+".error.txt"))
}

// noPersonalData fails when b holds the test person's CPR number, name or
// the letter's text.
func noPersonalData(t *testing.T, what string, b []byte) {
	t.Helper()
	for _, s := range []string{"2509479989", "250947", "Elmer", "Bruno", "Drengen", "sove", "Lægehuset"} {
		if bytes.Contains(b, []byte(s)) {
			t.Errorf("%s holds %q", what, s)
		}
	}
}

// TestBrokenXDIS91IsRefusedWithSyntaxError: an XDIS91 file that is not
// well-formed gets a negative receipt with RefuseCode syntaksfejl, from
// the receiver it names to the sender, when the envelope's id and the
// letter's id, sender and receiver were read before the fault; else none.
func TestBrokenXDIS91IsRefusedWithSyntaxError(t *testing.T) {
	good := readFile(t, "samhub/letter-utf8.xml")
	latin := readFile(t, "samhub/letter-windows-1252.xml")
	cases := []struct {
		name   string
		data   []byte
		answer bool
	}{
		{"cut inside the envelope", cutAt(t, good, "<Identifier>ENV", 8), false},
		{"cut inside the sender", cutAt(t, good, "<EANIdentifier>5790000000005", 20), false},
		{"cut inside the receiver's number", cutAt(t, good, "<EANIdentifier>5790000000012", 20), false},
		{"cut right after the receiver", cutAt(t, good, "</Receiver>", len("</Receiver>")), true},
		{"cut inside the patient's CPR number", cutAt(t, good, "<CivilRegistrationNumber>", 30), true},
		{"cut inside the patient's name", cutAt(t, good, "<PersonSurnameName>", 22), true},
		{"cut inside the text", cutAt(t, good, "svært ved", 5), true},
		{"a stray byte in the patient", bytes.Replace(good, []byte("<PersonGivenName>"), []byte("<PersonGivenName><"), 1), true},
		{"mismatched end tag in the letter head", bytes.Replace(good, []byte("</StatusCode>"), []byte("</Status>"), 1), false},
		{"windows-1252, cut inside the patient", cutAt(t, latin, "<PersonSurnameName>", 22), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			a := e.adapter(t, nil)
			out, note := brokenRound(t, e, a, "brev.xml", c.data)
			noPersonalData(t, "the note", []byte(note))
			if !strings.Contains(note, "code: syntax") {
				t.Errorf("note %q: want code syntax", note)
			}
			if !c.answer {
				if len(out) != 0 {
					t.Fatalf("out/ holds %d files; nothing can be answered", len(out))
				}
				if !strings.Contains(note, "acknowledgement sent: no") || !strings.Contains(note, "not all read before the error") {
					t.Errorf("note %q: want it to say why no acknowledgement was sent", note)
				}
				return
			}
			if len(out) != 1 {
				t.Fatalf("out/ holds %d files, want one negative receipt", len(out))
			}
			noPersonalData(t, "the receipt", out[0])
			rc := parseOut(t, out[0]).Receipts[0]
			if rc.Type != oioxml.NegativeReceipt || rc.SenderEAN != selfGLN || rc.ReceiverEAN != "5790000000005" ||
				rc.OriginalSenderEAN != "5790000000005" || rc.OriginalReceiverEAN != selfGLN {
				t.Errorf("receipt %s from %s to %s (original %s → %s); want a negative one from %s to the GP", rc.Type, rc.SenderEAN, rc.ReceiverEAN, rc.OriginalSenderEAN, rc.OriginalReceiverEAN, selfGLN)
			}
			if len(rc.OriginalLetters) != 1 || rc.OriginalLetters[0].RefuseCode != oioxml.RefuseSyntax || rc.OriginalEnvelopeIdentifier == "" {
				t.Fatalf("receipt names %+v in envelope %q; want the letter refused with %s", rc.OriginalLetters, rc.OriginalEnvelopeIdentifier, oioxml.RefuseSyntax)
			}
			if !strings.HasPrefix(rc.OriginalLetters[0].Identifier, "LTR") {
				t.Errorf("receipt names letter %q", rc.OriginalLetters[0].Identifier)
			}
			if !strings.Contains(note, "acknowledgement sent: yes") {
				t.Errorf("note %q: want acknowledgement sent: yes", note)
			}
		})
	}
}

// TestBrokenFileCopiesGetTheSameAnswer: a copy of a broken file gets the
// very bytes of the first answer, also after a restart; another cut of
// the same letter gets an answer of its own, and the letter sent again
// whole is stored and answered positively.
func TestBrokenFileCopiesGetTheSameAnswer(t *testing.T) {
	good := readFile(t, "samhub/letter-utf8.xml")
	broken := cutAt(t, good, "<CivilRegistrationNumber>", 28)
	e := newEnv(t)
	a := e.adapter(t, nil)
	first, _ := brokenRound(t, e, a, "a.xml", broken)
	if len(first) != 1 {
		t.Fatalf("out/ holds %d files", len(first))
	}
	e.clock.add(time.Hour)
	a = e.adapter(t, nil) // a restart: only the state store remembers
	again, note := brokenRound(t, e, a, "b.xml", broken)
	if len(again) != 1 {
		t.Fatalf("the copy got %d answers", len(again))
	}
	sameBytes(t, "the copy's answer", again[0], first[0])
	if !strings.Contains(note, "acknowledgement sent: yes") {
		t.Errorf("the copy's note %q", note)
	}

	other, _ := brokenRound(t, e, a, "c.xml", cutAt(t, good, "<PersonGivenName>", 3))
	if len(other) != 1 || bytes.Equal(other[0], first[0]) {
		t.Fatalf("another cut of the letter: %d answers, the same bytes as the first: %v", len(other), len(other) == 1 && bytes.Equal(other[0], first[0]))
	}

	pub := newPub()
	e.drop(t, "whole.xml", good)
	a.Poll(context.Background(), pub)
	if len(pub.letters) != 1 {
		t.Fatalf("the letter sent again whole: published %v", pub.ids())
	}
	if rc := parseOut(t, e.onlyOut(t)).Receipts[0]; rc.Type != oioxml.PositiveReceipt {
		t.Errorf("the letter sent again whole got a %s", rc.Type)
	}
}

// fhirBrokenCase is a cut of a FHIR message and whether it can be answered.
type fhirBrokenCase struct {
	name   string
	data   []byte
	answer bool
}

// TestBrokenFHIRIsRefusedWithBadSyntax: a FHIR message that is not
// well-formed gets an Acknowledgement fatal-error with the issue
// MSG_BAD_SYNTAX, addressed to its sender, when the MessageHeader's id,
// source and destination and the sender's SOR and GLN were read before
// the fault: in a bare Bundle the GLN is in the Organization entries
// (after the Patient and the Communication), in a VANSEnvelope the
// envelope gives it.
func TestBrokenFHIRIsRefusedWithBadSyntax(t *testing.T) {
	xmlMsg := readFile(t, "fhir/Bundle-add5e7e2-0c0f-4a4a-bfff-f6f984fa7e3c.xml")
	jsonMsg := readFile(t, "fhir/Bundle-add5e7e2-0c0f-4a4a-bfff-f6f984fa7e3c.json")
	// The hospital department sends, the care home receives.
	const header, senderSOR, senderGLN, receiverGLN = "42cb9200-f421-4d08-8391-7d51a2503cb4", "265161000016000", "5790000209354", "5790001348120"
	cases := []fhirBrokenCase{
		{"xml: cut inside the MessageHeader", cutAt(t, xmlMsg, "<destination>", 3), false},
		{"xml: cut inside the patient", cutAt(t, xmlMsg, "<Patient", 40), false},
		{"xml: cut after the Organizations", cutAt(t, xmlMsg, "Provenance/", 5), true},
		{"xml: a stray byte after the Organizations", bytes.Replace(xmlMsg, []byte("<Provenance"), []byte("<<Provenance"), 1), true},
		{"json: cut inside the MessageHeader", cutAt(t, jsonMsg, `"destination"`, 5), false},
		{"json: cut inside the patient", cutAt(t, jsonMsg, `"resourceType" : "Patient"`, 30), false},
		{"json: cut after the Organizations", cutAt(t, jsonMsg, `"resourceType" : "Provenance"`, 10), true},
	}
	for _, enc := range []string{fhirmsg.EncodingXML, fhirmsg.EncodingJSON} {
		msg := xmlMsg
		if enc == fhirmsg.EncodingJSON {
			msg = jsonMsg
		}
		vans, err := fhirmsg.BuildVANSEnvelope(msg, fhirmsg.Envelope{EnvelopeID: "0b6f3a6e-4f5d-4d7c-9a43-2f1f0c1b2a11", MessageID: header,
			FromGLN: senderGLN, ToGLN: receiverGLN, Encoding: enc, Name: "MCM:FDIS91#other", Version: "5.0", Now: time.Date(2025, 3, 4, 9, 15, 0, 0, time.UTC)})
		if err != nil {
			t.Fatal(err)
		}
		// Cut the envelope where its Data reaches a point of the message.
		inData := func(mark string, extra int) []byte {
			return cutInData(t, vans, msg, bytes.Index(msg, []byte(mark))+extra)
		}
		patient := "<Patient"
		if enc == fhirmsg.EncodingJSON {
			patient = `"resourceType" : "Patient"`
		}
		cases = append(cases,
			fhirBrokenCase{"vans " + enc + ": cut inside the envelope head", cutAt(t, vans, "<ReceiverID", 5), false},
			fhirBrokenCase{"vans " + enc + ": cut inside the MessageHeader", inData("destination", 0), false},
			fhirBrokenCase{"vans " + enc + ": cut inside the patient", inData(patient, 40), true},
			fhirBrokenCase{"vans " + enc + ": cut right after the MessageHeader", inData(patient, 0), true})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			a := e.adapter(t, nil)
			out, note := brokenRound(t, e, a, "msg.xml", c.data)
			noPersonalData(t, "the note", []byte(note))
			if !strings.Contains(note, "code: syntax") {
				t.Errorf("note %q: want code syntax", note)
			}
			if !c.answer {
				if len(out) != 0 {
					t.Fatalf("out/ holds %d files; nothing can be answered", len(out))
				}
				if !strings.Contains(note, "acknowledgement sent: no") {
					t.Errorf("note %q", note)
				}
				return
			}
			if len(out) != 1 {
				t.Fatalf("out/ holds %d files, want one acknowledgement", len(out))
			}
			noPersonalData(t, "the acknowledgement", out[0])
			ack := parseAck(t, out[0])
			if ack.Event != fhirmsg.EventAcknowledgement || ack.Response == nil || ack.Response.Code != fhirmsg.AckFatalError || ack.Response.Identifier != header {
				t.Fatalf("acknowledgement %+v: want fatal-error of %s", ack.Response, header)
			}
			if len(ack.Response.Issues) != 1 || ack.Response.Issues[0].Details != fhirmsg.IssueBadSyntax {
				t.Errorf("issues %+v: want one %s", ack.Response.Issues, fhirmsg.IssueBadSyntax)
			}
			if ack.Receiver.SOR != senderSOR || ack.Receiver.GLN != senderGLN {
				t.Errorf("acknowledgement to %+v; want the sender %s/%s", ack.Receiver, senderSOR, senderGLN)
			}
			if strings.HasPrefix(c.name, "vans") && (ack.VANS == nil || ack.Encoding != map[bool]string{true: fhirmsg.EncodingJSON, false: fhirmsg.EncodingXML}[strings.Contains(c.name, "json")]) {
				t.Errorf("acknowledgement of an enveloped %s message: envelope %v, encoding %s", c.name, ack.VANS, ack.Encoding)
			}
			if !strings.Contains(note, "acknowledgement sent: yes") {
				t.Errorf("note %q: want acknowledgement sent: yes", note)
			}
		})
	}
}

// TestHostileInputGetsNoSyntaxAnswer: input refused by a limit, a DTD or
// its charset is not scanned for an answer, even where a letter's head
// stands before the hostile part; only a letter cut off is answered.
func TestHostileInputGetsNoSyntaxAnswer(t *testing.T) {
	good := readFile(t, "samhub/letter-utf8.xml")
	patient := bytes.Index(good, []byte("<Patient>"))
	deep := append(append(append([]byte(nil), good[:patient]...), bytes.Repeat([]byte("<a>"), 200)...), good[patient:]...)
	huge := append(append(append([]byte(nil), good[:patient]...), []byte(`<a x="`+strings.Repeat("A", 2<<20)+`"/>`)...), good[patient:]...)
	laughs := append(append([]byte(nil), good[:patient]...), []byte(`<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>&b;`)...)
	dir := filepath.Join("..", "..", "testdata", "medcom", "hostile")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	inputs := map[string][]byte{"deep nesting after the head": deep, "a 2 MiB attribute after the head": huge, "a DTD after the head": laughs}
	for _, en := range entries {
		b, err := os.ReadFile(filepath.Join(dir, en.Name()))
		if err != nil {
			t.Fatal(err)
		}
		inputs[en.Name()] = b
	}
	for name, data := range inputs {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			a := e.adapter(t, nil)
			out, note := brokenRound(t, e, a, "x.xml", data)
			if name == "truncated.xml" {
				return // a letter cut in half: answered or not by where the cut falls
			}
			if len(out) != 0 {
				t.Errorf("out/ holds %d files for hostile input (note %q)", len(out), note)
			}
			if strings.Contains(note, "code: syntax") && strings.Contains(name, "after the head") {
				t.Errorf("note %q: refused as a syntax error, not by its limit", note)
			}
		})
	}
}
