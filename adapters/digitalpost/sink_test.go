package digitalpost_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/adapters/adaptertest"
	_ "github.com/samhub/samhub/adapters/digitalpost"
	"github.com/samhub/samhub/internal/logging"
	digitalpostsim "github.com/samhub/samhub/internal/sim/digitalpost"
	"github.com/samhub/samhub/pipeline/letter"
)

// The custody holders: MedCom's fictitious test persons.
var (
	brita = letter.Party{Role: letter.RoleParents, Name: "Brita Test Berggren", CPR: "1509819996"}
	nancy = letter.Party{Role: letter.RoleParents, Name: "Nancy Ann Test Berggren", CPR: "2512489996"}
)

type env struct {
	t     *testing.T
	sim   *digitalpostsim.Server
	base  string
	state *adaptertest.State
	logs  *bytes.Buffer
}

func newEnv(t *testing.T, cfg digitalpostsim.Config) *env {
	t.Helper()
	cfg.DataDir, cfg.ClientID, cfg.ClientSecret = filepath.Join(t.TempDir(), "sim"), "samhub", "s3cret"
	sim, err := digitalpostsim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	base, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	return &env{t: t, sim: sim, base: base, state: adaptertest.NewState(), logs: &bytes.Buffer{}}
}

// sink builds the adapter through the registry, as the hub does; each
// call is a new process over the same state.
func (e *env) sink(extra map[string]any) adapters.Sink {
	e.t.Helper()
	block := map[string]any{"type": "digitalpost", "url": e.base, "client_id": "samhub", "client_secret": "s3cret", "timeout": "5s",
		"sender": map[string]any{"cvr": "29189846", "name": "Odense Kommune"}}
	for k, v := range extra {
		block[k] = v
	}
	inst, err := adapters.BuildInstance("digitalpost", adapters.Deps{Name: "parents", State: e.state, Now: time.Now,
		Logger: slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})), Metrics: prometheus.NewRegistry()}, block)
	if err != nil {
		e.t.Fatal(err)
	}
	return inst.Sink
}

func recommendation(id string, to ...letter.Party) *letter.Letter {
	orig := []byte(`{"documentId":"DOK-000042"}`)
	return &letter.Letter{ID: id, Kind: letter.KindRecommendation, Format: "casesys", Source: "casesys",
		Received: time.Date(2026, 3, 3, 13, 0, 0, 0, time.UTC),
		Patient:  &letter.Patient{CPR: "2509479989", GivenName: "Bruno Test", FamilyName: "Elmer"},
		Consent:  &letter.Consent{GivenBy: "custody-holder", Form: "written", GivenAt: time.Now().Add(-time.Hour), Scopes: []letter.Scope{letter.ScopeParents}},
		Subject:  "Anbefaling vedr. Bruno Test Elmer (ADHD-udredning)", Text: "Samrådet anbefaler en udredning hos børne- og ungdomspsykiatrien.",
		Receivers: to, To: to, Original: letter.Original{Data: orig, ContentType: "application/json"}}
}

