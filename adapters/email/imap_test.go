package email

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/adapters/email/mailtest"
	"github.com/samhub/samhub/internal/logbuf"
	"github.com/samhub/samhub/pipeline/letter"
)

const (
	inbox     = "INBOX"
	processed = "Samhub/Processed"
	errorBox  = "Samhub/Error"
)

func imapCfg(srv *mailtest.IMAPServer, ca *mailtest.CA, mode string) map[string]any {
	return map[string]any{
		"host":          srv.Host,
		"port":          srv.Port,
		"tls":           mode,
		"ca_file":       ca.PEMFile,
		"username":      srv.Username,
		"password":      srv.Password,
		"poll_interval": "100ms",
		"timeout":       "10s",
	}
}

func newSource(t *testing.T, cfg map[string]any, state adapters.StateStore, logs *logbuf.Buffer) *IMAPSource {
	t.Helper()
	deps := testDeps("mail-in", state)
	if logs != nil {
		deps.Logger = slog.New(slog.NewTextHandler(logs, nil))
	}
	s, err := NewIMAPSource(deps, cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.minBackoff = 10 * time.Millisecond
	return s
}

// start runs src in the background; the returned stop cancels it and
// returns what Run returned.
func start(t *testing.T, src *IMAPSource, pub adapters.Publisher) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, pub) }()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(10 * time.Second):
				runErr = errors.New("Run did not return after cancel")
			}
		})
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func TestIMAPReceiveImplicitTLS(t *testing.T) {
	ca := mailtest.NewCA(t)
	srv := mailtest.StartIMAP(t, ca, mailtest.IMAPOptions{Mode: mailtest.IMAPImplicit})
	danish := readFixture(t, "danish-attachment.eml")
	html := readFixture(t, "html-latin1.eml")
	srv.Append(t, inbox, danish)
	srv.Append(t, inbox, html)

	pub := newRecPublisher()
	var orderErr error
	var mu sync.Mutex
	pub.onStore = func(_ context.Context, l *letter.Letter) {
		// At publish time the message must still be in the inbox.
		mu.Lock()
		defer mu.Unlock()
		if srv.Count(t, processed) != len(pub.letters())-1 {
			orderErr = errors.New("a message reached the processed mailbox before its publish returned")
		}
	}
	logs := &logbuf.Buffer{}
	state := newMemState()
	src := newSource(t, imapCfg(srv, ca, "implicit"), state, logs)
	if src.Ready(context.Background()) == nil {
		t.Error("Ready = nil before the first connection")
	}
	stop := start(t, src, pub)

	waitFor(t, "two messages processed", func() bool { return srv.Count(t, processed) == 2 && srv.Count(t, inbox) == 0 })
	if err := src.Ready(context.Background()); err != nil {
		t.Errorf("Ready = %v while connected", err)
	}
	if err := stop(); err != nil {
		t.Fatalf("Run returned %v after cancel, want nil", err)
	}
	mu.Lock()
	if orderErr != nil {
		t.Error(orderErr)
	}
	mu.Unlock()

	ls := pub.letters()
	if len(ls) != 2 || pub.callCount() != 2 {
		t.Fatalf("published %d letters in %d calls, want 2 in 2", len(ls), pub.callCount())
	}
	l := ls[0]
	if l.Source != "mail-in" || !strings.HasPrefix(l.ID, "email:mail-in:") || l.Kind != letter.KindNote {
		t.Errorf("letter = %s %s %s", l.ID, l.Source, l.Kind)
	}
	if !bytes.Equal(l.Original.Data, danish) || l.Original.ContentType != "message/rfc822" {
		t.Error("original bytes were not kept exactly")
	}
	if len(l.Attachments) != 1 || l.Attachments[0].Name != "Henvisning æøå.pdf" || !strings.Contains(l.Text, "Kære Samråd") {
		t.Errorf("letter content: text %q, attachments %d", l.Text, len(l.Attachments))
	}
	if !strings.Contains(ls[1].Text, "Børne- og ungdomspsykiatrien") {
		t.Errorf("html letter text = %q", ls[1].Text)
	}
	if state.Keys("") != 2 {
		t.Errorf("state holds %d records, want 2", state.Keys(""))
	}
	// The processed copies are the messages as received.
	got := srv.Messages(t, processed)
	if len(got) != 2 || !bytes.Equal(got[0], danish) || !bytes.Equal(got[1], html) {
		t.Error("processed mailbox does not hold the original messages")
	}
	for _, secret := range []string{"2509479989", "Bruno", "Berggren", "Åse", "græder", "laege@example.dk"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("log contains %q:\n%s", secret, logs.String())
		}
	}
}

