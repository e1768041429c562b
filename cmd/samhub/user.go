package main

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/term"

	"github.com/samhub/samhub/internal/httpapi"
)

// minPassword is the shortest console password hash-password hashes.
const minPassword = 10

// userCmd makes what console.users holds: the hub keeps only hashes, so
// an operator adding a coordinator needs them made, without tools the
// machine may lack (htpasswd) or a password in the shell's history.
func userCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Make a console user's password hash and API token (console.users)",
	}
	hash := &cobra.Command{
		Use:   "hash-password",
		Short: "Read a password and print its bcrypt hash for console.users[].password_hash",
		Long: `Reads the password from the terminal without showing it, twice, or the
first line of standard input when it is not a terminal, and prints its
bcrypt hash. Put the hash under console.users[].password_hash; the hub
never holds the password itself.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pw, err := readPassword(cmd.InOrStdin(), cmd.ErrOrStderr())
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
			if errors.Is(err, bcrypt.ErrPasswordTooLong) {
				return &exitError{code: 1, err: errors.New("the password is longer than bcrypt's 72 bytes; choose a shorter one")}
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), string(h))
			return nil
		},
	}
	token := &cobra.Command{
		Use:   "new-token",
		Short: "Make a new API token for samhubctl and print it with its token_hash",
		Long: `Makes a random API token (256 bits) and prints it with its SHA-256 hash.
Put the hash under console.users[].token_hash and give the token to the
user for samhubctl (--token-file or SAMHUB_TOKEN). The token is shown only
now: the hub keeps the hash alone, so a lost token is replaced by a new one.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b := make([]byte, 32)
			if _, err := rand.Read(b); err != nil {
				return err
			}
			tok := base64.RawURLEncoding.EncodeToString(b)
			fmt.Fprintf(cmd.OutOrStdout(), "token:      %s\ntoken_hash: %s\n", tok, httpapi.HashToken(tok))
			return nil
		},
	}
	cmd.AddCommand(hash, token)
	return cmd
}

// readPassword reads a password twice from a terminal without echo, or
// once from a pipe.
func readPassword(in io.Reader, prompt io.Writer) (string, error) {
	var pw string
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		read := func(label string) (string, error) {
			fmt.Fprint(prompt, label)
			b, err := term.ReadPassword(int(f.Fd()))
			fmt.Fprintln(prompt)
			return string(b), err
		}
		var err error
		if pw, err = read("Password: "); err != nil {
			return "", err
		}
		again, err := read("Again: ")
		if err != nil {
			return "", err
		}
		if again != pw {
			return "", errors.New("the two passwords differ; nothing was hashed")
		}
	} else {
		line, err := bufio.NewReader(in).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", err
		}
		pw = strings.TrimRight(line, "\r\n")
	}
	if n := len([]rune(pw)); n < minPassword {
		return "", fmt.Errorf("the password has %d characters; a console password needs at least %d", n, minPassword)
	}
	return pw, nil
}
