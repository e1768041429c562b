package email

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-smtp"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/adapters/email/mailtest"
	"github.com/samhub/samhub/pipeline/letter"
)

const (
	pprAddr    = "ppr.test@example.dk"
	coordAddr  = "koordinator@kommune.example.dk"
	letterText = "Kære PPR\n\nSamrådet har behandlet henvisningen vedrørende Bruno Test Elmer (CPR 2509479989).\nVi foreslår et møde på skolen i næste uge.\n\nVenlig hilsen\nSamrådet for børn og unge\n"
)

var pdfBytes = []byte("%PDF-1.4\n% æøå test\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n")

func testLetter() *letter.Letter {
	raw := []byte("<original xml/>")
	l := &letter.Letter{
		ID:     "medcom:xdis91:4711-0815",
		Kind:   letter.KindRecommendation,
		Format: "xdis91",
		Source: "medcom-in",
		Sender: letter.Party{Role: "coordinator", Name: "Samrådet"},
		Receivers: []letter.Party{
			{Role: "school", Name: "PPR Test", Email: pprAddr},
			{Role: "coordinator", Email: strings.ToUpper(coordAddr)},
			{Role: "gp", GLN: "5790000123456"}, // no email: not an email receiver
		},
		Patient:     &letter.Patient{CPR: "2509479989", GivenName: "Bruno Test", FamilyName: "Elmer"},
		Subject:     "Anbefaling vedrørende Bruno Test Elmer",
		Text:        letterText,
		Attachments: []letter.Attachment{letter.NewAttachment("Henvisning æøå.pdf", "application/pdf", pdfBytes)},
		Original:    letter.Original{Data: raw, ContentType: "application/xml", SHA256: letter.Digest(raw)},
	}
	// Addressed as the pipeline addresses a delivery to PPR and the coordinator.
	l.To = slices.Clone(l.Receivers[:2])
	return l
}

func smtpCfg(srv *mailtest.SMTPServer, ca *mailtest.CA, mode string) map[string]any {
	return map[string]any{
		"host":     srv.Host,
		"port":     srv.Port,
		"tls":      mode,
		"ca_file":  ca.PEMFile,
		"username": "samhub",
		"password": "s3cret",
		"from":     "samraad@kommune.example.dk",
		"allow":    []any{pprAddr, "@kommune.example.dk"},
		"timeout":  "10s",
	}
}

func newSink(t *testing.T, cfg map[string]any, state adapters.StateStore) *SMTPSink {
	t.Helper()
	s, err := NewSMTPSink(testDeps("mail-out", state), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type parsedMail struct {
	header      mail.Header
	text        string
	attachments map[string][]byte
}

func parseMail(t *testing.T, raw []byte) parsedMail {
	t.Helper()
	mr, err := mail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	pm := parsedMail{header: mr.Header, attachments: map[string][]byte{}}
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p.Body)
		switch h := p.Header.(type) {
		case *mail.InlineHeader:
			ct, params, _ := h.ContentType()
			if ct != "text/plain" || params["charset"] != "utf-8" || h.Get("Content-Transfer-Encoding") != "quoted-printable" {
				t.Errorf("text part is %s %v %s", ct, params, h.Get("Content-Transfer-Encoding"))
			}
			pm.text = string(b)
		case *mail.AttachmentHeader:
			name, _ := h.Filename()
			pm.attachments[name] = b
		}
	}
	return pm
}

var tenDigits = regexp.MustCompile(`[0-9]{10}`)

