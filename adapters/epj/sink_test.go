package epj_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/adapters/epj"
	epjsim "github.com/samhub/samhub/internal/sim/epj"
	"github.com/samhub/samhub/pipeline/letter"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/epj")

const goldenDir = "../../testdata/epj"

func TestDeliverCreatesCommunication(t *testing.T) {
	e := newEnv(t, 0)
	pid := e.seedPatient(epjsim.Patient{CPR: cprBruno, GivenName: "Bruno Test", FamilyName: "Elmer"})
	a := e.adapter(nil)
	l := recommendation("rec-0001")

	d, err := a.Deliver(context.Background(), l)
	if err != nil {
		t.Fatal(err)
	}
	if d.RemoteID == "" || d.Existing {
		t.Fatalf("delivery %+v: want a remote id, not existing", d)
	}
	stored := e.sim.CommunicationsFor(l.ID)
	if len(stored) != 1 {
		t.Fatalf("stored %d Communications, want 1", len(stored))
	}
	var got map[string]any
	if err := json.Unmarshal(stored[0], &got); err != nil {
		t.Fatal(err)
	}
	if got["id"] != d.RemoteID {
		t.Fatalf("RemoteID %q, stored id %v", d.RemoteID, got["id"])
	}
	if subj := got["subject"].(map[string]any)["reference"]; subj != "Patient/"+pid {
		t.Fatalf("subject %v, want Patient/%s", subj, pid)
	}
	// The whole resource minus what the server assigns is pinned by a golden file.
	delete(got, "id")
	delete(got, "meta")
	compareGolden(t, "communication.golden.json", got)

	// The original bytes and attachment survive base64 exactly.
	var c struct {
		Payload []struct {
			ContentString     string `json:"contentString"`
			ContentAttachment *struct {
				Title string `json:"title"`
				Data  []byte `json:"data"`
			} `json:"contentAttachment"`
		} `json:"payload"`
	}
	json.Unmarshal(stored[0], &c)
	if len(c.Payload) != 3 || c.Payload[0].ContentString != l.Text ||
		!bytes.Equal(c.Payload[1].ContentAttachment.Data, l.Attachments[0].Data) ||
		!bytes.Equal(c.Payload[2].ContentAttachment.Data, l.Original.Data) {
		t.Fatalf("payload does not carry text, attachment and original: %+v", c.Payload)
	}
}

