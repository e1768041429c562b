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
// not the environment variable, not a point's name. A failpoints build,
// checked the same way, must show them: the check can fail.
func TestReleaseBuildHasNoFailpoints(t *testing.T) {
	if found := failpointTraces(t, "release"); len(found) > 0 {
		for _, f := range found {
			t.Errorf("release binary: %s", f)
		}
	}
	if found := failpointTraces(t, "failpoints"); len(found) < 2 {
		t.Errorf("a failpoints build shows only %v: the check would not see failpoints compiled in", found)
	}
}

// failpointTraces builds the hub with tags and lists the failpoint symbols
// and names found in the binary.
func failpointTraces(t *testing.T, tags string) (found []string) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "samhub")
	build := exec.Command("go", "build", "-trimpath", "-tags", tags, "-o", bin, "github.com/samhub/samhub/cmd/samhub")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build -tags %s: %v\n%s", tags, err, out)
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
			found = append(found, "symbol "+strings.TrimSpace(line))
		}
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range append([]string{EnvVar, EnvAfter}, append(KillPoints, Switches...)...) {
		if bytes.Contains(data, []byte(s)) {
			found = append(found, "string "+s)
		}
	}
	return found
}