// With STARTTLS and a poll interval of an hour, only IDLE can bring the
// second message in.
func TestIMAPStartTLSAndIdle(t *testing.T) {
	ca := mailtest.NewCA(t)
	srv := mailtest.StartIMAP(t, ca, mailtest.IMAPOptions{Mode: mailtest.IMAPStartTLS})
	srv.Append(t, inbox, readFixture(t, "alternative-latin1.eml"))
	cfg := imapCfg(srv, ca, "starttls")
	cfg["poll_interval"] = "1h"
	pub := newRecPublisher()
	start(t, newSource(t, cfg, newMemState(), nil), pub)

	waitFor(t, "first message", func() bool { return srv.Count(t, processed) == 1 })
	srv.Append(t, inbox, readFixture(t, "danish-attachment.eml"))
	waitFor(t, "second message via IDLE", func() bool { return srv.Count(t, processed) == 2 })
	if n := len(pub.letters()); n != 2 {
		t.Errorf("published %d letters, want 2", n)
	}
}

func TestIMAPPublishFailureKeepsMessageInInbox(t *testing.T) {
	ca := mailtest.NewCA(t)
	srv := mailtest.StartIMAP(t, ca, mailtest.IMAPOptions{Mode: mailtest.IMAPImplicit})
	srv.Append(t, inbox, readFixture(t, "danish-attachment.eml"))
	pub := newRecPublisher()
	pub.setFail(errors.New("jetstream: no responders"))
	state := newMemState()
	start(t, newSource(t, imapCfg(srv, ca, "implicit"), state, nil), pub)

	waitFor(t, "several failed publish attempts", func() bool { return pub.callCount() >= 3 })
	if srv.Count(t, inbox) != 1 || srv.Count(t, processed) != 0 || srv.Count(t, errorBox) != 0 {
		t.Fatalf("after failed publishes: inbox %d processed %d error %d, want 1/0/0",
			srv.Count(t, inbox), srv.Count(t, processed), srv.Count(t, errorBox))
	}
	if state.Keys("") != 0 {
		t.Errorf("state recorded %d messages although nothing was published", state.Keys(""))
	}

	pub.setFail(nil)
	waitFor(t, "message processed once the broker is back", func() bool { return srv.Count(t, processed) == 1 })
	if n := len(pub.letters()); n != 1 {
		t.Errorf("published %d distinct letters, want 1", n)
	}
}

func TestIMAPConnectionDroppedMidFetch(t *testing.T) {
	ca := mailtest.NewCA(t)
	srv := mailtest.StartIMAP(t, ca, mailtest.IMAPOptions{Mode: mailtest.IMAPImplicit})
	fixtures := []string{"danish-attachment.eml", "html-latin1.eml", "alternative-latin1.eml"}
	for _, f := range fixtures {
		srv.Append(t, inbox, readFixture(t, f))
	}
	srv.DropNextBodyFetches(2)
	pub := newRecPublisher()
	start(t, newSource(t, imapCfg(srv, ca, "implicit"), newMemState(), nil), pub)

	waitFor(t, "all messages processed", func() bool { return srv.Count(t, processed) == 3 && srv.Count(t, inbox) == 0 })
	if n, calls := len(pub.letters()), pub.callCount(); n != 3 || calls != 3 {
		t.Errorf("published %d letters in %d calls, want 3 in 3", n, calls)
	}
	if f := srv.BodyFetches(); f != 5 {
		t.Errorf("body fetches = %d, want 5 (2 dropped + 3 served)", f)
	}
}