func compareGolden(t *testing.T, name string, v any) {
	t.Helper()
	got, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(goldenDir, name)
	if *update {
		if err := os.WriteFile(path, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(bytes.TrimSpace(got), bytes.TrimSpace(want)) {
		t.Fatalf("%s differs from what was sent:\n%s", path, got)
	}
}

func TestDeliverReplayFindsEarlierDelivery(t *testing.T) {
	e := newEnv(t, 0)
	e.seedPatient(epjsim.Patient{CPR: cprBruno, FamilyName: "Elmer"})
	a := e.adapter(nil)
	l := recommendation("rec-replay")
	first, err := a.Deliver(context.Background(), l)
	if err != nil {
		t.Fatal(err)
	}
	// A second adapter instance, as after a hub restart.
	second, err := e.adapter(nil).Deliver(context.Background(), l)
	if err != nil {
		t.Fatal(err)
	}
	if !second.Existing || second.RemoteID != first.RemoteID || first.Existing {
		t.Fatalf("first %+v, second %+v: want the second Existing with the same id", first, second)
	}
	if n := len(e.sim.CommunicationsFor(l.ID)); n != 1 {
		t.Fatalf("stored %d Communications, want 1", n)
	}
}

func TestDeliverAmbiguousDuplicateIsPermanent(t *testing.T) {
	e := newEnv(t, 0)
	e.seedPatient(epjsim.Patient{CPR: cprBruno, FamilyName: "Elmer"})
	l := recommendation("rec-ambiguous")
	if err := e.sim.MakeAmbiguous(l.ID); err != nil {
		t.Fatal(err)
	}
	_, err := e.adapter(nil).Deliver(context.Background(), l)
	classified(t, err, adapters.ClassPermanent, "ambiguous_duplicate")
	if n := len(e.sim.CommunicationsFor(l.ID)); n != 2 {
		t.Fatalf("stored %d Communications, want the 2 that were there", n)
	}
}

// Two attempts to deliver one letter at once (two replicas, or a resend
// while the first is still in flight) race on the gateway: HAPI FHIR
// answers the loser 409. That is retryable, and the retry's conditional
// create finds the winner's copy: one Communication, no second.
func TestDeliverRacingCreatesMakeOneCopy(t *testing.T) {
	e := newEnv(t, 0)
	e.seedPatient(epjsim.Patient{CPR: cprBruno, FamilyName: "Elmer"})
	l := recommendation("rec-race")
	e.sim.RaceNextCreates(2)
	type result struct {
		d   adapters.Delivery
		err error
	}
	results := make(chan result, 2)
	for range 2 {
		a := e.adapter(nil) // one per replica
		go func() {
			d, err := a.Deliver(context.Background(), l)
			results <- result{d, err}
		}()
	}
	var won, lost []result
	for range 2 {
		r := <-results
		if r.err == nil {
			won = append(won, r)
		} else {
			lost = append(lost, r)
		}
	}
	if len(won) != 1 || len(lost) != 1 {
		t.Fatalf("racing deliveries: %d delivered, %d failed (%v), want one each", len(won), len(lost), lost)
	}
	ae := classified(t, lost[0].err, adapters.ClassRetryable, "http_409")
	if !strings.Contains(ae.Reason, "HTTP 409") {
		t.Fatalf("reason %q does not name the answer", ae.Reason)
	}
	// The pipeline tries the loser again.
	d, err := e.adapter(nil).Deliver(context.Background(), l)
	if err != nil || !d.Existing || d.RemoteID != won[0].d.RemoteID {
		t.Fatalf("retry: %+v %v, want Existing with the winner's id %s", d, err, won[0].d.RemoteID)
	}
	if n := len(e.sim.CommunicationsFor(l.ID)); n != 1 {
		t.Fatalf("stored %d Communications, want 1", n)
	}
	if dup := e.sim.Duplicates(); len(dup) != 0 {
		t.Fatalf("duplicates %v", dup)
	}
}

func TestDeliverErrorClasses(t *testing.T) {
	type tc struct {
		name   string
		setup  func(e *env, l *letter.Letter)
		mod    func(*epj.Config)
		class  adapters.Class
		code   string
		after  time.Duration
		stored int // Communications for the letter afterwards
	}
	bruno := func(e *env, _ *letter.Letter) { e.seedPatient(epjsim.Patient{CPR: cprBruno, FamilyName: "Elmer"}) }
	fail := func(status int, after time.Duration) func(*env, *letter.Letter) {
		return func(e *env, l *letter.Letter) { bruno(e, l); e.sim.FailNextOn("/Communication", 1, status, after) }
	}
	failSearch := func(status int, after time.Duration) func(*env, *letter.Letter) {
		return func(e *env, l *letter.Letter) { bruno(e, l); e.sim.FailNextOn("/Patient/_search", 1, status, after) }
	}
	cases := []tc{
		{name: "503 with Retry-After", setup: fail(503, 7*time.Second), class: adapters.ClassRetryable, code: "http_503", after: 7 * time.Second},
		{name: "429 with Retry-After", setup: fail(429, 2*time.Second), class: adapters.ClassRetryable, code: "http_429", after: 2 * time.Second},
		{name: "503 on the patient search", setup: failSearch(503, 4*time.Second), class: adapters.ClassRetryable, code: "http_503", after: 4 * time.Second},
		{name: "403 on the patient search", setup: failSearch(403, 0), class: adapters.ClassPermanent, code: "http_403"},
		{name: "500", setup: fail(500, 0), class: adapters.ClassRetryable, code: "http_500"},
		{name: "502", setup: fail(502, 0), class: adapters.ClassRetryable, code: "http_502"},
		{name: "400", setup: fail(400, 0), class: adapters.ClassPermanent, code: "http_400"},
		{name: "403", setup: fail(403, 0), class: adapters.ClassPermanent, code: "http_403"},
		{name: "404", setup: fail(404, 0), class: adapters.ClassPermanent, code: "http_404"},
		{name: "409", setup: fail(409, 0), class: adapters.ClassRetryable, code: "http_409"},
		{name: "409 on the patient search", setup: failSearch(409, 0), class: adapters.ClassPermanent, code: "http_409"},
		{name: "412", setup: fail(412, 0), class: adapters.ClassPermanent, code: "ambiguous_duplicate"},
		{name: "307 redirect", setup: fail(307, 0), class: adapters.ClassRetryable, code: "redirected"},
		{name: "422", setup: fail(422, 0), class: adapters.ClassPermanent, code: "http_422"},
		{
			name: "timeout",
			setup: func(e *env, l *letter.Letter) {
				bruno(e, l)
				e.sim.SetDelay(5 * time.Second)
			},
			mod:   func(c *epj.Config) { c.Timeout = 100 * time.Millisecond },
			class: adapters.ClassRetryable, code: "timeout",
		},
		{
			name:  "gateway down",
			setup: func(e *env, _ *letter.Letter) { e.sim.Close() },
			class: adapters.ClassRetryable, code: "token_unreachable",
		},
		{
			name: "malformed CPR echoed in diagnostics",
			setup: func(e *env, l *letter.Letter) {
				l.Patient.CPR = "2509479989" + "1" // eleven digits; the simulator echoes it back
			},
			class: adapters.ClassPermanent, code: "http_400",
		},
		{
			name:  "unknown patient",
			setup: func(e *env, l *letter.Letter) { l.Patient = &letter.Patient{CPR: cprBrita} },
			class: adapters.ClassPermanent, code: "patient_unknown",
		},
		{
			name: "ambiguous patient",
			setup: func(e *env, l *letter.Letter) {
				e.seedPatient(epjsim.Patient{CPR: cprNancy, FamilyName: "Berggren"})
				e.seedPatient(epjsim.Patient{CPR: cprNancy, FamilyName: "Berggren"})
				l.Patient = &letter.Patient{CPR: cprNancy}
			},
			class: adapters.ClassPermanent, code: "patient_ambiguous",
		},
		{
			name:  "no patient",
			setup: func(e *env, l *letter.Letter) { l.Patient = nil },
			class: adapters.ClassPermanent, code: "no_patient",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, 0)
			l := recommendation("rec-" + c.name)
			c.setup(e, l)
			_, err := e.adapter(c.mod).Deliver(context.Background(), l)
			ae := classified(t, err, c.class, c.code)
			if got := adapters.RetryAfterOf(err); got != c.after {
				t.Fatalf("RetryAfter %v, want %v", got, c.after)
			}
			if c.code == "http_400" && ae.Reason == "" {
				t.Fatal("no reason")
			}
			if n := len(e.sim.CommunicationsFor(l.ID)); n != c.stored {
				t.Fatalf("stored %d Communications, want %d", n, c.stored)
			}
		})
	}
}

