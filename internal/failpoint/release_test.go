package failpoint

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestReleaseBuildHasNoFailpoints builds the hub as the release build does
// (-tags release; without -s -w so its symbol table can be read) and checks
// that no failpoint code or name is in it: not a symbol of this package,
// not the environment variable, not a point's name.
func TestReleaseBuildHasNoFailpoints(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "samhub")
	build := exec.Command("go", "build", "-trimpath", "-tags", "release", "-o", bin, "github.com/samhub/samhub/cmd/samhub")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("release build: %v\n%s", err, out)
	}
	nm, err := exec.Command("go", "tool", "nm", bin).Output()
	if err != nil {
		t.Fatalf("go tool nm: %v", err)
	}
	if len(nm) < 1000 {
		t.Fatalf("go tool nm listed only %d bytes: the check would prove nothing", len(nm))
	}
	for _, line := range strings.Split(string(nm), "\n") {
		if strings.Contains(line, "internal/failpoint") {
			t.Errorf("release binary has a failpoint symbol: %s", strings.TrimSpace(line))
		}
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range append([]string{EnvVar, EnvAfter}, append(KillPoints, Switches...)...) {
		if bytes.Contains(data, []byte(s)) {
			t.Errorf("release binary contains %q", s)
		}
	}
}