// A message whose download always breaks is set aside, not retried for
// ever; the mail behind it still comes in first. Its failures count only
// while the server sends other messages between them, so it goes to the
// error mailbox once four more mails came in between its failures.
func TestIMAPUnfetchableMessageIsSetAside(t *testing.T) {
	ca := mailtest.NewCA(t)
	srv := mailtest.StartIMAP(t, ca, mailtest.IMAPOptions{Mode: mailtest.IMAPImplicit})
	srv.Append(t, inbox, readFixture(t, "danish-attachment.eml")) // UID 1
	srv.Append(t, inbox, readFixture(t, "html-latin1.eml"))
	srv.BreakFetchOf(1)
	pub := newRecPublisher()
	state := newMemState()
	start(t, newSource(t, imapCfg(srv, ca, "implicit"), state, nil), pub)
	waitFor(t, "the second message processed", func() bool { return srv.Count(t, processed) == 1 })
	for i := range maxFetchAttempts - 2 {
		if srv.Count(t, errorBox) != 0 {
			t.Fatalf("the broken message was set aside after %d further mails", i)
		}
		srv.Append(t, inbox, fmt.Appendf(nil, "From: PPR <ppr@example.dk>\r\nSubject: Nr. %d\r\nMessage-ID: <more-%d@example.dk>\r\n\r\nBesked %d\r\n", i, i, i))
		waitFor(t, "a further mail processed", func() bool { return srv.Count(t, processed) == i+2 })
	}
	waitFor(t, "the broken message set aside", func() bool { return srv.Count(t, errorBox) == 1 && srv.Count(t, inbox) == 0 })
	if r := rejectReasons(t, state); len(r) != 1 || !strings.Contains(r[0], "could not be downloaded") {
		t.Errorf("reasons = %q", r)
	}
	if ls := pub.letters(); len(ls) != maxFetchAttempts-1 {
		t.Errorf("published %d letters, want %d: every mail but the broken one", len(ls), maxFetchAttempts-1)
	}
}

// A server that refuses every download for a while (its storage away)
// sets no readable mail aside, however many times the source tries; before,
// the oldest mail went to the error mailbox after five refusals.
func TestIMAPServerRefusingDownloadsSetsNothingAside(t *testing.T) {
	ca := mailtest.NewCA(t)
	srv := mailtest.StartIMAP(t, ca, mailtest.IMAPOptions{Mode: mailtest.IMAPImplicit})
	srv.Append(t, inbox, readFixture(t, "danish-attachment.eml"))
	srv.Append(t, inbox, readFixture(t, "html-latin1.eml"))
	refusals := slices.Repeat([]mailtest.Fault{mailtest.Refuse}, 4*maxFetchAttempts)
	srv.FailNext(mailtest.CmdFetch, refusals...)
	cfg := imapCfg(srv, ca, "implicit")
	cfg["max_backoff"] = "50ms" // twenty failed sessions in a row
	pub := newRecPublisher()
	start(t, newSource(t, cfg, newMemState(), nil), pub)
	waitFor(t, "both messages processed", func() bool {
		return srv.Count(t, processed)+srv.Count(t, errorBox) == 2 && srv.Count(t, inbox) == 0
	})
	if n := srv.PendingFaults(); n != 0 {
		t.Errorf("%d refusals left unused", n)
	}
	if srv.Count(t, errorBox) != 0 || len(pub.letters()) != 2 {
		t.Errorf("%d set aside, %d stored; want 0 and 2", srv.Count(t, errorBox), len(pub.letters()))
	}
}

