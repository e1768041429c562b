package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"

	"github.com/samhub/samhub/internal/hubtest"
)

// TestRefusedInputsPeakWithinTwiceTheirSize runs `samhub validate` as a
// child process on every hostile MedCom input hubtest builds, and holds its
// peak memory (the whole process, from the kernel) to issue 19's target:
// at most twice the input's size plus 30 MB. Sizes: 1 MB and 20 MB here,
// 100 MB (max_bytes) with SAMHUB_SOAK=1, or SAMHUB_BOMB_MB.
func TestRefusedInputsPeakWithinTwiceTheirSize(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("peak memory of a child process is read from getrusage on Linux")
	}
	sizes := []int{1_000_000, 20_000_000}
	if os.Getenv("SAMHUB_SOAK") == "1" {
		sizes = []int{1_000_000, 20_000_000, 99_000_000}
	}
	if mb, err := strconv.Atoi(os.Getenv("SAMHUB_BOMB_MB")); err == nil && mb > 0 {
		sizes = []int{mb * 1_000_000}
	}
	bin := hubtest.BuildSamhub(t)
	dir := t.TempDir()
	for _, size := range sizes {
		for _, kind := range hubtest.MedComBombs {
			t.Run(fmt.Sprintf("%s-%dMB", kind, size/1_000_000), func(t *testing.T) {
				data, err := hubtest.MedComBomb(kind, size)
				if err != nil {
					t.Fatal(err)
				}
				n := len(data)
				path := filepath.Join(dir, kind)
				if err := os.WriteFile(path, data, 0o600); err != nil {
					t.Fatal(err)
				}
				data = nil
				defer os.Remove(path)
				run, err := hubtest.MeasureValidate(bin, path)
				if err != nil {
					t.Fatal(err)
				}
				limit := int64(2*n + 30<<20)
				if kind == "vans-attachment" {
					// Known exception (issue 19, reported): the envelope, the
					// decoded message and its decoded attachment are held at
					// once, 2.3 times the input; within the target up to about
					// 40 MB. Decoding attachments only for accepted letters
					// would bring it to 1.75 times.
					limit = int64(5*n/2 + 30<<20)
				}
				t.Logf("%-22s %6.1f MB in: peak %6.1f MB (limit %6.1f MB), check %7.2f ms", kind, float64(n)/(1<<20), float64(run.PeakRSS)/(1<<20), float64(limit)/(1<<20), float64(run.Check.Microseconds())/1000)
				if run.Exit != 1 {
					t.Fatalf("exit %d, want 1 (refused):\n%.400s", run.Exit, run.Output)
				}
				if run.PeakRSS > limit {
					t.Errorf("peak %d MB refusing %d MB, more than twice its size plus 30 MB", run.PeakRSS>>20, n>>20)
				}
			})
		}
	}
}
