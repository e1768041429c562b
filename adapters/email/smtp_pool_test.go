package email

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/adapters/email/mailtest"
	"github.com/samhub/samhub/pipeline/letter"
)

// notice is a one-recipient letter, so one letter is one message.
func notice(n int) *letter.Letter {
	return &letter.Letter{
		ID: fmt.Sprintf("hub:notification:%d", n), Kind: letter.KindNotification, Source: "hub",
		Receivers: []letter.Party{{Role: "coordinator", Email: coordAddr}},
		Text:      "Et brev venter i Samhub-konsollen.",
	}
}

func startPoolServer(t *testing.T, mode mailtest.SMTPMode, opts ...func(*mailtest.SMTPOptions)) (*mailtest.SMTPServer, *mailtest.CA) {
	t.Helper()
	ca := mailtest.NewCA(t)
	o := mailtest.SMTPOptions{Mode: mode, Username: "samhub", Password: "s3cret"}
	for _, f := range opts {
		f(&o)
	}
	return mailtest.StartSMTP(t, ca, o), ca
}

func deliverNotices(t *testing.T, sink *SMTPSink, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if _, err := sink.Deliver(context.Background(), notice(i)); err != nil {
			t.Fatalf("letter %d: %v", i, err)
		}
	}
}

func TestSMTPSequentialLettersShareOneConnection(t *testing.T) {
	for _, m := range []struct {
		name string
		mode mailtest.SMTPMode
		tls  string
	}{{"implicit", mailtest.SMTPImplicit, "implicit"}, {"starttls", mailtest.SMTPStartTLS, "starttls"}} {
		t.Run(m.name, func(t *testing.T) {
			srv, ca := startPoolServer(t, m.mode)
			sink := newSink(t, smtpCfg(srv, ca, m.tls), newMemState())
			const n = 10
			deliverNotices(t, sink, 0, n)
			// The two-recipient letter reuses the same session for both.
			if _, err := sink.Deliver(context.Background(), testLetter()); err != nil {
				t.Fatal(err)
			}
			msgs := srv.Messages()
			if len(msgs) != n+2 {
				t.Fatalf("server received %d messages, want %d", len(msgs), n+2)
			}
			for i, msg := range msgs {
				if !msg.TLS {
					t.Errorf("message %d went without TLS", i)
				}
			}
			if c, h := srv.Connections(), srv.Handshakes(); c != 1 || h != 1 {
				t.Errorf("server saw %d connections and %d TLS handshakes, want 1 and 1", c, h)
			}
			// A kept session greets once (twice with STARTTLS: before
			// and after it), not again for every letter: a letter on a
			// kept session costs a liveness check and MAIL, RCPT, DATA.
			greetings := map[string]int{"implicit": 1, "starttls": 2}[m.tls]
			if got := srv.Commands("EHLO"); got != greetings {
				t.Errorf("server saw %d EHLO for %d letters on one connection, want %d", got, n+1, greetings)
			}
			if got, want := srv.Commands("MAIL"), n+2; got != want {
				t.Errorf("server saw %d MAIL commands, want %d (the count is off)", got, want)
			}
			if open := srv.OpenConnections(); open != 1 {
				t.Errorf("%d connections open between letters, want the 1 kept", open)
			}
			if err := sink.Close(); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the kept connection to close", func() bool { return srv.OpenConnections() == 0 })
		})
	}
}

func TestSMTPConcurrentDeliveries(t *testing.T) {
	for _, c := range []struct{ maxConns, maxIdle int }{{0, 16}, {0, 4}, {2, 4}} {
		t.Run(fmt.Sprintf("max_conns=%d,max_idle_conns=%d", c.maxConns, c.maxIdle), func(t *testing.T) {
			concurrentDeliveries(t, c.maxConns, c.maxIdle)
		})
	}
}

