package failpoint

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestArm checks the syntax of SAMHUB_FAILPOINT: names and hits, and an
// error naming an unknown point or a bad hit.
func TestArm(t *testing.T) {
	if !Compiled {
		if err := Arm(MedComStored); err == nil || !strings.Contains(err.Error(), "-tags failpoints") {
			t.Fatalf("Arm without the failpoints tag: %v, want an error saying how to build", err)
		}
		if Active(DeliverTwice) {
			t.Fatal("a switch is on in a build without failpoints")
		}
		return
	}
	defer Arm("")
	if err := Arm("sink-done@3, deliver-twice"); err != nil {
		t.Fatal(err)
	}
	if !Active(DeliverTwice) {
		t.Error("deliver-twice is not on")
	}
	Kill(SinkDone)
	Kill(SinkDone) // hits 1 and 2 pass; 3 would kill
	Kill(MedComStored)
	for spec, want := range map[string]string{
		"no-such-point":    `"no-such-point": no such failpoint`,
		"sink-done@0":      "at least 1",
		"deliver-twice@2":  "no such failpoint",
		"medcom-stored@x1": "whole number",
	} {
		if err := Arm(spec); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Arm(%q) = %v, want an error containing %q", spec, err, want)
		}
	}
}

// TestKillKillsTheProcess runs this test binary again with a point armed
// at its second hit counted from 200 ms after the start, and checks that
// the child dies by SIGKILL at that hit, saying so on stderr.
func TestKillKillsTheProcess(t *testing.T) {
	if !Compiled {
		t.Log("built without failpoints: Kill is a no-op (TestArm checks it)")
		return
	}
	if os.Getenv("FAILPOINT_CHILD") == "1" {
		Kill(SMTPSent) // before SAMHUB_FAILPOINT_AFTER: not counted
		time.Sleep(300 * time.Millisecond)
		Kill(SMTPSent)
		os.Stdout.WriteString("after hit 1\n")
		Kill(SMTPSent)
		os.Stdout.WriteString("after hit 2\n")
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestKillKillsTheProcess$")
	cmd.Env = append(os.Environ(), "FAILPOINT_CHILD=1", EnvVar+"="+SMTPSent+"@2", EnvAfter+"=200ms")
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if err == nil || cmd.ProcessState.String() != "signal: killed" {
		t.Fatalf("child ended with %v (%s), want signal: killed", err, cmd.ProcessState)
	}
	if !strings.Contains(out.String(), "after hit 1") || strings.Contains(out.String(), "after hit 2") {
		t.Errorf("child's stdout %q: want it killed at the second hit", out.String())
	}
	if !strings.Contains(errOut.String(), "failpoint: killed at smtp-sent (hit 2)") {
		t.Errorf("child's stderr %q does not say where it was killed", errOut.String())
	}
}
