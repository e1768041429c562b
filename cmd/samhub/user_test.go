package main

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/bcrypt"

	"github.com/samhub/samhub/internal/config"
	"github.com/samhub/samhub/internal/hubtest"
)

// user runs `samhub user …` in process with stdin.
func user(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	root := &cobra.Command{Use: "samhub", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(userCmd())
	var out, errOut bytes.Buffer
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(append([]string{"user"}, args...))
	if err := root.Execute(); err != nil {
		return out.String(), err.Error(), exitCode(err)
	}
	return out.String(), errOut.String(), 0
}

// The hashes samhub user makes are what a hub takes: a user added with
// them reaches the API with the token and logs in with the password.
func TestUserHashesLetTheUserIn(t *testing.T) {
	const pw = "korrekt hest batteri"
	hash, _, code := user(t, pw+"\n", "hash-password")
	hash = strings.TrimSpace(hash)
	if code != 0 || bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw)) != nil {
		t.Fatalf("hash-password: exit %d, %q does not match the password", code, hash)
	}
	out, _, code := user(t, "", "new-token")
	var tok, tokHash string
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			switch k {
			case "token":
				tok = strings.TrimSpace(v)
			case "token_hash":
				tokHash = strings.TrimSpace(v)
			}
		}
	}
	if code != 0 || len(tok) < 40 || len(tokHash) != 64 {
		t.Fatalf("new-token: exit %d, output %q", code, out)
	}
	if again, _, _ := user(t, "", "new-token"); again == out {
		t.Fatal("two new tokens are the same")
	}

	h := hubtest.Start(t, hubtest.WithConfig(func(c *config.Config) {
		c.Console.Users = append(c.Console.Users, config.User{Name: "ny-koordinator", Role: "coordinator", PasswordHash: hash, TokenHash: tokHash})
	}))
	req, _ := http.NewRequest("GET", h.BaseURL+"/api/v1/whoami", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("whoami with the new token: %d", resp.StatusCode)
	}
}

func TestHashPasswordRefusesWhatItCannotKeep(t *testing.T) {
	for _, c := range []struct{ name, stdin, want string }{
		{"empty", "", "at least 10"},
		{"short", "kort\n", "has 4 characters"},
		{"too long for bcrypt", strings.Repeat("æ", 40) + "\n", "72 bytes"},
	} {
		out, msg, code := user(t, c.stdin, "hash-password")
		if code != 1 || !strings.Contains(msg, c.want) || out != "" {
			t.Errorf("%s: exit %d, %q, printed %q; want exit 1 saying %q and no hash", c.name, code, msg, out, c.want)
		}
	}
	// A password piped with Windows line ends is the password without them.
	hash, _, _ := user(t, "korrekt hest batteri\r\n", "hash-password")
	if bcrypt.CompareHashAndPassword([]byte(strings.TrimSpace(hash)), []byte("korrekt hest batteri")) != nil {
		t.Error("the CR of a CRLF line end was hashed with the password")
	}
}
