package app_test

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/samhub/samhub/adapters/adaptertest"
	"github.com/samhub/samhub/internal/hubtest"
	epjsim "github.com/samhub/samhub/internal/sim/epj"
	"github.com/samhub/samhub/pipeline/letter"
)

// TestSinksConform runs the shared sink conformance checks against every
// real sink the hub builds: case system, MedCom out folder, EPJ and SMTP.
func TestSinksConform(t *testing.T) {
	h := hubtest.Start(t, hubtest.WithMail())
	if _, err := h.EPJ.SeedPatient(epjsim.Patient{CPR: "2509479989", GivenName: "Bruno Test", FamilyName: "Elmer"}); err != nil {
		t.Fatal(err)
	}
	original, err := os.ReadFile("../../testdata/medcom/samhub/letter-utf8.xml")
	if err != nil {
		t.Fatal(err)
	}
	// What the pipeline resolves for each destination (letter.To).
	to := map[string][]letter.Party{
		"gp":      {{Role: "gp", Name: "Lægehuset Test", GLN: "5790000000005", SOR: "543210987654321"}},
		"region":  {{Role: "region", Name: "BUP Test", SOR: "6071000016008"}},
		"parents": {{Role: "parents", Email: hubtest.ParentsEmail}},
	}
	for _, dest := range []string{"casefile", "gp", "region", "parents"} {
		t.Run(dest, func(t *testing.T) {
			sink := h.App.Hub.Sink(dest)
			if sink == nil {
				t.Fatalf("no sink for %s", dest)
			}
			adaptertest.Sink(t, sink, func(n int) *letter.Letter {
				return &letter.Letter{
					ID: fmt.Sprintf("conformance:%s:%d", dest, n), Kind: letter.KindRecommendation, Format: "test", Source: "conformance",
					Received: time.Now(), Subject: "Anbefaling", Text: "Samrådet anbefaler et forløb hos PPR. Testtekst.",
					Sender:    letter.Party{Role: "municipality", Name: "Samrådet", GLN: "5790001382445", SOR: "1144561000016002"},
					Receivers: []letter.Party{{Role: "gp", Name: "Lægehuset Test", GLN: "5790000000005"}, {Role: "parents", Email: hubtest.ParentsEmail}},
					To:        to[dest],
					Patient:   &letter.Patient{CPR: "2509479989", GivenName: "Bruno Test", FamilyName: "Elmer"},
					Consent:   &letter.Consent{GivenBy: "custody-holder", Form: "written", GivenAt: time.Now(), Scopes: letter.Scopes},
					Original:  letter.Original{Data: original, ContentType: "application/xml", Charset: "utf-8"},
				}
			})
		})
	}
}
