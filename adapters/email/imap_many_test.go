package email

import (
	"fmt"
	"testing"

	"github.com/samhub/samhub/adapters/email/mailtest"
)

// A mailbox that fills with hundreds of messages is read once: each
// message is downloaded once and published once, and later polls download
// nothing. When the server then rebuilds the mailbox (a new UIDVALIDITY)
// and brings back copies of messages already taken, those are recognised
// by their content and moved on, not published again.
func TestIMAPManyMessagesAndANewUIDValidity(t *testing.T) {
	const n = 300
	ca := mailtest.NewCA(t)
	srv := mailtest.StartIMAP(t, ca, mailtest.IMAPOptions{Mode: mailtest.IMAPImplicit})
	const box = "Samhub/In"
	srv.Recreate(t, box)
	before, err := srv.Status(box)
	if err != nil {
		t.Fatal(err)
	}
	msg := func(i int) []byte {
		return fmt.Appendf(nil, "From: PPR Test <ppr.test@example.dk>\r\nTo: samraad@kommune.example.dk\r\nSubject: Nr. %d\r\nMessage-ID: <many-%d@example.dk>\r\n\r\nBesked %d\r\n", i, i, i)
	}
	for i := range n {
		srv.Append(t, box, msg(i))
	}
	cfg := imapCfg(srv, ca, "implicit")
	cfg["mailbox"] = box
	cfg["poll_interval"] = "20ms"
	pub := newRecPublisher()
	start(t, newSource(t, cfg, newMemState(), nil), pub)
	waitFor(t, "all messages processed", func() bool { return srv.Count(t, processed) == n })
	fetched := srv.BodyFetches()
	if fetched != n || pub.callCount() != n || len(pub.letters()) != n {
		t.Fatalf("%d body fetches, %d publishes, %d letters; want %d each", fetched, pub.callCount(), len(pub.letters()), n)
	}

	srv.Recreate(t, box)
	after, err := srv.Status(box)
	if err != nil {
		t.Fatal(err)
	}
	if after.UIDValidity == before.UIDValidity {
		t.Fatal("the test server kept the UIDVALIDITY")
	}
	for i := range 5 {
		srv.Append(t, box, msg(i)) // restored copies
	}
	srv.Append(t, box, msg(n)) // and one new message
	waitFor(t, "the rebuilt mailbox processed", func() bool { return srv.Count(t, box) == 0 && srv.Count(t, processed) == n+6 })
	if got := pub.callCount(); got != n+1 {
		t.Errorf("%d publishes, want %d: the restored copies were published again", got, n+1)
	}
	if got := srv.BodyFetches(); got != fetched+6 {
		t.Errorf("%d body fetches after the rebuild, want %d", got, fetched+6)
	}
}