func TestDeliverRecoversAfterTransientFailure(t *testing.T) {
	e := newEnv(t, 0)
	e.seedPatient(epjsim.Patient{CPR: cprBruno, FamilyName: "Elmer"})
	a := e.adapter(nil)
	l := recommendation("rec-transient")
	e.sim.FailNext(1, http.StatusServiceUnavailable, time.Second)
	if _, err := a.Deliver(context.Background(), l); err == nil {
		t.Fatal("want the 503 to surface")
	}
	d, err := a.Deliver(context.Background(), l)
	if err != nil || d.Existing {
		t.Fatalf("retry: %+v %v, want a fresh create", d, err)
	}
}

func TestResponseDroppedAfterSaveThenRetry(t *testing.T) {
	e := newEnv(t, 0)
	e.seedPatient(epjsim.Patient{CPR: cprBruno, FamilyName: "Elmer"})
	a := e.adapter(nil)
	l := recommendation("rec-dropped")
	e.sim.DropNext(1)
	_, err := a.Deliver(context.Background(), l)
	classified(t, err, adapters.ClassRetryable, "network")
	if n := len(e.sim.CommunicationsFor(l.ID)); n != 1 {
		t.Fatalf("after the dropped answer %d Communications, want 1 (it was saved)", n)
	}
	d, err := a.Deliver(context.Background(), l)
	if err != nil || !d.Existing {
		t.Fatalf("retry: %+v %v, want Existing", d, err)
	}
	if n := len(e.sim.CommunicationsFor(l.ID)); n != 1 {
		t.Fatalf("after the retry %d Communications, want 1", n)
	}
}

