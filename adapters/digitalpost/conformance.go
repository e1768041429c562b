//go:build !release

package digitalpost

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/adapters/adaptertest"
	digitalpostsim "github.com/samhub/samhub/internal/sim/digitalpost"
	"github.com/samhub/samhub/internal/testpki"
	"github.com/samhub/samhub/pipeline/letter"
)

// The conformance harness: the SF1601 simulator over HTTPS, wanting the
// hub's client certificate as Serviceplatformen wants the function
// certificate. A sink's object is a stored message whose document carries
// the letter's id; every harness letter goes to one custody holder.
func init() { adaptertest.Register(TypeName, newHarness) }

const (
	harnessCPR = "1509819996" // Brita Test Berggren, a custody holder
	harnessCVR = "29189846"
)

type harness struct {
	sim   *digitalpostsim.Server
	block map[string]any
}

func newHarness(t *testing.T, _ *adaptertest.Env) adaptertest.Harness {
	dir := t.TempDir()
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
	files := map[string][]byte{"ca.pem": ca.PEM, "cert.pem": fn.CertPEM, "key.pem": fn.KeyPEM}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	sim, err := digitalpostsim.New(digitalpostsim.Config{DataDir: filepath.Join(dir, "sim"), ClientID: "hub", ClientSecret: "s3cret",
		TLS: &tls.Config{Certificates: []tls.Certificate{srv.TLS}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool}})
	if err != nil {
		t.Fatal(err)
	}
	base, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	return &harness{sim: sim, block: map[string]any{
		"url": base, "client_id": "hub", "client_secret": "s3cret", "timeout": "5s",
		"tls":    map[string]any{"ca_file": filepath.Join(dir, "ca.pem"), "cert_file": filepath.Join(dir, "cert.pem"), "key_file": filepath.Join(dir, "key.pem")},
		"sender": map[string]any{"cvr": harnessCVR, "name": "Samrådet for Børn og Unge"},
	}}
}

func (h *harness) Block() map[string]any { return h.block }

func (h *harness) Letter(n int) *letter.Letter {
	id := fmt.Sprintf("conformance:digitalpost:%d:%d", time.Now().UnixNano(), n)
	parent := letter.Party{Role: letter.RoleParents, Name: "Brita Test Berggren", CPR: harnessCPR}
	orig := []byte(`{"documentId":"conformance"}`)
	return &letter.Letter{
		ID: id, Kind: letter.KindRecommendation, Format: "casesys", Source: "casesys", Received: time.Now().UTC(),
		Sender:    letter.Party{Role: letter.RoleMunicipality, Name: "Samrådet for Børn og Unge"},
		Receivers: []letter.Party{parent}, To: []letter.Party{parent},
		Patient: &letter.Patient{CPR: "2509479989", GivenName: "Bruno Test", FamilyName: "Elmer"},
		Consent: &letter.Consent{GivenBy: "custody-holder", Form: "written", GivenAt: time.Now().Add(-time.Hour), Scopes: letter.Scopes},
		Subject: "Samrådets anbefaling", Text: "Samrådet anbefaler et forløb hos PPR. (" + id + ")",
		Original: letter.Original{Data: orig, ContentType: "application/json", SHA256: letter.Digest(orig)},
	}
}

// Stored counts the messages whose letter text carries the letter's id:
// the main document, or beside a PDF sent as the main document, an
// additional one.
func (h *harness) Stored(_ testing.TB, l *letter.Letter) int {
	n := 0
	for _, m := range h.sim.Messages() {
		if strings.Contains(h.sim.Text(m), l.ID) || slices.ContainsFunc(m.Additional, func(doc []digitalpostsim.File) bool {
			return slices.ContainsFunc(doc, func(f digitalpostsim.File) bool {
				b, err := h.sim.FileData(f.SHA256)
				return err == nil && strings.HasPrefix(f.EncodingFormat, "text/") && strings.Contains(string(b), l.ID)
			})
		}) {
			n++
		}
	}
	return n
}

func (h *harness) LoseNextReply(testing.TB) { h.sim.DropNext(1) }

func (h *harness) Faults() []adaptertest.Fault {
	fail := func(status int, after time.Duration) func(testing.TB, *letter.Letter) (*letter.Letter, func()) {
		return func(_ testing.TB, l *letter.Letter) (*letter.Letter, func()) {
			h.sim.FailNext(1, status, after)
			return l, h.sim.ResetFaults
		}
	}
	return []adaptertest.Fault{
		{Name: "unavailable-503", Class: adapters.ClassRetryable, Arm: fail(503, time.Second)},
		{Name: "server-error-500", Class: adapters.ClassRetryable, Arm: fail(500, 0)},
		{Name: "throttled-429", Class: adapters.ClassRetryable, Arm: fail(429, time.Second)},
		{Name: "slow-beyond-the-timeout", Class: adapters.ClassRetryable, Arm: func(_ testing.TB, l *letter.Letter) (*letter.Letter, func()) {
			h.sim.SetDelay(7 * time.Second) // the block's timeout is 5s
			return l, func() { h.sim.SetDelay(0) }
		}},
		{Name: "refused-400", Class: adapters.ClassPermanent, Arm: func(_ testing.TB, l *letter.Letter) (*letter.Letter, func()) {
			h.sim.RefuseNext(1, digitalpostsim.InvalidRequest, 400)
			return l, h.sim.ResetFaults
		}},
		{Name: "custody-holder-exempt", Class: adapters.ClassPermanent, Arm: func(_ testing.TB, l *letter.Letter) (*letter.Letter, func()) {
			h.sim.SetExempt(harnessCPR, true)
			return l, func() { h.sim.SetExempt(harnessCPR, false) }
		}},
		{Name: "no-consent-for-the-parents", Class: adapters.ClassPermanent, Arm: func(_ testing.TB, l *letter.Letter) (*letter.Letter, func()) {
			c := *l
			c.Consent = &letter.Consent{GivenBy: "custody-holder", GivenAt: time.Now().Add(-time.Hour), Scopes: []letter.Scope{letter.ScopeGP}}
			return &c, func() {}
		}},
	}
}