// concurrentDeliveries sends 50 letters from 16 goroutines, each letter
// once. What bounds the connections the server sees:
//   - with max_conns, never more than that many, and, every session being
//     kept (max_idle_conns is cut to max_conns), no more in total;
//   - with room to keep every session, no more in total than the
//     deliveries at once: a session is dialled only when none is idle;
//   - with fewer kept than the deliveries at once, the surplus is closed as
//     it comes back, so a later burst dials again: no more than one
//     connection per letter, and only the kept ones stay open.
func concurrentDeliveries(t *testing.T, maxConns, maxIdle int) {
	srv, ca := startPoolServer(t, mailtest.SMTPImplicit)
	cfg := smtpCfg(srv, ca, "implicit")
	cfg["max_conns"] = maxConns
	cfg["max_idle_conns"] = maxIdle
	sink := newSink(t, cfg, newMemState())
	defer sink.Close()
	const letters, workers = 50, 16
	next := make(chan int)
	errs := make(chan error, letters)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				if _, err := sink.Deliver(context.Background(), notice(i)); err != nil {
					errs <- fmt.Errorf("letter %d: %w", i, err)
				}
			}
		})
	}
	for i := range letters {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	ids := map[string]bool{}
	msgs := srv.Messages()
	for _, m := range msgs {
		pm := parseMail(t, m.Data)
		ids[pm.header.Get("Message-Id")] = true
	}
	if len(ids) != letters || len(msgs) != letters {
		t.Errorf("server has %d messages, %d distinct, want %d of each", len(msgs), len(ids), letters)
	}
	kept := maxIdle
	limit := letters
	switch {
	case maxConns > 0:
		kept, limit = min(maxIdle, maxConns), maxConns
	case maxIdle >= workers:
		limit = workers
	}
	if c := srv.Connections(); c > limit {
		t.Errorf("server saw %d connections, want at most %d", c, limit)
	}
	// The server closes its side just after answering QUIT, so wait.
	waitFor(t, "at most the kept connections to stay open", func() bool { return srv.OpenConnections() <= kept })
}

