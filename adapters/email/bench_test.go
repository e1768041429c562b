package email

import (
	"context"
	"fmt"
	"github.com/samhub/samhub/adapters"
	"io"
	"sync/atomic"
	"testing"

	"github.com/samhub/samhub/adapters/email/mailtest"
	"github.com/samhub/samhub/pipeline/letter"
)

func BenchmarkParseMessage(b *testing.B) {
	raw := readFixture(b, "danish-attachment.eml")
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := ParseMessage("bench", raw, received, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWriteMessage(b *testing.B) {
	l := testLetter()
	o := outgoing{from: "samraad@kommune.example.dk", to: pprAddr, subject: "Nyt brev", messageID: MessageID(l.ID, pprAddr, "x@kommune.example.dk"), date: received, letter: l}
	for b.Loop() {
		if err := writeMessage(context.Background(), io.Discard, o); err != nil {
			b.Fatal(err)
		}
	}
}

// benchNotice is a coordinator notice with one recipient, like the hub's
// "a letter arrived" mail; the id changes per call so nothing is skipped as
// already sent.
func benchNotice(n int64) *letter.Letter {
	return &letter.Letter{
		ID: fmt.Sprintf("hub:notification:%d", n), Kind: letter.KindNotification, Source: "hub",
		Receivers: []letter.Party{{Role: "coordinator", Email: coordAddr}},
		Text:      "Et brev venter i Samhub-konsollen.",
	}
}

func benchSMTPSink(b *testing.B, mode mailtest.SMTPMode, tlsMode string, maxIdle int) (*SMTPSink, *mailtest.SMTPServer) {
	ca := mailtest.NewCA(b)
	srv := mailtest.StartSMTP(b, ca, mailtest.SMTPOptions{Mode: mode, Username: "samhub", Password: "s3cret"})
	cfg := smtpCfg(srv, ca, tlsMode)
	cfg["max_idle_conns"] = maxIdle
	sink, err := NewSMTPSink(testDeps("mail-out", newMemState()), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = sink.Close() })
	return sink, srv
}

// BenchmarkSMTPDeliver sends one notice per iteration, one caller at a
// time; the "noreuse" cases (max_idle_conns 0) connect, handshake and log in
// per letter. The in-process server's work is part of the figure.
func BenchmarkSMTPDeliver(b *testing.B) {
	for _, m := range []struct {
		name    string
		mode    mailtest.SMTPMode
		tls     string
		maxIdle int
	}{
		{"implicit", mailtest.SMTPImplicit, "implicit", adapters.Defaults[poolConfig]().MaxIdleConns},
		{"starttls", mailtest.SMTPStartTLS, "starttls", adapters.Defaults[poolConfig]().MaxIdleConns},
		{"implicit-noreuse", mailtest.SMTPImplicit, "implicit", 0},
		{"starttls-noreuse", mailtest.SMTPStartTLS, "starttls", 0},
	} {
		b.Run(m.name, func(b *testing.B) {
			sink, srv := benchSMTPSink(b, m.mode, m.tls, m.maxIdle)
			var n int64
			for b.Loop() {
				n++
				if _, err := sink.Deliver(context.Background(), benchNotice(n)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(srv.Connections())/float64(n), "conns/op")
		})
	}
}

// BenchmarkSMTPDeliverParallel sends notices from GOMAXPROCS callers, as the
// hub's delivery workers do.
func BenchmarkSMTPDeliverParallel(b *testing.B) {
	sink, srv := benchSMTPSink(b, mailtest.SMTPImplicit, "implicit", adapters.Defaults[poolConfig]().MaxIdleConns)
	var n atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := sink.Deliver(context.Background(), benchNotice(n.Add(1))); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(srv.Connections())/float64(n.Load()), "conns/op")
}
