package reliability

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/samhub/samhub/internal/failpoint"
)

// oClaimsNoDuplicates are the scenarios that claim duplicates=0, and the
// sizes they run at to prove it can fail: small, since every one of them
// must only show that a second copy is seen.
var oClaimsNoDuplicates = map[string]string{
	"TestScenarioKill9":        "KILL9_KILLS=2",
	"TestScenarioShutdown":     "SHUTDOWN_STOPS=1",
	"TestScenarioOutage":       "OUTAGE_PHASE=500ms",
	"TestScenarioLostreply":    "LOSTREPLY_LETTERS=40",
	"TestScenarioDuplicate":    "DUPLICATE_LETTERS=30",
	"TestScenarioSoak":         "SOAK_DURATION=4s",
	"TestScenarioCluster":      "CLUSTER_LETTERS=60 CLUSTER_RESTART_LETTERS=10",
	"TestScenarioDropFolder":   "DROPFOLDER_LETTERS=40",
	"TestScenarioBadletters":   "BADLETTERS_GOOD=50",
	"TestScenarioDiskfull":     "DISKFULL_LETTERS=20",
	"TestScenarioBatchKill":    "BATCH_KILLS=2",
	"TestScenarioBatchRefused": "BATCHREFUSED_BURSTS=4",
	"TestScenarioLostConsumer": "LOSTCONSUMER_PAUSE=300ms",
}

// TestDeliverTwiceFailsEveryScenario proves the oracles: it runs every
// scenario that claims duplicates=0 in a test binary built with the
// failpoints tag and the deliver-twice switch on (every sink is called a
// second time for every letter, under a new identity no idempotency can
// recognise; the child hubs inherit the switch), and each must fail, and
// fail on its oracle's duplicates — not on a timeout or anything else. The
// same scenarios pass with the switch off (they run in this package).
func TestDeliverTwiceFailsEveryScenario(t *testing.T) {
	if failpoint.Compiled {
		t.Skip("this is the failpoints run it starts itself")
	}
	t.Parallel()
	var names, env []string
	for name, sizes := range oClaimsNoDuplicates {
		names = append(names, name)
		for _, kv := range strings.Fields(sizes) {
			env = append(env, "SAMHUB_"+kv)
		}
	}
	sort.Strings(names)
	cmd := exec.Command("go", "test", "-tags", "failpoints", "-count=1", "-json", "-timeout", "10m", "-parallel", oParallel, "-run", "^("+strings.Join(names, "|")+")$", ".")
	cmd.Env = append(append(os.Environ(), failpoint.EnvVar+"="+failpoint.DeliverTwice, "SAMHUB_SOAK="), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	err := cmd.Run()
	if err == nil {
		t.Fatalf("every scenario passed with %s=%s: the oracles cannot see a second copy", failpoint.EnvVar, failpoint.DeliverTwice)
	}
	type result struct {
		action string
		output strings.Builder
	}
	results := map[string]*result{}
	sc := bufio.NewScanner(&out)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var ev struct{ Action, Test, Output string }
		if json.Unmarshal(sc.Bytes(), &ev) != nil || ev.Test == "" {
			continue
		}
		top, _, _ := strings.Cut(ev.Test, "/")
		r := results[top]
		if r == nil {
			r = &result{}
			results[top] = r
		}
		r.output.WriteString(ev.Output)
		if ev.Test == top && (ev.Action == "pass" || ev.Action == "fail" || ev.Action == "skip") {
			r.action = ev.Action
		}
	}
	caught := 0
	for _, name := range names {
		r := results[name]
		switch {
		case r == nil:
			t.Errorf("%s did not run with deliver-twice on:\n%s", name, r1Tail(errOut.Bytes(), 2000))
		case r.action != "fail":
			t.Errorf("%s ended %q with deliver-twice on; it must fail on its duplicates", name, r.action)
		case !oCaughtDuplicates(r.output.String()):
			t.Errorf("%s failed with deliver-twice on, but not on its oracle's duplicates:\n%s", name, r1Tail([]byte(r.output.String()), 3000))
		default:
			caught++
		}
	}
	report(t, "delivertwice", "scenarios", len(names), "caught", caught, "took_s", int(time.Since(start).Seconds()))
}

// oCaughtDuplicates reports whether a scenario's output shows its oracle
// failing on second copies: oRequire's message with duplicates listed.
func oCaughtDuplicates(out string) bool {
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "oracle: ") && strings.Contains(line, "duplicated [") && !strings.Contains(line, "duplicated []") {
			return true
		}
	}
	return false
}
