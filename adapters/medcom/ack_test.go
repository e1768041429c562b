package medcom

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/samhub/samhub/adapters/medcom/fhirmsg"
	"github.com/samhub/samhub/adapters/medcom/oioxml"
	"github.com/samhub/samhub/adapters/medcom/xmlsafe"
	"github.com/samhub/samhub/pipeline/letter"
)

// The adapter under test is configured as self.gln 5790000000012 (see
// env.adapter); the letters below are addressed to other identities the
// same mailbox receives for.
const (
	selfGLN     = "5790000000012"
	otherGLN    = "5790000000029" // letter-alternative-id-no-name.xml's receiver
	councilGLN  = "5790001353308" // the FHIR fixtures' receiver
	councilSOR  = "330461000016004"
	councilName = "Samråd for Børn og Unge, Æblehøj Kommune"
)

// onlyOut returns the one file in out/.
func (e *env) onlyOut(t *testing.T) []byte {
	t.Helper()
	out := e.files(t, "out")
	if len(out) != 1 {
		t.Fatalf("out/ holds %v, want one acknowledgement", out)
	}
	return e.read(t, "out", out[0])
}

func (e *env) clearOut(t *testing.T) {
	t.Helper()
	for _, f := range e.files(t, "out") {
		if err := os.Remove(filepath.Join(e.dir, "out", f)); err != nil { // the VANS client took it
			t.Fatal(err)
		}
	}
}

// TestXCTLFromTheAddressedReceiver: an XDIS91 receipt is sent by the EAN the
// letter was addressed to, also when that is not self.gln; a letter whose
// receiver cannot be read is refused from self.gln.
func TestXCTLFromTheAddressedReceiver(t *testing.T) {
	good := readFile(t, "samhub/letter-alternative-id-no-name.xml")
	cases := []struct {
		name                string
		data                []byte
		typ, from, origRcvr string
		published           int
		wholeEnvelope       bool
	}{
		{"valid", good, oioxml.PositiveReceipt, otherGLN, otherGLN, 1, false},
		{"invalid, receiver readable", bytes.Replace(good, []byte("<StatusCode>nytbrev"), []byte("<StatusCode>gammelt"), 1),
			oioxml.NegativeReceipt, otherGLN, otherGLN, 0, false},
		{"letter id unusable: the whole envelope is refused", bytes.Replace(good, []byte("LTR00000000031"), []byte("LTR000000000310000000"), 1),
			oioxml.NegativeReceipt, otherGLN, otherGLN, 0, true},
		{"receiver EAN missing", bytes.Replace(good, []byte("<EANIdentifier>"+otherGLN+"</EANIdentifier>"), nil, 1),
			oioxml.NegativeReceipt, selfGLN, selfGLN, 0, false},
		{"receiver EAN unusable", bytes.Replace(good, []byte(otherGLN), []byte(strings.Repeat("9", 36)), 1),
			oioxml.NegativeReceipt, selfGLN, selfGLN, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			a := e.adapter(t, nil)
			pub := newPub()
			e.drop(t, "brev.xml", c.data)
			a.Poll(context.Background(), pub)
			if len(pub.letters) != c.published {
				t.Fatalf("published %v", pub.ids())
			}
			rc := parseOut(t, e.onlyOut(t)).Receipts[0]
			if rc.Type != c.typ || rc.SenderEAN != c.from || rc.OriginalReceiverEAN != c.origRcvr || rc.ReceiverEAN != "5790000000005" {
				t.Errorf("receipt %s from %s (original receiver %s) to %s; want %s from %s", rc.Type, rc.SenderEAN, rc.OriginalReceiverEAN, rc.ReceiverEAN, c.typ, c.from)
			}
			if got := len(rc.OriginalLetters) == 0; got != c.wholeEnvelope {
				t.Errorf("receipt names %d letters", len(rc.OriginalLetters))
			}
			if c.published == 1 {
				l := pub.letters[0]
				if *l.Patient != (letter.Patient{ReplacementID: "1206550VK9"}) || l.Receivers[0].GLN != otherGLN {
					t.Errorf("letter patient %+v receiver %+v", l.Patient, l.Receivers[0])
				}
			}
		})
	}

	t.Run("duplicate gets the identical receipt", func(t *testing.T) {
		e := newEnv(t)
		a := e.adapter(t, nil)
		pub := newPub()
		e.drop(t, "first.xml", good)
		a.Poll(context.Background(), pub)
		first := e.onlyOut(t)
		e.clearOut(t)
		e.clock.add(time.Hour)
		e.drop(t, "again.xml", bytes.Replace(good, []byte("ENV00000000031"), []byte("ENV00000000099"), 1))
		a.Poll(context.Background(), pub)
		sameBytes(t, "repeated receipt", e.onlyOut(t), first)
		if len(pub.letters) != 1 {
			t.Errorf("duplicate published: %v", pub.ids())
		}
	})
}

