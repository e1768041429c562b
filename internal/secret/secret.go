// Package secret reads a secret given by reference: a file holding it or an
// environment variable, never the configuration file itself. Both the
// configuration and the broker (which knows no configuration) use it.
package secret

import (
	"fmt"
	"os"
	"strings"
)

// Read returns the secret in file (trimmed) or in the environment variable
// env; neither set is no secret.
func Read(file, env string) (string, error) {
	switch {
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", err
		}
		return strings.TrimSpace(string(b)), nil
	case env != "":
		v := os.Getenv(env)
		if v == "" {
			return "", fmt.Errorf("environment variable %s is empty", env)
		}
		return v, nil
	}
	return "", nil
}