// Each custody holder gets one message, by CPR, under the neutral label,
// with the letter's text; delivered again (a restarted hub) it is the
// same messages, counted as repeats, not new letters.
func TestEachCustodyHolderGetsOneMessage(t *testing.T) {
	e := newEnv(t, digitalpostsim.Config{})
	l := recommendation("casesys:casesys:DOK-000042", brita, nancy)
	d, err := e.sink(nil).Deliver(context.Background(), l)
	if err != nil {
		t.Fatal(err)
	}
	msgs := e.sim.Messages()
	if len(msgs) != 2 || d.Existing || len(strings.Fields(d.RemoteID)) != 2 {
		t.Fatalf("delivery %+v, %d messages; want two new messages", d, len(msgs))
	}
	for i, m := range msgs {
		want := l.To[i].CPR
		if m.RecipientCPR != want || m.SenderCVR != "29189846" || m.SenderLabel != "Odense Kommune" || m.Channel != "digitalpost" || m.KombiValgKode != "Digital Post" {
			t.Errorf("message %d: %+v", i, m)
		}
		if m.Label != "Brev fra kommunen" {
			t.Errorf("label %q: want the configured neutral label, never the letter's subject", m.Label)
		}
		if got := e.sim.Text(m); !strings.Contains(got, "udredning hos børne- og ungdomspsykiatrien") || m.MainDocument[0].EncodingFormat != "text/plain" {
			t.Errorf("main document %+v: %q", m.MainDocument, got)
		}
		if !m.Created.Equal(l.Received) {
			t.Errorf("createdDateTime %s, want the letter's %s", m.Created, l.Received)
		}
		if !strings.Contains(d.RemoteID, m.UUID) {
			t.Errorf("the delivery's id %q does not name message %s", d.RemoteID, m.UUID)
		}
	}
	if msgs[0].UUID == msgs[1].UUID {
		t.Fatal("two custody holders share a message UUID")
	}
	again, err := e.sink(nil).Deliver(context.Background(), l)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Existing || again.RemoteID != d.RemoteID {
		t.Errorf("the letter delivered again: %+v, want the earlier messages (%s)", again, d.RemoteID)
	}
	c := e.sim.Counts()
	for _, m := range msgs {
		if got := c.Messages[m.UUID]; got.Stored != 1 || got.Repeats != 1 {
			t.Errorf("message %s counted %+v, want stored once and one repeat", m.UUID, got)
		}
	}
	if len(e.sim.Messages()) != 2 || len(c.Conflicts) != 0 {
		t.Errorf("after a second delivery: %d messages, conflicts %v", len(e.sim.Messages()), c.Conflicts)
	}
	// Another letter to the same holders is another message.
	if _, err := e.sink(nil).Deliver(context.Background(), recommendation("casesys:casesys:DOK-000043", brita)); err != nil {
		t.Fatal(err)
	}
	if n := len(e.sim.MessagesFor(brita.CPR)); n != 2 {
		t.Errorf("Brita has %d messages after two letters, want 2", n)
	}
}

