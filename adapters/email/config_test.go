package email

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/samhub/samhub/adapters"
)

func baseSMTP() map[string]any {
	return map[string]any{
		"host": "smtp.kommune.example.dk", "tls": "starttls",
		"username": "samhub", "password": "x",
		"from": "samraad@kommune.example.dk", "allow": []any{"@kommune.example.dk"},
	}
}

func baseIMAP() map[string]any {
	return map[string]any{
		"host": "imap.kommune.example.dk", "tls": "implicit",
		"username": "samhub", "password": "x",
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, typ string
		edit      func(map[string]any)
		key       string
	}{
		{"tls none", "smtp", func(c map[string]any) { c["tls"] = "none" }, "tls"},
		{"tls missing", "smtp", func(c map[string]any) { delete(c, "tls") }, "tls"},
		{"min_tls 1.0", "smtp", func(c map[string]any) { c["min_tls"] = "1.0" }, "min_tls"},
		{"min_tls 1.1 as number", "smtp", func(c map[string]any) { c["min_tls"] = 1.1 }, "min_tls"},
		{"skip verify", "smtp", func(c map[string]any) { c["insecure_skip_verify"] = true }, "insecure_skip_verify"},
		{"host missing", "smtp", func(c map[string]any) { delete(c, "host") }, "host"},
		{"port out of range", "smtp", func(c map[string]any) { c["port"] = 70000 }, "port"},
		{"from with a name", "smtp", func(c map[string]any) { c["from"] = "Samrådet <samraad@kommune.example.dk>" }, "from"},
		{"allow wildcard", "smtp", func(c map[string]any) { c["allow"] = []any{"@kommune.example.dk", "*"} }, "allow[1]"},
		{"allow bare @", "smtp", func(c map[string]any) { c["allow"] = []any{"@"} }, "allow[0]"},
		{"subject with a name variable", "smtp", func(c map[string]any) { c["subject"] = "Brev om {patient}" }, "subject"},
		{"subject with a CPR", "smtp", func(c map[string]any) { c["subject"] = "Brev 2509479989" }, "subject"},
		{"password twice", "smtp", func(c map[string]any) { c["password_file"] = pwFile }, "password_file"},
		{"password file missing", "smtp", func(c map[string]any) { delete(c, "password"); c["password_file"] = "/nonexistent/pw" }, "password_file"},
		{"ca file missing", "smtp", func(c map[string]any) { c["ca_file"] = "/nonexistent/ca.pem" }, "ca_file"},
		{"ca file not PEM", "smtp", func(c map[string]any) { c["ca_file"] = pwFile }, "ca_file"},
		{"imap tls none", "imap", func(c map[string]any) { c["tls"] = "none" }, "tls"},
		{"imap min_tls 1.0", "imap", func(c map[string]any) { c["min_tls"] = "1.0" }, "min_tls"},
		{"imap no username", "imap", func(c map[string]any) { delete(c, "username"); delete(c, "password") }, "username"},
		{"imap processed = mailbox", "imap", func(c map[string]any) { c["processed_mailbox"] = "INBOX" }, "processed_mailbox"},
		{"imap bad kind", "imap", func(c map[string]any) { c["kind"] = "letter" }, "kind"},
		{"imap bad rule kind", "imap", func(c map[string]any) {
			c["rules"] = []any{map[string]any{"from": "@region.example.dk", "kind": "answer"}}
		}, "rules[0].kind"},
		{"imap empty rule", "imap", func(c map[string]any) { c["rules"] = []any{map[string]any{"kind": "reply"}} }, "rules[0]"},
		{"imap negative max_bytes", "imap", func(c map[string]any) { c["max_bytes"] = -1 }, "max_bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseSMTP()
			if tc.typ == "imap" {
				cfg = baseIMAP()
			}
			tc.edit(cfg)
			_, err := adapters.Build(tc.typ, testDeps("mail", newMemState()), cfg)
			var ce *adapters.ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a *adapters.ConfigError", err)
			}
			if want := "adapters.mail." + tc.key; ce.Key != want {
				t.Errorf("key = %q, want %q (msg %q)", ce.Key, want, ce.Msg)
			}
		})
	}
}

func TestConfigDefaultsAndValidBlocks(t *testing.T) {
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := baseSMTP()
	delete(c, "password")
	c["password_file"] = pwFile
	inst, err := adapters.Build("smtp", testDeps("mail", newMemState()), c)
	if err != nil {
		t.Fatal(err)
	}
	s := inst.(*SMTPSink)
	if s.conn.addr != "smtp.kommune.example.dk:587" || s.conn.password != "s3cret" || s.cfg.Subject != DefaultSubject {
		t.Errorf("smtp defaults: addr %s, subject %q", s.conn.addr, s.cfg.Subject)
	}
	if s.conn.tls.MinVersion != 0x0303 || s.conn.tls.InsecureSkipVerify {
		t.Error("TLS must default to 1.2 with verification")
	}

	inst, err = adapters.Build("imap", testDeps("mail", newMemState()), baseIMAP())
	if err != nil {
		t.Fatal(err)
	}
	src := inst.(*IMAPSource)
	if src.conn.addr != "imap.kommune.example.dk:993" || src.cfg.Mailbox != "INBOX" || src.cfg.ProcessedMailbox != "Samhub/Processed" ||
		src.cfg.ErrorMailbox != "Samhub/Error" || src.cfg.PollInterval.String() != "30s" {
		t.Errorf("imap defaults: %+v", src.cfg)
	}
	if _, err := adapters.Build("imap", testDeps("mail", nil), baseIMAP()); err == nil {
		t.Error("an imap source without a state store was accepted")
	}
}

func TestAllowList(t *testing.T) {
	a, err := parseAllowList([]string{"Brita.Berggren@Example.dk", "@kommune.example.dk"})
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]bool{
		"brita.berggren@example.dk":       true,
		"BRITA.BERGGREN@EXAMPLE.DK":       true,
		"other@example.dk":                false,
		"anyone@kommune.example.dk":       true,
		"x@sub.kommune.example.dk":        false,
		"x@evilkommune.example.dk":        false,
		"kommune.example.dk@attacker.com": false,
	} {
		if got := a.allows(addr); got != want {
			t.Errorf("allows(%q) = %v, want %v", addr, got, want)
		}
	}
}
