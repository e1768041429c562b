package app_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/samhub/samhub/adapters/email/mailtest"
	"github.com/samhub/samhub/internal/config"
	"github.com/samhub/samhub/internal/hubtest"
	"github.com/samhub/samhub/pipeline/broker"
	"github.com/samhub/samhub/pipeline/letter"
)

// Issue 21, the IMAP source: a mail with a 20 MB attachment is spooled
// under the hub's data dir, its parts stored in the blob store from the
// spool files with their digests, the stored letter stays small, and the
// spool is empty once the message has moved to the processed mailbox.
func TestIMAPLargeAttachmentStoredFromSpool(t *testing.T) {
	ca := mailtest.NewCA(t)
	srv := mailtest.StartIMAP(t, ca, mailtest.IMAPOptions{Mode: mailtest.IMAPImplicit})
	att := randomBytes(t, 20<<20)
	attSum := sha256.Sum256(att)
	raw := mailWithAttachment(att)
	rawDigest := letter.Digest(raw)
	srv.Append(t, "INBOX", raw)
	raw, att = nil, nil

	h := hubtest.Start(t, hubtest.WithConfig(func(c *config.Config) {
		c.Adapters["mail-in"] = map[string]any{"type": "imap", "host": srv.Host, "port": srv.Port, "tls": "implicit", "ca_file": ca.PEMFile,
			"username": srv.Username, "password": srv.Password, "poll_interval": "100ms", "timeout": "30s", "max_bytes": 64 << 20}
	}))
	h.Eventually("the message moved to the processed mailbox", func() bool { return srv.Count(t, "Samhub/Processed") == 1 })

	ctx := context.Background()
	st, err := h.App.Broker.JS.Stream(ctx, broker.StreamLetters)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := st.GetLastMsgForSubject(ctx, broker.SubjLetters+".in.mail-in.>")
	if err != nil {
		t.Fatal(err)
	}
	if len(msg.Data) >= 1<<20 {
		t.Errorf("the stored letter is %d bytes; want under 1 MiB", len(msg.Data))
	}
	stored, err := letter.Unmarshal(msg.Data)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored.Attachments) != 1 || stored.Attachments[0].Ref == "" || stored.Original.Ref == "" {
		t.Fatalf("the stored letter does not name blobs for its original and attachment: %d attachments", len(stored.Attachments))
	}
	for what, c := range map[string]struct{ ref, want string }{
		"original":   {stored.Original.Ref, rawDigest},
		"attachment": {stored.Attachments[0].Ref, hex.EncodeToString(attSum[:])},
	} {
		got, n := blobDigest(t, h, c.ref)
		if got != c.want {
			t.Errorf("the %s's blob (%d bytes) has another digest than the mail's %s", what, n, what)
		}
	}
	spool := filepath.Join(h.Dir, "adapters", "mail-in", "spool")
	entries, err := os.ReadDir(spool)
	if err != nil {
		t.Fatalf("spool directory: %v", err)
	}
	if len(entries) != 0 {
		t.Errorf("%d spool files left after the message was handled", len(entries))
	}
}

// blobDigest reads a blob the stored letter names, chunk by chunk.
func blobDigest(t *testing.T, h *hubtest.Hub, ref string) (string, int64) {
	t.Helper()
	name, ok := strings.CutPrefix(ref, "blob:")
	if !ok {
		t.Fatalf("ref %q is no blob ref", ref)
	}
	r, err := objectStore(t, h).Get(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	d := sha256.New()
	n, err := io.Copy(d, r)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(d.Sum(nil)), n
}

// mailWithAttachment is a professional's mail carrying att as a PDF.
func mailWithAttachment(att []byte) []byte {
	var b bytes.Buffer
	b.WriteString("From: Læge Hansen <laege@klinik.example.dk>\r\nTo: samraad@kommune.example.dk\r\nSubject: Udredning\r\n")
	b.WriteString("Message-ID: <large-1@klinik.example.dk>\r\nDate: Mon, 02 Jun 2025 09:00:00 +0200\r\nMIME-Version: 1.0\r\n")
	b.WriteString("Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n")
	b.WriteString("--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSe vedhæftede udredning.\r\n")
	b.WriteString("--b1\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"udredning.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	for i := 0; i < len(att); i += 57 {
		fmt.Fprintf(&b, "%s\r\n", base64.StdEncoding.EncodeToString(att[i:min(i+57, len(att))]))
	}
	b.WriteString("--b1--\r\n")
	return b.Bytes()
}
