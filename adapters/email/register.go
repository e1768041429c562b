package email

import "github.com/samhub/samhub/adapters"

func init() {
	adapters.RegisterSink("smtp", adapters.Spec{
		Summary: "Mail out through an SMTP submission server, TLS only: letters and the hub's notices to addresses on an allow-list.",
		Description: "Each (letter, recipient) pair gets a deterministic Message-ID and a sent marker in the state store once the server accepted it, so a retried delivery skips recipients already served. " +
			"A recipient the server refuses does not keep the letter from the others; the source is told who got it. " +
			"4xx answers and network errors are retried; 5xx answers, a refused TLS handshake and recipients off the allow-list are permanent.",
		Forbidden: insecureKeys,
	}, func(deps adapters.Deps, c smtpConfig) (adapters.Sink, error) { return newSMTPSink(deps, c) })
	adapters.RegisterSource("imap", adapters.Spec{
		Summary:     "Mail in from an IMAP mailbox, TLS only: each message becomes a letter and moves to processed_mailbox once the hub stored it.",
		Description: "A message's letter id derives from its Message-ID and a hash of its bytes; a state record written after the store lets a restart finish a move without publishing again.",
		Forbidden:   insecureKeys,
	}, func(deps adapters.Deps, c imapConfig) (adapters.Source, error) { return newIMAPSource(deps, c) })
}