func TestTokenExpiryRefreshesOnce(t *testing.T) {
	e := newEnv(t, time.Second)
	e.seedPatient(epjsim.Patient{CPR: cprBruno, FamilyName: "Elmer"})
	a := e.adapter(nil)
	if _, err := a.Deliver(context.Background(), recommendation("rec-tok-1")); err != nil {
		t.Fatal(err)
	}
	if n := e.sim.TokensIssued(); n != 1 {
		t.Fatalf("%d tokens issued, want 1", n)
	}
	// The adapter's clock stands still, so it still trusts its token; the
	// gateway's has moved past the one-second lifetime and answers 401.
	time.Sleep(1100 * time.Millisecond)
	if _, err := a.Deliver(context.Background(), recommendation("rec-tok-2")); err != nil {
		t.Fatal(err)
	}
	if n := e.sim.TokensIssued(); n != 2 {
		t.Fatalf("%d tokens issued, want 2 (refreshed once)", n)
	}
	if n := count401(e.sim.Requests()); n != 1 {
		t.Fatalf("%d answers were 401, want 1", n)
	}

	// When the adapter's own clock says the token is due, it fetches a new
	// one before sending: no 401 at all.
	e.clock.Add(time.Hour)
	if _, err := a.Deliver(context.Background(), recommendation("rec-tok-3")); err != nil {
		t.Fatal(err)
	}
	if n, m := e.sim.TokensIssued(), count401(e.sim.Requests()); n != 3 || m != 1 {
		t.Fatalf("tokens %d, 401s %d; want 3 and 1", n, m)
	}

	// Tokens refused outright: one refresh, then a retryable error (no loop)
	// whose reason names the gateway's Bearer error code.
	e.sim.RejectTokens(true)
	_, err := a.Deliver(context.Background(), recommendation("rec-tok-4"))
	if ae := classified(t, err, adapters.ClassRetryable, "auth_rejected"); !strings.Contains(ae.Reason, "newly issued (HTTP 401, invalid_token)") {
		t.Fatalf("reason %q does not name the cause", ae.Reason)
	}
	if n := e.sim.TokensIssued(); n != 4 {
		t.Fatalf("%d tokens issued, want 4 (one refresh for the refused token)", n)
	}
}

func count401(reqs []epjsim.Request) int {
	n := 0
	for _, r := range reqs {
		if r.Status == http.StatusUnauthorized {
			n++
		}
	}
	return n
}

func TestWrongClientSecretIsRetryableAuthError(t *testing.T) {
	e := newEnv(t, 0)
	e.seedPatient(epjsim.Patient{CPR: cprBruno, FamilyName: "Elmer"})
	a := e.adapter(func(c *epj.Config) { c.ClientSecret = "wrong" })
	_, err := a.Deliver(context.Background(), recommendation("rec-wrong-secret"))
	// auth_failed, as for the case system and Digital Post: the token
	// service refused the client, not the gateway a token.
	classified(t, err, adapters.ClassRetryable, "auth_failed")
}

func TestConsentRefusedBeforeAnyRequest(t *testing.T) {
	now := time.Now()
	cases := map[string]*letter.Consent{
		"no consent":       nil,
		"no region scope":  {GivenBy: "custody-holder", Scopes: []letter.Scope{letter.ScopeMunicipality, letter.ScopeGP}},
		"withdrawn":        {GivenBy: "custody-holder", Scopes: []letter.Scope{letter.ScopeRegionPsychiatry}, WithdrawnAt: now.Add(-time.Minute)},
		"young person":     {GivenBy: "custody-holder", Scopes: []letter.Scope{letter.ScopeRegionPsychiatry}, YoungPersonRefused: true},
		"empty scope list": {GivenBy: "custody-holder"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, 0)
			e.seedPatient(epjsim.Patient{CPR: cprBruno, FamilyName: "Elmer"})
			l := recommendation("rec-consent")
			l.Consent = c
			_, err := e.adapter(nil).Deliver(context.Background(), l)
			ae := classified(t, err, adapters.ClassPermanent, "no_consent")
			if ae.Reason != "consent does not cover region psychiatry" {
				t.Fatalf("reason %q", ae.Reason)
			}
			if reqs := e.sim.Requests(); len(reqs) != 0 {
				t.Fatalf("the simulator saw %d requests, want none: %v", len(reqs), reqs)
			}
		})
	}
}