func TestSMTPSendImplicitTLSWithAttachments(t *testing.T) {
	ca := mailtest.NewCA(t)
	srv := mailtest.StartSMTP(t, ca, mailtest.SMTPOptions{Mode: mailtest.SMTPImplicit, Username: "samhub", Password: "s3cret"})
	state := newMemState()
	sink := newSink(t, smtpCfg(srv, ca, "implicit"), state)
	l := testLetter()

	d, err := sink.Deliver(context.Background(), l)
	if err != nil {
		t.Fatal(err)
	}
	msgs := srv.Messages()
	if len(msgs) != 2 {
		t.Fatalf("server received %d messages, want 2 (one per email receiver)", len(msgs))
	}
	wantIDs := []string{
		"<" + MessageID(l.ID, pprAddr, "samraad@kommune.example.dk") + ">",
		"<" + MessageID(l.ID, coordAddr, "samraad@kommune.example.dk") + ">",
	}
	if d.RemoteID != strings.Join(wantIDs, ",") || d.Existing {
		t.Errorf("delivery = %+v, want RemoteID %v", d, wantIDs)
	}
	for i, m := range msgs {
		if !m.TLS {
			t.Error("message went over a connection without TLS")
		}
		wantTo := []string{pprAddr, coordAddr}[i]
		if len(m.To) != 1 || m.To[0] != wantTo || m.From != "samraad@kommune.example.dk" {
			t.Errorf("envelope from %s to %v, want to %s", m.From, m.To, wantTo)
		}
		pm := parseMail(t, m.Data)
		subject, _ := pm.header.Subject()
		if want := "Nyt brev fra Samrådet (ref " + Ref(l.ID) + ")"; subject != want {
			t.Errorf("subject = %q, want %q", subject, want)
		}
		rawSubject := pm.header.Get("Subject")
		for _, s := range []string{subject, rawSubject} {
			if tenDigits.MatchString(s) {
				t.Errorf("subject %q has a 10-digit run", s)
			}
			for _, name := range []string{"Bruno", "Elmer", "Brita", "Berggren", "2509479989"} {
				if strings.Contains(s, name) {
					t.Errorf("subject %q contains %q", s, name)
				}
			}
		}
		header := string(m.Data[:bytes.Index(m.Data, []byte("\r\n\r\n"))])
		if tenDigits.MatchString(header) || strings.Contains(header, "Bruno") || strings.Contains(header, "Elmer") {
			t.Errorf("mail header carries personal data:\n%s", header)
		}
		if got := "<" + pm.header.Get("Message-Id") + ">"; strings.Trim(got, "<>") != strings.Trim(wantIDs[i], "<>") {
			t.Errorf("Message-ID = %s, want %s", got, wantIDs[i])
		}
		if strings.ReplaceAll(pm.text, "\r\n", "\n") != letterText {
			t.Errorf("text part = %q", pm.text)
		}
		if got := pm.attachments["Henvisning æøå.pdf"]; !bytes.Equal(got, pdfBytes) {
			t.Errorf("pdf attachment = %q (attachments %v)", got, keys(pm.attachments))
		}
		lt := string(pm.attachments["letter.txt"])
		for _, want := range []string{"Bruno Test Elmer", "2509479989", "Vi foreslår et møde", Ref(l.ID), "Henvisning æøå.pdf"} {
			if !strings.Contains(lt, want) {
				t.Errorf("letter.txt lacks %q:\n%s", want, lt)
			}
		}
	}

	// A retry finds both sent markers and sends nothing.
	d2, err := sink.Deliver(context.Background(), l)
	if err != nil {
		t.Fatal(err)
	}
	if !d2.Existing || d2.RemoteID != d.RemoteID {
		t.Errorf("second delivery = %+v, want Existing with the same RemoteID", d2)
	}
	if n := len(srv.Messages()); n != 2 {
		t.Errorf("server has %d messages after a retry, want still 2", n)
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestSMTPStartTLS(t *testing.T) {
	ca := mailtest.NewCA(t)
	srv := mailtest.StartSMTP(t, ca, mailtest.SMTPOptions{Mode: mailtest.SMTPStartTLS, Username: "samhub", Password: "s3cret"})
	sink := newSink(t, smtpCfg(srv, ca, "starttls"), newMemState())
	if err := sink.Ready(context.Background()); err != nil {
		t.Fatalf("Ready = %v", err)
	}
	if _, err := sink.Deliver(context.Background(), testLetter()); err != nil {
		t.Fatal(err)
	}
	msgs := srv.Messages()
	if len(msgs) != 2 || !msgs[0].TLS || !msgs[1].TLS {
		t.Fatalf("got %d messages (want 2, both over TLS)", len(msgs))
	}
}

func TestSMTPNotificationHasNoLetterAttachment(t *testing.T) {
	ca := mailtest.NewCA(t)
	srv := mailtest.StartSMTP(t, ca, mailtest.SMTPOptions{Mode: mailtest.SMTPImplicit, Username: "samhub", Password: "s3cret"})
	sink := newSink(t, smtpCfg(srv, ca, "implicit"), newMemState())
	n := &letter.Letter{
		ID: "hub:notification:17", Kind: letter.KindNotification, Source: "hub",
		Receivers: []letter.Party{{Role: "coordinator", Email: coordAddr}},
		Text:      "Et brev venter i Samhub-konsollen.",
	}
	if _, err := sink.Deliver(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("got %d messages, want 1", len(msgs))
	}
	pm := parseMail(t, msgs[0].Data)
	if len(pm.attachments) != 0 || strings.TrimSpace(pm.text) != n.Text {
		t.Errorf("notification: text %q, attachments %v", pm.text, keys(pm.attachments))
	}
	if pm.header.Get("Auto-Submitted") != "auto-generated" {
		t.Error("notification lacks Auto-Submitted")
	}
}

func TestSMTPRefusals(t *testing.T) {
	ca := mailtest.NewCA(t)
	otherCA := mailtest.NewCA(t)
	tls12 := ca.ServerTLS()
	tls12.MaxVersion = tls.VersionTLS12

	cases := []struct {
		name     string
		opts     mailtest.SMTPOptions
		mode     string
		edit     func(cfg map[string]any)
		letter   func(l *letter.Letter)
		class    adapters.Class
		code     string
		inReason string
	}{
		{name: "server does not offer STARTTLS", opts: mailtest.SMTPOptions{Mode: mailtest.SMTPNoStartTLS},
			mode: "starttls", class: adapters.ClassPermanent, code: "starttls_missing", inReason: "did not offer STARTTLS"},
		{name: "STARTTLS handshake refused", opts: mailtest.SMTPOptions{Mode: mailtest.SMTPStartTLSBad},
			mode: "starttls", class: adapters.ClassPermanent, code: "tls_failed", inReason: "TLS"},
		{name: "wrong CA implicit", opts: mailtest.SMTPOptions{Mode: mailtest.SMTPImplicit},
			mode: "implicit", edit: func(c map[string]any) { c["ca_file"] = otherCA.PEMFile },
			class: adapters.ClassPermanent, code: "tls_untrusted", inReason: "certificate"},
		{name: "wrong CA starttls", opts: mailtest.SMTPOptions{Mode: mailtest.SMTPStartTLS},
			mode: "starttls", edit: func(c map[string]any) { c["ca_file"] = otherCA.PEMFile },
			class: adapters.ClassPermanent, code: "tls_untrusted", inReason: "certificate"},
		{name: "wrong server name", opts: mailtest.SMTPOptions{Mode: mailtest.SMTPImplicit},
			mode: "implicit", edit: func(c map[string]any) { c["server_name"] = "mail.example.dk" },
			class: adapters.ClassPermanent, code: "tls_untrusted", inReason: "certificate"},
		{name: "server only has TLS 1.2, min_tls 1.3", opts: mailtest.SMTPOptions{Mode: mailtest.SMTPImplicit, TLS: tls12},
			mode: "implicit", edit: func(c map[string]any) { c["min_tls"] = "1.3" },
			class: adapters.ClassPermanent, code: "tls_failed", inReason: "TLS 1.2 or newer"},
		{name: "recipient not on the allow-list", opts: mailtest.SMTPOptions{Mode: mailtest.SMTPImplicit},
			mode: "implicit", edit: func(c map[string]any) { c["allow"] = []any{"@kommune.example.dk"} },
			class: adapters.ClassPermanent, code: "recipient_not_allowed", inReason: "recipient not on the allow-list"},
		{name: "empty allow-list", opts: mailtest.SMTPOptions{Mode: mailtest.SMTPImplicit},
			mode: "implicit", edit: func(c map[string]any) { delete(c, "allow") },
			class: adapters.ClassPermanent, code: "allow_list_empty", inReason: "(allow)"},
		{name: "no email receiver", opts: mailtest.SMTPOptions{Mode: mailtest.SMTPImplicit},
			mode: "implicit", letter: func(l *letter.Letter) { l.To, l.Receivers = nil, l.Receivers[2:] },
			class: adapters.ClassPermanent, code: "no_email_recipient", inReason: "no receiver"},
		{name: "wrong password", opts: mailtest.SMTPOptions{Mode: mailtest.SMTPImplicit, Username: "samhub", Password: "other"},
			mode: "implicit", class: adapters.ClassPermanent, code: "smtp_535", inReason: "refused the login"},
		{name: "recipient refused 550", opts: mailtest.SMTPOptions{Mode: mailtest.SMTPImplicit,
			RcptError: func(string) error { return &smtp.SMTPError{Code: 550, Message: "no such user " + pprAddr} }},
			mode: "implicit", class: adapters.ClassPermanent, code: "smtp_550", inReason: "refused the recipient"},
		{name: "greylisted 451", opts: mailtest.SMTPOptions{Mode: mailtest.SMTPImplicit,
			RcptError: func(string) error { return &smtp.SMTPError{Code: 451, Message: "try later " + pprAddr} }},
			mode: "implicit", class: adapters.ClassRetryable, code: "smtp_451", inReason: "tried again"},
		{name: "REQUIRETLS wanted, not offered", opts: mailtest.SMTPOptions{Mode: mailtest.SMTPImplicit},
			mode: "implicit", edit: func(c map[string]any) { c["require_tls"] = true },
			class: adapters.ClassPermanent, code: "requiretls_missing", inReason: "REQUIRETLS"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.opts.Username == "" && !strings.Contains(tc.name, "password") {
				tc.opts.Username, tc.opts.Password = "samhub", "s3cret"
			}
			srv := mailtest.StartSMTP(t, ca, tc.opts)
			cfg := smtpCfg(srv, ca, tc.mode)
			if tc.edit != nil {
				tc.edit(cfg)
			}
			sink := newSink(t, cfg, newMemState())
			l := testLetter()
			if tc.letter != nil {
				tc.letter(l)
			}
			_, err := sink.Deliver(context.Background(), l)
			ae := asAdapterError(t, err)
			if ae.Class != tc.class || ae.Code != tc.code || !strings.Contains(ae.Reason, tc.inReason) {
				t.Errorf("got %s %q %q, want %s %q containing %q (err %v)", ae.Class, ae.Code, ae.Reason, tc.class, tc.code, tc.inReason, err)
			}
			if strings.Contains(ae.Reason, "@") || tenDigits.MatchString(ae.Reason) || strings.Contains(ae.Reason, "Berggren") {
				t.Errorf("reason %q carries an address or personal data", ae.Reason)
			}
			if n := len(srv.Messages()); n != 0 {
				t.Errorf("server received %d messages, want none", n)
			}
			if strings.HasPrefix(ae.Code, "tls") || strings.HasPrefix(ae.Code, "starttls") {
				if err := sink.Ready(context.Background()); err == nil {
					t.Error("Ready = nil for a server the sink cannot use")
				}
			}
		})
	}
}

func TestSMTPRequireTLS(t *testing.T) {
	ca := mailtest.NewCA(t)
	srv := mailtest.StartSMTP(t, ca, mailtest.SMTPOptions{Mode: mailtest.SMTPImplicit, Username: "samhub", Password: "s3cret", RequireTLS: true})
	cfg := smtpCfg(srv, ca, "implicit")
	cfg["require_tls"] = true
	if _, err := newSink(t, cfg, newMemState()).Deliver(context.Background(), testLetter()); err != nil {
		t.Fatal(err)
	}
	for _, m := range srv.Messages() {
		if !m.RequireTLS {
			t.Error("MAIL FROM did not carry REQUIRETLS")
		}
	}
}

// A temporary refusal of the second recipient: the retry sends only to it.
func TestSMTPRetrySendsOnlyMissingRecipients(t *testing.T) {
	ca := mailtest.NewCA(t)
	var mu sync.Mutex
	refuse := true
	srv := mailtest.StartSMTP(t, ca, mailtest.SMTPOptions{Mode: mailtest.SMTPImplicit, Username: "samhub", Password: "s3cret",
		RcptError: func(to string) error {
			mu.Lock()
			defer mu.Unlock()
			if to == coordAddr && refuse {
				return &smtp.SMTPError{Code: 452, Message: "mailbox full"}
			}
			return nil
		}})
	sink := newSink(t, smtpCfg(srv, ca, "implicit"), newMemState())
	_, err := sink.Deliver(context.Background(), testLetter())
	if ae := asAdapterError(t, err); ae.Class != adapters.ClassRetryable {
		t.Fatalf("class = %s, want retryable", ae.Class)
	}
	if n := len(srv.Messages()); n != 1 {
		t.Fatalf("after the first attempt the server has %d messages, want 1", n)
	}
	mu.Lock()
	refuse = false
	mu.Unlock()
	if _, err := sink.Deliver(context.Background(), testLetter()); err != nil {
		t.Fatal(err)
	}
	msgs := srv.Messages()
	if len(msgs) != 2 || msgs[0].To[0] != pprAddr || msgs[1].To[0] != coordAddr {
		t.Fatalf("messages after retry: %d, want parent once and coordinator once", len(msgs))
	}
}

func TestSMTPNetworkErrorsAreRetryable(t *testing.T) {
	ca := mailtest.NewCA(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	ln.Close() // nothing listens there now
	cfg := map[string]any{"host": "127.0.0.1", "port": addr.Port, "tls": "implicit", "ca_file": ca.PEMFile,
		"from": "samraad@kommune.example.dk", "allow": []any{pprAddr, "@kommune.example.dk"}}
	_, err = newSink(t, cfg, newMemState()).Deliver(context.Background(), testLetter())
	if ae := asAdapterError(t, err); ae.Class != adapters.ClassRetryable {
		t.Errorf("class = %s (%v), want retryable", ae.Class, err)
	}

	// A server that accepts and then says nothing: the timeout ends it.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	cfg["port"] = silent.Addr().(*net.TCPAddr).Port
	cfg["tls"] = "starttls"
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = newSink(t, cfg, newMemState()).Deliver(ctx, testLetter())
	if ae := asAdapterError(t, err); ae.Class != adapters.ClassRetryable {
		t.Errorf("silent server: class = %s (%v), want retryable", ae.Class, err)
	}
}

// A delivery goes to the addressees the pipeline resolved (l.To) only,
// never to every receiver the letter happens to name.
func TestSMTPSendsOnlyToTheResolvedAddressees(t *testing.T) {
	ca := mailtest.NewCA(t)
	srv := mailtest.StartSMTP(t, ca, mailtest.SMTPOptions{Mode: mailtest.SMTPImplicit, Username: "samhub", Password: "s3cret"})
	sink := newSink(t, smtpCfg(srv, ca, "implicit"), newMemState())
	l := testLetter()
	l.To = []letter.Party{{Role: "coordinator", Email: coordAddr}}
	if _, err := sink.Deliver(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 || len(msgs[0].To) != 1 || msgs[0].To[0] != coordAddr {
		t.Fatalf("sent %d messages (%+v), want one to %s", len(msgs), msgs, coordAddr)
	}
}

// A delivery the pipeline addressed to nobody (a municipality or internal
// destination, which needs no consent) goes to the letter's receivers on
// the municipality's own side only: not to PPR, a GP or anyone else the
// letter names, whom only their own sector's destination (and its consent)
// may reach, whatever the allow-list says.
func TestSMTPWithoutAddresseesMailsOnlyTheMunicipalitysOwn(t *testing.T) {
	ca := mailtest.NewCA(t)
	srv := mailtest.StartSMTP(t, ca, mailtest.SMTPOptions{Mode: mailtest.SMTPImplicit, Username: "samhub", Password: "s3cret"})
	cfg := smtpCfg(srv, ca, "implicit")
	cfg["allow"] = []any{pprAddr, "@kommune.example.dk", "@laege.example.dk"}
	sink := newSink(t, cfg, newMemState())
	l := testLetter()
	l.To = nil
	l.Receivers = append(l.Receivers, letter.Party{Email: "klinik@laege.example.dk"}, letter.Party{Role: "gp", Email: "egen@laege.example.dk"})
	if _, err := sink.Deliver(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 || len(msgs[0].To) != 1 || msgs[0].To[0] != coordAddr {
		var to [][]string
		for _, m := range msgs {
			to = append(to, m.To)
		}
		t.Fatalf("sent to %v, want only the coordinator %s", to, coordAddr)
	}
}

// Email carries letters to professionals only: a custody holder the
// pipeline addressed is refused, and one merely named among the letter's
// receivers gets no mail, whatever the allow-list says.
func TestSMTPNeverMailsTheParents(t *testing.T) {
	ca := mailtest.NewCA(t)
	srv := mailtest.StartSMTP(t, ca, mailtest.SMTPOptions{Mode: mailtest.SMTPImplicit, Username: "samhub", Password: "s3cret"})
	const home = "brita.berggren@example.org"
	cfg := smtpCfg(srv, ca, "implicit")
	cfg["allow"] = []any{home, pprAddr, "@kommune.example.dk"}
	sink := newSink(t, cfg, newMemState())
	parent := letter.Party{Role: letter.RoleParents, Name: "Brita Test Berggren", Email: home}
	l := testLetter()
	l.To = []letter.Party{parent}
	_, err := sink.Deliver(context.Background(), l)
	if class, _, code := adapters.Classify(err); class != adapters.ClassPermanent || code != "citizen_by_email" {
		t.Errorf("a letter addressed to a custody holder: %v", err)
	}
	l = testLetter()
	l.To = nil // a municipality destination: the letter's receivers
	l.Receivers = append(l.Receivers, parent)
	if _, err := sink.Deliver(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	for _, m := range srv.Messages() {
		for _, to := range m.To {
			if to == home {
				t.Errorf("a mail went to the custody holder's private address")
			}
		}
	}
}

// A letter to two professionals whose first address the server refuses
// for good: the second still gets it, the source hears who has the letter
// (adapters.Partial), and the letter is parked for the refused one only.
// A later delivery (the coordinator's replay) serves only the refused one.
func TestSMTPRefusedRecipientDoesNotStopTheOthers(t *testing.T) {
	ca := mailtest.NewCA(t)
	var mu sync.Mutex
	refuse := true
	srv := mailtest.StartSMTP(t, ca, mailtest.SMTPOptions{Mode: mailtest.SMTPImplicit, Username: "samhub", Password: "s3cret",
		RcptError: func(to string) error {
			mu.Lock()
			defer mu.Unlock()
			if to == pprAddr && refuse {
				return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user " + pprAddr}
			}
			return nil
		}})
	sink := newSink(t, smtpCfg(srv, ca, "implicit"), newMemState())
	_, err := sink.Deliver(context.Background(), testLetter())
	var part *adapters.Partial
	if !errors.As(err, &part) {
		t.Fatalf("err = %v, want *adapters.Partial", err)
	}
	if len(part.Delivered) != 1 || part.Delivered[0].Role != "coordinator" || len(part.Failed) != 1 || part.Failed[0].Email != pprAddr {
		t.Errorf("delivered %+v, failed %+v", part.Delivered, part.Failed)
	}
	ae := asAdapterError(t, err)
	if ae.Class != adapters.ClassPermanent || ae.Code != "smtp_550" || !strings.Contains(ae.Reason, "1 of 2 recipients") || strings.Contains(ae.Reason, "@") {
		t.Errorf("got %s %s %q", ae.Class, ae.Code, ae.Reason)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 || msgs[0].To[0] != coordAddr {
		t.Fatalf("server has %d messages, want one to the coordinator", len(msgs))
	}

	mu.Lock()
	refuse = false
	mu.Unlock()
	if _, err := sink.Deliver(context.Background(), testLetter()); err != nil {
		t.Fatal(err)
	}
	msgs = srv.Messages()
	if len(msgs) != 2 || msgs[1].To[0] != pprAddr {
		t.Fatalf("after the replay the server has %d messages, want the coordinator's once and PPR's", len(msgs))
	}
}

// The server's answer to the end of DATA: 4xx is tried again, 5xx parks
// with a reason naming the step and the code; one recipient's temporary
// refusal keeps the letter retryable even when another's is permanent.
func TestSMTPDataAnswers(t *testing.T) {
	ca := mailtest.NewCA(t)
	for _, tc := range []struct {
		name  string
		ppr   int // reply code for PPR's message; 0 accepts
		coord int
		class adapters.Class
		code  string
		want  string
	}{
		{"452 for both", 452, 452, adapters.ClassRetryable, "smtp_452", "2 of 2 recipients not reached: the mail server refused the message for now (SMTP 452); it will be tried again"},
		{"554 for both", 554, 554, adapters.ClassPermanent, "smtp_554", "2 of 2 recipients not reached: the mail server refused the message (SMTP 554)"},
		{"554 and 451", 554, 451, adapters.ClassRetryable, "smtp_451", "2 of 2 recipients not reached: the mail server refused the message for now (SMTP 451); it will be tried again"},
		{"554 for one", 554, 0, adapters.ClassPermanent, "smtp_554", "1 of 2 recipients not reached: the mail server refused the message (SMTP 554)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			codes := map[string]int{pprAddr: tc.ppr, coordAddr: tc.coord}
			srv := mailtest.StartSMTP(t, ca, mailtest.SMTPOptions{Mode: mailtest.SMTPImplicit, Username: "samhub", Password: "s3cret",
				DataError: func(to []string) error {
					if c := codes[to[0]]; c != 0 {
						return &smtp.SMTPError{Code: c, Message: "refused for " + to[0]}
					}
					return nil
				}})
			_, err := newSink(t, smtpCfg(srv, ca, "implicit"), newMemState()).Deliver(context.Background(), testLetter())
			ae := asAdapterError(t, err)
			if ae.Class != tc.class || ae.Code != tc.code || ae.Reason != tc.want {
				t.Errorf("got %s %s %q, want %s %s %q", ae.Class, ae.Code, ae.Reason, tc.class, tc.code, tc.want)
			}
			var part *adapters.Partial
			if errors.As(err, &part) != (tc.coord == 0) {
				t.Errorf("partial = %v, want it exactly when the coordinator got the letter", errors.As(err, &part))
			}
		})
	}
}

// A refused login or sender holds for every recipient: the sink stops at
// once instead of logging in again per recipient, which could lock the
// account at the mail server.
func TestSMTPRefusedLoginOrSenderStopsTheDelivery(t *testing.T) {
	ca := mailtest.NewCA(t)
	srv := mailtest.StartSMTP(t, ca, mailtest.SMTPOptions{Mode: mailtest.SMTPImplicit, Username: "samhub", Password: "other"})
	_, err := newSink(t, smtpCfg(srv, ca, "implicit"), newMemState()).Deliver(context.Background(), testLetter())
	if ae := asAdapterError(t, err); ae.Code != "smtp_535" {
		t.Fatalf("err = %v, want smtp_535", err)
	}
	if n := srv.Commands("AUTH"); n != 1 {
		t.Errorf("%d logins for a letter to two recipients, want 1", n)
	}
}
