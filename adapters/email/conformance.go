//go:build !release

package email

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/adapters/adaptertest"
	"github.com/samhub/samhub/adapters/email/mailtest"
	"github.com/samhub/samhub/pipeline/letter"
)

// The conformance harnesses: in-process SMTP and IMAP servers with TLS
// from a throwaway CA (mailtest).
//
// SMTP cannot look a message up before sending it, so its "object" is the
// deterministic Message-ID: a reply lost after DATA makes the sink send
// again, and the recipient's mail client sees the same Message-ID twice
// (one message). Stored counts distinct Message-IDs of the letter.
func init() {
	adaptertest.Register("smtp", newSMTPHarness)
	adaptertest.Register("imap", newIMAPHarness)
}

const (
	harnessFrom = "samraad@kommune.example.dk"
	harnessPPR  = "ppr.test@example.dk"
)

type smtpHarness struct {
	ca  *mailtest.CA
	srv *mailtest.SMTPServer
}

func newSMTPHarness(t *testing.T, _ *adaptertest.Env) adaptertest.Harness {
	ca := mailtest.NewCA(t)
	srv := mailtest.StartSMTP(t, ca, mailtest.SMTPOptions{Mode: mailtest.SMTPImplicit, Username: "samhub", Password: "secret"})
	return &smtpHarness{ca: ca, srv: srv}
}

func (h *smtpHarness) Block() map[string]any {
	return map[string]any{"host": h.srv.Host, "port": h.srv.Port, "tls": "implicit", "ca_file": h.ca.PEMFile,
		"username": "samhub", "password": "secret", "from": harnessFrom, "allow": []any{"@example.dk"}, "timeout": "10s"}
}

func (h *smtpHarness) Letter(n int) *letter.Letter {
	ppr := letter.Party{Role: letter.RoleSchool, Name: "PPR Test", Email: harnessPPR}
	return &letter.Letter{
		ID: fmt.Sprintf("conformance:smtp:%d:%d", time.Now().UnixNano(), n), Kind: letter.KindRecommendation, Source: "casesys",
		Received: time.Now().UTC(), Sender: letter.Party{Role: "municipality", Name: "Samrådet", Email: harnessFrom},
		Receivers: []letter.Party{ppr}, To: []letter.Party{ppr},
		Patient: &letter.Patient{CPR: "2509479989", GivenName: "Bruno Test", FamilyName: "Elmer"},
		Subject: "Samrådets anbefaling", Text: "Samrådet anbefaler et forløb hos PPR.",
		Original: letter.Original{Data: []byte("Samrådet anbefaler et forløb hos PPR."), ContentType: "text/plain; charset=utf-8"},
	}
}

func (h *smtpHarness) Stored(_ testing.TB, l *letter.Letter) int {
	want := []byte("<" + MessageID(l.ID, harnessPPR, harnessFrom) + ">")
	for _, m := range h.srv.Messages() {
		if bytes.Contains(m.Data, want) {
			return 1 // every copy carries the one Message-ID
		}
	}
	return 0
}

func (h *smtpHarness) LoseNextReply(testing.TB) { h.srv.LoseNextReply() }

func (h *smtpHarness) Faults() []adaptertest.Fault {
	rcpt := func(code int, enh smtp.EnhancedCode, msg string) func(testing.TB, *letter.Letter) (*letter.Letter, func()) {
		return func(_ testing.TB, l *letter.Letter) (*letter.Letter, func()) {
			h.srv.FailNextRcpt(1, &smtp.SMTPError{Code: code, EnhancedCode: enh, Message: msg})
			return l, func() {}
		}
	}
	return []adaptertest.Fault{
		{Name: "mailbox-busy-451", Class: adapters.ClassRetryable, Arm: rcpt(451, smtp.EnhancedCode{4, 2, 1}, "mailbox busy, try again later")},
		{Name: "mailbox-unknown-550", Class: adapters.ClassPermanent, Arm: rcpt(550, smtp.EnhancedCode{5, 1, 1}, "no such mailbox")},
		{Name: "recipient-off-the-allow-list", Class: adapters.ClassPermanent, Arm: func(_ testing.TB, l *letter.Letter) (*letter.Letter, func()) {
			c := *l
			p := letter.Party{Role: letter.RoleSchool, Email: "someone@elsewhere.test"}
			c.Receivers, c.To = []letter.Party{p}, []letter.Party{p}
			return &c, func() {}
		}},
	}
}

// imapHarness: an input is a mail in INBOX; the source has acknowledged it
// once it lies in the processed mailbox.
type imapHarness struct {
	ca  *mailtest.CA
	srv *mailtest.IMAPServer
	mu  sync.Mutex
}

func newIMAPHarness(t *testing.T, _ *adaptertest.Env) adaptertest.Harness {
	ca := mailtest.NewCA(t)
	return &imapHarness{ca: ca, srv: mailtest.StartIMAP(t, ca, mailtest.IMAPOptions{Mode: mailtest.IMAPImplicit})}
}

func (h *imapHarness) Block() map[string]any {
	return map[string]any{"host": h.srv.Host, "port": h.srv.Port, "tls": "implicit", "ca_file": h.ca.PEMFile,
		"username": h.srv.Username, "password": h.srv.Password, "poll_interval": "50ms", "timeout": "10s", "max_backoff": "1s"}
}

func (h *imapHarness) Put(t testing.TB, n int) {
	raw := fmt.Sprintf("From: PPR Test <%s>\r\nTo: %s\r\nSubject: Konformans %d\r\nMessage-ID: <cnf-%d@example.dk>\r\n"+
		"Date: %s\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSpørgsmål til samrådet.\r\n",
		harnessPPR, harnessFrom, n, n, time.Now().Format(time.RFC1123Z))
	h.srv.Append(t, "INBOX", []byte(raw))
}

func (h *imapHarness) Item(l *letter.Letter) (int, bool) {
	var n int
	_, err := fmt.Sscanf(l.Subject, "Konformans %d", &n)
	return n, err == nil
}

func (h *imapHarness) Acknowledged(t testing.TB, n int) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	const processed = "Samhub/Processed"
	if h.srv.Count(t, processed) == 0 {
		return false
	}
	want := fmt.Sprintf("<cnf-%d@example.dk>", n)
	for _, m := range h.srv.Messages(t, processed) {
		if strings.Contains(string(m), want) {
			return true
		}
	}
	return false
}