func TestIMAPConnectionDroppedWhileIdle(t *testing.T) {
	ca := mailtest.NewCA(t)
	srv := mailtest.StartIMAP(t, ca, mailtest.IMAPOptions{Mode: mailtest.IMAPImplicit})
	cfg := imapCfg(srv, ca, "implicit")
	cfg["poll_interval"] = "1h"
	pub := newRecPublisher()
	start(t, newSource(t, cfg, newMemState(), nil), pub)
	waitFor(t, "processed mailbox created", func() bool {
		_, err := srv.Status(processed)
		return err == nil
	})
	srv.DropConnections()
	srv.Append(t, inbox, readFixture(t, "danish-attachment.eml"))
	waitFor(t, "message after reconnect", func() bool { return srv.Count(t, processed) == 1 })
	if n := pub.callCount(); n != 1 {
		t.Errorf("publish calls = %d, want 1", n)
	}
}

// The adapter stops after Publish returned nil but before the move. On
// restart the message must not become a second distinct letter.
func TestIMAPRestartBetweenPublishAndMove(t *testing.T) {
	for _, tc := range []struct {
		name       string
		loseState  bool // the crash also lost the state record
		wantCalls2 int  // publishes by the second run
	}{
		{name: "state record written", wantCalls2: 0},
		{name: "state record lost", loseState: true, wantCalls2: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ca := mailtest.NewCA(t)
			srv := mailtest.StartIMAP(t, ca, mailtest.IMAPOptions{Mode: mailtest.IMAPImplicit})
			raw := readFixture(t, "danish-attachment.eml")
			srv.Append(t, inbox, raw)
			state := newMemState()
			cfg := imapCfg(srv, ca, "implicit")

			first := newRecPublisher()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			first.onStore = func(context.Context, *letter.Letter) {
				// The process dies right after the broker confirmed: the
				// server sees the connection go, so no MOVE can reach it,
				// and Run is stopped before it could reconnect.
				cancel()
				srv.DropConnections()
			}
			if err := newSource(t, cfg, state, nil).Run(ctx, first); err != nil {
				t.Fatalf("Run = %v, want nil after cancel", err)
			}
			if srv.Count(t, inbox) != 1 || srv.Count(t, processed) != 0 || first.callCount() != 1 {
				t.Fatalf("after the crash: inbox %d processed %d publishes %d, want 1/0/1",
					srv.Count(t, inbox), srv.Count(t, processed), first.callCount())
			}
			if tc.loseState {
				state = newMemState()
			}

			second := newRecPublisher()
			second.byID = first.byID // the same broker, with its duplicate window
			second.order = first.order
			start(t, newSource(t, cfg, state, nil), second)
			waitFor(t, "move completed after restart", func() bool { return srv.Count(t, processed) == 1 && srv.Count(t, inbox) == 0 })
			if got := second.callCount(); got != tc.wantCalls2 {
				t.Errorf("second run published %d times, want %d", got, tc.wantCalls2)
			}
			if n := len(second.letters()); n != 1 {
				t.Errorf("broker holds %d distinct letters, want 1", n)
			}
		})
	}
}

