package letter

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// Unmarshal decodes with the faster JSON package; what encoding/json read
// before (and upgrade brought up to date), it must read alike: letters as
// Marshal writes them, and JSON written by other hands (names in another
// case, invalid UTF-8, a name twice, unknown fields, nulls).
func TestUnmarshalReadsAsEncodingJSON(t *testing.T) {
	at := time.Date(2026, 11, 23, 12, 0, 0, 123456789, time.FixedZone("CET", 3600))
	full := &Letter{ID: "medcom:5790000000005:L1", Kind: KindReferral, Format: "xdis91", Source: "medcom", ThreadID: "T1", InReplyTo: "X",
		Received: at, Sent: at.Add(-time.Hour),
		Sender:    Party{Role: "gp", Name: "Lægerne Ærø", GLN: "5790000000005", SOR: "12345", Accepts: []string{"fhir-xml", "xdis91"}},
		Receivers: []Party{{Role: "municipality", Email: "a@b.example"}}, To: []Party{{Role: "region", SOR: "999"}},
		Patient:  &Patient{CPR: "2509479989", GivenName: "Bruno Test", FamilyName: "Elmer"},
		Consent:  &Consent{GivenBy: "custody-holder", Form: "written", GivenAt: at, Scopes: []Scope{ScopeGP, ScopeParents}, YoungPersonRefused: true, WithdrawnAt: at.Add(time.Hour)},
		Category: "regarding-referral", Subject: "Henvisning", Text: "Linje 1\nLinje 2 \"citat\" <tag> & æøå \u2028",
		Attachments:  []Attachment{{Name: "a.pdf", ContentType: "application/pdf", Data: []byte{0, 1, 2, 255}, SHA256: "ab", Size: 4}, {Name: "b", ContentType: "text/plain", Ref: "sha256-x", Size: 1 << 30}},
		Original:     Original{Data: []byte("<Emessage>…</Emessage>"), ContentType: "application/xml", Charset: "iso-8859-1", Filename: "f.xml", SHA256: "cd"},
		ContactEmail: "c@d.example", SourceDocumentID: "D1", Anonymised: true,
		Meta: map[string]string{"medcom_episode_of_care_id": "E1", "contactEmail": "old@e.example"},
	}
	marshalled, err := Marshal(full)
	if err != nil {
		t.Fatal(err)
	}
	inputs := map[string]string{
		"as Marshal writes it":  string(marshalled),
		"empty":                 `{}`,
		"names in another case": `{"ID":"x","KIND":"note","Received":"2026-11-23T12:00:00Z","Sender":{"GLN":"1"},"ORIGINAL":{"ContentType":"text/plain","DATA":"AAE="}}`,
		"invalid UTF-8":         "{\"id\":\"x\",\"text\":\"a\xffb\",\"original\":{}}",
		"a name twice":          `{"id":"first","id":"second","original":{}}`,
		"unknown fields, nulls": `{"id":"x","future":{"a":[1,2]},"patient":null,"consent":null,"attachments":null,"meta":null,"original":{"data":null}}`,
		"old Meta keys":         `{"id":"x","kind":"note","meta":{"casesys.documentId":"D9","contactEmail":"z@y.example","message-id":"<m@x>"},"original":{}}`,
	}
	for name, in := range inputs {
		t.Run(name, func(t *testing.T) {
			var want Letter
			if err := json.Unmarshal([]byte(in), &want); err != nil {
				t.Fatal(err)
			}
			want.upgrade()
			got, err := Unmarshal([]byte(in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, &want) {
				t.Errorf("decoded differently:\n got  %+v\n want %+v", got, &want)
			}
		})
	}
}