// A server that ends idle connections (its own idle timeout, a restart)
// costs a new connection, not a failed letter, even when every kept
// session is stale.
func TestSMTPDroppedIdleConnectionsAreReplaced(t *testing.T) {
	srv, ca := startPoolServer(t, mailtest.SMTPStartTLS)
	sink := newSink(t, smtpCfg(srv, ca, "starttls"), newMemState())
	defer sink.Close()
	deliverNotices(t, sink, 0, 1)
	for range 2 { // two more kept sessions, each on its own connection
		if err := sink.Ready(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if c := srv.Connections(); c != 3 {
		t.Fatalf("server saw %d connections, want 3", c)
	}
	srv.DropConnections()
	deliverNotices(t, sink, 1, 3)
	if n := len(srv.Messages()); n != 3 {
		t.Errorf("server received %d messages, want 3", n)
	}
	if c := srv.Connections(); c != 4 {
		t.Errorf("server saw %d connections, want 4 (3 dropped, 1 new reused)", c)
	}
}

func TestSMTPMaxMessagesPerConn(t *testing.T) {
	srv, ca := startPoolServer(t, mailtest.SMTPImplicit)
	cfg := smtpCfg(srv, ca, "implicit")
	cfg["max_messages_per_conn"] = 2
	sink := newSink(t, cfg, newMemState())
	defer sink.Close()
	deliverNotices(t, sink, 0, 5)
	if n := len(srv.Messages()); n != 5 {
		t.Errorf("server received %d messages, want 5", n)
	}
	if c := srv.Connections(); c != 3 {
		t.Errorf("server saw %d connections, want 3 (2+2+1 messages)", c)
	}
	// The letter with two recipients crosses the limit in the middle.
	if _, err := sink.Deliver(context.Background(), testLetter()); err != nil {
		t.Fatal(err)
	}
	if c := srv.Connections(); c != 4 {
		t.Errorf("server saw %d connections, want 4", c)
	}
}

func TestSMTPReuseOff(t *testing.T) {
	srv, ca := startPoolServer(t, mailtest.SMTPImplicit)
	cfg := smtpCfg(srv, ca, "implicit")
	cfg["max_idle_conns"] = 0
	sink := newSink(t, cfg, newMemState())
	deliverNotices(t, sink, 0, 4)
	if c, h := srv.Connections(), srv.Handshakes(); c != 4 || h != 4 {
		t.Errorf("server saw %d connections and %d handshakes, want 4 and 4", c, h)
	}
	waitFor(t, "every connection closed", func() bool { return srv.OpenConnections() == 0 })
}

func TestSMTPIdleTimeoutEndsKeptSessions(t *testing.T) {
	srv, ca := startPoolServer(t, mailtest.SMTPImplicit)
	cfg := smtpCfg(srv, ca, "implicit")
	cfg["idle_timeout"] = "20ms"
	sink := newSink(t, cfg, newMemState())
	deliverNotices(t, sink, 0, 1)
	waitFor(t, "the idle session to expire", func() bool { return srv.OpenConnections() == 0 })
	deliverNotices(t, sink, 1, 2)
	if c := srv.Connections(); c != 2 {
		t.Errorf("server saw %d connections, want 2", c)
	}
	waitFor(t, "the second idle session to expire", func() bool { return srv.OpenConnections() == 0 })
}

// A failed transaction leaves the session in an unknown state: it is not
// kept, and the next letter gets a new connection.
func TestSMTPFailedTransactionDiscardsSession(t *testing.T) {
	var mu sync.Mutex
	refuse := true
	srv, ca := startPoolServer(t, mailtest.SMTPImplicit, func(o *mailtest.SMTPOptions) {
		o.RcptError = func(string) error {
			mu.Lock()
			defer mu.Unlock()
			if refuse {
				return &smtp.SMTPError{Code: 451, Message: "try later"}
			}
			return nil
		}
	})
	sink := newSink(t, smtpCfg(srv, ca, "implicit"), newMemState())
	defer sink.Close()
	_, err := sink.Deliver(context.Background(), notice(1))
	if ae := asAdapterError(t, err); ae.Class != adapters.ClassRetryable || ae.Code != "smtp_451" {
		t.Fatalf("got %s %s, want retryable smtp_451", ae.Class, ae.Code)
	}
	waitFor(t, "the failed session to close", func() bool { return srv.OpenConnections() == 0 })
	mu.Lock()
	refuse = false
	mu.Unlock()
	deliverNotices(t, sink, 1, 3)
	if c := srv.Connections(); c != 2 {
		t.Errorf("server saw %d connections, want 2 (the failed one, then one reused)", c)
	}
}

// REQUIRETLS is checked and sent on every message, also after RSET on a
// kept session.
func TestSMTPRequireTLSOnKeptSession(t *testing.T) {
	srv, ca := startPoolServer(t, mailtest.SMTPImplicit, func(o *mailtest.SMTPOptions) { o.RequireTLS = true })
	cfg := smtpCfg(srv, ca, "implicit")
	cfg["require_tls"] = true
	sink := newSink(t, cfg, newMemState())
	defer sink.Close()
	deliverNotices(t, sink, 0, 3)
	msgs := srv.Messages()
	if len(msgs) != 3 || srv.Connections() != 1 {
		t.Fatalf("%d messages over %d connections, want 3 over 1", len(msgs), srv.Connections())
	}
	for i, m := range msgs {
		if !m.RequireTLS {
			t.Errorf("message %d lacks REQUIRETLS", i)
		}
	}
}

// A delivery whose context ends while it holds a session does not hand a
// closed connection to the next one.
func TestSMTPCancelledDeliveryDoesNotPoisonPool(t *testing.T) {
	srv, ca := startPoolServer(t, mailtest.SMTPImplicit)
	sink := newSink(t, smtpCfg(srv, ca, "implicit"), newMemState())
	defer sink.Close()
	deliverNotices(t, sink, 0, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := sink.Deliver(ctx, notice(1))
	if ae := asAdapterError(t, err); ae.Class != adapters.ClassRetryable {
		t.Fatalf("cancelled delivery: class %s, want retryable", ae.Class)
	}
	deliverNotices(t, sink, 1, 3)
	if n := len(srv.Messages()); n != 3 {
		t.Errorf("server received %d messages, want 3", n)
	}
}

func TestSMTPPoolConfig(t *testing.T) {
	srv, ca := startPoolServer(t, mailtest.SMTPImplicit)
	s := newSink(t, smtpCfg(srv, ca, "implicit"), nil)
	if p := s.pool; cap(p.slots) != 8 || p.maxIdle != 8 || p.maxMsgs != 100 || p.idleFor != 30*time.Second {
		t.Errorf("defaults: %d connections, %d idle, %d messages, %s, want 8, 8, 100, 30s", cap(p.slots), p.maxIdle, p.maxMsgs, p.idleFor)
	}
	cases := []struct {
		key   string
		value any
		inMsg string
	}{
		{"max_conns", -1, "between 0"},
		{"max_conns", 300, "256"},
		{"max_idle_conns", -1, "between 0"},
		{"max_idle_conns", 1000, "256"},
		{"max_messages_per_conn", 0, "1 or more"},
		{"idle_timeout", "-5s", "positive"},
		{"idle_timeout", "soon", "idle_timeout"},
		{"max_idle_conns", "many", "max_idle_conns"},
	}
	for _, tc := range cases {
		cfg := smtpCfg(srv, ca, "implicit")
		cfg[tc.key] = tc.value
		_, err := NewSMTPSink(testDeps("mail-out", nil), cfg)
		var ce *adapters.ConfigError
		if !errors.As(err, &ce) {
			t.Errorf("%s=%v: err = %v, want a ConfigError", tc.key, tc.value, err)
			continue
		}
		if (ce.Key != tc.key && ce.Key != "(block)") || !strings.Contains(ce.Error(), tc.inMsg) {
			t.Errorf("%s=%v: got key %q, %q; want key %s and %q", tc.key, tc.value, ce.Key, ce.Error(), tc.key, tc.inMsg)
		}
	}
	cfg := smtpCfg(srv, ca, "implicit")
	cfg["max_idle_conns"], cfg["idle_timeout"], cfg["max_messages_per_conn"] = 0, "2m", 7
	s = newSink(t, cfg, nil)
	if p := s.pool; p.maxIdle != 0 || p.maxMsgs != 7 || p.idleFor.Minutes() != 2 {
		t.Errorf("explicit: %d idle, %d messages, %s", p.maxIdle, p.maxMsgs, p.idleFor)
	}
	if _, ok := cfg["max_idle_conns"]; !ok {
		t.Error("NewSMTPSink changed the caller's configuration map")
	}
}

// With every allowed connection busy, a delivery waits for one and, if its
// time runs out first, fails as retryable ("busy"), never permanently; a
// session handed back serves the next delivery without a new connection.
func TestSMTPMaxConnsWaitsThenRetries(t *testing.T) {
	srv, ca := startPoolServer(t, mailtest.SMTPImplicit)
	cfg := smtpCfg(srv, ca, "implicit")
	cfg["max_conns"] = 1
	sink := newSink(t, cfg, newMemState())
	defer sink.Close()
	held, err := sink.session(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = sink.Deliver(ctx, notice(1))
	if ae := asAdapterError(t, err); ae.Class != adapters.ClassRetryable || ae.Code != "busy" {
		t.Fatalf("delivery while the only connection is held: %s %s", ae.Class, ae.Code)
	}
	done := make(chan error, 1)
	go func() {
		_, err := sink.Deliver(context.Background(), notice(2))
		done <- err
	}()
	sink.release(held)
	if err := <-done; err != nil {
		t.Fatalf("delivery after the session came back: %v", err)
	}
	if c := srv.Connections(); c != 1 {
		t.Errorf("server saw %d connections, want 1", c)
	}
}