func TestIMAPUnparseableGoesToErrorMailbox(t *testing.T) {
	ca := mailtest.NewCA(t)
	srv := mailtest.StartIMAP(t, ca, mailtest.IMAPOptions{Mode: mailtest.IMAPImplicit})
	// A broken MIME body. (A broken header cannot be used here: the memory
	// server re-parses headers when serving BODY[] and would send nothing.)
	bad := readFixture(t, "truncated-multipart.eml")
	noFrom := readFixture(t, "no-from.eml")
	good := readFixture(t, "html-latin1.eml")
	srv.Append(t, inbox, bad)
	srv.Append(t, inbox, good)
	srv.Append(t, inbox, noFrom)
	pub := newRecPublisher()
	state := newMemState()
	logs := &logbuf.Buffer{}
	start(t, newSource(t, imapCfg(srv, ca, "implicit"), state, logs), pub)

	waitFor(t, "messages sorted", func() bool {
		return srv.Count(t, errorBox) == 2 && srv.Count(t, processed) == 1 && srv.Count(t, inbox) == 0
	})
	if n := len(pub.letters()); n != 1 {
		t.Errorf("published %d letters, want 1", n)
	}
	kept := srv.Messages(t, errorBox)
	if len(kept) != 2 || !bytes.Equal(kept[0], bad) || !bytes.Equal(kept[1], noFrom) {
		t.Error("error mailbox does not hold the unparseable messages unchanged")
	}
	reasons := rejectReasons(t, state)
	if len(reasons) != 2 || !contains(reasons, "body.part[1]: the part could not be decoded") ||
		!contains(reasons, "header.From: expected a sender address, found none") {
		t.Errorf("recorded reasons = %q", reasons)
	}
	if !strings.Contains(logs.String(), "header.From: expected a sender address") {
		t.Errorf("log lacks the reason:\n%s", logs.String())
	}
}

func TestIMAPOversizeGoesToErrorMailbox(t *testing.T) {
	ca := mailtest.NewCA(t)
	srv := mailtest.StartIMAP(t, ca, mailtest.IMAPOptions{Mode: mailtest.IMAPImplicit})
	srv.Append(t, inbox, readFixture(t, "danish-attachment.eml")) // about 1 KB
	cfg := imapCfg(srv, ca, "implicit")
	cfg["max_bytes"] = 600
	pub := newRecPublisher()
	state := newMemState()
	start(t, newSource(t, cfg, state, nil), pub)
	waitFor(t, "oversize message moved", func() bool { return srv.Count(t, errorBox) == 1 })
	if pub.callCount() != 0 {
		t.Error("an oversize message was published")
	}
	// The reason names the setting to raise, with the limit.
	if r := rejectReasons(t, state); len(r) != 1 || !strings.HasPrefix(r[0], "the message is ") || !strings.HasSuffix(r[0], " bytes, more than adapters.mail-in.max_bytes (600)") {
		t.Errorf("reasons = %q", r)
	}
	if f := srv.BodyFetches(); f != 0 {
		t.Errorf("the oversize body was fetched %d times, want 0", f)
	}
}

func TestIMAPWithoutMoveUsesCopyFallback(t *testing.T) {
	ca := mailtest.NewCA(t)
	srv := mailtest.StartIMAP(t, ca, mailtest.IMAPOptions{Mode: mailtest.IMAPImplicit, NoMove: true})
	srv.Append(t, inbox, readFixture(t, "danish-attachment.eml"))
	srv.Append(t, inbox, readFixture(t, "truncated-multipart.eml"))
	pub := newRecPublisher()
	start(t, newSource(t, imapCfg(srv, ca, "implicit"), newMemState(), nil), pub)
	waitFor(t, "messages copied and expunged", func() bool {
		st, err := srv.Status(inbox)
		return err == nil && *st.NumMessages == 0 && srv.Count(t, processed) == 1 && srv.Count(t, errorBox) == 1
	})
	if pub.callCount() != 1 {
		t.Errorf("publish calls = %d, want 1", pub.callCount())
	}
}

