//go:build failpoints

package failpoint

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Compiled reports whether failpoints are compiled in.
const Compiled = true

var (
	mu    sync.Mutex
	kills map[string]int // point → the hit that kills
	hits  map[string]int
	on    map[string]bool
	// from is when hits of kill points start to count (EnvAfter).
	from time.Time
)

func init() {
	err := Arm(os.Getenv(EnvVar))
	if v := os.Getenv(EnvAfter); v != "" && err == nil {
		var d time.Duration
		if d, err = time.ParseDuration(v); err == nil && d < 0 {
			err = errors.New("must not be negative")
		}
		from = time.Now().Add(d)
		if err != nil {
			err = fmt.Errorf("%s=%q: %w", EnvAfter, v, err)
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", EnvVar, err)
		os.Exit(2)
	}
}

// Arm replaces what is armed with spec (the syntax of SAMHUB_FAILPOINT;
// empty disarms everything) and starts the hit counts again.
func Arm(spec string) error {
	k, s := map[string]int{}, map[string]bool{}
	var errs []error
	for _, e := range strings.Split(spec, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		name, at, hasAt := strings.Cut(e, "@")
		switch {
		case slices.Contains(Switches, name) && !hasAt:
			s[name] = true
		case slices.Contains(KillPoints, name):
			n := 1
			if hasAt {
				var err error
				if n, err = strconv.Atoi(at); err != nil || n < 1 {
					errs = append(errs, fmt.Errorf("%q: the hit after @ must be a whole number of at least 1", e))
					continue
				}
			}
			k[name] = n
		default:
			errs = append(errs, fmt.Errorf("%q: no such failpoint (kill points: %s; switches: %s)", e, strings.Join(KillPoints, ", "), strings.Join(Switches, ", ")))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	mu.Lock()
	defer mu.Unlock()
	kills, hits, on = k, map[string]int{}, s
	return nil
}

// Kill kills the process with SIGKILL when point is armed and this is the
// hit it is armed for.
func Kill(point string) {
	mu.Lock()
	at, armed := kills[point]
	if !armed || time.Now().Before(from) {
		mu.Unlock()
		return
	}
	hits[point]++
	n := hits[point]
	mu.Unlock()
	if n != at {
		return
	}
	fmt.Fprintf(os.Stderr, "failpoint: killed at %s (hit %d)\n", point, n)
	if p, err := os.FindProcess(os.Getpid()); err == nil {
		_ = p.Kill()
	}
	time.Sleep(time.Hour) // the signal ends the process before this returns
}

// Active reports whether the switch name is on.
func Active(name string) bool {
	mu.Lock()
	defer mu.Unlock()
	return on[name]
}