// The recommendation as a PDF is the main document; the text goes beside
// it; the letter's original (the outbox entry) is never sent.
func TestPDFIsTheMainDocument(t *testing.T) {
	e := newEnv(t, digitalpostsim.Config{})
	l := recommendation("casesys:casesys:DOK-000050", brita)
	pdf := []byte("%PDF-1.7\nanbefaling")
	l.Attachments = []letter.Attachment{letter.NewAttachment("anbefaling.pdf", "application/pdf", pdf), letter.NewAttachment("plan.png", "image/png", []byte("\x89PNG\r\n"))}
	if _, err := e.sink(nil).Deliver(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	m := e.sim.Messages()[0]
	if m.MainDocument[0].EncodingFormat != "application/pdf" || m.MainDocument[0].Filename != "anbefaling.pdf" || m.MainDocument[0].Size != len(pdf) {
		t.Errorf("main document %+v", m.MainDocument)
	}
	if len(m.Additional) != 2 || m.Additional[0][0].EncodingFormat != "text/plain" || m.Additional[1][0].EncodingFormat != "image/png" {
		t.Errorf("additional documents %+v", m.Additional)
	}
	for _, doc := range append([][]digitalpostsim.File{m.MainDocument}, m.Additional...) {
		if b, _ := e.sim.FileData(doc[0].SHA256); strings.Contains(string(b), "DOK-000042") {
			t.Errorf("the letter's original reached the citizen")
		}
	}
	l2 := recommendation("casesys:casesys:DOK-000051", brita)
	l2.Attachments = []letter.Attachment{letter.NewAttachment("program.exe", "application/x-msdownload", []byte("MZ"))}
	_, err := e.sink(nil).Deliver(context.Background(), l2)
	if class, reason, code := adapters.Classify(err); class != adapters.ClassPermanent || code != "attachment_type" || strings.Contains(reason, "program.exe") {
		t.Errorf("an attachment Digital Post does not take: %v %s %q", class, code, reason)
	}
	if len(e.sim.Messages()) != 1 {
		t.Error("a letter with a refused attachment reached the service")
	}
}

// One custody holder exempt from Digital Post: the other gets the letter,
// the exempt one is a permanent recipient_exempt in a Partial, and the
// reason counts without naming anyone. Both exempt: no Partial.
func TestExemptCustodyHolder(t *testing.T) {
	e := newEnv(t, digitalpostsim.Config{Exempt: []string{nancy.CPR}})
	l := recommendation("casesys:casesys:DOK-000060", brita, nancy)
	_, err := e.sink(nil).Deliver(context.Background(), l)
	var part *adapters.Partial
	if !errors.As(err, &part) {
		t.Fatalf("want a Partial, got %v", err)
	}
	if len(part.Delivered) != 1 || part.Delivered[0].CPR != brita.CPR || len(part.Failed) != 1 || part.Failed[0].CPR != nancy.CPR {
		t.Errorf("partial %+v", part)
	}
	class, reason, code := adapters.Classify(err)
	if class != adapters.ClassPermanent || code != "recipient_exempt" || !strings.Contains(reason, "1 of 2") || !strings.Contains(reason, "paper") {
		t.Errorf("classified %s %s %q", class, code, reason)
	}
	if logging.ContainsCPR(reason) || strings.Contains(reason, "Nancy") || strings.Contains(reason, "Berggren") {
		t.Errorf("the reason names the custody holder: %q", reason)
	}
	if n := len(e.sim.MessagesFor(nancy.CPR)); n != 0 {
		t.Errorf("the exempt custody holder has %d messages", n)
	}
	// Replayed after the coordinator's paper letter: Brita's is a repeat.
	_, err = e.sink(nil).Deliver(context.Background(), l)
	if !errors.As(err, &part) || len(e.sim.MessagesFor(brita.CPR)) != 1 {
		t.Errorf("replayed: %v, Brita has %d messages", err, len(e.sim.MessagesFor(brita.CPR)))
	}

	e.sim.SetExempt(brita.CPR, true)
	_, err = e.sink(nil).Deliver(context.Background(), recommendation("casesys:casesys:DOK-000061", brita, nancy))
	if errors.As(err, &part) {
		t.Errorf("nobody got it, yet a Partial: %+v", part)
	}
	if _, reason, code := adapters.Classify(err); code != "recipient_exempt" || !strings.Contains(reason, "2 of 2") {
		t.Errorf("both exempt: %s %q", code, reason)
	}
	// A custody holder the case system named without a CPR number.
	_, err = e.sink(nil).Deliver(context.Background(), recommendation("casesys:casesys:DOK-000062", letter.Party{Role: letter.RoleParents, Name: "Forælder uden CPR"}))
	if _, _, code := adapters.Classify(err); code != "no_cpr" {
		t.Errorf("no CPR: %v", err)
	}
	for _, secret := range []string{brita.CPR, nancy.CPR, "Brita", "Nancy", "Bruno", "udredning"} {
		if strings.Contains(e.logs.String(), secret) {
			t.Errorf("the adapter logged %q", secret)
		}
	}
}

// With choice automatic the service prints a PDF letter for an exempt
// custody holder; a letter with no PDF has nothing to print and parks.
func TestAutomaticChoicePrintsForTheExempt(t *testing.T) {
	e := newEnv(t, digitalpostsim.Config{Exempt: []string{nancy.CPR}})
	auto := map[string]any{"choice": "automatic", "print": map[string]any{"forsendelse_type": "4711"}}
	l := recommendation("casesys:casesys:DOK-000070", brita, nancy)
	l.Attachments = []letter.Attachment{letter.NewAttachment("anbefaling.pdf", "application/pdf", []byte("%PDF-1.7\nanbefaling"))}
	if _, err := e.sink(auto).Deliver(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	if m := e.sim.MessagesFor(nancy.CPR); len(m) != 1 || m[0].Channel != "print" || m[0].Print == nil || m[0].Print.ForsendelseTyp != "4711" || m[0].KombiValgKode != "Automatisk Valg" {
		t.Errorf("the exempt custody holder's letter: %+v", m)
	}
	if m := e.sim.MessagesFor(brita.CPR); len(m) != 1 || m[0].Channel != "digitalpost" {
		t.Errorf("the other's: %+v", m)
	}
	_, err := e.sink(auto).Deliver(context.Background(), recommendation("casesys:casesys:DOK-000071", nancy))
	if _, _, code := adapters.Classify(err); code != "recipient_exempt" {
		t.Errorf("a text letter to an exempt custody holder with choice automatic: %v", err)
	}
}

// Refusals and outages are classified; the UUID used for another message
// is a conflict, not a success; a repeat the service accepts is success.
func TestClassification(t *testing.T) {
	e := newEnv(t, digitalpostsim.Config{})
	ctx := context.Background()
	e.sim.RejectTokens(true)
	_, err := e.sink(nil).Deliver(ctx, recommendation("L1", brita))
	if class, reason, code := adapters.Classify(err); class != adapters.ClassRetryable || code != "auth_rejected" || !strings.Contains(reason, "newly issued (HTTP 401, invalid_token)") {
		t.Errorf("a refused token: %v", err)
	}
	e.sim.RejectTokens(false)
	// The token service refusing the client is auth_failed, as for the
	// case system and the EPJ.
	_, err = e.sink(map[string]any{"client_secret": "wrong"}).Deliver(ctx, recommendation("L1", brita))
	if class, _, code := adapters.Classify(err); class != adapters.ClassRetryable || code != "auth_failed" {
		t.Errorf("refused client credentials: %v", err)
	}
	e.sim.FailNext(1, 503, 3*time.Second)
	_, err = e.sink(nil).Deliver(ctx, recommendation("L1", brita))
	if class, _, code := adapters.Classify(err); class != adapters.ClassRetryable || code != "http_503" || adapters.RetryAfterOf(err) != 3*time.Second {
		t.Errorf("unavailable: %v (retry after %s)", err, adapters.RetryAfterOf(err))
	}
	e.sim.RefuseNext(1, "NOGET_ANDET", 422)
	_, err = e.sink(nil).Deliver(ctx, recommendation("L1", brita))
	if class, reason, code := adapters.Classify(err); class != adapters.ClassPermanent || code != "refused_NOGET_ANDET" || !strings.Contains(reason, "422") {
		t.Errorf("refused: %v", err)
	}
	e.sim.RefuseNext(1, "MEDDELELSE_UUID_KONFLIKT", 409)
	_, err = e.sink(nil).Deliver(ctx, recommendation("L1", brita))
	if _, _, code := adapters.Classify(err); code != "uuid_conflict" {
		t.Errorf("conflict: %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err = e.sink(nil).Deliver(cancelled, recommendation("L1", brita)); err == nil || permanent(err) {
		t.Errorf("a cancelled delivery: %v", err)
	}
	l := recommendation("L1", brita)
	l.Consent = &letter.Consent{GivenBy: "custody-holder", Scopes: []letter.Scope{letter.ScopeGP}}
	if _, err = e.sink(nil).Deliver(ctx, l); !permanent(err) || len(e.sim.Messages()) != 0 {
		t.Errorf("without the parents' consent: %v, %d messages", err, len(e.sim.Messages()))
	}

	// A service that answers a repeat as received again.
	e2 := newEnv(t, digitalpostsim.Config{AcceptRepeats: true})
	first, err := e2.sink(nil).Deliver(ctx, recommendation("L2", brita))
	if err != nil {
		t.Fatal(err)
	}
	second, err := e2.sink(nil).Deliver(ctx, recommendation("L2", brita))
	if err != nil || second.RemoteID != first.RemoteID || len(e2.sim.Messages()) != 1 {
		t.Errorf("a repeat answered as received: %+v %v, %d messages", second, err, len(e2.sim.Messages()))
	}
}

// The message UUID depends on the key in the state store: a hub that
// lost its state would send new UUIDs (and second letters), one that kept
// it never does.
func TestMessageUUIDKeyLivesInTheStateStore(t *testing.T) {
	e := newEnv(t, digitalpostsim.Config{})
	if _, err := e.sink(nil).Deliver(context.Background(), recommendation("L3", brita)); err != nil {
		t.Fatal(err)
	}
	if e.state.Keys("digitalpost.parents.uuid-key") != 1 {
		t.Fatalf("no key kept: %v", e.state.Snapshot())
	}
	e.state.SetDown(errors.New("state store down"))
	_, err := e.sink(nil).Deliver(context.Background(), recommendation("L4", brita))
	if class, _, _ := adapters.Classify(err); err == nil || class != adapters.ClassRetryable {
		t.Errorf("a store that is down: %v", err)
	}
}

func permanent(err error) bool {
	class, _, _ := adapters.Classify(err)
	return err != nil && class == adapters.ClassPermanent
}