func TestDeliverReplacementCPR(t *testing.T) {
	e := newEnv(t, 0)
	pid := e.seedPatient(epjsim.Patient{ReplacementID: xecprTest, FamilyName: "Berggren"})
	l := recommendation("rec-xecpr")
	l.Patient = &letter.Patient{ReplacementID: xecprTest}
	if _, err := e.adapter(nil).Deliver(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	var c struct {
		Subject struct{ Reference string } `json:"subject"`
	}
	json.Unmarshal(e.sim.CommunicationsFor(l.ID)[0], &c)
	if c.Subject.Reference != "Patient/"+pid {
		t.Fatalf("subject %q", c.Subject.Reference)
	}
}

// BenchmarkDeliver measures one delivery (patient search + conditional
// create) against the simulator over loopback.
func BenchmarkDeliver(b *testing.B) {
	dir := b.TempDir()
	s, err := epjsim.New(epjsim.Config{DataDir: dir, ClientID: clientID, ClientSecret: secret})
	if err != nil {
		b.Fatal(err)
	}
	base, err := s.Start("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if _, err := s.SeedPatient(epjsim.Patient{CPR: cprBruno, FamilyName: "Elmer"}); err != nil {
		b.Fatal(err)
	}
	cfg := adapters.Defaults[epj.Config]()
	cfg.URL, cfg.ClientID, cfg.ClientSecret = base, clientID, secret
	cfg.Self, cfg.Recipient = epj.Party{SOR: sorMuni}, sorRegion
	a, err := epj.New(adapters.Deps{Name: "bench"}, cfg)
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; b.Loop(); i++ {
		if _, err := a.Deliver(context.Background(), recommendation(fmt.Sprintf("bench-%d", i))); err != nil {
			b.Fatal(err)
		}
	}
}

// The Communication names the department the pipeline resolved (the one
// the document names), not the configured default.
func TestDeliverAddressesTheResolvedDepartment(t *testing.T) {
	e := newEnv(t, 0)
	e.seedPatient(epjsim.Patient{CPR: cprBruno, GivenName: "Bruno Test", FamilyName: "Elmer"})
	a := e.adapter(nil)
	l := recommendation("rec-to-dept")
	l.To = []letter.Party{{Role: "region", SOR: "999888777", Name: "BUP Aalborg"}}
	if _, err := a.Deliver(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	stored := e.sim.CommunicationsFor(l.ID)
	if len(stored) != 1 {
		t.Fatalf("stored %d Communications", len(stored))
	}
	var c struct {
		Recipient []struct {
			Identifier struct{ Value string } `json:"identifier"`
		} `json:"recipient"`
	}
	if err := json.Unmarshal(stored[0], &c); err != nil {
		t.Fatal(err)
	}
	if len(c.Recipient) != 1 || c.Recipient[0].Identifier.Value != "999888777" {
		t.Fatalf("recipient %+v, want SOR 999888777", c.Recipient)
	}
}

// A department the Communication cannot name (a GLN only), or more than
// one, is refused before anything reaches the region: sending it to the
// configured department instead would file the letter with another party
// than the one the pipeline resolved.
func TestDeliverRefusesAnAddresseeItCannotName(t *testing.T) {
	cases := map[string][]letter.Party{
		"a GLN only":      {{Role: "hospital", GLN: "5790000120400", Name: "Anden afdeling"}},
		"two departments": {{Role: "region", SOR: "999888777"}, {Role: "region", SOR: "999888666"}},
	}
	for name, to := range cases {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, 0)
			e.seedPatient(epjsim.Patient{CPR: cprBruno, FamilyName: "Elmer"})
			l := recommendation("rec-unnamed")
			l.To = to
			_, err := e.adapter(nil).Deliver(context.Background(), l)
			classified(t, err, adapters.ClassPermanent, "receiver_unresolved")
			if reqs := e.sim.Requests(); len(reqs) != 0 {
				t.Fatalf("the simulator saw %d requests, want none: %v", len(reqs), reqs)
			}
		})
	}
}