func TestIMAPRefusesUntrustedOrClearText(t *testing.T) {
	ca := mailtest.NewCA(t)
	otherCA := mailtest.NewCA(t)
	cases := []struct {
		name   string
		mode   mailtest.IMAPMode
		tlsCfg string
		caFile string
		inLog  string
	}{
		{name: "wrong CA implicit", mode: mailtest.IMAPImplicit, tlsCfg: "implicit", caFile: otherCA.PEMFile, inLog: "certificate"},
		{name: "wrong CA starttls", mode: mailtest.IMAPStartTLS, tlsCfg: "starttls", caFile: otherCA.PEMFile, inLog: "certificate"},
		{name: "server without STARTTLS", mode: mailtest.IMAPNoTLS, tlsCfg: "starttls", caFile: ca.PEMFile, inLog: "STARTTLS"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := mailtest.StartIMAP(t, ca, mailtest.IMAPOptions{Mode: tc.mode})
			srv.Append(t, inbox, readFixture(t, "danish-attachment.eml"))
			cfg := imapCfg(srv, ca, tc.tlsCfg)
			cfg["ca_file"] = tc.caFile
			logs := &logbuf.Buffer{}
			pub := newRecPublisher()
			src := newSource(t, cfg, newMemState(), logs)
			stop := start(t, src, pub)
			waitFor(t, "two failed attempts logged", func() bool { return strings.Count(logs.String(), "reconnecting") >= 2 })
			if src.Ready(context.Background()) == nil {
				t.Error("Ready = nil although no session could be opened")
			}
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			if pub.callCount() != 0 || srv.Count(t, inbox) != 1 {
				t.Errorf("published %d, inbox %d; want nothing read", pub.callCount(), srv.Count(t, inbox))
			}
			if srv.Logins() != 0 {
				t.Errorf("the server saw %d logins; credentials must not cross an untrusted connection", srv.Logins())
			}
			if !strings.Contains(logs.String(), tc.inLog) {
				t.Errorf("log lacks %q:\n%s", tc.inLog, logs.String())
			}
		})
	}
}