func parseAck(t *testing.T, data []byte) *fhirmsg.Message {
	t.Helper()
	m, err := fhirmsg.Parse(data, xmlsafe.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if m.Event != fhirmsg.EventAcknowledgement || m.Response == nil {
		t.Fatalf("not an acknowledgement: %s", m.Event)
	}
	return m
}

// TestFHIRAcknowledgementFromTheAddressedReceiver: MedCom's receive test
// letter for a child with an unknown family name and an X-eCPR, in a
// VANSEnvelope, is received (not refused), acknowledged ok from the
// Organization it was addressed to (also on the envelope), and a duplicate
// gets the same bytes.
func TestFHIRAcknowledgementFromTheAddressedReceiver(t *testing.T) {
	e := newEnv(t)
	a := e.adapter(t, nil)
	pub := newPub()
	inner := readFile(t, "fhir/samhub/unknown-family-xecpr.json")
	vans := func(envelopeID string) []byte {
		b, err := fhirmsg.BuildVANSEnvelope(inner, fhirmsg.Envelope{EnvelopeID: envelopeID, MessageID: "0b1d6c1e-3c55-4f0e-9a57-5b1c9a4e2f60",
			FromGLN: "5790001987244", ToGLN: councilGLN, Encoding: fhirmsg.EncodingJSON, Name: "MCM:FDIS91#psychiatry-social-disability", Version: "5.0"})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	e.drop(t, "km.xml", vans("5c0f8a8e-2b8e-4a53-9d4c-3f6f0b1e7a21"))
	a.Poll(context.Background(), pub)
	if len(pub.letters) != 1 {
		t.Fatalf("published %v, error/ %v", pub.ids(), e.files(t, "error"))
	}
	l := pub.letters[0]
	if want := (letter.Patient{ReplacementID: "0703921VJ5", ReplacementSystem: "urn:oid:1.2.208.176.1.6.1.1", GivenName: "Peter"}); *l.Patient != want {
		t.Errorf("patient %+v", l.Patient)
	}
	first := e.onlyOut(t)
	ack := parseAck(t, first)
	if ack.Response.Code != fhirmsg.AckOK || ack.Response.Identifier != l.ID {
		t.Errorf("response %+v", ack.Response)
	}
	if ack.Sender != (fhirmsg.Organization{Name: councilName, SOR: councilSOR, GLN: councilGLN}) || ack.VANS == nil || ack.VANS.FromVANS != councilGLN {
		t.Errorf("acknowledged by %+v (envelope %+v), want the receiver %s", ack.Sender, ack.VANS, councilGLN)
	}
	if ack.Receiver.GLN != "5790001987244" || ack.VANS.ToVANS != "5790001987244" {
		t.Errorf("acknowledgement goes to %+v / %s", ack.Receiver, ack.VANS.ToVANS)
	}

	e.clearOut(t)
	e.clock.add(time.Hour)
	e.drop(t, "km-again.xml", vans("9d9e2b6a-7f43-4a0e-8e1b-2c4d6f8a0b13"))
	a.Poll(context.Background(), pub)
	sameBytes(t, "repeated acknowledgement", e.onlyOut(t), first)
	if len(pub.letters) != 1 {
		t.Errorf("duplicate published: %v", pub.ids())
	}
}

// TestFHIRNegativeAcknowledgementSender: a fatal-error is sent from the
// addressed receiver when it can be read, else from self.
func TestFHIRNegativeAcknowledgementSender(t *testing.T) {
	k := string(readFile(t, "fhir/Bundle-R-Tek-K-dublicate-5de12884-eae7-4fd3-ba4a-d8b56be4baff.json"))
	aabenraa := fhirmsg.Organization{Name: "Sundhedsplejen, Aabenraa kommune", SOR: councilSOR, GLN: councilGLN}
	self := fhirmsg.Organization{Name: "Samrådet Odense", SOR: "123456789012345", GLN: selfGLN}
	cases := []struct {
		name string
		edit func(string) string
		from fhirmsg.Organization
		code string // the MedCom issue code one issue must carry; "": none may
	}{
		{"invalid category, receiver readable", func(s string) string {
			return strings.Replace(s, `"code" : "telemedicine"`, `"code" : "gossip"`, 1)
		}, aabenraa, ""},
		{"receiver unresolvable", func(s string) string {
			return strings.Replace(s, `"reference" : "Organization/996df80d-e9d3-4885-aad1-8609ad459a16"`, `"reference" : "Organization/nope"`, 1)
		}, self, fhirmsg.IssueLocalFail},
		{"receiver without a SOR id", func(s string) string {
			return strings.Replace(s, `"value" : "330461000016004"`, `"value" : "33046"`, 1)
		}, self, fhirmsg.IssueBadFormat},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			doc := c.edit(k)
			if doc == k {
				t.Fatal("edit changed nothing")
			}
			e := newEnv(t)
			a := e.adapter(t, nil)
			pub := newPub()
			e.drop(t, "k.json", []byte(doc))
			a.Poll(context.Background(), pub)
			if len(pub.letters) != 0 {
				t.Fatalf("published %v", pub.ids())
			}
			ack := parseAck(t, e.onlyOut(t))
			if ack.Response.Code != fhirmsg.AckFatalError || ack.Sender != c.from {
				t.Errorf("%s from %+v, want fatal-error from %+v", ack.Response.Code, ack.Sender, c.from)
			}
			// Each issue says what was wrong where; a problem MedCom has a
			// code for carries it too (issue.details.coding).
			var codes []string
			for _, is := range ack.Response.Issues {
				if is.Text == "" || is.Severity != "error" || strings.Contains(is.Text, "gossip") || strings.Contains(is.Text, "33046") {
					t.Errorf("issue %+v: want a text naming the element and no value", is)
				}
				if is.Details != is.Text {
					codes = append(codes, is.Details)
				}
			}
			if (c.code == "") != (len(codes) == 0) || c.code != "" && !slices.Contains(codes, c.code) {
				t.Errorf("issue codes %v, want %q among them", codes, c.code)
			}
		})
	}
}

// TestCheckAnswersAsTheReceiver: `samhub validate --ack` shows the
// acknowledgement the receiver would send, for the test-protocol letter too.
func TestCheckAnswersAsTheReceiver(t *testing.T) {
	res := Check(readFile(t, "fhir/samhub/unknown-family-xecpr.json"), xmlsafe.DefaultLimits())
	if !res.Valid() || res.Ack == nil {
		t.Fatalf("%+v", res)
	}
	if ack := parseAck(t, res.Ack); ack.Response.Code != fhirmsg.AckOK || ack.Sender.GLN != councilGLN {
		t.Errorf("%s from %+v", ack.Response.Code, ack.Sender)
	}
	res = Check(readFile(t, "samhub/letter-alternative-id-no-name.xml"), xmlsafe.DefaultLimits())
	if !res.Valid() || res.Ack == nil || parseOut(t, res.Ack).Receipts[0].SenderEAN != otherGLN {
		t.Errorf("%+v", res)
	}
}
