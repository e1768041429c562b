package deploy

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// unitSettings reads a systemd unit's Key=value lines; a key given on
// several lines keeps every value, space-separated values split.
func unitSettings(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "[") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if ok {
			out[k] = append(out[k], strings.Fields(v)...)
		}
	}
	return out
}

func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// TestTheMedComFolderIsSharedWithTheVANSClient: the VANS client, another
// program under its own user, writes into the MedCom folder's in/ and
// reads the hub's letters from out/. The shipped unit kept the folder in
// the hub's private state directory (mode 0700) with a umask of 0077, so
// no VANS client could reach it, nor read a letter the hub wrote. The
// folder must be outside that directory, writable by the hub, shared
// through a group the hub joins and the docs create, the umask must let
// the group read what the hub writes while hiding it from others, and the
// hub needs CAP_LEASE to see whether the client still writes a file.
func TestTheMedComFolderIsSharedWithTheVANSClient(t *testing.T) {
	unit := unitSettings(t, "systemd/samhub.service")
	raw, err := os.ReadFile("systemd/samhub.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Adapters map[string]struct {
			Type string `yaml:"type"`
			Dir  string `yaml:"dir"`
		} `yaml:"adapters"`
	}
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	docs, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	private := make([]string, 0, len(unit["StateDirectory"]))
	for _, d := range unit["StateDirectory"] {
		private = append(private, filepath.Join("/var/lib", d))
	}
	groups := unit["SupplementaryGroups"]
	if len(groups) != 1 {
		t.Fatalf("SupplementaryGroups %q: want the one group the hub shares the MedCom folder with", groups)
	}
	medcom := 0
	for name, a := range cfg.Adapters {
		if a.Type != "medcom" {
			continue
		}
		medcom++
		for _, p := range private {
			if within(a.Dir, p) {
				t.Errorf("adapter %s: dir %s is inside the hub's private state directory %s, which no VANS client can reach", name, a.Dir, p)
			}
		}
		writable := false
		for _, p := range unit["ReadWritePaths"] {
			writable = writable || within(a.Dir, p)
		}
		if !writable {
			t.Errorf("adapter %s: dir %s is not in the unit's ReadWritePaths %q", name, a.Dir, unit["ReadWritePaths"])
		}
		made := regexp.MustCompile(`install -d -m 2770 -g ` + regexp.QuoteMeta(groups[0]) + ` ` + regexp.QuoteMeta(a.Dir) + `\s`)
		if !made.Match(docs) || !strings.Contains(string(docs), "groupadd --system "+groups[0]) {
			t.Errorf("docs/operations.md does not make group %s and the folder %s (install -d -m 2770 -g %s %s …)", groups[0], a.Dir, groups[0], a.Dir)
		}
	}
	if medcom == 0 {
		t.Fatal("systemd/samhub.yaml has no MedCom adapter: nothing checked")
	}
	// The VANS client's files are its user's: the check that no writer
	// still has one open is a read lease, which needs CAP_LEASE then.
	for _, k := range []string{"CapabilityBoundingSet", "AmbientCapabilities"} {
		if strings.Join(unit[k], " ") != "CAP_LEASE" {
			t.Errorf("%s %q: want CAP_LEASE and nothing else", k, unit[k])
		}
	}
	if len(unit["UMask"]) != 1 {
		t.Fatalf("UMask %q: want one", unit["UMask"])
	}
	umask, err := strconv.ParseUint(unit["UMask"][0], 8, 32)
	if err != nil {
		t.Fatal(err)
	}
	if umask&0o040 != 0 {
		t.Errorf("UMask %04o hides the hub's letters in out/ from the VANS client's group", umask)
	}
	if umask&0o007 != 0o007 {
		t.Errorf("UMask %04o lets other users read what the hub writes", umask)
	}
}