func rejectReasons(t *testing.T, state *memState) []string {
	t.Helper()
	var out []string
	for k, v := range state.Snapshot() {
		var r record
		if err := json.Unmarshal(v, &r); err != nil {
			t.Fatalf("state %s: %v", k, err)
		}
		if r.Status == statusRejected {
			out = append(out, r.Reason)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// A letter the hub refuses for good (too large to store even with its
// parts apart) is set aside in the error mailbox, and the mail behind it
// still comes in; before, the source retried it for ever and read nothing
// after it.
func TestIMAPLetterTheHubRefusesGoesToErrorMailbox(t *testing.T) {
	ca := mailtest.NewCA(t)
	srv := mailtest.StartIMAP(t, ca, mailtest.IMAPOptions{Mode: mailtest.IMAPImplicit})
	big := readFixture(t, "danish-attachment.eml")
	srv.Append(t, inbox, big)
	srv.Append(t, inbox, readFixture(t, "html-latin1.eml"))
	pub := &refusingPublisher{recPublisher: newRecPublisher(), refuse: letter.Digest(big)}
	state := newMemState()
	start(t, newSource(t, imapCfg(srv, ca, "implicit"), state, nil), pub)
	waitFor(t, "first message set aside, second processed", func() bool {
		return srv.Count(t, errorBox) == 1 && srv.Count(t, processed) == 1 && srv.Count(t, inbox) == 0
	})
	if kept := srv.Messages(t, errorBox); len(kept) != 1 || !bytes.Equal(kept[0], big) {
		t.Error("the error mailbox does not hold the refused message unchanged")
	}
	if r := rejectReasons(t, state); len(r) != 1 || !strings.Contains(r[0], "streams.max_msg_size") {
		t.Errorf("reasons = %q", r)
	}
	if ls := pub.letters(); len(ls) != 1 || !strings.Contains(ls[0].Text, "Børne- og ungdomspsykiatrien") {
		t.Errorf("stored %d letters, want only the second message", len(ls))
	}
}

// refusingPublisher refuses for good the letter whose original has the
// digest refuse, as the hub refuses a letter too large to store.
type refusingPublisher struct {
	*recPublisher
	refuse string
}

func (p *refusingPublisher) Publish(ctx context.Context, l *letter.Letter) error {
	if letter.Digest(l.Original.Data) == p.refuse {
		return adapters.Permanent("letter_too_large", "the letter is 40.0 MB even with its original and large attachments stored apart; the hub stores at most 32.0 MB per letter (streams.max_msg_size, and 32 MB in any case)", errors.New("letter exceeds streams.max_msg_size"))
	}
	return p.recPublisher.Publish(ctx, l)
}

// Each mail set aside is counted for the hub's rejected-input counter,
// which the SamhubInputRejected alert reads, with a code saying why; before,
// the source only logged it, and nobody was alerted to a professional's
// mail lying in the error mailbox.
func TestIMAPRejectedMailsAreCounted(t *testing.T) {
	ca := mailtest.NewCA(t)
	srv := mailtest.StartIMAP(t, ca, mailtest.IMAPOptions{Mode: mailtest.IMAPImplicit})
	srv.Append(t, inbox, readFixture(t, "truncated-multipart.eml"))
	srv.Append(t, inbox, readFixture(t, "no-from.eml"))
	srv.Append(t, inbox, readFixture(t, "html-latin1.eml"))
	pub := &reportingPublisher{recPublisher: newRecPublisher()}
	src := newSource(t, imapCfg(srv, ca, "implicit"), newMemState(), nil)
	start(t, src, pub)
	waitFor(t, "messages sorted", func() bool {
		return srv.Count(t, errorBox) == 2 && srv.Count(t, processed) == 1 && srv.Count(t, inbox) == 0
	})
	if got := pub.codes(); !slices.Equal(got, []string{codeSyntax, codeInvalid}) {
		t.Errorf("rejections reported = %q, want [syntax invalid]", got)
	}
	for _, c := range pub.codes() {
		if !slices.Contains(src.RejectCodes(), c) {
			t.Errorf("code %q is not among RejectCodes %q", c, src.RejectCodes())
		}
	}
}

// reportingPublisher records what the source reports as the hub's
// publisher does (adapters.InputReporter).
type reportingPublisher struct {
	*recPublisher
	mu       sync.Mutex
	rejected []string
}

func (p *reportingPublisher) Rejected(code string) {
	p.mu.Lock()
	p.rejected = append(p.rejected, code)
	p.mu.Unlock()
}

func (p *reportingPublisher) Duplicate() {}

func (p *reportingPublisher) codes() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.rejected)
}

// Where the server lacks MOVE, a COPY it refuses (a full mailbox) leaves
// the message in the inbox, to be moved later; before, imapclient's
// fallback sent STORE \Deleted and EXPUNGE along with the COPY, and the
// message was deleted without a copy anywhere: a mail refused as
// unreadable was gone, and a stored one missing from the processed mailbox.
func TestIMAPRefusedCopyKeepsTheMessage(t *testing.T) {
	ca := mailtest.NewCA(t)
	srv := mailtest.StartIMAP(t, ca, mailtest.IMAPOptions{Mode: mailtest.IMAPImplicit, NoMove: true})
	bad := readFixture(t, "no-from.eml")
	good := readFixture(t, "html-latin1.eml")
	srv.Append(t, inbox, bad)
	srv.Append(t, inbox, good)
	srv.FailNext(mailtest.CmdCopy, mailtest.Refuse, mailtest.Refuse)
	pub := newRecPublisher()
	start(t, newSource(t, imapCfg(srv, ca, "implicit"), newMemState(), nil), pub)
	waitFor(t, "the refusals used and the inbox empty", func() bool {
		st, err := srv.Status(inbox)
		return err == nil && srv.PendingFaults() == 0 && *st.NumMessages == 0
	})
	if kept := srv.Messages(t, errorBox); len(kept) != 1 || !bytes.Equal(kept[0], bad) {
		t.Errorf("the error mailbox holds %d messages, want the unreadable one", len(kept))
	}
	if kept := srv.Messages(t, processed); len(kept) != 1 || !bytes.Equal(kept[0], good) {
		t.Errorf("the processed mailbox holds %d messages, want the stored one", len(kept))
	}
}
