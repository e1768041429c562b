package letter_test

import (
	"maps"
	"testing"

	"github.com/samhub/samhub/adapters/casesys"
	"github.com/samhub/samhub/adapters/email"
	"github.com/samhub/samhub/adapters/epj"
	"github.com/samhub/samhub/adapters/medcom/fhirmsg"
	"github.com/samhub/samhub/adapters/medcom/oioxml"
	"github.com/samhub/samhub/pipeline/council"
	"github.com/samhub/samhub/pipeline/letter"
)

// Letters stored by earlier versions kept in Meta, under four naming
// styles, what are typed fields and prefixed snake_case keys now (the
// writing packages' constants). They
// still decode to the present shape (letter.Unmarshal, with which the
// letter stream, the retry queue and replays are read).
func TestLettersStoredBeforeDecodeToThePresentShape(t *testing.T) {
	cases := []struct {
		name, stored string
		check        func(t *testing.T, l *letter.Letter)
	}{{
		name: "case system",
		stored: `{"id":"casesys:casesys:D1","kind":"recommendation","format":"casesys","source":"casesys","received":"2026-11-23T12:00:00Z",
			"sender":{"role":"municipality"},"original":{"contentType":"text/plain"},
			"meta":{"casesys.caseId":"C7","casesys.documentId":"D1","contactEmail":"sagsbehandler@kommune.example"}}`,
		check: func(t *testing.T, l *letter.Letter) {
			if l.ContactEmail != "sagsbehandler@kommune.example" || l.SourceDocumentID != "D1" {
				t.Errorf("contact %q, document %q", l.ContactEmail, l.SourceDocumentID)
			}
			want(t, l.Meta, map[string]string{casesys.MetaCaseID: "C7"})
		},
	}, {
		name: "FHIR message",
		stored: `{"id":"m1","kind":"referral","format":"fhir-carecommunication","source":"medcom","received":"2026-11-23T12:00:00Z","sender":{},"original":{"contentType":"application/fhir+xml"},
			"meta":{"bundleId":"b1","encoding":"xml","event":"care-communication-message","patientNameAbsent":"masked","vansEnvelopeId":"v1","medcom_episode_of_care_id":"e1"}}`,
		check: func(t *testing.T, l *letter.Letter) {
			want(t, l.Meta, map[string]string{fhirmsg.MetaBundleID: "b1", fhirmsg.MetaEncoding: "xml", fhirmsg.MetaEvent: "care-communication-message",
				fhirmsg.MetaPatientNameAbsent: "masked", fhirmsg.MetaVANSEnvelopeID: "v1", fhirmsg.MetaEpisodeOfCareID: "e1"})
		},
	}, {
		name: "e-mail",
		stored: `{"id":"e1","kind":"note","format":"email","source":"imap","received":"2026-11-23T12:00:00Z","sender":{},"original":{"contentType":"message/rfc822"},
			"meta":{"message-id":"<a@b>","in-reply-to":"<c@d>"}}`,
		check: func(t *testing.T, l *letter.Letter) {
			want(t, l.Meta, map[string]string{email.MetaMessageID: "<a@b>", email.MetaInReplyTo: "<c@d>"})
		},
	}, {
		name: "anonymised copy",
		stored: `{"id":"x1","kind":"note","format":"xdis91","source":"medcom","received":"2026-11-23T12:00:00Z","sender":{},"original":{"contentType":"text/plain"},
			"meta":{"anonymised":"true","medcom_envelope_id":"E1"}}`,
		check: func(t *testing.T, l *letter.Letter) {
			if !l.Anonymised {
				t.Error("not anonymised")
			}
			want(t, l.Meta, map[string]string{oioxml.MetaEnvelopeID: "E1"})
		},
	}, {
		name: "EPJ",
		stored: `{"id":"epj1","kind":"note","format":"fhir-r4","source":"epj","received":"2026-11-23T12:00:00Z","sender":{},"original":{"contentType":"application/fhir+json"},
			"meta":{"fhir_resource":"Communication/1","fhir_version":"2","attachments_by_url":"1"}}`,
		check: func(t *testing.T, l *letter.Letter) {
			want(t, l.Meta, map[string]string{epj.MetaFHIRResource: "Communication/1", epj.MetaFHIRVersion: "2", epj.MetaAttachmentsByURL: "1"})
		},
	}, {
		name: "council receipt",
		stored: `{"id":"k1","kind":"reply","format":"text","source":"council","received":"2026-11-23T12:00:00Z","sender":{},"original":{"contentType":"text/plain"},
			"meta":{"council.meeting":"m1","council.referral":"r1"}}`,
		check: func(t *testing.T, l *letter.Letter) {
			want(t, l.Meta, map[string]string{council.MetaMeeting: "m1", council.MetaReferral: "r1"})
		},
	}, {
		// A hub notice's "event" is the notice's own, not a FHIR message's.
		name: "notice",
		stored: `{"id":"n1","kind":"notification","format":"notice","source":"hub","received":"2026-11-23T12:00:00Z","sender":{},"original":{"contentType":""},
			"meta":{"event":"parked","letterId":"L1"}}`,
		check: func(t *testing.T, l *letter.Letter) {
			want(t, l.Meta, map[string]string{"event": "parked", "letterId": "L1"})
		},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l, err := letter.Unmarshal([]byte(c.stored))
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, l)
			// And the upgraded letter goes round unchanged.
			b, err := letter.Marshal(l)
			if err != nil {
				t.Fatal(err)
			}
			again, err := letter.Unmarshal(b)
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, again)
		})
	}
}

// A letter written by this version keeps its fields and keys; an old key
// never overwrites the typed field or the present key.
func TestPresentFieldsWinOverOldKeys(t *testing.T) {
	in := &letter.Letter{ID: "casesys:casesys:D2", Kind: letter.KindRecommendation, Format: "casesys", Source: "casesys",
		ContactEmail: "ny@kommune.example", SourceDocumentID: "D2",
		Meta: map[string]string{casesys.MetaCaseID: "C8", "contactEmail": "gammel@kommune.example", "casesys.caseId": "C0"}}
	b, err := letter.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	l, err := letter.Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if l.ContactEmail != "ny@kommune.example" || l.SourceDocumentID != "D2" {
		t.Errorf("contact %q, document %q", l.ContactEmail, l.SourceDocumentID)
	}
	want(t, l.Meta, map[string]string{casesys.MetaCaseID: "C8"})
}

func want(t *testing.T, got, want map[string]string) {
	t.Helper()
	if !maps.Equal(got, want) {
		t.Errorf("meta %v, want %v", got, want)
	}
}
